"""`bench/route53.py --quick` run as a person runs it: a process of its own with its own PostgreSQL, Redis,
moto behind the counting proxy, a kube-apiserver, the watch's cluster watcher and two workers. Its output is
checked for form (every figure its docstring lists, in order, the headline last) and for sense (the calls
add up, the burst coalesced, the account kept to its rate), never for speed: the machine may be busy.
"""

from __future__ import annotations

import pytest

from tests.fixtures.bench import ROOT, documented, run_quick

BENCH = ROOT / "bench" / "route53.py"


@pytest.mark.timeout(900)
def test_the_quick_route53_bench_prints_every_figure_with_the_burst_coalesced_and_the_rate_kept():
    lines, figures = run_quick(BENCH, timeout=840)
    assert list(figures) == documented(BENCH)
    assert lines[-1].startswith("patch_to_submit_p95_seconds: ")
    assert figures["converge_endpoints"] == 1000
    assert figures["converge_calls"] >= figures["converge_minimum_formula"]
    assert figures["converge_minimum_with_chars"] >= figures["converge_minimum_formula"]
    assert figures["idle_check_calls"] == 0
    assert figures["drift_check_calls"] > 0
    # 1,000 events: coalesced, not a reconcile per event (how few depends on how fast this machine sends them)
    assert 1 <= figures["burst_1000_patches_reconciles"] < 100
    assert (figures["multi_zone_zones"], figures["multi_zone_records"]) == (10, 100)
    # every zone read once and written at least once, with the one GetChange of its apply
    assert figures["multi_zone_calls"] >= 3 * figures["multi_zone_zones"]
    rate = figures["multi_zone_rate_per_second"]
    assert figures["multi_zone_allowed_per_second"] == 2 * rate  # a burst of the rate, then the rate
    assert 0 < figures["multi_zone_max_calls_per_second"] <= figures["multi_zone_allowed_per_second"]
    assert 0 < figures["patch_to_submit_p50_seconds"] <= figures["patch_to_submit_p95_seconds"]
