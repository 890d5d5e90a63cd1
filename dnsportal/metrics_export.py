"""`/metrics`: who may scrape, and what a scrape answers.

The answer is the event metrics of `dnsportal.metrics` (summed over every process through
`PROMETHEUS_MULTIPROC_DIR` when it is set) plus `PortalStateCollector`, which reads the portal's state from
PostgreSQL and Redis at scrape time, so that any web process answers for the whole deployment.

Access (README, "Metrics"): with `DNSPORTAL_METRICS_TOKEN` set a scrape must send `Authorization: Bearer
<token>` (401 otherwise); with `DNSPORTAL_METRICS_ALLOW` set it must come from one of those networks (403
otherwise); with both, both. With neither, every scrape is refused (403): metrics name zones and clusters.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import threading
import time
from collections.abc import Iterable, Iterator

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from dnsportal import metrics

log = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

VERIFICATION_RESULTS = ("consistent", "differs", "could_not_check", "never")


def _ts(dt) -> float:
    return dt.timestamp() if dt else 0.0


class PortalStateCollector(Collector):
    """State read from PostgreSQL and Redis at scrape time (see the module docstring)."""

    def collect(self) -> Iterator[Metric]:
        yield from self._changesets()
        yield from self._clusters()
        yield from self._zones()
        yield from self._redis()

    def _changesets(self) -> Iterable[Metric]:
        from django.db.models import Count, Min

        from records.models import ChangeSet

        by_state = GaugeMetricFamily("dnsportal_changesets", "Change sets by state.", labels=["state"])
        counts = dict(ChangeSet.objects.order_by().values_list("status").annotate(n=Count("id")))
        for state in ChangeSet.Status.values:
            by_state.add_metric([state], counts.get(state, 0))
        yield by_state
        # Age of the oldest change set waiting in each unfinished state: "applying" for long is a stuck apply.
        oldest = GaugeMetricFamily(
            "dnsportal_changesets_oldest_age_seconds",
            "Age of the oldest change set in each unfinished state (0 when there is none); applying counts "
            "from the apply's start.",
            labels=["state"],
        )
        now = time.time()
        for state, field in (
            ("pending", "created_at"),
            ("approved", "created_at"),
            ("applying", "started_at"),
        ):
            first = ChangeSet.objects.filter(status=state).aggregate(t=Min(field))["t"]
            oldest.add_metric([state], max(now - first.timestamp(), 0.0) if first else 0.0)
        yield oldest

    def _clusters(self) -> Iterable[Metric]:
        from clusters.models import Cluster

        health = GaugeMetricFamily(
            "dnsportal_cluster_health",
            "1 for each enabled cluster's current health (healthy, degraded, unreachable, unknown).",
            labels=["cluster", "health"],
        )
        stale = GaugeMetricFamily(
            "dnsportal_cluster_stale",
            "1 while a cluster's discovery fails and its endpoints are frozen.",
            labels=["cluster"],
        )
        synced = GaugeMetricFamily(
            "dnsportal_cluster_last_sync_timestamp_seconds",
            "When discovery last listed the cluster completely (0: never).",
            labels=["cluster"],
        )
        rows = Cluster.objects.filter(enabled=True).values_list("name", "health", "is_stale", "last_sync_at")
        for name, state, is_stale, last_sync in rows:
            for choice in Cluster.Health.values:
                health.add_metric([name, choice], 1.0 if state == choice else 0.0)
            stale.add_metric([name], 1.0 if is_stale else 0.0)
            synced.add_metric([name], _ts(last_sync))
        yield from (health, stale, synced)

    def _zones(self) -> Iterable[Metric]:
        from records.models import Verification, Zone

        verification = GaugeMetricFamily(
            "dnsportal_zone_verification",
            "1 for the result of each zone's latest resolution check: consistent, differs, could_not_check "
            "or never.",
            labels=["zone", "result"],
        )
        verified = GaugeMetricFamily(
            "dnsportal_zone_last_verified_timestamp_seconds",
            "When the zone's latest resolution check finished (0: never).",
            labels=["zone"],
        )
        failing = GaugeMetricFamily(
            "dnsportal_zone_reconcile_failing",
            "1 while the zone's last reconcile failed (its error is on the zone's page).",
            labels=["zone"],
        )
        reconciled = GaugeMetricFamily(
            "dnsportal_zone_last_reconcile_timestamp_seconds",
            "When the zone was last reconciled successfully (0: never).",
            labels=["zone"],
        )
        p_values = GaugeMetricFamily(
            "dnsportal_split_p_value_latest",
            "p-value of each hostname's latest traffic-split measurement against its weights.",
            labels=["zone", "hostname"],
        )
        zones = {
            z.id: z
            for z in Zone.objects.filter(enabled=True).only(
                "id", "name", "last_reconcile_at", "last_reconcile_error"
            )
        }
        latest = {
            v.zone_id: v
            for v in Verification.objects.filter(
                zone_id__in=zones, kind=Verification.Kind.RESOLUTION, finished_at__isnull=False
            )
            .exclude(status=Verification.Status.RUNNING)
            .order_by("zone_id", "-finished_at", "-id")
            .distinct("zone_id")
            .only("zone_id", "status", "finished_at")
        }
        for zone_id, zone in zones.items():
            name = zone.display_name
            v = latest.get(zone_id)
            result = metrics.VERIFICATION_RESULTS.get(v.status, "never") if v else "never"
            for choice in VERIFICATION_RESULTS:
                verification.add_metric([name, choice], 1.0 if result == choice else 0.0)
            verified.add_metric([name], _ts(v.finished_at) if v else 0.0)
            failing.add_metric([name], 1.0 if zone.last_reconcile_error else 0.0)
            reconciled.add_metric([name], 0.0 if zone.last_reconcile_error else _ts(zone.last_reconcile_at))
        splits = (
            Verification.objects.filter(
                zone_id__in=zones, kind=Verification.Kind.DISTRIBUTION, finished_at__isnull=False
            )
            .order_by("zone_id", "hostname", "-finished_at", "-id")
            .distinct("zone_id", "hostname")
            .values_list("zone_id", "hostname", "report")
        )
        for zone_id, hostname, report in splits:
            p = ((report or {}).get("verdict") or {}).get("p_value")
            if p is not None:
                p_values.add_metric([zones[zone_id].display_name, hostname.rstrip(".")], float(p))
        yield from (verification, verified, failing, reconciled, p_values)

    def _redis(self) -> Iterable[Metric]:
        import django_rq
        import redis as redis_lib

        from clusters.watch import LOCK_KEY

        up = GaugeMetricFamily("dnsportal_redis_up", "1 when the scrape could read Redis.")
        depth = GaugeMetricFamily("dnsportal_queue_depth", "Jobs waiting in each queue.", labels=["queue"])
        age = GaugeMetricFamily(
            "dnsportal_queue_oldest_job_age_seconds",
            "How long the job at the head of each queue has waited (0 when the queue is empty).",
            labels=["queue"],
        )
        leader = GaugeMetricFamily(
            "dnsportal_watch_leader",
            "1 for the watch process that holds the leadership (its host:pid:id).",
            labels=["identity"],
        )
        present = GaugeMetricFamily(
            "dnsportal_watch_leader_present", "1 while some watch process leads (Kubernetes is watched)."
        )
        holder = None
        try:
            now = time.time()
            holder = django_rq.get_connection("default").get(LOCK_KEY)
            for name in settings.RQ_QUEUE_NAMES:
                q = django_rq.get_queue(name)
                depth.add_metric([name], q.count)
                age.add_metric([name], _head_age(q, now))
        except (redis_lib.RedisError, OSError) as exc:
            log.warning("metrics: Redis could not be read: %s", type(exc).__name__)
            up.add_metric([], 0.0)
            yield up
            return
        up.add_metric([], 1.0)
        if holder:
            leader.add_metric([holder.decode()], 1.0)
        present.add_metric([], 1.0 if holder else 0.0)
        yield from (up, depth, age, leader, present)


def _head_age(queue, now: float) -> float:
    """Seconds the job at the head of the queue has waited (0: empty, or taken between the two reads)."""
    from rq.exceptions import NoSuchJobError
    from rq.job import Job

    head = queue.get_job_ids(0, 0)
    if not head:
        return 0.0
    try:
        when = Job.fetch(head[0], connection=queue.connection).enqueued_at
    except NoSuchJobError:
        return 0.0
    return max(now - when.timestamp(), 0.0) if when else 0.0


def _event_metrics() -> bytes:
    path = settings.METRICS_MULTIPROC_DIR
    if path:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=path)
        return generate_latest(registry)
    return generate_latest(REGISTRY)


def scrape() -> bytes:
    """The text a scrape answers: events (from every process when multiprocess) and state."""
    state = CollectorRegistry()
    state.register(PortalStateCollector())
    return _event_metrics() + generate_latest(state)


def _address_allowed(remote_addr: str) -> bool:
    try:
        address = ipaddress.ip_address(remote_addr)
    except ValueError:
        return False
    if address.version == 6 and address.ipv4_mapped:
        address = address.ipv4_mapped
    return any(address in net for net in settings.METRICS_ALLOW)


def _refusal(remote_addr: str, authorization: str) -> tuple[int, str] | None:
    """(status, message) when this scrape is refused, None when it may read."""
    token, allow = settings.METRICS_TOKEN, settings.METRICS_ALLOW
    if not token and not allow:
        return 403, "Metrics are off: set DNSPORTAL_METRICS_TOKEN or DNSPORTAL_METRICS_ALLOW.\n"
    if allow and not _address_allowed(remote_addr):
        return 403, "This address may not read the metrics.\n"
    if token:
        scheme, _, sent = authorization.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(sent.strip().encode(), token.encode()):
            return 401, "A bearer token is needed.\n"
    return None


_BEARER_CHALLENGE = 'Bearer realm="dnsportal metrics"'


def refusal(request: HttpRequest) -> HttpResponse | None:
    """Why this request may not scrape (the response), or None when it may."""
    refused = _refusal(request.META.get("REMOTE_ADDR", ""), request.headers.get("Authorization", ""))
    if refused is None:
        return None
    response = HttpResponse(refused[1], status=refused[0], content_type="text/plain")
    if refused[0] == 401:
        response["WWW-Authenticate"] = _BEARER_CHALLENGE
    return response


def metrics_view(request: HttpRequest) -> HttpResponse:
    """GET /metrics (answered by HealthCheckMiddleware, before host checks and the HTTPS redirect: Prometheus
    scrapes by address over the internal network)."""
    refused = refusal(request)
    if refused is not None:
        return refused
    if request.method not in ("GET", "HEAD"):
        return HttpResponse(status=405, headers={"Allow": "GET, HEAD"})
    return HttpResponse(scrape(), content_type=CONTENT_TYPE)


# --- the web's own requests --------------------------------------------------------------------------------

_UNROUTED = frozenset({"/healthz", "/readyz", "/metrics"})  # answered by HealthCheckMiddleware, before urls


class RequestMetricsMiddleware:
    """Counts and times every request by its URL pattern (bounded labels: never the path with its ids)."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        start = time.perf_counter()
        response = self.get_response(request)
        match = getattr(request, "resolver_match", None)
        if match is not None:
            route = "/" + str(match.route)
        else:
            route = request.path if request.path in _UNROUTED else "(unmatched)"
        metrics.HTTP_DURATION.labels(route).observe(time.perf_counter() - start)
        metrics.HTTP_REQUESTS.labels(request.method or "", route, f"{response.status_code // 100}xx").inc()
        return response


