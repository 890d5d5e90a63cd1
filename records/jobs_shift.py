"""The runner of traffic shift plans: a chain of `shift_advance` ticks driven by the database state.

A tick reads the plan, does the next thing its current step needs (start the step's write-back, notice the
write-back and the apply finished, measure the DNS gates as the hold starts, wait out the hold, probe) as
one recorded phase, and schedules the
next tick. Everything it knows is in the rows, so a worker killed anywhere leaves a plan the next tick (or
the periodic sweep, for a chain that died with its worker) resumes without doing a phase twice: the step's
proposal is created in the same transaction that marks the step "writing", the write-back claims the
proposal, and the change set is applied exactly once by the apply job's own claim.

The gates reuse verification as it is: the nameservers' answers (`check_resolution` against the stored
records), "Measure the split" (`hostname_distribution`) and "Probe over HTTP" (`hostname_probe`), each as
a Verification row the hostname's page shows like any other.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from dnsportal.queue import current_run_id, enqueue, register_job
from dnsportal.scheduler import periodic
from records import shift, shifts, verification_services
from records.models import ChangeSet, PolicyObjectWrite, PolicyProposal, ShiftPlan, ShiftStep, Verification

log = logging.getLogger(__name__)

# While a step is written or applied, the tick waits this long, then queues itself again behind the jobs it
# waits for: its queue ("verify") is the workers' last, so a single worker runs the write-back first.
POLL_S = 0.2
# A hold this short is slept through in the tick: RQ's scheduler would add up to a second of its own.
INLINE_HOLD_S = 3.0
# A tick is left alone this long (then SHIFT_STALL_S more) before the sweep takes its worker for dead and
# starts another: a tick that measures (the gates) gets SHIFT_GATE_LEASE_S, any other a few seconds.
TICK_LEASE_S = 10
STOPS = (
    PolicyObjectWrite.Status.CONFLICT,
    PolicyObjectWrite.Status.GONE,
    PolicyObjectWrite.Status.FORBIDDEN,
    PolicyObjectWrite.Status.INVALID,
)


@register_job(queue="verify")
def shift_advance(*, plan_id: int) -> None:
    """One tick of a plan's runner; only the plan's current chain runs (a resume or a sweep starts a new
    one, and the old one stops here)."""
    run = current_run_id()
    plan = ShiftPlan.objects.get(id=plan_id)
    if run is not None and plan.tick_run_id not in (None, run):
        log.info("shift %s: tick %s is not the plan's current chain (%s)", plan_id, run, plan.tick_run_id)
        return
    delay: float | None = 0.0
    for _ in range(50):  # phases that follow at once run in this tick; waiting for other jobs ends it
        delay = advance(plan_id)
        if delay is None or delay == POLL_S:
            break
        if 0 < delay <= INLINE_HOLD_S:
            time.sleep(delay)  # a short hold: nothing else is waited for
        elif delay > INLINE_HOLD_S:
            break
    if delay is None:
        return
    if delay == POLL_S:
        time.sleep(POLL_S)
        delay = 0.0
    with transaction.atomic():
        plan = ShiftPlan.objects.select_for_update().get(id=plan_id)
        if run is None or plan.tick_run_id == run:
            shifts.tick_start(plan, delay=delay)


def advance(plan_id: int) -> float | None:
    """Do the next thing the plan needs. Returns the seconds until the next tick is useful (0: at once), or
    None when the plan has nothing to run (paused, finished)."""
    plan = ShiftPlan.objects.select_related("zone").get(id=plan_id)
    if plan.status == shift.APPROVED:
        plan = shifts.plan_started(plan_id=plan_id)
    if plan.status not in shift.RUNNABLE:
        return None
    step = _current(plan)
    if step is None:
        plan = shifts.plan_finished(plan_id=plan_id)
        log.info("shift %s: %s", plan_id, plan.status)
        return None
    phase = step.phase
    measuring = phase == shift.GATING or (phase == shift.HOLDING and not step.gate_results)
    lease = settings.SHIFT_GATE_LEASE_S if measuring else TICK_LEASE_S
    ShiftPlan.objects.filter(id=plan_id).update(wake_at=timezone.now() + timedelta(seconds=lease))
    if phase == shift.STEP_PENDING:
        outcome = shifts.step_write(plan_id=plan_id, step_id=step.id)
        log.info("shift %s step %s (%s): %s", plan_id, step.index, shift.short(step.split), outcome)
        if outcome == "failed":
            step.refresh_from_db()
            shifts.plan_failed(plan_id=plan_id, step_id=step.id, message=step.message)
            return 0
        return POLL_S if outcome in ("wait", "writing") else 0
    if phase == shift.WRITING:
        return _writing(plan, step)
    if phase == shift.APPLYING:
        return _applying(plan, step)
    if phase == shift.HOLDING:
        if step.kind != ShiftStep.Kind.FORWARD:
            shifts.step_phase(step_id=step.id, phase=shift.PASSED)  # a return needs no gate: it is known
            return 0
        if plan.status != shift.RUNNING:  # rolling back or aborting: a forward step under way is not judged
            shifts.step_phase(step_id=step.id, phase=shift.SKIPPED, message="not judged: the plan stopped")
            return 0
        if not step.gate_results:
            # The authoritative answers do not change during the hold: the DNS gates measure at its start,
            # so their time is part of the hold, and a failing one stops the plan without waiting it out.
            results = dns_gates(plan, step)
            shifts.gates_measured(step_id=step.id, results=results)
            if not all(r["ok"] for r in results):
                shifts.step_phase(step_id=step.id, phase=shift.GATING)
            return 0
        held = (timezone.now() - step.applied_at).total_seconds()
        if (left := shift.hold_left(held, plan.hold_seconds)) > 0:
            return left
        shifts.step_phase(step_id=step.id, phase=shift.GATING)
        return 0
    if phase == shift.GATING:
        if plan.status != shift.RUNNING:
            shifts.step_phase(step_id=step.id, phase=shift.SKIPPED, message="not judged: the plan stopped")
            return 0
        results = end_of_hold_gates(plan, step)
        plan = shifts.gates_recorded(plan_id=plan_id, step_id=step.id, results=results)
        log.info("shift %s step %s gates: %s", plan_id, step.index, [(r["gate"], r["ok"]) for r in results])
        return 0
    return 0


def _current(plan: ShiftPlan) -> ShiftStep | None:
    views = [shift.StepView(s.index, s.phase) for s in plan.steps.all()]
    nxt = shift.next_step(views)
    return plan.steps.select_related("proposal").get(index=nxt.index) if nxt else None


def _writing(plan: ShiftPlan, step: ShiftStep) -> float:
    p = PolicyProposal.objects.get(id=step.proposal_id)
    if p.status == PolicyProposal.Status.WRITTEN:
        shifts.step_phase(step_id=step.id, phase=shift.APPLYING)
        return 0
    stopped = p.writes.filter(status__in=STOPS)
    if p.status == PolicyProposal.Status.ABANDONED or (
        p.status == PolicyProposal.Status.PARTIALLY_WRITTEN and stopped.exists()
    ):
        shifts.plan_failed(
            plan_id=plan.id,
            step_id=step.id,
            message=f"the write-back of policy proposal #{p.id} stopped: {p.message}",
        )
        return 0
    stalled = timezone.now() - step.started_at > timedelta(seconds=settings.SHIFT_STALL_S)
    if p.status == PolicyProposal.Status.APPROVED and stalled:
        # Its write-back never ran (the worker died between the commit and Redis): the job claims the
        # proposal, so a second one for a write-back that did start does nothing.
        enqueue("policy_write_back", proposal_id=p.id)
    return POLL_S


def _applying(plan: ShiftPlan, step: ShiftStep) -> float:
    p = PolicyProposal.objects.select_related("changeset").get(id=step.proposal_id)
    cs = p.changeset
    if cs is not None and cs.status == ChangeSet.Status.APPLIED:
        shifts.step_phase(step_id=step.id, phase=shift.HOLDING, applied_at=cs.finished_at or timezone.now())
        return 0
    if cs is not None and cs.status in (
        ChangeSet.Status.FAILED,
        ChangeSet.Status.PARTIALLY_APPLIED,
        ChangeSet.Status.REJECTED,
        ChangeSet.Status.SUPERSEDED,
    ):
        shifts.plan_failed(
            plan_id=plan.id,
            step_id=step.id,
            message=f"change set #{cs.id} is {cs.get_status_display().lower()}: {cs.error or cs.summary}",
        )
        return 0
    waited = (timezone.now() - (p.finished_at or step.started_at)).total_seconds()
    if cs is None and waited > settings.SHIFT_APPLY_TIMEOUT_S:
        shifts.plan_failed(
            plan_id=plan.id,
            step_id=step.id,
            message=(
                f"no change set matched what policy proposal #{p.id} showed within "
                f"{settings.SHIFT_APPLY_TIMEOUT_S} s of its write-back: see the zone's change sets"
            ),
        )
        return 0
    return POLL_S


# --- gates ------------------------------------------------------------------------------------------------


def dns_gates(plan: ShiftPlan, step: ShiftStep) -> list[dict[str, Any]]:
    """The gates on the nameservers' answers, measured as the hold starts: every nameserver answers the
    step's records, then the measured split (skipped while the first fails: it would measure the old one)."""
    results = [_gate_nameservers(plan)]
    if results[0]["ok"]:
        results.append(_gate_split(plan, step))
    return results


