"""Review: four eyes, exactly once with racing approvers and a killed worker, stale plans re-planned."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import close_old_connections, connection
from django.utils import timezone

from dnsportal.errors import PortalError
from dnsportal.models import AuditEntry, JobRun
from dnsportal.queue import enqueue
from records import changesets, services
from records.models import ChangeSet, Endpoint, ProviderAccount, Zone
from tests.fixtures.people import make_user
from tests.fixtures.zones import import_zone, publish

pytestmark = pytest.mark.django_db(transaction=True)
ROOT = Path(__file__).resolve().parents[2]


def _rrsets(route53, zone_id: str) -> dict[tuple[str, str, str], dict]:
    out = {}
    for page in route53.get_paginator("list_resource_record_sets").paginate(HostedZoneId=zone_id):
        for rs in page["ResourceRecordSets"]:
            key = (rs["Name"], rs["Type"], rs.get("SetIdentifier", ""))
            assert key not in out, f"duplicate record set {key}"
            out[key] = rs
    return out


@pytest.fixture
def zone(root, route53, fault_proxy) -> Zone:
    """review.example.com through the (counting, fault-free) proxy; every change set needs a person."""
    return import_zone(root, route53, fault_proxy.url, "review.example.com")


def reconcile_now(user, zone: Zone, run_jobs) -> ChangeSet:
    services.zone_reconcile_request(actor=user, zone_id=zone.id)
    run_jobs()
    return ChangeSet.objects.filter(zone=zone).order_by("-id").first()


def test_the_requester_cannot_approve_and_a_viewer_cannot_either(client, zone, bob, carol, run_jobs, route53):
    dave = make_user("dave", "operator", "approver")
    publish({"app.review.example.com": "203.0.113.10"})
    cs = reconcile_now(dave, zone, run_jobs)
    assert (cs.status, cs.requested_by) == ("pending", dave)

    client.force_login(dave)
    refused = client.post(f"/changes/{cs.id}/approve/")
    assert refused.status_code == 403
    assert "A second person must approve this change set: you requested it." in refused.content.decode()
    client.force_login(carol)
    assert client.post(f"/changes/{cs.id}/approve/").status_code == 403
    cs.refresh_from_db()
    assert cs.status == "pending"

    client.force_login(bob)
    page = client.get(f"/changes/{cs.id}/").content.decode()
    assert "app.review.example.com." in page and "203.0.113.10" in page and "Approve and apply" in page
    assert client.post(f"/changes/{cs.id}/approve/", {"comment": "looks right"}).status_code == 302
    run_jobs()
    cs.refresh_from_db()
    assert (cs.status, cs.approved_by, cs.review_comment) == ("applied", bob, "looks right")
    assert ("app.review.example.com.", "A", "") in _rrsets(route53, zone.provider_zone_id)
    actions = list(
        AuditEntry.objects.filter(object_type="records.changeset", object_id=str(cs.id))
        .order_by("id")
        .values_list("action", "actor_name")
    )
    assert actions == [
        ("changeset.create", "dave"),
        ("changeset.approved", "bob"),
        ("changeset.applying", "system"),
        ("changeset.applied", "system"),
    ]


def test_a_rejection_needs_a_reason_and_is_final(client, zone, alice, bob, run_jobs):
    publish({"r.review.example.com": "203.0.113.11"})
    cs = reconcile_now(alice, zone, run_jobs)
    client.force_login(bob)
    assert client.post(f"/changes/{cs.id}/reject/", {"comment": ""}).status_code == 422
    assert client.post(f"/changes/{cs.id}/reject/", {"comment": "wrong cluster"}).status_code == 302
    cs.refresh_from_db()
    assert (cs.status, cs.review_comment) == ("rejected", "wrong cluster")
    again = client.post(f"/changes/{cs.id}/approve/")
    assert again.status_code == 422 and "already rejected" in again.content.decode()


def test_deletes_need_an_explicit_confirmation(client, zone, alice, bob, run_jobs):
    Zone.objects.filter(id=zone.id).update(approval_mode="flagged")
    cluster = publish({"del.review.example.com": "203.0.113.12"})
    reconcile_now(alice, zone, run_jobs)  # applied automatically (nothing flagged)
    Endpoint.objects.filter(cluster=cluster).delete()
    Zone.objects.filter(id=zone.id).update(approval_mode="all")
    cs = reconcile_now(alice, zone, run_jobs)
    assert cs.summary["delete"] == 1 and cs.status == "pending"
    client.force_login(bob)
    refused = client.post(f"/changes/{cs.id}/approve/")
    assert refused.status_code == 422 and "confirm the deletes" in refused.content.decode()
    assert client.post(f"/changes/{cs.id}/approve/", {"confirm_deletes": "1"}).status_code == 302


def test_ten_approvers_and_three_workers_give_one_apply(zone, alice, bob, run_jobs, fault_proxy, route53):
    publish({f"c{i}.review.example.com": f"203.0.113.{i + 20}" for i in range(5)})
    cs = reconcile_now(alice, zone, run_jobs)
    approvers = [bob] + [make_user(f"approver{i}", "approver") for i in range(9)]
    outcomes: list[str] = []
    barrier = threading.Barrier(len(approvers))

    def approve(user) -> None:
        close_old_connections()
        barrier.wait()
        try:
            changesets.changeset_approve(changeset_id=cs.id, approver=user)
            outcomes.append("approved")
        except PortalError as exc:
            outcomes.append(str(exc))
        finally:
            connection.close()

    threads = [threading.Thread(target=approve, args=(u,)) for u in approvers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes.count("approved") == 1
    assert all("already approved" in o for o in outcomes if o != "approved")
    # Double clicks and redeliveries: three apply jobs for the one change set, three real worker processes.
    enqueue("changeset_apply", changeset_id=cs.id)
    enqueue("changeset_apply", changeset_id=cs.id)
    fault_proxy.reset_counters()
    workers = [_worker(Path(f"/tmp/review-worker-{i}.log"), burst=True) for i in range(3)]
    for w in workers:
        assert w.wait(120) == 0
    cs.refresh_from_db()
    assert cs.status == "applied"
    assert fault_proxy.requests["ChangeResourceRecordSets"] == 1
    accepted = fault_proxy.accepted_changes()
    assert len(accepted) == len(set(accepted)) == 10  # 5 records and their 5 TXTs, once each
    runs = JobRun.objects.filter(name="changeset_apply")
    assert runs.count() == 3 and runs.filter(status="done").count() == 3
    assert AuditEntry.objects.filter(action="changeset.applying", object_id=str(cs.id)).count() == 1


def _worker(log_path: Path, *, burst: bool, extra_env: dict | None = None) -> subprocess.Popen:
    db = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "REDIS_URL": settings.REDIS_URL,
        **(extra_env or {}),
    }
    args = [sys.executable, "manage.py", "rqworker", "dns", "default", "--worker-class", "rq.SimpleWorker"]
    if burst:
        args.append("--burst")
    with open(log_path, "wb") as log:
        return subprocess.Popen(args, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)


def test_a_worker_killed_mid_apply_is_completed_by_the_next_without_duplicates(
    zone, alice, bob, run_jobs, fault_proxy, route53, tmp_path
):
    # Enough changes for several requests, sent slowly (1 request/s for this account), so the kill lands
    # between two of them.
    ProviderAccount.objects.filter(id=zone.account_id).update(rate=1, burst=1)
    publish({f"k{i:04d}.review.example.com": f"198.51.100.{i % 250 + 1}" for i in range(1200)})
    cs = reconcile_now(alice, zone, run_jobs)
    assert cs.changes.count() == 1200
    changesets.changeset_approve(changeset_id=cs.id, approver=bob)
    fault_proxy.reset_counters()
    worker = _worker(tmp_path / "killed.log", burst=False, extra_env={"DNSPORTAL_APPLY_LEASE_S": "1"})
    try:
        deadline = time.monotonic() + 60
        while not fault_proxy.accepted_changes():
            assert time.monotonic() < deadline, (tmp_path / "killed.log").read_text()[-3000:]
            time.sleep(0.01)
        worker.send_signal(signal.SIGKILL)  # mid-apply: after the first request, before the others
        worker.wait(10)
    finally:
        if worker.poll() is None:
            worker.kill()
    partial = len(fault_proxy.accepted_changes())
    assert 0 < partial < 2400
    cs.refresh_from_db()
    assert cs.status == "applying"  # the dead worker's claim, until its lease runs out
    ProviderAccount.objects.filter(id=zone.account_id).update(rate=200, burst=200)
    deadline = time.monotonic() + 10
    # The dead worker's 1 s lease runs out.
    while ChangeSet.objects.filter(id=cs.id, lease_until__gte=timezone.now()).exists():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    enqueue("changesets_resume")
    run_jobs()
    cs.refresh_from_db()
    assert cs.status == "applied", cs.error
    accepted = fault_proxy.accepted_changes()
    assert len(accepted) == len(set(accepted)) == 2400  # every record and TXT exactly once
    rr = _rrsets(route53, zone.provider_zone_id)
    assert all((f"k{i:04d}.review.example.com.", "A", "") in rr for i in range(1200))


def test_an_approved_change_set_whose_apply_run_was_lost_is_applied_by_the_sweep(
    zone, alice, bob, run_jobs, route53, fault_proxy
):
    """bench/soak.py: a change set approved just after PostgreSQL restarted stayed `approved` for good. Its
    apply run failed on the dead connection before claiming it, and nothing runs a failed run again; every
    later reconcile of the zone waited for it."""
    from datetime import timedelta

    import django_rq

    from records.jobs import APPROVED_GRACE_S

    publish({"lost.review.example.com": "203.0.113.50"})
    cs = reconcile_now(alice, zone, run_jobs)
    changesets.changeset_approve(changeset_id=cs.id, approver=bob)
    run = JobRun.objects.get(name="changeset_apply", kwargs__changeset_id=cs.id)
    # As the worker left it: the run ended failed before its first query claimed the change set.
    JobRun.objects.filter(id=run.id).update(
        status="failed", finished_at=timezone.now(), error="OperationalError: the connection is closed"
    )
    django_rq.get_queue("dns").empty()

    enqueue("changesets_resume")
    run_jobs()
    cs.refresh_from_db()
    assert cs.status == "approved"  # within the grace: its run may just have ended
    assert JobRun.objects.filter(name="changeset_apply").count() == 1

    long_ago = timezone.now() - timedelta(seconds=APPROVED_GRACE_S + 1)
    ChangeSet.objects.filter(id=cs.id).update(approved_at=long_ago)
    JobRun.objects.filter(id=run.id).update(created_at=long_ago)
    fault_proxy.reset_counters()
    enqueue("changesets_resume")
    run_jobs()
    cs.refresh_from_db()
    assert cs.status == "applied", cs.error
    assert ("lost.review.example.com.", "A", "") in _rrsets(route53, zone.provider_zone_id)
    assert len(fault_proxy.accepted_changes()) == 2  # the record and its TXT, once

    enqueue("changesets_resume")  # applied: nothing more
    run_jobs()
    assert JobRun.objects.filter(name="changeset_apply").count() == 2


def test_an_approved_change_set_with_a_queued_apply_is_left_to_it(zone, alice, bob, run_jobs):
    from datetime import timedelta

    from records.jobs import APPROVED_GRACE_S, changesets_resume

    publish({"queued.review.example.com": "203.0.113.51"})
    cs = reconcile_now(alice, zone, run_jobs)
    changesets.changeset_approve(changeset_id=cs.id, approver=bob)
    long_ago = timezone.now() - timedelta(seconds=APPROVED_GRACE_S + 1)
    ChangeSet.objects.filter(id=cs.id).update(approved_at=long_ago)
    JobRun.objects.filter(name="changeset_apply").update(created_at=long_ago)  # pending, e.g. a busy queue
    changesets_resume()
    assert JobRun.objects.filter(name="changeset_apply").count() == 1
    run_jobs()
    cs.refresh_from_db()
    assert cs.status == "applied"


def test_a_stale_approved_change_set_is_replanned_not_applied_blindly(
    zone, alice, bob, run_jobs, route53, fault_proxy, settings
):
    settings.APPLY_STATE_MAX_AGE_S = 0  # the approval comes "later": the apply reads the zone first
    Zone.objects.filter(id=zone.id).update(approval_mode="flagged")
    publish({"s.review.example.com": "203.0.113.30"})
    reconcile_now(alice, zone, run_jobs)
    Zone.objects.filter(id=zone.id).update(approval_mode="all")
    publish({"s.review.example.com": "203.0.113.31"})
    cs = reconcile_now(alice, zone, run_jobs)
    assert cs.changes.get().before["ResourceRecords"] == [{"Value": "203.0.113.30"}]
    # Someone changes the record in Route53 while the change set waits for review.
    route53.change_resource_record_sets(
        HostedZoneId=zone.provider_zone_id,
        ChangeBatch={
            "Changes": [
                {
                    "Action": "UPSERT",
                    "ResourceRecordSet": {
                        "Name": "s.review.example.com",
                        "Type": "A",
                        "TTL": 300,
                        "ResourceRecords": [{"Value": "192.0.2.66"}],
                    },
                }
            ]
        },
    )
    fault_proxy.reset_counters()
    changesets.changeset_approve(changeset_id=cs.id, approver=bob)
    run_jobs()
    cs.refresh_from_db()
    assert cs.status == "pending" and cs.approved_by is None
    assert "re-planned" in cs.error
    assert cs.changes.get().before["ResourceRecords"] == [{"Value": "192.0.2.66"}]  # the new diff
    assert fault_proxy.requests["ChangeResourceRecordSets"] == 0  # nothing was sent
    changesets.changeset_approve(changeset_id=cs.id, approver=bob)
    run_jobs()
    cs.refresh_from_db()
    assert cs.status == "applied"
    rr = _rrsets(route53, zone.provider_zone_id)
    assert rr[("s.review.example.com.", "A", "")]["ResourceRecords"] == [{"Value": "203.0.113.31"}]


def test_the_zone_webhook_receives_a_summary_of_each_applied_change_set(zone, alice, bob, run_jobs, webhook):
    Zone.objects.filter(id=zone.id).update(webhook_url=webhook.url)
    publish({"hook.review.example.com": "203.0.113.40"})
    cs = reconcile_now(alice, zone, run_jobs)
    changesets.changeset_approve(changeset_id=cs.id, approver=bob)
    run_jobs()
    received = webhook.received
    assert len(received) == 1
    body = received[0]
    assert body["changeset"] == cs.id and body["status"] == "applied" and body["zone"] == "review.example.com"
    assert body["requested_by"] == "alice" and body["approved_by"] == "bob" and body["summary"]["create"] == 1


def test_adopting_a_record_is_planned_for_a_second_person_who_is_not_the_requester(
    client, zone, bob, route53, run_jobs
):
    dave = make_user("dave", "operator", "approver")
    legacy = {
        "Name": "legacy.review.example.com",
        "Type": "A",
        "TTL": 300,
        "ResourceRecords": [{"Value": "192.0.2.50"}],
    }
    route53.change_resource_record_sets(
        HostedZoneId=zone.provider_zone_id,
        ChangeBatch={"Changes": [{"Action": "CREATE", "ResourceRecordSet": legacy}]},
    )
    publish({"legacy.review.example.com": "203.0.113.50"})
    first = reconcile_now(dave, zone, run_jobs)
    # Not ours: the name is left as it is, and the conflict says why.
    assert first is None or not first.changes.exists()
    record = zone.records.get(name="legacy.review.example.com.", type="A")
    assert record.ownership == "unowned"
    client.force_login(dave)
    assert "Adopt…" in client.get(f"/zones/{zone.id}/").content.decode()
    assert client.post(f"/zones/{zone.id}/adopt/{record.id}/").status_code == 302
    run_jobs()
    cs = ChangeSet.objects.filter(zone=zone, cause="adopt").get()
    assert cs.needs_approval and cs.status == "pending" and cs.requested_by == dave
    assert cs.changes.filter(kind="adopt").exists()
    assert client.post(f"/changes/{cs.id}/approve/").status_code == 403  # dave asked for it
    client.force_login(bob)
    assert client.post(f"/changes/{cs.id}/approve/").status_code == 302
    run_jobs()
    cs.refresh_from_db()
    assert cs.status == "applied"
    rr = _rrsets(route53, zone.provider_zone_id)
    assert rr[("legacy.review.example.com.", "A", "")]["ResourceRecords"] == [{"Value": "203.0.113.50"}]
    assert ("_dnsportal-a.legacy.review.example.com.", "TXT", "") in rr


def test_a_persons_request_during_an_apply_is_kept_whole_for_later(zone, alice, run_jobs):
    publish({"busy.review.example.com": "203.0.113.60"})
    cs = reconcile_now(alice, zone, run_jobs)
    ChangeSet.objects.filter(id=cs.id).update(status="approved")  # an apply is under way
    from records.jobs import zone_reconcile

    zone_reconcile(
        zone_id=zone.id,
        cause="adopt",
        requested_by_id=alice.id,
        full_read=True,
        adopt=[["busy.review.example.com.", "A", ""]],
    )
    later = JobRun.objects.filter(name="zone_reconcile").order_by("-id").first()
    assert later.kwargs == {
        "zone_id": zone.id,
        "cause": "adopt",
        "requested_by_id": alice.id,
        "full_read": True,
        "adopt": [["busy.review.example.com.", "A", ""]],
    }
    assert ChangeSet.objects.filter(zone=zone).count() == 1  # nothing planned from the pre-apply state
