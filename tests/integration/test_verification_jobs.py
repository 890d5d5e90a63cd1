"""Apply → verify against real authoritative nameservers (PowerDNS on loopback), and the measured split."""

from __future__ import annotations

import pytest

from dnsportal.queue import enqueue
from records import services, verification_services
from records.models import ChangeSet, Verification, Zone
from tests.fixtures.zones import import_zone, publish

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def zone(root, route53, moto_service, dns_zone, pdns_servers) -> Zone:
    """The same zone in moto (what the portal writes) and on two PowerDNS servers (what is answered)."""
    ns = ",".join(f"127.0.0.1:{s.dns_port}" for s in pdns_servers)
    return import_zone(
        root,
        route53,
        moto_service.url,
        dns_zone.name.rstrip("."),
        approval_mode="flagged",
        nameserver_override=ns,
    )


def test_an_apply_is_verified_on_every_nameserver(zone, dns_zone, alice, run_jobs):
    host = dns_zone.fqdn("app").rstrip(".")
    dns_zone.replace([("app", "A", 300, ["203.0.113.10"])])  # the nameservers serve what the plan writes
    publish({host: "203.0.113.10"})
    services.zone_reconcile_request(actor=alice, zone_id=zone.id)
    run_jobs()
    cs = ChangeSet.objects.get(zone=zone)
    assert cs.status == "applied"
    v = Verification.objects.get(zone=zone, kind="resolution")
    assert v.status == "ok" and v.changeset_id == cs.id, v.message
    assert v.propagation_seconds is not None and v.propagation_seconds < 5
    assert len(v.nameservers) == 2
    cs.refresh_from_db()
    zone.refresh_from_db()
    assert cs.verification_status == "ok" and zone.last_verification_ok is True


def test_a_nameserver_out_of_step_fails_the_check_marks_zone_and_change_set_and_calls_the_webhook(
    zone, dns_zone, pdns_servers, alice, run_jobs, settings, webhook
):
    settings.VERIFY_PROPAGATION_TIMEOUT_S = 2
    Zone.objects.filter(id=zone.id).update(webhook_url=webhook.url)
    host = dns_zone.fqdn("app").rstrip(".")
    dns_zone.replace([("app", "A", 300, ["203.0.113.10"])], on=[pdns_servers[0]])
    dns_zone.replace([("app", "A", 300, ["192.0.2.9"])], on=[pdns_servers[1]])  # ns2 never got the change
    publish({host: "203.0.113.10"})
    services.zone_reconcile_request(actor=alice, zone_id=zone.id)
    run_jobs()
    v = Verification.objects.get(zone=zone, kind="resolution")
    assert v.status == "failed" and v.propagation_seconds is None
    assert any(
        f":{pdns_servers[1].dns_port}" in d["message"] and "192.0.2.9" in d["message"] for d in v.differences
    ), v.differences
    zone.refresh_from_db()
    assert zone.last_verification_ok is False
    assert ChangeSet.objects.get(zone=zone).verification_status == "failed"
    events = [r["event"] for r in webhook.received]
    assert "verification.failed" in events and "changeset.finished" in events


def test_a_weighted_name_is_measured_against_its_weights(zone, dns_zone, client, alice, run_jobs, settings):
    settings.VERIFY_PROPAGATION_TIMEOUT_S = (
        1  # the LUA record below answers with TTL 0: not this test's point
    )
    host = dns_zone.fqdn("w").rstrip(".")
    publish({host: "203.0.113.10"}, "eks-us-east-1", set_identifier="eks", properties={"aws/weight": "80"})
    publish({host: "198.51.100.10"}, "k3s-edge", set_identifier="k3s", properties={"aws/weight": "20"})
    enqueue("zone_reconcile", zone_id=zone.id)
    run_jobs()
    assert ChangeSet.objects.get(zone=zone).status == "applied"
    # The nameservers split as Route53 would: 80/20 by weight.
    dns_zone.replace([("w", "LUA", 0, ["A \"pickwrandom({{80,'203.0.113.10'},{20,'198.51.100.10'}})\""])])
    verification_services.distribution_request(actor=alice, zone_id=zone.id, hostname=host)
    run_jobs()
    good = Verification.objects.filter(kind="distribution").latest("id")
    assert good.status == "ok", good.message
    assert good.message.startswith("consistent with 80/20")
    assert good.report["queries"] >= 1000
    client.force_login(alice)
    page = client.get(f"/endpoints/host/{host}/").content.decode()
    assert "<svg" in page, (
        page[page.find("Verification:") :][:1500]
        and "intended" in page.lower()
        and "observed" in page.lower()
    )

    dns_zone.replace([("w", "LUA", 0, ["A \"pickwrandom({{50,'203.0.113.10'},{50,'198.51.100.10'}})\""])])
    verification_services.distribution_request(actor=alice, zone_id=zone.id, hostname=host)
    run_jobs()
    bad = Verification.objects.filter(kind="distribution").latest("id")
    assert bad.status == "failed"
    assert bad.message.startswith("not as configured: eks receives") and "intended 80/20" in bad.message
    observed = {r["key"]: r["observed"] for r in bad.report["verdict"]["rows"]}
    assert abs(observed["eks"] - 0.5) < 0.05 and abs(observed["k3s"] - 0.5) < 0.05  # the shares it saw


def test_there_is_nothing_to_measure_for_an_unknown_name(zone, alice):
    from dnsportal.errors import PortalError

    with pytest.raises(PortalError, match="has no A record"):
        verification_services.distribution_request(
            actor=alice, zone_id=zone.id, hostname="nothing." + zone.display_name
        )
