"""The life of a change set and of a policy proposal, as explicit state machines (pure: no Django).

    pending ──approve──► approved ──claim──► applying ──► applied | partially_applied | failed
       │                   │  ▲                 │
       │                   │  └──── resume ─────┘   (a worker died mid-apply: the next run completes it)
       │                   └──► pending             (reality moved since approval: re-planned, reviewed again)
       └──► rejected | superseded                   (a person said no | a newer plan replaced it)

Anything else is a bug and raises IllegalTransition: an approved change set is never rejected behind the
approver's back, an applied one never applied again.
"""

from __future__ import annotations

PENDING = "pending"
APPROVED = "approved"
APPLYING = "applying"
APPLIED = "applied"
PARTIALLY_APPLIED = "partially_applied"
FAILED = "failed"
REJECTED = "rejected"
SUPERSEDED = "superseded"

STATES = (PENDING, APPROVED, APPLYING, APPLIED, PARTIALLY_APPLIED, FAILED, REJECTED, SUPERSEDED)

TRANSITIONS: dict[str, frozenset[str]] = {
    PENDING: frozenset({APPROVED, REJECTED, SUPERSEDED}),
    APPROVED: frozenset({APPLYING, PENDING}),
    APPLYING: frozenset({APPLIED, PARTIALLY_APPLIED, FAILED, APPROVED, PENDING}),
    APPLIED: frozenset(),
    PARTIALLY_APPLIED: frozenset(),
    FAILED: frozenset(),
    REJECTED: frozenset(),
    SUPERSEDED: frozenset(),
}

FINAL = frozenset(s for s, targets in TRANSITIONS.items() if not targets)
OPEN = frozenset({PENDING, APPROVED, APPLYING})


# A traffic-policy proposal: reviewed like a change set (four eyes), then written to the clusters.
#
#     pending ──approve──► approved ──► writing ──► written
#        │                                │  ▲
#        │                                ▼  │ retry        (a cluster was unreachable; DNS holds the name)
#        │                          partially_written ──► abandoned   (a person gives up: DNS follows the
#        └──► rejected | superseded                                     clusters as they are then)
WRITING = "writing"
WRITTEN = "written"
PARTIALLY_WRITTEN = "partially_written"
ABANDONED = "abandoned"

PROPOSAL_TRANSITIONS: dict[str, frozenset[str]] = {
    PENDING: frozenset({APPROVED, REJECTED, SUPERSEDED}),
    APPROVED: frozenset({WRITING}),
    WRITING: frozenset({WRITTEN, PARTIALLY_WRITTEN}),
    PARTIALLY_WRITTEN: frozenset({WRITING, ABANDONED}),
    WRITTEN: frozenset(),
    REJECTED: frozenset(),
    SUPERSEDED: frozenset(),
    ABANDONED: frozenset(),
}
# While a proposal is in one of these, the plan holds its name as it is in DNS: a half-written split is one
# nobody approved (80/20 -> 50/50 half written is no conflict, yet it is neither).
PROPOSAL_HOLDS = frozenset({APPROVED, WRITING, PARTIALLY_WRITTEN})
PROPOSAL_OPEN = frozenset({PENDING, *PROPOSAL_HOLDS})


class IllegalTransition(ValueError):
    """A change set or a proposal was asked to go where its life cycle does not lead."""


def check_transition(
    current: str, target: str, transitions: dict[str, frozenset[str]] = TRANSITIONS, what: str = "change set"
) -> None:
    """Raise IllegalTransition unless `current` → `target` is a step of the life cycle."""
    if current not in transitions:
        raise IllegalTransition(f"unknown {what} state {current!r}")
    if target not in transitions[current]:
        allowed = ", ".join(sorted(transitions[current])) or "nothing (it is final)"
        raise IllegalTransition(f"a {what} cannot go from {current} to {target}; from {current}: {allowed}")