def end_of_hold_gates(plan: ShiftPlan, step: ShiftStep) -> list[dict[str, Any]]:
    """Every gate of the step, a dict each with its figures: the DNS gates measured as the hold started,
    and (where configured, and the DNS gates passed) the HTTP probe, which judges the clusters as the hold
    ends."""
    results = list(step.gate_results) or dns_gates(plan, step)
    if all(r["ok"] for r in results) and (probe := plan.gates.get("probe")):
        results.append(_gate_probe(plan, probe))
    return results


def _gate_nameservers(plan: ShiftPlan) -> dict[str, Any]:
    from records.verify import wait_consistent

    reports = []
    try:
        nameservers = verification_services.zone_nameservers(plan.zone)
        expected = verification_services.expected_rrsets(plan.zone, names=[plan.hostname])
        seconds = wait_consistent(
            nameservers, expected, timeout=settings.SHIFT_GATE_DNS_TIMEOUT_S, on_report=reports.append
        )
    except (ValueError, OSError) as exc:
        return {"gate": "nameservers", "ok": False, "message": str(exc), "figures": {}}
    report = reports[-1]
    figures = {
        "nameservers": [str(ns) for ns in report.nameservers],
        "differences": [d.to_dict() for d in report.differences[:10]],
        "seconds": round(seconds, 3) if seconds is not None else None,
    }
    if seconds is not None:
        message = f"every nameserver ({len(report.nameservers)}) answers as planned"
    else:
        message = "; ".join(d.message for d in report.differences[:3])
    return {"gate": "nameservers", "ok": seconds is not None, "message": message, "figures": figures}


