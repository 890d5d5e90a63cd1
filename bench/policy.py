"""Traffic-policy latency: from a proposal's approval to its Route53 change submitted, on two real clusters.

Two sandbox kube-apiservers serve app.bench.example.com behind a LoadBalancer Service each; the zone is in
moto (server mode) behind the tests' counting proxy, at Route53's default 5 requests/s. The worker (RQ's
forking worker) and the watch process run as `make up` runs them. Each round, one person proposes a new
weighted split and a second approves it (the service functions the pages call); the clock runs from the
approval's commit until the proxy sees Route53 accept the change: the write-back to both clusters, the watch
seeing it, the debounced reconcile (1 s window by default), the change set its approval covers (every change
set needs a person in this zone), and the apply.

Prints `name: value unit` lines, headline last:
  proposals                        rounds measured
  approve_to_submit_p50_seconds
  approve_to_submit_p95_seconds    (target <= 3 s)

Usage: .venv/bin/python bench/policy.py [--quick]   (--quick: 5 proposals instead of 20)
"""

from __future__ import annotations

import argparse
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
from bench.route53 import setup_zone, start_worker  # noqa: E402
from tests.fixtures.faultproxy import FaultProxy  # noqa: E402
from tools.services import start_moto  # noqa: E402

NAME = "app.bench.example.com"
PREFIX = "external-dns.alpha.kubernetes.io/"
CLUSTERS = {"bench-a": "198.51.100.61", "bench-b": "198.51.100.62"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    rounds = 5 if args.quick else 20

    tmp = Path(tempfile.mkdtemp(prefix="dnsportal-bench-policy-"))
    tmp.chmod(0o755)
    pg, redis = start_portal(tmp)
    moto = start_moto(tmp / "moto")
    proxy = FaultProxy(moto.url).start()
    from tools.kube_sandbox import Sandbox

    sandbox = Sandbox(tmp / "kube", list(CLUSTERS))
    procs: list[subprocess.Popen] = []
    try:
        sandbox.start()
        zone = setup_zone(proxy)
        register_clusters(sandbox)
        procs.append(start_worker(tmp, pg.url, redis.url))
        procs.append(start_watch(tmp, pg.url, redis.url))
        delays = measure(zone, proxy, rounds)
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
            proc.wait(20)
        sandbox.stop()
        proxy.stop()
        for svc in (moto, redis, pg):
            svc.stop()
    delays.sort()
    p95 = delays[max(0, round(0.95 * len(delays)) - 1)]
    print(f"proposals: {len(delays)} count")
    print(f"approve_to_submit_p50_seconds: {statistics.median(delays):.2f} s")
    print(f"approve_to_submit_p95_seconds: {p95:.2f} s")
    return 0


def register_clusters(sandbox) -> None:
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
                "metadata": {"name": "app", "annotations": {f"{PREFIX}hostname": NAME}},
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


def start_watch(tmp: Path, db_url: str, redis_url: str) -> subprocess.Popen:
    """The watch process as `make up` and docker-compose.yml run it."""
    return start_manage(tmp, db_url, redis_url, "watch")


def measure(zone, proxy: FaultProxy, rounds: int) -> list[float]:
    from records import changesets, proposals, services
    from records.models import ChangeSet, PolicyProposal
    from records.traffic import ClusterShare, TrafficPolicy
    from tests.fixtures.people import make_user

    alice, bob = make_user("bench-alice", "operator"), make_user("bench-bob", "approver")
    # Every change set needs a person (the default): the proposal's approval must be what covers each one.
    type(zone).objects.filter(id=zone.id).update(approval_mode="all")
    # The starting point: round robin across both clusters, applied.
    services.zone_reconcile_request(actor=alice, zone_id=zone.id)
    wait(
        lambda: ChangeSet.objects.filter(zone=zone, status__in=["pending", "applied"]).exists(), 60, "a plan"
    )
    for cs in ChangeSet.objects.filter(zone=zone, status="pending"):
        changesets.changeset_approve(changeset_id=cs.id, approver=bob)
    wait(lambda: ChangeSet.objects.filter(zone=zone, finished_at__isnull=False).exists(), 60, "the start")
    delays = []
    for i in range(rounds):
        weight = 10 + (i * 37) % 80  # a new split each round: 10..89 against the rest of 100
        policy = TrafficPolicy(
            NAME,
            "weighted",
            (ClusterShare("bench-a", weight=weight), ClusterShare("bench-b", weight=100 - weight)),
        )
        wait(
            lambda: not PolicyProposal.objects.filter(status__in=["approved", "writing"]).exists(), 30, "idle"
        )
        proposal = proposals.policy_propose(actor=alice, zone_id=zone.id, hostname=NAME, policy=policy)
        before = submitted(proxy)
        t0 = time.monotonic()
        proposals.policy_approve(proposal_id=proposal.id, approver=bob)
        wait(lambda b=before: submitted(proxy) > b, 30, f"proposal #{proposal.id} to reach Route53")
        delays.append(time.monotonic() - t0)
        # The next round starts from a finished apply (the zone's stored state moved with it).
        wait(lambda p=proposal: _applied(p), 30, f"the change set of proposal #{proposal.id}")
    return delays


def _applied(proposal) -> bool:
    proposal.refresh_from_db()
    return proposal.changeset is not None and proposal.changeset.finished_at is not None


def submitted(proxy: FaultProxy) -> int:
    """ChangeResourceRecordSets requests for the name that Route53 (moto) accepted."""
    return sum(1 for body in list(proxy.accepted_change_bodies) if NAME.encode() in body)


def wait(check, timeout: float, what: str, every: float = 0.005) -> None:
    """Until check() is true, asked every `every` seconds (a check that reads the database or parses request
    bodies need not run 200 times a second beside the processes it waits for)."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise SystemExit(f"bench: no {what} within {timeout:.0f} s")
        time.sleep(every)


if __name__ == "__main__":
    sys.exit(main())
