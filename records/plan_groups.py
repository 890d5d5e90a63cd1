"""The per-record planners: the change group that creates, updates, adopts or deletes one record set (with its
ownership TXT changes and its reasons), and the check that drops the names whose planned record sets would
break Route53's rules.

Pure: no Django, boto3 or Kubernetes import.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from records import policy
from records.aggregate import DesiredRecord, describe_source
from records.ownership import LABEL_RESOURCE, Ownership
from records.plan_diff import _after, _diff, _needs_replace, _unchanged
from records.plan_model import (
    _ACTION_ORDER,
    ACTION_CREATE,
    ACTION_DELETE,
    ACTION_UPSERT,
    ADOPT,
    CREATE,
    DELETE,
    OWNERSHIP,
    UPDATE,
    Change,
    ChangeGroup,
)
from records.plan_state import _Builder, _Ctx
from records.recordset import RecordKey, RecordSet, canonical_value

if TYPE_CHECKING:
    from records.plan import Previous


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
