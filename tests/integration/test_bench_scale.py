"""`bench/scale.py --quick` run as a person runs it: a process of its own with its own PostgreSQL, Redis,
moto, two kube-apiservers and a worker. Its output is checked for form (every figure its docstring lists, in
order, the headline last) and for sense (every Service discovered, the missing tenth planned, each page the
same number of queries at both sizes), never for speed: the machine may be busy.
"""

from __future__ import annotations

import pytest

from tests.fixtures.bench import ROOT, documented, run_quick

BENCH = ROOT / "bench" / "scale.py"
PAGES = ("zone", "records", "endpoints", "hostname", "changeset")


@pytest.mark.timeout(600)
def test_the_quick_scale_bench_prints_every_figure_with_each_page_as_many_queries_at_both_sizes():
    lines, figures = run_quick(BENCH, timeout=540)
    assert list(figures) == documented(BENCH)
    assert lines[-1].startswith("pages_worst_p95_ms: ")
    assert (figures["clusters"], figures["endpoints"]) == (2, 1000)
    assert figures["endpoints_small"] == 500
    assert figures["plan_changes"] == figures["endpoints"] // 10
    # every name and its ownership TXT, plus the zone's SOA and NS
    assert figures["zone_record_sets"] == 2 * figures["endpoints"] + 2
    assert figures["zone_record_sets_small"] == 2 * figures["endpoints_small"] + 2
    assert figures["worker_peak_rss_mb"] > 0
    for page in PAGES:
        assert figures[f"page_{page}_queries"] == figures[f"page_{page}_queries_small"], page
        assert figures[f"page_{page}_p95_ms"] > 0
    assert figures["pages_worst_p95_ms"] == max(figures[f"page_{page}_p95_ms"] for page in PAGES)
