"""The life of a change set, as an explicit state machine (pure: no Django).

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


class IllegalTransition(ValueError):
    """A change set was asked to go where its life cycle does not lead."""


def check_transition(current: str, target: str) -> None:
    """Raise IllegalTransition unless `current` → `target` is a step of the life cycle."""
    if current not in TRANSITIONS:
        raise IllegalTransition(f"unknown change set state {current!r}")
    if target not in TRANSITIONS[current]:
        allowed = ", ".join(sorted(TRANSITIONS[current])) or "nothing (it is final)"
        raise IllegalTransition(
            f"a change set cannot go from {current} to {target}; from {current}: {allowed}"
        )
