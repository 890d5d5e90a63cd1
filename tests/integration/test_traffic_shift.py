"""Traffic shifts end to end: app.<zone> served by rke2-dc1 (127.0.0.2) and k3s-edge (127.0.0.3), two real
sandbox apiservers, in an internal zone of a real PowerDNS (tools/pdns) the portal imported. A plan is made
by alice, approved by bob, and run by the runner's ticks (`advance`, called here as the worker would) while
real jobs write the annotations back, reconcile and apply; discovery is synced by hand, as the watch would.
The gates ask PowerDNS (nameservers, the chi-square split) and probe each cluster's page server over HTTP.

Hold times are 1 s (DNSPORTAL_SHIFT_MIN_HOLD_S lowered, TTL 1). A correct split fails the chi-square test
(alpha 0.001) once in a thousand measurements, and the split gate measures twice before it fails, so a
correct step fails its gate about once in a million.
"""

from __future__ import annotations

import re
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from dnsportal.errors import PortalError
from dnsportal.models import AuditEntry
from records import shift, shifts
from records.jobs_shift import advance
from records.models import ChangeSet, PolicyProposal, ShiftPlan, ShiftStep, Verification
from tests.fixtures.jobs import drain_queues
from tests.fixtures.shift import IPS, watch

pytestmark = pytest.mark.django_db(transaction=True)


def take_over(plan_id: int) -> None:
    """This test is the plan's runner: the chain of ticks an approval, a resume or an abort started stops at
    its first tick (no watch process here would ever let its polling end inside `drain_queues`)."""
    ShiftPlan.objects.filter(id=plan_id).update(tick_run_id=-1)


def run(shift_scene, plan_id: int, *, until=None, limit: float = 240) -> ShiftPlan:
    """Tick the plan as the worker would, running the jobs it starts, till it stops (or `until(plan)`)."""
    take_over(plan_id)
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        drain_queues()
        watch(shift_scene)
        drain_queues()
        delay = advance(plan_id)
        plan = ShiftPlan.objects.get(id=plan_id)
        if (until and until(plan)) or delay is None:
            return plan
        time.sleep(min(delay, 0.5))
    raise AssertionError(f"shift #{plan_id} still {ShiftPlan.objects.get(id=plan_id).status}")


def weights(shift_scene) -> dict[str, int]:
    from records.models import ZoneRecord

    rows = ZoneRecord.objects.filter(zone=shift_scene["zone"], name=f"{shift_scene['host']}.", type="A")
    return {r.set_identifier: int(r.data.get("Weight", 0)) for r in rows}


def plan_of(shift_scene, alice, bob, text: str, **kw) -> ShiftPlan:
    clusters, _, _ = shifts.start_split(shift_scene["host"])
    plan = shifts.shift_propose(
        actor=alice,
        zone_id=shift_scene["zone"].id,
        hostname=shift_scene["host"],
        splits=shift.parse_steps(text, clusters),
        hold_seconds=1,
        **kw,
    )
    shifts.shift_approve(plan_id=plan.id, approver=bob)
    take_over(plan.id)
    return plan


def test_a_four_step_shift_completes_with_every_gate_passing(shift_scene, alice, bob, client):
    port = shift_scene["pages"]["rke2-dc1"].port
    plan = plan_of(
        shift_scene, alice, bob, "20/80, 40/60, 60/40, 80/20", probe={"n": 300, "port": port, "path": "/"}
    )
    assert list(plan.clusters) == ["k3s-edge", "rke2-dc1"]
    plan = run(shift_scene, plan.id)
    assert plan.status == ShiftPlan.Status.DONE, plan.message
    steps = list(plan.steps.order_by("index"))
    assert [s.phase for s in steps] == [shift.PASSED] * 4
    for s in steps:
        assert [(g["gate"], g["ok"]) for g in s.gate_results] == [
            ("nameservers", True),
            ("split", True),
            ("probe", True),
        ], s.gate_results
    assert weights(shift_scene) == {"k3s-edge": 80, "rke2-dc1": 20}
    # each step: one proposal approved with the plan by bob, two objects written, one change set applied
    proposals = PolicyProposal.objects.filter(hostname=shift_scene["host"]).order_by("id")
    assert proposals.count() == 4
    assert all(p.approved_by == bob and p.changeset.status == ChangeSet.Status.APPLIED for p in proposals)
    assert AuditEntry.objects.filter(action="cluster.annotations.write").count() == 8
    assert AuditEntry.objects.filter(action="shift.step.passed").count() == 4
    assert AuditEntry.objects.filter(action="shift.done").count() == 1
    # the timeline: every step applied and every gate, with the measured split over time
    client.force_login(alice)
    page = client.get(f"/endpoints/host/{shift_scene['host']}/timeline/").content.decode()
    for n, split in enumerate(["20/80", "40/60", "60/40", "80/20"], 1):
        assert f"Shift #{plan.id} step {n} ({split}) applied" in page
    assert page.count(">passed</span>") >= 12 + 4  # 3 gates and one measurement per step
    assert f"Traffic shift #{plan.id} done" in page
    desc = re.search(r'<desc id="tl-desc">(.*?)</desc>', page).group(1)
    assert desc.count("k3s-edge") >= 4  # a measured point per step (one more for a split measured twice)


