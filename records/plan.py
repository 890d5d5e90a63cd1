"""The plan engine: what to change in a zone so it serves what the clusters want, touching only what we own.

Inputs: every cluster's endpoints (desired), the zone's record sets as the provider returns them (current),
and the zone's configuration (owner id, policy, TXT naming). Output: a `Plan` of change groups in apply order,
each a record change plus the ownership TXT changes that go with it (kept together so batching can keep them
in one Route53 request), each with a human reason; plus the conflicts (names left unchanged) and whether a
person must approve it (private address in a public zone, a large share of the zone, an adopt).

The rules follow ExternalDNS's plan (shared/reference/external-dns.md, section 4):
- only records whose ownership TXT names this zone's owner id are updated or deleted; records of other owners
  or of nobody are shown and never touched (taking one over is an explicit *adopt*, which needs approval);
- deletes are built from the current state (Route53 deletes only an exact match), never from desired state;
- the diff ignores the TTL unless one is configured, compares targets as case-insensitive sets and IPs by
  value, and compares every routing field, so nothing flips back and forth between runs;
- policies: `sync` (all), `upsert-only` (no deletes), `create-only` (creates only).

The engine is split by concern: records.plan_model holds the data model (ZoneConfig, Change, ChangeGroup,
Plan) and applies changes in memory; records.plan_diff compares record sets; records.plan_state indexes the
current state and collects groups and conflicts; records.plan_groups plans one record at a time;
records.plan_ownership summarizes a zone's ownership. This module computes the plan from them, and re-exports
what callers import.

Pure: no Django, boto3 or Kubernetes import, so it has fast exhaustive tests.
"""

from __future__ import annotations

import gc
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any, Protocol

from records import policy
from records.aggregate import Conflict, Desired, DesiredRecord, aggregate
from records.endpoint import Endpoint
from records.ownership import owned_by_pattern
from records.plan_groups import (
    _plan_adopt,
    _plan_adopt_delete,
    _plan_create,
    _plan_delete,
    _plan_owned,
    _validate_projection,
)
from records.plan_model import (
    _PHASE,
    ACTION_CREATE,
    ACTION_DELETE,
    ACTION_UPSERT,
    ADOPT,
    CREATE,
    DEFAULT_MAX_CHANGE_SHARE,
    DEFAULT_MIN_OWNED_FOR_SHARE,
    DELETE,
    OWNERSHIP,
    POLICIES,
    POLICY_CREATE_ONLY,
    POLICY_SYNC,
    POLICY_UPSERT_ONLY,
    UPDATE,
    Change,
    ChangeGroup,
    ChangeRejected,
    Plan,
    Skipped,
    ZoneConfig,
    apply_changes,
    apply_plan,
)
from records.plan_ownership import record_owners, summarize_ownership
from records.plan_state import _Builder, _Ctx, _dr_objects
from records.recordset import RecordKey, RecordSet, normalize_name

__all__ = [
    "ACTION_CREATE",
    "ACTION_DELETE",
    "ACTION_UPSERT",
    "ADOPT",
    "CREATE",
    "DEFAULT_MAX_CHANGE_SHARE",
    "DEFAULT_MIN_OWNED_FOR_SHARE",
    "DELETE",
    "OWNERSHIP",
    "POLICIES",
    "POLICY_CREATE_ONLY",
    "POLICY_SYNC",
    "POLICY_UPSERT_ONLY",
    "UPDATE",
    "Change",
    "ChangeGroup",
    "ChangeRejected",
    "Conflict",
    "Plan",
    "Skipped",
    "ZoneConfig",
    "apply_changes",
    "apply_plan",
    "compute_plan",
    "record_owners",
    "summarize_ownership",
]

# --- planning --------------------------------------------------------------------------------------------


