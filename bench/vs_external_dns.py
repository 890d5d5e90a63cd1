"""The portal against the real ExternalDNS (v0.21.0) on the same zone: Route53 requests and latency.

One sandbox kube-apiserver holds N LoadBalancer Services, `svc-i.bench.example.com` each with an address:
N A records and N TXT ownership records (2N record sets). The portal (its real worker, watch and scheduler
processes, Route53's default 5 requests/s) and ExternalDNS (`--source=service --provider=aws --registry=txt`,
the zone's owner id and TXT prefix) publish them into two hosted zones of the same name in one moto server
(two programs in one zone would fight), each through its own counting proxy (tests/fixtures/faultproxy.py,
no faults): every figure is what a proxy saw.

Prints, one figure a line (headline last):
  endpoints                                     Services, one A and one TXT record set each
  portal_record_sets                            record sets in each zone once converged (SOA and NS
  external_dns_record_sets                        included): the two must be equal
  portal_converge_calls                         requests from the cluster's registration (in a running
                                                  portal: the watch leads, a worker waits) until the zone
                                                  holds every record (reads, change batches, GetChange)
  external_dns_converge_calls                   requests of ExternalDNS from its start into its empty zone
                                                  until its last change batch
  converge_calls_ratio                          portal / ExternalDNS
  portal_converge_seconds                       the same two convergences, in seconds
  external_dns_converge_seconds
  external_dns_sync_calls                       requests of one ExternalDNS sync with nothing to change
  portal_steady_calls_per_hour                  with nothing changing: the real worker, watch and scheduler
                                                  counted over a window that holds one drift check (every
                                                  drift interval, 600 s: one GetHostedZone, the record
                                                  count, and the nameservers asked for the owned records)
                                                  and one full read (every full-read interval, 3600 s:
                                                  ListResourceRecordSets pages); per hour: the full read's
                                                  requests once, the check's 3600/600 - 1 = 5 times (the
                                                  sixth check of the hour is the full read), any other
                                                  request once per window. moto's nameservers cannot be
                                                  asked: once converged, the zone is copied into a
                                                  PowerDNS server (the zone's nameserver override), which
                                                  answers as Route53's would; nothing changes in the
                                                  window, so the copy stays exact (the override is
                                                  cleared after the window: the copy does not follow the
                                                  patches)
  external_dns_steady_calls_per_hour            at its default --interval=1m: whole syncs counted, per hour
  external_dns_events_steady_calls_per_hour     the same with --events (nothing changes, so no event)
  steady_calls_per_hour_events_ratio            portal / ExternalDNS with --events
  portal_patch_to_submit_p50_seconds            a TTL annotation patched on a Service until its change is
  portal_patch_to_submit_max_seconds              accepted by Route53 through the proxy: both programs see
  external_dns_patch_to_submit_p50_seconds        the same patch (ExternalDNS with --events, which waits
  external_dns_patch_to_submit_max_seconds        ~5 s and then reads the whole zone; the portal reads the
                                                  zone before an apply when its stored state is over 60 s
                                                  old, as for the first patch after the idle window)
  patch_to_submit_p50_ratio                     portal / ExternalDNS
  steady_calls_per_hour_ratio                   portal / ExternalDNS at --interval=1m (the headline)

Full run: 10,000 endpoints, a portal window of 600 s (its drift interval: one check and one full read, both
started by the scheduler, made due in turn by the bench and counted at the proxy), ExternalDNS
syncing every 60 s over 3 whole syncs in each mode, 10 patches. `--quick`: 1,000 endpoints, a 60 s portal
window, ExternalDNS syncing every 10 s over 2 whole syncs per mode (a sync's requests do not depend on the
interval; they are scaled to one sync a minute plus the loop's measured overrun), 5 patches (ExternalDNS
restarted with --interval=1m for them): about 2.5 minutes on 2 idle cores. The steady windows of the two
programs run at the same time; the patches come after, once the portal's scheduler has stopped and its
worker is idle (its 5-minute relist of 10,000 Services would otherwise run into them). Figures are from one
run on whatever machine runs it: say its load.

Usage: .venv/bin/python bench/vs_external_dns.py [--quick]
"""

from __future__ import annotations

