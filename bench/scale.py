"""Scale: 100,000 endpoints from 10 sandbox clusters (real kube-apiserver + etcd) into one zone of a Route53
stand-in (moto in server mode): discovery, the plan, a worker's apply, and the pages, at a tenth of the size
and at the whole.

Each cluster holds as many Services as the others, each publishing one name (svc-<i>.<cluster>.scale.
example.com, its address in a `target` annotation); a name and its ownership TXT are two record sets, so the
zone holds 200,000. The zone's stored state is seeded as the portal's own applies would have left it, minus a
tenth of the names: the worker's reconcile then plans 10,000 creates and applies them to moto (moto takes
minutes per 100,000 record sets, so the zone is not filled through it). The pages are measured the same way
twice: first with one cluster discovered, then with every cluster (`_small` figures: one cluster's size, a
tenth in the full run, half with --quick). Each page request goes through Django's whole stack in this process
(the server's time, without the network), counted in SQL queries: the same count at both sizes.

Prints, one figure a line (headline last):
  clusters                       sandbox clusters, each with endpoints / clusters Services
  endpoints                      Services (one endpoint each) in all the clusters
  fill_seconds                   creating the Services through the API servers (setup, not a target)
  discovery_seconds              every cluster listed, computed and stored, in parallel (target <= 60 s)
  plan_read_seconds              the zone's endpoints and stored record sets read from PostgreSQL for a plan
  plan_seconds                   the plan engine on them, desired against stored (target <= 2 s)
  plan_changes                   changes in that plan (the names missing from the zone)
  reconcile_seconds              the worker's reconcile job: the read, the plan, the change set stored
  apply_seconds                  the worker's apply job: the batches to moto, GetChange, the stored state
  worker_peak_rss_mb             the worker's peak RSS, the job processes it forked included (target <= 1024)
  zone_record_sets               record sets in the zone's stored state after the apply
  endpoints_small                endpoints when the `_small` figures were measured
  zone_record_sets_small         record sets in the zone then
  page_zone_queries_small        SQL queries of the zone page (first page of its records) at the small size
  page_zone_queries              ... at the whole size (equal: no page loads a zone's whole state)
  page_records_queries_small     the records list of every zone
  page_records_queries
  page_endpoints_queries_small   the endpoints list
  page_endpoints_queries
  page_hostname_queries_small    one hostname's page
  page_hostname_queries
  page_changeset_queries_small   the applied change set's diff (a tenth of the names: 10,000 changes)
  page_changeset_queries
  page_zone_p95_ms_small         server time of the page, p95 over its first and a middle page
  page_zone_p95_ms               (target for every page: <= 200 ms)
  page_records_p95_ms_small
  page_records_p95_ms
  page_endpoints_p95_ms_small
  page_endpoints_p95_ms
  page_hostname_p95_ms_small
  page_hostname_p95_ms
  page_changeset_p95_ms_small
  page_changeset_p95_ms
  pages_worst_p95_ms             the slowest of the pages' p95 at the whole size

Usage: .venv/bin/python bench/scale.py [--quick] [--clusters N] [--services M]
  (--quick: 2 clusters x 500 Services, each page URL requested 3 times; otherwise 10 x 10,000, 10 times)
Where the seconds go (seeding, each round) goes to stderr.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.portal import start_manage, start_portal  # noqa: E402
from tools.services import start_moto  # noqa: E402

PREFIX = "external-dns.alpha.kubernetes.io/"
ZONE = "scale.example.com"
PAGES = ("zone", "records", "endpoints", "hostname", "changeset")
ROUNDS = 10  # requests per measured URL
QUICK_ROUNDS = 3  # --quick: a smoke test of the counts, not of speed


def note(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--clusters", type=int, help="how many clusters (overrides --quick)")
    parser.add_argument("--services", type=int, help="Services per cluster (overrides --quick)")
    args = parser.parse_args()
    count, per_cluster = (2, 500) if args.quick else (10, 10_000)
    count, per_cluster = args.clusters or count, args.services or per_cluster

    tmp = Path(tempfile.mkdtemp(prefix="dnsportal-bench-scale-"))
    tmp.chmod(0o755)  # PostgreSQL runs as the postgres user and must reach its data dir inside
    pg, redis = start_portal(tmp)
    moto = start_moto(tmp / "moto")
    from tools.kube_sandbox import Sandbox

    sandbox = Sandbox(tmp / "kube", [f"scale-{k}" for k in range(count)])
    worker = None
    try:
        began = time.monotonic()
        sandbox.start(timeout=60 + 20 * count)
        note(f"{count} clusters ready in {time.monotonic() - began:.1f} s")
        zone = setup_zone(moto.url)
        worker = start_manage(
            tmp, pg.url, redis.url, "rqworker", "dns", "--with-scheduler", log_name="worker"
        )
        run(sandbox, zone, per_cluster, worker, rounds=QUICK_ROUNDS if args.quick else ROUNDS)
    finally:
        if worker is not None and worker.returncode is None:
            worker.kill()
            worker.wait(20)
        sandbox.stop()
        for svc in (moto, redis, pg):
            svc.stop()
    return 0


def run(sandbox, zone, per_cluster: int, worker, rounds: int = ROUNDS) -> None:
    from records.models import Endpoint, ZoneRecord

    clusters = sandbox.clusters
    fill_seconds = fill(clusters, per_cluster)
    lines = [
        f"clusters: {len(clusters)} count",
        f"endpoints: {len(clusters) * per_cluster} count",
        f"fill_seconds: {fill_seconds:.1f} s",
    ]

    # The small size: the first cluster alone, a tenth of its names missing from the zone.
    first = register(clusters[:1])
    discover(first)
    names = sorted(Endpoint.objects.values_list("dns_name", flat=True))
    seed_state(zone, missing=set(names[::10]))
    reconcile_and_apply(zone)
    small = measure_pages(zone, rounds)
    small_size = (Endpoint.objects.count(), ZoneRecord.objects.filter(zone=zone).count())

    # The whole: every cluster discovered from nothing at once (the first one's rows are removed first, so
    # that its discovery is an initial one too), then a tenth of all the names missing from the zone.
    from clusters.models import DiscoveredObject

    DiscoveredObject.objects.filter(cluster_id=first[0]).delete()
    ids = first + register(clusters[1:])
    seconds = discover(ids)
    total = Endpoint.objects.count()
    assert total == len(clusters) * per_cluster, (total, len(clusters) * per_cluster)
    lines.append(f"discovery_seconds: {seconds:.1f} s")
    names = sorted(set(Endpoint.objects.values_list("dns_name", flat=True)) - set(names))
    step = max(1, len(names) // (total // 10))
    seed_state(zone, missing=set(names[::step][: total // 10]))
    lines += time_plan(zone)
    lines += reconcile_and_apply(zone)
    large = measure_pages(zone, rounds)
    lines += [
        f"worker_peak_rss_mb: {stop_worker(worker):.0f} MB",
        f"zone_record_sets: {ZoneRecord.objects.filter(zone=zone).count()} count",
        f"endpoints_small: {small_size[0]} count",
        f"zone_record_sets_small: {small_size[1]} count",
    ]
    for page in PAGES:
        lines.append(f"page_{page}_queries_small: {small[page][1]} queries")
        lines.append(f"page_{page}_queries: {large[page][1]} queries")
    for page in PAGES:
        lines.append(f"page_{page}_p95_ms_small: {small[page][0]:.1f} ms")
        lines.append(f"page_{page}_p95_ms: {large[page][0]:.1f} ms")
    lines.append(f"pages_worst_p95_ms: {max(p95 for p95, _ in large.values()):.1f} ms")
    for line in lines:
        print(line)


# --- the clusters ------------------------------------------------------------------------------------------


def fill(clusters, per_cluster: int) -> float:
    """`per_cluster` Services in each cluster, created through its API server with concurrent requests (one
    keep-alive connection per thread and cluster). Headless with a `target` annotation: one write a Service,
    no ClusterIP to allocate (an IPAddress object each since Kubernetes 1.33) and no load-balancer status to
    write (there is no controller), while discovery reads them as it reads any annotated Service."""
    import requests

    local = threading.local()

    def create(job: tuple[int, int]) -> None:
        k, i = job
        cluster = clusters[k]
        sessions = local.__dict__.setdefault("sessions", {})
        if k not in sessions:
            sessions[k] = requests.Session()
            sessions[k].headers["Authorization"] = f"Bearer {cluster.tokens['admin']}"
        body = {
            "metadata": {
                "name": f"svc-{i}",
                "annotations": {
                    f"{PREFIX}hostname": f"svc-{i}.{cluster.name}.{ZONE}",
                    f"{PREFIX}target": f"11.{k}.{i // 250}.{i % 250 + 1}",  # public: no approval needed
                },
            },
            "spec": {"clusterIP": "None", "ports": [{"port": 80}]},
        }
        url = f"{cluster.server}/api/v1/namespaces/default/services"
        # verify= per request: a REQUESTS_CA_BUNDLE in the environment would override the session's
        response = sessions[k].post(url, json=body, verify=str(cluster.pki.ca_cert), timeout=60)
        if response.status_code != 201:
            raise SystemExit(
                f"creating svc-{i} in {cluster.name}: HTTP {response.status_code} {response.text}"
            )

    began = time.monotonic()
    jobs = [(k, i) for i in range(per_cluster) for k in range(len(clusters))]  # every server busy at once
    with ThreadPoolExecutor(8 + 2 * len(clusters)) as pool:
        list(pool.map(create, jobs))
    return time.monotonic() - began


def register(clusters) -> list[int]:
    import yaml

    from clusters.services import Credentials, cluster_register

    return [
        cluster_register(
            actor=None,
            name=c.name,
            creds=Credentials(kubeconfig=yaml.safe_dump(c.kubeconfig("restricted")), context=""),
        ).id
        for c in clusters
    ]


def discover(cluster_ids: list[int]) -> float:
    """Every cluster listed and stored in parallel, as the watch process does when it starts."""
    from django.db import connection

    from clusters import discovery

    failed: list[str] = []

    def sync(cluster_id: int) -> None:
        try:
            state, _changed = discovery.sync_cluster(cluster_id)
            if state is None:
                failed.append(str(cluster_id))
        finally:
            connection.close()

    began = time.monotonic()
    threads = [threading.Thread(target=sync, args=(cid,)) for cid in cluster_ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.monotonic() - began
    if failed:
        raise SystemExit(f"discovery failed for cluster ids {failed}: see the clusters' last_sync_error")
    note(f"discovery of {len(cluster_ids)} clusters: {seconds:.1f} s")
    return seconds


# --- the zone ----------------------------------------------------------------------------------------------


def setup_zone(moto_url: str):
    """The hosted zone in moto, imported through an account at Route53's default rate; its empty state
    read; change sets applied without a person unless flagged."""
    from bench.route53 import route53_client
    from dnsportal.queue import enqueue
    from records import services
    from records.models import ProviderAccount, Zone
    from tests.fixtures.jobs import drain_queues

    route53_client(moto_url).create_hosted_zone(Name=ZONE, CallerReference="scale")
    services.account_create(
        actor=None,
        name="scale",
        credential_kind="static",
        access_key_id="testing",
        secret="testing",
        endpoint_url=moto_url,
    )
    enqueue("account_import_zones", account_id=ProviderAccount.objects.get(name="scale").id)
    drain_queues()
    zone = Zone.objects.get(name=ZONE + ".")
    Zone.objects.filter(id=zone.id).update(approval_mode=Zone.Approval.FLAGGED)
    records = services.provider_for(zone.account).list_record_sets(zone.provider_zone_id)
    services.zone_store_state(zone_id=zone.id, records=records, full_read=True)
    return Zone.objects.get(id=zone.id)


def seed_state(zone, missing: set[str]) -> None:
    """The zone's stored state as the portal's applies would have left it for every name but `missing`:
    the plan engine's own creates (records and ownership TXT) applied to the stored state, and the endpoints
    they came from as the last applied ones. A full read of a zone moto holds would store the same rows."""
    from records import services
    from records.models import Zone
    from records.plan import apply_plan, collector_paused, compute_plan
    from records.recordset import recordset_to_route53

    began = time.monotonic()
    with collector_paused():
        desired = [ep for ep in services.desired_for_zone(zone) if ep.dns_name not in missing]
        current = services.zone_stored_recordsets(zone)
        state = apply_plan(current, compute_plan(desired, current, services.zone_config(zone)))
        records = [recordset_to_route53(rs) for rs in state]
        services.zone_store_state(zone_id=zone.id, records=records, full_read=True)
        Zone.objects.filter(id=zone.id).update(applied_desired=services.snapshot(desired))
    note(
        f"seeded {len(records)} record sets, {len(missing)} names left out: {time.monotonic() - began:.1f} s"
    )


def time_plan(zone) -> list[str]:
    """The reconcile's read and plan, in this process, on the rows discovery and the seed stored."""
    from records import services
    from records.models import Zone
    from records.plan import collector_paused, compute_plan

    config = services.zone_config(zone)
    with collector_paused():  # as the reconcile job runs
        began = time.perf_counter()
        desired = services.desired_for_zone(zone)
        current = services.zone_stored_recordsets(zone)
        previous = services.from_snapshot(Zone.objects.get(id=zone.id).applied_desired) or None
        read = time.perf_counter() - began
        began = time.perf_counter()
        plan = compute_plan(desired, current, config, previous=previous)
        seconds = time.perf_counter() - began
    return [
        f"plan_read_seconds: {read:.2f} s",
        f"plan_seconds: {seconds:.2f} s",
        f"plan_changes: {len(plan.groups)} changes",
    ]