def compute_plan(
    desired: Iterable[Endpoint] | Desired,
    current: Iterable[RecordSet],
    config: ZoneConfig,
    *,
    adopt: Iterable[RecordKey | tuple[str, str, str] | str] = (),
    previous: Iterable[Endpoint] | Desired | None = None,
    scope: frozenset[str] | None = None,
    owned_total: int | None = None,
) -> Plan:
    """Plan the changes that make the zone serve `desired`, touching only records owned by `config.owner_id`.

    desired: every fresh cluster's endpoints, plus the frozen last-known endpoints of stale clusters (an
        unreachable cluster is not an empty cluster: leaving them out would plan deletes).
    current: every record set of the zone as the provider lists it (`recordset_from_route53`).
    adopt: record keys, or names (every desired record at that name), to take over from another owner id or
        from nobody; adopt groups are marked needs-approval.
    previous: the endpoints the last *applied* plan was computed from (optional). With them, reasons name the
        cluster a deleted source was in, and a record that differs although its sources did not is marked
        drift (the zone moved, not the clusters).
    scope: plan only these names (FQDNs, records.plan_scope): `desired` and `previous` hold the endpoints at
        them, `current` the record sets plan_scope.scoped_lookup_names selects; deletes are planned only at
        these names. The result is the whole-zone plan's at these names.
    owned_total: with a scope, the records the portal owns in the whole zone (for the share of them a plan
        may update or delete without a person).

    The result does not depend on the order of `desired` or `current`. ValueError when `current` lists a
    record set twice.
    """
    with collector_paused():
        return _compute_plan(
            desired, current, config, adopt=adopt, previous=previous, scope=scope, owned_total=owned_total
        )


def hold_names(plan: Plan, held: dict[str, str]) -> Plan:
    """The plan without the changes to names that must stay as they are in DNS for now (name -> why, the
    name lower case with its trailing dot). The held changes are listed as skipped with the reason, so the
    change set says what waits and why; they are planned again once the hold ends."""
    if not held:
        return plan
    kept, skipped = [], list(plan.skipped)
    for g in plan.groups:
        reason = held.get(g.key.name)
        if reason is None:
            kept.append(g)
        else:
            skipped.append(Skipped(key=g.key, kind=g.kind, reason=reason))
    if len(kept) == len(plan.groups):
        return plan
    return replace(plan, groups=tuple(kept), skipped=tuple(sorted(skipped, key=lambda s: s.key)))