import argparse
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.policy import start_watch, wait  # noqa: E402
from bench.portal import start_manage, start_portal  # noqa: E402
from bench.route53 import route53_client, setup_zone, start_worker, wait_for_change  # noqa: E402
from tests.fixtures.external_dns import BINARY, external_dns_process  # noqa: E402
from tests.fixtures.faultproxy import FaultProxy  # noqa: E402
from tools.pdns import start_pdns  # noqa: E402
from tools.services import start_moto  # noqa: E402

ZONE = "bench.example.com"  # bench/route53.py's setup_zone makes and imports it
PREFIX = "external-dns.alpha.kubernetes.io/"


@dataclass(frozen=True)
class Size:
    endpoints: int
    patches: int
    portal_window: float  # seconds; the full run's is the drift interval
    interval: int  # ExternalDNS's --interval in the steady windows, seconds
    syncs: int  # whole ExternalDNS syncs counted per mode
    timeout: float  # for a convergence


QUICK = Size(endpoints=1000, patches=5, portal_window=60, interval=10, syncs=2, timeout=300)
FULL = Size(endpoints=10_000, patches=10, portal_window=600, interval=60, syncs=3, timeout=1800)
DEFAULT_INTERVAL = 60  # ExternalDNS's --interval=1m
STARTED = time.monotonic()


