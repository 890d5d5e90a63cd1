"""Failover drills end to end, on real services.

PowerDNS: shop.<zone> is failover in an internal zone of a real PowerDNS (tools/pdns, LUA `ifurlup` checked
every second): the primary 127.0.0.21, the secondary 127.0.0.22, each with its demo page server
(tools/demo_http) on one port, the health check URL on that port. Endpoints are stored as discovery stores
them (Kubernetes is tested elsewhere); the portal plans, a second person approves, the apply job writes the
LUA record. A drill proposed by alice and approved by bob is run by a real RQ worker (`drain_queues`): the
demo hook switches the primary's page server to 503, dnspython asks PowerDNS until it answers the secondary,
the hook switches it back, dnspython asks until it answers the primary again.

Route53: the same pair in example.com in moto (server mode), the primary with the portal's own health check;
the drill inverts it and restores it (read back from moto each time) and says the answers cannot be measured
(moto serves no DNS).
"""

from __future__ import annotations

import re

import pytest
import requests

from dnsportal.errors import PortalError
from dnsportal.models import AuditEntry
from records import changesets, drill, drills, services
from records.changesets import NotAllowed
from records.models import ChangeSet, FailoverDrill, PolicyProposal, ProviderAccount, ShiftPlan, Zone
from records.providers.base import HealthCheckSpec
from tests.fixtures.dns import new_zone_name
from tests.fixtures.jobs import drain_queues
from tests.fixtures.zones import import_zone, publish
from tools.demo_http import start_page_servers

pytestmark = pytest.mark.django_db(transaction=True)

PRIMARY, SECONDARY = "127.0.0.21", "127.0.0.22"


def publish_failover(host: str, health_check_id: str) -> None:
    publish(
        {host: PRIMARY},
        "eks-primary",
        set_identifier="eks-primary",
        properties={"aws/failover": "PRIMARY", "aws/health-check-id": health_check_id},
    )
    publish(
        {host: SECONDARY},
        "k3s-secondary",
        set_identifier="k3s-secondary",
        properties={"aws/failover": "SECONDARY"},
    )


def apply_zone(zone: Zone, alice, bob) -> None:
    services.zone_reconcile_request(actor=alice, zone_id=zone.id)
    drain_queues()
    pending = ChangeSet.objects.filter(zone=zone, status=ChangeSet.Status.PENDING).first()
    if pending:
        changesets.changeset_approve(changeset_id=pending.id, approver=bob)
        drain_queues()
    assert ChangeSet.objects.filter(zone=zone, status=ChangeSet.Status.APPLIED).exists()


@pytest.fixture
def pages():
    servers = start_page_servers({PRIMARY: "eks-primary", SECONDARY: "k3s-secondary"})
    yield {s.cluster: s for s in servers}
    for s in servers:
        s.stop()


