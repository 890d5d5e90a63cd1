"""Prometheus metrics: every metric the portal exports is defined here, and nowhere else.

Two kinds, gathered two ways:

- **Events** (provider API calls, throttles, retries, token-bucket waits, plan sizes and durations, reconcile
  and apply durations, discovery lag, watch reconnects, verification results) happen in workers and in the
  watch process. They are counters and histograms of prometheus-client. With `PROMETHEUS_MULTIPROC_DIR` set
  (a directory every process of the deployment shares, emptied when the deployment starts), each process
  writes its values to files there and `/metrics` on any web process sums them all (prometheus-client's
  multiprocess mode). Without it, each process keeps its own values and `/metrics` shows only the web
  process's: fine for one process (tests, `runserver`), wrong for a deployment.
- **State** (change sets by state, cluster health, each zone's latest verification and reconcile, queue depth
  and oldest job age, the watch leader, measured split p-values) lives in PostgreSQL and Redis; the collector
  in `dnsportal.metrics_state` reads it at scrape time, so every web process answers the same.

This module imports only prometheus-client: providers and the watch import it without Django. Gauges are not
used here (multiprocess mode cannot sum a gauge meaningfully); a gauge is state and belongs to the collector.
"""

from __future__ import annotations

import os
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import Counter, Histogram, values

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
_HORSE_ENV = "DNSPORTAL_RQ_WORKER_PID"
_HOST = socket.gethostname().replace("_", "-")


def _process_id() -> str:
    """The name of this process's files in the shared directory.

    Containers sharing one directory all have small pids (pid 1 in each), hence the host name. RQ's worker
    forks one work-horse per job: the horses of one worker run one at a time, so they share one file instead
    of leaving a file per job behind (each horse reads the file's values and carries on counting).
    """
    parent = os.environ.get(_HORSE_ENV, "")
    pid = str(os.getpid())
    # A horse is the worker's child; a process a job starts is not, and gets a file of its own.
    if parent and parent != pid and str(os.getppid()) == parent:
        return f"{_HOST}-{parent}h"
    return f"{_HOST}-{pid}"


if os.environ.get(MULTIPROC_ENV):
    if len(sys.argv) > 1 and sys.argv[1] == "rqworker":
        # Inherited by the work-horses at fork (they do not import this module again).
        os.environ[_HORSE_ENV] = str(os.getpid())
    values.ValueClass = values.MultiProcessValue(_process_id)

_DURATION_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
_WAIT_BUCKETS = (0.0, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60)
_SIZE_BUCKETS = (0, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 5000, 20000)

# Results of one provider API request.
OK = "ok"
THROTTLED = "throttled"  # refused for rate (Route53 Throttling, PriorRequestNotComplete): resent as is
SERVER_ERROR = "server_error"  # HTTP 5xx: may or may not have taken effect
CONNECTION_ERROR = "connection_error"
REJECTED = "rejected"  # refused for its content (InvalidChangeBatch): nothing applied
ERROR = "error"  # anything else (access denied, not found, ...)

