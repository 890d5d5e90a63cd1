"""Writes of the records app: one function per intent, one transaction, the audit row inside.

Also the thin glue between rows and the pure core: the zone's configuration for the plan engine, its desired
endpoints, and its stored state (the last read of the zone, kept current by applies).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from django.conf import settings
from django.contrib.postgres.aggregates import JSONBAgg
from django.db import transaction
from django.db.models import Count, Q
from django.db.models.functions import JSONArray
from django.utils import timezone

from dnsportal import queue
from dnsportal.audit import audit_record
from dnsportal.errors import PortalError
from records.endpoint import Endpoint as EndpointData
from records.models import Change, ChangeSet, Endpoint, ProviderAccount, Zone, ZoneRecord
from records.ownership import EXTERNAL_DNS_TXT_NAMING, TxtNaming, parse_ownership_value
from records.plan import Plan, ZoneConfig, record_owners
from records.recordset import RecordKey, RecordSet, recordset_from_route53


def provider_for(account: ProviderAccount):
    """The account's provider, sharing one rate limiter per account across every worker (in Redis)."""
    from records.providers.route53 import Route53Provider

    return Route53Provider(
        account.credentials(),
        endpoint_url=account.endpoint_url or None,
        region=account.region,
        redis=queue.rq_connection(),
        account_key=f"account-{account.id}",
        rate=account.rate,
        burst=account.burst,
        backoff_base=settings.ROUTE53_BACKOFF_BASE_MS / 1000,
    )


def zone_config(zone: Zone) -> ZoneConfig:
    subzones = Zone.objects.filter(account=zone.account, name__endswith="." + zone.name).exclude(id=zone.id)
    naming = TxtNaming(prefix=zone.txt_prefix, suffix=zone.txt_suffix)
    return ZoneConfig(
        zone=zone.name,
        owner_id=zone.owner_id,
        policy=zone.policy,
        naming=naming,
        public=not zone.private,
        subzones=tuple(subzones.values_list("name", flat=True)),
        # ExternalDNS instances sharing the zone usually run without --txt-prefix: recognise their ownership
        # records too, so their records count as another owner's (never touched), not as nobody's.
        also_read=() if naming == EXTERNAL_DNS_TXT_NAMING else (EXTERNAL_DNS_TXT_NAMING,),
    )


def desired_for_zone(zone: Zone) -> list[EndpointData]:
    """Every enabled cluster's endpoints under the zone, stale clusters' included (frozen as last seen: an
    unreachable cluster is not an empty cluster, and leaving them out would plan deletes)."""
    apex = zone.name.rstrip(".")
    rows = (
        Endpoint.objects.filter(cluster__enabled=True)
        .filter(Q(dns_name=apex) | Q(dns_name__endswith="." + apex))
        # One JSON array of plain rows, decoded once: a zone of 10,000 endpoints is read on every reconcile,
        # and model instances, or even a JSON decode per column and row, cost most of that time.
        .aggregate(
            rows=JSONBAgg(
                JSONArray(
                    "dns_name",
                    "record_type",
                    "targets",
                    "ttl",
                    "set_identifier",
                    "properties",
                    "labels",
                    "cluster__name",
                ),
                default=[],
            )
        )["rows"]
    )
    return [
        EndpointData.make(
            name,
            rtype,
            targets,
            ttl=ttl,
            set_identifier=set_id,
            provider_specific=props,
            labels=labels,
            cluster=cluster,
        )
        for name, rtype, targets, ttl, set_id, props, labels, cluster in rows
    ]


def snapshot(endpoints: Iterable[EndpointData]) -> list[dict[str, Any]]:
    return [{**ep.to_dnsendpoint(), "cluster": ep.cluster} for ep in endpoints]


def from_snapshot(items: Iterable[dict[str, Any]]) -> list[EndpointData]:
    return [EndpointData.from_dnsendpoint(item, cluster=item.get("cluster", "")) for item in items]


def zones_for_names(names: Iterable[str]) -> list[Zone]:
    """Enabled zones holding any of these names (every matching zone: public and private views alike)."""
    names = [n.rstrip(".").lower() for n in names]
    out = []
    for zone in Zone.objects.filter(enabled=True):
        apex = zone.name.rstrip(".")
        if any(n == apex or n.endswith("." + apex) for n in names):
            out.append(zone)
    return out


