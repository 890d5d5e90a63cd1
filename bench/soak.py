"""Soak: the portal under a steady workload, web load and mixed faults; then nothing lost, nothing done twice.

Real parts only: three sandbox clusters (kube-apiserver + etcd), PostgreSQL (each commit synced) and Redis (an
append-only file), crash-safe as `make up` and docker-compose.yml run them, moto behind the tests' fault proxy
(its wire log) for a Route53 zone, and a PowerDNS for an internal zone. The portal runs as deployed: gunicorn,
two RQ forking workers (`dns`; `default discovery verify`), the scheduler and two watch processes (one leads),
each restarted when it exits, as a supervisor would. The clusters serve Services (some names in two clusters:
round robin; some weighted) with a steady stream of annotation edits (targets, weights, new and deleted
Services); a second person approves every change set as it appears (the service function the pages call).
Meanwhile 20 simulated people browse the pages (locust, headless) and a fault driver (its seed on stderr) at
random times SIGKILLs a worker (with the job it runs), the watch leader, the scheduler and the web process,
SIGKILLs Redis and PostgreSQL and starts them again on their data, freezes one API server (SIGSTOP) and
throttles 30 % of Route53 calls.

After the faults stop and the portal settles, the invariants: the zones hold what the clusters ask for (read
from Route53 and PowerDNS against the workload's own record of every Service) and a fresh plan is empty; no
change reached Route53 twice (the proxy's wire log); no job run is left pending or running and no change set
approved or applying; every applied change set has its audit entries (approved, applied); the records the
portal does not own (seeded first) are as they were. A failed invariant is named on stderr; the exit is 1.

Prints `name: value unit` lines, headline last (the seed, each fault and where time went on stderr):
  services                 Services the clusters served at the start
  edits                    annotation edits, new and deleted Services during the run
  changes_applied          change groups applied (Route53 and PowerDNS)
  faults_injected          faults of every kind
  faults_worker_kill       a worker and its job SIGKILLed
  faults_watch_kill        the leading watch SIGKILLed
  faults_scheduler_kill    the scheduler SIGKILLed
  faults_web_kill          gunicorn (master and workers) SIGKILLed
  faults_redis_restart     Redis SIGKILLed and started again on its append-only file
  faults_postgres_restart  PostgreSQL SIGKILLed and started again (crash recovery)
  faults_apiserver_freeze  one API server stopped (SIGSTOP) for 60 s (10 s with --quick)
  faults_route53_throttle  30 % of Route53 calls throttled for 60 s (15 s with --quick)
  recovery_p95_seconds     from a fault (its end) until no job or apply from before it is left
  web_p95_ms               the pages' response time, 95th percentile (locust)
  fresh_plan_changes       what a fresh plan of each zone would still change
  duplicated               changes Route53 accepted twice (the same change again, or a CREATE of what exists)
  stuck                    job runs pending or running, change sets approved or applying, at the end
  lost                     names whose records differ from what the clusters ask for

Usage: .venv/bin/python bench/soak.py [--quick] [--seed N]
  (--quick: 300 Services, 90 s, each fault once; otherwise 2,000, 10 minutes, each fault 3 times)
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.portal import start_manage, start_portal, start_program  # noqa: E402
from bench.route53 import route53_client  # noqa: E402
from bench.route53 import setup_zone as setup_route53_zone  # noqa: E402
from bench.shift import setup_zone as setup_pdns_zone  # noqa: E402
from bench.shift import wait  # noqa: E402
from tests.fixtures.faultproxy import FaultProxy, changes_with_records_in  # noqa: E402
from tools.pdns import start_pdns  # noqa: E402
from tools.services import free_port, start_moto, start_postgres, start_redis  # noqa: E402

PREFIX = "external-dns.alpha.kubernetes.io/"
CLUSTERS = ("soak-a", "soak-b", "soak-c")
R53_ZONE, PDNS_ZONE = "soak.example.com", "soak.internal"
KINDS = (
    "worker_kill",
    "watch_kill",
    "scheduler_kill",
    "web_kill",
    "redis_restart",
    "postgres_restart",
    "apiserver_freeze",
    "route53_throttle",
)
STARTED = time.monotonic()


@dataclass(frozen=True)
class Size:
    services: int
    seconds: float  # the workload and fault window
    faults_each: int
    freeze_s: float
    throttle_s: float
    settle_s: float  # the longest the portal gets to settle after the window
    edit_every_s: float
    lease_s: (
        int  # a killed job's or apply's lease: short enough to be picked up again within the settle period
    )


QUICK = Size(
    services=300,
    seconds=90,
    faults_each=1,
    freeze_s=10,
    throttle_s=15,
    settle_s=150,
    edit_every_s=1.0,
    lease_s=10,
)
FULL = Size(
    services=2000,
    seconds=600,
    faults_each=3,
    freeze_s=60,
    throttle_s=60,
    settle_s=600,
    edit_every_s=1.0,
    lease_s=20,
)


def say(what: str) -> None:
    print(f"[{time.monotonic() - STARTED:6.0f} s] {what}", file=sys.stderr, flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seed", type=int, default=None, help="the fault schedule's seed (default: random)")
    args = parser.parse_args()
    size = QUICK if args.quick else FULL
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1, 2**31)
    say(f"seed {seed} (bench/soak.py --seed {seed} repeats this fault schedule)")

    tmp = Path(tempfile.mkdtemp(prefix="dnsportal-bench-soak-"))
    tmp.chmod(0o755)
    say(f"logs in {tmp}")
    os.environ.update(
        DNSPORTAL_APPLY_LEASE_S=str(size.lease_s),
        DNSPORTAL_JOB_LEASE_S=str(size.lease_s),
        DNSPORTAL_VERIFY_PROPAGATION_TIMEOUT_S="5",
        LOG_FORMAT="text",
    )
    from tools.kube_sandbox import Sandbox

    # Every service starts from the main thread: their processes get PR_SET_PDEATHSIG, which fires when the
    # thread that started them ends.
    sandbox = Sandbox(tmp / "kube", list(CLUSTERS))
    sandbox.start()
    pg, redis = start_portal(tmp, as_deployed=True)
    os.environ["LOG_LEVEL"] = "INFO"  # the portal's processes: a job run's row keeps its log lines
    services = Services(pg, redis)
    moto = start_moto(tmp / "moto")
    # Route53's refusal of a CREATE of an existing record set, which moto would add twice, and listings moto
    # does not repeat record sets in (weighted pairs at a page's end): see faultproxy.py
    faulted = ("ChangeResourceRecordSets", "GetChange", "ListResourceRecordSets", "GetHostedZone")
    proxy = FaultProxy(
        moto.url, seed=seed, route53_create_rule=True, whole_listings=True, fault_ops=faulted
    ).start()
    pdns = start_pdns(tmp / "pdns")
    portal: Portal | None = None
    try:
        zones = setup_zones(proxy, pdns)
        foreign = seed_foreign(moto.url, zones, pdns)
        say("creating Services")
        workload = Workload(sandbox, zones, random.Random(seed + 1), tmp)
        workload.create_all(size.services)
        register_clusters(sandbox)
        portal = Portal(tmp, services)
        portal.start()
        approver = Approver()
        approver.start()
        say("initial convergence")
        settle(workload, zones, pdns, moto.url, timeout=120 + size.services / 5)
        say("converged; the soak starts")
        web = WebLoad(tmp, portal.web_url, zones, size.seconds)
        driver = FaultDriver(seed, size, portal, services, sandbox, proxy, workload)
        recovery = RecoveryMonitor(driver)
        web.start()
        recovery.start()
        edits = threading.Thread(
            target=workload.run, args=(size.seconds, size.edit_every_s, driver), name="workload", daemon=True
        )
        edits.start()
        driver.run()  # in the main thread: it restarts Redis and PostgreSQL (see above)
        edits.join()
        say("faults over; settling")
        settled = settle(workload, zones, pdns, moto.url, timeout=size.settle_s, strict=False)
        recovery.stop()
        web_p95, web_counts = web.finish()
        approver.stop()
        result = check(workload, zones, pdns, moto.url, proxy, foreign)
        result["settled"] = settled
    finally:
        if portal is not None:
            portal.stop()
        sandbox.stop()
        proxy.stop()
        pdns.stop()
        moto.stop()
        services.stop()

    say(f"web requests {web_counts}; restarts {dict(portal.restarts)}; exits not caused by a fault "
        f"{dict(portal.unexpected)}")  # fmt: skip
    say(
        "recovery seconds per fault: "
        + ", ".join(f"{f.kind} {f.recovery:.1f}" for f in driver.done if f.recovery)
    )
    failures = list(result["failures"])
    missing = [k for k in KINDS if driver.counts[k] == 0]
    if missing:
        failures.append(f"faults never injected: {', '.join(missing)}")
    unrecovered = [f.kind for f in driver.done if f.recovery is None]
    if unrecovered:
        failures.append(f"faults the portal did not recover from before the end: {', '.join(unrecovered)}")
    recoveries = sorted(f.recovery for f in driver.done if f.recovery is not None)
    p95 = recoveries[max(0, round(0.95 * len(recoveries)) - 1)] if recoveries else 0.0
    print(f"services: {workload.initial} count")
    print(f"edits: {workload.edits} count")
    print(f"changes_applied: {result['changes_applied']} count")
    print(f"faults_injected: {sum(driver.counts.values())} count")
    for kind in KINDS:
        print(f"faults_{kind}: {driver.counts[kind]} count")
    print(f"recovery_p95_seconds: {p95:.1f} s")
    print(f"web_p95_ms: {web_p95:.0f} ms")
    print(f"fresh_plan_changes: {result['fresh_plan_changes']} count")
    print(f"duplicated: {result['duplicated']} count")
    print(f"stuck: {result['stuck']} count")
    print(f"lost: {result['lost']} count")
    if failures:
        for failure in failures:
            print(f"soak: invariant failed: {failure}", file=sys.stderr)
        print(f"soak: logs kept in {tmp}", file=sys.stderr)
        return 1
    shutil.rmtree(tmp, ignore_errors=True)  # kept after a failure, for its logs
    return 0


# --- services the soak restarts -----------------------------------------------------------------------------


class Services:
    """PostgreSQL and Redis, restartable on their ports and data (a crash, then a start as a supervisor
    would: PostgreSQL recovers from its WAL, Redis replays its append-only file). PostgreSQL runs crash-safe
    as deployed: with the tests' `synchronous_commit=off` a crash loses commits the portal was told were made
    (an apply's claim of its change set, after which it sent the change; the next claim sent it again)."""

    def __init__(self, pg, redis) -> None:
        self.pg, self.redis = pg, redis

    def restart_redis(self) -> float:
        """SIGKILL Redis, start it again; the seconds it was away."""
        began = time.monotonic()
        self.redis.proc.kill()
        self.redis.proc.wait(10)
        self.redis = start_redis(self.redis.workdir, self.redis.port, persistent=True)
        return time.monotonic() - began

    def restart_postgres(self) -> float:
        began = time.monotonic()
        kill_tree(self.pg.proc.pid)  # the postmaster and its backends at once, as a crash would
        self.pg.proc.wait(10)
        self.pg = start_postgres(self.pg.workdir, self.pg.port, durable=True)
        return time.monotonic() - began

    def stop(self) -> None:
        self.redis.stop()
        self.pg.stop()


def descendants(pid: int) -> list[int]:
    """Every process below `pid` (by parent pid in /proc), children first found first."""
    parents: dict[int, list[int]] = defaultdict(list)
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(stat.rsplit(")", 1)[1].split()[1])].append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def kill_tree(pid: int) -> None:
    """SIGKILL a process and everything it started (an RQ job's process is in a session of its own, so a
    process group would miss it): what an OOM kill of a container or a lost node does."""
    for p in [pid, *descendants(pid)]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(p, signal.SIGKILL)