def _gate_split(plan: ShiftPlan, step: ShiftStep) -> dict[str, Any]:
    """ "Measure the split" on the name. A correct split fails its chi-square test at the test's alpha (1
    in 1,000 measurements): ten steps would roll back one plan in a hundred for nothing. So a failed
    measurement is repeated once, and the gate fails only when both do (a wrong split fails both, at p far
    below alpha)."""
    from records.jobs_verify import hostname_distribution

    tries = []
    for _ in range(2):
        v = Verification.objects.create(
            zone=plan.zone, kind=Verification.Kind.DISTRIBUTION, hostname=plan.hostname
        )
        hostname_distribution(verification_id=v.id)
        v.refresh_from_db()
        tries.append(v)
        if v.status == Verification.Status.OK:
            break
    v = tries[-1]
    message = v.message if len(tries) == 1 else f"{v.message} (measured twice; first: {tries[0].message})"
    return {
        "gate": "split",
        "ok": v.status == Verification.Status.OK,
        "message": message,
        "figures": v.report.get("verdict", {}),
        "verification_id": v.id,
    }


def _gate_probe(plan: ShiftPlan, probe: dict[str, Any]) -> dict[str, Any]:
    """ "Probe over HTTP" through each cluster's targets: the split per cluster, no failed request, every
    status the expected one, and (with a bound) each cluster's p95 response time within it."""
    from records.jobs_verify import hostname_probe
    from records.probe import latency_problem

    request = {
        "n": int(probe.get("n", 200)),
        "port": int(probe.get("port", 80)),
        "path": probe.get("path", "/"),
    }
    v = Verification.objects.create(
        zone=plan.zone, kind=Verification.Kind.PROBE, hostname=plan.hostname, report={"request": request}
    )
    hostname_probe(verification_id=v.id)
    v.refresh_from_db()
    counts = v.report.get("probe", {})
    want = int(probe.get("status", 200))
    other = {s: c for s, c in counts.get("statuses", {}).items() if int(s) != want}
    ok, message = v.status == Verification.Status.OK, v.message
    if other:
        ok = False
        message += "; " + ", ".join(f"{c} answered {s}" for s, c in sorted(other.items())) + f", not {want}"
    latency = counts.get("latency_ms", {})
    if (bound := int(probe.get("max_latency_ms") or 0)) and (slow := latency_problem(latency, bound)):
        ok = False
        message += f"; {slow}"
    figures = {
        "verdict": v.report.get("verdict", {}),
        "statuses": counts.get("statuses", {}),
        "errors": counts.get("errors"),
        "error_samples": counts.get("error_samples", [])[:3],
        "latency_ms": latency,
    }
    return {"gate": "probe", "ok": ok, "message": message, "figures": figures, "verification_id": v.id}


