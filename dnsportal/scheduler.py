"""Periodic jobs: declared in code, due times kept in Redis, each due slot claimed atomically.

Two schedulers (or one restarted) never enqueue the same run twice: for each schedule, Redis holds the next
due time; a scheduler enqueues only if its compare-and-set from "due" to "next" succeeded (a Lua script,
atomic in Redis). The declarations themselves live in the code (`periodic(...)` next to the job), so
registering them again on every start changes nothing: that is what makes the registration idempotent.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from dataclasses import dataclass
from typing import Any

from django.db import DatabaseError, connections
from redis import Redis

from dnsportal import queue

log = logging.getLogger(__name__)

KEY_PREFIX = "dnsportal:schedule:"

# KEYS[1] = the schedule's next-due key; ARGV = now, next, interval.
# Due when the key is missing (first start) or its time has come; then it moves to `next` in the same step.
_CLAIM = """
local due = redis.call('GET', KEYS[1])
if (not due) or (tonumber(due) <= tonumber(ARGV[1])) then
  redis.call('SET', KEYS[1], ARGV[2])
  return 1
end
return 0
"""

# KEYS[1] = the key; ARGV = the next due this scheduler set, the due it moved from. Hands a claimed slot back,
# unless another scheduler has moved the key since.
_UNCLAIM = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2])
  return 1
end
return 0
"""


@dataclass(frozen=True)
class Periodic:
    job: str
    every: int  # seconds
    kwargs: tuple[tuple[str, Any], ...] = ()


SCHEDULES: dict[str, Periodic] = {}


def periodic(job: str, *, every: int, **kwargs: Any) -> Periodic:
    """Declare that `job` runs every `every` seconds; declaring the same schedule again is a no-op."""
    if every < 1:
        raise ValueError("a periodic job needs an interval of at least 1 second")
    spec = Periodic(job, every, tuple(sorted(kwargs.items())))
    SCHEDULES[job] = spec
    return spec


def tick(redis: Redis, now: float | None = None) -> list[str]:
    """Enqueue every schedule whose time has come; returns the job names enqueued."""
    now = time.time() if now is None else now
    claim, unclaim = redis.register_script(_CLAIM), redis.register_script(_UNCLAIM)
    enqueued = []
    for name, spec in sorted(SCHEDULES.items()):
        key, following = KEY_PREFIX + name, now + spec.every
        if claim(keys=[key], args=[now, following, spec.every]) == 1:
            try:
                queue.enqueue(spec.job, **dict(spec.kwargs))
            except DatabaseError:
                # No run row: nothing would run the job this period. The slot goes back, for the next tick.
                # (Redis failing after the row is written leaves a pending row, which the job-run sweep
                # pushes again: handing the slot back then would run it twice.)
                unclaim(keys=[key], args=[str(following), str(now)])
                raise
            enqueued.append(name)
    return enqueued


def next_due(redis: Redis) -> dict[str, float | None]:
    """When each schedule runs next (epoch seconds), for the jobs page."""
    out: dict[str, float | None] = {}
    for name in sorted(SCHEDULES):
        raw = redis.get(KEY_PREFIX + name)
        out[name] = float(raw) if raw is not None else None
    return out


def run_forever(redis: Redis, *, interval: float = 1.0, stop: threading.Event | None = None) -> None:
    """The scheduler process's loop: tick once a second until SIGTERM/SIGINT."""
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
    log.info("scheduler started with %d schedules: %s", len(SCHEDULES), ", ".join(sorted(SCHEDULES)))
    while not stop.is_set():
        try:
            for name in tick(redis):
                log.info("enqueued periodic job %s", name)
        except Exception:
            # Redis or the database may be briefly away; the next tick tries again, on a new database
            # connection: one PostgreSQL dropped (a restart, a failover) stays broken until it is closed,
            # and this loop has no request cycle to close it (bench/soak.py: it enqueued nothing again).
            log.exception("scheduler tick failed")
            connections.close_all()
        stop.wait(interval)
    log.info("scheduler stopped")
