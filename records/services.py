"""Writes of the records app: one function per intent, one transaction, the audit row inside.

Also the thin glue between rows and the pure core: the zone's configuration for the plan engine, its desired
endpoints, and its stored state (the last read of the zone, kept current by applies).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from typing import Any

from django.conf import settings
from django.contrib.postgres.aggregates import JSONBAgg
from django.db import connection, transaction
from django.db.models import Count, Q
from django.db.models.functions import JSONArray
from django.utils import timezone

from dnsportal import queue
from dnsportal.audit import audit_record
from dnsportal.errors import PortalError
from records.endpoint import Endpoint as EndpointData
from records.models import ChangeSet, Endpoint, ProviderAccount, Zone, ZoneRecord
from records.ownership import EXTERNAL_DNS_TXT_NAMING, TxtNaming, parse_ownership_value
from records.plan import ZoneConfig, record_owners
from records.recordset import RecordKey, RecordSet, recordset_from_route53

log = logging.getLogger(__name__)


def provider_class(account: ProviderAccount):
    """The class of the account's provider, for what it says without a connection (its rules)."""
    if account.kind == ProviderAccount.Kind.POWERDNS:
        from records.providers.powerdns import PowerDNSProvider

        return PowerDNSProvider
    from records.providers.route53 import Route53Provider

    return Route53Provider


def provider_for(account: ProviderAccount):
    """The account's provider; Route53's share one rate limiter per account across every worker (in Redis)."""
    if account.kind == ProviderAccount.Kind.POWERDNS:
        from records.providers.powerdns import PowerDNSProvider

        return PowerDNSProvider(
            account.endpoint_url,
            account.secret,
            server_id=account.server_id,
            dns_servers=account.dns_servers.split(","),
        )
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


def provider_clients_warm() -> int:
    """Build (or find built) every Route53 account's client in this process, with an assumed role's
    credentials: the worker calls it in its parent before forking a job's horse (dnsportal/worker.py), so the
    horse is born with them. An account that fails here is left to fail in its own job, with its message.
    Returns the number of clients ready."""
    from botocore.exceptions import BotoCoreError, ClientError

    from records.providers.base import ProviderError

    ready = 0
    for account in ProviderAccount.objects.filter(kind=ProviderAccount.Kind.ROUTE53):
        try:
            provider_for(account).warm()
        except (ProviderError, ValueError, BotoCoreError, ClientError) as exc:
            log.warning("account %s: client not prepared (%s)", account.name, exc.__class__.__name__)
            continue
        ready += 1
    return ready


def record_problem_for(account: ProviderAccount):
    """What the account's provider cannot serve (a function of a record set); None: it serves all."""
    if account.kind == ProviderAccount.Kind.POWERDNS:
        from records.providers.powerdns_codec import record_problem

        return record_problem
    return None


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
        record_problem=record_problem_for(zone.account),
        alias_load_balancers=zone.account.kind != ProviderAccount.Kind.POWERDNS,
    )


def desired_for_zone(zone: Zone, names: Iterable[str] | None = None) -> list[EndpointData]:
    """Every enabled cluster's endpoints under the zone, stale clusters' included (frozen as last seen: an
    unreachable cluster is not an empty cluster, and leaving them out would plan deletes). With `names`
    (FQDNs): the endpoints at those names only."""
    apex = zone.name.rstrip(".")
    rows = Endpoint.objects.filter(cluster__enabled=True).filter(
        Q(dns_name=apex) | Q(dns_name__endswith="." + apex)
    )
    if names is not None:
        rows = rows.filter(dns_name__in=_dns_names(names))
    rows = (
        rows
        # One JSON array of plain rows, decoded once: a zone of 10,000 endpoints is read on every reconcile,
        # and model instances, or even a JSON decode per column and row, cost most of that time.
        .aggregate(rows=JSONBAgg(JSONArray(*Endpoint.ROW_FIELDS), default=[]))["rows"]
    )
    return [Endpoint.data_from_row(row) for row in rows]