# --- zone state ---------------------------------------------------------------------------------------


def _classify(records: Sequence[RecordSet], config: ZoneConfig) -> dict[RecordKey, tuple[str, str]]:
    owners = record_owners(records, config)
    out: dict[RecordKey, tuple[str, str]] = {}
    for rs in records:
        key = RecordKey(rs.name, rs.type, rs.set_identifier)
        if key in owners:
            owner = owners[key]
            if owner is None:
                out[key] = (ZoneRecord.Ownership.UNOWNED, "")
            else:
                out[key] = (
                    ZoneRecord.Ownership.OWNED if owner == config.owner_id else ZoneRecord.Ownership.OTHER,
                    owner,
                )
        elif rs.type == "TXT" and rs.values and parse_ownership_value(rs.values[0]) is not None:
            out[key] = (ZoneRecord.Ownership.REGISTRY, parse_ownership_value(rs.values[0]).get("owner", ""))
        else:
            out[key] = (ZoneRecord.Ownership.UNMANAGED, "")
    return out


@transaction.atomic
def zone_store_state(*, zone_id: int, records: Sequence[dict[str, Any]], full_read: bool) -> list[RecordSet]:
    """Replace the zone's stored records with `records` (Route53 dicts); returns them as RecordSets."""
    zone = Zone.objects.select_for_update().get(id=zone_id)
    parsed = [(item, recordset_from_route53(item)) for item in records]
    config = zone_config(zone)
    classes = _classify([rs for _, rs in parsed], config)
    ZoneRecord.objects.filter(zone=zone).delete()
    ZoneRecord.objects.bulk_create(
        [
            ZoneRecord(
                zone=zone,
                name=rs.name,
                type=rs.type,
                set_identifier=rs.set_identifier,
                data=item,
                ownership=classes[RecordKey(rs.name, rs.type, rs.set_identifier)][0],
                owner_id=classes[RecordKey(rs.name, rs.type, rs.set_identifier)][1],
            )
            for item, rs in parsed
        ],
        batch_size=1000,
    )
    counts = {k: 0 for k in ZoneRecord.Ownership.values}
    for kind, _owner in classes.values():
        counts[kind] += 1
    zone.ownership_counts = counts
    zone.state_valid = True
    zone.state_known_at = timezone.now()
    if full_read:
        zone.state_read_at = zone.state_known_at
    zone.save(update_fields=["ownership_counts", "state_valid", "state_read_at", "state_known_at"])
    return [rs for _, rs in parsed]


def zone_stored_recordsets(zone: Zone) -> list[RecordSet]:
    """The zone's stored state, as the plan engine takes it."""
    # One JSON array decoded once, rather than one decode per row (20,000 of them in a large zone).
    rows = ZoneRecord.objects.filter(zone=zone).aggregate(rows=JSONBAgg("data", default=[]))["rows"]
    return [recordset_from_route53(r) for r in rows]


def zone_invalidate_state(*, zone_id: int, error: str = "", run_id: int | None = None) -> None:
    """After an error the stored state may be wrong: the next reconcile reads the zone again."""
    Zone.objects.filter(id=zone_id).update(state_valid=False)
    if error:
        zone_reconcile_failed(zone_id=zone_id, error=error, run_id=run_id)


def zone_reconcile_failed(*, zone_id: int, error: str, run_id: int | None) -> None:
    """A reconcile (or the zone read before an apply) failed: the zone's pages and the dashboard say so, with
    the job run's log one click away, until a reconcile succeeds."""
    # last_reconcile_at stays the last success: "3 hours ago" beside the error says how old the plan is.
    Zone.objects.filter(id=zone_id).update(last_reconcile_error=error, last_reconcile_run_id=run_id)


# --- change sets --------------------------------------------------------------------------------------


