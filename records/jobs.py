"""Thin jobs of the records app: reconcile a zone, apply a change set, check drift, accounts and imports."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Q, Subquery
from django.utils import timezone
from redis.exceptions import RedisError

from dnsportal import metrics
from dnsportal.queue import current_run_id, enqueue, failure_message, register_job, rq_connection
from dnsportal.scheduler import periodic
from records import changesets, debounce, plan_scope, proposals, services
from records.endpoint import Endpoint as EndpointData
from records.models import Change, ChangeSet, ProviderAccount, Zone
from records.plan import ACTION_UPSERT, ChangeRejected, collector_paused, compute_plan, hold_names
from records.plan import Change as PlanChange
from records.providers.base import ChangeGroupInput, ProviderError
from records.recordset import RecordSet, recordset_from_route53

log = logging.getLogger(__name__)

ZONE_LOCK_TTL_S = 600


class ApplyFailed(Exception):
    """The change set says what was and was not applied; the job run fails too, so the Jobs page and the
    dashboard's failed-jobs count show it where people look."""

    def __init__(self, user_message: str) -> None:
        super().__init__(user_message)
        self.user_message = user_message


class ZoneBusy(Exception):
    pass


_RELEASE = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"


def _zone_lock_key(zone_id: int) -> str:
    return f"dnsportal:zone-lock:{zone_id}"


# The zone lock is a lease: its holder renews it every third of this, so the lock of a worker killed while
# holding it is free this long after (not after a fixed expiry as long as the longest reconcile).
ZONE_LOCK_LEASE_S = 30
_RENEW = (
    "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end "
    "return 0"
)


@contextmanager
def zone_lock(zone_id: int, token: str | None = None):
    """One reconcile or apply per zone at a time, across every worker (a Redis lease, renewed while held).

    An apply holds it under a token naming its attempt, so the resume job can break the lock of an apply whose
    worker died (instead of waiting out the lease).
    """
    redis = rq_connection()
    key, token = _zone_lock_key(zone_id), token or uuid.uuid4().hex
    if not redis.set(key, token, nx=True, ex=ZONE_LOCK_LEASE_S):
        raise ZoneBusy(zone_id)
    held = threading.Event()
    renewer = threading.Thread(
        target=_renew_zone_lock, args=(redis, key, token, held), name=f"zone-lock-{zone_id}", daemon=True
    )
    renewer.start()
    try:
        yield
    finally:
        held.set()
        redis.eval(_RELEASE, 1, key, token)


def _renew_zone_lock(redis, key: str, token: str, released: threading.Event) -> None:
    while not released.wait(ZONE_LOCK_LEASE_S / 3):
        try:
            redis.eval(_RENEW, 1, key, token, ZONE_LOCK_LEASE_S * 1000)
        except RedisError:  # Redis away for a moment: the next renewal tries again, within the lease
            log.warning("renewing %s failed", key, exc_info=True)


def _apply_token(cs: ChangeSet) -> str:
    return f"apply-{cs.id}-{cs.apply_attempts}"


def _rerun_key(zone_id: int) -> str:
    return f"dnsportal:zone-rerun:{zone_id}"


def _rerun_later(zone_id: int, cause: str, *, scoped: bool) -> None:
    """A discovery reconcile follows the running one (or apply): of the changed names only when every
    reconcile that asked was of those (a whole-zone request is never narrowed)."""
    key = _rerun_key(zone_id)
    if scoped:
        rq_connection().set(key, f"{cause}|scoped", ex=ZONE_LOCK_TTL_S, nx=True)
    else:
        rq_connection().set(key, cause, ex=ZONE_LOCK_TTL_S)


def _rerun_now(zone_id: int) -> None:
    """Enqueue the reconcile that waited for the running one, if any."""
    rerun = rq_connection().getdel(_rerun_key(zone_id))
    if rerun is not None:
        cause, _, scoped = rerun.decode().partition("|")
        enqueue("zone_reconcile", zone_id=zone_id, cause=cause, scoped=scoped == "scoped")


