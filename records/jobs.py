"""Thin jobs of the records app: reconcile a zone, apply a change set, check drift, accounts and imports."""

from __future__ import annotations

import logging
import uuid
from contextlib import contextmanager
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from dnsportal.audit import audit_record
from dnsportal.queue import enqueue, register_job, rq_connection
from dnsportal.scheduler import periodic
from records import services
from records.models import Change, ChangeSet, ProviderAccount, Zone
from records.plan import Change as PlanChange
from records.plan import ChangeRejected, apply_changes, compute_plan
from records.providers.base import ChangeGroupInput, ProviderError
from records.recordset import recordset_from_route53

log = logging.getLogger(__name__)

ZONE_LOCK_TTL_S = 600


class ZoneBusy(Exception):
    pass


@contextmanager
def zone_lock(zone_id: int):
    """One reconcile or apply per zone at a time, across every worker (a Redis lock with an expiry)."""
    redis = rq_connection()
    key, token = f"dnsportal:zone-lock:{zone_id}", uuid.uuid4().hex
    if not redis.set(key, token, nx=True, ex=ZONE_LOCK_TTL_S):
        raise ZoneBusy(zone_id)
    try:
        yield
    finally:
        redis.eval(
            "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end",
            1,
            key,
            token,
        )


def _rerun_key(zone_id: int) -> str:
    return f"dnsportal:zone-rerun:{zone_id}"


@register_job(queue="dns")
def zone_reconcile(
    *,
    zone_id: int,
    cause: str = "discovery",
    requested_by_id: int | None = None,
    full_read: bool = False,
    adopt: list | None = None,
) -> None:
    """Plan the zone against what the clusters want; store the plan as a change set for review (or apply it
    when the zone auto-applies and nothing needs a person)."""
    zone = Zone.objects.select_related("account").filter(id=zone_id, enabled=True).first()
    if zone is None:
        log.info("zone %s is gone or disabled; nothing to reconcile", zone_id)
        return
    in_flight = zone.changesets.filter(status__in=[ChangeSet.Status.APPROVED, ChangeSet.Status.APPLYING])
    if in_flight.exists():
        # Planning now would plan the same changes again from the state before that apply: wait for it.
        rq_connection().set(_rerun_key(zone_id), cause, ex=ZONE_LOCK_TTL_S)
        log.info("zone %s has a change set being applied; a reconcile follows it", zone.name)
        return
    try:
        with zone_lock(zone_id):
            _reconcile(
                zone, cause=cause, requested_by_id=requested_by_id, full_read=full_read, adopt=adopt or []
            )
    except ZoneBusy:
        # Another worker is on this zone: it runs once more when it is done, and sees these changes too.
        rq_connection().set(_rerun_key(zone_id), cause, ex=ZONE_LOCK_TTL_S)
        log.info("zone %s is busy; a reconcile will follow the running one", zone.name)
        return
    if rq_connection().delete(_rerun_key(zone_id)):
        enqueue("zone_reconcile", zone_id=zone_id, cause=cause)


