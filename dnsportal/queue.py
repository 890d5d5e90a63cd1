"""The only door to RQ: a job is a JobRun row first, and only its id crosses the queue.

    enqueue("cluster_check", actor=request.user, cluster_id=cluster.id)

creates the row in the caller's transaction and pushes `run.id` to the job's queue on commit (so a worker
never sees a row that a rolled-back request created). The worker calls `execute(run_id)`, which claims the row
with a conditional UPDATE (a redelivered message finds it taken), runs the registered function with the stored
ids, keeps its log lines on the row and ends it DONE or FAILED with a message an operator can read.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import django_rq
from django.conf import settings
from django.db import models, transaction
from django.utils import timezone

from dnsportal.logging import JsonFormatter, job_id_var, redact, request_id_var
from dnsportal.models import JobRun

log = logging.getLogger(__name__)

_MAX_LOG_CHARS = 100_000


@dataclass(frozen=True)
class JobSpec:
    name: str
    func: Callable[..., Any]
    queue: str


JOBS: dict[str, JobSpec] = {}


def register_job(*, queue: str = "default", name: str | None = None) -> Callable[[Callable], Callable]:
    """Register a job function under its name (default: the function's name) for `queue`."""
    if queue not in settings.RQ_QUEUE_NAMES:
        raise ValueError(f"unknown queue {queue!r}; queues are {', '.join(settings.RQ_QUEUE_NAMES)}")

    def decorator(func: Callable) -> Callable:
        job_name = name or func.__name__
        if job_name in JOBS and JOBS[job_name].func is not func:
            raise ValueError(f"job name {job_name!r} is registered twice")
        JOBS[job_name] = JobSpec(job_name, func, queue)
        return func

    return decorator


def _check_kwargs(name: str, kwargs: dict[str, Any]) -> None:
    for key, value in kwargs.items():
        # Rows change between enqueue and run: a job gets ids and reads the current row itself.
        if isinstance(value, models.Model):
            raise TypeError(f"job {name}: pass {key}=<id>, never a model instance")
        if not isinstance(value, str | int | float | bool | type(None) | list):
            raise TypeError(
                f"job {name}: argument {key} must be an id or plain value, not {type(value).__name__}"
            )


def enqueue(name: str, *, actor: Any = None, delay: float = 0.0, **kwargs: Any) -> JobRun:
    """Create the JobRun row now and push its id to RQ when the surrounding transaction commits.

    `delay` (seconds) schedules it for later (RQ's scheduler, which the workers run with --with-scheduler).
    """
    spec = JOBS.get(name)
    if spec is None:
        raise KeyError(f"no job is registered under the name {name!r}")
    _check_kwargs(name, kwargs)
    user = actor if actor is not None and getattr(actor, "is_authenticated", False) else None
    run = JobRun.objects.create(
        name=name,
        queue=spec.queue,
        kwargs=kwargs,
        actor=user,
        actor_name=user.get_username() if user else "system",
        request_id=request_id_var.get(),
    )
    transaction.on_commit(lambda: push(run.id, spec.queue, delay=delay))
    return run


def push(run_id: int, queue: str, *, delay: float = 0.0) -> None:
    # A deterministic RQ job id: pushing the same run twice is one job in Redis.
    rq_queue = django_rq.get_queue(queue)
    if delay > 0:
        rq_queue.enqueue_in(timedelta(seconds=delay), execute, run_id, job_id=f"run-{run_id}")
    else:
        rq_queue.enqueue(execute, run_id, job_id=f"run-{run_id}")


class _RowLogHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.INFO)
        self.lines: list[str] = []
        self.setFormatter(JsonFormatter())

    def emit(self, record: logging.LogRecord) -> None:
        # The formatter redacts secrets; the row shows the time, level and message.
        ts = timezone.now().strftime("%H:%M:%S")
        self.lines.append(f"{ts} {record.levelname} {record.getMessage()}")


def execute(run_id: int) -> str:
    """Run a JobRun (called by the RQ worker). Returns the final status."""
    claimed = JobRun.objects.filter(id=run_id, status=JobRun.Status.PENDING).update(
        status=JobRun.Status.RUNNING, started_at=timezone.now()
    )
    if claimed != 1:
        log.info("job run %s is not pending (already claimed or gone); nothing to do", run_id)
        return "skipped"
    run = JobRun.objects.get(id=run_id)
    token = job_id_var.set(str(run_id))
    handler = _RowLogHandler()
    root = logging.getLogger()
    root.addHandler(handler)
    status, error = JobRun.Status.DONE, ""
    alive = _Heartbeat(run_id) if not transaction.get_connection().in_atomic_block else None
    try:
        spec = JOBS.get(run.name)
        if spec is None:
            raise LookupError(f"no job is registered under the name {run.name!r} in this worker")
        log.info("job %s started", run.name)
        spec.func(**run.kwargs)
        log.info("job %s finished", run.name)
    except Exception as exc:
        status = JobRun.Status.FAILED
        error = failure_message(exc)
        log.exception("job %s failed: %s", run.name, error)
    finally:
        if alive is not None:
            alive.stop()
        root.removeHandler(handler)
        job_id_var.reset(token)
    JobRun.objects.filter(id=run_id).update(
        status=status,
        finished_at=timezone.now(),
        error=redact(error),
        log=redact("\n".join(handler.lines))[-_MAX_LOG_CHARS:],
    )
    return status


class _Heartbeat:
    """Moves the running row's `heartbeat_at` every quarter of JOB_LEASE_S from a thread of its own (its own
    database connection), so the sweep can tell a long job from one whose worker was killed. Not started for a
    run inside a caller's transaction (tests drain queues in-process): no other process needs telling, and
    its update would wait for that transaction."""

    def __init__(self, run_id: int) -> None:
        self.run_id = run_id
        self._halt = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"heartbeat-{run_id}", daemon=True)
        self._thread.start()

    def _beat(self) -> None:
        from django.db import connection

        try:
            while not self._halt.wait(settings.JOB_LEASE_S / 4):
                try:
                    JobRun.objects.filter(id=self.run_id, status=JobRun.Status.RUNNING).update(
                        heartbeat_at=timezone.now()
                    )
                except Exception:  # the database is away for a moment: the next beat tries again
                    log.warning("job run %s: heartbeat not recorded", self.run_id, exc_info=True)
                    connection.close()
        finally:
            connection.close()

    def stop(self) -> None:
        self._halt.set()


def failure_message(exc: BaseException) -> str:
    """What a failed run says to the operator (a ProviderError's user_message; else the exception), redacted,
    for rows that keep a background failure of their own (Zone.last_reconcile_error)."""
    text = getattr(exc, "user_message", None) or str(exc) or exc.__class__.__name__
    return redact(f"{exc.__class__.__name__}: {text}" if not getattr(exc, "user_message", None) else text)


def current_run_id() -> int | None:
    """The JobRun being executed in this context (None outside `execute`): rows link to the run's page."""
    value = job_id_var.get()
    return int(value) if value.isdigit() else None


_connection: Any = None


def rq_connection():
    """The process's Redis client. One for the process, kept: django_rq builds a client with a pool of its own
    on every call, so each call opened a TCP connection (3 ms of a discovery event's 8). redis-py's pool
    starts afresh in a forked child and reconnects after a Redis restart (its client retries a broken
    connection)."""
    global _connection  # one per process, made on first use (settings are read then)
    if _connection is None:
        _connection = django_rq.get_connection("default")
    return _connection