def say(what: str) -> None:
    """Progress on stderr (a full run takes about 20 minutes); the figures alone go to stdout."""
    print(f"[{time.monotonic() - STARTED:6.0f} s] {what}", file=sys.stderr, flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    size = QUICK if args.quick else FULL
    if not BINARY.exists():
        raise SystemExit(f"bench: {BINARY} is missing; build it with tools/external_dns/build.sh")

    tmp = Path(tempfile.mkdtemp(prefix="dnsportal-bench-vs-edns-"))
    tmp.chmod(0o755)
    say(f"logs in {tmp}")
    pg, redis = start_portal(tmp)
    moto = start_moto(tmp / "moto")
    portal_proxy, edns_proxy = FaultProxy(moto.url).start(), FaultProxy(moto.url).start()
    from tools.kube_sandbox import Sandbox

    sandbox = Sandbox(tmp / "kube", ["bench-vs"])
    procs: list[subprocess.Popen] = []
    pdns = None
    try:
        sandbox.start()
        kc = sandbox.clusters[0]
        say(f"creating {size.endpoints} Services")
        create_services(kc, size.endpoints)
        zone = setup_zone(portal_proxy)
        # ExternalDNS's zone of the same name, made after the portal imported its own (it imports all).
        edns_zone_id = (
            route53_client(moto.url)
            .create_hosted_zone(Name=ZONE, CallerReference="external-dns")["HostedZone"]["Id"]
            .split("/")[-1]
        )
        kubeconfig = tmp / "external-dns" / "kubeconfig.yaml"
        kubeconfig.parent.mkdir()
        import yaml

        kubeconfig.write_text(yaml.safe_dump(kc.kubeconfig("admin")))

        def edns(interval: int, *flags: str):
            return external_dns_process(
                kubeconfig=kubeconfig,
                endpoint_url=edns_proxy.url,
                zone_id=edns_zone_id,
                owner_id=zone.owner_id,
                txt_prefix=zone.txt_prefix,
                sources=["service"],
                flags=flags,
                interval=f"{interval}s",
            )

        procs += [start_worker(tmp, pg.url, redis.url, "worker"), start_watch(tmp, pg.url, redis.url)]
        wait_running(size.timeout)
        say("the portal converges")
        portal_calls, portal_seconds = portal_converge(kc, zone, portal_proxy, size)
        pdns = answer_for(zone, moto.url, tmp)
        say("ExternalDNS converges")
        edns_proxy.reset_counters()
        with edns(size.interval) as ext:
            edns_calls, edns_seconds = edns_converge(ext, edns_proxy, size)
            portal_sets = count_record_sets(moto.url, zone.provider_zone_id)
            edns_sets = count_record_sets(moto.url, edns_zone_id)

            say(f"steady windows: the portal's {size.portal_window:.0f} s, ExternalDNS's {size.syncs} syncs")
            # The steady windows: the portal's (its scheduler started now) while ExternalDNS syncs.
            window = PortalWindow(zone, portal_proxy, size.portal_window)
            procs.append(window.start(tmp, pg.url, redis.url))
            ext.wait_for_loop(size.timeout)  # counting starts as a sync ends
            sync_calls, per_hour = edns_steady(ext, edns_proxy, size)
        with edns(size.interval, "--events") as ext:
            # Its first sync, at start; then the one the informers' initial "add" events schedule 5 s later.
            ext.wait_for_loop(size.timeout)
            ext.wait_for_loop(size.timeout)
            _, per_hour_events = edns_steady(ext, edns_proxy, size)
            say("waiting for the end of the portal's window")
            portal_per_hour = window.finish()
            say(f"{size.patches} patches")
            if size.interval == DEFAULT_INTERVAL:  # as a team runs it: the patches go to this one
                portal_delays, edns_delays = latency(kc, zone, portal_proxy, edns_proxy, size)
        if size.interval != DEFAULT_INTERVAL:
            with edns(DEFAULT_INTERVAL, "--events") as ext:
                ext.wait_for_loop(size.timeout)
                portal_delays, edns_delays = latency(kc, zone, portal_proxy, edns_proxy, size)
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            proc.wait(20)
        sandbox.stop()
        if pdns is not None:
            pdns.stop()
        for proxy in (portal_proxy, edns_proxy):
            proxy.stop()
        for svc in (moto, redis, pg):
            svc.stop()

    shutil.rmtree(tmp, ignore_errors=True)  # kept after a failure, for its logs; 100+ MB of etcd otherwise
    p50, edns_p50 = statistics.median(portal_delays), statistics.median(edns_delays)
    lines = [
        ("endpoints", f"{size.endpoints} count"),
        ("portal_record_sets", f"{portal_sets} count"),
        ("external_dns_record_sets", f"{edns_sets} count"),
        ("portal_converge_calls", f"{portal_calls} requests"),
        ("external_dns_converge_calls", f"{edns_calls} requests"),
        ("converge_calls_ratio", f"{portal_calls / edns_calls:.3f} ratio"),
        ("portal_converge_seconds", f"{portal_seconds:.1f} s"),
        ("external_dns_converge_seconds", f"{edns_seconds:.1f} s"),
        ("external_dns_sync_calls", f"{sync_calls:.0f} requests"),
        ("portal_steady_calls_per_hour", f"{portal_per_hour:.0f} requests/h"),
        ("external_dns_steady_calls_per_hour", f"{per_hour:.0f} requests/h"),
        ("external_dns_events_steady_calls_per_hour", f"{per_hour_events:.0f} requests/h"),
        ("steady_calls_per_hour_events_ratio", f"{portal_per_hour / per_hour_events:.3f} ratio"),
        ("portal_patch_to_submit_p50_seconds", f"{p50:.2f} s"),
        ("portal_patch_to_submit_max_seconds", f"{max(portal_delays):.2f} s"),
        ("external_dns_patch_to_submit_p50_seconds", f"{edns_p50:.2f} s"),
        ("external_dns_patch_to_submit_max_seconds", f"{max(edns_delays):.2f} s"),
        ("patch_to_submit_p50_ratio", f"{p50 / edns_p50:.3f} ratio"),
        ("steady_calls_per_hour_ratio", f"{portal_per_hour / per_hour:.3f} ratio"),
    ]
    for name, value in lines:
        print(f"{name}: {value}")
    return 0


def address(i: int) -> str:
    return f"203.0.{113 + i // 250 % 2}.{i % 250 + 1}"


def create_services(kc, n: int) -> None:
    """n LoadBalancer Services with a hostname each and the address a cloud controller would give them."""
    from kubernetes import client as k8s

    from tools.kube_sandbox.objects import api_client, set_service_load_balancer

    api = api_client(kc.kubeconfig("admin"))

    def create(i: int) -> None:
        name = f"svc-{i}"
        k8s.CoreV1Api(api).create_namespaced_service(
            "default",
            {
                "metadata": {"name": name, "annotations": {f"{PREFIX}hostname": f"{name}.{ZONE}"}},
                "spec": {
                    "type": "LoadBalancer",
                    # The sandbox's node port range holds fewer than 5,000 (testinfra.md, section 8).
                    "allocateLoadBalancerNodePorts": False,
                    "selector": {"app": name},
                    "ports": [{"port": 80}],
                },
            },
        )
        set_service_load_balancer(api, "default", name, ips=[address(i)])

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(create, range(n)))