class Supervised:
    """One portal process, started again when it exits (as systemd or Kubernetes would, after a second)."""

    def __init__(self, name: str, start) -> None:
        self.name, self._start = name, start
        self.proc = start()
        self.killed = False

    def kill(self) -> None:
        self.killed = True
        kill_tree(self.proc.pid)

    def ensure(self, portal: Portal) -> None:
        if self.proc.poll() is None:
            return
        if not self.killed:
            portal.unexpected[self.name] += 1
            say(f"{self.name} exited by itself ({self.proc.returncode}); restarting it")
        time.sleep(1)
        self.killed = False
        self.proc = self._start()
        portal.restarts[self.name] += 1

    def stop(self) -> None:
        from tests.fixtures.jobs import terminate

        terminate(self.proc, kill_tree)


class Portal:
    """web (gunicorn), two workers, the scheduler and two watch processes, each restarted when it exits."""

    def __init__(self, tmp: Path, services: Services) -> None:
        self.tmp, self.services = tmp, services
        self.port = free_port()
        self.web_url = f"http://127.0.0.1:{self.port}"
        self.procs: dict[str, Supervised] = {}
        self.restarts: Counter[str] = Counter()
        self.unexpected: Counter[str] = Counter()
        self._halt = threading.Event()
        self._thread = threading.Thread(target=self._supervise, name="supervisor", daemon=True)

    def _manage(self, name: str, *args: str):
        return lambda: start_manage(
            self.tmp, self.services.pg.url, self.services.redis.url, *args, log_name=name
        )

    def start(self) -> None:
        gunicorn = str(Path(sys.executable).with_name("gunicorn"))
        # As docker-compose.yml and the Helm chart run it (3 sync workers); its control socket in the run's
        # directory: the default, one per user, is shared with any gunicorn
        web = [gunicorn, "dnsportal.wsgi", "--bind", f"127.0.0.1:{self.port}", "--workers", "3",
               "--graceful-timeout", "5", "--control-socket", str(self.tmp / "gunicorn.ctl")]  # fmt: skip
        pg, redis = self.services.pg.url, self.services.redis.url
        dns_queues = ("dns", "--with-scheduler")
        others = ("default", "discovery", "verify", "--with-scheduler")
        self.procs = {
            "web": Supervised("web", lambda: start_program(self.tmp, pg, redis, web, "web")),
            "worker-dns": Supervised("worker-dns", self._manage("worker-dns", "rqworker", *dns_queues)),
            "worker-other": Supervised("worker-other", self._manage("worker-other", "rqworker", *others)),
            "scheduler": Supervised("scheduler", self._manage("scheduler", "scheduler")),
            "watch-1": Supervised("watch-1", self._manage("watch-1", "watch")),
            "watch-2": Supervised("watch-2", self._manage("watch-2", "watch")),
        }  # fmt: skip
        self._thread.start()
        import requests

        wait(lambda: _answers(requests, f"{self.web_url}/healthz"), 300, "the web process", every=0.2)

    def _supervise(self) -> None:
        while not self._halt.wait(0.5):
            for proc in list(self.procs.values()):
                proc.ensure(self)

    def watch_leader(self) -> Supervised | None:
        from clusters.watch import LOCK_KEY
        from dnsportal.queue import rq_connection

        holder = rq_connection().get(LOCK_KEY)
        pid = int(holder.decode().split(":")[1]) if holder else None
        return next((p for n, p in self.procs.items() if n.startswith("watch") and p.proc.pid == pid), None)

    def stop(self) -> None:
        self._halt.set()
        self._thread.join(5)
        for proc in self.procs.values():
            proc.stop()