def reconcile_and_apply(zone) -> list[str]:
    """The zone's reconcile run by the worker, and the apply it leads to; the two jobs' seconds."""
    from dnsportal.models import JobRun
    from dnsportal.queue import enqueue
    from records.models import ChangeSet

    last = JobRun.objects.order_by("-id").values_list("id", flat=True).first() or 0
    enqueue("zone_reconcile", zone_id=zone.id, cause="discovery")
    deadline = time.monotonic() + 1800
    while True:
        runs = {r.name: r for r in JobRun.objects.filter(id__gt=last).order_by("id")}
        failed = [r for r in runs.values() if r.status == JobRun.Status.FAILED]
        if failed or time.monotonic() > deadline:
            raise SystemExit(f"the reconcile and apply did not finish: {[(r.name, r.error) for r in failed]}")
        apply = runs.get("changeset_apply")
        if apply is not None and apply.status == JobRun.Status.DONE:
            break
        reconciled = runs.get("zone_reconcile")
        if apply is None and reconciled is not None and reconciled.status == JobRun.Status.DONE:
            cs = ChangeSet.objects.filter(zone=zone).order_by("-id").first()
            raise SystemExit(f"the reconcile applied nothing: {cs and (cs.status, cs.approval_reasons)}")
        time.sleep(0.2)
    cs = ChangeSet.objects.filter(zone=zone).order_by("-id").first()
    if cs.status != ChangeSet.Status.APPLIED:
        raise SystemExit(f"change set #{cs.id} is {cs.status}: {cs.error}")
    seconds = {}
    for name in ("zone_reconcile", "changeset_apply"):
        run = JobRun.objects.filter(id__gt=last, name=name).order_by("-id").first()
        seconds[name] = (run.finished_at - run.started_at).total_seconds()
    note(f"change set #{cs.id}: {cs.summary}; {seconds}")
    return [
        f"reconcile_seconds: {seconds['zone_reconcile']:.1f} s",
        f"apply_seconds: {seconds['changeset_apply']:.1f} s",
    ]


