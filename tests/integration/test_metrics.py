"""`/metrics` after a real reconcile, apply and verification, gathered from other processes.

Discovery runs in a real `manage.py watch` and the jobs in a real, forking `manage.py rqworker`, both writing
to one PROMETHEUS_MULTIPROC_DIR; the scrape (the Django test client, in this process) must find what they did:
Route53 through a fault proxy that throttles one request, PowerDNS through an account check, a kube-apiserver
watched, PowerDNS answering the verification. Then the deploy files: every metric the Grafana dashboard and
the alert rules use is one the portal exports.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import django_rq
import pytest
import requests
import yaml
from django.conf import settings
from django.db import connection
from kubernetes import client as k8s
from prometheus_client.parser import text_string_to_metric_families

from clusters.models import Cluster
from clusters.services import Credentials, cluster_register
from dnsportal import metrics
from dnsportal.metrics_export import PortalStateCollector
from dnsportal.queue import enqueue
from records import services, verification_services
from records.models import ChangeSet, ProviderAccount, Verification
from tests.fixtures.kube import kube_client, set_service_load_balancer
from tests.fixtures.zones import import_zone

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parents[2]
PREFIX = "external-dns.alpha.kubernetes.io/"
TOKEN = "scrape-me-" + "x" * 24


def wait_for(predicate: Callable[[], object], what: str, timeout: float = 180.0) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _start(args: list[str], env: dict[str, str], log_path: Path) -> subprocess.Popen:
    db = connection.settings_dict
    full = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "REDIS_URL": settings.REDIS_URL,
        **env,
    }
    with open(log_path, "wb") as log:
        return subprocess.Popen(
            [sys.executable, "manage.py", *args], cwd=ROOT, env=full, stdout=log, stderr=subprocess.STDOUT
        )


def _stop(proc: subprocess.Popen, log_path: Path) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    if proc.returncode not in (0, -15, 143):
        print(log_path.read_text())


class Scrape:
    """The samples of one scrape: `value(name, **labels)` is the one sample with exactly those labels."""

    def __init__(self, text: str) -> None:
        self.samples = [s for f in text_string_to_metric_families(text) for s in f.samples]

    def find(self, name: str, **labels: str) -> list:
        return [
            s for s in self.samples if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
        ]

    def value(self, name: str, **labels: str) -> float:
        found = self.find(name, **labels)
        assert len(found) == 1, (name, labels, found, sorted({s.name for s in self.samples}))
        return found[0].value


def _scrape(client, token: str = TOKEN) -> Scrape:
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 200, response.content[:500]
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    return Scrape(response.content.decode())


def test_a_scrape_finds_the_reconcile_apply_and_verification_of_other_processes(
    root,
    alice,
    route53,
    moto_service,
    fault_proxy,
    dns_zone,
    pdns_servers,
    kube_clusters,
    kube_namespace,
    client,
    settings,
    tmp_path,
):
    multiproc = tmp_path / "metrics"
    multiproc.mkdir()
    settings.METRICS_TOKEN, settings.METRICS_MULTIPROC_DIR = TOKEN, str(multiproc)
    env = {
        "PROMETHEUS_MULTIPROC_DIR": str(multiproc),
        "DNSPORTAL_VERIFY_PROPAGATION_TIMEOUT_S": "10",
        "DNSPORTAL_ROUTE53_BACKOFF_BASE_MS": "10",
        "DNSPORTAL_RECONCILE_DEBOUNCE_MS": "0",
    }
    ns = ",".join(f"127.0.0.1:{s.dns_port}" for s in pdns_servers)
    zone = import_zone(
        root,
        route53,
        fault_proxy.url,
        dns_zone.name.rstrip("."),
        approval_mode="flagged",
        nameserver_override=ns,
    )
    zone_label = zone.display_name
    host = dns_zone.fqdn("app").rstrip(".")
    dns_zone.replace([("app", "A", 300, ["203.0.113.10"])])  # the nameservers answer what the plan writes
    # The apply's first ChangeResourceRecordSets is throttled, as Route53 does over the account's rate.
    fault_proxy.inject("ChangeResourceRecordSets", "throttle")

    # Jobs in a real forking worker (one work-horse per job), discovery in the real watch process.
    worker_log, watch_log = tmp_path / "worker.log", tmp_path / "watch.log"
    worker = _start(["rqworker", *settings.RQ_QUEUE_NAMES], env, worker_log)
    # The watch also answers its own /metrics on a port (what a pod that shares no directory would do).
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        watch_port = sock.getsockname()[1]
    watch_env = {**env, "DNSPORTAL_METRICS_PORT": str(watch_port), "DNSPORTAL_METRICS_TOKEN": TOKEN}
    watch = _start(["watch"], watch_env, watch_log)
    try:
        sandbox, _ = kube_clusters
        cluster = cluster_register(
            actor=root,
            name="rke2-dc1",
            creds=Credentials(kubeconfig=yaml.safe_dump(sandbox.kubeconfig("restricted")), context=""),
        )
        wait_for(
            lambda: Cluster.objects.filter(id=cluster.id, last_sync_at__isnull=False).exists(),
            "the watch to list the cluster",
        )
        # Created while watched: the Service arrives as a watch event (the discovery lag is measured on it).
        api = kube_client(sandbox)
        k8s.CoreV1Api(api).create_namespaced_service(
            kube_namespace,
            {
                "metadata": {"name": "app", "annotations": {f"{PREFIX}hostname": host}},
                "spec": {"type": "LoadBalancer", "selector": {"app": "app"}, "ports": [{"port": 80}]},
            },
        )
        set_service_load_balancer(api, kube_namespace, "app", ips=["203.0.113.10"])
        # The watch enqueues the reconcile; the plan is applied without a person (a public address in a
        # public zone, small); the apply enqueues the verification.
        v = wait_for(
            lambda: Verification.objects.filter(
                zone=zone, kind="resolution", finished_at__isnull=False
            ).first(),
            "the verification after the apply",
        )
        assert v.status == "ok", v.message
        cs = ChangeSet.objects.get(zone=zone)
        assert cs.status == "applied"
        # The measured split of the name (one address: p = 1), and a PowerDNS account checked by the worker.
        verification_services.distribution_request(actor=alice, zone_id=zone.id, hostname=host)
        split = wait_for(
            lambda: Verification.objects.filter(kind="distribution", finished_at__isnull=False).first(),
            "the split measurement",
        )
        assert split.status == "ok", split.message
        pdns = pdns_servers[0]
        services.account_create(
            actor=root,
            name="pdns-dc1",
            kind=ProviderAccount.Kind.POWERDNS,
            credential_kind=ProviderAccount.CredentialKind.STATIC,
            endpoint_url=f"http://127.0.0.1:{pdns.api_port}",
            secret=pdns.api_key,
            dns_servers=f"127.0.0.1:{pdns.dns_port}",
        )
        wait_for(
            lambda: ProviderAccount.objects.filter(name="pdns-dc1", last_check_ok=True).exists(),
            "the PowerDNS account check",
        )
        wait_for(lambda: all(q.count == 0 for q in map(django_rq.get_queue, settings.RQ_QUEUE_NAMES)), "idle")
        s = _scrape(client)
        own_url = f"http://127.0.0.1:{watch_port}/metrics"
        own = requests.get(own_url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
        own_refused = requests.get(own_url, timeout=10)
    finally:
        _stop(worker, worker_log)
    try:
        # A job nobody takes: the queue is backed up.
        enqueue("zones_verify_all")
        backed_up = _scrape(client)
        leader_holder = django_rq.get_connection("default").get("dnsportal:watch:leader").decode()
    finally:
        django_rq.get_queue("verify").empty()
        _stop(watch, watch_log)

    # Route53 through the fault proxy: the reads and the change, one throttle and its retry.
    r53 = {"provider": "route53"}
    assert (
        s.value("dnsportal_provider_api_calls_total", **r53, operation="ListResourceRecordSets", result="ok")
        >= 1
    )
    assert (
        s.value(
            "dnsportal_provider_api_calls_total", **r53, operation="ChangeResourceRecordSets", result="ok"
        )
        == 1
    )
    throttled = {"operation": "ChangeResourceRecordSets"}
    assert s.value("dnsportal_provider_api_calls_total", **r53, **throttled, result="throttled") == 1
    assert s.value("dnsportal_provider_throttles_total", **r53, **throttled) == 1
    assert s.value("dnsportal_provider_retries_total", **r53, **throttled) == 1
    assert s.value("dnsportal_provider_api_calls_total", **r53, operation="GetChange", result="ok") >= 1
    # Every Route53 request took a token from the account's bucket (rate 200/s: no real wait).
    route53_calls = sum(x.value for x in s.find("dnsportal_provider_api_calls_total", provider="route53"))
    waits = s.find("dnsportal_rate_limit_wait_seconds_count")
    assert len(waits) == 1 and waits[0].value == route53_calls, (waits, route53_calls)
    assert (
        s.value("dnsportal_rate_limit_wait_seconds_bucket", account=waits[0].labels["account"], le="+Inf")
        == route53_calls
    )
    # PowerDNS: the account check's request.
    pdns_ok = s.find("dnsportal_provider_api_calls_total", provider="powerdns", result="ok")
    assert pdns_ok and sum(x.value for x in pdns_ok) >= 1, pdns_ok

    # The plan, the reconcile and the apply of this zone.
    z = {"zone": zone_label}
    assert s.value("dnsportal_plan_changes_count", **z) >= 1
    assert s.value("dnsportal_plan_changes_sum", **z) >= 1  # the A record set (with its TXT) is one group
    assert s.value("dnsportal_plan_duration_seconds_count", **z) == s.value(
        "dnsportal_plan_changes_count", **z
    )
    assert s.value("dnsportal_reconcile_duration_seconds_count", **z, result="ok") >= 1
    assert not s.find("dnsportal_reconcile_duration_seconds_count", **z, result="error")
    assert s.value("dnsportal_apply_duration_seconds_count", **z, result="applied") == 1
    assert s.value("dnsportal_apply_duration_seconds_sum", **z, result="applied") > 0

    # Discovery in the watch process.
    c = {"cluster": "rke2-dc1"}
    assert s.value("dnsportal_discovery_lag_seconds_count", **c) >= 1
    assert s.value("dnsportal_discovery_lag_seconds_bucket", **c, le="+Inf") >= 1
    assert s.value("dnsportal_watch_reconnects_total", **c) >= 0
    health = {x.labels["health"]: x.value for x in s.find("dnsportal_cluster_health", **c)}
    assert set(health) == set(Cluster.Health.values) and sum(health.values()) == 1
    cluster.refresh_from_db()
    assert health[cluster.health] == 1
    assert s.value("dnsportal_cluster_stale", **c) == 0
    assert s.value("dnsportal_cluster_last_sync_timestamp_seconds", **c) == pytest.approx(
        cluster.last_sync_at.timestamp()
    )

    # Verification: the counters of the worker and the zone's latest result from the database.
    assert s.value("dnsportal_verifications_total", kind="resolution", result="consistent") == 1
    assert s.value("dnsportal_verifications_total", kind="distribution", result="consistent") == 1
    assert not s.find("dnsportal_verifications_total", result="differs")
    assert s.value("dnsportal_zone_verification", **z, result="consistent") == 1
    assert s.value("dnsportal_zone_verification", **z, result="differs") == 0
    assert s.value("dnsportal_zone_verification", **z, result="could_not_check") == 0
    assert s.value("dnsportal_zone_last_verified_timestamp_seconds", **z) == pytest.approx(
        v.finished_at.timestamp()
    )
    p = split.report["verdict"]["p_value"]
    assert p == 1.0
    assert s.value("dnsportal_split_p_value_latest", **z, hostname=host) == p
    assert s.value("dnsportal_verification_split_p_value_count", **z) == 1
    assert s.value("dnsportal_verification_split_p_value_sum", **z) == p

    # Change sets by state; the zone's reconcile.
    assert s.value("dnsportal_changesets", state="applied") == 1
    assert s.value("dnsportal_changesets", state="pending") == 0
    assert s.value("dnsportal_changesets_oldest_age_seconds", state="applying") == 0
    assert s.value("dnsportal_zone_reconcile_failing", **z) == 0
    assert s.value("dnsportal_zone_last_reconcile_timestamp_seconds", **z) > 0

    # Queues and the watch leader (from Redis).
    assert s.value("dnsportal_redis_up") == 1
    for name in settings.RQ_QUEUE_NAMES:
        assert s.value("dnsportal_queue_depth", queue=name) == 0
        assert s.value("dnsportal_queue_oldest_job_age_seconds", queue=name) == 0
    assert backed_up.value("dnsportal_queue_depth", queue="verify") == 1
    assert backed_up.value("dnsportal_queue_oldest_job_age_seconds", queue="verify") >= 0
    assert s.value("dnsportal_watch_leader_present") == 1
    assert s.value("dnsportal_watch_leader", identity=leader_holder) == 1
    assert f":{watch.pid}:" in leader_holder

    # The watch's own endpoint: the events of its directory, not the state (the web exports that), same rules.
    assert own.status_code == 200, own.text[:500]
    mine = Scrape(own.text)
    assert mine.value("dnsportal_discovery_lag_seconds_count", **c) == s.value(
        "dnsportal_discovery_lag_seconds_count", **c
    )
    assert not mine.find("dnsportal_changesets") and not mine.find("dnsportal_queue_depth")
    assert own_refused.status_code == 401 and own_refused.headers["WWW-Authenticate"].startswith("Bearer")

    # The worker's work-horses (one per job) share the worker's file: no file per job.
    files = sorted(p.name for p in multiproc.iterdir())
    assert any(f.endswith(f"-{worker.pid}h.db") for f in files), files
    assert len(files) <= 2 * 4, files  # counters and histograms of the web, worker, horses and watch


def test_an_unauthorised_scrape_is_refused(client, settings):
    settings.METRICS_TOKEN, settings.METRICS_ALLOW, settings.METRICS_MULTIPROC_DIR = None, [], ""
    refused_before = _requests(client, "4xx")
    off = client.get("/metrics")
    assert off.status_code == 403 and b"DNSPORTAL_METRICS_TOKEN" in off.content

    settings.METRICS_TOKEN = TOKEN
    missing = client.get("/metrics")
    assert missing.status_code == 401 and missing["WWW-Authenticate"].startswith("Bearer")
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION=f"Basic {TOKEN}").status_code == 401
    assert TOKEN.encode() not in missing.content
    assert client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 200

    # An allow-list: the test client's address is 127.0.0.1. With a token too, both are needed.
    settings.METRICS_ALLOW = [ipaddress.ip_network("10.0.0.0/8")]
    assert client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 403
    settings.METRICS_ALLOW = [ipaddress.ip_network("127.0.0.0/8")]
    assert client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 200
    assert client.get("/metrics").status_code == 401
    settings.METRICS_TOKEN = None
    allowed = client.get("/metrics", HTTP_HOST="10.1.2.3:8000")  # Prometheus scrapes by address
    assert allowed.status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="192.0.2.1").status_code == 403
    # The web counts its own requests by route: the seven refusals above.
    assert _requests(client, "4xx") - refused_before == 7


def _requests(client, status: str) -> float:
    """dnsportal_http_requests_total of GET /metrics with this status class, from a scrape of this process."""
    from django.test import override_settings

    with override_settings(METRICS_TOKEN=None, METRICS_ALLOW=[ipaddress.ip_network("127.0.0.0/8")]):
        found = Scrape(client.get("/metrics").content.decode()).find(
            "dnsportal_http_requests_total", method="GET", route="/metrics", status=status
        )
    return found[0].value if found else 0.0


# --- the deploy files use only what the portal exports --------------------------------------------------


def exported_names() -> set[str]:
    """Every sample name a scrape can hold: the event metrics with their suffixes, and the state's."""
    names: set[str] = set()
    for value in vars(metrics).values():
        if hasattr(value, "_type") and hasattr(value, "_name"):
            base = value._name
            if value._type == "counter":
                names |= {f"{base}_total"}
            elif value._type == "histogram":
                names |= {f"{base}_bucket", f"{base}_count", f"{base}_sum"}
    names |= {family.name for family in PortalStateCollector().collect()}
    return names