def _answers(requests, url: str) -> bool:
    try:
        return requests.get(url, timeout=1).status_code == 200
    except requests.RequestException:
        return False


# --- zones, foreign records, clusters -----------------------------------------------------------------------


@dataclass
class Zones:
    r53: object  # records.models.Zone
    pdns: object

    def of(self, host: str):
        return self.pdns if host.endswith("." + PDNS_ZONE) else self.r53


def setup_zones(proxy: FaultProxy, pdns) -> Zones:
    from records.models import ProviderAccount, Zone

    r53 = setup_route53_zone(proxy, R53_ZONE, approval_mode="all")
    # A busy account: Route53 allows more than the 5 requests/s default on request; the throttle is the fault.
    ProviderAccount.objects.filter(id=r53.account_id).update(rate=20, burst=20)
    internal = setup_pdns_zone(pdns, PDNS_ZONE + ".")
    return Zones(Zone.objects.get(id=r53.id), Zone.objects.get(id=internal.id))


def seed_foreign(moto_url: str, zones: Zones, pdns) -> dict[str, list]:
    """Records the portal does not own, written straight to the providers: plain records, and one owned by
    another ExternalDNS (its TXT ownership record names owner `other`)."""
    r53 = route53_client(moto_url)
    changes = []
    for i in range(5):
        changes.append(_rrset("CREATE", f"foreign-{i}.{R53_ZONE}.", "A", [f"192.0.2.{i + 10}"]))
    changes.append(_rrset("CREATE", f"other.{R53_ZONE}.", "A", ["192.0.2.99"]))
    changes.append(_rrset("CREATE", f"other.{R53_ZONE}.", "TXT",
                          ['"heritage=external-dns,external-dns/owner=other"']))  # fmt: skip
    r53.change_resource_record_sets(HostedZoneId=zones.r53.provider_zone_id, ChangeBatch={"Changes": changes})
    pdns.replace_rrsets(
        PDNS_ZONE + ".", [(f"foreign-{i}", "A", 300, (f"10.99.0.{i + 1}",)) for i in range(5)]
    )
    return foreign_records(moto_url, zones, pdns)


