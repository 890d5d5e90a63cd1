"""`bench/vs_external_dns.py --quick` run as a person runs it: a process of its own, with its own PostgreSQL,
Redis, moto, kube-apiserver, ExternalDNS and portal processes. Its output is checked for form (every figure
its docstring lists, in that order, `name: number unit`, the headline last) and for sense (both programs
converged to the same zone), never for speed: the machine may be busy.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "bench" / "vs_external_dns.py"
LINE = re.compile(r"(?P<name>[a-z0-9_]+): (?P<value>-?\d+(?:\.\d+)?) (?P<unit>\S+)")


def _documented() -> list[str]:
    """The figure names the bench's docstring lists under "Prints", in order."""
    doc = ast.get_docstring(ast.parse(BENCH.read_text())) or ""
    section = doc.split("Prints", 1)[1].split("\n\n", 1)[0]
    return re.findall(r"^  ([a-z0-9_]+)", section, re.M)


@pytest.mark.timeout(600)
def test_the_quick_comparison_prints_every_figure_for_both_programs():
    done = subprocess.run(
        [sys.executable, str(BENCH), "--quick"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=540,
        check=False,
    )
    assert done.returncode == 0, f"exit {done.returncode}:\n{done.stdout}\n{done.stderr[-6000:]}"
    lines = done.stdout.splitlines()
    unparsed = [line for line in lines if not LINE.fullmatch(line)]
    assert not unparsed, f"lines not `name: number unit`: {unparsed}"
    figures = {m["name"]: float(m["value"]) for m in map(LINE.fullmatch, lines) if m}

    documented = _documented()
    assert len(documented) >= 19, documented
    assert list(figures) == documented, "the figures printed are not the ones the docstring lists, in order"
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