@register_job(queue="dns")
@collector_paused()  # a large zone is many objects and no cycles: see plan.collector_paused
def zone_reconcile(
    *,
    zone_id: int,
    cause: str = "discovery",
    requested_by_id: int | None = None,
    full_read: bool = False,
    adopt: list | None = None,
    not_before: float | None = None,
    scoped: bool = False,
) -> None:
    """Plan the zone against what the clusters want; store the plan as a change set for review (or apply it
    when the zone auto-applies and nothing needs a person).

    `scoped`: discovery's events queued it, and named the host names they changed (records.debounce): when
    nothing else asks for the whole zone, only those names are planned (records.plan_scope, `_scope_for`).

    `not_before` (epoch seconds) is the end of a debounce window: the job waits for it, so every discovery
    change of the window is in this one plan. (RQ's scheduler keeps whole seconds and polls once a second,
    which would add up to two seconds to a window of one.) While it waits it reads the zone's stored state,
    so after the window only the endpoints are left to read before planning.
    """
    stored = None
    if not_before is not None and not_before > time.time():
        # What the window's changes cannot alter (the zone's stored state, the last applied endpoints) is
        # read while waiting; the plan uses it only if the zone's state did not move meanwhile. (A plan of a
        # few names reads a few rows: nothing to read ahead.)
        stored = None if scoped else _read_stored_state(zone_id)
        wait = not_before - time.time()
        if wait > 0:
            time.sleep(min(wait, 5.0))
    zone = Zone.objects.select_related("account").filter(id=zone_id, enabled=True).first()
    if zone is None:
        log.info("zone %s is gone or disabled; nothing to reconcile", zone_id)
        return

    def later(why: str) -> None:
        if requested_by_id is not None or adopt:
            # A person's request (its requester must not approve the result; an adoption) is kept whole.
            enqueue(
                "zone_reconcile",
                zone_id=zone_id,
                cause=cause,
                requested_by_id=requested_by_id,
                full_read=full_read,
                adopt=adopt,
                delay=2,
            )
        else:
            # Another discovery reconcile follows the running one, and sees these changes too.
            _rerun_later(zone_id, cause, scoped=scoped)
        log.info("zone %s %s; reconciling after it", zone.name, why)

    in_flight = zone.changesets.filter(status__in=[ChangeSet.Status.APPROVED, ChangeSet.Status.APPLYING])
    if in_flight.exists():
        # Planning now would plan the same changes again from the state before that apply: wait for it.
        later("has a change set being applied")
        return
    try:
        with zone_lock(zone_id), metrics.timed(metrics.RECONCILE_DURATION, zone=zone.display_name):
            _reconcile(
                zone,
                cause=cause,
                requested_by_id=requested_by_id,
                full_read=full_read,
                adopt=adopt or [],
                stored=stored,
                scoped=scoped,
            )
    except ZoneBusy:
        later("is busy")
        return
    except Exception as exc:
        # The run fails too; the zone keeps the message and the run, so its pages show it (STYLE.md).
        services.zone_reconcile_failed(zone_id=zone_id, error=failure_message(exc), run_id=current_run_id())
        raise
    _rerun_now(zone_id)


@dataclass(frozen=True)
class StoredState:
    """A zone's stored record sets and last applied endpoints, parsed, as of `known_at`."""

    known_at: datetime
    current: list[RecordSet]
    previous: list[EndpointData] | None


def _read_stored_state(zone_id: int) -> StoredState | None:
    zone = Zone.objects.filter(id=zone_id, enabled=True, state_valid=True).first()
    if zone is None or zone.state_known_at is None:
        return None
    # Every write of the stored rows or of the applied endpoints moves `state_known_at` in the same
    # transaction, and the zone row is read first: rows newer than `known_at` only make `_still_current` fail.
    return StoredState(
        known_at=zone.state_known_at,
        current=services.zone_stored_recordsets(zone),
        previous=services.from_snapshot(zone.applied_desired) or None,
    )


def _still_current(zone_id: int, stored: StoredState | None) -> StoredState | None:
    if stored is None:
        return None
    valid, known_at = Zone.objects.filter(id=zone_id).values_list("state_valid", "state_known_at").get()
    return stored if valid and known_at == stored.known_at else None