def _reconcile(zone: Zone, *, cause: str, requested_by_id: int | None, full_read: bool, adopt: list) -> None:
    now = timezone.now()
    drift_due = (
        zone.state_read_at is None or zone.state_read_at + timedelta(seconds=zone.drift_interval) <= now
    )
    provider = services.provider_for(zone.account)
    try:
        if full_read or drift_due or not zone.state_valid:
            records = provider.list_record_sets(zone.provider_zone_id)
            current = services.zone_store_state(zone_id=zone.id, records=records, full_read=True)
            Zone.objects.filter(id=zone.id).update(last_drift_check_at=now)
            log.info("zone %s: read %d record sets", zone.name, len(current))
        else:
            current = [recordset_from_route53(r) for r in services.zone_stored_records(zone)]
    except ProviderError as exc:
        services.zone_invalidate_state(zone_id=zone.id, error=exc.user_message)
        raise
    desired = services.desired_for_zone(zone)
    previous = services.from_snapshot(zone.applied_desired) or None
    plan = compute_plan(
        desired,
        current,
        services.zone_config(zone),
        adopt=[tuple(a) if isinstance(a, list) else a for a in adopt],
        previous=previous,
    )
    requested_by = get_user_model().objects.filter(id=requested_by_id).first() if requested_by_id else None
    if (
        cause == ChangeSet.Cause.DISCOVERY
        and any(g.drift for g in plan.groups)
        and not any(not g.drift for g in plan.groups)
    ):
        cause = ChangeSet.Cause.DRIFT
    cs = services.changeset_record(
        zone_id=zone.id, plan=plan, desired=desired, cause=cause, requested_by=requested_by
    )
    Zone.objects.filter(id=zone.id).update(last_reconcile_at=timezone.now(), last_reconcile_error="")
    counts = plan.counts()
    log.info(
        "zone %s: plan %s (%s), change set %s",
        zone.name,
        ", ".join(f"{v} {k}" for k, v in counts.items() if v) or "empty",
        plan.fingerprint()[:12],
        cs.id if cs else "-",
    )


@register_job(queue="dns")
def changeset_apply(*, changeset_id: int) -> None:
    """Apply an approved change set: each group whole, in order; record what was and was not applied."""
    claimed = ChangeSet.objects.filter(id=changeset_id, status=ChangeSet.Status.APPROVED).update(
        status=ChangeSet.Status.APPLYING, started_at=timezone.now()
    )
    if claimed != 1:  # a second click or a redelivered job: the first run owns this apply
        log.info("change set %s is not approved or already claimed; nothing to do", changeset_id)
        return
    cs = ChangeSet.objects.select_related("zone__account").get(id=changeset_id)
    zone = cs.zone
    rows = list(cs.changes.filter(status=Change.Status.PENDING).order_by("position"))
    groups = [
        ChangeGroupInput(
            index=row.id,
            changes=tuple(
                PlanChange(
                    a["Action"], recordset_from_route53(a["ResourceRecordSet"]), a.get("Role", "record")
                )
                for a in row.actions
            ),
        )
        for row in rows
    ]
    provider = services.provider_for(zone.account)
    error = ""
    try:
        with zone_lock(zone.id):
            result = provider.apply(zone.provider_zone_id, groups, wait=True)
    except ZoneBusy:
        # Back to approved: the next run (a moment later) applies it once the zone is free.
        ChangeSet.objects.filter(id=cs.id).update(status=ChangeSet.Status.APPROVED, started_at=None)
        enqueue("changeset_apply", changeset_id=cs.id, delay=2)
        return
    except ProviderError as exc:
        applied_ids, failed, error = set(exc.applied), {}, exc.user_message
        services.zone_invalidate_state(zone_id=zone.id, error=error)
    else:
        applied_ids, failed = set(result.applied), result.failed
    _finish(cs, rows, groups, applied_ids, failed, error)