def stop_worker(worker) -> float:
    """Stop the worker and return its peak RSS in MB: wait4's rusage is the largest of the process and of
    the children it waited for (each job's forked process)."""
    worker.send_signal(signal.SIGTERM)
    _pid, status, usage = os.wait4(worker.pid, 0)
    worker.returncode = os.waitstatus_to_exitcode(status)
    return usage.ru_maxrss / 1024  # kilobytes on Linux


# --- the pages ---------------------------------------------------------------------------------------------


def measure_pages(zone, rounds: int = ROUNDS) -> dict[str, tuple[float, int]]:
    """Each page's p95 server time (ms) over its first and a middle page, and the queries of its first."""
    from django.contrib.auth.models import User
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from records.models import Change, ChangeSet, Endpoint, ZoneRecord
    from records.views import CHANGE_PAGE_SIZE, ENDPOINT_PAGE_SIZE, RECORD_PAGE_SIZE
    from tests.fixtures.people import make_user

    # What autovacuum does within minutes of a bulk write, done now: until a table's new rows are marked
    # visible, an index-only page of ids reads every skipped row from the table too (165 ms at 200,000
    # record sets, 17 ms once vacuumed), which no running portal sees for long.
    with connection.cursor() as cursor:
        for model in (ZoneRecord, Endpoint, ChangeSet, Change):
            cursor.execute(f"VACUUM (ANALYZE) {model._meta.db_table}")
    user = User.objects.filter(username="bench-viewer").first() or make_user("bench-viewer", "viewer")
    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(user)
    cs = ChangeSet.objects.filter(zone=zone, status=ChangeSet.Status.APPLIED).order_by("-id").first()
    changes = cs.changes.count()
    name = cs.changes.filter(type="A").values_list("name", flat=True)[changes // 4][:-1]

    def middle(rows: int, size: int) -> int:
        return max(1, (rows + size - 1) // size // 2)

    records = ZoneRecord.objects.filter(zone=zone).count()
    urls = {
        "zone": [f"/zones/{zone.id}/", f"/zones/{zone.id}/?page={middle(records, RECORD_PAGE_SIZE)}"],
        "records": ["/records/", f"/records/?page={middle(ZoneRecord.objects.count(), RECORD_PAGE_SIZE)}"],
        "endpoints": [
            "/endpoints/",
            f"/endpoints/?page={middle(Endpoint.objects.count(), ENDPOINT_PAGE_SIZE)}",
        ],
        "hostname": [f"/endpoints/host/{name}/"],
        "changeset": [f"/changes/{cs.id}/", f"/changes/{cs.id}/?page={middle(changes, CHANGE_PAGE_SIZE)}"],
    }
    out = {}
    for page, page_urls in urls.items():
        times, queries = [], []
        for url in page_urls:
            client.get(url)  # warm: templates compiled, the session read once
            for _ in range(rounds):
                with CaptureQueriesContext(connection) as captured:
                    began = time.perf_counter()
                    response = client.get(url)
                    times.append((time.perf_counter() - began) * 1000)
                assert response.status_code == 200, (url, response.status_code)
                queries.append(len(captured))
        times.sort()
        out[page] = (times[min(len(times) - 1, int(0.95 * len(times)))], queries[0])
        note(
            f"page {page} {' '.join(page_urls)}: p50 {times[len(times) // 2]:.1f} ms, max {times[-1]:.1f} ms"
        )
    return out


if __name__ == "__main__":
    threading.current_thread().name = "bench"
    sys.exit(main())
