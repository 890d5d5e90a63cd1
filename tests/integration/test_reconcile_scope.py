"""Discovery's events plan just the names they changed (records.plan_scope), and the whole zone whenever that
is not safe: the changed names unknown (Redis lost them), a change set waiting for review. Real Redis, real
jobs, PostgreSQL, moto."""

from __future__ import annotations

import pytest
import redis as redis_lib
from django.conf import settings as django_settings

from clusters.watch import endpoints_changed
from records import debounce
from records.models import ChangeSet, Zone
from tests.fixtures.zones import import_zone, publish, write_outside

pytestmark = pytest.mark.django_db(transaction=True)

NAMES = {f"n{i}.example.com": f"203.0.113.{i + 1}" for i in range(30)}


@pytest.fixture
def zone(root, route53, moto_service, settings, run_jobs) -> Zone:
    settings.RECONCILE_DEBOUNCE_MS = 0  # every event reconciles at once: one change set per event here
    zone = import_zone(root, route53, moto_service.url, "example.com", approval_mode="flagged")
    cluster = publish(NAMES)
    endpoints_changed(cluster.id, set(NAMES))
    run_jobs()
    first = ChangeSet.objects.get(zone=zone)
    assert first.status == ChangeSet.Status.APPLIED, first.error
    # The zone's first plan: what changed before it is not known, so it is of the whole zone.
    assert first.scope == []
    return Zone.objects.get(id=zone.id)


def _change(name: str, ip: str) -> None:
    cluster = publish({name: ip})
    endpoints_changed(cluster.id, {name})


def _served(route53, zone: Zone, name: str) -> list[str]:
    got = route53.list_resource_record_sets(
        HostedZoneId=zone.provider_zone_id, StartRecordName=name, StartRecordType="A", MaxItems="1"
    )["ResourceRecordSets"]
    assert got and got[0]["Name"] == name + ".", got
    return [r["Value"] for r in got[0]["ResourceRecords"]]


def test_a_change_to_one_name_plans_that_name_only(zone, route53, run_jobs, client, root):
    _change("n5.example.com", "198.51.100.5")
    run_jobs()
    cs = ChangeSet.objects.filter(zone=zone).latest("id")
    assert cs.status == ChangeSet.Status.APPLIED, cs.error
    assert cs.scope == ["n5.example.com."]
    # The change set's page says what was planned: the changed name, not the whole zone.
    client.force_login(root)
    page = client.get(f"/changes/{cs.id}/").content.decode()
    assert "the 1 name discovery changed: n5.example.com." in page
    first = ChangeSet.objects.filter(zone=zone).earliest("id")
    assert "<dt>Planned</dt><dd>the whole zone</dd>" in client.get(f"/changes/{first.id}/").content.decode()
    # The plan's endpoints are the changed name's; one update (its record and its ownership TXT).
    assert [e["dnsName"] for e in ChangeSet.objects.get(id=cs.id).desired] == ["n5.example.com"]
    assert [(c.kind, c.name) for c in cs.changes.all()] == [("update", "n5.example.com.")]
    # The share of owned records it updates is counted against the whole zone's 30, not the 1 planned.
    assert not cs.needs_approval, cs.approval_reasons
    assert cs.summary["owned"] == 30
    assert _served(route53, zone, "n5.example.com") == ["198.51.100.5"]
    # What was applied is the old at every other name, the new at n5: the next plans start from that.
    applied = {e["dnsName"]: e["targets"] for e in Zone.objects.get(id=zone.id).applied_desired}
    assert len(applied) == 30
    assert applied["n5.example.com"] == ["198.51.100.5"]
    assert applied["n6.example.com"] == ["203.0.113.7"]
    # A later whole-zone plan agrees that nothing is left to do.
    _restarted_redis(zone)
    _change("n6.example.com", "203.0.113.7")  # no change: a whole-zone plan, empty
    run_jobs()
    assert ChangeSet.objects.filter(zone=zone).count() == 2


def test_a_deleted_name_is_deleted_and_nothing_else(zone, route53, run_jobs):
    from records.models import Endpoint

    Endpoint.objects.filter(dns_name="n7.example.com").delete()
    endpoints_changed(Endpoint.objects.first().cluster_id, {"n7.example.com"})
    run_jobs()
    cs = ChangeSet.objects.filter(zone=zone).latest("id")
    assert cs.scope == ["n7.example.com."]
    assert [(c.kind, c.name) for c in cs.changes.all()] == [("delete", "n7.example.com.")]
    assert cs.status == ChangeSet.Status.APPLIED, cs.error
    names = {
        r["Name"]
        for r in route53.list_resource_record_sets(HostedZoneId=zone.provider_zone_id)["ResourceRecordSets"]
        if r["Type"] == "A"
    }
    assert "n7.example.com." not in names and len(names) == 29


def _restarted_redis(zone: Zone) -> None:
    """What the reconcile sees after Redis restarted: the names' stamp is of another run of the server (the
    writes of its last second may be lost, even with its append-only file)."""
    redis = redis_lib.Redis.from_url(django_settings.REDIS_URL)
    key = f"{debounce.NAMES_PREFIX}{zone.id}:run"
    assert redis.get(key) == redis.info("server")["run_id"].encode()  # stamped by the whole-zone plan
    redis.set(key, "the-run-before-a-restart")


