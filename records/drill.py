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
from typing import Any

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
    *,
    kind: str,
    active_shift: int | None,
    primary_healthy: bool | None,
    busy_drill: int | None,
    owned: bool = True,
) -> str:
    """Why a drill may not start now ("" when it may): only on a failover name whose records the portal owns,
    never during a traffic shift or another drill, and never during an incident (the primary really
    unhealthy: a drill would hide it)."""
    if kind != "failover":
        return "A failover drill needs a failover policy (a primary and a secondary) on the name."
    if not owned:
        return (
            "The name's failover records are not the portal's: a drill changes only what the portal owns "
            "(its records and their health check)."
        )
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


# --- what a sample shows, when to stop, and the operator's action URLs ------------------------------------

PRIMARY_ANSWER, SECONDARY_ANSWER, OTHER_ANSWER, NO_ANSWER = "primary", "secondary", "other", "none"


def classify(values: frozenset[str], primary: frozenset[str], secondary: frozenset[str]) -> str:
    """Which side of the failover one nameserver's answer is: the primary's values, the secondary's, some
    other values (a mix, a stale set), or none at all (a timeout, NXDOMAIN, SERVFAIL)."""
    if not values:
        return NO_ANSWER
    if values == primary:
        return PRIMARY_ANSWER
    if values == secondary:
        return SECONDARY_ANSWER
    return OTHER_ANSWER


def all_answer(answers: Mapping[str, frozenset[str]], wanted: frozenset[str]) -> bool:
    """True when there is at least one nameserver and every one answers exactly `wanted`."""
    return bool(answers) and all(values == wanted for values in answers.values())


def action_url_problem(url: str) -> str:
    """Why an operator-supplied fail or restore URL is refused ("" when it is fine): the drill POSTs to it
    from a worker, so only plain http(s) to a named host, and no credentials in it (the URL is stored on the
    drill and shown to its reviewer; a secret in it would be shown too)."""
    from urllib.parse import urlsplit

    text = url.strip()
    if not text:
        return "Give both a fail URL and a restore URL, or neither (the portal's demo hook is used then)."
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 -- a port out of range raises here
    except ValueError as exc:
        return f"{text!r} is not a URL: {exc}."
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"{text!r} is not an http:// or https:// URL with a host."
    if parts.username or parts.password:
        return (
            f"{parts.scheme}://…@{parts.hostname}: no credentials in the URL (it is shown to the reviewer); "
            "let the endpoint trust the portal's network instead."
        )
    return ""


def timeline_points(
    samples: Sequence[Mapping[str, Any]], primary: frozenset[str], secondary: frozenset[str]
) -> list[tuple[float, str, str]]:
    """(seconds from the drill's start, nameserver, side) per nameserver per stored sample, in time order:
    what the drill's chart draws. A stored sample is {"t": seconds, "answers": {nameserver: [values]}}."""
    points = []
    for sample in samples:
        answers = sample.get("answers") or {}
        for ns in sorted(answers):
            points.append((float(sample["t"]), ns, classify(frozenset(answers[ns]), primary, secondary)))
    points.sort(key=lambda p: (p[0], p[1]))
    return points