@transaction.atomic
def _finish(
    cs: ChangeSet,
    rows: list[Change],
    groups: list[ChangeGroupInput],
    applied_ids: set[int],
    failed: dict[int, str],
    error: str,
) -> None:
    now = timezone.now()
    for row in rows:
        if row.id in applied_ids:
            row.status, row.error = Change.Status.APPLIED, ""
        else:
            row.status = Change.Status.FAILED
            row.error = failed.get(row.id) or error or "not applied"
    Change.objects.bulk_update(rows, ["status", "error"])
    total = cs.changes.count()
    applied = cs.changes.filter(status=Change.Status.APPLIED).count()
    if applied == total:
        status = ChangeSet.Status.APPLIED
    elif applied:
        status = ChangeSet.Status.PARTIALLY_APPLIED
    else:
        status = ChangeSet.Status.FAILED
    cs.status, cs.finished_at = status, now
    cs.error = error or ("; ".join(sorted(set(failed.values())))[:2000] if failed else "")
    cs.save(update_fields=["status", "finished_at", "error"])
    zone = Zone.objects.select_for_update().get(id=cs.zone_id)
    # Keep the stored zone state current from what was applied, instead of reading the zone again.
    done = [c for g in groups if g.index in applied_ids for c in g.changes]
    if done and zone.state_valid:
        try:
            current = [recordset_from_route53(r) for r in services.zone_stored_records(zone)]
            from records.recordset import recordset_to_route53

            new_state = apply_changes(current, done)
            services.zone_store_state(
                zone_id=zone.id,
                records=[
                    recordset_to_route53(rs, default_alias_zone_id=zone.provider_zone_id) for rs in new_state
                ],
                full_read=False,
            )
        except (ChangeRejected, ValueError) as exc:
            log.warning(
                "zone %s: stored state disagrees with the apply (%s); reading it again next time",
                zone.name,
                exc,
            )
            zone.state_valid = False
            zone.save(update_fields=["state_valid"])
    if applied:
        zone.applied_desired = cs.desired
        zone.save(update_fields=["applied_desired"])
    if status != ChangeSet.Status.APPLIED:
        Zone.objects.filter(id=zone.id).update(state_valid=False)
    audit_record(
        actor=None,
        action=f"changeset.{status}",
        obj=cs,
        before={"status": "applying"},
        after={"status": status, "applied": applied, "failed": total - applied, "error": cs.error},
    )
    # A reconcile that waited for this apply runs now, from the state the apply left.
    rerun = rq_connection().getdel(_rerun_key(zone.id))
    if rerun is not None:
        transaction.on_commit(lambda: enqueue("zone_reconcile", zone_id=zone.id, cause=rerun.decode()))


@register_job(queue="dns")
def zones_drift_check() -> None:
    """Read each zone again when its drift interval is up; a change made behind the portal's back to a record
    it owns then shows up as a change set that restores it."""
    now = timezone.now()
    for zone in Zone.objects.filter(enabled=True):
        due = (
            zone.last_drift_check_at is None
            or zone.last_drift_check_at + timedelta(seconds=zone.drift_interval) <= now
        )
        if due:
            enqueue("zone_reconcile", zone_id=zone.id, cause=ChangeSet.Cause.DRIFT, full_read=True)


periodic("zones_drift_check", every=60)


@register_job(queue="dns")
def account_check(*, account_id: int) -> None:
    account = ProviderAccount.objects.get(id=account_id)
    try:
        message, ok = services.provider_for(account).check_access(), True
    except ProviderError as exc:
        message, ok = exc.user_message, False
    ProviderAccount.objects.filter(id=account_id).update(
        last_check_at=timezone.now(), last_check_ok=ok, last_check_message=message
    )
    if not ok:
        raise ProviderError(message)


@register_job(queue="dns")
def account_import_zones(*, account_id: int, domain_filter: list | None = None) -> None:
    account = ProviderAccount.objects.get(id=account_id)
    zones = services.provider_for(account).list_zones(domain_filter=domain_filter or ())
    created = 0
    for info in zones:
        _zone, new = services.zone_upsert_imported(
            account_id=account.id, provider_zone_id=info.id, name=info.name, private=info.private
        )
        created += new
    log.info("account %s: %d zones listed, %d imported", account.name, len(zones), created)


def on_endpoints_changed(sender, *, cluster_id: int, names: frozenset[str], **kwargs) -> None:
    """Discovery changed these names: reconcile the zones holding them, once per debounce window."""
    from django.conf import settings

    redis = rq_connection()
    window_ms = settings.RECONCILE_DEBOUNCE_MS
    for zone in services.zones_for_names(names):
        # The first change of a window schedules the reconcile at the window's end; the others ride along.
        if window_ms == 0 or redis.set(f"dnsportal:reconcile-debounce:{zone.id}", 1, nx=True, px=window_ms):
            enqueue(
                "zone_reconcile", zone_id=zone.id, cause=ChangeSet.Cause.DISCOVERY, delay=window_ms / 1000
            )
