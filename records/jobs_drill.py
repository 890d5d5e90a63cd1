"""The runner of failover drills: `drill_run` marks the primary unhealthy, samples every authoritative
nameserver until all answer the secondary, restores the primary (always: a drill that fails anywhere must
never leave the primary marked unhealthy), samples until all answer the primary again, and records it all.

How the primary is marked unhealthy (FailoverDrill.action):
- Route53: the portal's own health check of the primary is inverted (UpdateHealthCheck Inverted=true) and
  restored (Inverted=false), each read back from Route53.
- PowerDNS, demo hook: `ifurlup` asks the health check URL's port on each primary address; the demo page
  server there (tools/demo_http) is switched to answer 503 (`POST /-/health` "down"), then "up".
- PowerDNS, operator action: the drill POSTs `{"drill", "hostname", "primary", "action": "fail"}` to the
  fail URL and `..."restore"` to the restore URL (JSON, 10 s, redirects not followed, 2xx expected).

Where the nameservers cannot be asked (a Route53 stand-in such as moto serves no DNS; real Route53 without
the zone's delegation resolvable), the drill still inverts and restores the check, and says that the answers
were not measured. A worker killed mid-drill leaves `primary_marked` set and a lease that runs out:
`drills_sweep` restores the primary and ends the drill as failed, saying so.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from dnsportal.queue import enqueue, register_job
from dnsportal.scheduler import periodic
from records import drill, drills
from records.models import FailoverDrill

log = logging.getLogger(__name__)

SAMPLE_S = 0.5  # between two rounds of questions to every nameserver
# Before changing anything the nameservers must answer the primary; they get this long to (a record just
# applied: PowerDNS answers an `ifurlup` record's backup set until its first check of the primary is in).
BASELINE_S = 5.0
QUERY_TIMEOUT_S = 1.0
HOOK_TIMEOUT_S = 10
RESTORE_TRIES = 3
HEALTH_PATH = "/-/health"  # tools/demo_http's health switch: POST "down" or "up"


class ActionFailed(RuntimeError):
    """A fail or restore action did not take effect; the text says what answered."""


# --- marking the primary ----------------------------------------------------------------------------------


def mark(d: FailoverDrill, *, down: bool) -> str:
    """Mark the drill's primary unhealthy (down) or restore it; returns what was done, read back where the
    provider allows. Raises ActionFailed (or ProviderError) when it did not take effect."""
    import requests

    if d.action == FailoverDrill.Action.HEALTH_CHECK:
        from records.services import provider_for

        provider = provider_for(d.zone.account)
        inverted = provider.health_check_set_inverted(d.health_check_id, down, owner_id=d.zone.owner_id)
        if inverted != down:
            raise ActionFailed(f"health check {d.health_check_id} reads Inverted={inverted} after the update")
        return f"health check {d.health_check_id}: Inverted={inverted} (read back)"
    if d.action == FailoverDrill.Action.DEMO_HOOK:
        from records.providers.powerdns_codec import health_check_url

        parts = urlsplit(health_check_url(d.health_check_id))
        port = parts.port or (443 if parts.scheme == "https" else 80)
        done = []
        for address in d.primary:
            host = f"[{address}]" if ":" in address else address
            url = f"http://{host}:{port}{HEALTH_PATH}"
            try:
                r = requests.post(url, data="down" if down else "up", timeout=HOOK_TIMEOUT_S)
            except requests.RequestException as exc:
                raise ActionFailed(f"the demo hook at {url} did not answer: {type(exc).__name__}") from None
            if r.status_code != 200:
                raise ActionFailed(f"the demo hook at {url} answered {r.status_code}")
            done.append(url)
        return f"demo hook {'down' if down else 'up'}: {', '.join(done)}"
    url = d.fail_url if down else d.restore_url
    payload = {
        "drill": d.id,
        "hostname": d.hostname,
        "primary": d.primary,
        "action": "fail" if down else "restore",
    }
    try:
        r = requests.post(url, json=payload, timeout=HOOK_TIMEOUT_S, allow_redirects=False)
    except requests.RequestException as exc:
        raise ActionFailed(f"{url} did not answer: {type(exc).__name__}") from None
    if not 200 <= r.status_code < 300:
        raise ActionFailed(f"{url} answered {r.status_code}")
    return f"POST {url}: {r.status_code}"


def restore(d: FailoverDrill, events: list[dict[str, Any]], t0: datetime) -> bool:
    """Restore the primary, retried: True once it took effect (and `primary_marked` is cleared)."""
    last = ""
    for attempt in range(1, RESTORE_TRIES + 1):
        try:
            detail = mark(d, down=False)
        except Exception as exc:  # any failure: try again, then say so; never give up silently
            last = getattr(exc, "user_message", "") or str(exc)
            events.append(_event(t0, "restore", False, f"attempt {attempt}: {last}"))
            time.sleep(1.0)
            continue
        events.append(_event(t0, "restore", True, detail))
        drills.drill_marked(
            drill_id=d.id, down=False, detail=detail, restored_at=timezone.now(), events=list(events)
        )
        return True
    drills.drill_progress(drill_id=d.id, events=list(events))
    log.error("drill %s: the primary could not be restored: %s", d.id, last)
    return False


def _event(t0: datetime, what: str, ok: bool, detail: str) -> dict[str, Any]:
    return {"t": round((timezone.now() - t0).total_seconds(), 3), "what": what, "ok": ok, "detail": detail}


# --- measuring --------------------------------------------------------------------------------------------


class Sampler:
    """Asks every nameserver the drill's name every SAMPLE_S and keeps each round, stored as it goes."""

    def __init__(self, d: FailoverDrill, nameservers: list[Any], t0: datetime) -> None:
        self.d, self.nameservers, self.t0 = d, nameservers, t0
        self.stored: list[dict[str, Any]] = list(d.samples)
        self.rounds: list[drill.Sample] = []

    def sample(self, phase: str) -> dict[str, frozenset[str]]:
        from records.verify import ANSWER, query

        when = timezone.now()
        answers = {}
        for ns in self.nameservers:
            got = query(ns, f"{self.d.hostname}.", self.d.rdtype, timeout=QUERY_TIMEOUT_S, retries=0)
            answers[str(ns)] = got.values if got.status == ANSWER else frozenset()
        self.rounds.append((when, answers))
        self.stored.append(
            {
                "t": round((when - self.t0).total_seconds(), 3),
                "phase": phase,
                "answers": {ns: sorted(v) for ns, v in answers.items()},
            }
        )
        drills.drill_progress(drill_id=self.d.id, samples=self.stored)
        return answers

    def until(self, phase: str, wanted: frozenset[str], start: datetime) -> drill.Switch:
        """Sample until every nameserver answers `wanted` or the drill's timeout passes."""
        self.rounds = []
        deadline = time.monotonic() + settings.DRILL_TIMEOUT_S
        while True:
            answers = self.sample(phase)
            if drill.all_answer(answers, wanted) or time.monotonic() >= deadline:
                break
            time.sleep(SAMPLE_S)
        return drill.switch_time(start, self.rounds, wanted)