def _rrset(action: str, name: str, rtype: str, values: list[str]) -> dict:
    return {"Action": action, "ResourceRecordSet": {"Name": name, "Type": rtype, "TTL": 300,
            "ResourceRecords": [{"Value": v} for v in values]}}  # fmt: skip


def foreign_records(moto_url: str, zones: Zones, pdns) -> dict[str, list]:
    r53 = [
        rrs
        for rrs in route53_sets(moto_url, zones.r53.provider_zone_id)
        if rrs["Name"].startswith(("foreign-", "other."))
    ]
    internal = [
        (r["name"], r["type"], sorted(x["content"] for x in r["records"]))
        for r in pdns.rrsets(PDNS_ZONE + ".")
        if r["name"].startswith("foreign-")
    ]
    return {"route53": sorted(r53, key=json.dumps), "powerdns": sorted(internal)}


def route53_sets(moto_url: str, zone_id: str) -> list[dict]:
    """The zone's record sets as moto holds them (read directly, not through the counting proxy)."""
    pages = route53_client(moto_url).get_paginator("list_resource_record_sets").paginate(HostedZoneId=zone_id)
    return [rrs for page in pages for rrs in page["ResourceRecordSets"]]


def register_clusters(sandbox) -> None:
    import yaml

    from clusters.services import Credentials, cluster_register

    for kc in sandbox.clusters:
        cluster_register(
            actor=None,
            name=kc.name,
            creds=Credentials(kubeconfig=yaml.safe_dump(kc.kubeconfig("restricted")), context=""),
        )


# --- the workload -------------------------------------------------------------------------------------------


@dataclass
class Svc:
    cluster: str
    name: str
    host: str
    target: str
    set_id: str = ""
    weight: int = 0

    def annotations(self) -> dict[str, str]:
        out = {f"{PREFIX}hostname": self.host, f"{PREFIX}target": self.target}
        if self.set_id:
            out |= {f"{PREFIX}set-identifier": self.set_id, f"{PREFIX}aws-weight": str(self.weight)}
        return out


