"""The drift check between full reads: the nameservers' answers and the record count, not the zone read.

moto's nameservers cannot be asked over DNS, so the zone is mirrored into two real PowerDNS servers (the
zone's nameserver override), as Route53's own nameservers would serve it; the portal reaches moto through
the counting proxy, so every Route53 request of the check is counted.
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from dnsportal.queue import enqueue
from records import changesets
from records.models import ChangeSet, Zone
from records.recordset import normalize_name
from tests.fixtures.zones import import_zone, publish, write_outside

pytestmark = pytest.mark.django_db(transaction=True)

LIST = "ListResourceRecordSets"
GET_ZONE = "GetHostedZone"


@pytest.fixture
def zone(root, route53, fault_proxy, dns_zone, pdns_servers, settings) -> Zone:
    """A moto zone reached through the counting proxy, answered by two PowerDNS servers."""
    settings.VERIFY_PROPAGATION_TIMEOUT_S = 1  # the mirror is filled after each apply: do not wait for it
    ns = ",".join(f"127.0.0.1:{s.dns_port}" for s in pdns_servers)
    return import_zone(
        root,
        route53,
        fault_proxy.url,
        dns_zone.name.rstrip("."),
        approval_mode="flagged",  # the setup applies at once; each test then wants a person's review
        nameserver_override=ns,
    )


def mirror(route53: Any, zone: Zone, dns_zone: Any) -> None:
    """Serve on the PowerDNS servers what moto holds (read from moto directly, not through the proxy)."""
    pages = route53.get_paginator("list_resource_record_sets").paginate(HostedZoneId=zone.provider_zone_id)
    rrsets = []
    for page in pages:
        for rs in page["ResourceRecordSets"]:
            if rs["Type"] in ("SOA", "NS") or rs.get("SetIdentifier") or "AliasTarget" in rs:
                continue
            values = [r["Value"] for r in rs["ResourceRecords"]]
            rrsets.append((normalize_name(rs["Name"]), rs["Type"], rs["TTL"], values))
    dns_zone.replace(rrsets)


def setup_applied(zone: Zone, records: dict[str, str], run_jobs, **publish_kwargs: Any) -> None:
    publish(records, **publish_kwargs)
    enqueue("zone_reconcile", zone_id=zone.id)
    run_jobs()
    assert not ChangeSet.objects.filter(zone=zone).exclude(status="applied").exists()


def drift_check_after(zone: Zone, fault_proxy, run_jobs, *, seconds: int) -> dict[str, int]:
    """Let `seconds` pass since the last check (the scheduler's tick runs the dispatcher), run the jobs;
    the Route53 requests they made."""
    Zone.objects.filter(id=zone.id).update(last_drift_check_at=timezone.now() - timedelta(seconds=seconds))
    fault_proxy.reset_counters()
    enqueue("zones_drift_check")
    run_jobs()
    return dict(fault_proxy.requests)


def test_a_changed_simple_record_is_planned_within_the_drift_interval_without_reading_the_zone(
    zone, dns_zone, route53, fault_proxy, run_jobs, bob, client
):
    host = dns_zone.fqdn("shop")
    setup_applied(zone, {host.rstrip("."): "203.0.113.10"}, run_jobs)
    Zone.objects.filter(id=zone.id).update(approval_mode="all")
    mirror(route53, zone, dns_zone)
    # Someone changes the portal's record in Route53; its nameservers answer the new value.
    write_outside(route53, zone, host, "192.0.2.1")
    mirror(route53, zone, dns_zone)

    zone.refresh_from_db()
    assert zone.drift_interval <= 600  # the next check comes within 10 minutes of any change
    started = time.monotonic()
    requests = drift_check_after(zone, fault_proxy, run_jobs, seconds=zone.drift_interval)
    assert time.monotonic() - started < 30

    assert requests.get(LIST, 0) == 0, requests
    assert requests == {GET_ZONE: 1}, requests
    cs = ChangeSet.objects.get(zone=zone, status="pending")
    assert cs.cause == "drift"
    change = cs.changes.get()
    assert change.drift and any("changed outside the portal" in r for r in change.reasons), change.reasons
    assert change.before["ResourceRecords"] == [{"Value": "192.0.2.1"}]
    assert change.after["ResourceRecords"] == [{"Value": "203.0.113.10"}]
    assert any("nameservers' answers" in n and "192.0.2.1" in n for n in cs.notes), cs.notes
    zone.refresh_from_db()
    assert "192.0.2.1" in zone.drift_found and "without reading the zone" in zone.drift_found
    assert zone.drift_found_at is not None
    # Where the person looks: the zone page says what was found how; the change set says it too.
    client.force_login(bob)
    page = client.get(f"/zones/{zone.id}/").content.decode()
    assert "Drift found" in page and "answers 192.0.2.1 (TTL 300), stored 203.0.113.10" in page
    assert "planned from the answers, without reading the zone" in page
    page = client.get(f"/changes/{cs.id}/").content.decode()
    assert "Drift found by the nameservers&#x27; answers" in page, page

    # A second person approves: the record is restored in Route53, planned from what DNS answered.
    changesets.changeset_approve(changeset_id=cs.id, approver=bob)
    run_jobs()
    cs.refresh_from_db()
    assert cs.status == "applied", (cs.status, cs.error)
    got = route53.list_resource_record_sets(
        HostedZoneId=zone.provider_zone_id, StartRecordName=host, StartRecordType="A", MaxItems="1"
    )["ResourceRecordSets"][0]
    assert got["ResourceRecords"] == [{"Value": "203.0.113.10"}]


def test_nothing_changed_costs_one_get_hosted_zone_and_no_read(
    zone, dns_zone, route53, fault_proxy, run_jobs
):
    setup_applied(zone, {dns_zone.fqdn("a").rstrip("."): "203.0.113.10"}, run_jobs)
    mirror(route53, zone, dns_zone)

    requests = drift_check_after(zone, fault_proxy, run_jobs, seconds=zone.drift_interval)
    assert requests == {GET_ZONE: 1}, requests
    zone.refresh_from_db()
    assert "2 record sets asked of 2 nameservers: every answer as stored" in zone.drift_check_summary
    assert f"record count {zone.records.count()} as stored" in zone.drift_check_summary
    assert not ChangeSet.objects.filter(zone=zone, cause="drift").exists()
    # Before the interval is up, nothing at all.
    assert drift_check_after(zone, fault_proxy, run_jobs, seconds=zone.drift_interval - 60) == {}


def test_a_weighted_record_is_left_to_the_hourly_read(zone, dns_zone, route53, fault_proxy, run_jobs):
    simple, weighted = dns_zone.fqdn("a"), dns_zone.fqdn("w")
    setup_applied(zone, {simple.rstrip("."): "203.0.113.10"}, run_jobs)
    setup_applied(
        zone,
        {weighted.rstrip("."): "203.0.113.20"},
        run_jobs,
        cluster_name="eks-us-east-1",
        set_identifier="eks",
        properties={"aws/weight": "80"},
    )
    Zone.objects.filter(id=zone.id).update(approval_mode="all")
    mirror(route53, zone, dns_zone)
    write_outside(route53, zone, weighted, "192.0.2.2", SetIdentifier="eks", Weight=80)
    # Resolvers get one weighted set per query: whatever they answer proves nothing about the others. (If the
    # check asked for it, this answer would differ from the stored one.)
    dns_zone.replace([(weighted, "A", 300, ["192.0.2.2"])])

    requests = drift_check_after(zone, fault_proxy, run_jobs, seconds=zone.drift_interval)
    assert requests == {GET_ZONE: 1}, requests
    zone.refresh_from_db()
    assert "2 record sets asked" in zone.drift_check_summary, zone.drift_check_summary
    assert not ChangeSet.objects.filter(zone=zone, cause="drift").exists()

    # The safety interval is up: the next check is a full read, which finds it.
    Zone.objects.filter(id=zone.id).update(
        state_read_at=timezone.now() - timedelta(seconds=zone.full_read_interval)
    )
    requests = drift_check_after(zone, fault_proxy, run_jobs, seconds=zone.drift_interval)
    assert requests.get(LIST, 0) >= 1 and GET_ZONE not in requests, requests
    cs = ChangeSet.objects.get(zone=zone, cause="drift", status="pending")
    change = cs.changes.get()
    assert change.set_identifier == "eks" and change.drift
    assert change.after["ResourceRecords"] == [{"Value": "203.0.113.20"}]


def test_a_record_count_that_moved_reads_the_zone(zone, dns_zone, route53, fault_proxy, run_jobs):
    setup_applied(zone, {dns_zone.fqdn("a").rstrip("."): "203.0.113.10"}, run_jobs)
    mirror(route53, zone, dns_zone)
    # A record added outside the portal (nobody's): no owned record answers differently.
    write_outside(route53, zone, dns_zone.fqdn("new"), "192.0.2.3")

    requests = drift_check_after(zone, fault_proxy, run_jobs, seconds=zone.drift_interval)
    assert requests.get(GET_ZONE) == 1 and requests.get(LIST, 0) >= 1, requests
    zone.refresh_from_db()
    stored = zone.records.count()
    assert zone.drift_found.startswith(f"record count: the zone holds {stored} record sets"), zone.drift_found
    assert zone.records.filter(name=dns_zone.fqdn("new"), ownership="unowned").exists()


def test_unreachable_nameservers_fall_back_to_a_read(zone, dns_zone, route53, fault_proxy, run_jobs):
    setup_applied(zone, {dns_zone.fqdn("a").rstrip("."): "203.0.113.10"}, run_jobs)
    # Nothing listens there (the discard port): no nameserver answers.
    Zone.objects.filter(id=zone.id).update(nameserver_override="127.0.0.1:9")

    started = time.monotonic()
    requests = drift_check_after(zone, fault_proxy, run_jobs, seconds=zone.drift_interval)
    assert time.monotonic() - started < 30
    assert requests.get(GET_ZONE) == 1 and requests.get(LIST, 0) >= 1, requests
    zone.refresh_from_db()
    assert "no nameserver answered" in zone.drift_check_summary, zone.drift_check_summary