# --- the webhook, and the sweep that restarts a chain whose worker died -----------------------------------


@register_job(queue="default")
def shift_webhook(*, plan_id: int) -> None:
    """POST the plan's state to its zone's webhook: which gate failed, with the measured figures."""
    import requests

    plan = ShiftPlan.objects.select_related("zone").get(id=plan_id)
    failed = plan.steps.filter(phase=shift.STEP_FAILED).order_by("-index").first()
    payload = {
        "event": "shift.gate_failed",
        "shift": plan.id,
        "zone": plan.zone.display_name,
        "hostname": plan.hostname,
        "status": plan.status,
        "message": plan.message,
        "step": failed.index if failed else None,
        "split": failed.split if failed else None,
        "gates": failed.gate_results if failed else [],
    }
    response = requests.post(plan.zone.webhook_url, json=payload, timeout=5)
    if response.status_code >= 300:
        raise RuntimeError(f"the webhook of {plan.zone} answered {response.status_code}")


@register_job(queue="default")
def shifts_sweep() -> None:
    """Start a new chain for each running plan whose ticks stopped (their worker was killed)."""
    late = timezone.now() - timedelta(seconds=settings.SHIFT_STALL_S)
    for plan_id in ShiftPlan.objects.filter(status__in=shift.RUNNABLE, wake_at__lt=late).values_list(
        "id", flat=True
    ):
        with transaction.atomic():
            plan = ShiftPlan.objects.select_for_update().get(id=plan_id)
            if plan.status in shift.RUNNABLE and plan.wake_at and plan.wake_at < late:
                log.info("shift %s: its ticks stopped at %s; starting them again", plan.id, plan.wake_at)
                shifts.tick_start(plan)


periodic("shifts_sweep", every=30)