# --- the job ----------------------------------------------------------------------------------------------


@register_job(queue="verify")
def drill_run(*, drill_id: int) -> None:
    """Run an approved drill once (a redelivered job finds it claimed and does nothing)."""
    d = drills.drill_claim(drill_id=drill_id)
    if d is None:
        log.info("drill %s is not approved or already running; nothing to do", drill_id)
        return
    d = FailoverDrill.objects.select_related("zone__account").get(id=drill_id)
    t0 = d.started_at
    events: list[dict[str, Any]] = []
    primary, secondary = frozenset(d.primary), frozenset(d.secondary)
    from records.verification_services import zone_nameservers

    try:
        nameservers = zone_nameservers(d.zone)
        not_measured = "" if nameservers else "the zone names no nameserver to ask"
    except (ValueError, OSError) as exc:
        nameservers, not_measured = [], str(exc)
    sampler = Sampler(d, nameservers, t0)
    drills.drill_progress(drill_id=d.id, measured=not not_measured)
    if not_measured:
        events.append(_event(t0, "measure", False, f"answers cannot be measured: {not_measured}"))
    else:
        baseline = sampler.sample("baseline")
        settle = time.monotonic() + BASELINE_S
        while not drill.all_answer(baseline, primary) and time.monotonic() < settle:
            time.sleep(SAMPLE_S)
            baseline = sampler.sample("baseline")
        if not drill.all_answer(baseline, primary):
            shown = "; ".join(f"{ns}: {', '.join(sorted(v)) or 'no answer'}" for ns, v in baseline.items())
            why = (
                f"Before the drill not every nameserver answers the primary ({shown}): an incident, or the "
                "name is not settled. Nothing was changed."
            )
            drills.drill_to(drill_id=d.id, target=drill.FAILED, note=why, message=why)
            return
    switch = ret = None
    problem = ""
    try:
        drills.drill_marked(drill_id=d.id, down=True, detail="marking the primary unhealthy")
        failed_at = timezone.now()
        detail = mark(d, down=True)
        events.append(_event(t0, "fail", True, detail))
        drills.drill_progress(drill_id=d.id, failed_at=failed_at, events=list(events))
        if nameservers:
            switch = sampler.until("fail", secondary, failed_at)
            if switch.seconds is not None:
                drills.drill_to(
                    drill_id=d.id,
                    target=drill.SWITCHED,
                    note=f"every nameserver answers the secondary after {switch.seconds:.1f} s",
                    switch_seconds=switch.seconds,
                )
            else:
                problem = (
                    f"not every nameserver answered the secondary within {settings.DRILL_TIMEOUT_S} s "
                    f"(still not: {', '.join(switch.lagging) or 'none answered'})"
                )
    except Exception as exc:
        problem = f"marking the primary unhealthy failed: {getattr(exc, 'user_message', '') or exc}"
        events.append(_event(t0, "fail", False, problem))
        log.warning("drill %s: %s", d.id, problem)
    finally:
        restored = restore(d, events, t0)
    if not restored:
        why = (
            "THE PRIMARY COULD NOT BE RESTORED: restore it by hand "
            f"({d.get_action_display().lower()}); {problem or 'see the events'}"
        )
        drills.drill_to(drill_id=d.id, target=drill.FAILED, note=why, message=why)
        return
    d.refresh_from_db()
    drills.drill_to(drill_id=d.id, target=drill.RESTORING, note="primary restored")
    if nameservers:
        ret = sampler.until("restore", primary, d.restored_at)
        if ret.seconds is None:
            late = (
                f"not every nameserver answered the primary again within {settings.DRILL_TIMEOUT_S} s "
                f"(still not: {', '.join(ret.lagging) or 'none answered'})"
            )
            problem = f"{problem}; {late}" if problem else late
    if problem:
        drills.drill_to(
            drill_id=d.id,
            target=drill.FAILED,
            note=problem,
            message=problem[:4000],
            return_seconds=ret.seconds if ret else None,
        )
        return
    if not_measured:
        message = (
            f"The primary was marked unhealthy and restored ({d.get_action_display().lower()}, read back "
            f"each time). Answers cannot be measured here: {not_measured}"
        )
    else:
        assert switch is not None and ret is not None  # noqa: S101 -- both measured when nameservers exist
        message = (
            f"Every nameserver answered the secondary {switch.seconds:.1f} s after the primary was marked "
            f"unhealthy, and the primary again {ret.seconds:.1f} s after it was restored."
        )
    drills.drill_to(
        drill_id=d.id,
        target=drill.DONE,
        note=message,
        message=message,
        return_seconds=ret.seconds if ret else None,
    )


