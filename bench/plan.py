"""Benchmark: plan 100,000 desired endpoints against a zone holding 100,000 owned records, 1 % changed.

The zone holds each record *and* its ownership TXT (200,000 record sets), as a zone the portal has written
would; a tenth of the records are weighted (set identifier + weight). The changed 1 %: a third have a new
target, a third are gone from desired (deletes), a third are new names (creates). The plan's input is parsed
record sets (the provider parses Route53's dicts; that is timed separately). Prints `name: value unit` lines,
the headline last (median of three plans, wall clock); exits 0.

    .venv/bin/python bench/plan.py            # 100,000 endpoints
    .venv/bin/python bench/plan.py --quick    # 10,000, for CI
"""

from __future__ import annotations

import argparse
import gc
import random
import resource
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from records.endpoint import Endpoint
from records.ownership import DEFAULT_TXT_NAMING, ownership_record
from records.plan import ZoneConfig, apply_plan, compute_plan
from records.recordset import NO_ROUTING, RecordSet, Routing, recordset_from_route53, recordset_to_route53

ZONE = "bench.example.com."
OWNER = "portal-bench"
CLUSTERS = ("eks-eu1", "rke2-dc1", "k3s-edge")


def _ip(i: int) -> str:
    # public documentation-free space: 11.x.y.z (not private, so no approval noise)
    return f"11.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}"


def build(n: int, seed: int = 6) -> tuple[list[Endpoint], list[RecordSet], int]:
    """n desired endpoints and a zone of n owned records (+ TXTs); 1 % of them differ."""
    rnd = random.Random(seed)
    endpoints: list[Endpoint] = []
    zone: list[RecordSet] = [
        RecordSet(
            name=ZONE, type="SOA", ttl=900, values=("ns-1.awsdns. hostmaster. 1 7200 900 1209600 86400",)
        ),
        RecordSet(name=ZONE, type="NS", ttl=172800, values=("ns-1.awsdns-01.org.",)),
    ]
    changed = set(rnd.sample(range(n), max(3, n // 100)))
    changed_list = sorted(changed)
    third = len(changed_list) // 3
    target_changed = set(changed_list[:third])
    deleted = set(changed_list[third : 2 * third])
    created = set(changed_list[2 * third :])
    for i in range(n):
        name = f"svc{i}.ns{i % 97}.{ZONE[:-1]}"
        cluster = CLUSTERS[i % 3]
        resource_label = f"service/ns{i % 97}/svc{i}"
        weighted = i % 10 == 0  # a tenth are weighted records with a set identifier
        sid = cluster if weighted else ""
        ps = {"aws/weight": str(10 + i % 50)} if weighted else {}
        ip = _ip(i)
        if i not in created:
            rs = RecordSet(
                name=name + ".",
                type="A",
                set_identifier=sid,
                ttl=300,
                values=(ip,),
                routing=_routing(ps),
            )
            zone.append(rs)
            zone.append(ownership_record(rs, OWNER, {"resource": resource_label}, DEFAULT_TXT_NAMING))
        if i in deleted:
            continue
        endpoints.append(
            Endpoint.make(
                name,
                "A",
                [_ip(i + 1_000_000) if i in target_changed else ip],
                set_identifier=sid,
                provider_specific=ps,
                labels={"resource": resource_label},
                cluster=cluster,
            )
        )
    rnd.shuffle(endpoints)
    rnd.shuffle(zone)
    return endpoints, zone, len(changed)


def _routing(ps: dict[str, str]) -> Routing:
    return Routing(weight=int(ps["aws/weight"])) if ps else NO_ROUTING


def _rss_mb() -> float:
    # ru_maxrss is in kilobytes on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="10,000 endpoints instead of 100,000")
    ap.add_argument("-n", type=int, default=0, help="number of endpoints (overrides --quick)")
    args = ap.parse_args()
    n = args.n or (10_000 if args.quick else 100_000)
    label = f"{n // 1000}k"

    endpoints, zone, changed = build(n)
    cfg = ZoneConfig(zone=ZONE, owner_id=OWNER, max_change_share=1.0)

    # The provider hands the plan parsed record sets; parsing the Route53 dicts is measured on its own.
    dicts = [recordset_to_route53(rs) for rs in zone]
    t0 = time.perf_counter()
    parsed = [recordset_from_route53(d) for d in dicts]
    parse_s = time.perf_counter() - t0
    del dicts, parsed
    gc.collect()

    # The collector stays on, as in a worker (compute_plan pauses it itself). Three runs: the headline is
    # the median, so one run slowed down by a neighbour on the machine does not decide it.
    walls: list[float] = []
    cpus: list[float] = []
    plan = None
    for _ in range(3):
        w0, c0 = time.perf_counter(), time.process_time()
        plan = compute_plan(endpoints, zone, cfg)
        walls.append(time.perf_counter() - w0)
        cpus.append(time.process_time() - c0)
    assert plan is not None

    counts = plan.counts()
    got = counts["create"] + counts["update"] + counts["delete"]
    assert got == changed, (got, changed, counts)
    after = apply_plan(zone, plan)
    t0 = time.perf_counter()
    again = compute_plan(endpoints, after, cfg)
    steady_s = time.perf_counter() - t0
    assert again.is_empty, again.counts()

    print(f"zone_record_sets: {len(zone)} count")
    print(f"desired_endpoints: {len(endpoints)} count")
    print(f"changed_records: {got} count")
    print(f"plan_creates: {counts['create']} count")
    print(f"plan_updates: {counts['update']} count")
    print(f"plan_deletes: {counts['delete']} count")
    print(f"parse_route53_{label}_seconds: {parse_s:.3f} s")
    print(f"plan_{label}_min_seconds: {min(walls):.3f} s")
    print(f"plan_{label}_cpu_seconds: {statistics.median(cpus):.3f} s")
    print(f"plan_{label}_unchanged_zone_seconds: {steady_s:.3f} s")
    print(f"peak_rss: {_rss_mb():.0f} MB")
    print(f"plan_{label}_seconds: {statistics.median(walls):.3f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
