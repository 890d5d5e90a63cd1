"""Traffic-shift overhead: the time each step takes beyond its hold time, on two real clusters and PowerDNS.

Two sandbox kube-apiservers serve app.<zone> behind a LoadBalancer Service each (127.0.0.2 and 127.0.0.3);
the zone is an internal zone of a real PowerDNS (tools/pdns) the portal imported. The worker (RQ's forking
worker, with its scheduler) and the watch process run as `make up` runs them. One person plans a shift, a
second approves it (the service functions the pages call), and the portal's own runner takes every step: the
write-back to both clusters, the watch seeing it, the reconcile, the apply, the hold (1 s), and the gates
(every nameserver answers, and the measured split is consistent with the step's weights: a few thousand DNS
queries), which measure as the hold starts, since the nameservers' answers do not change during it. A step's
overhead is its time from start to passed, less the hold.

Prints `name: value unit` lines, headline last (and each step's figures on stderr):
  hold_seconds                        the hold of every step
  step_write_to_applied_p50_seconds   write-back, watch, reconcile and apply of a step
  step_write_to_applied_max_seconds
  step_past_hold_p50_seconds          from the hold's end to passed: gates measuring longer than the hold
  step_past_hold_max_seconds
  steps                               steps measured
  step_overhead_p50_seconds
  step_overhead_p95_seconds           (target <= 3 s)

Usage: .venv/bin/python bench/shift.py [--quick]   (--quick: 3 steps instead of 10)
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.portal import start_manage, start_portal  # noqa: E402
from bench.route53 import start_worker  # noqa: E402
from tools.pdns import start_pdns  # noqa: E402

PREFIX = "external-dns.alpha.kubernetes.io/"
CLUSTERS = {"bench-a": "127.0.0.2", "bench-b": "127.0.0.3"}
HOLD_S = 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    count = 3 if args.quick else 10

    tmp = Path(tempfile.mkdtemp(prefix="dnsportal-bench-shift-"))
    tmp.chmod(0o755)
    # The worker and the watch inherit these: a 1 s hold is allowed, and discovery events reconcile at once.
    os.environ.update(DNSPORTAL_SHIFT_MIN_HOLD_S=str(HOLD_S), DNSPORTAL_RECONCILE_DEBOUNCE_MS="0")
    pg, redis = start_portal(tmp)
    pdns = start_pdns()
    from tools.kube_sandbox import Sandbox

    sandbox = Sandbox(tmp / "kube", list(CLUSTERS))
    procs: list[subprocess.Popen] = []
    try:
        sandbox.start()
        zone = setup_zone(pdns)
        host = f"app.{zone.name}".rstrip(".")
        register_clusters(sandbox, host)
        procs.append(start_worker(tmp, pg.url, redis.url))
        procs.append(start_manage(tmp, pg.url, redis.url, "watch"))
        overheads, applies, past_hold = measure(zone, host, count)
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
            proc.wait(20)
        sandbox.stop()
        pdns.stop()
        for svc in (redis, pg):
            svc.stop()
    overheads.sort()
    p95 = overheads[max(0, round(0.95 * len(overheads)) - 1)]
    print(f"hold_seconds: {HOLD_S} s")
    print(f"step_write_to_applied_p50_seconds: {statistics.median(applies):.2f} s")
    print(f"step_write_to_applied_max_seconds: {max(applies):.2f} s")
    print(f"step_past_hold_p50_seconds: {statistics.median(past_hold):.2f} s")
    print(f"step_past_hold_max_seconds: {max(past_hold):.2f} s")
    print(f"steps: {len(overheads)} count")
    print(f"step_overhead_p50_seconds: {statistics.median(overheads):.2f} s")
    print(f"step_overhead_p95_seconds: {p95:.2f} s")
    return 0


def setup_zone(pdns, name: str = "shift.bench.test."):
    """An internal zone `name` of the PowerDNS `pdns`, imported by an account of its own; every change set
    waits for a second person."""
    from dnsportal.queue import enqueue
    from records.models import ProviderAccount, Zone
    from records.services import account_create
    from tests.fixtures.jobs import drain_queues

    pdns.create_zone(name)
    account_create(
        actor=None,
        name="bench-pdns",
        credential_kind="default",
        kind=ProviderAccount.Kind.POWERDNS,
        endpoint_url=f"http://127.0.0.1:{pdns.api_port}",
        secret=pdns.api_key,
        dns_servers=f"127.0.0.1:{pdns.dns_port}",
        rate=50,
        burst=50,
    )
    enqueue("account_import_zones", account_id=ProviderAccount.objects.get(name="bench-pdns").id)
    drain_queues()
    zone = Zone.objects.get(name=name)
    Zone.objects.filter(id=zone.id).update(private=True, approval_mode="all")
    return Zone.objects.get(id=zone.id)


def register_clusters(sandbox, host: str) -> None:
    import yaml
    from kubernetes import client as k8s

    from clusters import discovery
    from clusters.services import Credentials, cluster_register
    from tools.kube_sandbox.objects import api_client, set_service_load_balancer

    for kc in sandbox.clusters:
        api = api_client(kc.kubeconfig("admin"))
        k8s.CoreV1Api(api).create_namespaced_service(
            "default",
            {
                "metadata": {"name": "app", "annotations": {f"{PREFIX}hostname": host, f"{PREFIX}ttl": "1"}},
                "spec": {"type": "LoadBalancer", "selector": {"app": "app"}, "ports": [{"port": 80}]},
            },
        )
        set_service_load_balancer(api, "default", "app", ips=[CLUSTERS[kc.name]])
        cluster = cluster_register(
            actor=None,
            name=kc.name,
            creds=Credentials(kubeconfig=yaml.safe_dump(kc.kubeconfig("restricted")), context=""),
        )
        discovery.sync_cluster(cluster.id)


def measure(zone, host: str, count: int) -> tuple[list[float], list[float], list[float]]:
    from records import changesets, services, shift, shifts
    from records.models import ChangeSet, ShiftPlan
    from tests.fixtures.people import make_user

    alice, bob = make_user("bench-alice", "operator"), make_user("bench-bob", "approver")
    services.zone_reconcile_request(actor=alice, zone_id=zone.id)
    wait(lambda: ChangeSet.objects.filter(zone=zone, status="pending").exists(), 60, "a plan")
    for cs in ChangeSet.objects.filter(zone=zone, status="pending"):
        changesets.changeset_approve(changeset_id=cs.id, approver=bob)
    wait(lambda: ChangeSet.objects.filter(zone=zone, status="applied").exists(), 60, "the start")
    clusters, _, _ = shifts.start_split(host)
    # a new split each step, never the previous one: 10..89 against the rest of 100
    weights = [10 + (i * 37) % 80 for i in range(count)]
    splits = [{clusters[0]: w, clusters[1]: 100 - w} for w in weights]
    plan = shifts.shift_propose(
        actor=alice, zone_id=zone.id, hostname=host, splits=splits, hold_seconds=HOLD_S
    )
    shifts.shift_approve(plan_id=plan.id, approver=bob)
    wait(
        lambda: ShiftPlan.objects.get(id=plan.id).status in shift.FINAL,
        60 + 30 * count,
        f"traffic shift #{plan.id} to finish",
        every=0.2,
    )
    plan = ShiftPlan.objects.get(id=plan.id)
    if plan.status != ShiftPlan.Status.DONE:
        raise SystemExit(f"bench: traffic shift #{plan.id} ended {plan.status}: {plan.message}")
    steps = list(plan.steps.order_by("index"))
    overheads = [(s.finished_at - s.started_at).total_seconds() - HOLD_S for s in steps]
    # start -> applied: write-back, watch, reconcile, apply; applied + hold -> passed: gates beyond the hold
    applies = [(s.applied_at - s.started_at).total_seconds() for s in steps]
    past_hold = [(s.finished_at - s.applied_at).total_seconds() - HOLD_S for s in steps]
    for s, a, g in zip(steps, applies, past_hold, strict=True):
        print(f"step {s.index}: applied after {a:.2f} s, passed {g:.2f} s after its hold", file=sys.stderr)
    return overheads, applies, past_hold


def wait(check, timeout: float, what: str, every: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise SystemExit(f"bench: no {what} within {timeout:.0f} s")
        time.sleep(every)


if __name__ == "__main__":
    sys.exit(main())