@contextmanager
def collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector, and restore its state afterwards.

    Planning a large zone (and reading its state) allocates an object or two per record and creates no
    reference cycles; the generational collections those allocations trigger would walk the whole zone again
    and again (about 40 % of the planning time at 100,000 records).
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _compute_plan(
    desired: Iterable[Endpoint] | Desired,
    current: Iterable[RecordSet],
    config: ZoneConfig,
    *,
    adopt: Iterable[RecordKey | tuple[str, str, str] | str] = (),
    previous: Iterable[Endpoint] | Desired | None = None,
    scope: frozenset[str] | None = None,
    owned_total: int | None = None,
) -> Plan:
    """compute_plan without the collector pause."""
    if scope is not None:
        desired, previous = _in_scope(desired, scope), _in_scope(previous, scope)
    ctx = _Ctx(current, config)
    zone = config.zone
    want_all = (
        desired
        if isinstance(desired, Desired)
        else aggregate(
            desired,
            zone,
            managed_types=config.managed_types,
            subzones=config.subzones,
            alias_load_balancers=config.alias_load_balancers,
        )
    )
    prev: Previous | None = None
    if previous is not None:
        # read only at the keys that change: aggregated per name on first use, not the whole zone again
        prev = previous.records if isinstance(previous, Desired) else _PreviousByName(previous, zone, config)
    adopt_keys: set[tuple[str, str, str]] = set()
    adopt_names: set[str] = set()
    for a in adopt:
        if isinstance(a, str):
            adopt_names.add(normalize_name(a))
        else:
            adopt_keys.add((normalize_name(a[0]), a[1].upper(), a[2]))

    b = _Builder(ctx)
    for c in want_all.conflicts:
        b.conflicts.setdefault(c.name, []).append(c)
    if config.record_problem is not None:
        for dr in want_all.records.values():
            problem = config.record_problem(dr.record)
            if problem:
                b.conflict(dr.record.name, "provider", f"{dr.record.key}: {problem}", _dr_objects(dr))
    blocked = set(b.conflicts)
    me = config.owner_id
    cur = ctx.cur
    notes = list(want_all.notes)
    adopt_seen: set[tuple[str, str, str]] = set()
    owned_count = 0
    creates: list[tuple[tuple[str, str, str], DesiredRecord]] = []
    planned_adopt_deletes: set[tuple[str, str, str]] = set()

    naming = config.naming
    affixes = {t: naming.affixes(t) for t in ("A", "AAAA", *ctx.managed)}
    # prefix mode (no suffix): the TXT name is prefix + marker + the record name, one concatenation
    heads = {t: p + m for t, (p, m, _) in affixes.items()} if not naming.suffix else None
    wildcard = naming.wildcard_replacement
    mine = owned_by_pattern(me).fullmatch
    for k, dr in want_all.records.items():
        name, rtype, sid = k
        have = cur.get(k)
        if have is None:
            if not (blocked and name in blocked):
                creates.append((k, dr))
            continue
        # The common case inline: owned through the current-format TXT (the name the zone's naming computes),
        # which carries the record's routing, and nothing to change. The same decision as _Ctx.ownership +
        # _plan_owned (records.plan_groups), without their calls; a 100,000-record zone is nearly all this.
        # The TXT name is TxtNaming.txt_name, inlined.
        want = dr.record
        if heads is not None and not (wildcard and name[:2] == "*."):
            tname = heads[rtype] + name
        else:
            prefix, marker, suffix = affixes[rtype]
            first, _, rest_of_name = name.partition(".")
            if first == "*" and wildcard:
                first = wildcard
            tname = f"{prefix}{marker}{first}{suffix}.{rest_of_name}"
        t = cur.get((tname, "TXT", sid))
        if (
            t is not None
            and t.values
            and mine(t.values[0]) is not None
            and want.values == have.values
            and want.alias is None
            and have.alias is None
            and (want.ttl is None or want.ttl == have.ttl)
            and (want.routing is have.routing or want.routing == have.routing)
            and want.health_check_id == have.health_check_id
            and (t.routing is have.routing or t.routing == have.routing)
            and t.health_check_id == have.health_check_id
        ):
            owned_count += 1
            continue
        if k[1] == "TXT" and ctx.txt_owner(k) is not None:
            b.conflict(
                name, "ownership", f"{RecordKey(*k)} is an ownership record", (ctx.describe_current(k),)
            )
            continue
        o = ctx.ownership(have)
        if o is not None and o.owner == me:
            owned_count += 1
            if not (blocked and name in blocked):
                _plan_owned(b, k, dr, have, o, prev)
            continue
        if blocked and name in blocked:
            continue
        if k in adopt_keys or name in adopt_names:
            adopt_seen.add(k)
            _plan_adopt(b, k, dr, have, o)
            continue
        who = f"owned by {o.owner!r}" if o is not None else "not owned by anyone (no ownership TXT)"
        b.conflict(
            name,
            "not-owned",
            f"{RecordKey(*k)} already exists and is {who}; the portal leaves it alone unless an admin "
            "adopts it",
            (*_dr_objects(dr), ctx.describe_current(k)),
        )

    # Creates, once every record at a name is known: ExternalDNS creates in a (name, set id) row only when
    # every record there is ours; otherwise the name is somebody else's, and adding a type beside their record
    # would mix two owners in one answer.
    for k, dr in creates:
        name = k[0]
        row = _not_ours_in_row(ctx, k)
        if row and all(
            fk not in want_all.records and (fk in adopt_keys or name in adopt_names) for fk in row
        ):
            # Adopting the name replaces what is there: e.g. another owner's CNAME gives way to the portal's
            # A records. Those records are taken over and deleted in the same (approved) plan.
            for fk in row:
                adopt_seen.add(fk)
                if fk not in planned_adopt_deletes:
                    planned_adopt_deletes.add(fk)
                    _plan_adopt_delete(b, fk, dr)
            row = []
        if row:
            b.conflict(
                name,
                "not-owned",
                f"{RecordKey(*k)}: the name already has records the portal does not own",
                (*_dr_objects(dr), *(ctx.describe_current(fk) for fk in row)),
            )
            continue
        _plan_create(b, k, dr, prev)

    for k in sorted(adopt_keys - adopt_seen):
        if k not in want_all.records:
            notes.append(f"adopt {RecordKey(*k)}: no cluster publishes it, nothing to take over")
    for n in sorted(adopt_names):
        if not any(k[0] == n for k in want_all.records):
            notes.append(f"adopt {n}: no cluster publishes this name, nothing to take over")

    # A conflict anywhere on a name leaves the whole name as it is (its other record sets included).
    blocked |= set(b.conflicts)
    b.groups = [g for g in b.groups if g.key.name not in blocked]

    # Deletes: owned records nobody wants any more, built from the current state (exact match for Route53).
    managed = ctx.managed
    gone = [k for k in cur.keys() - want_all.records.keys() if k[1] in managed]
    if scope is not None:
        gone = [k for k in gone if k[0] in scope]  # the rest of `cur` is there as context only
    # What replaces a deleted record set at its name and type (round robin becoming weighted replaces the
    # set without an identifier by sets with one): read only when something goes.
    gone_at = {(k[0], k[1]) for k in gone}
    wanted_at: dict[tuple[str, str], list[RecordSet]] = {}
    if gone_at:
        for wk, wdr in want_all.records.items():
            if (wk[0], wk[1]) in gone_at:
                wanted_at.setdefault((wk[0], wk[1]), []).append(wdr.record)
    for k in gone:
        if not ctx.is_managed(k):
            continue
        have = ctx.get(k)
        assert have is not None  # noqa: S101 - k comes from the current state
        o = ctx.ownership(have)
        if o is None or o.owner != me:
            continue
        owned_count += 1
        if k[0] not in blocked:
            _plan_delete(b, k, have, o, prev, wanted_at.get((k[0], k[1]), ()))

    # The zone policy
    kept: list[ChangeGroup] = []
    skipped: list[Skipped] = []
    for g in b.groups:
        reason = _policy_blocks(config.policy, g)
        if reason:
            skipped.append(Skipped(g.key, g.kind, reason))
        else:
            kept.append(g)

    kept = _validate_projection(b, kept)
    kept.sort(key=lambda g: (_PHASE[g.kind] - (1 if g.replace else 0), g.key))  # apply order, and stable

    # Safety: what needs a person (DESIGN rule 3)
    approval: list[str] = []
    final: list[ChangeGroup] = []
    private_hits: list[str] = []
    for g in kept:
        flags: list[str] = []
        if config.public and g.after is not None and g.kind in (CREATE, UPDATE, ADOPT):
            before_vals = set(g.before.values) if g.before is not None else set()
            new_private = [v for v in policy.private_addresses(g.after) if v not in before_vals]
            if new_private:
                src = f" (from {', '.join(g.sources)})" if g.sources else ""
                addrs = ", ".join(new_private)
                msg = f"publishes private address {addrs} at {g.key} in public zone {zone}{src}"
                flags.append(msg)
                private_hits.append(msg)
        if g.kind == ADOPT:
            flags.append("adopt")
        if flags:
            g = replace(g, needs_approval=True, reasons=(*g.reasons, *(f for f in flags if f != "adopt")))
        final.append(g)
    approval.extend(private_hits)
    adopts = [g for g in final if g.kind == ADOPT]
    if adopts:
        shown = ", ".join(str(g.key) for g in sorted(adopts, key=lambda g: g.key)[:5])
        more = f" and {len(adopts) - 5} more" if len(adopts) > 5 else ""
        approval.append(f"takes over {len(adopts)} record(s) not owned by {me}: {shown}{more}")
    touched = sum(1 for g in final if g.kind in (UPDATE, DELETE))
    share_of = owned_count if scope is None or owned_total is None else max(owned_total, owned_count)
    if share_of >= config.min_owned_for_share and touched > config.max_change_share * share_of:
        approval.append(
            f"updates or deletes {touched} of the {share_of} records owned in this zone "
            f"({100 * touched / share_of:.0f} %, above the "
            f"{100 * config.max_change_share:.0f} % threshold)"
        )

    conflicts = tuple(
        c
        for name in sorted(b.conflicts)
        for c in sorted(b.conflicts[name], key=lambda c: (c.kind, c.message))
    )
    return Plan(
        zone=zone,
        owner_id=me,
        policy=config.policy,
        groups=tuple(final),
        conflicts=conflicts,
        skipped=tuple(sorted(skipped, key=lambda s: (s.key, s.kind))),
        notes=tuple(notes),
        approval_reasons=tuple(approval),
        owned_count=share_of,
    )


