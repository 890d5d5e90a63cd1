"""Every legal and every illegal step of the change set life cycle."""

from __future__ import annotations

import itertools

import pytest

from records import lifecycle as lc

LEGAL = {
    (lc.PENDING, lc.APPROVED),
    (lc.PENDING, lc.REJECTED),
    (lc.PENDING, lc.SUPERSEDED),
    (lc.APPROVED, lc.APPLYING),
    (lc.APPROVED, lc.PENDING),  # re-planned: reality moved since approval
    (lc.APPLYING, lc.APPLIED),
    (lc.APPLYING, lc.PARTIALLY_APPLIED),
    (lc.APPLYING, lc.FAILED),
    (lc.APPLYING, lc.APPROVED),  # resumed after a worker died mid-apply
    (lc.APPLYING, lc.PENDING),  # re-planned at the start of an apply
}
ALL_PAIRS = list(itertools.product(lc.STATES, lc.STATES))


@pytest.mark.parametrize(("current", "target"), sorted(LEGAL))
def test_legal_transitions_pass(current, target):
    lc.check_transition(current, target)


@pytest.mark.parametrize(("current", "target"), [p for p in ALL_PAIRS if p not in LEGAL])
def test_illegal_transitions_raise_naming_both_states(current, target):
    with pytest.raises(lc.IllegalTransition) as exc:
        lc.check_transition(current, target)
    assert current in str(exc.value) and target in str(exc.value)


def test_final_states_lead_nowhere_and_say_so():
    assert {lc.APPLIED, lc.PARTIALLY_APPLIED, lc.FAILED, lc.REJECTED, lc.SUPERSEDED} == lc.FINAL
    with pytest.raises(lc.IllegalTransition, match="it is final"):
        lc.check_transition(lc.APPLIED, lc.APPLYING)


def test_unknown_state_is_refused():
    with pytest.raises(lc.IllegalTransition, match="unknown"):
        lc.check_transition("half-done", lc.APPLIED)


def test_the_model_uses_exactly_these_states():
    from records.models import ChangeSet

    assert set(ChangeSet.Status.values) == set(lc.STATES)