def count_record_sets(moto_url: str, zone_id: str) -> int:
    """Record sets in the zone as moto holds them (read directly, not through a counting proxy)."""
    pages = route53_client(moto_url).get_paginator("list_resource_record_sets").paginate(HostedZoneId=zone_id)
    return sum(len(page["ResourceRecordSets"]) for page in pages)


def total(proxy: FaultProxy) -> int:
    """Requests the proxy has answered so far."""
    return len(proxy.times())


class Accepted:
    """The changes Route53 accepted through a proxy (since its last reset), each request parsed once."""

    def __init__(self, proxy: FaultProxy) -> None:
        self.proxy, self.parsed, self.creates = proxy, 0, 0

    def count_creates(self) -> int:
        from tests.fixtures.faultproxy import changes_in

        bodies = list(self.proxy.accepted_change_bodies)
        for body in bodies[self.parsed :]:
            self.creates += sum(1 for change in changes_in(body) if change[0] == "CREATE")
        self.parsed = len(bodies)
        return self.creates


def wait_running(timeout: float) -> None:
    """Until the portal runs as it does when a person registers a cluster: the watch leads (its lock) and a
    worker waits for jobs. Their start (Python, Django, under load several seconds) is not part of the
    convergence; ExternalDNS's start is part of its own, as its start is what makes it publish."""
    from rq import Worker

    from clusters.watch import LOCK_KEY
    from dnsportal.queue import rq_connection

    redis = rq_connection()
    wait(
        lambda: redis.exists(LOCK_KEY) and Worker.all(connection=redis),
        timeout,
        "running watch and worker",
        every=0.25,
    )


def portal_converge(kc, zone, proxy: FaultProxy, size: Size) -> tuple[int, float]:
    """Register the cluster (the watch lists it, the worker reconciles and applies): requests and seconds
    until Route53 accepted every record and no change set of the zone is left open."""
    import yaml

    from clusters.services import Credentials, cluster_register
    from records.models import ChangeSet

    proxy.reset_counters()
    accepted = Accepted(proxy)
    t0 = time.monotonic()
    cluster_register(
        actor=None,
        name=kc.name,
        creds=Credentials(kubeconfig=yaml.safe_dump(kc.kubeconfig("restricted")), context=""),
    )
    wait(
        lambda: (
            accepted.count_creates() >= 2 * size.endpoints
            and not ChangeSet.objects.filter(zone=zone, finished_at__isnull=True).exists()
        ),
        size.timeout,
        "convergence of the portal's zone",
        every=0.25,
    )
    seconds = time.monotonic() - t0
    say(f"the portal's convergence, requests by operation: {dict(proxy.requests)}")
    say(f"the portal's convergence, where the seconds went: {converge_phases(proxy, t0, seconds)}")
    return total(proxy), seconds


def converge_phases(proxy: FaultProxy, t0: float, seconds: float) -> str:
    """Seconds from the registration at which each step of the convergence began and ended: the reconcile
    and the apply jobs (their rows), the change batches (the proxy's arrival times)."""
    from dnsportal.models import JobRun

    started = time.time() - (time.monotonic() - t0)  # the registration, in the rows' clock
    at: dict[str, tuple[float, float]] = {}
    for run in JobRun.objects.filter(name__in=["zone_reconcile", "changeset_apply"]).order_by("id"):
        if run.started_at and run.finished_at and run.name not in at:  # the first of each
            at[run.name] = (run.started_at.timestamp() - started, run.finished_at.timestamp() - started)
    batches = [t - t0 for t in proxy.times(["ChangeResourceRecordSets"])]
    # Until the reconcile began: the watch's list of the cluster and the store of its endpoints.
    parts = [f"{name} {a:.1f}-{b:.1f}" for name, (a, b) in sorted(at.items(), key=lambda kv: kv[1])]
    if batches:
        parts.append(f"{len(batches)} change batches {batches[0]:.1f}-{batches[-1]:.1f}")
    return ", ".join(parts) + f", converged {seconds:.1f}"