class Previous(Protocol):
    """The record the last applied plan wanted at a key (its reasons name what changed since)."""

    def get(self, key: tuple[str, str, str], /) -> DesiredRecord | None: ...


class _PreviousByName:
    """The previous endpoints as the plan reads them (`prev.get(key)`), aggregated a name at a time when first
    asked: the plan asks only where something changes, and aggregating a 100,000-endpoint zone whole took a
    fifth of its time. Aggregation is per name (its records, conflicts and aliases), so a name's
    records are the same as in the whole zone's aggregate."""

    __slots__ = ("_by_name", "_cache", "_config", "_zone")

    def __init__(self, endpoints: Iterable[Endpoint], zone: str, config: ZoneConfig) -> None:
        by_name: dict[str, list[Endpoint]] = {}
        for ep in endpoints:
            dn = ep.dns_name
            if dn[-1:] == ".":
                dn = dn[:-1]
            by_name.setdefault(dn.lower() + ".", []).append(ep)
        self._by_name, self._zone, self._config = by_name, zone, config
        self._cache: dict[str, dict[tuple[str, str, str], DesiredRecord]] = {}

    def get(self, key: tuple[str, str, str]) -> DesiredRecord | None:
        at = self._cache.get(key[0])
        if at is None:
            eps = self._by_name.get(key[0])
            cfg = self._config
            at = (
                aggregate(
                    eps,
                    self._zone,
                    managed_types=cfg.managed_types,
                    subzones=cfg.subzones,
                    alias_load_balancers=cfg.alias_load_balancers,
                ).records
                if eps
                else {}
            )
            self._cache[key[0]] = at
        return at.get(key)

    def __getitem__(self, key: tuple[str, str, str]) -> DesiredRecord:
        got = self.get(key)
        if got is None:
            raise KeyError(key)
        return got