def test_the_dns_gates_measure_while_the_step_holds_and_the_probe_as_the_hold_ends(shift_scene, alice, bob):
    port = shift_scene["pages"]["rke2-dc1"].port
    clusters, _, _ = shifts.start_split(shift_scene["host"])
    plan = shifts.shift_propose(
        actor=alice,
        zone_id=shift_scene["zone"].id,
        hostname=shift_scene["host"],
        splits=shift.parse_steps("30/70", clusters),
        hold_seconds=10,
        probe={"n": 100, "port": port, "path": "/"},
    )
    shifts.shift_approve(plan_id=plan.id, approver=bob)

    def measured_while_holding(p: ShiftPlan) -> bool:
        return p.steps.filter(phase=shift.HOLDING).exclude(gate_results=[]).exists()

    run(shift_scene, plan.id, until=measured_while_holding)
    step = plan.steps.get(index=1)
    held = (timezone.now() - step.applied_at).total_seconds()
    assert step.phase == shift.HOLDING and held < 10, (step.phase, held)
    assert [(g["gate"], g["ok"]) for g in step.gate_results] == [("nameservers", True), ("split", True)]
    plan = run(shift_scene, plan.id)
    assert plan.status == ShiftPlan.Status.DONE, plan.message
    step.refresh_from_db()
    assert [g["gate"] for g in step.gate_results] == ["nameservers", "split", "probe"]
    probe = Verification.objects.get(id=step.gate_results[2]["verification_id"])
    assert probe.started_at >= step.applied_at + timedelta(seconds=10)  # it judges the clusters at the end
    # the step's overhead is not hold + gates: the DNS gates were part of the hold
    assert step.gated_at >= step.applied_at + timedelta(seconds=10)


def test_a_failed_probe_gate_rolls_back_to_the_last_good_step(shift_scene, alice, bob):
    pages = shift_scene["pages"]
    plan = plan_of(
        shift_scene, alice, bob, "30/70, 60/40, 90/10", probe={"n": 200, "port": pages["rke2-dc1"].port}
    )
    # step 1 passes; then k3s-edge's server stops (its probe target is gone) before step 2 is judged
    plan = run(shift_scene, plan.id, until=lambda p: p.steps.filter(index=1, phase=shift.PASSED).exists())
    pages["k3s-edge"].stop()
    plan = run(shift_scene, plan.id)
    assert plan.status == ShiftPlan.Status.ROLLED_BACK
    assert "Step 2 (60/40): probe gate failed" in plan.message
    assert "Rolling back to 30/70" in plan.message
    steps = {s.index: s for s in plan.steps.all()}
    assert steps[2].phase == shift.STEP_FAILED
    probe = next(g for g in steps[2].gate_results if g["gate"] == "probe")
    assert probe["figures"]["errors"] > 0  # the measured figures are kept
    assert steps[3].phase == shift.SKIPPED
    assert (steps[4].kind, steps[4].split, steps[4].phase) == (
        ShiftStep.Kind.ROLLBACK,
        {"k3s-edge": 30, "rke2-dc1": 70},
        shift.PASSED,
    )
    assert weights(shift_scene) == {"k3s-edge": 30, "rke2-dc1": 70}