def _reconcile(
    zone: Zone,
    *,
    cause: str,
    requested_by_id: int | None,
    full_read: bool,
    adopt: list,
    stored: StoredState | None = None,
    scoped: bool = False,
) -> ChangeSet | None:
    now = timezone.now()
    # Between full reads the drift check (records.jobs_drift) keeps the stored state honest from DNS answers.
    drift_due = (
        zone.state_read_at is None or zone.state_read_at + timedelta(seconds=zone.full_read_interval) <= now
    )
    redis = rq_connection()
    try:
        noted = debounce.changed_names(redis, zone.id)
    except RedisError as exc:
        log.warning(
            "zone %s: the changed names could not be read (%s); planning the whole zone", zone.name, exc
        )
        noted = debounce.Noted(known=False, names=frozenset(), run_id="")
    changed = noted.names if noted.known else None
    if scoped and changed is not None and not changed:
        log.info("zone %s: the names its events changed are planned already", zone.name)
        return None
    full = full_read or drift_due or not zone.state_valid
    scope = _scope_for(
        zone, changed, scoped=scoped and not full, cause=cause, person=bool(requested_by_id or adopt)
    )
    if scope is not None:
        cs = _reconcile_names(zone, scope)
        _names_planned(redis, zone, scope)
        return cs
    try:
        if full:
            stored = None
            records = services.provider_for(zone.account).list_record_sets(zone.provider_zone_id)
            current = services.zone_store_state(zone_id=zone.id, records=records, full_read=True)
            Zone.objects.filter(id=zone.id).update(last_drift_check_at=now)
            log.info("zone %s: read %d record sets", zone.name, len(current))
        elif (stored := _still_current(zone.id, stored)) is not None:
            current = stored.current
        else:
            current = services.zone_stored_recordsets(zone)
    except ProviderError:
        services.zone_invalidate_state(zone_id=zone.id)  # zone_reconcile records the error
        raise
    desired = services.desired_for_zone(zone)
    previous = stored.previous if stored else services.from_snapshot(zone.applied_desired) or None
    with metrics.timed(metrics.PLAN_DURATION, zone=zone.display_name):
        plan = compute_plan(
            desired,
            current,
            services.zone_config(zone),
            adopt=[tuple(a) for a in adopt],
            previous=previous,
        )
    metrics.PLAN_CHANGES.labels(zone.display_name).observe(len(plan.groups))
    # A name whose traffic policy is being written to the clusters stays as it is in DNS until it is all
    # written: a half-written split is one nobody approved.
    plan = hold_names(plan, proposals.held_names(zone))
    requested_by = get_user_model().objects.filter(id=requested_by_id).first() if requested_by_id else None
    if (
        cause == ChangeSet.Cause.DISCOVERY
        and any(g.drift for g in plan.groups)
        and not any(not g.drift for g in plan.groups)
    ):
        cause = ChangeSet.Cause.DRIFT
    cs = changesets.changeset_record(
        zone_id=zone.id, plan=plan, desired=desired, cause=cause, requested_by=requested_by, adopt=adopt
    )
    _planned(zone, plan, cs)
    _names_planned(redis, zone, noted.names, whole_zone=noted.run_id)
    return cs


def _planned(zone: Zone, plan, cs: ChangeSet | None, scope: frozenset[str] | None = None) -> None:
    Zone.objects.filter(id=zone.id).update(
        last_reconcile_at=timezone.now(), last_reconcile_error="", last_reconcile_run_id=current_run_id()
    )
    counts = plan.counts()
    log.info(
        "zone %s: plan %s (%s)%s, change set %s",
        zone.name,
        ", ".join(f"{v} {k}" for k, v in counts.items() if v) or "empty",
        plan.fingerprint()[:12],
        f" of {len(scope)} changed name(s)" if scope is not None else "",
        cs.id if cs else "-",
    )


