"""A traffic shift whose worker is killed (SIGKILL) mid-step, three times: while the step is written back,
while it is applied, and while its gates measure. Each time a new worker takes over, the sweeps the scheduler
runs (here enqueued by the test, every second, instead of every 30-60 s) find what the dead worker left, and
the plan finishes with each step written and applied exactly once.

Real processes throughout: `manage.py rqworker` (SimpleWorker: the job dies with the worker, where it stands)
and `manage.py watch` on the test database and Redis, two sandbox kube-apiservers and PowerDNS (shift_scene).
"""

from __future__ import annotations

import time

import pytest

from dnsportal.models import AuditEntry
from dnsportal.queue import enqueue
from records import shift, shifts
from records.models import ChangeSet, PolicyProposal, ShiftPlan
from tests.fixtures.jobs import PortalProcess, start_worker

pytestmark = pytest.mark.django_db(transaction=True)

# Leases short enough for a test; the defaults (60-600 s) are for production.
ENV = {
    "DNSPORTAL_SHIFT_STALL_S": "5",
    "DNSPORTAL_SHIFT_GATE_LEASE_S": "15",
    "DNSPORTAL_SHIFT_GATE_DNS_TIMEOUT_S": "10",
    "DNSPORTAL_WRITEBACK_LEASE_S": "3",
    "DNSPORTAL_APPLY_LEASE_S": "3",
    "DNSPORTAL_RECONCILE_DEBOUNCE_MS": "0",
}
SWEEPS = ("shifts_sweep", "writebacks_resume", "changesets_resume")
DONE_PHASES = {shift.PASSED, shift.STEP_FAILED, shift.SKIPPED}


def phase_of(plan_id: int, index: int) -> str:
    return ShiftPlan.objects.get(id=plan_id).steps.get(index=index).phase


def sweep() -> None:
    """What the scheduler does all the time (every 30-60 s in production, every second here)."""
    for job in SWEEPS:
        enqueue(job)


def wait_for_phase(plan_id: int, index: int, phases: set[str], timeout: float = 150) -> str:
    deadline = time.monotonic() + timeout
    next_sweep = time.monotonic() + 1
    while (phase := phase_of(plan_id, index)) not in phases:
        plan = ShiftPlan.objects.get(id=plan_id)
        assert time.monotonic() < deadline, (
            f"step {index} still {phase}, not {phases}; plan {plan.status}: {plan.message}"
        )
        if time.monotonic() > next_sweep:
            sweep()
            next_sweep = time.monotonic() + 1
        time.sleep(0.01)
    return phase


def test_a_worker_killed_while_writing_applying_and_gating_leaves_a_plan_that_finishes_once(
    shift_scene, alice, bob, tmp_path
):
    watch = PortalProcess(["watch"], tmp_path / "watch.log", ENV)
    workers = [start_worker(tmp_path / "worker-0.log", ENV)]
    try:
        clusters, _, _ = shifts.start_split(shift_scene["host"])
        plan = shifts.shift_propose(
            actor=alice,
            zone_id=shift_scene["zone"].id,
            hostname=shift_scene["host"],
            splits=shift.parse_steps("25/75, 50/50, 75/25", clusters),
            hold_seconds=1,
        )
        shifts.shift_approve(plan_id=plan.id, approver=bob)  # its first tick goes to the real worker

        killed_in = []
        for index, phases in (
            (1, {shift.WRITING}),
            (2, {shift.APPLYING}),
            (3, {shift.HOLDING, shift.GATING}),
        ):
            killed_in.append(wait_for_phase(plan.id, index, phases | {shift.PASSED, shift.STEP_FAILED}))
            workers[-1].kill()
            workers.append(start_worker(tmp_path / f"worker-{len(workers)}.log", ENV))
            # What the scheduler does: the sweeps, until the step moves on from where its worker died.
            deadline = time.monotonic() + 150
            while phase_of(plan.id, index) == killed_in[-1] and killed_in[-1] not in DONE_PHASES:
                assert time.monotonic() < deadline, f"nothing took over step {index} ({killed_in[-1]})"
                sweep()
                time.sleep(1)

        deadline = time.monotonic() + 150
        while (plan := ShiftPlan.objects.get(id=plan.id)).status not in shift.FINAL:
            assert time.monotonic() < deadline, f"shift #{plan.id} still {plan.status}"
            sweep()
            time.sleep(1)
    finally:
        for proc in (*workers, watch):
            proc.stop()

    # The kills landed where they were meant to (a phase gone by in the blink of a poll counts as later).
    assert killed_in[0] == shift.WRITING, killed_in
    assert plan.status == ShiftPlan.Status.DONE, plan.message
    steps = list(plan.steps.order_by("index"))
    assert [s.phase for s in steps] == [shift.PASSED] * 3
    # Exactly one proposal per step, each written once to each of the two clusters and applied once.
    proposals = list(PolicyProposal.objects.filter(hostname=shift_scene["host"]).order_by("id"))
    assert [p.id for p in proposals] == [s.proposal_id for s in steps]
    assert all(p.status == PolicyProposal.Status.WRITTEN for p in proposals)
    assert AuditEntry.objects.filter(action="cluster.annotations.write").count() == 6
    changesets = ChangeSet.objects.filter(proposals__in=proposals).distinct()
    assert changesets.count() == 3
    assert all(cs.status == ChangeSet.Status.APPLIED for cs in changesets)
    assert AuditEntry.objects.filter(action="changeset.applied").count() == 1 + 3  # the scene's, and 3
    # the name serves the last step
    from tests.integration.test_traffic_shift import weights

    assert weights(shift_scene) == {"k3s-edge": 75, "rke2-dc1": 25}