class Workload:
    """The clusters' Services and the edits made to them; what DNS should say is computed from this record,
    never from the portal's own rows."""

    def __init__(self, sandbox, zones: Zones, rng: random.Random, tmp: Path) -> None:
        from kubernetes import client as k8s

        from tools.kube_sandbox.objects import api_client

        self.zones, self.rng, self.tmp = zones, rng, tmp
        self.apis = {kc.name: k8s.CoreV1Api(api_client(kc.kubeconfig("admin"))) for kc in sandbox.clusters}
        self.svcs: dict[tuple[str, str], Svc] = {}
        self.lock = threading.Lock()
        self.next_id = 0
        self.initial = self.edits = 0
        self.errors: Counter[str] = Counter()

    def _target(self, host: str) -> str:
        if host.endswith(PDNS_ZONE):
            return f"10.{self.rng.randrange(1, 250)}.{self.rng.randrange(256)}.{self.rng.randrange(1, 255)}"
        return f"203.0.113.{self.rng.randrange(1, 255)}" if self.rng.random() < 0.5 else (
            f"198.51.100.{self.rng.randrange(1, 255)}")  # fmt: skip

    def new_name(self) -> list[Svc]:
        """One name: in one cluster; one in ten in two (round robin); one in ten weighted across two."""
        i = self.next_id
        self.next_id += 1
        zone = PDNS_ZONE if i % 5 == 0 else R53_ZONE
        host, name = f"s{i}.{zone}", f"s{i}"
        first = CLUSTERS[i % 3]
        clusters = [first, CLUSTERS[(i + 1) % 3]] if i % 10 in (1, 3, 5) else [first]
        weighted = i % 10 == 3
        return [
            # a set identifier of its own per name: moto deletes a routed record set by set identifier across
            # the whole zone (testinfra.md, moto's differences)
            Svc(c, name, host, self._target(host), set_id=f"{c}-{i}" if weighted else "",
                weight=self.rng.randrange(1, 100) if weighted else 0)
            for c in clusters
        ]  # fmt: skip

    def _create(self, svc: Svc) -> None:
        self.apis[svc.cluster].create_namespaced_service(
            "default",
            {
                "metadata": {"name": svc.name, "annotations": svc.annotations()},
                "spec": {
                    "type": "LoadBalancer",
                    # the sandbox's node port range holds fewer than 5,000 (testinfra.md, section 8)
                    "allocateLoadBalancerNodePorts": False,
                    "selector": {"app": svc.name},
                    "ports": [{"port": 80}],
                },
            },
            _request_timeout=10,
        )

    def create_all(self, count: int) -> None:
        svcs = [svc for _ in range(count) for svc in self.new_name()]
        with ThreadPoolExecutor(12) as pool:
            list(pool.map(self._create, svcs))
        self.svcs = {(s.cluster, s.name): s for s in svcs}
        self.initial = len(svcs)

    def run(self, seconds: float, every: float, driver: FaultDriver) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            time.sleep(every * self.rng.uniform(0.5, 1.5))
            try:
                self.edit(frozen=driver.frozen)
            except Exception as exc:  # a cluster that does not answer: the edit is not made
                self.errors[type(exc).__name__] += 1
        say(f"{self.edits} edits ({dict(self.errors)} refused)")

    def edit(self, frozen: str | None) -> None:
        with self.lock:
            live = [s for s in self.svcs.values() if s.cluster != frozen]
            r = self.rng.random()
            if r < 0.15:  # a new name
                new = [s for s in self.new_name() if s.cluster != frozen]
                for svc in new:
                    self._create(svc)
                    self.svcs[(svc.cluster, svc.name)] = svc
            elif r < 0.3:  # a Service deleted
                svc = self.rng.choice(live)
                self.apis[svc.cluster].delete_namespaced_service(svc.name, "default", _request_timeout=10)
                del self.svcs[(svc.cluster, svc.name)]
            else:  # a target, or a weight
                weighted = [s for s in live if s.set_id]
                svc = self.rng.choice(weighted if r < 0.45 and weighted else live)
                if svc.set_id and r < 0.45:
                    svc.weight = self.rng.randrange(1, 100)
                else:
                    svc.target = self._target(svc.host)
                self.apis[svc.cluster].patch_namespaced_service(
                    svc.name, "default", {"metadata": {"annotations": svc.annotations()}}, _request_timeout=10
                )
            self.edits += 1

    def expected(self) -> dict[tuple[str, str], tuple[frozenset[str], int]]:
        """(host, set identifier) -> (targets, weight), as the clusters ask for them now."""
        out: dict[tuple[str, str], tuple[set[str], int]] = {}
        with self.lock:
            for s in self.svcs.values():
                targets, _ = out.setdefault((s.host + ".", s.set_id), (set(), s.weight))
                targets.add(s.target)
        return {k: (frozenset(t), w) for k, (t, w) in out.items()}


def served(moto_url: str, zones: Zones, pdns) -> dict[tuple[str, str], tuple[frozenset[str], int]]:
    """The A records both zones hold, as `Workload.expected` states them (foreign records left out)."""
    out = {}
    for rrs in route53_sets(moto_url, zones.r53.provider_zone_id):
        if rrs["Type"] == "A" and rrs["Name"].startswith("s"):
            values = frozenset(r["Value"] for r in rrs.get("ResourceRecords", []))
            out[(rrs["Name"], rrs.get("SetIdentifier", ""))] = (values, int(rrs.get("Weight", 0)))
    for rrs in pdns.rrsets(PDNS_ZONE + "."):
        if rrs["type"] == "A" and rrs["name"].startswith("s"):
            out[(rrs["name"], "")] = (frozenset(r["content"] for r in rrs["records"]), 0)
    return out


def differences(workload: Workload, zones: Zones, pdns, moto_url: str) -> list[str]:
    """Each name (and set identifier) whose records differ from what the clusters ask for, saying how."""
    want, have = workload.expected(), served(moto_url, zones, pdns)
    none = (frozenset(), 0)

    def show(record: tuple[frozenset[str], int]) -> str:
        return f"{sorted(record[0])} weight {record[1]}"

    return sorted(
        f"{host}/{sid or '-'}: wanted {show(want.get((host, sid), none))}, "
        f"served {show(have.get((host, sid), none))}"
        for host, sid in set(want) | set(have)
        if want.get((host, sid)) != have.get((host, sid))
    )


