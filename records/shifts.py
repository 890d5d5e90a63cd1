"""Traffic shift plans, the writes (services): propose, approve (four eyes, as proposals), pause, resume,
abort; and the runner's own steps (records.jobs_shift calls them). Every write is one transaction with its
audit row; the pure rules are records.shift.

One approval covers the whole plan: each step becomes a policy proposal approved *with the plan* (by the
plan's approver, its note naming the plan), so the write-back, the hold on the name while it is written, and
the change set approved because it is exactly the change the proposal showed are the ones every policy edit
goes through.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from dnsportal import queue
from dnsportal.audit import audit_record
from dnsportal.errors import PortalError
from records import lifecycle, shift
from records.models import PolicyProposal, ShiftPlan, ShiftStep, Zone
from records.traffic import WEIGHTED, ClusterShare, TrafficPolicy

# --- reads ------------------------------------------------------------------------------------------------


def start_split(hostname: str) -> tuple[list[str], dict[str, int], TrafficPolicy]:
    """(clusters, the split now, the policy now): weighted as its weights; round robin as equal weights."""
    from records.proposals import policy_now

    policy = policy_now(hostname)
    clusters = sorted(s.cluster for s in policy.enabled)
    if policy.kind == WEIGHTED:
        split = {s.cluster: int(s.weight or 0) for s in policy.enabled}
    else:
        split = dict.fromkeys(clusters, 1)
    return clusters, {c: split[c] for c in clusters}, policy


def record_ttl(zone: Zone, hostname: str) -> int:
    """The TTL the zone serves the name with now (the longest of its record sets): resolvers cache a step's
    split that long, so a step is held at least that long."""
    from records.models import ZoneRecord

    rows = ZoneRecord.objects.filter(zone=zone, name=f"{hostname}.", type__in=["A", "AAAA", "CNAME"])
    return max((int(r.data.get("TTL") or 0) for r in rows), default=0)


def active_plan(hostname: str) -> ShiftPlan | None:
    return ShiftPlan.objects.filter(hostname=hostname, status__in=shift.ACTIVE).first()


def step_policy(plan: ShiftPlan, step: ShiftStep) -> TrafficPolicy:
    """The policy a step writes: weighted with the step's weights, the TTL kept; a return to the start is
    the starting policy itself (round robin stays round robin)."""
    base = TrafficPolicy.from_dict(plan.base_policy)
    if step.kind != ShiftStep.Kind.FORWARD and step.split == plan.start:
        return base
    shares = tuple(ClusterShare(cluster=c, weight=int(step.split[c])) for c in plan.clusters)
    return TrafficPolicy(plan.hostname, WEIGHTED, shares, ttl=base.ttl)


# --- the plan's life --------------------------------------------------------------------------------------


def _transition(plan: ShiftPlan, target: str, *, actor: Any, note: str = "", **fields: Any) -> ShiftPlan:
    before = plan.status
    try:
        shift.check(before, target, shift.PLAN_TRANSITIONS, "traffic shift")
    except shift.IllegalShift as exc:
        raise PortalError(f"Traffic shift #{plan.id} is {plan.get_status_display().lower()}: {exc}.") from exc
    plan.status = target
    for name, value in fields.items():
        setattr(plan, name, value)
    if target in shift.FINAL:
        plan.finished_at = timezone.now()
        fields["finished_at"] = plan.finished_at
    plan.save(update_fields=["status", *fields])
    after: dict[str, Any] = {"status": target}
    if note:
        after["note"] = note
    audit_record(actor=actor, action=f"shift.{target}", obj=plan, before={"status": before}, after=after)
    return plan


def tick_start(plan: ShiftPlan, *, actor: Any = None, delay: float = 0.0) -> None:
    """Start the one live chain of runner ticks (any older chain stops at its next tick)."""
    run = queue.enqueue("shift_advance", actor=actor, delay=delay, plan_id=plan.id)
    plan.tick_run_id, plan.wake_at = run.id, timezone.now() + timedelta(seconds=delay)
    plan.save(update_fields=["tick_run_id", "wake_at"])


def _require(actor: Any, perm: str, what: str) -> None:
    from dnsportal.roles import has_role_perm
    from records.changesets import NotAllowed

    if not has_role_perm(actor, perm):
        raise NotAllowed(f"{what} needs the operator role.")


def min_hold_seconds() -> int:
    return settings.SHIFT_MIN_HOLD_S


@transaction.atomic(durable=True)
def shift_propose(
    *,
    actor: Any,
    zone_id: int,
    hostname: str,
    splits: Sequence[Mapping[str, int]],
    hold_seconds: int,
    on_failure: str = "rollback",
    probe: Mapping[str, Any] | None = None,
) -> ShiftPlan:
    """Store a checked plan for review: the splits in order, each held `hold_seconds` and gated."""
    from dnsportal.roles import OPERATE

    _require(actor, OPERATE, "Planning a traffic shift")
    zone = Zone.objects.get(id=zone_id)
    hostname = hostname.lower().rstrip(".")
    apex = zone.name.rstrip(".")
    if hostname != apex and not hostname.endswith("." + apex):
        raise PortalError(f"{hostname} is not in zone {zone.display_name}.")
    if busy := active_plan(hostname):
        raise PortalError(
            f"Traffic shift #{busy.id} is {busy.get_status_display().lower()} on {hostname}: "
            "two shifts never run on one name."
        )
    holding = PolicyProposal.objects.filter(hostname=hostname, status__in=lifecycle.PROPOSAL_OPEN).first()
    if holding:
        raise PortalError(
            f"Policy proposal #{holding.id} for {hostname} is {holding.get_status_display().lower()}: "
            "settle it before planning a shift."
        )
    clusters, start, policy = start_split(hostname)
    ttl = record_ttl(zone, hostname)
    steps = [{c: int(s[c]) for c in clusters} if set(s) == set(clusters) else dict(s) for s in splits]
    problems = shift.validate(
        start=start,
        steps=steps,
        hold_seconds=hold_seconds,
        ttl=ttl,
        min_hold_seconds=min_hold_seconds(),
        on_failure=on_failure,
        probe=probe,
    )
    if problems:
        raise PortalError(" ".join(p.message for p in problems))
    gates = {"probe": dict(probe)} if probe else {}
    try:
        with transaction.atomic():
            plan = ShiftPlan.objects.create(
                zone=zone,
                hostname=hostname,
                clusters=clusters,
                start=start,
                splits=steps,
                base_policy=policy.to_dict(),
                ttl=ttl,
                hold_seconds=hold_seconds,
                on_failure=on_failure,
                gates=gates,
                proposed_by=actor,
            )
    except IntegrityError as exc:  # a second request raced this one past the check above
        raise PortalError(f"Another traffic shift was just planned on {hostname}.") from exc
    ShiftStep.objects.bulk_create([ShiftStep(plan=plan, index=n, split=s) for n, s in enumerate(steps, 1)])
    audit_record(actor=actor, action="shift.propose", obj=plan, after=plan.audit_view())
    return plan


@transaction.atomic(durable=True)
def shift_approve(*, plan_id: int, approver: Any, comment: str = "") -> ShiftPlan:
    """A second person approves the whole plan; the runner starts when this transaction commits."""
    from records.changesets import four_eyes

    plan = ShiftPlan.objects.select_for_update().get(id=plan_id)
    four_eyes(
        noun="traffic shift",
        number=plan.id,
        status=plan.get_status_display(),
        pending=plan.status == ShiftPlan.Status.PENDING,
        author_id=plan.proposed_by_id,
        reviewer=approver,
        verb="approve",
        authored="planned",
    )
    _transition(
        plan,
        shift.APPROVED,
        actor=approver,
        note=comment,
        approved_by=approver,
        approved_at=timezone.now(),
        review_comment=comment,
    )
    tick_start(plan, actor=approver)
    return plan


@transaction.atomic(durable=True)
def shift_reject(*, plan_id: int, reviewer: Any, comment: str) -> ShiftPlan:
    from records.changesets import four_eyes

    if not comment.strip():
        raise PortalError("Say why the shift is rejected: the comment goes to the audit log.")
    plan = ShiftPlan.objects.select_for_update().get(id=plan_id)
    four_eyes(
        noun="traffic shift",
        number=plan.id,
        status=plan.get_status_display(),
        pending=plan.status == ShiftPlan.Status.PENDING,
        author_id=None,
        reviewer=reviewer,
        verb="reject",
    )
    return _transition(plan, shift.REJECTED, actor=reviewer, note=comment, review_comment=comment)


@transaction.atomic(durable=True)
def shift_pause(*, plan_id: int, actor: Any) -> ShiftPlan:
    """Hold the plan where it is: a step being written or applied finishes, then nothing moves."""
    from dnsportal.roles import OPERATE

    _require(actor, OPERATE, "Pausing a traffic shift")
    plan = ShiftPlan.objects.select_for_update().get(id=plan_id)
    return _transition(plan, shift.PAUSED, actor=actor, note="paused by an operator")


@transaction.atomic(durable=True)
def shift_resume(*, plan_id: int, actor: Any) -> ShiftPlan:
    """Go on from where the plan stopped (after a failed gate with "pause": on to the next step)."""
    from dnsportal.roles import OPERATE

    _require(actor, OPERATE, "Resuming a traffic shift")
    plan = ShiftPlan.objects.select_for_update().get(id=plan_id)
    _transition(plan, shift.RUNNING, actor=actor, note="resumed by an operator")
    tick_start(plan, actor=actor)
    return plan


@transaction.atomic(durable=True)
def shift_abort(*, plan_id: int, actor: Any, comment: str = "") -> ShiftPlan:
    """Return to the starting split through the same write-back; steps not begun are not taken."""
    from dnsportal.roles import OPERATE

    _require(actor, OPERATE, "Aborting a traffic shift")
    plan = ShiftPlan.objects.select_for_update().get(id=plan_id)
    _transition(plan, shift.ABORTING, actor=actor, note=comment or "aborted by an operator")
    plan.steps.filter(phase=shift.STEP_PENDING).update(phase=shift.SKIPPED, message="not taken: aborted")
    _return_step(plan, ShiftStep.Kind.ABORT, plan.start)
    tick_start(plan, actor=actor)
    return plan


def _return_step(plan: ShiftPlan, kind: str, split: Mapping[str, int]) -> ShiftStep:
    last = plan.steps.order_by("-index").first()
    return ShiftStep.objects.create(plan=plan, index=(last.index if last else 0) + 1, kind=kind, split=split)


# --- what the runner does (records.jobs_shift), each one transaction --------------------------------------


@transaction.atomic
def step_write(*, plan_id: int, step_id: int) -> str:
    """Start a step: its policy as a proposal approved with the plan, the write-back enqueued. Returns what
    happened: "writing", "wait" (another proposal holds the name), or "unchanged" (nothing to write)."""
    from records.proposals import preview, proposal_create, transition

    plan = ShiftPlan.objects.select_for_update().get(id=plan_id)
    step = ShiftStep.objects.select_for_update().get(id=step_id)
    if step.phase != shift.STEP_PENDING:
        return step.phase  # a second tick found it started: the first one's proposal stands
    if PolicyProposal.objects.filter(hostname=plan.hostname, status__in=lifecycle.PROPOSAL_HOLDS).exists():
        return "wait"
    policy = step_policy(plan, step)
    shown = preview(zone=plan.zone, hostname=plan.hostname, policy=policy)
    if not shown.ok:
        _step_to(step, shift.WRITING)
        _step_to(step, shift.STEP_FAILED, message="; ".join(e.message for e in shown.errors))
        return "failed"
    now = timezone.now()
    if not any(not p.empty for p in shown.patches):
        # The clusters already ask for this split (a return to where the name is): DNS has it too.
        _step_to(step, shift.WRITING, started_at=now)
        _step_to(step, shift.APPLYING)
        _step_to(step, shift.HOLDING, applied_at=now, message="the clusters already carried this split")
        return "unchanged"
    proposal = proposal_create(
        zone=plan.zone, hostname=plan.hostname, policy=policy, shown=shown, actor=plan.proposed_by
    )
    note = f"approved with traffic shift #{plan.id}, {step.get_kind_display().lower()} {step.index}"
    transition(
        proposal,
        PolicyProposal.Status.APPROVED,
        actor=plan.approved_by,
        note=note,
        approved_by=plan.approved_by,
        approved_at=now,
        review_comment=note,
    )
    _step_to(step, shift.WRITING, proposal=proposal, started_at=now)
    queue.enqueue("policy_write_back", proposal_id=proposal.id)
    return "writing"


def _step_to(step: ShiftStep, phase: str, **fields: Any) -> None:
    shift.check(step.phase, phase, shift.STEP_TRANSITIONS, "shift step")
    before = step.phase
    step.phase = phase
    for name, value in fields.items():
        setattr(step, name, value)
    if phase in (shift.PASSED, shift.STEP_FAILED, shift.SKIPPED):
        step.finished_at = timezone.now()
        fields["finished_at"] = step.finished_at
    step.save(update_fields=["phase", *fields])
    after: dict[str, Any] = {"phase": phase, "split": step.split}
    if step.message:
        after["message"] = step.message
    audit_record(
        actor=None,
        action=f"shift.step.{phase}",
        obj=step,
        object_repr=f"{step} ({shift.short(step.split)})",
        before={"phase": before},
        after=after,
    )


@transaction.atomic
def step_phase(*, step_id: int, phase: str, **fields: Any) -> ShiftStep:
    """Move a step on (checked, audited); a step already past `phase` is left as it is."""
    step = ShiftStep.objects.select_for_update().get(id=step_id)
    if phase not in shift.STEP_TRANSITIONS.get(step.phase, ()):
        return step
    _step_to(step, phase, **fields)
    return step


@transaction.atomic
def gates_measured(*, step_id: int, results: Sequence[Mapping[str, Any]]) -> ShiftStep:
    """The DNS gates measured as a step's hold starts, kept on the step (its page shows them at once) until
    the hold ends and `gates_recorded` judges the step."""
    step = ShiftStep.objects.select_for_update().get(id=step_id)
    if step.phase == shift.HOLDING:
        step.gate_results = list(results)
        step.save(update_fields=["gate_results"])
    return step


@transaction.atomic
def gates_recorded(*, plan_id: int, step_id: int, results: Sequence[Mapping[str, Any]]) -> ShiftPlan:
    """A forward step's gates: passed (on to the next step, or done), or failed (roll back or pause, tell
    the zone's webhook, say which gate failed with its figures)."""
    plan = ShiftPlan.objects.select_for_update().select_related("zone").get(id=plan_id)
    step = ShiftStep.objects.select_for_update().get(id=step_id)
    if step.phase != shift.GATING:
        return plan
    failed = [r for r in results if not r["ok"]]
    step.gate_results = list(results)
    if not failed:
        _step_to(step, shift.PASSED, gated_at=timezone.now(), gate_results=step.gate_results)
        return plan
    why = "; ".join(f"{r['gate']} gate failed: {r['message']}" for r in failed)
    step.message = why[:2000]
    _step_to(step, shift.STEP_FAILED, gated_at=timezone.now(), gate_results=step.gate_results, message=why)
    if plan.status != shift.RUNNING:  # paused or aborted meanwhile: that decision stands
        return plan
    message = f"Step {step.index} ({shift.short(step.split)}): {why}"
    if plan.on_failure == ShiftPlan.OnFailure.PAUSE:
        _transition(plan, shift.PAUSED, actor=None, note=message, message=message[:4000])
    else:
        passed = list(
            plan.steps.filter(kind=ShiftStep.Kind.FORWARD, phase=shift.PASSED).values_list("index", flat=True)
        )
        good = shift.last_good(plan.splits, passed, plan.start)
        plan.steps.filter(phase=shift.STEP_PENDING).update(phase=shift.SKIPPED, message="not taken")
        _transition(
            plan,
            shift.ROLLING_BACK,
            actor=None,
            note=message,
            message=f"{message}. Rolling back to {shift.short(good)}."[:4000],
        )
        _return_step(plan, ShiftStep.Kind.ROLLBACK, good)
    if plan.zone.webhook_url:
        queue.enqueue("shift_webhook", plan_id=plan.id)
    return plan