def test_the_whole_zone_is_planned_after_redis_restarted(zone, run_jobs):
    # n8's event was noted in the last second before Redis stopped, and lost with it.
    _restarted_redis(zone)
    from records.models import Endpoint

    # n8 changed in the database while its event was lost; n9's event arrives.
    Endpoint.objects.filter(dns_name="n8.example.com").update(targets=["198.51.100.8"])
    _change("n9.example.com", "198.51.100.9")
    run_jobs()
    cs = ChangeSet.objects.filter(zone=zone).latest("id")
    assert cs.scope == []
    assert sorted(c.name for c in cs.changes.all()) == ["n8.example.com.", "n9.example.com."]
    assert cs.status == ChangeSet.Status.APPLIED, cs.error
    # and the next event is of its name alone again
    _change("n10.example.com", "198.51.100.10")
    run_jobs()
    assert ChangeSet.objects.filter(zone=zone).latest("id").scope == ["n10.example.com."]


def test_a_change_set_waiting_for_review_is_planned_again_whole(zone, run_jobs):
    # A private address in a public zone needs a person: that change set waits. Planning the next event's
    # name alone would supersede it with a change set without its change.
    _change("n11.example.com", "10.0.0.11")
    run_jobs()
    waiting = ChangeSet.objects.filter(zone=zone).latest("id")
    assert waiting.status == ChangeSet.Status.PENDING and waiting.needs_approval
    _change("n12.example.com", "198.51.100.12")
    run_jobs()
    cs = ChangeSet.objects.filter(zone=zone).latest("id")
    assert cs.scope == []
    assert sorted(c.name for c in cs.changes.all()) == ["n11.example.com.", "n12.example.com."]
    waiting.refresh_from_db()
    assert waiting.status == ChangeSet.Status.SUPERSEDED


def test_a_reconcile_whose_names_were_planned_already_does_nothing(zone, run_jobs):
    from dnsportal.queue import enqueue

    _change("n13.example.com", "198.51.100.13")
    run_jobs()
    before = ChangeSet.objects.filter(zone=zone).count()
    # A second reconcile of the same events (the trailing edge, after the leading one planned them all).
    enqueue("zone_reconcile", zone_id=zone.id, cause="discovery", scoped=True)
    run_jobs()
    assert ChangeSet.objects.filter(zone=zone).count() == before
    assert not Zone.objects.get(id=zone.id).last_reconcile_error


@pytest.fixture
def proxied(root, route53, fault_proxy, settings, run_jobs) -> Zone:
    """The zone of the tests above, reached through the counting proxy, its stored state always "old"."""
    settings.RECONCILE_DEBOUNCE_MS = 0
    zone = import_zone(root, route53, fault_proxy.url, "example.org", approval_mode="flagged")
    names = {f"m{i}.example.org": f"203.0.113.{i + 1}" for i in range(30)}
    endpoints_changed(publish(names).id, set(names))
    run_jobs()
    assert ChangeSet.objects.get(zone=zone).status == ChangeSet.Status.APPLIED
    settings.APPLY_STATE_MAX_AGE_S = 0  # every apply finds the stored state older than it trusts
    return Zone.objects.get(id=zone.id)


def test_an_old_stored_state_is_checked_at_the_changed_names_only(proxied, fault_proxy, run_jobs):
    read_at = proxied.state_read_at
    fault_proxy.reset_counters()
    _change("m3.example.org", "198.51.100.3")
    run_jobs()
    cs = ChangeSet.objects.filter(zone=proxied).latest("id")
    assert cs.status == ChangeSet.Status.APPLIED, cs.error
    # The record's name and its ownership TXT's name, read from where each starts (one page may hold both):
    # the zone is not read whole, and its stored state keeps its time of reading.
    assert 1 <= fault_proxy.requests["ListResourceRecordSets"] <= 2
    assert Zone.objects.get(id=proxied.id).state_read_at == read_at


def test_a_name_changed_behind_the_portals_back_makes_the_apply_read_the_zone(proxied, route53, run_jobs):
    read_at = proxied.state_read_at
    write_outside(route53, proxied, "m4.example.org.", "192.0.2.44")
    _change("m4.example.org", "198.51.100.4")
    run_jobs()
    zone = Zone.objects.get(id=proxied.id)
    assert zone.state_read_at > read_at  # read whole before applying, as for any plan on an old state
    # and what the zone served (not what was stored) is what the change set replaced
    cs = ChangeSet.objects.filter(zone=proxied).latest("id")
    [change] = cs.changes.filter(kind="update")
    assert "192.0.2.44" in str(change.before)


def test_a_new_name_on_an_old_stored_state_needs_no_read(proxied, fault_proxy, run_jobs):
    # Route53 itself refuses a CREATE where a record set is: nothing to read before sending one.
    fault_proxy.reset_counters()
    _change("fresh.example.org", "198.51.100.31")
    run_jobs()
    cs = ChangeSet.objects.filter(zone=proxied).latest("id")
    assert cs.status == ChangeSet.Status.APPLIED, cs.error
    assert [c.kind for c in cs.changes.all()] == ["create"]
    assert fault_proxy.requests["ListResourceRecordSets"] == 0


def test_a_create_where_someone_made_the_record_meanwhile_is_refused_not_overwritten(
    proxied, route53, fault_proxy, run_jobs
):
    fault_proxy.route53_create_rule = True  # as Route53 does (moto would overwrite)
    write_outside(route53, proxied, "late.example.org.", "192.0.2.77", action="CREATE", ttl=60)
    _change("late.example.org", "198.51.100.32")
    run_jobs()
    cs = ChangeSet.objects.filter(zone=proxied).latest("id")
    assert cs.status == ChangeSet.Status.FAILED
    assert "late.example.org" in cs.error
    got = route53.list_resource_record_sets(
        HostedZoneId=proxied.provider_zone_id, StartRecordName="late.example.org.", MaxItems="1"
    )["ResourceRecordSets"][0]
    assert got["ResourceRecords"] == [{"Value": "192.0.2.77"}]  # theirs, untouched
    # The zone is read whole at its next plan, which sees the record is not the portal's.
    assert not Zone.objects.get(id=proxied.id).state_valid
