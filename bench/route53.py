"""Route53 API economy and latency, against moto in server mode behind a counting proxy (real HTTP).

Prints, one figure a line (headline last):
  converge_endpoints             endpoints published into an empty zone
  converge_calls                 Route53 requests the convergence made (list + change batches + GetChange)
  converge_minimum_formula       ceil(R/300) + ceil(C/1000) + 1 GetChange: the issue's minimum (R records
                                 read, C changes)
  converge_minimum_with_chars    the same with Route53's 32,000-character limit too (it binds for TXT)
  converge_seconds               time from "names changed" to the zone converged
  one_service_calls              requests for one changed Service afterwards (minimum: 1 batch + 1 GetChange)
  idle_check_calls               requests a drift check makes before its interval is up (should be 0)
  drift_check_calls              requests one drift check makes (a full read: ceil(R/300) pages)
  steady_state_calls_per_hour    with nothing changing: drift checks only (3600 / interval x one check)
  burst_1000_patches_reconciles  reconciles of the zone for 1,000 annotation changes within 1 s (target <= 5;
                                 they enter where the watch hands an event over, see burst())
  multi_zone_zones               zones of one account converged at once (100; 10 with --quick) ...
  multi_zone_records             ... each given this many endpoints (1,000; 100 with --quick)
  multi_zone_calls               Route53 requests that convergence made, every zone together
  multi_zone_converge_seconds    from "names changed" to every one of those zones applied
  multi_zone_rate_per_second     the account's configured rate (its burst: the same number of requests)
  multi_zone_allowed_per_second  the most a bucket of that rate and burst lets through in 1 s: burst + rate
  multi_zone_mean_calls_per_second  multi_zone_calls over the time they took (at most the rate)
  multi_zone_max_calls_per_second   the most requests the proxy received in any 1 s of that run (sliding)
  patch_to_submit_p50_seconds    an isolated annotation patch in a real cluster until its change reaches
                                 Route53 (nothing else in the zone for a debounce window before it)
  patch_to_submit_p95_seconds    (target <= 0.5 s at 10,000 endpoints: a quiet zone reconciles at once)

Usage: .venv/bin/python bench/route53.py [--quick]
  (--quick: 1,000 endpoints, 5 patches, 10 zones x 100; otherwise 10,000, 20, 100 x 1,000)
Why an isolated patch takes what it takes goes to stderr, one line per patch.
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
    zones, records = (10, 100) if args.quick else (100, 1000)

    tmp = Path(tempfile.mkdtemp(prefix="dnsportal-bench-r53-"))
    tmp.chmod(0o755)
    pg, redis = start_portal(tmp)
    moto = start_moto(tmp / "moto")
    proxy = FaultProxy(moto.url).start()
    workers: list[subprocess.Popen] = []
    try:
        zone = setup_zone(proxy)
        converge(zone, endpoints, proxy)
        workers.append(start_worker(tmp, pg.url, redis.url, "worker"))
        # The isolated patches run before the other zones exist: at 10,000 endpoints in this zone alone.
        latency_lines = live(zone, patches, proxy, tmp)
        workers.append(start_worker(tmp, pg.url, redis.url, "worker2"))
        multi_zone(zones, records, proxy)
        for line in latency_lines:
            print(line)
    finally:
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
        for worker in workers:
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


def setup_zone(proxy: FaultProxy, name: str = "bench.example.com", approval_mode: str = "flagged"):
    """A Route53 zone `name` in moto, imported by an account that reaches it through `proxy`."""
    from dnsportal.queue import enqueue
    from records.models import ProviderAccount, Zone
    from records.services import account_create
    from tests.fixtures.jobs import drain_queues

    route53_client(proxy.url).create_hosted_zone(Name=name, CallerReference=name)
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
    zone = Zone.objects.get(name=name.rstrip(".") + ".")
    Zone.objects.filter(id=zone.id).update(approval_mode=approval_mode)
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
    print(f"converge_minimum_formula: {formula + 1} requests")
    print(f"converge_minimum_with_chars: {with_chars + 1} requests")
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
    print(f"steady_state_calls_per_hour: {per_check * 3600 / interval:.0f} requests/h")
    print(f"(drift checks every {interval} s, nothing else)", file=sys.stderr)


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


def start_worker(tmp: Path, db_url: str, redis_url: str, log_name: str = "worker") -> subprocess.Popen:
    """The worker as `make up` and docker-compose.yml run it: RQ's forking worker, a process per job."""
    return start_manage(
        tmp,
        db_url,
        redis_url,
        "rqworker",
        "default",
        "discovery",
        "dns",
        "verify",
        "--with-scheduler",
        log_name=log_name,
    )