def edns_converge(ext, proxy: FaultProxy, size: Size) -> tuple[int, float]:
    """ExternalDNS's syncs from its start until Route53 accepted every record: requests and seconds, up to
    its last change batch (a sync longer than --interval is followed at once by the next, a whole read)."""
    accepted = Accepted(proxy)
    t0 = time.monotonic()
    while accepted.count_creates() < 2 * size.endpoints:
        ext.wait_for_loop(size.timeout)
        if time.monotonic() - t0 > size.timeout:
            raise SystemExit(f"bench: ExternalDNS did not converge within {size.timeout:.0f} s")
    last = proxy.times(["ChangeResourceRecordSets"])[-1]
    by_op = {op: sum(1 for t in proxy.times([op]) if t <= last) for op in list(proxy.requests)}
    say(f"ExternalDNS's convergence, requests by operation until its last batch: {by_op}")
    return sum(by_op.values()), last - t0


def edns_steady(ext, proxy: FaultProxy, size: Size) -> tuple[float, float]:
    """(requests per sync, requests per hour at --interval=1m) over whole syncs with nothing to change.

    Call it just as a sync has ended: the count runs from there to the end of the last counted sync, so it
    holds whole syncs only. The period is measured between the syncs' starts (ExternalDNS's own metric): a
    sync begins `interval` after the previous one began, on a 1 s ticker (controller.go), so the period at 1m
    is the measured one with the interval swapped."""
    began = "external_dns_controller_last_reconcile_timestamp_seconds"
    before, first = total(proxy), ext.metric(began)
    for _ in range(size.syncs):
        ext.wait_for_loop(size.timeout)
    per_sync = (total(proxy) - before) / size.syncs
    period = (ext.metric(began) - first) / size.syncs - size.interval + DEFAULT_INTERVAL
    return per_sync, per_sync * 3600 / period


class PortalWindow:
    """The portal with nothing changing: its scheduler enqueues the periodic jobs as in production, the
    worker runs them, the watch keeps watching. Inside the window the zone's drift check is made due (the
    scheduler's dispatcher runs at once instead of at its next minute), then, once it is done, the full read
    is made due the same way: the window holds one of each, and what each cost is counted at the proxy."""

    def __init__(self, zone, proxy: FaultProxy, seconds: float) -> None:
        self.zone, self.proxy, self.seconds = zone, proxy, seconds
        if seconds > zone.drift_interval:
            raise ValueError("a window longer than the drift interval would hold a second drift check")

    def start(self, tmp: Path, db_url: str, redis_url: str) -> subprocess.Popen:
        """Start the scheduler, let the worker finish its first round (every periodic job is due at a
        scheduler's first start, which a running portal is not in), then open the window."""
        from django.utils import timezone

        self.scheduler = start_manage(tmp, db_url, redis_url, "scheduler")
        time.sleep(3)  # its first tick
        wait_idle(600)
        self.opened = timezone.now()
        self.t0 = time.monotonic()
        return self.scheduler

    def _due(self, *, check_run: str, full_read: bool) -> None:
        """Make the zone's next drift check due (a full read when asked), have the scheduler's dispatcher
        run at its next tick, and wait for the check's job to finish."""
        from django.utils import timezone

        from dnsportal.models import JobRun
        from dnsportal.queue import rq_connection
        from dnsportal.scheduler import KEY_PREFIX
        from records.models import Zone

        now = timezone.now()
        read_at = now - timedelta(seconds=self.zone.full_read_interval) if full_read else now
        Zone.objects.filter(id=self.zone.id).update(
            last_drift_check_at=now - timedelta(seconds=self.zone.drift_interval), state_read_at=read_at
        )
        rq_connection().set(KEY_PREFIX + "zones_drift_check", 0)
        wait(
            lambda: JobRun.objects.filter(name=check_run, created_at__gte=now, status="done").exists(),
            300,
            f"the drift check ({check_run})",
            every=0.5,
        )

    def finish(self) -> float:
        """Requests per hour: the full read's once per full-read interval, the cheap check's for each other
        check of the hour, any other request once per window. The scheduler stops with the window, and this
        returns once the worker is idle: its 5-minute relist of the cluster would otherwise run into the
        patches that follow (and a patch that lands while a relist of 10,000 Services runs is lost until
        the next one)."""
        from records.models import Zone

        t_check = time.monotonic()
        self._due(check_run="zone_drift_check", full_read=False)
        t_read = time.monotonic()
        self._due(check_run="zone_reconcile", full_read=True)
        t_done = time.monotonic()
        time.sleep(max(0.0, self.t0 + self.seconds - time.monotonic()))
        self.scheduler.send_signal(signal.SIGTERM)
        end = max(self.t0 + self.seconds, t_done)

        def count(start: float, stop: float, ops=None) -> int:
            return sum(1 for t in self.proxy.times(ops) if start <= t < stop)

        check = count(t_check, t_read)
        read = count(t_read, t_done)
        others = count(self.t0, end) - check - read
        say(
            f"the window: the drift check made {check} requests, the full read {read} "
            f"({count(t_read, t_done, ['ListResourceRecordSets'])} ListResourceRecordSets), others {others}"
        )
        if not count(t_read, t_done, ["ListResourceRecordSets"]):
            raise SystemExit("bench: the zone's full read did not run in the portal's window")
        # The copy in PowerDNS is not kept up to date with the patches that follow: verification after
        # their applies would wait for it in vain (two minutes each), holding the worker.
        Zone.objects.filter(id=self.zone.id).update(nameserver_override="")
        self.scheduler.wait(20)
        wait_idle(600)
        zone = self.zone
        checks_per_hour = 3600 / zone.drift_interval - 3600 / zone.full_read_interval
        per_window = 3600 / (end - self.t0)  # the window, or longer when the full read ended after it
        return read * 3600 / zone.full_read_interval + check * checks_per_hour + others * per_window