PROVIDER_CALLS = Counter(
    "dnsportal_provider_api_calls",
    "DNS provider API requests sent, by provider, operation and result.",
    ["provider", "operation", "result"],
)
PROVIDER_THROTTLES = Counter(
    "dnsportal_provider_throttles",
    "Provider requests refused for rate (Route53 Throttling and the like).",
    ["provider", "operation"],
)
PROVIDER_RETRIES = Counter(
    "dnsportal_provider_retries",
    "Provider requests sent again after a transient failure (throttle, 5xx, lost connection).",
    ["provider", "operation"],
)
RATE_LIMIT_WAIT = Histogram(
    "dnsportal_rate_limit_wait_seconds",
    "Time a request waited for a token of its account's shared token bucket.",
    ["account"],
    buckets=_WAIT_BUCKETS,
)
PLAN_CHANGES = Histogram(
    "dnsportal_plan_changes",
    "Change groups in a plan (creates, updates and deletes of record sets), per zone.",
    ["zone"],
    buckets=_SIZE_BUCKETS,
)
PLAN_DURATION = Histogram(
    "dnsportal_plan_duration_seconds",
    "Time to compute a plan (desired vs current), per zone.",
    ["zone"],
    buckets=_DURATION_BUCKETS,
)
RECONCILE_DURATION = Histogram(
    "dnsportal_reconcile_duration_seconds",
    "Time a zone reconcile took (reading state, planning, storing the change set), by result.",
    ["zone", "result"],
    buckets=_DURATION_BUCKETS,
)
APPLY_DURATION = Histogram(
    "dnsportal_apply_duration_seconds",
    "Time an apply of a change set took, by outcome (applied, partially_applied, failed, pending, error).",
    ["zone", "result"],
    buckets=_DURATION_BUCKETS,
)
DISCOVERY_LAG = Histogram(
    "dnsportal_discovery_lag_seconds",
    "From a Kubernetes watch event's arrival in the watch process to its endpoint rows committed.",
    ["cluster"],
    buckets=_DURATION_BUCKETS,
)
WATCH_RECONNECTS = Counter(
    "dnsportal_watch_reconnects",
    "Kubernetes watch streams opened again after the first (timeouts, dropped connections, relists).",
    ["cluster"],
)
VERIFICATIONS = Counter(
    "dnsportal_verifications",
    "Verifications finished, by kind and result: consistent, differs, could_not_check.",
    ["kind", "result"],
)
SPLIT_P_VALUE = Histogram(
    "dnsportal_verification_split_p_value",
    "p-values of measured traffic splits against the configured weights (low: the split differs).",
    ["zone"],
    buckets=(0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0),
)

HTTP_REQUESTS = Counter(
    "dnsportal_http_requests",
    "Requests the web answered, by method, URL route (the pattern, not the path) and status class.",
    ["method", "route", "status"],
)
HTTP_DURATION = Histogram(
    "dnsportal_http_request_duration_seconds",
    "Time the web took to answer a request, by URL route.",
    ["route"],
    buckets=_DURATION_BUCKETS,
)

# Verification.Status -> the metric's words.
VERIFICATION_RESULTS = {"ok": "consistent", "failed": "differs", "error": "could_not_check"}


@contextmanager
def timed(histogram: Histogram, **labels: str) -> Iterator[dict[str, str]]:
    """Observe the block's duration under `labels`; the block may set more labels (e.g. "result") in the
    dict it gets. An exception leaves as result "error" unless the block set one."""
    extra: dict[str, str] = {}
    start = time.perf_counter()
    try:
        yield extra
    except BaseException:
        extra.setdefault("result", "error")
        raise
    finally:
        if "result" in histogram._labelnames:
            extra.setdefault("result", "ok")
        histogram.labels(**labels, **extra).observe(time.perf_counter() - start)


def provider_call(provider: str, operation: str, result: str) -> None:
    PROVIDER_CALLS.labels(provider, operation, result).inc()
    if result == THROTTLED:
        PROVIDER_THROTTLES.labels(provider, operation).inc()


def provider_retry(provider: str, operation: str) -> None:
    PROVIDER_RETRIES.labels(provider, operation).inc()


def rate_limit_wait(account: str, seconds: float) -> None:
    RATE_LIMIT_WAIT.labels(account or "default").observe(max(seconds, 0.0))


def verification_finished(kind: str, status: str) -> None:
    VERIFICATIONS.labels(kind, VERIFICATION_RESULTS.get(status, status)).inc()


def watch_started(cluster: str) -> None:
    """Make the cluster's reconnect counter exist (at 0) as soon as it is watched."""
    WATCH_RECONNECTS.labels(cluster)


def watch_reconnected(cluster: str) -> None:
    WATCH_RECONNECTS.labels(cluster).inc()
