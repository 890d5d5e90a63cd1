"""`bench/soak.py --quick` run as a person runs it: a process of its own with its own PostgreSQL, Redis, moto,
PowerDNS, three kube-apiservers and the portal's processes, under a workload, web load and every kind of
fault once. It exits 1 when an invariant fails (and says which on stderr, which this test shows); its output
is checked for form (every figure its docstring lists, in order, the headline last) and for the promises:
nothing lost, nothing applied twice, nothing stuck, and every fault kind injected. Never for speed.
"""

from __future__ import annotations

import pytest

from tests.fixtures.bench import ROOT, documented, run_quick

BENCH = ROOT / "bench" / "soak.py"


@pytest.mark.timeout(600)
def test_the_quick_soak_loses_nothing_does_nothing_twice_and_leaves_nothing_stuck():
    lines, figures = run_quick(BENCH, timeout=540)
    assert list(figures) == documented(BENCH)
    assert lines[-1].startswith("lost: ")
    assert (figures["lost"], figures["duplicated"], figures["stuck"], figures["fresh_plan_changes"]) == (
        0,
        0,
        0,
        0,
    )
    kinds = [name for name in figures if name.startswith("faults_") and name != "faults_injected"]
    assert len(kinds) == 8
    assert all(figures[kind] >= 1 for kind in kinds), {kind: figures[kind] for kind in kinds}
    assert figures["faults_injected"] == sum(figures[kind] for kind in kinds)
    assert figures["services"] >= 300
    assert figures["edits"] > 0
    assert figures["changes_applied"] > figures["services"] / 2  # the initial publication, and the edits
    assert figures["recovery_p95_seconds"] > 0
    assert figures["web_p95_ms"] > 0
