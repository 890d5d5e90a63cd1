"""Route53 API economy and latency, against moto in server mode behind a counting proxy (real HTTP).

Prints, one figure a line (headline last):
  converge_endpoints             endpoints published into an empty zone
  converge_calls                 Route53 requests the convergence made (list + change batches + GetChange)
  converge_minimum_formula       ceil(R/300) + ceil(C/1000): the issue's minimum (R records read, C changes)
  converge_minimum_with_chars    the same with Route53's 32,000-character limit too (it binds for TXT)
  converge_seconds               time from "names changed" to the zone converged
  one_service_calls              requests for one changed Service afterwards (minimum: 1 batch + 1 GetChange)
  drift_check_calls              requests one drift check makes (a full read: ceil(R/300) pages)
  idle_check_calls               requests a drift check makes before its interval is up (should be 0)
  steady_state_calls_per_hour    with nothing changing: drift checks only (3600 / interval x one check)
  patch_to_submit_p50_seconds    annotation patch in a real cluster until the change reaches Route53
  patch_to_submit_p95_seconds    (target <= 2 s; the default debounce window is 1 s of it)

Usage: .venv/bin/python bench/route53.py [--quick]   (--quick: 1,000 endpoints, 5 patches)
"""

from __future__ import annotations

import argparse
import math
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.portal import start_manage, start_portal  # noqa: E402
from tests.fixtures.faultproxy import FaultProxy  # noqa: E402  (the tests' counting proxy, no faults here)
from tools.services import start_moto  # noqa: E402

PREFIX = "external-dns.alpha.kubernetes.io/"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    endpoints, patches = (1000, 5) if args.quick else (10_000, 20)

    tmp = Path(tempfile.mkdtemp(prefix="dnsportal-bench-r53-"))
    tmp.chmod(0o755)
    pg, redis = start_portal(tmp)
    moto = start_moto(tmp / "moto")
    proxy = FaultProxy(moto.url).start()
    worker = None
    try:
        zone = setup_zone(proxy)
        converge(zone, endpoints, proxy)
        worker = start_worker(tmp, pg.url, redis.url)
        latency(zone, patches, proxy, tmp)
    finally:
        if worker is not None:
            worker.send_signal(signal.SIGTERM)
            worker.wait(20)
        proxy.stop()
        for svc in (moto, redis, pg):
            svc.stop()
    return 0