@pytest.fixture
def pdns_drill(root, alice, bob, client, pdns, pages, settings):
    """shop.<zone>: failover in PowerDNS, the primary answering."""
    settings.RECONCILE_DEBOUNCE_MS = 0
    settings.DRILL_TIMEOUT_S = 30
    zone_name = new_zone_name()
    pdns.create_zone(zone_name)
    client.force_login(root)
    response = client.post(
        "/accounts/add/",
        {
            "name": "pdns-drill",
            "kind": "powerdns",
            "endpoint_url": f"http://127.0.0.1:{pdns.api_port}",
            "secret": pdns.api_key,
            "server_id": "localhost",
            "dns_servers": f"127.0.0.1:{pdns.dns_port}",
            "rate": "50",
            "burst": "50",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    account = ProviderAccount.objects.get(name="pdns-drill")
    drain_queues()
    client.post(f"/accounts/{account.id}/import/", {"domain_filter": zone_name})
    drain_queues()
    zone = Zone.objects.get(account=account, name=zone_name)
    Zone.objects.filter(id=zone.id).update(private=True)  # loopback addresses are this zone's business
    host = f"shop.{zone_name}".rstrip(".")
    port = pages["eks-primary"].port
    publish_failover(host, f"http://{host}:{port}/")
    apply_zone(zone, alice, bob)
    client.logout()
    yield {"zone": Zone.objects.get(id=zone.id), "host": host, "pages": pages}
    pdns.delete_zone(zone_name)


def propose_and_approve(scene, alice, bob, **kw) -> FailoverDrill:
    d = drills.drill_propose(actor=alice, zone_id=scene["zone"].id, hostname=scene["host"], **kw)
    drills.drill_approve(drill_id=d.id, approver=bob)
    return d


def test_a_powerdns_drill_measures_the_switch_over_and_the_return(pdns_drill, alice, bob, client):
    d = propose_and_approve(pdns_drill, alice, bob)
    assert (d.action, d.primary, d.secondary) == (FailoverDrill.Action.DEMO_HOOK, [PRIMARY], [SECONDARY])
    drain_queues()  # the worker runs drill_run
    d.refresh_from_db()
    assert d.status == FailoverDrill.Status.DONE, d.message
    assert d.measured is True
    assert d.switch_seconds is not None and d.switch_seconds > 0
    assert d.return_seconds is not None and d.return_seconds > 0
    assert "Every nameserver answered the secondary" in d.message
    phases = {s["phase"] for s in d.samples}
    assert phases == {"baseline", "fail", "restore"}
    fail = [s for s in d.samples if s["phase"] == "fail"]
    assert all(v == [PRIMARY] for v in fail[0]["answers"].values()) or len(fail) == 1
    assert all(v == [SECONDARY] for v in fail[-1]["answers"].values())
    back = [s for s in d.samples if s["phase"] == "restore"]
    assert all(v == [PRIMARY] for v in back[-1]["answers"].values())
    assert d.primary_marked is False and d.failed_at < d.restored_at
    # the primary's page server answers again: the drill restored it
    assert requests.get(pdns_drill["pages"]["eks-primary"].url, timeout=5).status_code == 200
    actions = list(
        AuditEntry.objects.filter(object_type="records.failoverdrill").values_list("action", flat=True)
    )
    for action in (
        "drill.propose",
        "drill.approved",
        "drill.primary_down",
        "drill.primary_restored",
        "drill.done",
    ):
        assert action in actions
    # its page: who, the times, the chart; and the name's timeline lists it with a chart
    client.force_login(bob)
    page = client.get(f"/drills/{d.id}/").content.decode()
    assert f"{d.switch_seconds:.1f} s" in page and f"{d.return_seconds:.1f} s" in page
    assert "alice" in page and "bob" in page
    desc = re.search(r'<desc id="drill-desc">(.*?)</desc>', page).group(1)
    assert "secondary from" in desc and "primary from" in desc
    timeline = client.get(f"/endpoints/host/{pdns_drill['host']}/timeline/").content.decode()
    assert f"Failover drill #{d.id} done" in timeline
    assert 'class="drill-chart"' in timeline


def test_a_drill_refused_during_an_incident_changes_nothing(pdns_drill, alice, bob):
    # the stored health of the primary's check says unhealthy: proposing is refused
    check = f"http://{pdns_drill['host']}:{pdns_drill['pages']['eks-primary'].port}/"
    from django.utils import timezone

    p = PolicyProposal.objects.create(
        zone=pdns_drill["zone"],
        hostname=pdns_drill["host"],
        status=PolicyProposal.Status.WRITTEN,
        policy={},
        health_check_id=check,
        health_check_healthy=False,
        health_check_checked_at=timezone.now(),
    )
    with pytest.raises(PortalError, match=r"The primary is unhealthy now \(an incident\)"):
        drills.drill_propose(actor=alice, zone_id=pdns_drill["zone"].id, hostname=pdns_drill["host"])
    p.delete()
    # a real outage after approval: the nameservers answer the secondary before the drill starts
    d = propose_and_approve(pdns_drill, alice, bob)
    pdns_drill["pages"]["eks-primary"].stop()
    import time

    deadline = time.monotonic() + 20
    from records.verification_services import zone_nameservers
    from records.verify import query

    ns = zone_nameservers(pdns_drill["zone"])[0]
    while time.monotonic() < deadline and query(ns, pdns_drill["host"] + ".", "A").values != {SECONDARY}:
        time.sleep(0.3)
    drain_queues()
    d.refresh_from_db()
    assert d.status == FailoverDrill.Status.FAILED
    assert "an incident" in d.message and "Nothing was changed" in d.message
    assert d.failed_at is None and not AuditEntry.objects.filter(action="drill.primary_down").exists()


def test_a_drill_is_refused_while_a_shift_runs_and_needs_a_second_person(pdns_drill, root, alice, bob, carol):
    zone, host = pdns_drill["zone"], pdns_drill["host"]
    plan = ShiftPlan.objects.create(
        zone=zone,
        hostname=host,
        status=ShiftPlan.Status.RUNNING,
        clusters=[],
        start={},
        splits=[],
        base_policy={},
        hold_seconds=1,
    )
    with pytest.raises(PortalError, match=f"Traffic shift #{plan.id} is under way"):
        drills.drill_propose(actor=alice, zone_id=zone.id, hostname=host)
    ShiftPlan.objects.filter(id=plan.id).update(status=ShiftPlan.Status.DONE)
    with pytest.raises(NotAllowed, match="needs the operator role"):
        drills.drill_propose(actor=carol, zone_id=zone.id, hostname=host)
    d = drills.drill_propose(actor=alice, zone_id=zone.id, hostname=host)
    with pytest.raises(PortalError, match=f"Failover drill #{d.id} is under way"):
        drills.drill_propose(actor=alice, zone_id=zone.id, hostname=host)
    with pytest.raises(NotAllowed, match="needs the approver role"):
        drills.drill_approve(drill_id=d.id, approver=alice)
    with pytest.raises(NotAllowed, match="needs the approver role"):
        drills.drill_approve(drill_id=d.id, approver=carol)
    # whoever proposed a drill cannot approve it, whatever their roles
    drills.drill_cancel(drill_id=d.id, actor=alice)
    own = drills.drill_propose(actor=root, zone_id=zone.id, hostname=host)
    with pytest.raises(NotAllowed, match="A second person must approve this failover drill: you proposed it"):
        drills.drill_approve(drill_id=own.id, approver=root)
    d = own
    # a shift that started after the proposal: the approval is refused too
    ShiftPlan.objects.filter(id=plan.id).update(status=ShiftPlan.Status.RUNNING)
    with pytest.raises(PortalError, match="is under way on the name"):
        drills.drill_approve(drill_id=d.id, approver=bob)
    assert FailoverDrill.objects.get(id=d.id).status == drill.PENDING
    ShiftPlan.objects.filter(id=plan.id).update(status=ShiftPlan.Status.DONE)
    drills.drill_approve(drill_id=d.id, approver=bob)
    assert FailoverDrill.objects.get(id=d.id).approved_by == bob


def test_a_drill_on_a_weighted_name_is_refused(pdns_drill, alice):
    host = "other." + pdns_drill["zone"].name.rstrip(".")
    with pytest.raises(PortalError, match="needs a failover policy"):
        drills.drill_propose(actor=alice, zone_id=pdns_drill["zone"].id, hostname=host)


def test_a_route53_drill_inverts_and_restores_the_health_check_and_says_answers_are_not_measured(
    root, alice, bob, route53, moto_service, settings
):
    settings.RECONCILE_DEBOUNCE_MS = 0
    zone = import_zone(root, route53, moto_service.url, "example.com")
    provider = services.provider_for(zone.account)
    check = provider.health_check_create(
        HealthCheckSpec(
            protocol="HTTP",
            port=80,
            fully_qualified_domain_name="primary.example.com",
            resource_path="/healthz",
            request_interval=30,
            failure_threshold=3,
        ),
        owner_id=zone.owner_id,
        reference="drill-test",
    )
    host = "shop.example.com"
    publish_failover(host, check.id)
    apply_zone(zone, alice, bob)
    d = propose_and_approve({"zone": zone, "host": host}, alice, bob)
    assert (d.action, d.health_check_id) == (FailoverDrill.Action.HEALTH_CHECK, check.id)
    drain_queues()
    d.refresh_from_db()
    assert d.status == FailoverDrill.Status.DONE, d.message
    assert d.measured is False
    assert "Answers cannot be measured here" in d.message
    assert d.switch_seconds is None and d.return_seconds is None
    # moto said Inverted=True after the fail action and Inverted=False after the restore
    details = [(e["what"], e["ok"], e["detail"]) for e in d.events]
    assert ("fail", True, f"health check {check.id}: Inverted=True (read back)") in details
    assert ("restore", True, f"health check {check.id}: Inverted=False (read back)") in details
    assert (
        route53.get_health_check(HealthCheckId=check.id)["HealthCheck"]["HealthCheckConfig"]["Inverted"]
        is False
    )
    with pytest.raises(PortalError, match="takes no URLs"):
        drills.drill_propose(actor=alice, zone_id=zone.id, hostname=host, fail_url="http://127.0.0.1:1/")