def _used(text: str) -> set[str]:
    return set(re.findall(r"\bdnsportal_[a-z0-9_]+", text))


def test_the_dashboard_and_the_alerts_use_only_exported_metrics():
    exported = exported_names()
    dashboard = json.loads((ROOT / "deploy/grafana-dashboard.json").read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel.get("targets", [])]
    assert len(exprs) >= 10
    used = set().union(*map(_used, exprs))
    assert used and used <= exported, used - exported

    rules = yaml.safe_load((ROOT / "deploy/prometheus-alerts.yaml").read_text())
    alerts = [r for g in rules["groups"] for r in g["rules"]]
    assert {a["alert"] for a in alerts} == {
        "DnsportalZoneNotVerified",
        "DnsportalReconcileFailing",
        "DnsportalClusterStale",
        "DnsportalQueueBackedUp",
        "DnsportalApplyStuck",
    }
    for group in rules["groups"]:
        assert group["name"] and group["rules"]
    for a in alerts:
        assert set(a) <= {"alert", "expr", "for", "labels", "annotations"}, a
        assert a["labels"]["severity"] in ("warning", "critical")
        assert a["annotations"]["summary"] and a["annotations"]["description"]
        assert re.fullmatch(r"\d+[smh]", a.get("for", "0s")), a
        assert _used(a["expr"]) and _used(a["expr"]) <= exported, (a["alert"], _used(a["expr"]) - exported)
    # The metrics every panel and alert name are the list.
    everything = used | set().union(*(_used(a["expr"]) for a in alerts))
    for name in (
        "dnsportal_provider_api_calls_total",
        "dnsportal_provider_throttles_total",
        "dnsportal_provider_retries_total",
        "dnsportal_rate_limit_wait_seconds_bucket",
        "dnsportal_changesets",
        "dnsportal_plan_changes_bucket",
        "dnsportal_plan_duration_seconds_bucket",
        "dnsportal_reconcile_duration_seconds_bucket",
        "dnsportal_apply_duration_seconds_bucket",
        "dnsportal_discovery_lag_seconds_bucket",
        "dnsportal_watch_reconnects_total",
        "dnsportal_cluster_health",
        "dnsportal_verifications_total",
        "dnsportal_split_p_value_latest",
        "dnsportal_queue_depth",
        "dnsportal_queue_oldest_job_age_seconds",
        "dnsportal_watch_leader_present",
        "dnsportal_http_requests_total",
        "dnsportal_http_request_duration_seconds_bucket",
    ):
        assert name in everything, name