@transaction.atomic
def changeset_record(
    *,
    zone_id: int,
    plan: Plan,
    desired: Sequence[EndpointData],
    cause: str,
    requested_by: Any = None,
    adopt: Sequence[Sequence[str]] = (),
) -> ChangeSet | None:
    """Store a plan as a pending change set, superseding an older unapproved one.

    A plan equal to the pending one (same fingerprint) creates nothing; an empty plan supersedes the pending
    one (the zone already matches). When the zone auto-applies and nobody needs to approve, it is approved by
    the system and its apply enqueued.
    """
    zone = Zone.objects.select_for_update().get(id=zone_id)
    pending = zone.changesets.filter(status=ChangeSet.Status.PENDING).order_by("-created_at").first()
    fingerprint = plan.fingerprint()
    if plan.is_empty:
        if pending is not None:
            _supersede(pending, None, "the zone already serves what the clusters want")
        return None
    if pending is not None and pending.fingerprint == fingerprint:
        return pending
    user = requested_by if getattr(requested_by, "is_authenticated", False) else None
    data = plan.to_dict()
    cs = ChangeSet.objects.create(
        zone=zone,
        cause=cause,
        requested_by=user,
        fingerprint=fingerprint,
        needs_approval=plan.needs_approval,
        approval_reasons=list(plan.approval_reasons),
        summary=data["summary"],
        conflicts=data["conflicts"],
        skipped=data["skipped"],
        notes=data["notes"],
        desired=snapshot(desired),
        adopt=[list(a) for a in adopt],
    )
    _create_changes(cs, data["groups"])
    if pending is not None:
        _supersede(pending, cs, f"replaced by change set #{cs.id}")
    audit_record(
        actor=user,
        action="changeset.create",
        obj=cs,
        after={
            "zone": zone.name,
            "cause": cause,
            "summary": cs.summary,
            "needs_approval": cs.needs_approval,
            "reasons": cs.approval_reasons,
        },
    )
    from records.proposals import proposal_matching

    if (proposal := proposal_matching(zone, data["groups"])) is not None:
        # Exactly the DNS change the approved policy proposal showed: its approval covers it.
        comment = f"approved with policy proposal #{proposal.id}: exactly the DNS change it showed"
        transition(
            cs,
            ChangeSet.Status.APPROVED,
            actor=proposal.approved_by,
            note=comment,
            approved_by=proposal.approved_by,
            approved_at=timezone.now(),
            review_comment=comment,
        )
        type(proposal).objects.filter(id=proposal.id).update(changeset=cs)
        queue.enqueue("changeset_apply", changeset_id=cs.id)
    elif zone.applies_automatically(needs_approval=plan.needs_approval):
        comment = "approved automatically: the zone applies change sets nobody needs to approve"
        transition(
            cs, ChangeSet.Status.APPROVED, note=comment, approved_at=timezone.now(), review_comment=comment
        )
        queue.enqueue("changeset_apply", changeset_id=cs.id)
    return cs


def _create_changes(cs: ChangeSet, groups: Sequence[dict[str, Any]]) -> None:
    """The change set's Change rows, one per plan group (Plan.to_dict()["groups"]), in apply order."""
    Change.objects.bulk_create(
        [
            Change(
                changeset=cs,
                position=i,
                kind=g["kind"],
                name=g["name"],
                type=g["type"],
                set_identifier=g["set_identifier"],
                reasons=g["reasons"],
                sources=g["sources"],
                before=g["before"],
                after=g["after"],
                actions=g["changes"],
                replace=g["replace"],
                drift=g["drift"],
                needs_approval=g["needs_approval"],
            )
            for i, g in enumerate(groups)
        ],
        batch_size=1000,
    )


def _supersede(cs: ChangeSet, by: ChangeSet | None, why: str) -> None:
    transition(
        cs, ChangeSet.Status.SUPERSEDED, note=why, superseded_by=by, error=why, finished_at=timezone.now()
    )


# --- accounts and zones ---------------------------------------------------------------------------------