def _scope_for(
    zone: Zone, changed: frozenset[str] | None, *, scoped: bool, cause: str, person: bool
) -> frozenset[str] | None:
    """The names to plan, when discovery's events named them and nothing asks for the whole zone; else None.

    The whole zone is planned when the changed names are not known, too many, or when the last plan left
    something undone: a change set waiting for review, rejected, failed or partly applied (their changes are
    planned again with everything else), or a reconcile that failed.
    """
    if not scoped or not changed or cause != ChangeSet.Cause.DISCOVERY or person:
        return None
    if len(changed) > settings.RECONCILE_SCOPE_MAX_NAMES or zone.last_reconcile_error:
        return None
    last = zone.changesets.order_by("-created_at", "-id").values_list("status", flat=True).first()
    if last not in (None, ChangeSet.Status.APPLIED, ChangeSet.Status.SUPERSEDED):
        return None
    return plan_scope.scope_names(changed)


def _reconcile_names(zone: Zone, scope: frozenset[str]) -> ChangeSet | None:
    """Plan the changed names only, from the stored state's rows that decide them."""
    config = services.zone_config(zone)
    lookup = plan_scope.scoped_lookup_names(scope, (config.naming, *config.also_read))
    desired = services.desired_for_zone(zone, scope)
    with metrics.timed(metrics.PLAN_DURATION, zone=zone.display_name):
        plan = compute_plan(
            desired,
            services.zone_stored_recordsets(zone, lookup),
            config,
            previous=services.applied_desired_at(zone, scope),
            scope=scope,
            owned_total=services.owned_in_zone(zone),
        )
    metrics.PLAN_CHANGES.labels(zone.display_name).observe(len(plan.groups))
    plan = hold_names(plan, proposals.held_names(zone))
    cs = changesets.changeset_record(
        zone_id=zone.id, plan=plan, desired=desired, cause=ChangeSet.Cause.DISCOVERY, scope=scope
    )
    _planned(zone, plan, cs, scope)
    return cs


def _names_planned(redis, zone: Zone, names, *, whole_zone: str = "") -> None:
    try:
        debounce.names_planned(redis, zone.id, [n.rstrip(".") for n in names], whole_zone=whole_zone)
    except RedisError as exc:
        # The names stay in the set: a later reconcile plans them again (an empty plan for them).
        log.warning("zone %s: could not mark the changed names planned (%s)", zone.name, exc)


@register_job(queue="dns")
@collector_paused()  # a large zone is many objects and no cycles: see plan.collector_paused
def changeset_apply(*, changeset_id: int) -> None:
    """Apply an approved change set exactly once: each group whole, in order; record what was and was not.

    Before sending anything the change set is re-planned against the zone's current state: when reality moved
    since approval it goes back to pending with the new diff; when a worker died mid-apply, the next run first
    reads the zone and sends only what is still missing.
    """
    now = timezone.now()
    with transaction.atomic():
        cs = ChangeSet.objects.select_for_update().filter(id=changeset_id).first()
        if cs is None or cs.status != ChangeSet.Status.APPROVED:
            # A second click, a second worker, a redelivered job: the first claim owns this apply.
            log.info("change set %s is not approved (or already claimed); nothing to do", changeset_id)
            return
        resumed = cs.apply_attempts > 0
        changesets.transition(
            cs,
            ChangeSet.Status.APPLYING,
            started_at=cs.started_at or now,
            lease_until=now + timedelta(seconds=settings.APPLY_LEASE_S),
            apply_attempts=cs.apply_attempts + 1,
        )
    zone = Zone.objects.select_related("account").get(id=cs.zone_id)
    provider = services.provider_for(zone.account)
    try:
        with (
            zone_lock(zone.id, token=_apply_token(cs)),
            metrics.timed(metrics.APPLY_DURATION, zone=zone.display_name) as outcome,
        ):
            _apply_locked(cs, zone, provider, resumed=resumed)
            # applied, partially_applied, failed; "pending" when reality moved and it was planned again
            outcome["result"] = ChangeSet.objects.values_list("status", flat=True).get(id=changeset_id)
    except ZoneBusy:
        with transaction.atomic():
            cs = ChangeSet.objects.select_for_update().get(id=changeset_id)
            changesets.transition(
                cs, ChangeSet.Status.APPROVED, note="the zone is busy; applying in a moment", lease_until=None
            )
        enqueue("changeset_apply", changeset_id=changeset_id, delay=2)
        return
    status, error = ChangeSet.objects.values_list("status", "error").get(id=changeset_id)
    if status in {ChangeSet.Status.FAILED, ChangeSet.Status.PARTIALLY_APPLIED}:
        raise ApplyFailed(f"change set #{changeset_id} {ChangeSet.Status(status).label.lower()}: {error}")


