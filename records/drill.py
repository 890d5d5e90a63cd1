"""Failover drills, the pure core: when a drill may run, its life, and how long the switch-over and the return
took, read from the nameservers' answers over time (no Django, dnspython or boto3 import).

A drill marks the primary of a failover name unhealthy on purpose (Route53: the portal's own health check
inverted; PowerDNS: the LUA check's target made unreachable), measures until every authoritative nameserver
answers the secondary, restores the primary, and measures the return:

    pending ──approve──► approved ──► failing ──► switched ──► restoring ──► done
       │                                 │            │             │
       └──► rejected | cancelled         └────────────┴─────────────┴──► failed  (the primary is restored
                                                                                   whatever failed)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

PENDING, APPROVED, FAILING, SWITCHED, RESTORING = "pending", "approved", "failing", "switched", "restoring"
DONE, FAILED, REJECTED, CANCELLED = "done", "failed", "rejected", "cancelled"

TRANSITIONS: dict[str, frozenset[str]] = {
    PENDING: frozenset({APPROVED, REJECTED, CANCELLED}),
    APPROVED: frozenset({FAILING, CANCELLED}),
    FAILING: frozenset({SWITCHED, RESTORING, FAILED}),  # no switch within the time: restore, say so
    SWITCHED: frozenset({RESTORING, FAILED}),
    RESTORING: frozenset({DONE, FAILED}),
    DONE: frozenset(),
    FAILED: frozenset(),
    REJECTED: frozenset(),
    CANCELLED: frozenset(),
}
ACTIVE = frozenset({PENDING, APPROVED, FAILING, SWITCHED, RESTORING})


class IllegalDrill(ValueError):
    """A drill was asked to go where its life does not lead."""


def check(current: str, target: str) -> None:
    if target not in TRANSITIONS.get(current, frozenset()):
        allowed = ", ".join(sorted(TRANSITIONS.get(current, ()))) or "nothing (it is final)"
        raise IllegalDrill(f"a drill cannot go from {current} to {target}; from {current}: {allowed}")


def refusal(
    *, kind: str, active_shift: int | None, primary_healthy: bool | None, busy_drill: int | None
) -> str:
    """Why a drill may not start now ("" when it may): only on a failover name, never during a traffic shift
    or another drill, and never during an incident (the primary really unhealthy: a drill would hide it)."""
    if kind != "failover":
        return "A failover drill needs a failover policy (a primary and a secondary) on the name."
    if active_shift is not None:
        return f"Traffic shift #{active_shift} is under way on the name: a drill would judge its steps wrong."
    if busy_drill is not None:
        return f"Failover drill #{busy_drill} is under way on the name."
    if primary_healthy is False:
        return "The primary is unhealthy now (an incident): a drill would hide it. Fix the primary first."
    return ""


Sample = tuple[datetime, Mapping[str, frozenset[str]]]  # when, and each nameserver's answer (values)


@dataclass(frozen=True, slots=True)
class Switch:
    """When every nameserver first answered the wanted values and kept answering them to the end."""

    seconds: float | None  # from the start; None: not every nameserver did
    at: datetime | None
    lagging: tuple[str, ...]  # nameservers still not answering it at the last sample


def switch_time(start: datetime, samples: Sequence[Sample], wanted: frozenset[str]) -> Switch:
    """The time from `start` until every nameserver answers `wanted`, counted from the first sample after
    which no nameserver answered anything else (a flap back does not count as switched)."""
    if not samples:
        return Switch(None, None, ())
    last = samples[-1][1]
    lagging = tuple(sorted(ns for ns, values in last.items() if values != wanted))
    if lagging:
        return Switch(None, None, lagging)
    at = samples[-1][0]
    for when, answers in reversed(samples):
        if any(values != wanted for values in answers.values()):
            break
        at = when
    return Switch((at - start).total_seconds(), at, ())