@transaction.atomic
def account_create(
    *,
    actor: Any,
    name: str,
    credential_kind: str,
    access_key_id: str = "",
    secret: str = "",
    role_arn: str = "",
    region: str = "us-east-1",
    endpoint_url: str = "",
    rate: float = 5.0,
    burst: int = 5,
    is_demo: bool = False,
) -> ProviderAccount:
    if ProviderAccount.objects.filter(name=name).exists():
        raise PortalError(f"An account called {name!r} already exists.")
    account = ProviderAccount(
        name=name,
        credential_kind=credential_kind,
        access_key_id=access_key_id,
        role_arn=role_arn,
        region=region,
        endpoint_url=endpoint_url,
        rate=rate,
        burst=burst,
        is_demo=is_demo,
        created_by=actor if getattr(actor, "is_authenticated", False) else None,
    )
    account.secret = secret
    account.save()
    audit_record(actor=actor, action="account.create", obj=account, after=account.audit_view())
    queue.enqueue("account_check", actor=actor, account_id=account.id)
    return account


@transaction.atomic
def account_import_zones(*, actor: Any, account_id: int, domain_filter: Sequence[str] = ()) -> None:
    queue.enqueue(
        "account_import_zones", actor=actor, account_id=account_id, domain_filter=list(domain_filter)
    )


@transaction.atomic
def zone_upsert_imported(
    *, account_id: int, provider_zone_id: str, name: str, private: bool
) -> tuple[Zone, bool]:
    # A zone of the demo's Route53 stand-in is part of the demo: removing the demo removes its row too.
    is_demo = ProviderAccount.objects.values_list("is_demo", flat=True).get(id=account_id)
    zone, created = Zone.objects.get_or_create(
        account_id=account_id,
        provider_zone_id=provider_zone_id,
        defaults={
            "name": name,
            "private": private,
            "owner_id": settings.DNSPORTAL_DEFAULT_OWNER_ID,
            "is_demo": is_demo,
        },
    )
    if created:
        audit_record(actor=None, action="zone.import", obj=zone, after=zone.audit_view())
    return zone, created


@transaction.atomic
def zone_update(*, actor: Any, zone_id: int, **fields: Any) -> Zone:
    zone = Zone.objects.select_for_update().get(id=zone_id)
    before = zone.audit_view()
    for name, value in fields.items():
        setattr(zone, name, value)
    # Only what the caller changes: the jobs own the other fields (last_verification_ok is None until a
    # verification runs) and a person saving settings cannot fix them.
    zone.full_clean(exclude=[f.name for f in Zone._meta.fields if f.name not in fields])
    ZoneConfig(
        zone=zone.name,
        owner_id=zone.owner_id,
        policy=zone.policy,
        naming=TxtNaming(prefix=zone.txt_prefix, suffix=zone.txt_suffix),
    )  # raises ValueError if invalid
    zone.save()
    # Owner id or TXT naming changed: which records are ours must be read again.
    zone.state_valid = False
    zone.save(update_fields=["state_valid"])
    audit_record(actor=actor, action="zone.update", obj=zone, before=before, after=zone.audit_view())
    return zone


@transaction.atomic
def zone_reconcile_request(*, actor: Any, zone_id: int, full_read: bool = True) -> None:
    """ "Reconcile now": read the zone again and plan; the person asking is recorded as the requester."""
    zone = Zone.objects.get(id=zone_id)
    audit_record(actor=actor, action="zone.reconcile_now", obj=zone)
    queue.enqueue(
        "zone_reconcile",
        actor=actor,
        zone_id=zone.id,
        cause=ChangeSet.Cause.MANUAL,
        requested_by_id=actor.id,
        full_read=full_read,
    )


# --- review -------------------------------------------------------------------------------------------


class NotAllowed(PortalError):
    """Refused because of who asks (the requester approving their own change, a missing role)."""


def transition(cs: ChangeSet, target: str, *, actor: Any = None, note: str = "", **fields: Any) -> ChangeSet:
    """Move a (locked) change set to `target`, or raise IllegalTransition; audited with actor and time."""
    from records.lifecycle import check_transition

    before = cs.status
    check_transition(before, target)
    cs.status = target
    for name, value in fields.items():
        setattr(cs, name, value)
    cs.save(update_fields=["status", *fields])
    after: dict[str, Any] = {"status": target}
    if note:
        after["note"] = note
    audit_record(actor=actor, action=f"changeset.{target}", obj=cs, before={"status": before}, after=after)
    return cs