def answer_for(zone, moto_url: str, tmp: Path):
    """A PowerDNS server answering for the portal's zone as Route53's nameservers would (moto's cannot be
    asked): the zone as moto holds it, read directly; the zone's nameserver override points at it."""
    from records.models import Zone

    pages = route53_client(moto_url).get_paginator("list_resource_record_sets")
    rrsets = [
        (rs["Name"], rs["Type"], rs["TTL"], [r["Value"] for r in rs["ResourceRecords"]])
        for page in pages.paginate(HostedZoneId=zone.provider_zone_id)
        for rs in page["ResourceRecordSets"]
        if rs["Type"] not in ("SOA", "NS")
    ]
    pdns = start_pdns()
    try:
        pdns.create_zone(ZONE)
        # In parts: the API refuses a request body over its webserver-max-bodysize (2 MB by default).
        for i in range(0, len(rrsets), 2000):
            pdns.replace_rrsets(ZONE, rrsets[i : i + 2000])
    except BaseException:
        pdns.stop()
        raise
    Zone.objects.filter(id=zone.id).update(nameserver_override=f"127.0.0.1:{pdns.dns_port}")
    zone.refresh_from_db()
    say(f"{len(rrsets)} record sets served by PowerDNS on port {pdns.dns_port}")
    return pdns


def wait_idle(timeout: float) -> None:
    """Until the portal's worker has no job waiting or running."""
    from dnsportal.models import JobRun

    wait(
        lambda: not JobRun.objects.filter(status__in=["pending", "running"]).exists(),
        timeout,
        "idle worker",
        every=0.5,
    )


def latency(kc, zone, portal_proxy: FaultProxy, edns_proxy: FaultProxy, size: Size):
    """Seconds from a TTL annotation patch to each program's change accepted by Route53 (both see the
    same patch); the next patch waits until both are idle again."""
    from kubernetes import client as k8s

    from records.models import ChangeSet
    from tools.kube_sandbox.objects import api_client

    core = k8s.CoreV1Api(api_client(kc.kubeconfig("admin")))
    for proxy in (portal_proxy, edns_proxy):
        proxy.reset_counters()  # the names changed below were created by the convergence
    portal: list[float] = []
    edns: list[float] = []
    with ThreadPoolExecutor(2) as pool:
        for k in range(size.patches):
            name = f"svc-{k}.{ZONE}."
            t0 = time.monotonic()
            core.patch_namespaced_service(
                f"svc-{k}", "default", {"metadata": {"annotations": {f"{PREFIX}ttl": str(120 + k)}}}
            )
            seen = [pool.submit(wait_for_change, p, name, t0, 120) for p in (portal_proxy, edns_proxy)]
            portal.append(seen[0].result() - t0)
            edns.append(seen[1].result() - t0)
            wait(
                lambda: (
                    not ChangeSet.objects.filter(zone=zone, finished_at__isnull=True).exists()
                    and time.monotonic() - max(edns_proxy.times(), default=0) > 1.0
                ),
                60,
                "idle programs after a patch",
                every=0.05,
            )
    return portal, edns


if __name__ == "__main__":
    sys.exit(main())