def _in_scope(endpoints: Iterable[Endpoint] | Desired | None, scope: frozenset[str]) -> Any:
    # the endpoints at the scoped names (aggregated desired states are taken as they are)
    if endpoints is None or isinstance(endpoints, Desired):
        return endpoints
    return [ep for ep in endpoints if normalize_name(ep.dns_name) in scope]


def _not_ours_in_row(ctx: _Ctx, k: tuple[str, str, str]) -> list[tuple[str, str, str]]:
    # the managed records sharing k's name and set identifier (other types) that someone else owns, or nobody
    name, rtype, sid = k
    out: list[tuple[str, str, str]] = []
    for t in sorted(ctx.managed - {rtype}):
        ok = (name, t, sid)
        rs = ctx.get(ok)
        if rs is None or not ctx.is_managed(ok):
            continue
        o = ctx.ownership(rs)
        if o is None or o.owner != ctx.config.owner_id:
            out.append(ok)
    return out


def _policy_blocks(policy_name: str, g: ChangeGroup) -> str:
    if policy_name == POLICY_SYNC:
        return ""
    if g.kind == DELETE:
        return f"zone policy {policy_name} does not delete"
    if policy_name == POLICY_CREATE_ONLY and g.kind != CREATE:
        return f"zone policy {policy_name} only creates records"
    return ""