@transaction.atomic
def plan_finished(*, plan_id: int) -> ShiftPlan:
    """Every step taken: done, rolled back or aborted, by the state the plan was in."""
    plan = ShiftPlan.objects.select_for_update().get(id=plan_id)
    target = {shift.RUNNING: shift.DONE, shift.ROLLING_BACK: shift.ROLLED_BACK, shift.ABORTING: shift.ABORTED}
    if plan.status in target:
        final = plan.steps.order_by("-index").first()
        note = f"at {shift.short(final.split)}" if final else ""
        _transition(plan, target[plan.status], actor=None, note=note)
    return plan


@transaction.atomic
def plan_failed(*, plan_id: int, step_id: int, message: str) -> ShiftPlan:
    """A step could not be written or applied (a conflict, a change set waiting for review): a person
    decides; the plan says why."""
    plan = ShiftPlan.objects.select_for_update().get(id=plan_id)
    step_phase(step_id=step_id, phase=shift.STEP_FAILED, message=message[:2000])
    if plan.status in (shift.RUNNING, shift.ROLLING_BACK, shift.ABORTING):
        _transition(plan, shift.FAILED, actor=None, note=message, message=message[:4000])
    return plan


@transaction.atomic
def plan_started(*, plan_id: int) -> ShiftPlan:
    plan = ShiftPlan.objects.select_for_update().get(id=plan_id)
    if plan.status == shift.APPROVED:
        _transition(plan, shift.RUNNING, actor=None, started_at=timezone.now())
    return plan
