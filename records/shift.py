"""Traffic shift plans: from the split a hostname has now to a target split, in steps, each held for a time
and checked by gates before the next one (pure: no Django, boto3 or Kubernetes import).

A plan is a list of weighted splits over the same clusters (`steps`), each a full TrafficPolicy of kind
weighted once applied. One approval covers the whole list; a runner then walks it:

    pending ──approve──► approved ──► running ──► done
       │                               │  ▲  │
       │                               ▼  │  └──► rolling_back ──► rolled_back   (a gate failed)
       │                             paused   └──► aborting ──► aborted          (an operator said stop)
       └──► rejected | cancelled

Each step goes through its own phases, recorded on its row, so a runner that dies anywhere resumes where it
stopped without doing a phase twice:

    pending ──► writing (annotations written back) ──► applying (the change set applied) ──► holding
            ──► gating ──► passed | failed
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from records.policy import MAX_WEIGHT

# --- the plan's life ---------------------------------------------------------------------------------------

PENDING, APPROVED, RUNNING, PAUSED = "pending", "approved", "running", "paused"
ROLLING_BACK, ROLLED_BACK, ABORTING, ABORTED = "rolling_back", "rolled_back", "aborting", "aborted"
DONE, REJECTED, CANCELLED, FAILED = "done", "rejected", "cancelled", "failed"

PLAN_TRANSITIONS: dict[str, frozenset[str]] = {
    PENDING: frozenset({APPROVED, REJECTED, CANCELLED}),
    APPROVED: frozenset({RUNNING, ABORTING}),
    RUNNING: frozenset({PAUSED, DONE, ROLLING_BACK, ABORTING, FAILED}),
    # A paused plan holds its current step; resume goes on, abort returns to the start.
    PAUSED: frozenset({RUNNING, ABORTING}),
    ROLLING_BACK: frozenset({ROLLED_BACK, FAILED}),
    ABORTING: frozenset({ABORTED, FAILED}),
    DONE: frozenset(),
    ROLLED_BACK: frozenset(),
    ABORTED: frozenset(),
    REJECTED: frozenset(),
    CANCELLED: frozenset(),
    FAILED: frozenset(),
}
FINAL = frozenset(s for s, targets in PLAN_TRANSITIONS.items() if not targets)
# While a plan is in one of these, no other plan (nor a drill) may start on its hostname.
ACTIVE = frozenset({PENDING, APPROVED, RUNNING, PAUSED, ROLLING_BACK, ABORTING})
# States in which the runner has work to do (it writes back, applies, holds, gates).
RUNNABLE = frozenset({APPROVED, RUNNING, ROLLING_BACK, ABORTING})

# --- a step's phases ---------------------------------------------------------------------------------------

STEP_PENDING, WRITING, APPLYING, HOLDING, GATING = "pending", "writing", "applying", "holding", "gating"
PASSED, STEP_FAILED, SKIPPED = "passed", "failed", "skipped"

STEP_TRANSITIONS: dict[str, frozenset[str]] = {
    STEP_PENDING: frozenset({WRITING, SKIPPED}),
    WRITING: frozenset({APPLYING, STEP_FAILED}),
    APPLYING: frozenset({HOLDING, STEP_FAILED}),
    # A return step (rollback, abort) has no gates; a forward step the plan stopped under is not judged.
    HOLDING: frozenset({GATING, PASSED, SKIPPED}),
    GATING: frozenset({PASSED, STEP_FAILED, SKIPPED}),
    PASSED: frozenset(),
    STEP_FAILED: frozenset(),
    SKIPPED: frozenset(),
}

# What a failed gate does: return to the last step whose gates passed, or hold where it is for a person.
ON_FAILURE = ("rollback", "pause")
GATES = ("nameservers", "split", "probe")


class IllegalShift(ValueError):
    """A plan or a step was asked to go where its life does not lead."""


def check(current: str, target: str, transitions: Mapping[str, frozenset[str]], what: str) -> None:
    """Raise IllegalShift unless `current` → `target` is a step of the life cycle."""
    if target not in transitions.get(current, frozenset()):
        allowed = ", ".join(sorted(transitions.get(current, ()))) or "nothing (it is final)"
        raise IllegalShift(f"a {what} cannot go from {current} to {target}; from {current}: {allowed}")


# --- splits ------------------------------------------------------------------------------------------------

Split = dict[str, int]  # cluster -> weight (0..255); the clusters' order is the plan's


def describe(split: Mapping[str, int]) -> str:
    """`k3s-edge 10 / rke2-dc1 90`: clusters by name, the order a plan's splits are written in."""
    return " / ".join(f"{c} {split[c]}" for c in sorted(split))


def short(split: Mapping[str, int]) -> str:
    """`10/90`: the weights of the clusters by name (a plan's clusters are sorted so; a stored JSON object
    does not keep the order of its keys)."""
    return "/".join(str(split[c]) for c in sorted(split))


def parse_steps(text: str, clusters: Sequence[str]) -> list[Split]:
    """Steps as people write them, "90/10, 75/25, 50/50, 0/100": one weight per cluster, in `clusters`'
    order, separated by "/" (or ":"), steps by commas, semicolons, arrows or new lines."""
    steps = []
    for n, part in enumerate(p for p in re.split(r"[,;\n]|->|→", text) if p.strip()):
        weights = [w.strip() for w in re.split(r"[/:]", part)]
        if len(weights) != len(clusters):
            raise ValueError(
                f"Step {n + 1} ({part.strip()}) has {len(weights)} weight(s); give one per cluster, "
                f"in this order: {' / '.join(clusters)}."
            )
        split = {}
        for cluster, w in zip(clusters, weights, strict=True):
            if not w.isdigit() or int(w) > MAX_WEIGHT:
                raise ValueError(
                    f"Step {n + 1}: the weight of {cluster} ({w or 'empty'}) is not an integer from 0 to "
                    f"{MAX_WEIGHT}."
                )
            split[cluster] = int(w)
        steps.append(split)
    if not steps:
        raise ValueError("Give at least one step, e.g. 90/10, 75/25, 50/50, 0/100.")
    return steps