def test_a_failed_gate_with_pause_holds_the_step_tells_the_webhook_and_resume_goes_on(
    shift_scene, alice, bob, webhook
):
    from records.models import Zone

    Zone.objects.filter(id=shift_scene["zone"].id).update(webhook_url=webhook.url)
    pages = shift_scene["pages"]
    plan = plan_of(
        shift_scene,
        alice,
        bob,
        "30/70, 60/40, 90/10",
        on_failure="pause",
        probe={"n": 200, "port": pages["rke2-dc1"].port},
    )
    plan = run(shift_scene, plan.id, until=lambda p: p.steps.filter(index=1, phase=shift.PASSED).exists())
    pages["k3s-edge"].stop()
    plan = run(shift_scene, plan.id)
    assert plan.status == ShiftPlan.Status.PAUSED
    assert plan.message.startswith("Step 2 (60/40): probe gate failed"), plan.message
    steps = {s.index: s for s in plan.steps.all()}
    assert (steps[2].phase, steps[3].phase) == (shift.STEP_FAILED, shift.STEP_PENDING)
    assert weights(shift_scene) == {"k3s-edge": 60, "rke2-dc1": 40}  # held where it failed, not rolled back
    drain_queues()  # the webhook job
    (body,) = [b for b in webhook.received if b["event"].startswith("shift.")]  # (change sets tell it too)
    assert (body["event"], body["shift"], body["status"], body["step"]) == (
        "shift.gate_failed",
        plan.id,
        "paused",
        2,
    )
    assert body["hostname"] == shift_scene["host"] and body["split"] == {"k3s-edge": 60, "rke2-dc1": 40}
    gates = {g["gate"]: g for g in body["gates"]}
    assert gates["nameservers"]["ok"] and gates["split"]["ok"] and not gates["probe"]["ok"]
    assert gates["probe"]["figures"]["errors"] > 0  # the measured figures, as the plan's page shows them

    # A person decides: the cluster is back, and resume goes on to the next step.
    from tools.demo_http import start_page_server

    pages["k3s-edge"] = start_page_server("127.0.0.3", pages["rke2-dc1"].port, "k3s-edge")
    shifts.shift_resume(plan_id=plan.id, actor=alice)
    plan = run(shift_scene, plan.id)
    assert plan.status == ShiftPlan.Status.DONE, plan.message
    assert plan.steps.get(index=3).phase == shift.PASSED
    assert weights(shift_scene) == {"k3s-edge": 90, "rke2-dc1": 10}


def test_a_cluster_slower_than_the_probes_latency_bound_fails_its_gate_with_the_figures(
    shift_scene, alice, bob
):
    import requests

    pages = shift_scene["pages"]
    probe = {"n": 100, "port": pages["rke2-dc1"].port, "max_latency_ms": 250}
    plan = plan_of(shift_scene, alice, bob, "30/70, 60/40", probe=probe)
    plan = run(shift_scene, plan.id, until=lambda p: p.steps.filter(index=1, phase=shift.PASSED).exists())
    # k3s-edge turns slow: each of its pages now takes 400 ms
    assert requests.post(pages["k3s-edge"].url + "-/health", data="slow 400", timeout=5).ok
    plan = run(shift_scene, plan.id)
    assert plan.status == ShiftPlan.Status.ROLLED_BACK
    assert "Step 2 (60/40): probe gate failed" in plan.message
    # its p95 with the 400 ms the page sleeps (a loaded machine adds to it), named against the bound
    slow = re.search(r"k3s-edge p95 (\d+\.\d) ms, over the bound of 250 ms", plan.message)
    assert slow and float(slow[1]) >= 400, plan.message
    assert "rke2-dc1 p95" not in plan.message  # the fast cluster is not named
    step1, step2 = plan.steps.get(index=1), plan.steps.get(index=2)
    probe1 = next(g for g in step1.gate_results if g["gate"] == "probe")
    probe2 = next(g for g in step2.gate_results if g["gate"] == "probe")
    assert probe1["ok"] and probe1["figures"]["latency_ms"]["k3s-edge"]["p95"] < 250
    assert not probe2["ok"] and probe2["figures"]["latency_ms"]["k3s-edge"]["p95"] >= 400
    assert weights(shift_scene) == {"k3s-edge": 30, "rke2-dc1": 70}