# --- the second person --------------------------------------------------------------------------------------


class Approver(threading.Thread):
    """bob approves every pending change set as it appears, through the service function the pages call."""

    def __init__(self) -> None:
        super().__init__(name="approver", daemon=True)
        self._halt = threading.Event()
        self.approved = 0
        self.refused: Counter[str] = Counter()
        from tests.fixtures.people import make_user

        self.bob = make_user("soak-bob", "approver")

    def run(self) -> None:
        from django.db import connection

        from dnsportal.errors import PortalError
        from records import changesets
        from records.models import ChangeSet

        while not self._halt.wait(0.3):
            try:
                pending = list(
                    ChangeSet.objects.filter(status=ChangeSet.Status.PENDING).values_list("id", flat=True)
                )
            except Exception:
                connection.close()  # PostgreSQL restarted: a new connection next time
                continue
            for cs_id in pending:
                try:
                    changesets.changeset_approve(changeset_id=cs_id, approver=self.bob, confirm_deletes=True)
                    self.approved += 1
                except PortalError:
                    self.refused["superseded meanwhile"] += 1
                except Exception as exc:  # the database or Redis away: the next round tries again
                    self.refused[type(exc).__name__] += 1
                    connection.close()

    def stop(self) -> None:
        self._halt.set()
        self.join(10)
        say(f"approver: {self.approved} approved, {dict(self.refused)} refused")


# --- web load -----------------------------------------------------------------------------------------------


class WebLoad:
    """20 people browsing (locust, headless, its own process) for the soak's window."""

    USERS = 20

    def __init__(self, tmp: Path, url: str, zones: Zones, seconds: float) -> None:
        from records.models import ChangeSet, Endpoint
        from tests.fixtures.people import PASSWORD, make_user

        make_user("soak-carol", "viewer")
        hosts = list(Endpoint.objects.values_list("dns_name", flat=True).distinct()[:200])
        pages = {
            "zones": [zones.r53.id, zones.pdns.id],
            "hosts": hosts,
            "changesets": list(ChangeSet.objects.values_list("id", flat=True)[:200]),
        }
        self.prefix = tmp / "locust"
        self.argv = [
            str(Path(sys.executable).with_name("locust")), "-f", str(ROOT / "bench" / "soak_web.py"),
            "--headless", "--users", str(self.USERS), "--spawn-rate", "10", "--run-time", f"{seconds:.0f}s",
            "--host", url, "--csv", str(self.prefix), "--only-summary", "--stop-timeout", "5",
        ]  # fmt: skip
        self.times = tmp / "locust-times.json"
        self.env = {**os.environ, "SOAK_WEB_PAGES": json.dumps(pages), "SOAK_WEB_USER": "soak-carol",
                    "SOAK_WEB_PASSWORD": PASSWORD, "SOAK_WEB_TIMES": str(self.times)}  # fmt: skip
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        log = open(self.prefix.with_suffix(".log"), "wb")  # noqa: SIM115 - the child keeps it open
        self.proc = subprocess.Popen(self.argv, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT)

    def finish(self) -> tuple[float, dict[str, int]]:
        """The 95th percentile of the pages' response times (ms; logins left out), and requests, failures
        and the 95th percentile by page (locust's own figures, logins in)."""
        assert self.proc is not None
        self.proc.wait(120)
        with open(f"{self.prefix}_stats.csv") as f:
            rows = list(csv.DictReader(f))
        counts = {f"{r['Name']}": int(r["Request Count"]) for r in rows}
        counts |= {f"{r['Name']} failures": int(r["Failure Count"]) for r in rows if int(r["Failure Count"])}
        counts |= {f"{r['Name']} p95 ms": int(r["95%"]) for r in rows if r["95%"] not in ("", "N/A")}
        times = sorted(json.loads(self.times.read_text()))
        return times[max(0, round(0.95 * len(times)) - 1)], counts


# --- faults -------------------------------------------------------------------------------------------------


@dataclass
class Fault:
    kind: str
    at: float  # seconds into the window
    duration: float = 0.0
    began: float = 0.0  # wall clock
    ended: float = 0.0
    recovery: float | None = None
    detail: str = ""
    pid: int = 0  # the API server a freeze stopped