def _apply_locked(cs: ChangeSet, zone: Zone, provider, *, resumed: bool) -> None:
    # The stored state is as fresh as the last read or the last apply of ours (which updated it).
    age = (timezone.now() - zone.state_known_at).total_seconds() if zone.state_known_at else None
    # Planned from this very stored state, and nothing has touched it since: planning again would give the
    # same diff, so it is skipped (in a 20,000-record zone that is most of an apply's time).
    unchanged = (
        not resumed
        and zone.state_valid
        and age is not None
        and age <= settings.APPLY_STATE_MAX_AGE_S
        and zone.state_known_at <= cs.created_at
    )
    current: list = []
    # A plan of a few changed names is checked again against those names' rows only (records.plan_scope).
    scope = plan_scope.scope_names(cs.scope) if cs.scope else None
    config = services.zone_config(zone)
    lookup = None
    if scope is not None:
        lookup = plan_scope.scoped_lookup_names(scope, (config.naming, *config.also_read))
    stale = age is None or age > settings.APPLY_STATE_MAX_AGE_S
    try:
        if (
            stale
            and lookup is not None
            and not resumed
            and zone.state_valid
            and _names_as_stored(cs, zone, provider)
        ):
            # The names it changes read as stored: the stored rows are good for this plan of a few names.
            current = services.zone_stored_recordsets(zone, lookup)
        elif resumed or not zone.state_valid or stale:
            records = provider.list_record_sets(zone.provider_zone_id)
            current = services.zone_store_state(zone_id=zone.id, records=records, full_read=True)
            if lookup is not None:
                current = plan_scope.scoped_current(current, lookup)
        elif not unchanged:
            current = services.zone_stored_recordsets(zone, lookup)
    except ProviderError as exc:
        services.zone_invalidate_state(zone_id=zone.id, error=exc.user_message, run_id=current_run_id())
        _finish(cs, [], [], set(), {}, f"reading the zone before the apply failed: {exc.user_message}")
        return
    rows_qs = cs.changes.exclude(status=Change.Status.APPLIED).order_by("position")
    if unchanged or resumed:
        # Only the actions are sent; what the review page shows stays in the database (10,000 rows of it).
        rows_qs = rows_qs.defer("before", "after", "sources", "reasons")
    rows = list(rows_qs)
    if resumed:
        # Resumed after a worker died: what the dead worker got through is in the zone already.
        in_effect = [row for row in rows if _row_in_effect(row, current)]
        for row in in_effect:
            row.status, row.error = Change.Status.APPLIED, ""
        _store_outcomes(in_effect)
        rows = [row for row in rows if row.status != Change.Status.APPLIED]
        log.info(
            "change set %s resumed: %d group(s) already in effect, %d to send",
            cs.id,
            len(in_effect),
            len(rows),
        )
    elif not unchanged:
        plan = compute_plan(
            services.from_snapshot(cs.desired),
            current,
            config,
            adopt=[tuple(a) for a in cs.adopt],  # what the approver agreed to take over
            previous=(
                services.applied_desired_at(zone, scope)
                if scope is not None
                else services.from_snapshot(zone.applied_desired) or None
            ),
            scope=scope,
            owned_total=services.owned_in_zone(zone) if scope is not None else None,
        )
        plan = hold_names(plan, proposals.held_names(zone))
        if changesets.diff_signature(plan.to_dict()["groups"]) != changesets.rows_signature(rows):
            changesets.changeset_replan(changeset_id=cs.id, plan=plan)
            return
    attempt_key = f"{cs.id}-{cs.apply_attempts}"
    Change.objects.filter(id__in=[r.id for r in rows]).update(batch_key=attempt_key)
    groups = [ChangeGroupInput(index=row.id, changes=_plan_changes(row)) for row in rows]
    error = ""
    try:
        result = provider.apply(zone.provider_zone_id, groups, wait=True)
    except ProviderError as exc:
        applied_ids, failed, error = set(exc.applied), {}, exc.user_message
        services.zone_invalidate_state(zone_id=zone.id, error=error, run_id=current_run_id())
    else:
        applied_ids, failed = set(result.applied), result.failed
    _finish(cs, rows, groups, applied_ids, failed, error)


