"""What bench/soak.py found, fixed at the root: work no process would ever finish or pick up again.

- A job run whose worker was SIGKILLed stays `running` for ever; a pending one whose message Redis lost (or
  never got: Redis was away when the row's transaction committed) stays `pending`. The sweep
  (`dnsportal.jobs.jobruns_sweep`) ends the first and queues it again, and pushes the second's message again;
  a job that lives past the lease says so with its heartbeat and is left alone.
- The zone lock of a worker killed while holding it blocked every reconcile and apply of the zone for its
  ten-minute expiry; it is a lease now, renewed while held. The reconcile that was to follow the dead holder
  (its rerun key) is run by `records.jobs.zones_rerun_sweep`.

Real processes: `manage.py rqworker` (a SimpleWorker: the job dies with the worker, where it stands) and
`manage.py shell` holding a lock, each SIGKILLed, on the test database and Redis.
"""

from __future__ import annotations

import time
from datetime import timedelta

import django_rq
import pytest
from django.utils import timezone
from rq import Worker
from rq.job import Job

from dnsportal.jobs import SWEPT, jobruns_sweep
from dnsportal.models import JobRun
from dnsportal.queue import enqueue, rq_connection
from records.jobs import _rerun_key, _zone_lock_key, zones_rerun_sweep
from tests.fixtures.jobs import PortalProcess, drain_queues, start_worker

pytestmark = pytest.mark.django_db(transaction=True)
LEASE_S = 2


