"""The scheduler after PostgreSQL dropped its connection (a restart, a failover): it enqueues periodic jobs
again on a new connection (bench/soak.py found it failing every tick until it was restarted)."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection

from dnsportal import scheduler
from dnsportal.models import JobRun
from dnsportal.queue import rq_connection

pytestmark = pytest.mark.django_db(transaction=True)


def all_due() -> None:
    redis = rq_connection()
    for key in redis.scan_iter(match=scheduler.KEY_PREFIX + "*"):
        redis.delete(key)


def wait_for_runs(after: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not JobRun.objects.filter(id__gt=after).exists():
        assert time.monotonic() < deadline, "the scheduler enqueued nothing"
        time.sleep(0.1)


def test_the_scheduler_enqueues_again_after_postgresql_dropped_its_connection():
    all_due()
    stop = threading.Event()
    loop = threading.Thread(
        target=scheduler.run_forever, args=(rq_connection(),), kwargs={"interval": 0.2, "stop": stop}
    )
    loop.start()
    try:
        wait_for_runs(0)
        last = JobRun.objects.order_by("-id").values_list("id", flat=True).first()
        with connection.cursor() as cursor:  # every other connection to the database: the scheduler's
            cursor.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        all_due()
        wait_for_runs(last)
    finally:
        stop.set()
        loop.join(10)


def test_a_periodic_job_whose_enqueue_failed_is_enqueued_on_the_next_tick():
    """The tick that meets the dropped connection claimed a schedule's slot and then could not write its run:
    the slot goes back, so the job runs this period, not one whole interval later."""
    from django.db import DatabaseError, connections

    redis = rq_connection()
    all_due()
    scheduler.tick(redis)
    last = JobRun.objects.order_by("-id").values_list("id", flat=True).first() or 0
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]

    def drop() -> None:  # PostgreSQL restarting, as the tick begins
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
        connection.close()

    killer = threading.Thread(target=drop)
    killer.start()
    killer.join()
    all_due()
    with pytest.raises(DatabaseError):
        scheduler.tick(redis)
    connections.close_all()  # as the scheduler's loop does after a failed tick
    scheduler.tick(redis)
    got = set(JobRun.objects.filter(id__gt=last).values_list("name", flat=True))
    assert got == {spec.job for spec in scheduler.SCHEDULES.values()}