def _names_as_stored(cs: ChangeSet, zone: Zone, provider) -> bool:
    """Whether the provider shows what the stored state holds at every name the change set UPSERTs: a list
    request or two instead of reading a large zone whole before applying a plan of a few names.

    Only UPSERTs need it: Route53 checks a CREATE (refused where the record set is) and a DELETE (refused
    unless it matches exactly) in the batch itself, all or nothing, so a zone that moved makes those fail
    rather than overwrite; an UPSERT writes over whatever is there (another owner's record included).
    """
    names = {
        a["ResourceRecordSet"]["Name"]
        for actions in cs.changes.values_list("actions", flat=True)
        for a in actions
        if a["Action"] == ACTION_UPSERT
    }
    if not names:
        return True
    fresh = provider.record_sets_at(zone.provider_zone_id, names)
    if fresh is None:
        return False
    stored: dict[str, set[RecordSet]] = {}
    for rs in services.zone_stored_recordsets(zone, fresh):
        stored.setdefault(rs.name, set()).add(rs)
    moved = sorted(n for n, rss in fresh.items() if set(rss) != stored.get(n, set()))
    if moved:
        log.info(
            "zone %s: %s changed since the zone was read; reading it whole", zone.name, ", ".join(moved[:5])
        )
    return not moved


def _plan_changes(row: Change) -> tuple[PlanChange, ...]:
    return tuple(
        PlanChange(a["Action"], recordset_from_route53(a["ResourceRecordSet"]), a.get("Role", "record"))
        for a in row.actions
    )


def _row_in_effect(row: Change, current: list) -> bool:
    """Whether every change of the group is already what the zone holds (a CREATE/UPSERT's record set is there
    as written; a DELETE's is gone)."""
    state = {(rs.name, rs.type, rs.set_identifier): rs for rs in current}
    for change in _plan_changes(row):
        key = (change.record.name, change.record.type, change.record.set_identifier)
        if change.action == "DELETE":
            if key in state and state[key] == change.record:
                return False
        elif state.get(key) != change.record:
            return False
    return True


def _store_outcomes(rows: list[Change]) -> None:
    """Save each row's status and error: one UPDATE per distinct outcome. (bulk_update would send one CASE
    over every id: with 10,000 changes PostgreSQL took minutes on it, far longer than Route53 took.)"""
    by_outcome: dict[tuple[str, str], list[int]] = {}
    for row in rows:
        by_outcome.setdefault((row.status, row.error), []).append(row.id)
    for (status, error), ids in by_outcome.items():
        Change.objects.filter(id__in=ids).update(status=status, error=error)


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
    _store_outcomes(rows)
    cs = ChangeSet.objects.select_for_update().get(id=cs.id)
    total = cs.changes.count()
    applied = cs.changes.filter(status=Change.Status.APPLIED).count()
    if applied == total:
        status = ChangeSet.Status.APPLIED
    elif applied:
        status = ChangeSet.Status.PARTIALLY_APPLIED
    else:
        status = ChangeSet.Status.FAILED
    message = error or ("; ".join(sorted(set(failed.values())))[:2000] if failed else "")
    changesets.transition(cs, status, note=message, finished_at=now, error=message, lease_until=None)
    zone = Zone.objects.select_for_update().get(id=cs.zone_id)
    # Keep the stored zone state current from what was applied, instead of reading the zone again.
    done = [c for g in groups if g.index in applied_ids for c in g.changes]
    if done and zone.state_valid:
        try:
            services.zone_apply_to_state(zone_id=zone.id, changes=done)
        except (ChangeRejected, ValueError) as exc:
            log.warning(
                "zone %s: stored state disagrees with the apply (%s); reading it again next time",
                zone.name,
                exc,
            )
            zone.state_valid = False
            zone.save(update_fields=["state_valid"])
    if applied and cs.scope:
        # A plan of a few names: the applied endpoints change at those names only.
        services.applied_desired_merge(zone_id=zone.id, changeset_id=cs.id, names=cs.scope)
    elif applied:
        # Copied inside the database: the snapshot need not travel through Python twice. It is part of the
        # stored state (what the next plan starts from), so `state_known_at` moves with it.
        Zone.objects.filter(id=zone.id).update(
            applied_desired=Subquery(ChangeSet.objects.filter(id=cs.id).values("desired")[:1]),
            state_known_at=timezone.now(),
        )
    if status != ChangeSet.Status.APPLIED:
        Zone.objects.filter(id=zone.id).update(state_valid=False)
    if zone.webhook_url:
        transaction.on_commit(lambda: enqueue("changeset_webhook", changeset_id=cs.id))
    if applied:
        # The provider reported the changes in sync: ask the nameservers whether they answer as planned.
        transaction.on_commit(lambda: enqueue("zone_verify", zone_id=zone.id, changeset_id=cs.id))
        if any(c.record.health_check_id for c in done if c.action == "DELETE"):
            # A record set that named one of our health checks is gone: the check may be unused now.
            transaction.on_commit(lambda: enqueue("health_checks_prune", zone_id=zone.id))
    # A reconcile that waited for this apply runs now, from the state the apply left.
    transaction.on_commit(lambda: _rerun_now(zone.id))


