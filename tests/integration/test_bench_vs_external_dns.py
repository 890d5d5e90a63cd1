"""`bench/vs_external_dns.py --quick` run as a person runs it: a process of its own, with its own PostgreSQL,
Redis, moto, kube-apiserver, ExternalDNS and portal processes. Its output is checked for form (every figure
its docstring lists, in that order, `name: number unit`, the headline last) and for sense (both programs
converged to the same zone), never for speed: the machine may be busy.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fixtures.bench import ROOT, documented, run_quick

BENCH: Path = ROOT / "bench" / "vs_external_dns.py"


@pytest.mark.timeout(600)
def test_the_quick_comparison_prints_every_figure_for_both_programs():
    lines, figures = run_quick(BENCH, timeout=540)

    names = documented(BENCH)
    assert len(names) >= 19, names
    assert list(figures) == names, "the figures printed are not the ones the docstring lists, in order"
    assert lines[-1].startswith("steady_calls_per_hour_ratio: ")

    n = figures["endpoints"]
    assert n == 1000
    # One A and one TXT ownership record per Service, plus the zone's SOA and NS, in both zones.
    assert figures["portal_record_sets"] == figures["external_dns_record_sets"] == 2 * n + 2
    for name, value in figures.items():
        assert value > 0, f"{name} is {value}"
    assert figures["steady_calls_per_hour_ratio"] == pytest.approx(
        figures["portal_steady_calls_per_hour"] / figures["external_dns_steady_calls_per_hour"], abs=0.002
    )
    # ExternalDNS reads its whole zone every sync: at least one ListResourceRecordSets per 300 record sets.
    assert figures["external_dns_sync_calls"] >= (2 * n + 2) / 300
