"""`bench/shift.py --quick` run as a person runs it: a process of its own with its own PostgreSQL, Redis,
PowerDNS, two kube-apiservers, worker and watch. Its output is checked for form (every figure its docstring
lists, in order, the headline last) and for sense (the steps it took, their parts adding up), never for
speed: the machine may be busy.
"""

from __future__ import annotations

import pytest

from tests.fixtures.bench import ROOT, documented, run_quick

BENCH = ROOT / "bench" / "shift.py"


@pytest.mark.timeout(600)
def test_the_quick_shift_bench_prints_every_figure_of_a_finished_shift():
    lines, figures = run_quick(BENCH, timeout=540)
    assert list(figures) == documented(BENCH)
    assert lines[-1].startswith("step_overhead_p95_seconds: ")
    assert figures["steps"] == 3
    assert figures["hold_seconds"] == 1
    assert 0 < figures["step_write_to_applied_p50_seconds"] <= figures["step_write_to_applied_max_seconds"]
    assert figures["step_past_hold_p50_seconds"] <= figures["step_past_hold_max_seconds"]
    # a step's overhead is its write-to-applied time and what passed after its hold
    assert figures["step_overhead_p50_seconds"] >= figures["step_write_to_applied_p50_seconds"]
    assert figures["step_overhead_p50_seconds"] <= figures["step_overhead_p95_seconds"]