class FaultDriver:
    """Injects the seeded schedule: each kind `faults_each` times, once in each equal part of the window's
    first 80 % (the last 20 % and the settle period are for recovering)."""

    def __init__(
        self, seed, size: Size, portal: Portal, services: Services, sandbox, proxy, workload
    ) -> None:
        self.rng = random.Random(seed)
        self.size, self.portal, self.services = size, portal, services
        self.sandbox, self.proxy, self.workload = sandbox, proxy, workload
        self.frozen: str | None = None
        self.counts: Counter[str] = Counter()
        self.done: list[Fault] = []
        self.lock = threading.Lock()
        durations = {"apiserver_freeze": size.freeze_s, "route53_throttle": size.throttle_s}
        part = 0.8 * size.seconds / size.faults_each
        self.schedule = sorted(
            (
                Fault(kind, n * part + self.rng.uniform(0, max(1.0, part - durations.get(kind, 0) - 5)),
                      durations.get(kind, 0.0))
                for kind in KINDS
                for n in range(size.faults_each)
            ),
            key=lambda f: f.at,
        )  # fmt: skip

    def run(self) -> None:
        t0 = time.monotonic()
        timers = []
        for fault in self.schedule:
            time.sleep(max(0.0, t0 + fault.at - time.monotonic()))
            fault.began = time.time()
            try:
                fault.detail = getattr(self, fault.kind)(fault)
            except Exception as exc:
                fault.detail = f"could not be injected: {exc!r}"
                say(f"fault {fault.kind}: {fault.detail}")
                continue
            self.counts[fault.kind] += 1
            say(f"fault {fault.kind} at {fault.at:.0f} s: {fault.detail}")
            if fault.duration:
                timer = threading.Timer(fault.duration, self._end, [fault])
                timer.start()
                timers.append(timer)
            else:
                self._end(fault)
        for timer in timers:
            timer.join()

    def _end(self, fault: Fault) -> None:
        if fault.kind == "apiserver_freeze":
            os.kill(fault.pid, signal.SIGCONT)
            self.frozen = None
        elif fault.kind == "route53_throttle":
            self.proxy.throttle_share = 0.0
        fault.ended = time.time()
        with self.lock:
            self.done.append(fault)

    def _kill(self, name: str) -> str:
        proc = self.portal.procs[name]
        pid, children = proc.proc.pid, descendants(proc.proc.pid)
        proc.kill()
        return f"{name} pid {pid} and {len(children)} child process(es) SIGKILLed"

    def worker_kill(self, fault: Fault) -> str:
        return self._kill(self.rng.choice(["worker-dns", "worker-other"]))

    def watch_kill(self, fault: Fault) -> str:
        leader = self.portal.watch_leader()
        if leader is None:
            raise RuntimeError("no watch leads right now")
        return self._kill(leader.name)

    def scheduler_kill(self, fault: Fault) -> str:
        return self._kill("scheduler")

    def web_kill(self, fault: Fault) -> str:
        return self._kill("web")

    def redis_restart(self, fault: Fault) -> str:
        return f"away {self.services.restart_redis():.1f} s"

    def postgres_restart(self, fault: Fault) -> str:
        return f"away {self.services.restart_postgres():.1f} s"

    def apiserver_freeze(self, fault: Fault) -> str:
        kc = self.rng.choice(self.sandbox.clusters)
        pid = fault.pid = kc.apiserver_pid
        self.frozen = kc.name
        os.kill(pid, signal.SIGSTOP)
        return f"{kc.name}'s kube-apiserver pid {pid} stopped for {fault.duration:.0f} s"

    def route53_throttle(self, fault: Fault) -> str:
        self.proxy.throttle_share = 0.3
        return f"30 % of Route53 calls throttled for {fault.duration:.0f} s"


class RecoveryMonitor(threading.Thread):
    """Each second: for every fault over and not yet recovered from, whether any job run created before its
    end is still pending or running, or any change set approved before it still waits to be applied. When
    none is, the fault's recovery time is now less its end."""

    def __init__(self, driver: FaultDriver) -> None:
        super().__init__(name="recovery", daemon=True)
        self.driver = driver
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.wait(1.0):
            try:
                self.check()
            except Exception:
                from django.db import connection

                connection.close()

    def check(self) -> None:
        from datetime import UTC, datetime

        from dnsportal.models import JobRun
        from records.models import ChangeSet

        with self.driver.lock:
            open_faults = [f for f in self.driver.done if f.recovery is None]
        now = time.time()
        for fault in open_faults:
            end = datetime.fromtimestamp(fault.ended, tz=UTC)
            busy = (
                JobRun.objects.filter(
                    created_at__lte=end, status__in=[JobRun.Status.PENDING, JobRun.Status.RUNNING]
                ).exists()
                or ChangeSet.objects.filter(
                    approved_at__lte=end, status__in=[ChangeSet.Status.APPROVED, ChangeSet.Status.APPLYING]
                ).exists()
            )
            if not busy:
                fault.recovery = now - fault.ended

    def stop(self) -> None:
        self._halt.set()
        self.join(5)
        self.check()


# --- settling and the invariants ----------------------------------------------------------------------------


def busy_counts() -> dict[str, int]:
    from dnsportal.models import JobRun
    from records.models import ChangeSet

    jobs = JobRun.objects.filter(status__in=[JobRun.Status.PENDING, JobRun.Status.RUNNING])
    sets = ChangeSet.objects.filter(
        status__in=[ChangeSet.Status.PENDING, ChangeSet.Status.APPROVED, ChangeSet.Status.APPLYING]
    )
    return {"jobs": jobs.count(), "change_sets": sets.count()}