def four_eyes(
    *,
    noun: str,
    number: int,
    status: str,
    pending: bool,
    author_id: int | None,
    reviewer: Any,
    verb: str,
    authored: str = "requested",
) -> None:
    """The review rules every reviewed thing shares (change sets, policy proposals): the approver role, a
    thing still pending, and a second person (whoever proposed or caused it cannot approve it)."""
    from dnsportal.roles import APPROVE, has_role_perm

    if not has_role_perm(reviewer, APPROVE):
        raise NotAllowed(
            f"{ {'approve': 'Approving', 'reject': 'Rejecting'}[verb] } needs the approver role."
        )
    if not pending:
        raise PortalError(f"{noun.capitalize()} #{number} is already {status.lower()}.")
    if verb == "approve" and author_id is not None and author_id == reviewer.id:
        raise NotAllowed(f"A second person must approve this {noun}: you {authored} it.")


@transaction.atomic(durable=True)
def changeset_approve(
    *, changeset_id: int, approver: Any, comment: str = "", confirm_deletes: bool = False
) -> ChangeSet:
    """A second person approves; the apply is enqueued once, when this transaction commits."""
    cs = ChangeSet.objects.select_for_update().get(id=changeset_id)  # two approvers at once: one waits here
    four_eyes(
        noun="change set",
        number=cs.id,
        status=cs.get_status_display(),
        pending=cs.status == ChangeSet.Status.PENDING,
        author_id=cs.requested_by_id,
        reviewer=approver,
        verb="approve",
    )
    if cs.summary.get("delete") and not confirm_deletes:
        raise PortalError(
            f"Change set #{cs.id} deletes {cs.summary['delete']} record set(s): confirm the deletes."
        )
    transition(
        cs,
        ChangeSet.Status.APPROVED,
        actor=approver,
        note=comment,
        approved_by=approver,
        approved_at=timezone.now(),
        review_comment=comment,
    )
    queue.enqueue("changeset_apply", actor=approver, changeset_id=cs.id)
    return cs


@transaction.atomic(durable=True)
def changeset_reject(*, changeset_id: int, reviewer: Any, comment: str) -> ChangeSet:
    from dnsportal.roles import APPROVE, has_role_perm

    if not has_role_perm(reviewer, APPROVE):
        raise NotAllowed("Rejecting needs the approver role.")
    if not comment.strip():
        raise PortalError("Say why the change set is rejected: the comment goes to the audit log.")
    cs = ChangeSet.objects.select_for_update().get(id=changeset_id)
    four_eyes(
        noun="change set",
        number=cs.id,
        status=cs.get_status_display(),
        pending=cs.status == ChangeSet.Status.PENDING,
        author_id=None,
        reviewer=reviewer,
        verb="reject",
    )
    return transition(
        cs,
        ChangeSet.Status.REJECTED,
        actor=reviewer,
        note=comment,
        review_comment=comment,
        finished_at=timezone.now(),
    )


def diff_signature(groups: Sequence[dict[str, Any]]) -> list[str]:
    """What a reviewer approved, per group: the record, the kind of change, before, after and the actions.
    Equal signatures mean the zone is as it was when the diff was shown; anything else is a new diff."""
    import json

    return sorted(
        json.dumps(
            [g["name"], g["type"], g["set_identifier"], g["kind"], g["before"], g["after"], g["changes"]],
            sort_keys=True,
        )
        for g in groups
    )


def rows_signature(rows: Iterable[Change]) -> list[str]:
    return diff_signature(
        [
            {
                "name": r.name,
                "type": r.type,
                "set_identifier": r.set_identifier,
                "kind": r.kind,
                "before": r.before,
                "after": r.after,
                "changes": r.actions,
            }
            for r in rows
        ]
    )