def interpolate(start: Mapping[str, int], target: Mapping[str, int], count: int) -> list[Split]:
    """`count` evenly spaced steps from `start` to `target` (both in percent of the same clusters), the
    last one `target` itself; weights rounded to integers that keep the sum."""
    if count < 1:
        raise ValueError("A plan has at least one step.")
    if set(start) != set(target):
        raise ValueError("The start and the target must name the same clusters.")
    s, t = percent(start), percent(target)
    clusters = list(target)
    out = []
    for i in range(1, count + 1):
        exact = {c: s[c] + (t[c] - s[c]) * i / count for c in clusters}
        out.append(_round_keeping_sum(exact, 100))
    return out


def percent(split: Mapping[str, int]) -> dict[str, float]:
    """Each cluster's share in percent (all 0: equal shares, as Route53 answers them)."""
    total = sum(split.values())
    if not split:
        return {}
    if total == 0:
        return dict.fromkeys(split, 100 / len(split))
    return {c: 100 * w / total for c, w in split.items()}


def _round_keeping_sum(exact: Mapping[str, float], total: int) -> Split:
    floors = {c: int(v) for c, v in exact.items()}
    rest = total - sum(floors.values())
    # the largest remainders get the missing units (Hamilton's method): 33.3/33.3/33.3 -> 34/33/33
    for c in sorted(exact, key=lambda c: (-(exact[c] - floors[c]), list(exact).index(c)))[:rest]:
        floors[c] += 1
    return floors


@dataclass(frozen=True, slots=True)
class Problem:
    """A problem on one form field: "steps", "hold", "clusters", "gates" or "__all__"."""

    field: str
    message: str


def validate(
    *,
    start: Mapping[str, int],
    steps: Sequence[Mapping[str, int]],
    hold_seconds: int,
    ttl: int,
    min_hold_seconds: int,
    on_failure: str = "rollback",
    probe: Mapping[str, object] | None = None,
) -> list[Problem]:
    """Everything wrong with a plan, each on its field. `ttl`: the record's TTL; a step held shorter than
    that is judged while resolvers still answer the previous step's split from their caches."""
    problems = []
    clusters = list(start)
    if len(clusters) < 2:
        problems.append(
            Problem("clusters", "A traffic shift moves traffic between clusters: two or more must serve it.")
        )
    for n, step in enumerate(steps, 1):
        if list(step) != clusters and set(step) != set(clusters):
            problems.append(
                Problem("steps", f"Step {n} must give a weight to each of {', '.join(clusters)}.")
            )
            continue
        if any(not isinstance(w, int) or not 0 <= w <= MAX_WEIGHT for w in step.values()):
            problems.append(Problem("steps", f"Step {n}: a weight is an integer from 0 to {MAX_WEIGHT}."))
        elif sum(step.values()) == 0:
            problems.append(
                Problem("steps", f"Step {n}: at least one cluster needs a weight above 0 to carry traffic.")
            )
    if not steps:
        problems.append(Problem("steps", "Give at least one step."))
    elif not problems and all(percent(step) == percent(start) for step in steps):
        problems.append(Problem("steps", "Every step is the split the name has now: nothing would move."))
    for n in range(1, len(steps)):
        if percent(steps[n]) == percent(steps[n - 1]):
            problems.append(Problem("steps", f"Step {n + 1} repeats step {n}: leave it out."))
    floor = max(ttl, min_hold_seconds)
    if hold_seconds < floor:
        why = f"the record's TTL is {ttl} s" if ttl >= min_hold_seconds else "the portal's minimum"
        problems.append(
            Problem(
                "hold",
                f"Hold each step at least {floor} s ({why}): resolvers keep answering the previous split "
                "for a TTL.",
            )
        )
    if on_failure not in ON_FAILURE:
        problems.append(Problem("on_failure", "On a failed gate the plan rolls back or pauses."))
    if probe:
        status, latency = probe.get("status", 200), probe.get("max_latency_ms", 0)
        if not isinstance(status, int) or not 100 <= status <= 599:
            problems.append(Problem("gates", "The probe's expected status is an HTTP status, 100 to 599."))
        if not isinstance(latency, int) or latency < 0:
            problems.append(Problem("gates", "The probe's latency bound is a number of milliseconds."))
    return problems


# --- the runner's decision ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StepView:
    """What the runner needs of one step row."""

    index: int  # 0: the start (only returned to), 1..n: the plan's steps; return steps have index < 0
    phase: str
    is_return: bool = False


def next_step(steps: Sequence[StepView]) -> StepView | None:
    """The step the runner works on: the first one not finished, in order; None when all are."""
    for s in steps:
        if s.phase not in (PASSED, STEP_FAILED, SKIPPED):
            return s
    return None


def last_good(splits: Sequence[Mapping[str, int]], passed: Sequence[int], start: Mapping[str, int]) -> Split:
    """The split to roll back to: the last forward step whose gates passed (1-based indexes into
    `splits`), or the start when none did."""
    if not passed:
        return dict(start)
    return dict(splits[max(passed) - 1])


def hold_left(applied_for: float, hold_seconds: int) -> float:
    """Seconds a step still has to hold after being applied `applied_for` seconds ago."""
    return max(0.0, hold_seconds - applied_for)