def settle(
    workload: Workload, zones: Zones, pdns, moto_url: str, *, timeout: float, strict: bool = True
) -> bool:
    """Until no job or change set is open and both zones serve what the clusters ask for."""
    from django.db import connection

    deadline, began = time.monotonic() + timeout, time.monotonic()
    last = ""
    while time.monotonic() < deadline:
        try:
            busy = busy_counts()
            diff = [] if any(busy.values()) else differences(workload, zones, pdns, moto_url)
        except Exception as exc:
            connection.close()
            last = repr(exc)
        else:
            last = f"{busy}, {len(diff)} name(s) differ {diff[:3]}"
            if not any(busy.values()) and not diff:
                say(f"settled after {time.monotonic() - began:.0f} s")
                return True
        time.sleep(1)
    if strict:
        raise SystemExit(f"soak: the portal did not settle within {timeout:.0f} s: {last}")
    say(f"not settled within {timeout:.0f} s: {last}")
    return False


def fresh_plans(zones: Zones) -> list[str]:
    """What a reconcile would plan now, from each zone as its provider holds it."""
    from records import proposals, services
    from records.models import Zone
    from records.plan import compute_plan, hold_names
    from records.recordset import recordset_from_route53

    left = []
    for zone in (Zone.objects.get(id=zones.r53.id), Zone.objects.get(id=zones.pdns.id)):
        records = services.provider_for(zone.account).list_record_sets(zone.provider_zone_id)
        try:
            plan = compute_plan(
                services.desired_for_zone(zone),
                [recordset_from_route53(r) for r in records],
                services.zone_config(zone),
                previous=services.from_snapshot(zone.applied_desired) or None,
            )
        except ValueError as exc:  # the zone holds a record set twice: a CREATE went through twice
            left.append(f"{zone.name}: {exc}")
            continue
        plan = hold_names(plan, proposals.held_names(zone))
        left += [f"{zone.name}: {g}" for g in plan.groups]
    return left


def duplicates_on_the_wire(proxy: FaultProxy, wire_log: Path) -> list[str]:
    """Changes Route53 accepted twice: per record set, the same change as the one before it, or a CREATE of
    a record set already created and not deleted since."""
    last: dict[tuple[str, str, str], tuple[str, str]] = {}
    found = []
    bodies = list(proxy.accepted_change_bodies)
    with open(wire_log, "w") as log:  # kept with the run's logs after a failure
        for i, body in enumerate(bodies):
            for change in changes_with_records_in(body):
                print(i, *change, file=log)
    for body in bodies:
        for action, name, rtype, sid, record in changes_with_records_in(body):
            key = (name, rtype, sid)
            before = last.get(key)
            if before == (action, record) or (action == "CREATE" and before and before[0] != "DELETE"):
                found.append(f"{action} {name} {rtype} {sid}".strip())
            last[key] = (action, record)
    return found


def check(workload: Workload, zones: Zones, pdns, moto_url: str, proxy: FaultProxy, foreign) -> dict:
    from dnsportal.models import AuditEntry, JobRun
    from records.models import Change, ChangeSet

    failures = []
    diff = differences(workload, zones, pdns, moto_url)
    (workload.tmp / "differences.txt").write_text("\n".join(diff))
    if diff:
        failures.append(f"{len(diff)} name(s) differ from what the clusters ask for: {diff[:5]}")
    plans = fresh_plans(zones)
    if plans:
        failures.append(f"a fresh plan is not empty ({len(plans)} group(s)): {plans[:5]}")
    dups = duplicates_on_the_wire(proxy, workload.tmp / "route53-wire.txt")
    if dups:
        failures.append(f"{len(dups)} change(s) reached Route53 twice: {dups[:5]}")
    open_jobs = list(
        JobRun.objects.filter(status__in=[JobRun.Status.PENDING, JobRun.Status.RUNNING]).values_list(
            "id", "name", "status", "created_at"
        )
    )
    open_sets = list(
        ChangeSet.objects.filter(
            status__in=[ChangeSet.Status.APPROVED, ChangeSet.Status.APPLYING]
        ).values_list("id", "status", "approved_at")
    )
    if open_jobs:
        failures.append(f"{len(open_jobs)} job run(s) left pending or running: {open_jobs[:5]}")
    if open_sets:
        failures.append(f"{len(open_sets)} change set(s) left approved or applying: {open_sets[:5]}")
    applied = ChangeSet.objects.filter(status=ChangeSet.Status.APPLIED).values_list("id", flat=True)
    audited = defaultdict(set)
    for object_id, action in AuditEntry.objects.filter(
        object_type="records.changeset", action__in=["changeset.approved", "changeset.applied"]
    ).values_list("object_id", "action"):
        audited[object_id].add(action)
    unaudited = [i for i in applied if audited[str(i)] != {"changeset.approved", "changeset.applied"}]
    if unaudited:
        failures.append(
            f"{len(unaudited)} applied change set(s) without their audit entries: {unaudited[:5]}"
        )
    now = foreign_records(moto_url, zones, pdns)
    if now != foreign:
        failures.append(f"records the portal does not own changed: {foreign} -> {now}")
    return {
        "failures": failures,
        "changes_applied": Change.objects.filter(status=Change.Status.APPLIED).count(),
        "fresh_plan_changes": len(plans),
        "duplicated": len(dups),
        "stuck": len(open_jobs) + len(open_sets),
        "lost": len(diff),
    }


if __name__ == "__main__":
    threading.current_thread().name = "soak"
    sys.exit(main())
