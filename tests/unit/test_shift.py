"""The pure core of traffic shift plans: steps, validation, the life of a plan and of its steps."""

from __future__ import annotations

import itertools

import pytest

from records import shift as sh

TWO = {"rke2-dc1": 100, "k3s-edge": 0}


def test_parse_steps_as_people_write_them():
    steps = sh.parse_steps("90/10, 75/25; 50/50 -> 0/100", ["k3s-edge", "rke2-dc1"])
    assert [sh.short(s) for s in steps] == ["90/10", "75/25", "50/50", "0/100"]
    assert steps[-1] == {"k3s-edge": 0, "rke2-dc1": 100}
    assert sh.describe(steps[0]) == "k3s-edge 90 / rke2-dc1 10"


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("90/10/0", "has 3 weight(s); give one per cluster, in this order: rke2-dc1 / k3s-edge"),
        ("90/abc", "the weight of k3s-edge (abc) is not an integer from 0 to 255"),
        ("300/0", "the weight of rke2-dc1 (300)"),
        (" , ", "Give at least one step"),
    ],
)
def test_parse_steps_says_what_is_wrong(text, says):
    with pytest.raises(ValueError, match=None) as exc:
        sh.parse_steps(text, ["rke2-dc1", "k3s-edge"])
    assert says in str(exc.value)


def test_interpolate_reaches_the_target_and_keeps_the_sum():
    steps = sh.interpolate(TWO, {"rke2-dc1": 0, "k3s-edge": 100}, 4)
    assert [sh.short(s) for s in steps] == ["25/75", "50/50", "75/25", "100/0"]  # k3s-edge first
    three = sh.interpolate({"a": 1, "b": 0, "c": 0}, {"a": 0, "b": 1, "c": 1}, 3)
    assert all(sum(s.values()) == 100 for s in three)
    assert three[-1] == {"a": 0, "b": 50, "c": 50}


def _problems(**kw):
    args = {
        "start": TWO,
        "steps": sh.parse_steps("90/10, 75/25, 50/50, 0/100", list(TWO)),
        "hold_seconds": 60,
        "ttl": 60,
        "min_hold_seconds": 5,
    } | kw
    return [(p.field, p.message) for p in sh.validate(**args)]


def test_a_good_plan_has_no_problem():
    assert _problems() == []


def test_hold_must_be_at_least_the_ttl_and_the_minimum():
    assert _problems(hold_seconds=30) == [
        (
            "hold",
            "Hold each step at least 60 s (the record's TTL is 60 s): resolvers keep answering the previous "
            "split for a TTL.",
        )
    ]
    [(field, message)] = _problems(hold_seconds=3, ttl=1)
    assert field == "hold"
    assert "at least 5 s (the portal's minimum)" in message


def test_one_cluster_is_no_shift():
    problems = _problems(start={"a": 100}, steps=[{"a": 50}])
    assert (
        "clusters",
        "A traffic shift moves traffic between clusters: two or more must serve it.",
    ) in problems


def test_weights_are_checked_per_step():
    assert _problems(steps=[{"rke2-dc1": 0, "k3s-edge": 0}]) == [
        ("steps", "Step 1: at least one cluster needs a weight above 0 to carry traffic.")
    ]
    assert _problems(steps=[{"rke2-dc1": 256, "k3s-edge": 0}]) == [
        ("steps", "Step 1: a weight is an integer from 0 to 255.")
    ]
    assert _problems(steps=[{"other": 1, "k3s-edge": 0}]) == [
        ("steps", "Step 1 must give a weight to each of rke2-dc1, k3s-edge.")
    ]
    assert _problems(steps=[{"rke2-dc1": 200, "k3s-edge": 0}]) == [
        ("steps", "Every step is the split the name has now: nothing would move.")
    ]
    assert ("steps", "Step 2 repeats step 1: leave it out.") in _problems(
        steps=[{"rke2-dc1": 50, "k3s-edge": 50}, {"rke2-dc1": 1, "k3s-edge": 1}]
    )


def test_on_failure_and_probe_bounds():
    assert _problems(on_failure="explode") == [
        ("on_failure", "On a failed gate the plan rolls back or pauses.")
    ]
    assert [f for f, _ in _problems(probe={"status": 42, "max_latency_ms": -1})] == ["gates", "gates"]


LEGAL = {
    (sh.PENDING, sh.APPROVED),
    (sh.PENDING, sh.REJECTED),
    (sh.PENDING, sh.CANCELLED),
    (sh.APPROVED, sh.RUNNING),
    (sh.APPROVED, sh.ABORTING),
    (sh.RUNNING, sh.PAUSED),
    (sh.RUNNING, sh.DONE),
    (sh.RUNNING, sh.ROLLING_BACK),
    (sh.RUNNING, sh.ABORTING),
    (sh.RUNNING, sh.FAILED),
    (sh.PAUSED, sh.RUNNING),
    (sh.PAUSED, sh.ABORTING),
    (sh.ROLLING_BACK, sh.ROLLED_BACK),
    (sh.ROLLING_BACK, sh.FAILED),
    (sh.ABORTING, sh.ABORTED),
    (sh.ABORTING, sh.FAILED),
}


@pytest.mark.parametrize(("a", "b"), list(itertools.product(sh.PLAN_TRANSITIONS, repeat=2)))
def test_every_plan_transition_is_legal_or_refused(a, b):
    if (a, b) in LEGAL:
        sh.check(a, b, sh.PLAN_TRANSITIONS, "shift plan")
    else:
        with pytest.raises(sh.IllegalShift):
            sh.check(a, b, sh.PLAN_TRANSITIONS, "shift plan")


def test_final_and_active_states():
    assert {sh.DONE, sh.ROLLED_BACK, sh.ABORTED, sh.REJECTED, sh.CANCELLED, sh.FAILED} == sh.FINAL
    assert not sh.ACTIVE & sh.FINAL
    assert set(sh.PLAN_TRANSITIONS) == sh.ACTIVE | sh.FINAL


def test_a_step_never_goes_back():
    order = [sh.STEP_PENDING, sh.WRITING, sh.APPLYING, sh.HOLDING, sh.GATING, sh.PASSED]
    for a, b in itertools.pairwise(order):
        sh.check(a, b, sh.STEP_TRANSITIONS, "shift step")
    for a, b in itertools.pairwise(reversed(order)):
        with pytest.raises(sh.IllegalShift, match="cannot go from"):
            sh.check(a, b, sh.STEP_TRANSITIONS, "shift step")


def test_next_step_and_last_good():
    views = [sh.StepView(1, sh.PASSED), sh.StepView(2, sh.HOLDING), sh.StepView(3, sh.STEP_PENDING)]
    assert sh.next_step(views) == views[1]
    assert sh.next_step([sh.StepView(1, sh.PASSED)]) is None
    splits = sh.parse_steps("90/10, 75/25, 50/50", list(TWO))
    assert sh.last_good(splits, [1, 2], TWO) == {"rke2-dc1": 75, "k3s-edge": 25}
    assert sh.last_good(splits, [], TWO) == TWO
    assert sh.hold_left(3.0, 10) == 7.0
    assert sh.hold_left(30.0, 10) == 0.0