def wait_for(check, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"no {what} within {timeout:.0f} s"
        time.sleep(0.05)


def slow_run(seconds: float) -> JobRun:
    """A real job that takes `seconds`: a reconcile waits for the end of its debounce window first (of a zone
    that does not exist, so it then ends at once)."""
    return enqueue("zone_reconcile", zone_id=987654, not_before=time.time() + seconds)


def status(run: JobRun) -> str:
    return JobRun.objects.values_list("status", flat=True).get(id=run.id)


def test_run_killed_with_its_worker_is_ended_and_queued_again(tmp_path, settings):
    settings.JOB_LEASE_S = LEASE_S
    worker = start_worker(tmp_path / "worker.log", env={"DNSPORTAL_JOB_LEASE_S": str(LEASE_S)})
    try:
        run = slow_run(5)
        wait_for(lambda: status(run) == JobRun.Status.RUNNING, 60, "running job")
        worker.kill()
        killed_at = time.monotonic()
    finally:
        worker.stop()
    jobruns_sweep()
    assert status(run) == JobRun.Status.RUNNING  # within its lease: maybe a slow job, maybe not

    time.sleep(max(0.0, killed_at + LEASE_S + 0.5 - time.monotonic()))
    jobruns_sweep()
    dead = JobRun.objects.get(id=run.id)
    assert dead.status == JobRun.Status.FAILED and dead.error.startswith(SWEPT), dead.error
    again = JobRun.objects.get(name="zone_reconcile", id__gt=run.id)
    assert again.kwargs == run.kwargs
    drain_queues()
    assert status(again) == JobRun.Status.DONE


def test_a_long_job_that_beats_is_not_swept(tmp_path, settings):
    settings.JOB_LEASE_S = LEASE_S
    worker = start_worker(tmp_path / "worker.log", env={"DNSPORTAL_JOB_LEASE_S": str(LEASE_S)})
    try:
        wait_for(lambda: Worker.all(connection=rq_connection()), 60, "the worker to start")
        run = slow_run(5)  # more than twice its lease
        wait_for(lambda: status(run) == JobRun.Status.RUNNING, 60, "running job")
        started = JobRun.objects.get(id=run.id).started_at
        wait_for(lambda: timezone.now() - started > timedelta(seconds=LEASE_S + 0.5), 30, "lease to pass")
        jobruns_sweep()
        assert status(run) == JobRun.Status.RUNNING
        assert JobRun.objects.get(id=run.id).heartbeat_at > started
        wait_for(lambda: status(run) == JobRun.Status.DONE, 30, "finished job")
    finally:
        worker.stop()
    assert not JobRun.objects.filter(name="zone_reconcile", id__gt=run.id).exists()


def test_pending_run_whose_message_a_dying_worker_took_is_pushed_again(settings):
    """A worker that took the message and died before starting it (killed, or exiting as Redis went away)
    leaves the job `queued` in no queue: the soak found one that way, pending for good."""
    settings.JOB_LEASE_S = LEASE_S
    run = enqueue("jobruns_prune")
    job_id = f"run-{run.id}"
    rq_queue = django_rq.get_queue("default")
    assert rq_connection().lrem(rq_queue.key, 0, job_id) == 1  # taken off the list, as a dequeue does
    assert Job.fetch(job_id, connection=rq_connection()).get_status() == "queued"
    JobRun.objects.filter(id=run.id).update(created_at=timezone.now() - timedelta(seconds=LEASE_S + 1))
    jobruns_sweep()
    assert job_id in rq_queue.job_ids
    drain_queues()
    assert status(run) == JobRun.Status.DONE


def test_pending_run_whose_message_redis_lost_is_pushed_again(settings):
    settings.JOB_LEASE_S = LEASE_S
    run = enqueue("jobruns_prune")
    job_id = f"run-{run.id}"
    # What a Redis that restarted without its data (or was away at the commit) holds of it: nothing.
    django_rq.get_queue("default").remove(job_id)
    Job.fetch(job_id, connection=rq_connection()).delete()
    jobruns_sweep()
    assert not Job.exists(job_id, connection=rq_connection())  # young: its message may be on its way

    JobRun.objects.filter(id=run.id).update(created_at=timezone.now() - timedelta(seconds=LEASE_S + 1))
    jobruns_sweep()
    assert Job.exists(job_id, connection=rq_connection())
    drain_queues()
    assert status(run) == JobRun.Status.DONE


def test_pending_run_scheduled_for_a_queue_nobody_schedules_is_pushed_again(settings):
    """A delayed run (a busy zone's apply, asked for again in 2 s) waits in RQ's scheduled registry for its
    queue's scheduler. The soak killed the worker running the `dns` queue's scheduler; the worker started in
    its place found the dead one's lock and would try again only at its next maintenance: the apply waited
    five minutes. A run scheduled for a time long past is pushed to its queue."""
    from rq.registry import ScheduledJobRegistry

    settings.JOB_LEASE_S = LEASE_S
    redis = rq_connection()
    run = enqueue("jobruns_prune", delay=0.5)
    job_id = f"run-{run.id}"
    scheduled = ScheduledJobRegistry("default", connection=redis)
    assert job_id in scheduled.get_job_ids()  # no worker here runs a scheduler: it stays there
    JobRun.objects.filter(id=run.id).update(created_at=timezone.now() - timedelta(seconds=LEASE_S + 1))
    jobruns_sweep()
    assert job_id not in django_rq.get_queue("default").job_ids  # due just now: its scheduler may come

    redis.zadd(scheduled.key, {job_id: time.time() - LEASE_S - 1})  # due longer ago than a lease
    jobruns_sweep()
    assert job_id in django_rq.get_queue("default").job_ids
    drain_queues()
    assert status(run) == JobRun.Status.DONE


def test_a_worker_tries_for_a_dead_schedulers_lock_every_minute():
    from dnsportal.worker import Worker

    worker = Worker(["default"], connection=rq_connection())
    assert worker.maintenance_interval == 60  # RQ's default: ten minutes


LOCK_HOLDER = """
import time
import records.jobs as jobs
jobs.ZONE_LOCK_LEASE_S = 2
with jobs.zone_lock(424242):
    print("holding", flush=True)
    time.sleep(120)
"""


def test_zone_lock_of_a_killed_worker_is_free_after_its_lease(tmp_path):
    redis, key = rq_connection(), _zone_lock_key(424242)
    holder = PortalProcess(["shell", "-c", LOCK_HOLDER], tmp_path / "holder.log")
    try:
        wait_for(lambda: redis.exists(key), 60, "lock")
        time.sleep(3)  # past the lease: a living holder renews it
        assert redis.exists(key)
        holder.kill()
        held_after_kill = time.monotonic()
        wait_for(lambda: not redis.exists(key), 5, "lock to be free")
        assert time.monotonic() - held_after_kill <= 2.5
    finally:
        holder.stop()


def test_a_reconcile_waiting_for_a_dead_lock_holder_is_run():
    redis = rq_connection()
    redis.set(_rerun_key(31), "discovery", ex=600)
    redis.set(_zone_lock_key(32), "a living holder", ex=30)
    redis.set(_rerun_key(32), "discovery", ex=600)
    try:
        zones_rerun_sweep()
        ran = JobRun.objects.filter(name="zone_reconcile")
        assert [r.kwargs["zone_id"] for r in ran] == [31]
        assert ran.get().kwargs["cause"] == "discovery"
        assert not redis.exists(_rerun_key(31))
        assert redis.exists(_rerun_key(32))  # its holder runs it at its end
    finally:
        redis.delete(_rerun_key(31), _rerun_key(32), _zone_lock_key(32))


def test_a_zone_whose_last_reconcile_failed_is_reconciled_again():
    from records.models import ProviderAccount, Zone

    account = ProviderAccount.objects.create(name="r53")
    zone = Zone.objects.create(account=account, name="example.com.", provider_zone_id="Z1")
    failed = JobRun.objects.create(
        name="zone_reconcile",
        kwargs={"zone_id": zone.id},
        status=JobRun.Status.FAILED,
        finished_at=timezone.now(),
    )
    Zone.objects.filter(id=zone.id).update(last_reconcile_error="Redis away", last_reconcile_run_id=failed.id)
    zones_rerun_sweep()
    assert not JobRun.objects.filter(id__gt=failed.id).exists()  # it failed a moment ago: not yet

    JobRun.objects.filter(id=failed.id).update(finished_at=timezone.now() - timedelta(seconds=31))
    zones_rerun_sweep()
    again = JobRun.objects.get(id__gt=failed.id)
    assert (again.name, again.kwargs["zone_id"]) == ("zone_reconcile", zone.id)
    zones_rerun_sweep()
    assert JobRun.objects.filter(id__gt=failed.id).count() == 1  # one is queued already