def test_a_runner_killed_between_write_back_and_apply_resumes_without_doing_either_twice(
    shift_scene, alice, bob
):
    plan = plan_of(shift_scene, alice, bob, "30/70, 70/30")
    step = ShiftStep.objects.get(plan=plan, index=1)
    for _ in range(50):
        advance(plan.id)  # step 1's proposal, then its write-back (the next drain) noticed
        drain_queues()
        step.refresh_from_db()
        if step.phase == shift.APPLYING:
            break
    assert step.phase == shift.APPLYING
    # The worker dies here: the annotations are written, the change set not yet made. Two runners now
    # tick the same plan (the sweep's new chain and a stale one): nothing is written or applied twice.
    for _ in range(3):
        advance(plan.id)
    plan = run(shift_scene, plan.id)
    assert plan.status == ShiftPlan.Status.DONE, plan.message
    assert AuditEntry.objects.filter(action="cluster.annotations.write").count() == 4  # 2 steps x 2 objects
    assert PolicyProposal.objects.filter(hostname=shift_scene["host"]).count() == 2
    applied = ChangeSet.objects.filter(zone=shift_scene["zone"], status=ChangeSet.Status.APPLIED)
    assert applied.count() == 3  # the initial round robin, and one per step
    assert AuditEntry.objects.filter(action="changeset.applied").count() == 3


def test_pause_resume_and_abort_return_to_the_start(shift_scene, alice, bob):
    plan = plan_of(shift_scene, alice, bob, "30/70, 60/40, 90/10")
    plan = run(shift_scene, plan.id, until=lambda p: p.steps.filter(index=1, phase=shift.PASSED).exists())
    shifts.shift_pause(plan_id=plan.id, actor=alice)
    assert advance(plan.id) is None  # a paused plan does nothing
    assert ShiftStep.objects.get(plan=plan, index=2).phase == shift.STEP_PENDING
    with pytest.raises(PortalError, match="is paused"):
        shifts.shift_pause(plan_id=plan.id, actor=alice)
    shifts.shift_resume(plan_id=plan.id, actor=alice)
    take_over(plan.id)
    plan = run(shift_scene, plan.id, until=lambda p: p.steps.filter(index=2, phase=shift.PASSED).exists())
    assert weights(shift_scene) == {"k3s-edge": 60, "rke2-dc1": 40}
    shifts.shift_abort(plan_id=plan.id, actor=alice, comment="the release is pulled")
    take_over(plan.id)
    plan = run(shift_scene, plan.id)
    assert plan.status == ShiftPlan.Status.ABORTED
    steps = {s.index: s for s in plan.steps.all()}
    assert steps[3].phase == shift.SKIPPED
    assert (steps[4].kind, steps[4].phase) == (ShiftStep.Kind.ABORT, shift.PASSED)
    # the start was round robin, and round robin it is again: one record set with both addresses
    from records.models import ZoneRecord

    rows = ZoneRecord.objects.filter(zone=shift_scene["zone"], name=f"{shift_scene['host']}.", type="A")
    assert [(r.set_identifier, sorted(r.values)) for r in rows] == [("", sorted(IPS.values()))]
    actions = list(
        AuditEntry.objects.filter(action__in=["shift.paused", "shift.running", "shift.aborting"])
        .order_by("id")
        .values_list("action", "actor_name")
    )
    assert actions == [
        ("shift.running", "system"),
        ("shift.paused", alice.username),
        ("shift.running", alice.username),
        ("shift.aborting", alice.username),
    ]


def test_two_shifts_never_run_on_one_name_and_the_approver_is_a_second_person(shift_scene, root, alice, bob):
    clusters, _, _ = shifts.start_split(shift_scene["host"])
    splits = shift.parse_steps("30/70", clusters)
    with pytest.raises(PortalError, match="Planning a traffic shift needs the operator role"):
        shifts.shift_propose(
            actor=bob,
            zone_id=shift_scene["zone"].id,
            hostname=shift_scene["host"],
            splits=splits,
            hold_seconds=1,
        )
    plan = shifts.shift_propose(
        actor=root,
        zone_id=shift_scene["zone"].id,
        hostname=shift_scene["host"],
        splits=splits,
        hold_seconds=1,
    )
    with pytest.raises(PortalError, match="A second person must approve this traffic shift: you planned it"):
        shifts.shift_approve(plan_id=plan.id, approver=root)
    with pytest.raises(PortalError, match="Approving needs the approver role"):
        shifts.shift_approve(plan_id=plan.id, approver=alice)
    with pytest.raises(PortalError, match="two shifts never run on one name"):
        shifts.shift_propose(
            actor=alice,
            zone_id=shift_scene["zone"].id,
            hostname=shift_scene["host"],
            splits=splits,
            hold_seconds=1,
        )
    shifts.shift_reject(plan_id=plan.id, reviewer=bob, comment="not now")
    with pytest.raises(PortalError, match="Hold each step at least"):
        shifts.shift_propose(
            actor=alice,
            zone_id=shift_scene["zone"].id,
            hostname=shift_scene["host"],
            splits=splits,
            hold_seconds=0,
        )