def snapshot(endpoints: Iterable[EndpointData]) -> list[dict[str, Any]]:
    return [{**ep.to_dnsendpoint(), "cluster": ep.cluster} for ep in endpoints]


def from_snapshot(items: Iterable[dict[str, Any]]) -> list[EndpointData]:
    return [EndpointData.from_dnsendpoint(item, cluster=item.get("cluster", "")) for item in items]


def names_by_zone(names: Iterable[str]) -> dict[int, list[str]]:
    """Enabled zones' ids, each with those of these names (lower case, no final dot) it holds: every matching
    zone, public and private views alike. Reads (id, apex) only: a burst of discovery events reads the zone
    list once each, not their rows."""
    names = {n.rstrip(".").lower() for n in names}
    out: dict[int, list[str]] = {}
    for zone_id, zone_name in Zone.objects.filter(enabled=True).values_list("id", "name"):
        apex = zone_name.rstrip(".").lower()
        inside = [n for n in names if n == apex or n.endswith("." + apex)]
        if inside:
            out[zone_id] = inside
    return out


def zones_for_names(names: Iterable[str]) -> list[Zone]:
    """Enabled zones holding any of these names."""
    return list(Zone.objects.filter(id__in=names_by_zone(names)))


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


def zone_stored_recordsets(zone: Zone, names: Iterable[str] | None = None) -> list[RecordSet]:
    """The zone's stored state, as the plan engine takes it; with `names` (FQDNs): the record sets there."""
    rows = ZoneRecord.objects.filter(zone=zone)
    if names is not None:
        rows = rows.filter(name__in=list(names))
    # One JSON array decoded once, rather than one decode per row (20,000 of them in a large zone).
    data = rows.aggregate(rows=JSONBAgg("data", default=[]))["rows"]
    return [recordset_from_route53(r) for r in data]


def _dns_names(names: Iterable[str]) -> list[str]:
    # FQDNs as endpoints and snapshots spell them: lower case, no trailing dot
    return sorted({n.rstrip(".").lower() for n in names})


def applied_desired_at(zone: Zone, names: Iterable[str]) -> list[EndpointData]:
    """The endpoints of the zone's last applied plan at these names (FQDNs), picked inside the database: the
    snapshot of a 10,000-endpoint zone need not travel through Python for a few names."""
    with connection.cursor() as cur:
        cur.execute(
            f"SELECT COALESCE(jsonb_agg(e), '[]'::jsonb) FROM {Zone._meta.db_table} z, "  # noqa: S608 - table name
            "jsonb_array_elements(z.applied_desired) e WHERE z.id = %s AND e->>'dnsName' = ANY(%s)",
            [zone.id, _dns_names(names)],
        )
        items = cur.fetchone()[0]
    return from_snapshot(json.loads(items) if isinstance(items, str) else items)


def applied_desired_merge(*, zone_id: int, changeset_id: int, names: Iterable[str]) -> None:
    """After a scoped change set is applied: the zone's applied endpoints are the old ones at every other
    name and the change set's at its names (the whole list is rewritten inside the database)."""
    table, cs_table = Zone._meta.db_table, ChangeSet._meta.db_table
    with connection.cursor() as cur:
        cur.execute(
            f"UPDATE {table} SET applied_desired = COALESCE((SELECT jsonb_agg(e) FROM "  # noqa: S608
            f"jsonb_array_elements({table}.applied_desired) e WHERE NOT (e->>'dnsName' = ANY(%s))), "
            f"'[]'::jsonb) || (SELECT desired FROM {cs_table} WHERE id = %s), state_known_at = %s "
            "WHERE id = %s",
            [_dns_names(names), changeset_id, timezone.now(), zone_id],
        )


