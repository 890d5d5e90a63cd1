"""The pure core of failover drills: when one may run, its life, and the switch times read from answers."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta

import pytest

from records import drill as dr

T0 = datetime(2026, 11, 30, 12, 0, 0)
PRIMARY, SECONDARY = frozenset({"127.0.0.2"}), frozenset({"127.0.0.3"})


def at(seconds: float, **answers: frozenset[str]) -> dr.Sample:
    return (T0 + timedelta(seconds=seconds), answers)


def test_the_switch_is_when_every_nameserver_answers_the_secondary_for_good():
    samples = [
        at(0.5, ns1=PRIMARY, ns2=PRIMARY),
        at(1.0, ns1=SECONDARY, ns2=PRIMARY),
        at(1.5, ns1=SECONDARY, ns2=SECONDARY),
        at(2.0, ns1=PRIMARY, ns2=SECONDARY),  # a flap back: not switched yet
        at(2.5, ns1=SECONDARY, ns2=SECONDARY),
        at(3.0, ns1=SECONDARY, ns2=SECONDARY),
    ]
    switch = dr.switch_time(T0, samples, SECONDARY)
    assert (switch.seconds, switch.lagging) == (2.5, ())


def test_a_nameserver_that_never_switches_is_named():
    samples = [at(1, ns1=SECONDARY, ns2=PRIMARY), at(2, ns1=SECONDARY, ns2=PRIMARY)]
    assert dr.switch_time(T0, samples, SECONDARY) == dr.Switch(None, None, ("ns2",))
    assert dr.switch_time(T0, [], SECONDARY) == dr.Switch(None, None, ())


@pytest.mark.parametrize(
    ("kw", "says"),
    [
        ({"kind": "weighted"}, "needs a failover policy"),
        ({"active_shift": 7}, "Traffic shift #7 is under way"),
        ({"busy_drill": 3}, "Failover drill #3 is under way"),
        ({"primary_healthy": False}, "The primary is unhealthy now (an incident)"),
    ],
)
def test_a_drill_is_refused_with_the_reason(kw, says):
    args = {"kind": "failover", "active_shift": None, "primary_healthy": True, "busy_drill": None} | kw
    assert says in dr.refusal(**args)


def test_a_drill_may_run_on_a_healthy_failover_name_with_nothing_else_under_way():
    assert dr.refusal(kind="failover", active_shift=None, primary_healthy=None, busy_drill=None) == ""


LEGAL = {
    (dr.PENDING, dr.APPROVED),
    (dr.PENDING, dr.REJECTED),
    (dr.PENDING, dr.CANCELLED),
    (dr.APPROVED, dr.FAILING),
    (dr.APPROVED, dr.CANCELLED),
    (dr.FAILING, dr.SWITCHED),
    (dr.FAILING, dr.RESTORING),
    (dr.FAILING, dr.FAILED),
    (dr.SWITCHED, dr.RESTORING),
    (dr.SWITCHED, dr.FAILED),
    (dr.RESTORING, dr.DONE),
    (dr.RESTORING, dr.FAILED),
}


@pytest.mark.parametrize(("a", "b"), list(itertools.product(dr.TRANSITIONS, repeat=2)))
def test_every_drill_transition_is_legal_or_refused(a, b):
    if (a, b) in LEGAL:
        dr.check(a, b)
    else:
        with pytest.raises(dr.IllegalDrill):
            dr.check(a, b)
