"""Jobs of drift detection: a cheap check every drift interval, a full read of the zone only when needed.

Every `drift_interval` (600 s by default) a zone gets a drift check: one cheap provider call (Route53:
`GetHostedZone`, whose `ResourceRecordSetCount` is compared with the stored state's count, and whose
delegation set says where to ask), then the zone's nameservers are asked for every owned record set whose
answer is deterministic (records.drift says which, and judges the answers). Only when something differs, the
check errs, a person asks ("Reconcile now"), or the safety interval (`full_read_interval`, 3600 s) is up is
the zone read through the API (ceil(R/300) `ListResourceRecordSets` calls). A simple owned record whose value
or TTL changed outside the portal is planned straight from the answers, with no zone read.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Sequence
from datetime import datetime, timedelta

from django.utils import timezone

from dnsportal.queue import current_run_id, enqueue, failure_message, register_job, rq_connection
from dnsportal.scheduler import periodic
from records import drift, drift_services, services, verification_services
from records.models import ChangeSet, Zone, ZoneRecord
from records.ownership import read_registry
from records.providers.base import ProviderError
from records.recordset import RecordKey

log = logging.getLogger(__name__)

# Queries in flight at once: a 20,000-record zone on Route53's four nameservers is asked in tens of seconds.
DNS_CONCURRENCY = 64
# Per try, and tries: an unreachable nameserver costs 2 s per query in flight before it is given up.
DNS_TIMEOUT_S = 1.0
DNS_RETRIES = 1
# A nameserver that gave no response this many times in a row is not asked again in this check.
DEAD_AFTER = 3
# When the zone is busy (an apply of the portal's in flight), the check is made again this much later.
RETRY_DELAY_S = 30


def full_read_due(zone: Zone, now: datetime) -> bool:
    """Whether this drift check should be the full read: the stored state is not trusted, or the safety
    interval ends before the next check would come (the check nearest the interval's end reads)."""
    if not zone.state_valid or zone.state_read_at is None:
        return True
    slack = timedelta(seconds=zone.drift_interval / 2)
    return zone.state_read_at + timedelta(seconds=zone.full_read_interval) <= now + slack


@register_job(queue="dns")
def zones_drift_check() -> None:
    """Start each zone's drift check when its drift interval is up: a full read when the safety interval is
    up too (or the stored state is not trusted), else the cheap check (`zone_drift_check`)."""
    now = timezone.now()
    for zone in Zone.objects.filter(enabled=True):
        due = (
            zone.last_drift_check_at is None
            or zone.last_drift_check_at + timedelta(seconds=zone.drift_interval) <= now
        )
        if not due:
            continue
        # Marked when started: a check still running at the next tick is not started twice.
        Zone.objects.filter(id=zone.id).update(last_drift_check_at=now)
        if full_read_due(zone, now):
            why = (
                f"full read (every {_duration(zone.full_read_interval)})"
                if zone.state_valid and zone.state_read_at
                else "full read (the stored state is not known to be current)"
            )
            _read(zone.id, why, found=False)
        else:
            enqueue("zone_drift_check", zone_id=zone.id)


periodic("zones_drift_check", every=60)


def _duration(seconds: int) -> str:
    if seconds % 3600 == 0:
        return f"{seconds // 3600} h"
    if seconds % 60 == 0:
        return f"{seconds // 60} min"
    return f"{seconds} s"


def _read(zone_id: int, summary: str, *, found: bool) -> None:
    drift_services.zone_drift_checked(zone_id=zone_id, summary=summary, found=found)
    enqueue("zone_reconcile", zone_id=zone_id, cause=ChangeSet.Cause.DRIFT, full_read=True)


def _in_flight(zone_id: int) -> bool:
    return ChangeSet.objects.filter(
        zone_id=zone_id, status__in=[ChangeSet.Status.APPROVED, ChangeSet.Status.APPLYING]
    ).exists()


def _later(zone_id: int, why: str) -> None:
    log.info("zone %s %s; checking again in %d s", zone_id, why, RETRY_DELAY_S)
    enqueue("zone_drift_check", zone_id=zone_id, delay=RETRY_DELAY_S)


@register_job(queue="verify")
def zone_drift_check(*, zone_id: int) -> None:
    """The cheap drift check of one zone: the record count, then the nameservers' answers for the owned
    record sets that answer the same to everyone; a full read only when they show a difference that cannot
    be planned from the answers, or the check could not be made."""
    zone = Zone.objects.select_related("account").filter(id=zone_id, enabled=True).first()
    if zone is None:
        return
    if not zone.state_valid or zone.state_known_at is None:
        _read(zone.id, "full read (the stored state is not known to be current)", found=False)
        return
    if _in_flight(zone.id):
        _later(zone.id, "has a change set being applied")
        return
    # The zone row first, then its records: rows newer than `known_at` only make the final check fail.
    known_at = zone.state_known_at
    stored = services.zone_stored_recordsets(zone)
    owned = [
        RecordKey(*k)
        for k in ZoneRecord.objects.filter(zone=zone, ownership=ZoneRecord.Ownership.OWNED).values_list(
            "name", "type", "set_identifier"
        )
    ]
    config = services.zone_config(zone)
    checks = drift.probes(stored, owned, read_registry(stored, config.naming, also_read=config.also_read))
    try:
        summary = services.provider_for(zone.account).zone_summary(zone.provider_zone_id)
    except ProviderError as exc:
        _read(zone.id, f"the record count could not be read ({exc.user_message}): full read", found=False)
        return
    verdict = drift.judge([], {}, stored_count=len(stored), provider_count=summary.record_count)
    if verdict.outcome == drift.UNCHANGED and checks:
        try:
            nameservers = verification_services.zone_nameservers(zone, delegation=summary.nameservers)
            if not nameservers:
                raise ValueError("the zone has no nameservers to ask (a private zone: set an override)")
        except (ValueError, OSError) as exc:
            verdict = drift.Verdict(drift.UNCHECKED, f"the nameservers cannot be asked ({exc}): full read")
        else:
            started = time.perf_counter()
            answers = _ask(nameservers, checks)
            verdict = drift.judge(
                checks,
                answers,
                stored_count=len(stored),
                provider_count=summary.record_count,
                nameservers=len(nameservers),
            )
            log.info(
                "zone %s: %d record sets asked of %d nameservers in %.1f s",
                zone.name,
                len(checks),
                len(nameservers),
                time.perf_counter() - started,
            )
    log.info("zone %s: drift check: %s", zone.name, verdict.summary)
    if verdict.outcome == drift.UNCHANGED:
        drift_services.zone_drift_checked(zone_id=zone.id, summary=verdict.summary, found=False)
        return
    # The answers (and the count) may be an apply of the portal's that ran meanwhile: act only on a
    # difference found against the state that is still stored.
    moved = Zone.objects.filter(id=zone.id).exclude(state_known_at=known_at).exists()
    if moved or _in_flight(zone.id):
        _later(zone.id, "changed while it was checked (an apply of the portal's)")
        return
    if verdict.outcome == drift.RESTORE:
        _restore(zone, verdict, known_at)
    else:
        _read(zone.id, verdict.summary, found=verdict.drift)


def _restore(zone: Zone, verdict: drift.Verdict, known_at: datetime) -> None:
    """Plan the zone from the stored state with the drifted records as answered: the plan restores them
    (an UPSERT back to what the clusters want), with no zone read."""
    from records.jobs import ZoneBusy, _reconcile, _rerun_key, zone_lock

    try:
        with zone_lock(zone.id):
            if _in_flight(zone.id) or not drift_services.zone_observe_records(
                zone_id=zone.id, records=verdict.observed, known_at=known_at
            ):
                _later(zone.id, "changed while it was checked")
                return
            drift_services.zone_drift_checked(zone_id=zone.id, summary=verdict.summary, found=True)
            zone = Zone.objects.select_related("account").get(id=zone.id)
            try:
                cs = _reconcile(
                    zone, cause=ChangeSet.Cause.DRIFT, requested_by_id=None, full_read=False, adopt=[]
                )
            except Exception as exc:
                services.zone_reconcile_failed(
                    zone_id=zone.id, error=failure_message(exc), run_id=current_run_id()
                )
                raise
    except ZoneBusy:
        _later(zone.id, "is busy")
        return
    if cs is not None:
        note = f"Drift found by the nameservers' answers: {verdict.summary}"
        if note not in cs.notes:
            ChangeSet.objects.filter(id=cs.id).update(notes=[*cs.notes, note])
    if rq_connection().delete(_rerun_key(zone.id)):
        # A discovery reconcile came while this one held the zone: it follows now.
        enqueue("zone_reconcile", zone_id=zone.id, cause=ChangeSet.Cause.DISCOVERY)


def _seen(ns: object, answer: object) -> drift.Seen:
    return drift.Seen(
        str(ns),
        answer.status,  # type: ignore[attr-defined]
        answer.values,  # type: ignore[attr-defined]
        answer.ttl,  # type: ignore[attr-defined]
        answer.authoritative,  # type: ignore[attr-defined]
        answer.detail,  # type: ignore[attr-defined]
    )


def _ask(nameservers: Sequence, checks: Sequence[drift.Probe]) -> dict[RecordKey, list[drift.Seen]]:
    """Each record set asked of one nameserver (spread over them; the next one when it gives no response);
    a record set whose answer differs is then asked of every other nameserver too, so a difference is
    acted on only when they all agree. A nameserver silent `DEAD_AFTER` times in a row is skipped."""
    from records.verify import _run

    return _run(_ask_async(list(nameservers), list(checks)))


async def _ask_async(nameservers: list, checks: list[drift.Probe]) -> dict[RecordKey, list[drift.Seen]]:
    from records.verify import _Sockets, query_async

    out: dict[RecordKey, list[drift.Seen]] = {p.key: [] for p in checks}
    silent = dict.fromkeys(range(len(nameservers)), 0)

    def alive(i: int) -> bool:
        return silent[i] < DEAD_AFTER

    async def ask(sockets: _Sockets, i: int, probe: drift.Probe) -> drift.Seen:
        answer = await query_async(
            nameservers[i],
            probe.record.name,
            probe.record.type,
            timeout=DNS_TIMEOUT_S,
            retries=DNS_RETRIES,
            sockets=sockets,
        )
        silent[i] = 0 if answer.responded else silent[i] + 1
        seen = _seen(nameservers[i], answer)
        out[probe.key].append(seen)
        return seen

    async def run(jobs: list[tuple[drift.Probe, list[int]]], *, all_of: bool) -> None:
        counter = itertools.count()

        async def worker() -> None:
            sockets = _Sockets()
            try:
                while (j := next(counter)) < len(jobs):
                    probe, order = jobs[j]
                    for i in order:
                        if not alive(i):
                            continue
                        seen = await ask(sockets, i, probe)
                        if seen.responded and not all_of:
                            break
            finally:
                await sockets.close()

        await asyncio.gather(*(worker() for _ in range(max(1, min(DNS_CONCURRENCY, len(jobs))))))

    n = len(nameservers)
    spread = [(p, [(k + s) % n for s in range(n)]) for k, p in enumerate(checks)]
    await run(spread, all_of=False)
    again = []
    for k, probe in enumerate(checks):
        got = out[probe.key]
        if got and got[-1].responded and drift.matches(probe, got[-1]):
            continue
        asked = {str(s.nameserver) for s in got}
        rest = [(k + s) % n for s in range(n) if str(nameservers[(k + s) % n]) not in asked]
        if rest:
            again.append((probe, rest))
    if again:
        await run(again, all_of=True)
    return out
