"""Benchmark: verification queries per second against a real PowerDNS Authoritative on loopback.

Starts pdns_server (tools/pdns.py) with one zone: a weighted name (LUA `pickwrandom`, 80/20, evaluated by
PowerDNS for every query, as a weighted Route53 name is) and 200 plain A record sets. Measures:

- a resolution check of the 200 record sets (one query each, concurrent);
- the same N queries against a plain A record (no LUA), for the client's own ceiling;
- the HTTP probe (records.probe): N requests, each resolving a weighted name (LUA, 80/20 over 127.0.0.2 and
  127.0.0.3) on the server and sending a GET to the first address, where a tiny web server
  (tools/demo_http, in a child process as a cluster's would be elsewhere) answers a page naming its
  cluster; counted per cluster. Target: at least 500 requests/s.
- the distribution check: N concurrent queries on dnspython's asyncio API against the weighted name,
  counted per answer set, and its chi-square verdict. Target: 1,000 queries in at most 1 s.

Prints `name: value unit` lines, the headline last (median of three runs of the distribution check);
exits 0.

    .venv/bin/python bench/verify.py            # 1,000 queries (and HTTP requests)
    .venv/bin/python bench/verify.py --quick    # 200, for CI
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from records.probe import probe_resolving
from records.verify import (
    ExpectedRRset,
    Nameserver,
    check_resolution,
    distribution_verdict,
    measure_distribution,
)
from tools.demo_http import spawn_page_servers
from tools.pdns import start_pdns

ZONE = "bench.test."
EKS, K3S = "203.0.113.10", "198.51.100.10"
# The probe's two clusters: each one's web server on its own loopback address, on one shared port.
PAGES = {"127.0.0.2": "rke2-dc", "127.0.0.3": "k3s-edge"}
PLAIN = 200


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="200 queries (and requests) instead of 1,000")
    ap.add_argument("-n", type=int, default=0, help="number of queries (overrides --quick)")
    ap.add_argument("--concurrency", type=int, default=64, help="queries in flight (default 64)")
    args = ap.parse_args()
    n = args.n or (200 if args.quick else 1000)
    runs = 1 if args.quick else 3

    started = time.perf_counter()
    server = start_pdns()
    start_s = time.perf_counter() - started
    pages = None
    try:
        pages = spawn_page_servers(PAGES)
        (rke2, k3s) = PAGES
        server.create_zone(
            ZONE,
            [
                ("shop", "LUA", 60, [f"A \"pickwrandom({{{{80,'{EKS}'}},{{20,'{K3S}'}}}})\""]),
                ("web", "LUA", 0, [f"A \"pickwrandom({{{{80,'{rke2}'}},{{20,'{k3s}'}}}})\""]),
                *((f"svc{i}", "A", 60, [f"192.0.2.{i % 250 + 1}"]) for i in range(PLAIN)),
            ],
        )
        ns = [Nameserver(server.host, server.dns_port, "pdns")]

        expected = [
            ExpectedRRset(f"svc{i}.{ZONE}", "A", {f"192.0.2.{i % 250 + 1}"}, 60) for i in range(PLAIN)
        ]
        report = check_resolution(ns, expected)
        if not report.ok:
            print(f"resolution check failed: {report.differences[:3]}", file=sys.stderr)
            return 1

        measure_distribution(ns, f"shop.{ZONE}", "A", min(n, 100), concurrency=args.concurrency)  # warm-up
        walls: list[float] = []
        counts = None
        for _ in range(runs):
            t0 = time.perf_counter()
            counts = measure_distribution(ns, f"shop.{ZONE}", "A", n, concurrency=args.concurrency)
            walls.append(time.perf_counter() - t0)
        assert counts is not None
        t0 = time.perf_counter()
        measure_distribution(ns, f"svc0.{ZONE}", "A", n, concurrency=args.concurrency)
        plain_s = time.perf_counter() - t0
        verdict = distribution_verdict(counts.by_set({"eks": [EKS], "k3s": [K3S]}), {"eks": 80, "k3s": 20})

        markers = {c: c for c in PAGES.values()}
        probe_resolving(ns, f"web.{ZONE}", markers=markers, n=min(n, 100), port=pages.port)  # warm-up
        probe_walls: list[float] = []
        probe = None
        for _ in range(runs):
            t0 = time.perf_counter()
            probe = probe_resolving(ns, f"web.{ZONE}", markers=markers, n=n, port=pages.port)
            probe_walls.append(time.perf_counter() - t0)
        assert probe is not None
        probe_verdict = distribution_verdict(probe.counts, {"rke2-dc": 80, "k3s-edge": 20})
    finally:
        if pages is not None:
            pages.stop()
        server.stop()

    seconds = statistics.median(walls)
    print(f"pdns_start_seconds: {start_s:.3f} s")
    print(f"resolution_check_rrsets: {PLAIN} count")
    print(f"resolution_check_seconds: {report.elapsed:.3f} s")
    print(f"query_errors: {counts.errors} count")
    print(f"eks_share: {100 * verdict.rows[0].observed:.1f} %")
    print(f"verdict_p_value: {verdict.p_value:.3f} p")
    print(f"plain_record_queries_per_second: {n / plain_s:.0f} qps")
    print(f"probe_requests: {n} count")
    print(f"probe_errors: {probe.errors} count")
    print(f"probe_rke2_share: {100 * probe_verdict.rows[0].observed:.1f} %")
    print(f"probe_verdict_p_value: {probe_verdict.p_value:.3f} p")
    print(f"probe_requests_per_second: {n / statistics.median(probe_walls):.0f} req/s")
    print(f"concurrency: {args.concurrency} count")
    print(f"queries: {n} count")
    print(f"seconds: {seconds:.3f} s")
    print(f"queries_per_second: {n / seconds:.0f} qps")
    return 0


if __name__ == "__main__":
    sys.exit(main())