@register_job(queue="default")
def changeset_webhook(*, changeset_id: int) -> None:
    """POST a JSON summary of a finished change set to its zone's webhook URL."""
    import requests

    cs = ChangeSet.objects.select_related("zone", "requested_by", "approved_by").get(id=changeset_id)
    changes = list(cs.changes.all())
    payload = {
        "event": "changeset.finished",
        "changeset": cs.id,
        "zone": cs.zone.display_name,
        "status": cs.status,
        "cause": cs.cause,
        "summary": cs.summary,
        "applied": sum(1 for c in changes if c.status == Change.Status.APPLIED),
        "failed": [
            {"name": c.name, "type": c.type, "set_identifier": c.set_identifier, "error": c.error}
            for c in changes
            if c.status == Change.Status.FAILED
        ],
        "requested_by": cs.requested_by.username if cs.requested_by else None,
        "approved_by": cs.approved_by.username if cs.approved_by else None,
        "finished_at": cs.finished_at.isoformat() if cs.finished_at else None,
    }
    response = requests.post(cs.zone.webhook_url, json=payload, timeout=5)
    if response.status_code >= 300:
        raise RuntimeError(f"the webhook of {cs.zone} answered {response.status_code}")
    log.info("webhook of %s notified of change set %s", cs.zone, cs.id)


@register_job(queue="dns")
def changesets_resume() -> None:
    """Hand change sets whose applying worker died (its lease ran out) to the next worker, and queue the apply
    of approved change sets whose apply job was lost."""
    for cs_id in ChangeSet.objects.filter(
        status=ChangeSet.Status.APPLYING, lease_until__lt=timezone.now()
    ).values_list("id", flat=True):
        with transaction.atomic():
            cs = ChangeSet.objects.select_for_update().get(id=cs_id)
            if (
                cs.status != ChangeSet.Status.APPLYING
                or cs.lease_until is None
                or cs.lease_until >= timezone.now()
            ):
                continue
            # The dead worker's zone lock goes with it (only that lock: its token names the attempt).
            rq_connection().eval(_RELEASE, 1, _zone_lock_key(cs.zone_id), _apply_token(cs))
            changesets.transition(
                cs,
                ChangeSet.Status.APPROVED,
                note="resuming: the worker applying it stopped",
                lease_until=None,
            )
            enqueue("changeset_apply", changeset_id=cs.id)
    _approved_without_apply()