# --- a process's own endpoint (worker and watch pods that share no directory with the web) ----------------

PROCESS_COMMANDS = ("rqworker", "watch", "scheduler")


def _process_app(environ, start_response):
    """WSGI: GET /metrics answers this process's event metrics (its directory's, in multiprocess mode), under
    the same access rules as the web's /metrics; state is the web's to export, so it is left out here."""
    if environ.get("PATH_INFO") != "/metrics":
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"Not found: this port answers /metrics only.\n"]
    refused = _refusal(environ.get("REMOTE_ADDR", ""), environ.get("HTTP_AUTHORIZATION", ""))
    if refused is not None:
        status, message = refused
        headers = [("Content-Type", "text/plain")]
        if status == 401:
            headers.append(("WWW-Authenticate", _BEARER_CHALLENGE))
        start_response(f"{status} {'Unauthorized' if status == 401 else 'Forbidden'}", headers)
        return [message.encode()]
    start_response("200 OK", [("Content-Type", CONTENT_TYPE)])
    return [_event_metrics()]


def serve_process_metrics(port: int, bind: str = "") -> threading.Thread:
    """Answer /metrics on `port` from a daemon thread of this process (DNSPORTAL_METRICS_PORT)."""
    from socketserver import ThreadingMixIn
    from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

    class _Server(ThreadingMixIn, WSGIServer):
        daemon_threads = True

    class _Quiet(WSGIRequestHandler):
        def log_message(self, format: str, *args: object) -> None:  # scrapes every 15 s are not news
            pass

    server = make_server(bind, port, _process_app, server_class=_Server, handler_class=_Quiet)
    thread = threading.Thread(target=server.serve_forever, name="metrics-http", daemon=True)
    thread.start()
    log.info("metrics of this process answer on port %d at /metrics", server.server_port)
    return thread