def test_compose_shares_one_metrics_directory_and_passes_the_scrape_settings():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert "metrics" in compose["volumes"]
    init = services["metrics-init"]
    assert init["user"] == "0" and "/var/lib/dnsportal/metrics" in init["command"][-1]
    for name in ("migrate", "web", "worker", "scheduler", "watch"):
        svc = services[name]
        env = svc["environment"]
        assert env["PROMETHEUS_MULTIPROC_DIR"] == "/var/lib/dnsportal/metrics"
        assert "metrics:/var/lib/dnsportal/metrics" in svc["volumes"]
        assert (
            env["DNSPORTAL_METRICS_TOKEN"] == "${DNSPORTAL_METRICS_TOKEN:-}"
        )  # from .env, never in the file
        assert env["DNSPORTAL_METRICS_ALLOW"] == "${DNSPORTAL_METRICS_ALLOW:-}"
    for name in ("web", "worker", "scheduler", "watch"):
        assert services[name]["depends_on"]["metrics-init"] == {"condition": "service_completed_successfully"}


def test_the_state_the_alerts_watch_is_exported_as_it_is(client, settings):
    """Each alert's condition, made in the database, reaches the scrape: a zone whose check differs and one
    that could not be checked, a failing reconcile, a stale cluster, an apply stuck for an hour."""
    from datetime import timedelta

    from django.utils import timezone

    from records.models import Zone

    settings.METRICS_TOKEN, settings.METRICS_MULTIPROC_DIR = TOKEN, ""
    account = ProviderAccount.objects.create(name="aws-main")
    differs = Zone.objects.create(account=account, provider_zone_id="Z1", name="differs.example.")
    unchecked = Zone.objects.create(
        account=account, provider_zone_id="Z2", name="unchecked.example.", last_reconcile_error="AccessDenied"
    )
    Zone.objects.create(account=account, provider_zone_id="Z3", name="new.example.")
    now = timezone.now()
    for zone, status in ((differs, "ok"), (differs, "failed"), (unchecked, "error")):
        Verification.objects.create(zone=zone, kind="resolution", status=status, finished_at=now)
    Cluster.objects.create(name="k3s-edge", server="https://127.0.0.1:1", is_stale=True, health="unreachable")
    ChangeSet.objects.create(
        zone=differs, status="applying", fingerprint="f", started_at=now - timedelta(hours=1)
    )
    ChangeSet.objects.create(zone=unchecked, status="pending", fingerprint="g")

    s = _scrape(client)

    def result(zone: str) -> str:
        (one,) = [
            x.labels["result"] for x in s.find("dnsportal_zone_verification", zone=zone) if x.value == 1
        ]
        return one

    # The latest check decides: "differs" after an earlier "consistent".
    assert result("differs.example") == "differs"
    assert result("unchecked.example") == "could_not_check"
    assert result("new.example") == "never"
    assert s.value("dnsportal_zone_last_verified_timestamp_seconds", zone="new.example") == 0
    assert s.value("dnsportal_zone_reconcile_failing", zone="unchecked.example") == 1
    assert s.value("dnsportal_zone_reconcile_failing", zone="differs.example") == 0
    assert s.value("dnsportal_cluster_stale", cluster="k3s-edge") == 1
    assert s.value("dnsportal_cluster_health", cluster="k3s-edge", health="unreachable") == 1
    assert s.value("dnsportal_changesets", state="applying") == 1
    assert s.value("dnsportal_changesets", state="pending") == 1
    assert s.value("dnsportal_changesets_oldest_age_seconds", state="applying") >= 3600
    assert s.value("dnsportal_changesets_oldest_age_seconds", state="approved") == 0
