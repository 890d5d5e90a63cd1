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

Pure: no Django, boto3 or Kubernetes import, so it has fast exhaustive tests.
"""

from __future__ import annotations

import gc
import hashlib
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from operator import attrgetter
from typing import Any, Protocol

from records import policy
from records.aggregate import (
    DEFAULT_MANAGED_TYPES,
    Conflict,
    Desired,
    DesiredRecord,
    aggregate,
    describe_endpoint,
    describe_source,
)
from records.endpoint import Endpoint
from records.ownership import (
    DEFAULT_TXT_NAMING,
    LABEL_RESOURCE,
    Ownership,
    Registry,
    TxtNaming,
    explain_apex,
    owned_by_pattern,
    ownership_in_value,
    ownership_record,
    parse_ownership_value,
    read_registry,
)
from records.recordset import (
    DEFAULT_TTL,
    RecordKey,
    RecordSet,
    canonical_value,
    in_zone,
    normalize_name,
    recordset_to_route53,
)

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

POLICY_SYNC = "sync"
POLICY_UPSERT_ONLY = "upsert-only"
POLICY_CREATE_ONLY = "create-only"
POLICIES = (POLICY_SYNC, POLICY_UPSERT_ONLY, POLICY_CREATE_ONLY)

# Group kinds. An update that Route53 cannot do in place is still an "update", with `replace=True`.
CREATE = "create"
UPDATE = "update"
DELETE = "delete"
ADOPT = "adopt"  # take a record over from another owner id, or from nobody; always needs approval
OWNERSHIP = "ownership"  # only the ownership TXT changes (format migration, repair); DNS answers unchanged

# Route53 change actions
ACTION_CREATE = "CREATE"
ACTION_UPSERT = "UPSERT"
ACTION_DELETE = "DELETE"

# DESIGN rule 3: more than this share of the owned records updated or deleted waits for a person...
DEFAULT_MAX_CHANGE_SHARE = 0.30
# ...once the zone owns enough records for a share to mean something (3 of 4 is not a mass change).
DEFAULT_MIN_OWNED_FOR_SHARE = 10

# Apply order: deletes free names (A → CNAME), replacements next, in-place updates, creates last.
_PHASE = {DELETE: 0, UPDATE: 2, ADOPT: 2, OWNERSHIP: 3, CREATE: 4}
_ACTION_ORDER = {ACTION_DELETE: 0, ACTION_UPSERT: 1, ACTION_CREATE: 2}


@dataclass(frozen=True, slots=True)
class ZoneConfig:
    """What the plan needs to know about a zone.

    `zone` is the apex FQDN; `owner_id` the TXT owner id the portal writes in this zone (one per zone, never
    shared with an ExternalDNS instance); `naming` the TXT prefix/suffix; `public` whether the zone is served
    on the internet (private addresses then need approval); `also_read` other namings whose ownership TXTs are
    recognised (ExternalDNS instances with another prefix, or this zone's previous naming).
    """

    zone: str
    owner_id: str
    policy: str = POLICY_SYNC
    naming: TxtNaming = DEFAULT_TXT_NAMING
    public: bool = True
    managed_types: frozenset[str] = DEFAULT_MANAGED_TYPES
    max_change_share: float = DEFAULT_MAX_CHANGE_SHARE
    min_owned_for_share: int = DEFAULT_MIN_OWNED_FOR_SHARE
    also_read: tuple[TxtNaming, ...] = ()
    subzones: tuple[str, ...] = ()  # hosted zones below this one: their names are theirs, not this zone's
    # Route53: a CNAME to a load balancer (any host name in a zone AWS serves aliases for) is written as alias
    # A and AAAA records, as ExternalDNS's AWS provider does; other providers keep the CNAME.
    alias_load_balancers: bool = True
    # What the zone's provider cannot serve as a record set asks, in a sentence ("" when it can): such names
    # are refused as conflicts and stay as they are, never simplified. None: every record set can be served.
    record_problem: Callable[[RecordSet], str] | None = None

    def __post_init__(self) -> None:
        if not self.zone.strip(". "):
            raise ValueError("zone must be a domain name such as example.com.")
        object.__setattr__(self, "zone", normalize_name(self.zone))
        if not self.owner_id:
            raise ValueError("owner id must not be empty (ExternalDNS refuses an empty --txt-owner-id)")
        if any(c in self.owner_id for c in ',="'):
            raise ValueError(
                f"owner id {self.owner_id!r} must not contain ',', '=' or '\"' (TXT label syntax)"
            )
        if self.policy not in POLICIES:
            raise ValueError(f"policy {self.policy!r} must be one of {', '.join(POLICIES)}")
        if not 0 < self.max_change_share <= 1:
            raise ValueError("max_change_share must be a fraction in (0, 1]")
        object.__setattr__(self, "managed_types", frozenset(t.upper() for t in self.managed_types))
        subs = {normalize_name(z) for z in self.subzones}
        object.__setattr__(self, "subzones", tuple(sorted(z for z in subs if z.endswith("." + self.zone))))


@dataclass(frozen=True, slots=True)
class Change:
    """One Route53 change: an action on a record set; `role` is "record" or "ownership" (its TXT)."""

    action: str
    record: RecordSet
    role: str = "record"

    def to_route53(self, *, default_alias_zone_id: str = "") -> dict[str, Any]:
        """The `Changes[]` entry of a ChangeResourceRecordSets request."""
        return {
            "Action": self.action,
            "ResourceRecordSet": recordset_to_route53(
                self.record, default_alias_zone_id=default_alias_zone_id
            ),
        }


@dataclass(frozen=True, slots=True)
class ChangeGroup:
    """The changes for one record, applied together: the record and its ownership TXT.

    `replace` says the update must be DELETE + CREATE (routing policy or alias-ness changes; Route53 cannot
    UPSERT across them). `drift` marks groups that restore a record changed outside the portal.
    """

    kind: str
    key: RecordKey
    changes: tuple[Change, ...]
    reasons: tuple[str, ...]
    before: RecordSet | None = None
    after: RecordSet | None = None
    sources: tuple[str, ...] = ()
    replace: bool = False
    drift: bool = False
    needs_approval: bool = False

    @property
    def name(self) -> str:
        return self.key.name

    def to_dict(self, *, default_alias_zone_id: str = "") -> dict[str, Any]:
        def rr(rs: RecordSet | None) -> dict[str, Any] | None:
            return None if rs is None else _route53_lenient(rs, default_alias_zone_id)

        return {
            "kind": self.kind,
            "name": self.key.name,
            "type": self.key.type,
            "set_identifier": self.key.set_identifier,
            "replace": self.replace,
            "drift": self.drift,
            "needs_approval": self.needs_approval,
            "reasons": list(self.reasons),
            "sources": list(self.sources),
            "before": rr(self.before),
            "after": rr(self.after),
            "changes": [
                {"Action": c.action, "Role": c.role, "ResourceRecordSet": rr(c.record)} for c in self.changes
            ],
        }


@dataclass(frozen=True, slots=True)
class Skipped:
    """A change the zone's policy holds back (e.g. a delete under upsert-only), shown so nothing is silent."""

    key: RecordKey
    kind: str
    reason: str

    def to_dict(self) -> dict[str, str]:
        return {"name": self.key.name, "type": self.key.type, "set_identifier": self.key.set_identifier,
                "kind": self.kind, "reason": self.reason}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Plan:
    """The result of planning one zone. Groups are in apply order; everything else is sorted."""

    zone: str
    owner_id: str
    policy: str
    groups: tuple[ChangeGroup, ...] = ()
    conflicts: tuple[Conflict, ...] = ()
    skipped: tuple[Skipped, ...] = ()
    notes: tuple[str, ...] = ()
    approval_reasons: tuple[str, ...] = ()
    owned_count: int = 0

    @property
    def needs_approval(self) -> bool:
        """Never applied automatically: a person must approve (DESIGN rule 3)."""
        return bool(self.approval_reasons)

    @property
    def is_empty(self) -> bool:
        """No change to make (conflicts and notes may still be worth showing)."""
        return not self.groups

    def counts(self) -> dict[str, int]:
        """Groups per kind, plus conflicts and skipped, for list pages and summaries."""
        out = {k: 0 for k in (CREATE, UPDATE, DELETE, ADOPT, OWNERSHIP)}
        for g in self.groups:
            out[g.kind] += 1
        out["conflicts"] = len(self.conflicts)
        out["skipped"] = len(self.skipped)
        return out

    def changes(self) -> list[Change]:
        """Every Route53 change in apply order: all DELETEs, then UPSERTs, then CREATEs, each in group order.

        Deleting first frees names (A → CNAME) and lets a routing policy change of several set identifiers of
        one name go through; a batching step must keep each group (record + TXT) and each name in one request.
        """
        flat = [c for g in self.groups for c in g.changes]
        return sorted(flat, key=lambda c: _ACTION_ORDER[c.action])  # stable: group order within an action

    def fingerprint(self) -> str:
        """A stable digest of the changes: equal plans (same changes) have equal fingerprints."""
        payload = [
            [g.kind, *g.key, [[c.action, _route53_lenient(c.record, "")] for c in g.changes]]
            for g in self.groups
        ]
        text = json.dumps([self.zone, payload], sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    def to_dict(self, *, default_alias_zone_id: str = "") -> dict[str, Any]:
        """JSON-ready form (preview_plan --output json, change set storage)."""
        return {
            "zone": self.zone,
            "owner_id": self.owner_id,
            "policy": self.policy,
            "needs_approval": self.needs_approval,
            "approval_reasons": list(self.approval_reasons),
            "summary": {**self.counts(), "owned": self.owned_count},
            "fingerprint": self.fingerprint(),
            "groups": [g.to_dict(default_alias_zone_id=default_alias_zone_id) for g in self.groups],
            # every Route53 change in the order it is applied (see changes())
            "apply_order": [
                {"Action": c.action, "ResourceRecordSet": _route53_lenient(c.record, default_alias_zone_id)}
                for c in self.changes()
            ],
            "conflicts": [c.to_dict() for c in self.conflicts],
            "skipped": [s.to_dict() for s in self.skipped],
            "notes": list(self.notes),
        }


def _route53_lenient(rs: RecordSet, default_alias_zone_id: str) -> dict[str, Any]:
    # For display and fingerprints an alias target whose hosted zone the provider has yet to resolve is fine
    if rs.alias is not None and not (rs.alias.hosted_zone_id or default_alias_zone_id):
        return recordset_to_route53(rs, default_alias_zone_id="(resolved by the provider)")
    return recordset_to_route53(rs, default_alias_zone_id=default_alias_zone_id)


# --- the diff --------------------------------------------------------------------------------------------


def _needs_replace(old: RecordSet, new: RecordSet) -> bool:
    # ExternalDNS (aws.go): an update becomes DELETE + CREATE when alias-ness or the routing policy changes;
    # Route53 rejects an UPSERT that turns e.g. a weighted record set into a latency one.
    return (old.alias is None) != (new.alias is None) or old.routing.policies != new.routing.policies


def _unchanged(want: RecordSet, have: RecordSet) -> bool:
    # Fast equality for the diff's common case: plain record sets with identical values. Anything else goes
    # through _diff, which decides the same way, only slower.
    return (
        want.values == have.values
        and want.alias is None
        and have.alias is None
        and (want.ttl is None or want.ttl == have.ttl)
        and (want.routing is have.routing or want.routing == have.routing)
        and want.health_check_id == have.health_check_id
    )


def _diff(want: RecordSet, have: RecordSet) -> list[str]:
    """What differs, as reasons ("target changed 1.2.3.4 → 5.6.7.8"); empty when nothing does."""
    out: list[str] = []
    rtype = want.type
    if want.alias is not None or have.alias is not None:
        if want.alias is None or have.alias is None:
            out.append(
                f"{'alias' if have.alias else 'plain'} record becomes {'alias' if want.alias else 'plain'}: "
                f"{have.describe_values()} → {want.describe_values()}"
            )
        else:
            wa, ha = want.alias, have.alias
            if canonical_value("CNAME", wa.dns_name) != canonical_value("CNAME", ha.dns_name):
                out.append(f"alias target changed {ha.dns_name} → {wa.dns_name}")
            if wa.evaluate_target_health != ha.evaluate_target_health:
                out.append(
                    f"evaluate target health {ha.evaluate_target_health} → {wa.evaluate_target_health}"
                )
            if wa.hosted_zone_id and wa.hosted_zone_id != ha.hosted_zone_id:
                out.append(f"alias hosted zone changed {ha.hosted_zone_id} → {wa.hosted_zone_id}")
    else:
        if want.values != have.values:
            w = {canonical_value(rtype, v): v for v in want.values}
            h = {canonical_value(rtype, v): v for v in have.values}
            if w.keys() != h.keys():
                added = [w[k] for k in sorted(w.keys() - h.keys())]
                removed = [h[k] for k in sorted(h.keys() - w.keys())]
                if len(added) == 1 and len(removed) == 1:
                    out.append(f"target changed {removed[0]} → {added[0]}")
                else:
                    if added:
                        out.append(f"target{'s' if len(added) > 1 else ''} added {', '.join(added)}")
                    if removed:
                        out.append(f"target{'s' if len(removed) > 1 else ''} removed {', '.join(removed)}")
        # TTL only when configured: an unset TTL leaves whatever the zone holds (ExternalDNS: no ping-pong)
        if want.ttl is not None and want.ttl != have.ttl:
            out.append(f"TTL changed {have.ttl} → {want.ttl}")
    if want.routing != have.routing:
        out.append(f"routing changed {have.routing.describe()} → {want.routing.describe()}")
    if want.health_check_id != have.health_check_id:
        out.append(
            f"health check changed {have.health_check_id or '(none)'} → {want.health_check_id or '(none)'}"
        )
    return out


def _after(want: RecordSet, have: RecordSet | None) -> RecordSet:
    """The record set to write: desired, with what desired leaves open taken from the zone or defaults."""
    ttl = want.ttl
    alias = want.alias
    if alias is None:
        if ttl is None:
            # not configured: keep the zone's TTL on updates, the AWS default on creates
            ttl = (
                have.ttl if have is not None and have.alias is None and have.ttl is not None else DEFAULT_TTL
            )
    elif (
        not alias.hosted_zone_id
        and have is not None
        and have.alias is not None
        and canonical_value("CNAME", have.alias.dns_name) == canonical_value("CNAME", alias.dns_name)
    ):
        # the provider resolved the target's hosted zone when it created the alias; keep it
        alias = replace(alias, hosted_zone_id=have.alias.hosted_zone_id)
    if ttl == want.ttl and alias is want.alias:
        return want
    return replace(want, ttl=ttl, alias=alias)


def _txt_equivalent(existing: RecordSet, wanted: RecordSet, owner_id: str) -> bool:
    # The ownership TXT is right when it names us and carries the record's routing. A stale resource label
    # alone is not worth a change (ExternalDNS does not compare labels either); it is rewritten on the next
    # update.
    if existing.routing != wanted.routing or existing.health_check_id != wanted.health_check_id:
        return False
    labels = parse_ownership_value(existing.values[0]) if existing.values else None
    return labels is not None and labels.get("owner") == owner_id


# --- planning --------------------------------------------------------------------------------------------


_KEY = attrgetter("name", "type", "set_identifier")  # a record set's key, computed in C


class _Ctx:
    """The current state, indexed for planning, with ownership looked up on demand.

    ExternalDNS's registry reads every TXT of the zone into a reverse index first. The plan needs ownership
    only for the records it looks at, and ExternalDNS prefers the typed TXT, whose name the zone's naming
    computes from the record (forward); so that one is looked up directly, and the full reverse index
    (legacy and `cname-` TXTs, other namings) is built only when a record is not owned through it.
    """

    __slots__ = (
        "_by_name",
        "_registry",
        "_txt_owner",
        "below",
        "config",
        "cur",
        "dot_zone",
        "managed",
        "zone",
    )

    def __init__(self, current: Iterable[RecordSet], config: ZoneConfig) -> None:
        self.config = config
        self.zone = config.zone
        self.dot_zone = "." + config.zone
        self.managed = config.managed_types
        self.below = tuple("." + z for z in config.subzones)
        records = current if isinstance(current, list) else list(current)
        # one index of the zone by key, built without a Python-level loop (a large zone: 200,000 record sets)
        self.cur: dict[tuple[str, str, str], RecordSet] = dict(zip(map(_KEY, records), records, strict=True))
        if len(self.cur) != len(records):
            seen: set[tuple[str, str, str]] = set()
            for rs in records:
                k = (rs.name, rs.type, rs.set_identifier)
                if k in seen:
                    raise ValueError(f"the current state lists {RecordKey(*k)} twice")
                seen.add(k)
        self._txt_owner: dict[tuple[str, str, str], str | None] = {}
        self._registry: Registry | None = None
        self._by_name: dict[str, list[tuple[str, str, str]]] = {}

    def get(self, k: tuple[str, str, str]) -> RecordSet | None:
        """The current record set at key `k`, or None."""
        return self.cur.get(k)

    @property
    def registry(self) -> Registry:
        if self._registry is None:
            cfg = self.config
            txts = [rs for rs in self.cur.values() if rs.type == "TXT"]
            self._registry = read_registry(txts, cfg.naming, also_read=cfg.also_read)
        return self._registry

    def txt_owner(self, tk: tuple[str, str, str]) -> str | None:
        """The owner id the TXT at `tk` names; None when there is no TXT there, or no ownership record."""
        if tk in self._txt_owner:
            return self._txt_owner[tk]
        t = self.cur.get(tk) if tk[1] == "TXT" else None
        owner = ownership_in_value(t.values[0])[1] if t is not None and t.values else None
        self._txt_owner[tk] = owner
        return owner

    def ownership(self, rs: RecordSet) -> Ownership | None:
        """Who owns `rs` (ExternalDNS's lookup order: typed TXT, `cname-` for alias A, legacy untyped)."""
        cfg = self.config
        t = self.cur.get((cfg.naming.txt_name(rs.name, rs.type), "TXT", rs.set_identifier))
        if t is not None and t.values:
            text, owner = ownership_in_value(t.values[0])
            if owner is not None:
                return Ownership(owner, text, t, "typed")
        got = self.registry.owner_of(rs)
        if got is not None and got.form == "typed":
            # typed, but not under the name the zone's naming gives it (another naming or an old template)
            got = got._replace(form="renamed")
        return got

    def is_managed(self, k: tuple[str, str, str]) -> bool:
        """A record set the plan may manage: a managed type, in the zone, not an ownership TXT."""
        if k[1] not in self.managed:
            return False
        name = k[0]
        if name != self.zone and not name.endswith(self.dot_zone):
            return False
        if self.below and ("." + name).endswith(self.below):
            return False  # glue or leftovers under a delegated zone: that zone's business
        return not (k[1] == "TXT" and self.txt_owner(k) is not None)

    def keys_at(self, names: Iterable[str]) -> dict[str, list[tuple[str, str, str]]]:
        """The current record set keys at each of `names` (one pass over the zone for all missing names)."""
        missing = {n for n in names if n not in self._by_name}
        if missing:
            for n in missing:
                self._by_name[n] = []
            hits = [k for k in self.cur if k[0] in missing]
            for k in hits:
                self._by_name[k[0]].append(k)
        return self._by_name

    def describe_current(self, k: tuple[str, str, str]) -> str:
        rs = self.get(k)
        if rs is None:
            return f"{RecordKey(*k)} (not in the zone)"
        if k[1] == "TXT" and self.txt_owner(k) is not None:
            who = f"ownership record of {self.txt_owner(k) or '?'}"
        elif not self.is_managed(k):
            who = "not managed by the portal"
        else:
            o = self.ownership(rs)
            if o is None:
                who = "unowned"
            else:
                who = f"owned by {o.owner}" + (f" ({o.resource})" if o.resource else "")
        return f"existing {RecordKey(*k)} {rs.describe_values()} ({who})"


class _Builder:
    """Collects candidate groups and conflicts while planning."""

    def __init__(self, ctx: _Ctx) -> None:
        self.ctx = ctx
        self.groups: list[ChangeGroup] = []
        self.conflicts: dict[str, list[Conflict]] = {}

    def conflict(self, name: str, kind: str, message: str, objects: Iterable[str]) -> None:
        self.conflicts.setdefault(name, []).append(Conflict(name, kind, message, tuple(sorted(set(objects)))))

    def txt_in_place(self, record: RecordSet, o: Ownership) -> bool:
        """Whether the TXT that makes `record` ours is the current-format one and carries its routing.

        The fast path for the unchanged records that make up almost all of a zone: no lookup, no TXT built.
        """
        t = o.txt
        # "typed" ownership was found under the name the zone's naming computes (see _Ctx.ownership)
        return (
            o.form == "typed"
            and (t.routing is record.routing or t.routing == record.routing)
            and t.health_check_id == record.health_check_id
        )

    def txt_changes(
        self, record: RecordSet, dr: DesiredRecord, *, adopting: bool, exact: bool
    ) -> tuple[list[Change], bool] | None:
        """The ownership TXT changes that make `record` ours (and whether they differ at all).

        `exact`: write the TXT as it should be now (creates, updates, adopts: the resource label of the
        current source, as ExternalDNS writes it); otherwise a TXT that names us and carries the routing is
        left alone.

        None after reporting a conflict: the TXT cannot be written (outside the zone, or its name is taken).
        """
        ctx = self.ctx
        cfg = ctx.config
        txt = ownership_record(record, cfg.owner_id, dr.labels, cfg.naming)
        if not in_zone(txt.name, cfg.zone) or txt.name == cfg.zone:
            self.conflict(
                record.name,
                "ownership",
                f"{record.key}: its ownership record would be {txt.name}, outside the zone. "
                + explain_apex(cfg.naming, cfg.zone),
                _dr_objects(dr),
            )
            return None
        if any(len(label) > policy.MAX_LABEL for label in txt.name[: -len(cfg.zone) - 1].split(".")):
            self.conflict(
                record.name,
                "ownership",
                f"{record.key}: its ownership record name {txt.name} has a label over 63 characters",
                _dr_objects(dr),
            )
            return None
        tk = (txt.name, "TXT", txt.set_identifier)
        existing = ctx.cur.get(tk)
        if existing is None:
            return [Change(ACTION_CREATE, txt, "ownership")], True
        owner = ctx.txt_owner(tk)
        if owner is None:
            self.conflict(
                record.name,
                "ownership",
                f"{record.key}: {txt.name} already holds a TXT record that is not an ownership record",
                (*_dr_objects(dr), ctx.describe_current(tk)),
            )
            return None
        if owner != cfg.owner_id and not adopting:
            self.conflict(
                record.name,
                "not-owned",
                f"{record.key}: ownership record {txt.name} names owner {owner!r}; adopt the record to take "
                "it over",
                (*_dr_objects(dr), ctx.describe_current(tk)),
            )
            return None
        if existing == txt:
            return [], False
        if not exact and owner == cfg.owner_id and _txt_equivalent(existing, txt, cfg.owner_id):
            return [], False
        if _needs_replace(existing, txt):
            return [
                Change(ACTION_DELETE, existing, "ownership"),
                Change(ACTION_CREATE, txt, "ownership"),
            ], True
        return [Change(ACTION_UPSERT, txt, "ownership")], True


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
        # _plan_owned below, without their calls; a 100,000-record zone is nearly all this. The TXT name is
        # TxtNaming.txt_name, inlined.
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


def _dr_objects(dr: DesiredRecord) -> tuple[str, ...]:
    """The objects behind a desired record, with what they ask for (for conflict listings)."""
    return tuple(sorted({describe_endpoint(e) for e in dr.endpoints}))


def _policy_blocks(policy_name: str, g: ChangeGroup) -> str:
    if policy_name == POLICY_SYNC:
        return ""
    if g.kind == DELETE:
        return f"zone policy {policy_name} does not delete"
    if policy_name == POLICY_CREATE_ONLY and g.kind != CREATE:
        return f"zone policy {policy_name} only creates records"
    return ""


def _plan_create(b: _Builder, k: tuple[str, str, str], dr: DesiredRecord, prev: Previous | None) -> None:
    after = _after(dr.record, None)
    got = b.txt_changes(after, dr, adopting=False, exact=True)
    if got is None:
        return
    txt_changes, _ = got
    sources = dr.sources
    was = prev.get(k) if prev is not None else None
    drift = was is not None and was.record == dr.record
    if drift:
        reasons = (
            f"drift: missing from the zone (deleted outside the portal); restoring {', '.join(sources)}",
        )
    else:
        reasons = ("new " + ", ".join(sources),)
    b.groups.append(
        ChangeGroup(
            kind=CREATE,
            key=RecordKey(*k),
            changes=(Change(ACTION_CREATE, after), *txt_changes),
            reasons=reasons,
            after=after,
            sources=sources,
            drift=drift,
        )
    )


def _update_changes(have: RecordSet, after: RecordSet) -> tuple[list[Change], bool]:
    if _needs_replace(have, after):
        return [Change(ACTION_DELETE, have), Change(ACTION_CREATE, after)], True
    return [Change(ACTION_UPSERT, after)], False


def _explain_update(
    k: tuple[str, str, str], dr: DesiredRecord, have: RecordSet, diffs: list[str], prev: Previous | None
) -> tuple[tuple[str, ...], bool]:
    """Reasons for an update, with sources for added targets and deleted sources for removed ones."""
    p = prev.get(k) if prev is not None else None
    if p is not None and p.record == dr.record:
        # The sources asked for the same thing last time: the zone moved, not the clusters.
        return tuple(f"drift: {d} (changed outside the portal)" for d in diffs), True
    out: list[str] = []
    rtype = dr.record.type
    have_canon = {canonical_value(rtype, v) for v in have.values}
    want_canon = {canonical_value(rtype, v) for v in dr.record.values}
    for d in diffs:
        out.append(d)
    added = [v for v in dr.record.values if canonical_value(rtype, v) not in have_canon]
    for v in added:
        src = dr.sources_of(v)
        if src:
            out.append(f"{v} published by {', '.join(src)}")
    if p is not None:
        now_clusters = set(dr.clusters)
        for v in have.values:
            if canonical_value(rtype, v) in want_canon:
                continue
            gone = sorted({e.cluster for e in p.endpoints if v in e.targets} - now_clusters)
            if gone:
                out.append(f"{v}: source deleted in {', '.join(c or '(unnamed cluster)' for c in gone)}")
    return tuple(out), False


def _plan_owned(
    b: _Builder,
    k: tuple[str, str, str],
    dr: DesiredRecord,
    have: RecordSet,
    o: Ownership,
    prev: Previous | None,
) -> None:
    want = dr.record
    if _unchanged(want, have) and b.txt_in_place(have, o):
        return  # the common case, kept cheap: a 100,000-record zone is mostly this
    diffs = _diff(want, have)
    after = _after(want, have) if diffs else have
    got = b.txt_changes(after, dr, adopting=False, exact=bool(diffs))
    if got is None:
        return
    txt_changes, txt_differs = got
    if not diffs:
        if not txt_differs:
            return
        if o.form == "renamed":
            why = f"ownership record moved to this zone's TXT naming (was {o.txt.name})"
        elif o.form != "typed":
            why = f"ownership record moved to the current TXT format (was {o.form} TXT {o.txt.name})"
        else:
            why = "ownership record repaired: it did not carry the record's routing fields or owner"
        b.groups.append(
            ChangeGroup(
                kind=OWNERSHIP,
                key=RecordKey(*k),
                changes=tuple(txt_changes),
                reasons=(why,),
                before=have,
                after=have,
                sources=dr.sources,
            )
        )
        return
    rec_changes, is_replace = _update_changes(have, after)
    reasons, drift = _explain_update(k, dr, have, diffs, prev)
    if is_replace:
        reasons = (*reasons, "routing policy or alias changes: Route53 needs DELETE + CREATE, not UPSERT")
    b.groups.append(
        ChangeGroup(
            kind=UPDATE,
            key=RecordKey(*k),
            changes=_order_group(rec_changes + txt_changes),
            reasons=reasons,
            before=have,
            after=after,
            sources=dr.sources,
            replace=is_replace,
            drift=drift,
        )
    )


def _plan_adopt(
    b: _Builder, k: tuple[str, str, str], dr: DesiredRecord, have: RecordSet, o: Ownership | None
) -> None:
    diffs = _diff(dr.record, have)
    after = _after(dr.record, have) if diffs else have
    got = b.txt_changes(after, dr, adopting=True, exact=True)
    if got is None:
        return
    txt_changes, _ = got
    txt_changes += [Change(ACTION_DELETE, t, "ownership") for t in _foreign_claims(b.ctx, have, o)]
    who = f"from owner {o.owner!r}" if o is not None else "unowned record (no ownership TXT)"
    rec_changes: list[Change] = []
    is_replace = False
    if diffs:
        rec_changes, is_replace = _update_changes(have, after)
    b.groups.append(
        ChangeGroup(
            kind=ADOPT,
            key=RecordKey(*k),
            changes=_order_group(rec_changes + txt_changes),
            reasons=(f"adopt: take over {who} for {', '.join(dr.sources)}", *diffs),
            before=have,
            after=after,
            sources=dr.sources,
            replace=is_replace,
        )
    )


def _foreign_claims(ctx: _Ctx, have: RecordSet, o: Ownership | None) -> list[RecordSet]:
    """The other owners' ownership TXTs that claim `have`, other than the one at this zone's own TXT name.

    ExternalDNS reads only its own naming, in its order: the typed TXT (`cname-` for an alias A record), then
    the legacy untyped one. An instance with another naming (its default `a-` names beside the portal's
    `_dnsportal-a.` prefix), or reading an alias A record by its `cname-` TXT, never sees the TXT an adoption
    writes: left its claim, it stays the owner in its own eyes, sets the record back on its next loop and
    deletes it once its cluster stops publishing the name. The adoption deletes these claims in the batch of
    its takeover (Route53 applies a batch whole), so every reader finds the record not its own from then on.
    A legacy TXT that may also own another type at the name (ExternalDNS falls back to it for every type but
    AAAA) is left alone: deleting it would take those records from their owner too.
    """
    cfg = ctx.config
    name, sid = have.name, have.set_identifier
    mine = (cfg.naming.txt_name(name, have.type), "TXT", sid)
    types = (have.type, "CNAME") if have.type == "A" and have.alias is not None else (have.type,)
    others = [k for k in ctx.keys_at([name])[name] if k[2] == sid and k[1] not in ("TXT", "AAAA", have.type)]
    keys: set[tuple[str, str, str]] = set()
    for nm in (cfg.naming, *cfg.also_read):
        keys.update((nm.txt_name(name, t), "TXT", sid) for t in types)
        if not nm.type_in_affix and have.type != "AAAA" and not others:
            prefix, _marker, suffix = nm.affixes(have.type)
            first, dot, rest = name[:-1].partition(".")
            if first == "*" and nm.wildcard_replacement:
                first = nm.wildcard_replacement
            keys.add((prefix + first + suffix + dot + rest + ".", "TXT", sid))
    if o is not None and (o.form != "legacy" or not others):
        keys.add((o.txt.name, "TXT", o.txt.set_identifier))
    keys.discard(mine)
    return [ctx.cur[tk] for tk in sorted(keys) if ctx.txt_owner(tk) not in (None, cfg.owner_id)]


def _plan_adopt_delete(b: _Builder, k: tuple[str, str, str], dr: DesiredRecord) -> None:
    """Take over a record that stands in the way of an adopted name's desired records, and delete it."""
    ctx = b.ctx
    have = ctx.get(k)
    assert have is not None  # noqa: S101 - k comes from the current state
    o = ctx.ownership(have)
    changes = [Change(ACTION_DELETE, have)]
    # its ownership TXT at this zone's name goes with it, whoever it names (the record is being taken over)
    tk = (ctx.config.naming.txt_name(have.name, have.type), "TXT", have.set_identifier)
    if ctx.txt_owner(tk) is not None:
        changes.append(Change(ACTION_DELETE, ctx.cur[tk], "ownership"))
    changes += [Change(ACTION_DELETE, t, "ownership") for t in _foreign_claims(ctx, have, o)]
    who = f"from owner {o.owner!r}" if o is not None else "unowned record (no ownership TXT)"
    b.groups.append(
        ChangeGroup(
            kind=ADOPT,
            key=RecordKey(*k),
            changes=tuple(changes),
            reasons=(
                f"adopt: take over {who} and delete it to make way for {dr.record.key} "
                f"({', '.join(dr.sources)})",
            ),
            before=have,
            sources=dr.sources,
        )
    )


def _routing_name(rs: RecordSet) -> str:
    """ "weighted", "failover", ...; simple routing with several values is round robin."""
    policy = rs.routing.policy
    if policy == "simple" and len(rs.values) > 1:
        return "round robin"
    return policy


def _routing_change(have: RecordSet, replacements: Sequence[RecordSet]) -> str:
    """Why `have` goes when other record sets take its name and type with another routing policy, or ""."""
    if not replacements:
        return ""
    before = _routing_name(have)
    after = sorted({_routing_name(r) for r in replacements})
    if after == [before]:
        return ""  # the same policy under another set identifier: its sources tell the story
    reason = f"routing changed from {before} to {', '.join(after)}"
    ids = sorted(r.set_identifier for r in replacements if r.set_identifier)
    if ids:
        reason += ": replaced by record sets " + ", ".join(f"[{i}]" for i in ids)
    return reason


def _plan_delete(
    b: _Builder,
    k: tuple[str, str, str],
    have: RecordSet,
    o: Ownership,
    prev: Previous | None,
    replacements: Sequence[RecordSet] = (),
) -> None:
    ctx = b.ctx
    changes = [Change(ACTION_DELETE, have)]
    cfg = ctx.config
    # Delete the current-format TXT with the record; legacy and pre-v0.22 `cname-` TXTs are left alone, as
    # ExternalDNS leaves them (one legacy TXT may own several types of a name).
    tk = (cfg.naming.txt_name(have.name, have.type), "TXT", have.set_identifier)
    if ctx.txt_owner(tk) == cfg.owner_id:
        changes.append(Change(ACTION_DELETE, ctx.cur[tk], "ownership"))
    p = prev.get(k) if prev is not None else None
    if p is not None:
        clusters = ", ".join(c or "(unnamed cluster)" for c in p.clusters)
        reason = f"source deleted in {clusters} ({', '.join(p.sources)})"
        sources = p.sources
    else:
        resource = o.labels.get(LABEL_RESOURCE, "")
        reason = "no cluster publishes it any more" + (f" (last written for {resource})" if resource else "")
        sources = (describe_source("", resource),) if resource else ()
    reason = _routing_change(have, replacements) or reason
    b.groups.append(
        ChangeGroup(
            kind=DELETE,
            key=RecordKey(*k),
            changes=tuple(changes),
            reasons=(reason,),
            before=have,
            sources=sources,
        )
    )


def _order_group(changes: list[Change]) -> tuple[Change, ...]:
    # Inside a group: DELETEs first (a replacement frees its key before re-creating it), then UPSERT, CREATE.
    return tuple(sorted(changes, key=lambda c: _ACTION_ORDER[c.action]))


def _validate_projection(b: _Builder, groups: list[ChangeGroup]) -> list[ChangeGroup]:
    """Drop every group of a name whose projected record sets would break Route53's rules; report why.

    The projection is the zone as it will be after the changes: owned, foreign and planned record sets
    together (a CNAME planned beside someone else's A record, a latency set beside foreign weighted ones).
    Only problems the changes introduce count; dropping a name can break another, so repeat until stable.
    """
    ctx = b.ctx
    zone = ctx.config.zone
    checked_records: set[int] = set()
    while True:
        by_name: dict[str, list[Change]] = {}
        for g in groups:
            for c in g.changes:
                by_name.setdefault(c.record.name, []).append(c)
        bad: dict[str, list[policy.Problem]] = {}
        for g in groups:
            if id(g) in checked_records:
                continue
            checked_records.add(id(g))
            for c in g.changes:
                # ownership TXTs copy the record's fields: a problem there is the record's, reported once
                if c.action != ACTION_DELETE and c.role == "record":
                    found = policy.validate_record_set(c.record, zone)
                    if found:
                        bad.setdefault(g.key.name, []).extend(found)
        at = ctx.keys_at(by_name)
        for name, changes in by_name.items():
            base = {k: ctx.cur[k] for k in at[name]}
            proj = dict(base)
            for c in sorted(changes, key=lambda c: _ACTION_ORDER[c.action]):
                rk = (c.record.name, c.record.type, c.record.set_identifier)
                if c.action == ACTION_DELETE:
                    proj.pop(rk, None)
                else:
                    proj[rk] = c.record
            if len(proj) < 2:
                continue
            before = (
                {p.message for p in policy.validate_name(list(base.values()), zone)}
                if len(base) > 1
                else set()
            )
            new = [p for p in policy.validate_name(list(proj.values()), zone) if p.message not in before]
            if new:
                bad.setdefault(name, []).extend(new)
        if not bad:
            return groups
        # A name is dropped whole: every group of a record at a bad name, or writing a TXT at a bad name.
        drop_names: set[str] = set()
        for g in groups:
            if g.key.name in bad or any(c.record.name in bad for c in g.changes):
                drop_names.add(g.key.name)
        for name, problems in bad.items():
            involved = [
                g for g in groups if g.key.name == name or any(c.record.name == name for c in g.changes)
            ]
            owners = sorted({g.key.name for g in involved}) or [name]
            objects = {src for g in involved for src in g.sources}
            objects |= {ctx.describe_current(k) for k in ctx.keys_at([name])[name]}
            for owner_name in owners:
                for p in problems:
                    b.conflict(owner_name, "invalid", p.message, objects)
        groups = [g for g in groups if g.key.name not in drop_names]


# --- applying (in memory) --------------------------------------------------------------------------------


class ChangeRejected(ValueError):
    """A change Route53 would reject: CREATE of an existing record set, DELETE that does not match exactly."""


def apply_changes(records: Iterable[RecordSet], changes: Iterable[Change]) -> list[RecordSet]:
    """The zone after `changes`, with Route53's semantics (pure, in memory).

    CREATE fails when the record set exists, DELETE when it does not match exactly (name, type, set id, TTL,
    values, routing), UPSERT replaces or creates. Used by the tests, by dry runs, and to update a stored zone
    state after an apply instead of re-reading the zone. Returns the record sets sorted by key.
    """
    state: dict[tuple[str, str, str], RecordSet] = {}
    for rs in records:
        state[(rs.name, rs.type, rs.set_identifier)] = rs
    for c in changes:
        rs = c.record
        k = (rs.name, rs.type, rs.set_identifier)
        if c.action == ACTION_CREATE:
            if k in state:
                raise ChangeRejected(f"CREATE {RecordKey(*k)}: it already exists")
            state[k] = rs
        elif c.action == ACTION_DELETE:
            if state.get(k) != rs:
                raise ChangeRejected(f"DELETE {RecordKey(*k)}: no record set matches exactly")
            del state[k]
        elif c.action == ACTION_UPSERT:
            state[k] = rs
        else:
            raise ChangeRejected(f"unknown action {c.action!r}")
    return [state[k] for k in sorted(state)]


def apply_plan(records: Iterable[RecordSet], plan: Plan) -> list[RecordSet]:
    """The zone after applying every change of `plan` in apply order (see `apply_changes`)."""
    return apply_changes(records, plan.changes())


def record_owners(current: Iterable[RecordSet], config: ZoneConfig) -> dict[RecordKey, str | None]:
    """Owner id of every managed record set of the zone (None when unowned), sorted by key, for the zone page.

    Ownership TXTs are not listed (they are registry data); records outside the zone or of unmanaged types
    neither.
    """
    ctx = _Ctx(current, config)
    out: dict[RecordKey, str | None] = {}
    for k, rs in ctx.cur.items():
        if ctx.is_managed(k):
            o = ctx.ownership(rs)
            out[RecordKey(*k)] = o.owner if o is not None else None
    return dict(sorted(out.items()))


def summarize_ownership(current: Iterable[RecordSet], config: ZoneConfig) -> dict[str, int]:
    """Counts of owned / other-owner / unowned managed records and of ownership TXTs, for the zone page."""
    records = current if isinstance(current, list) else list(current)
    owners = record_owners(records, config)
    me = config.owner_id
    ctx = _Ctx(records, config)
    return {
        "owned": sum(1 for o in owners.values() if o == me),
        "other_owner": sum(1 for o in owners.values() if o is not None and o != me),
        "unowned": sum(1 for o in owners.values() if o is None),
        "ownership_records": sum(1 for k in ctx.cur if k[1] == "TXT" and ctx.txt_owner(k) is not None),
    }