def _approved_without_apply() -> None:
    """Approved change sets that no apply job will ever claim: their run failed before claiming them (the
    database restarted under it), or its enqueue was lost (Redis away as a busy zone's apply asked to be run
    again). Each blocks its zone: every later reconcile waits for it. Queue its apply again; a second run of
    it claims nothing (the apply claims the approved row once)."""
    from dnsportal.models import JobRun

    cutoff = timezone.now() - timedelta(seconds=APPROVED_GRACE_S)
    for cs_id in ChangeSet.objects.filter(
        status=ChangeSet.Status.APPROVED, approved_at__lt=cutoff
    ).values_list("id", flat=True):
        runs = JobRun.objects.filter(name="changeset_apply", kwargs__changeset_id=cs_id)
        live = Q(status__in=[JobRun.Status.PENDING, JobRun.Status.RUNNING]) | Q(created_at__gte=cutoff)
        if runs.filter(live).exists():
            continue  # a run will claim it, or one just ended (and may have moved it on)
        with transaction.atomic():
            locked = ChangeSet.objects.select_for_update().filter(id=cs_id).values_list("status", flat=True)
            if locked.first() != ChangeSet.Status.APPROVED:
                continue
            log.warning("change set %s is approved and no apply job will claim it; applying it now", cs_id)
            enqueue("changeset_apply", changeset_id=cs_id)


# An approved change set's apply job is queued as it is approved: one without a live job this long after
# approval lost it.
APPROVED_GRACE_S = 60
periodic("changesets_resume", every=60)


@register_job(queue="dns")
def zones_rerun_sweep() -> None:
    """Reconciles nothing else will run. One asked for while its zone was busy waits in the zone's rerun key
    for the holder of the zone lock to run it at its end; a holder killed with its worker never will (its
    lock's lease runs out): run those when the zone's lock is free and no reconcile of it is queued or
    running. And a zone whose last reconcile failed is reconciled again."""
    from dnsportal.models import JobRun

    redis = rq_connection()
    for key in redis.scan_iter(match=_rerun_key("*"), count=1000):
        zone_id = int(key.decode().rsplit(":", 1)[1])
        if redis.exists(_zone_lock_key(zone_id)):
            continue  # a holder lives, and runs it at its end
        waiting = JobRun.objects.filter(
            name="zone_reconcile",
            kwargs__zone_id=zone_id,
            status__in=[JobRun.Status.PENDING, JobRun.Status.RUNNING],
        )
        if waiting.exists():
            continue
        rerun = redis.getdel(key)
        if rerun is not None:
            log.warning("zone %s: the reconcile that was to follow a dead worker's runs now", zone_id)
            enqueue("zone_reconcile", zone_id=zone_id, cause=rerun.decode().partition("|")[0])
    # A reconcile that failed (Redis or PostgreSQL away, the provider throttling) is not run again by anything
    # else: the changes it was to plan would wait for the zone's next event. Again, at most every 30 s.
    failed_before = timezone.now() - timedelta(seconds=30)
    for zone_id, run_id in (
        Zone.objects.filter(enabled=True)
        .exclude(last_reconcile_error="")
        .values_list("id", "last_reconcile_run_id")
    ):
        last = (
            JobRun.objects.filter(id=run_id).values_list("status", "finished_at").first() if run_id else None
        )
        if last is not None and (last[0] != JobRun.Status.FAILED or not last[1] or last[1] > failed_before):
            continue
        waiting = JobRun.objects.filter(
            name="zone_reconcile",
            kwargs__zone_id=zone_id,
            status__in=[JobRun.Status.PENDING, JobRun.Status.RUNNING],
        )
        if not waiting.exists():
            log.warning("zone %s: its last reconcile failed; reconciling again", zone_id)
            enqueue("zone_reconcile", zone_id=zone_id, cause=ChangeSet.Cause.DISCOVERY)


periodic("zones_rerun_sweep", every=15)


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
    """Discovery changed these names: reconcile the zones holding them, at once in a quiet zone, then once
    at the end of the debounce window for whatever came in during it (records/debounce.py). The names are
    noted first, so the reconcile plans just them (`scoped`)."""
    redis = rq_connection()
    for zone_id, inside in services.names_by_zone(names).items():
        decision = debounce.decide(redis, zone_id, settings.RECONCILE_DEBOUNCE_MS, inside)
        if decision.enqueue:
            enqueue(
                "zone_reconcile",
                zone_id=zone_id,
                cause=ChangeSet.Cause.DISCOVERY,
                not_before=time.time() + decision.delay_s if decision.delay_s else None,
                scoped=True,
            )


# Jobs of drift checks, verification and traffic policies on the DNS side register with these modules.
from records import jobs_drift, jobs_drill, jobs_shift, jobs_traffic, jobs_verify  # noqa: E402, F401