@transaction.atomic
def changeset_replan(*, changeset_id: int, plan: Plan) -> ChangeSet:
    """Reality moved since approval: replace the change set's diff with the new plan and send it back to
    review (or, when the zone already serves what was wanted, close it as applied by someone else)."""
    cs = ChangeSet.objects.select_for_update().get(id=changeset_id)
    if plan.is_empty and not plan.conflicts:
        note = "the zone already serves what this change set wanted; nothing was sent"
        cs.changes.update(status=Change.Status.APPLIED, error="already in effect")
        return transition(
            cs, ChangeSet.Status.APPLIED, note=note, finished_at=timezone.now(), error=note, lease_until=None
        )
    data = plan.to_dict()
    cs.changes.all().delete()
    _create_changes(cs, data["groups"])
    note = "re-planned: the zone changed since approval; review the new diff"
    return transition(
        cs,
        ChangeSet.Status.PENDING,
        note=note,
        fingerprint=plan.fingerprint(),
        summary=data["summary"],
        needs_approval=plan.needs_approval,
        approval_reasons=list(plan.approval_reasons),
        conflicts=data["conflicts"],
        skipped=data["skipped"],
        notes=data["notes"],
        approved_by=None,
        approved_at=None,
        error=note,
        lease_until=None,
        apply_attempts=0,
        started_at=None,
    )


# --- verification -------------------------------------------------------------------------------------


def zone_nameservers(zone: Zone) -> list[Any]:
    """Where to ask: the zone's override (host:port, for on-prem servers and tests) or the provider's
    delegation set (Route53's four awsdns servers), resolved to addresses."""
    from records.verify import resolve_nameservers

    if zone.nameserver_override.strip():
        entries = [e.strip() for e in zone.nameserver_override.split(",") if e.strip()]
    elif zone.account.endpoint_url:
        # Not AWS itself (moto, a compatible API): its delegation set names servers that do not exist.
        raise ValueError(
            f"{zone} is served through {zone.account.endpoint_url}, whose nameservers cannot be asked: "
            "set the zone's nameserver override (host:port) to verify it."
        )
    else:
        entries = provider_for(zone.account).nameservers(zone.provider_zone_id)
    return resolve_nameservers(entries)


def expected_rrsets(zone: Zone, *, names: Iterable[str] | None = None) -> list[Any]:
    """What the nameservers should answer for the records the portal owns (or, with `names`, for those
    names): one ExpectedRRset per (name, type); routed record sets become "one of" their sets."""
    from records.verify import ExpectedRRset

    rows = ZoneRecord.objects.filter(zone=zone, ownership=ZoneRecord.Ownership.OWNED)
    if names is not None:
        rows = rows.filter(name__in=[n if n.endswith(".") else n + "." for n in names])
    grouped: dict[tuple[str, str], list[ZoneRecord]] = {}
    for row in rows:
        if "AliasTarget" in row.data:
            continue  # an alias answers with its target's addresses, which the zone does not hold
        grouped.setdefault((row.name, row.type), []).append(row)
    out = []
    for (name, rtype), records in sorted(grouped.items()):
        ttl = records[0].data.get("TTL")
        if len(records) == 1 and not records[0].set_identifier:
            out.append(ExpectedRRset(name, rtype, frozenset(records[0].values), ttl=ttl))
        else:
            out.append(ExpectedRRset.one_of(name, rtype, [r.values for r in records], ttl=ttl))
    return out


def intended_split(
    zone: Zone, hostname: str, rtype: str = "A"
) -> tuple[dict[str, list[str]], dict[str, float], str]:
    """(values per label, intended share per label, key) for a hostname: weighted record sets split by
    weight (key "answer": each answer is one set); one record set with several values splits evenly by first
    position (key "first": round robin, what most clients use)."""
    name = hostname if hostname.endswith(".") else hostname + "."
    rows = list(
        ZoneRecord.objects.filter(zone=zone, name=name.lower(), type=rtype).exclude(
            ownership=ZoneRecord.Ownership.REGISTRY
        )
    )
    if not rows:
        raise PortalError(f"{hostname} has no {rtype} record in {zone} to measure.")
    if len(rows) == 1 and not rows[0].set_identifier:
        values = rows[0].values
        return {v: [v] for v in values}, {v: 1 / len(values) for v in values}, "first"
    weights = {r.set_identifier: float(r.data.get("Weight", 1)) for r in rows}
    total = sum(weights.values()) or 1.0
    # Route53: all weights 0 means every set equally (route53.md)
    shares = {k: (w / total if sum(weights.values()) else 1 / len(weights)) for k, w in weights.items()}
    return {r.set_identifier: r.values for r in rows}, shares, "answer"


