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
        ({"owned": False}, "failover records are not the portal's"),
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


P, S = frozenset({"127.0.0.21"}), frozenset({"127.0.0.22"})


@pytest.mark.parametrize(
    ("values", "side"),
    [(P, dr.PRIMARY_ANSWER), (S, dr.SECONDARY_ANSWER), (P | S, dr.OTHER_ANSWER), (frozenset(), dr.NO_ANSWER)],
)
def test_each_answer_is_the_primary_the_secondary_a_mix_or_nothing(values, side):
    assert dr.classify(values, P, S) == side


def test_all_answer_needs_every_nameserver_and_at_least_one():
    assert dr.all_answer({"ns1": S, "ns2": S}, S)
    assert not dr.all_answer({"ns1": S, "ns2": frozenset()}, S)
    assert not dr.all_answer({}, S)  # nobody asked is not "everyone switched"


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("https://ops.example.com/drill/fail", ""),
        ("http://10.0.0.5:8080/fail", ""),
        ("", "Give both a fail URL and a restore URL"),
        ("ftp://ops.example.com/x", "is not an http:// or https:// URL"),
        ("https:///nohost", "is not an http:// or https:// URL"),
        ("https://user:secret@ops.example.com/x", "no credentials in the URL"),
        ("http://ops.example.com:99999/x", "is not a URL"),
    ],
)
def test_operator_action_urls_are_plain_http_without_credentials(url, says):
    problem = dr.action_url_problem(url)
    assert (problem == "") if not says else (says in problem)
    assert "secret" not in problem  # the refusal never repeats a credential


def test_timeline_points_put_each_nameserver_on_a_side_in_time_order():
    samples = [
        {"t": 1.0, "phase": "fail", "answers": {"ns2": ["127.0.0.22"], "ns1": ["127.0.0.21"]}},
        {"t": 0.5, "phase": "baseline", "answers": {"ns1": ["127.0.0.21"]}},
        {"t": 1.5, "phase": "fail", "answers": {"ns1": []}},
    ]
    assert dr.timeline_points(samples, P, S) == [
        (0.5, "ns1", dr.PRIMARY_ANSWER),
        (1.0, "ns1", dr.PRIMARY_ANSWER),
        (1.0, "ns2", dr.SECONDARY_ANSWER),
        (1.5, "ns1", dr.NO_ANSWER),
    ]


def test_the_drill_chart_states_when_each_nameserver_changed_sides():
    from records.drill_chart import drill_svg

    points = [(0.5, "ns1", "primary"), (1.0, "ns1", "primary"), (2.0, "ns1", "secondary")]
    svg = drill_svg(points, [(0.8, "primary marked unhealthy")], "drill <1>")
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert '<title id="drill-title">drill &lt;1&gt;</title>' in svg
    desc = svg.split('<desc id="drill-desc">')[1].split("</desc>")[0]
    assert desc == "ns1: primary from 0.5 s, secondary from 2.0 s; primary marked unhealthy at 0.8 s"
    assert svg.count("<rect") == 3 + 4  # a bar per sample, a legend swatch per side
    assert "nothing sampled" in drill_svg([], [], "empty")


def test_close_marks_drop_a_row_and_the_last_one_ends_at_its_line():
    import re

    from records.drill_chart import drill_svg

    points = [(0.0, "ns1", "primary"), (1.0, "ns1", "secondary"), (2.2, "ns1", "primary")]
    marks = [
        (0.1, "primary marked unhealthy"),
        (1.0, "all switched"),
        (1.05, "restored"),
        (2.2, "all returned"),
    ]
    svg = drill_svg(points, marks, "drill")
    texts = dict(
        (label, (float(y), "text-anchor" in attrs))
        for y, attrs, label in re.findall(
            r'<text x="[\d.]+" y="([\d.]+)" font-size="9"([^>]*)>([^<]+)</text>', svg
        )
    )
    assert texts["all switched"][0] < texts["restored"][0]  # a row lower: not written over each other
    assert texts["primary marked unhealthy"][0] == texts["all switched"][0]  # far apart: one row
    assert texts["all returned"][1]  # at the right edge: ends at its line instead of running off
    # the answer the drill ended on is drawn, not a zero-width bar at the edge
    last = re.findall(
        r'<rect x="([\d.]+)" y="[\d.]+" width="([\d.]+)"[^>]*fill="#4c78a8"><title>ns1: primary at 2.2', svg
    )
    assert last and float(last[0][1]) >= 8
