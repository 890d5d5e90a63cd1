"""Discovery's events and a zone's reconciles: at once in a quiet zone, a burst coalesced into one more at the
window's end, nothing more when nothing came in (records/debounce.py). Real Redis, real jobs, moto."""

from __future__ import annotations

import threading
import time

import django_rq
import pytest
import redis as redis_lib
from django.conf import settings as django_settings

from clusters.watch import endpoints_changed
from dnsportal.models import JobRun
from records import debounce
from records.models import ChangeSet, Zone
from tests.fixtures.zones import import_zone, publish

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def zone(root, route53, moto_service) -> Zone:
    return import_zone(root, route53, moto_service.url, "example.com", approval_mode="flagged")


def _reconciles() -> list[JobRun]:
    return list(JobRun.objects.filter(name="zone_reconcile").order_by("id"))


def _change(name: str, ip: str) -> None:
    """What the watch process does on an event: store the endpoint, signal the changed name."""
    cluster = publish({name: ip})
    endpoints_changed(cluster.id, {name})


def _until_gone(*keys: str, timeout: float = 10) -> None:
    """Until these Redis keys have expired: the window (or its trailing part) is over by Redis's clock."""
    redis = redis_lib.Redis.from_url(django_settings.REDIS_URL)
    deadline = time.monotonic() + timeout
    while redis.exists(*keys):
        assert time.monotonic() < deadline, f"{keys} still there after {timeout} s"
        time.sleep(0.01)


def _created(cs: ChangeSet) -> list[str]:
    return sorted(c.name for c in cs.changes.filter(kind="create"))


def test_an_isolated_change_in_a_quiet_zone_is_reconciled_at_once(zone, settings, run_jobs):
    settings.RECONCILE_DEBOUNCE_MS = 5000
    _change("solo.example.com", "203.0.113.1")
    [run] = _reconciles()
    # Queued to plan now: not scheduled for later, and not told to wait for the window's end.
    assert run.kwargs["not_before"] is None
    assert django_rq.get_queue("dns").get_job_ids() == [f"run-{run.id}"]
    run_jobs()
    cs = ChangeSet.objects.get(zone=zone)
    assert cs.status == ChangeSet.Status.APPLIED
    assert _created(cs) == ["solo.example.com."]


def test_a_burst_in_the_window_gives_one_reconcile_now_and_one_at_its_end(zone, settings, run_jobs):
    # A window far longer than the burst takes even on a loaded machine, so the burst surely falls in it.
    settings.RECONCILE_DEBOUNCE_MS = 5000
    _change("burst0.example.com", "203.0.113.1")
    run_jobs()  # the leading reconcile: the burst's first event only
    leading = ChangeSet.objects.get(zone=zone)
    assert _created(leading) == ["burst0.example.com."]
    for i in range(1, 20):
        _change(f"burst{i}.example.com", f"203.0.113.{i + 1}")
    first, trailing = _reconciles()
    assert first.kwargs["not_before"] is None
    # One reconcile for the other 19 events, planning at the window's end.
    assert trailing.kwargs["not_before"] > first.created_at.timestamp()
    run_jobs()
    assert len(_reconciles()) == 2
    assert ChangeSet.objects.filter(zone=zone).count() == 2
    last = ChangeSet.objects.filter(zone=zone).latest("id")
    assert last.status == ChangeSet.Status.APPLIED
    assert _created(last) == sorted(f"burst{i}.example.com." for i in range(1, 20))


def test_no_reconcile_at_the_windows_end_when_nothing_came_in_during_it(zone, settings, run_jobs):
    settings.RECONCILE_DEBOUNCE_MS = 300
    _change("quiet.example.com", "203.0.113.1")
    run_jobs()
    _until_gone(f"{debounce.KEY_PREFIX}{zone.id}")  # the window ends with nothing in it
    assert len(_reconciles()) == 1
    assert not django_rq.get_queue("dns").get_job_ids()
    assert not django_rq.get_queue("dns").scheduled_job_registry.get_job_ids()
    # The zone is quiet again: the next event reconciles at once.
    _change("again.example.com", "203.0.113.2")
    _first, second = _reconciles()
    assert second.kwargs["not_before"] is None
    run_jobs()
    assert _created(ChangeSet.objects.filter(zone=zone).latest("id")) == ["again.example.com."]


def test_a_reconcile_at_the_windows_end_opens_the_next_window(zone, settings):
    # Events keep coming: after the trailing reconcile, the next event waits for the next window's end
    # instead of reconciling at once (one reconcile per window while the zone is busy).
    settings.RECONCILE_DEBOUNCE_MS = 1000
    redis = redis_lib.Redis.from_url(django_settings.REDIS_URL)
    assert debounce.decide(redis, zone.id, 1000).leading
    trailing = debounce.decide(redis, zone.id, 1000)
    assert trailing.enqueue and 0 < trailing.delay_s <= 1
    assert not debounce.decide(redis, zone.id, 1000).enqueue
    _until_gone(f"{debounce.KEY_PREFIX}{zone.id}:trailing")  # the trailing reconcile's time has come
    after = debounce.decide(redis, zone.id, 1000)
    assert after.enqueue and not after.leading and 0.5 < after.delay_s <= 1


def test_watch_processes_deciding_at_once_give_one_leading_and_one_trailing_reconcile(zone):
    # Several watch processes (or threads), each with its own connection, all seeing events of one zone.
    decisions: list[debounce.Decision] = []
    lock = threading.Lock()
    start = threading.Barrier(8)

    def events() -> None:
        redis = redis_lib.Redis.from_url(django_settings.REDIS_URL)
        start.wait()
        for _ in range(25):
            d = debounce.decide(redis, zone.id, 10_000)
            with lock:
                decisions.append(d)

    threads = [threading.Thread(target=events) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(decisions) == 200
    assert sum(d.leading for d in decisions) == 1
    assert sum(d.enqueue and not d.leading for d in decisions) == 1


def test_a_cluster_first_listed_notes_every_one_of_its_names(zone):
    # A new cluster's first list tells all its names in one event: 20,000 of them in one call to the script.
    redis = redis_lib.Redis.from_url(django_settings.REDIS_URL)
    names = [f"svc-{i}.example.com" for i in range(20_000)]
    assert debounce.decide(redis, zone.id, 1000, names).leading
    assert debounce.changed_names(redis, zone.id).names == frozenset(names)
