"""Jobs: a row first, ids only, one run per row, failures stored on the row; periodic jobs never doubled."""

from __future__ import annotations

import threading

import django_rq
import pytest
from django.conf import settings
from django.db import transaction

from dnsportal import queue, scheduler
from dnsportal.models import JobRun
from tests import jobs_for_tests
from tests.fixtures.jobs import drain_queues as _drain


@pytest.fixture(autouse=True)
def _reset_calls():
    jobs_for_tests.CALLS.clear()


@pytest.mark.django_db(transaction=True)
def test_a_job_is_a_row_first_and_only_its_id_reaches_redis(alice):
    with transaction.atomic():
        run = queue.enqueue("test_echo", actor=alice, value=7)
        assert django_rq.get_queue("default").count == 0  # nothing reaches RQ before the commit
    rq_job = django_rq.get_queue("default").jobs[0]
    assert rq_job.args == (run.id,) and rq_job.id == f"run-{run.id}"
    _drain()
    run.refresh_from_db()
    assert run.status == JobRun.Status.DONE and run.actor == alice
    assert jobs_for_tests.CALLS == [{"value": 7}]
    assert "echo 7" in run.log and run.started_at and run.finished_at


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_request_enqueues_nothing():
    with pytest.raises(RuntimeError), transaction.atomic():
        queue.enqueue("test_echo", value=1)
        raise RuntimeError("the request failed")
    assert django_rq.get_queue("default").count == 0
    assert not JobRun.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_run_executes_once_even_if_delivered_twice():
    run = queue.enqueue("test_echo", value=3)
    queue.push(run.id, "default")  # a redelivery: same RQ job id, and the row is claimed only once
    _drain()
    assert queue.execute(run.id) == "skipped"
    assert jobs_for_tests.CALLS == [{"value": 3}]


@pytest.mark.django_db(transaction=True)
def test_a_failing_job_stores_a_readable_error_without_secrets():
    run = queue.enqueue("test_explode", value=5)
    _drain()
    run.refresh_from_db()
    assert run.status == JobRun.Status.FAILED
    assert run.error.startswith("RuntimeError: boom 5 with key [redacted]")
    assert settings.SECRET_KEY not in run.error and settings.SECRET_KEY not in run.log


def test_jobs_take_ids_never_model_instances(alice):
    with pytest.raises(TypeError, match="never a model instance"):
        queue.enqueue("test_echo", value=alice)
    with pytest.raises(KeyError, match="no job is registered"):
        queue.enqueue("no_such_job")


@pytest.fixture
def one_schedule():
    saved = dict(scheduler.SCHEDULES)
    scheduler.SCHEDULES.clear()
    scheduler.periodic("test_echo", every=60, value=1)
    yield
    scheduler.SCHEDULES.clear()
    scheduler.SCHEDULES.update(saved)


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("one_schedule")
def test_periodic_registration_is_idempotent():
    scheduler.periodic("test_echo", every=60, value=1)
    scheduler.periodic("test_echo", every=60, value=1)
    assert list(scheduler.SCHEDULES) == ["test_echo"]


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("one_schedule")
def test_two_schedulers_never_enqueue_a_slot_twice():
    redis = queue.rq_connection()
    now = 1_000_000.0
    barrier = threading.Barrier(2)
    results: list[list[str]] = []

    def scheduler_process() -> None:
        # Two schedulers ticking at the same instants, as two replicas would.
        for step in range(5):
            barrier.wait()
            results.append(scheduler.tick(redis, now + step * 30))

    threads = [threading.Thread(target=scheduler_process) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # Slots at 0, 60 and 120 s are due within 0..120 s: three runs, whatever the two schedulers did.
    assert sum(len(r) for r in results) == 3
    assert JobRun.objects.filter(name="test_echo").count() == 3


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("one_schedule")
def test_a_restarted_scheduler_does_not_run_early():
    redis = queue.rq_connection()
    assert scheduler.tick(redis, 5_000.0) == ["test_echo"]
    # A restart keeps nothing in memory: the due time lives in Redis.
    assert scheduler.tick(redis, 5_010.0) == []
    assert scheduler.next_due(redis) == {"test_echo": 5_060.0}
    assert scheduler.tick(redis, 5_060.0) == ["test_echo"]