def live(zone, patches: int, proxy: FaultProxy, tmp: Path) -> list[str]:
    """A real cluster watched by the watch's ClusterWatcher: 1,000 patches in a burst, then isolated ones.
    Prints the burst's figure; returns the isolated patches' lines (printed last: the headline)."""
    import yaml
    from kubernetes import client as k8s

    from clusters.services import Credentials, cluster_register
    from clusters.watch import ClusterWatcher, endpoints_changed
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
        watcher = ClusterWatcher(cluster, endpoints_changed)
        watcher.start()
        wait_for_change(proxy, "web.bench.example.com.", time.monotonic(), 60)
        wait_finished("web.bench.example.com.", 60)
        burst(zone, cluster)
        return latency(zone, api, patches, proxy)
    finally:
        if watcher is not None:
            watcher.stop()
            watcher.join(10)
        sandbox.stop()


BURST_THREADS = 10  # watch threads handing events over at once (one per cluster of a 10-cluster portal)


def burst(zone, cluster, n: int = 1000) -> None:
    """n annotation patches within 1 s, entering where the watch hands each event over: the endpoint row
    updated (the record's TTL, a real DNS change each) and the changed name signalled, paced over 1 s by
    BURST_THREADS threads, each with its own database connection as each watch thread has. (The sandbox's API
    server takes about 17 patches a second on a busy 2-core machine: 1,000 real patches take a minute, which
    is not a burst.) The zone's reconciles are counted until it is quiet again."""
    from django.db import connection

    from clusters.watch import endpoints_changed
    from dnsportal.models import JobRun
    from records.models import Endpoint

    before = JobRun.objects.filter(name="zone_reconcile").order_by("-id").values_list("id", flat=True).first()
    # by primary key: a lookup by name would scan the zone's 10,000 rows on every event
    pk = Endpoint.objects.get(cluster=cluster, dns_name="web.bench.example.com").pk
    t0 = time.monotonic() + 0.2  # every thread connected before the first event

    def events(k: int) -> None:
        try:
            for i in range(k, n, BURST_THREADS):
                while time.monotonic() < t0 + i / n:
                    time.sleep(0.0005)
                Endpoint.objects.filter(pk=pk).update(ttl=60 + i)
                endpoints_changed(cluster.id, {"web.bench.example.com"})
        finally:
            connection.close()

    threads = [threading.Thread(target=events, args=(k,)) for k in range(BURST_THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    sent = time.monotonic() - t0
    # the threads' last writes race: the zone must settle at whichever the database kept
    wait_settled(zone, Endpoint.objects.get(pk=pk).ttl, 120)
    reconciles = JobRun.objects.filter(name="zone_reconcile", id__gt=before or 0, kwargs__zone_id=zone.id)
    print(f"burst: {n} events in {sent:.2f} s", file=sys.stderr)
    print(f"burst_1000_patches_reconciles: {reconciles.count()} reconciles")


def wait_settled(zone, ttl: int, timeout: float) -> None:
    """Until web's record in the zone's stored state has this TTL and no reconcile or apply is left."""
    from django.db.models import Q

    from dnsportal.models import JobRun
    from records.models import ZoneRecord

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = ZoneRecord.objects.filter(
            zone=zone, name="web.bench.example.com.", type="A", data__TTL=ttl
        ).exists()
        busy = JobRun.objects.filter(Q(name="zone_reconcile") | Q(name="changeset_apply")).filter(
            status__in=[JobRun.Status.PENDING, JobRun.Status.RUNNING]
        )
        if done and not busy.exists():
            wait_quiet(zone)  # a trailing reconcile may still be due
            if not busy.exists():
                return
        time.sleep(0.05)
    raise SystemExit(f"the zone did not settle at TTL {ttl} within {timeout:.0f} s")


def latency(zone, api, patches: int, proxy: FaultProxy) -> list[str]:
    """Isolated patches: each in a quiet zone (nothing for a debounce window before it), quiet for longer
    than an apply trusts the stored state (its time of knowing set back): the worst case of a quiet zone."""
    from datetime import timedelta

    from django.conf import settings
    from django.db.models import F
    from kubernetes import client as k8s

    from dnsportal.models import JobRun
    from records.models import Zone

    delays = []
    for i in range(patches):
        name = f"live-{i}.bench.example.com"
        wait_quiet(zone)
        Zone.objects.filter(id=zone.id).update(
            state_known_at=F("state_known_at") - timedelta(seconds=settings.APPLY_STATE_MAX_AGE_S + 1)
        )
        last = JobRun.objects.order_by("-id").values_list("id", flat=True).first() or 0
        t0, wall0 = time.monotonic(), time.time()
        k8s.CoreV1Api(api).patch_namespaced_service(
            "web", "default", {"metadata": {"annotations": {f"{PREFIX}hostname": name}}}
        )
        delays.append(wait_for_change(proxy, name + ".", t0, 30) - t0)
        wait_finished(name + ".", 30)
        print(f"patch {i}: {delays[-1]:.3f} s to Route53; {breakdown(last, wall0)}", file=sys.stderr)
    delays.sort()
    p95 = delays[max(0, round(0.95 * len(delays)) - 1)]
    return [
        f"patch_to_submit_p50_seconds: {statistics.median(delays):.2f} s",
        f"patch_to_submit_p95_seconds: {p95:.2f} s",
    ]


def wait_buckets_full(rate: float, burst: int, timeout: float = 30) -> None:
    """Until every account's token bucket in Redis (records/providers/ratelimit.py) holds `burst` tokens."""
    from dnsportal.queue import rq_connection
    from records.providers.ratelimit import KEY_PREFIX

    redis = rq_connection()
    deadline = time.monotonic() + timeout
    for key in redis.scan_iter(match=KEY_PREFIX + "*"):
        while True:
            tokens, ts = redis.hmget(key, "tokens", "ts")
            if tokens is None or ts is None:
                break  # no state: a full bucket
            sec, usec = redis.time()
            have = float(tokens) + (sec * 1_000_000 + usec - float(ts)) * rate / 1_000_000
            if have >= burst:
                break
            if time.monotonic() > deadline:
                raise SystemExit(f"the rate limiter's bucket {key!r} did not fill within {timeout:.0f} s")
            time.sleep(min(0.1, (burst - have) / rate))


def wait_quiet(zone, timeout: float = 30) -> None:
    """Until the zone's debounce window is over (its key in Redis gone): the next event is isolated."""
    from dnsportal.queue import rq_connection
    from records.debounce import KEY_PREFIX

    deadline = time.monotonic() + timeout
    while rq_connection().exists(f"{KEY_PREFIX}{zone.id}", f"{KEY_PREFIX}{zone.id}:trailing"):
        if time.monotonic() > deadline:
            raise SystemExit(f"the zone's debounce window did not end within {timeout:.0f} s")
        time.sleep(0.01)


def breakdown(after_id: int, wall0: float) -> str:
    """Where an isolated patch's time went: each job since the patch, as seconds after the patch."""
    from dnsportal.models import JobRun

    parts = []
    for run in JobRun.objects.filter(id__gt=after_id).order_by("id"):
        if run.started_at is None:
            continue
        t = [x.timestamp() - wall0 for x in (run.created_at, run.started_at, run.finished_at) if x]
        parts.append(f"{run.name} " + "/".join(f"{x:.3f}" for x in t))
    return "; ".join(parts) + " (queued/started/finished)"


def multi_zone(zones: int, records: int, proxy: FaultProxy) -> None:
    """`zones` empty zones of one account (its own bucket: Route53's default 5 requests/s), each given
    `records` endpoints at once; converged by two workers sharing the account's rate limit."""
    from clusters.models import Cluster, DiscoveredObject
    from clusters.watch import endpoints_changed
    from dnsportal.queue import enqueue
    from records.models import ChangeSet, Endpoint, ProviderAccount, Zone
    from records.providers.ratelimit import expected_max_requests
    from records.services import account_create
    from tests.fixtures.jobs import drain_queues

    rate = 5
    r53 = route53_client(proxy.url)
    names = [f"z{z:03d}.multi.example.com" for z in range(zones)]
    for name in names:
        r53.create_hosted_zone(Name=name, CallerReference=name)
    account_create(
        actor=None,
        name="multi",
        credential_kind="static",
        access_key_id="testing",
        secret="testing",
        endpoint_url=proxy.url,
        rate=rate,
        burst=rate,
    )
    account = ProviderAccount.objects.get(name="multi")
    enqueue("account_import_zones", account_id=account.id, domain_filter=["multi.example.com"])
    drain_queues()
    zone_ids = list(Zone.objects.filter(account=account).values_list("id", flat=True))
    assert len(zone_ids) == zones, len(zone_ids)
    Zone.objects.filter(id__in=zone_ids).update(approval_mode="flagged")

    cluster = Cluster.objects.create(name="bench-multi", server="https://127.0.0.1:1")
    for z, zone_name in enumerate(names):
        sources = DiscoveredObject.objects.bulk_create(
            [
                DiscoveredObject(cluster=cluster, kind="Service", namespace=f"z{z}", name=f"svc-{i}")
                for i in range(records)
            ]
        )
        Endpoint.objects.bulk_create(
            [
                Endpoint(
                    cluster=cluster,
                    source=s,
                    dns_name=f"svc-{i}.{zone_name}",
                    record_type="A",
                    targets=[f"198.18.{i // 250}.{i % 250 + 1}"],
                    resource=f"service/z{z}/svc-{i}",
                    labels={"resource": f"service/z{z}/svc-{i}"},
                )
                for i, s in enumerate(sources)
            ],
            batch_size=2000,
        )
    # The rate is the account's alone from here: wait until its bucket is full (the import spent some).
    wait_buckets_full(rate, rate)
    proxy.reset_counters()
    start = time.monotonic()
    for zone_name in names:
        endpoints_changed(cluster.id, {f"svc-{i}.{zone_name}" for i in range(records)})
    deadline = start + 3600
    applied = ChangeSet.objects.filter(zone_id__in=zone_ids, status=ChangeSet.Status.APPLIED)
    while applied.values("zone_id").distinct().count() < zones:
        failed = ChangeSet.objects.filter(zone_id__in=zone_ids).exclude(
            status__in=[ChangeSet.Status.APPLIED, ChangeSet.Status.APPROVED, ChangeSet.Status.APPLYING]
        )
        if failed.exists() or time.monotonic() > deadline:
            problems = list(failed.values_list("status", "error"))
            raise SystemExit(f"the {zones} zones did not converge: {problems}")
        time.sleep(0.1)
    seconds = time.monotonic() - start
    times = sorted(proxy.times())
    calls = len(times)
    span = times[-1] - times[0] if calls > 1 else 1.0
    print(f"multi_zone_zones: {zones} zones")
    print(f"multi_zone_records: {records} endpoints")
    print(f"multi_zone_calls: {calls} requests")
    print(f"multi_zone_converge_seconds: {seconds:.1f} s")
    print(f"multi_zone_rate_per_second: {rate} requests/s")
    print(f"multi_zone_allowed_per_second: {expected_max_requests(1.0, rate=rate, burst=rate)} requests")
    print(f"multi_zone_mean_calls_per_second: {calls / span:.2f} requests/s")
    print(f"multi_zone_max_calls_per_second: {proxy.max_per_second()} requests")


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