@transaction.atomic
def distribution_request(*, actor: Any, zone_id: int, hostname: str) -> None:
    from records.models import Verification

    zone = Zone.objects.get(id=zone_id)
    intended_split(zone, hostname)  # refuse at once, with the reason, when there is nothing to measure
    # The row exists from the request on, so the page can show "measuring" and follow it.
    v = Verification.objects.create(
        zone=zone,
        kind=Verification.Kind.DISTRIBUTION,
        hostname=hostname.lower().rstrip("."),
        requested_by=actor,
    )
    audit_record(actor=actor, action="verification.request", obj=zone, after={"hostname": v.hostname})
    queue.enqueue("hostname_distribution", actor=actor, verification_id=v.id)


@transaction.atomic
def zone_adopt_request(*, actor: Any, zone_id: int, record_id: int) -> None:
    """Ask to take a record over (from another owner id or from nobody): the next plan adopts it, marked
    needs-approval, and the person asking cannot approve it."""
    zone = Zone.objects.get(id=zone_id)
    record = ZoneRecord.objects.get(id=record_id, zone=zone)
    if record.ownership not in (ZoneRecord.Ownership.OTHER, ZoneRecord.Ownership.UNOWNED):
        raise PortalError(
            f"{record.name} {record.type} is {record.get_ownership_display()}: nothing to adopt."
        )
    apex = zone.name.rstrip(".")
    name = record.name.rstrip(".")
    if not Endpoint.objects.filter(dns_name=name, record_type=record.type).exists() or not (
        name == apex or name.endswith("." + apex)
    ):
        raise PortalError(f"No cluster publishes {name} {record.type}: adopting it would only delete it.")
    before = {
        "name": record.name,
        "type": record.type,
        "set_identifier": record.set_identifier,
        "owner": record.owner_id or None,
    }
    audit_record(actor=actor, action="zone.adopt_request", obj=zone, before=before)
    queue.enqueue(
        "zone_reconcile",
        actor=actor,
        zone_id=zone.id,
        cause=ChangeSet.Cause.ADOPT,
        requested_by_id=actor.id,
        full_read=True,
        adopt=[[record.name, record.type, record.set_identifier]],
    )


@transaction.atomic
def zone_apply_to_state(*, zone_id: int, changes: Sequence[Any]) -> None:
    """Bring the stored zone state up to date with changes the portal just applied, row by row.

    What the portal writes is its own by construction (each record goes with its ownership TXT), so the
    touched rows are classified without reading the whole zone; a change that does not fit the stored state
    (a DELETE of a row that is not there as stored, a CREATE over an existing one) raises ChangeRejected and
    the caller falls back to a full read.
    """
    from records.plan import ACTION_CREATE, ACTION_DELETE, ChangeRejected
    from records.recordset import recordset_to_route53

    zone = Zone.objects.select_for_update().get(id=zone_id)
    for change in changes:
        rs = change.record
        key = {"zone": zone, "name": rs.name, "type": rs.type, "set_identifier": rs.set_identifier}
        row = ZoneRecord.objects.filter(**key).first()
        if change.action == ACTION_DELETE:
            if row is None or recordset_from_route53(row.data) != rs:
                raise ChangeRejected(
                    f"DELETE {rs.name} {rs.type}: the stored state does not hold it as deleted"
                )
            row.delete()
            continue
        if change.action == ACTION_CREATE and row is not None:
            raise ChangeRejected(f"CREATE {rs.name} {rs.type}: the stored state already holds it")
        registry = change.role == "ownership"
        ZoneRecord.objects.update_or_create(
            **key,
            defaults={
                "data": recordset_to_route53(rs, default_alias_zone_id=zone.provider_zone_id),
                "ownership": ZoneRecord.Ownership.REGISTRY if registry else ZoneRecord.Ownership.OWNED,
                "owner_id": zone.owner_id,
            },
        )
    counts = {k: 0 for k in ZoneRecord.Ownership.values}
    for row in ZoneRecord.objects.filter(zone=zone).values("ownership").annotate(n=Count("id")):
        counts[row["ownership"]] = row["n"]
    zone.ownership_counts = counts
    zone.state_known_at = timezone.now()
    zone.save(update_fields=["ownership_counts", "state_known_at"])