def route53_client(url: str):
    """boto3's Route53 client for moto at `url` (directly, or through a proxy); moto takes any key."""
    import boto3

    return boto3.client(
        "route53",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def setup_zone(proxy: FaultProxy):
    from dnsportal.queue import enqueue
    from records.models import ProviderAccount, Zone
    from records.services import account_create
    from tests.fixtures.jobs import drain_queues

    route53_client(proxy.url).create_hosted_zone(Name="bench.example.com", CallerReference="bench")
    # Route53's documented default: 5 requests per second per account.
    account_create(
        actor=None,
        name="bench",
        credential_kind="static",
        access_key_id="testing",
        secret="testing",
        endpoint_url=proxy.url,
        rate=5,
        burst=5,
    )
    enqueue("account_import_zones", account_id=ProviderAccount.objects.get(name="bench").id)
    drain_queues()
    zone = Zone.objects.get(name="bench.example.com.")
    Zone.objects.filter(id=zone.id).update(approval_mode="flagged")
    return Zone.objects.get(id=zone.id)


def converge(zone, n: int, proxy: FaultProxy) -> None:
    """n endpoints from a cluster (rows as discovery stores them), published into the empty zone."""
    from clusters.models import Cluster, DiscoveredObject
    from clusters.watch import endpoints_changed
    from records.models import ChangeSet, Endpoint
    from tests.fixtures.jobs import drain_queues

    cluster = Cluster.objects.create(name="bench-cluster", server="https://127.0.0.1:1")
    sources = DiscoveredObject.objects.bulk_create(
        [
            DiscoveredObject(cluster=cluster, kind="Service", namespace="default", name=f"svc-{i}")
            for i in range(n)
        ]
    )
    Endpoint.objects.bulk_create(
        [
            Endpoint(
                cluster=cluster,
                source=s,
                dns_name=f"svc-{i}.bench.example.com",
                record_type="A",
                targets=[f"203.0.{113 + i // 250 % 2}.{i % 250 + 1}"],
                resource=f"service/default/svc-{i}",
                labels={"resource": f"service/default/svc-{i}"},
            )
            for i, s in enumerate(sources)
        ],
        batch_size=2000,
    )
    proxy.reset_counters()
    start = time.perf_counter()
    endpoints_changed(cluster.id, {f"svc-{i}.bench.example.com" for i in range(n)})
    drain_queues()
    wait_scheduled(drain_queues)
    seconds = time.perf_counter() - start
    cs = ChangeSet.objects.get(zone=zone)
    assert cs.status == ChangeSet.Status.APPLIED, (cs.status, cs.error)
    calls = sum(
        proxy.requests[op] for op in ("ListResourceRecordSets", "ChangeResourceRecordSets", "GetChange")
    )
    changes = sum(len(c.actions) for c in cs.changes.all())
    chars = sum(
        len(rr["Value"])
        for c in cs.changes.all()
        for a in c.actions
        for rr in a["ResourceRecordSet"].get("ResourceRecords", [])
    )
    records_read = 2  # the empty zone's SOA and NS
    formula = math.ceil(records_read / 300) + math.ceil(changes / 1000)
    with_chars = math.ceil(records_read / 300) + max(math.ceil(changes / 1000), math.ceil(chars / 32_000))
    print(f"converge_endpoints: {n} count")
    print(f"converge_calls: {calls} requests")
    print(f"converge_minimum_formula: {formula} requests (+1 GetChange = {formula + 1})")
    print(f"converge_minimum_with_chars: {with_chars} requests (+1 GetChange = {with_chars + 1})")
    print(f"converge_seconds: {seconds:.1f} s")

    # One changed Service afterwards.
    proxy.reset_counters()
    Endpoint.objects.filter(dns_name="svc-0.bench.example.com").update(targets=["198.51.100.77"])
    endpoints_changed(cluster.id, {"svc-0.bench.example.com"})
    drain_queues()
    wait_scheduled(drain_queues)
    print(f"one_service_calls: {sum(proxy.requests.values())} requests")

    from dnsportal.queue import enqueue
    from records.models import Zone

    proxy.reset_counters()
    enqueue("zones_drift_check")
    drain_queues()
    print(f"idle_check_calls: {sum(proxy.requests.values())} requests")
    Zone.objects.filter(id=zone.id).update(last_drift_check_at=None)
    proxy.reset_counters()
    enqueue("zones_drift_check")
    drain_queues()
    per_check = sum(proxy.requests.values())
    print(f"drift_check_calls: {per_check} requests")
    interval = Zone.objects.get(id=zone.id).drift_interval
    print(
        f"steady_state_calls_per_hour: {per_check * 3600 / interval:.0f} requests/h "
        f"(drift checks every {interval} s, nothing else)"
    )


def wait_scheduled(drain) -> None:
    """Run delayed jobs (the debounced reconcile) as a worker with --with-scheduler would."""
    import django_rq
    from django.conf import settings
    from rq import SimpleWorker

    deadline = time.monotonic() + 60
    queues = [django_rq.get_queue(name) for name in settings.RQ_QUEUE_NAMES]
    while time.monotonic() < deadline:
        if not any(q.scheduled_job_registry.count or q.count for q in queues):
            return
        SimpleWorker(queues, connection=queues[0].connection).work(burst=True, with_scheduler=True)
        time.sleep(0.05)


def start_worker(tmp: Path, db_url: str, redis_url: str) -> subprocess.Popen:
    """The worker as `make up` and docker-compose.yml run it: RQ's forking worker, a process per job."""
    return start_manage(
        tmp, db_url, redis_url, "rqworker", "default", "discovery", "dns", "verify", "--with-scheduler"
    )


def latency(zone, patches: int, proxy: FaultProxy, tmp: Path) -> None:
    import yaml
    from kubernetes import client as k8s

    from clusters.services import Credentials, cluster_register
    from clusters.watch import ClusterWatcher
    from tools.kube_sandbox import Sandbox
    from tools.kube_sandbox.objects import api_client, set_service_load_balancer

    sandbox = Sandbox(tmp / "kube", ["bench-live"])
    sandbox.start()
    watcher = None
    try:
        kc = sandbox.clusters[0]
        api = api_client(kc.kubeconfig("admin"))
        k8s.CoreV1Api(api).create_namespaced_service(
            "default",
            {
                "metadata": {"name": "web", "annotations": {f"{PREFIX}hostname": "web.bench.example.com"}},
                "spec": {"type": "LoadBalancer", "selector": {"app": "web"}, "ports": [{"port": 80}]},
            },
        )
        set_service_load_balancer(api, "default", "web", ips=["203.0.113.200"])
        cluster = cluster_register(
            actor=None,
            name="bench-live",
            creds=Credentials(kubeconfig=yaml.safe_dump(kc.kubeconfig("restricted")), context=""),
        )
        watcher = ClusterWatcher(cluster, __import__("clusters.watch", fromlist=["x"]).endpoints_changed)
        watcher.start()
        wait_for_change(proxy, "web.bench.example.com.", time.monotonic(), 60)
        delays = []
        for i in range(patches):
            name = f"live-{i}.bench.example.com"
            t0 = time.monotonic()
            k8s.CoreV1Api(api).patch_namespaced_service(
                "web", "default", {"metadata": {"annotations": {f"{PREFIX}hostname": name}}}
            )
            delays.append(wait_for_change(proxy, name + ".", t0, 30) - t0)
            # The next patch starts a new debounce window (this one ended before the change was sent), and
            # finds no apply in flight: wait for this change set to finish.
            wait_finished(name + ".", 30)
        delays.sort()
        p95 = delays[max(0, round(0.95 * len(delays)) - 1)]
        print(f"patch_to_submit_p50_seconds: {statistics.median(delays):.2f} s")
        print(f"patch_to_submit_p95_seconds: {p95:.2f} s")
    finally:
        if watcher is not None:
            watcher.stop()
            watcher.join(10)
        sandbox.stop()


def wait_finished(name: str, timeout: float) -> None:
    """Until the change set that changes `name` has finished (its apply's GetChange and bookkeeping)."""
    from records.models import Change

    deadline = time.monotonic() + timeout
    while not Change.objects.filter(name=name, changeset__finished_at__isnull=False).exists():
        if time.monotonic() > deadline:
            raise SystemExit(f"the change set for {name} did not finish within {timeout:.0f} s")
        time.sleep(0.01)


def wait_for_change(proxy: FaultProxy, name: str, since: float, timeout: float) -> float:
    """When Route53 (moto, behind the proxy) accepted a change to `name` (polled every 5 ms)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(change[1] == name for change in proxy.accepted_changes()):
            return time.monotonic()
        time.sleep(0.005)
    raise SystemExit(f"no change for {name} reached Route53 within {timeout:.0f} s")


if __name__ == "__main__":
    threading.current_thread().name = "bench"
    sys.exit(main())