@register_job(queue="default")
def drills_sweep() -> None:
    """Restore the primary of every drill whose worker went quiet (its lease ran out) and end it as failed;
    retry the restore of a failed drill that could not restore its primary; start the run of an approved
    drill whose job never reached a worker."""
    now = timezone.now()
    running = (drill.FAILING, drill.SWITCHED, drill.RESTORING)
    for drill_id in FailoverDrill.objects.filter(status__in=running, lease_until__lt=now).values_list(
        "id", flat=True
    ):
        with transaction.atomic():
            d = FailoverDrill.objects.select_for_update().get(id=drill_id)
            if d.status not in running or not d.lease_until or d.lease_until >= now:
                continue
            d.lease_until = drills.lease()  # this sweep owns it now; a second sweep leaves it alone
            d.save(update_fields=["lease_until"])
        d = FailoverDrill.objects.select_related("zone__account").get(id=drill_id)
        log.warning("drill %s: its worker stopped (lease ran out); restoring the primary", d.id)
        events = list(d.events)
        t0 = d.started_at or now
        restored = restore(d, events, t0) if d.primary_marked else True
        why = "the worker running the drill stopped; " + (
            "the sweep restored the primary"
            if restored
            else "THE PRIMARY COULD NOT BE RESTORED by the sweep: restore it by hand"
        )
        drills.drill_to(drill_id=d.id, target=drill.FAILED, note=why, message=why)
    # A drill that ended without its restore taking effect: try again, every sweep, until it does.
    for drill_id in FailoverDrill.objects.filter(status=drill.FAILED, primary_marked=True).values_list(
        "id", flat=True
    ):
        d = FailoverDrill.objects.select_related("zone__account").get(id=drill_id)
        events = list(d.events)
        if restore(d, events, d.started_at or now):
            note = f"{d.message} — the sweep restored the primary at {timezone.now():%Y-%m-%d %H:%M:%S}"
            drills.drill_progress(drill_id=d.id, message=note[:4000])
    stale = now - timedelta(seconds=settings.DRILL_STALL_S)  # approved that long ago, never claimed
    for drill_id in FailoverDrill.objects.filter(status=drill.APPROVED, approved_at__lt=stale).values_list(
        "id", flat=True
    ):
        enqueue("drill_run", drill_id=drill_id)  # the run claims the drill: a second one does nothing


periodic("drills_sweep", every=30)