def owned_in_zone(zone: Zone) -> int | None:
    """How many record sets of the zone the portal owns, as its stored state counts them."""
    return (zone.ownership_counts or {}).get(ZoneRecord.Ownership.OWNED)


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
    kind: str = ProviderAccount.Kind.ROUTE53,
    server_id: str = "localhost",
    dns_servers: str = "",
) -> ProviderAccount:
    if ProviderAccount.objects.filter(name=name).exists():
        raise PortalError(f"An account called {name!r} already exists.")
    account = ProviderAccount(
        name=name,
        kind=kind,
        server_id=server_id,
        dns_servers=dns_servers,
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


# Names per `name IN (...)` when the stored rows an apply touched are read back: one statement per chunk.
_NAMES_PER_QUERY = 2000


@transaction.atomic
def zone_apply_to_state(*, zone_id: int, changes: Sequence[Any]) -> None:
    """Bring the stored zone state up to date with changes the portal just applied.

    What the portal writes is its own by construction (each record goes with its ownership TXT), so the
    touched rows are classified without reading the whole zone; a change that does not fit the stored state
    (a DELETE of a row that is not there as stored, a CREATE over an existing one) raises ChangeRejected and
    the caller falls back to a full read. The changes are checked in order in memory (a DELETE and its
    re-CREATE in one group are fine), then written in a few bulk statements whatever their number: row by
    row, 20,000 changes were 60,000 statements, most of a large zone's apply.
    """
    from records.plan import ACTION_CREATE, ACTION_DELETE, ChangeRejected
    from records.recordset import recordset_to_route53

    zone = Zone.objects.select_for_update().get(id=zone_id)
    keys = {(c.record.name, c.record.type, c.record.set_identifier) for c in changes}
    names = sorted({key[0] for key in keys})
    stored: dict[tuple[str, str, str], tuple[int, dict[str, Any]]] = {}
    for i in range(0, len(names), _NAMES_PER_QUERY):
        rows = ZoneRecord.objects.filter(zone=zone, name__in=names[i : i + _NAMES_PER_QUERY])
        for row_id, *key, data in rows.values_list("id", "name", "type", "set_identifier", "data"):
            if tuple(key) in keys:
                stored[tuple(key)] = (row_id, data)
    # Per touched key, what the changes so far left: (Route53 dict, role), or None once deleted.
    after: dict[tuple[str, str, str], tuple[dict[str, Any], str] | None] = {}
    for change in changes:
        rs = change.record
        key = (rs.name, rs.type, rs.set_identifier)
        if key in after:
            have = after[key][0] if after[key] is not None else None
        else:
            have = stored[key][1] if key in stored else None
        if change.action == ACTION_DELETE:
            if have is None or recordset_from_route53(have) != rs:
                raise ChangeRejected(
                    f"DELETE {rs.name} {rs.type}: the stored state does not hold it as deleted"
                )
            after[key] = None
            continue
        if change.action == ACTION_CREATE and have is not None:
            raise ChangeRejected(f"CREATE {rs.name} {rs.type}: the stored state already holds it")
        after[key] = (recordset_to_route53(rs, default_alias_zone_id=zone.provider_zone_id), change.role)
    gone = [stored[key][0] for key, value in after.items() if value is None and key in stored]
    for i in range(0, len(gone), 10_000):
        ZoneRecord.objects.filter(id__in=gone[i : i + 10_000]).delete()
    ZoneRecord.objects.bulk_create(
        [
            ZoneRecord(
                zone=zone,
                name=key[0],
                type=key[1],
                set_identifier=key[2],
                data=value[0],
                ownership=(
                    ZoneRecord.Ownership.REGISTRY if value[1] == "ownership" else ZoneRecord.Ownership.OWNED
                ),
                owner_id=zone.owner_id,
            )
            for key, value in after.items()
            if value is not None
        ],
        batch_size=1000,
        update_conflicts=True,
        unique_fields=["zone", "name", "type", "set_identifier"],
        update_fields=["data", "ownership", "owner_id"],
    )
    counts = {k: 0 for k in ZoneRecord.Ownership.values}
    for row in ZoneRecord.objects.filter(zone=zone).values("ownership").annotate(n=Count("id")):
        counts[row["ownership"]] = row["n"]
    zone.ownership_counts = counts
    zone.state_known_at = timezone.now()
    zone.save(update_fields=["ownership_counts", "state_known_at"])
