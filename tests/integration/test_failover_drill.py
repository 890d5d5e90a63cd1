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
from dnsportal.queue import enqueue
from records import drill, drills, services
from records.changesets import NotAllowed
from records.models import (
    FailoverDrill,
    PolicyProposal,
    ShiftPlan,
    ZoneRecord,
)
from records.providers.base import HealthCheckSpec
from tests.fixtures.drill import PRIMARY, SECONDARY, answers_within, apply_zone, publish_failover
from tests.fixtures.jobs import drain_queues
from tests.fixtures.zones import import_zone, publish

pytestmark = pytest.mark.django_db(transaction=True)


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
    d = drills.drill_propose(actor=alice, zone_id=pdns_drill["zone"].id, hostname=pdns_drill["host"])
    pdns_drill["pages"]["eks-primary"].stop()
    # the outage first, for good (3 s of answers naming the secondary alone), then the approval and the run
    assert answers_within(pdns_drill["zone"], pdns_drill["host"], SECONDARY, 20, steady=3)
    drills.drill_approve(drill_id=d.id, approver=bob)
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


def test_a_drill_whose_worker_died_with_the_primary_marked_is_restored_by_the_sweep(pdns_drill, alice, bob):
    from datetime import timedelta

    from django.utils import timezone

    from records.jobs_drill import drills_sweep, mark

    d = propose_and_approve(pdns_drill, alice, bob)
    # The worker claims the drill and marks the primary unhealthy, then dies before anything else.
    drills.drill_claim(drill_id=d.id)
    d = FailoverDrill.objects.select_related("zone__account").get(id=d.id)
    drills.drill_marked(drill_id=d.id, down=True, detail=mark(d, down=True), failed_at=timezone.now())
    primary = pdns_drill["pages"]["eks-primary"]
    assert requests.get(primary.url, timeout=5).status_code == 503
    drills_sweep()  # the lease is still fresh: a running drill is left alone
    assert FailoverDrill.objects.get(id=d.id).status == drill.FAILING
    FailoverDrill.objects.filter(id=d.id).update(lease_until=timezone.now() - timedelta(seconds=1))
    drills_sweep()
    d.refresh_from_db()
    assert d.status == FailoverDrill.Status.FAILED
    assert d.message == "the worker running the drill stopped; the sweep restored the primary"
    assert d.primary_marked is False and d.restored_at is not None
    assert requests.get(primary.url, timeout=5).status_code == 200
    drain_queues()  # the approved run, redelivered late, finds the drill taken and does nothing
    assert FailoverDrill.objects.get(id=d.id).status == FailoverDrill.Status.FAILED


class _Operator:
    """An operator's own fail/restore endpoint: it records what the drill POSTed and switches the primary's
    page server through its health switch, as an operator's automation would take a service down."""

    def __init__(self, primary_url: str, *, refuse_restores: int = 0) -> None:
        import json
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.calls: list[tuple[str, dict]] = []
        calls = self.calls
        refused = [refuse_restores]  # the first restores answer 500: the operator's automation is down

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                calls.append((self.path, body))
                if self.path == "/restore" and refused[0] > 0:
                    refused[0] -= 1
                    self.send_response(500)
                    self.end_headers()
                    return
                state = "down" if self.path == "/fail" else "up"
                requests.post(f"{primary_url}-/health", data=state, timeout=5).raise_for_status()
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_a_powerdns_drill_through_the_operators_urls(pdns_drill, alice, bob):
    operator = _Operator(pdns_drill["pages"]["eks-primary"].url)
    try:
        with pytest.raises(PortalError, match="no credentials in the URL"):
            drills.drill_propose(
                actor=alice,
                zone_id=pdns_drill["zone"].id,
                hostname=pdns_drill["host"],
                fail_url="http://ops:hunter2@127.0.0.1/fail",
                restore_url=f"{operator.url}/restore",
            )
        d = propose_and_approve(
            pdns_drill, alice, bob, fail_url=f"{operator.url}/fail", restore_url=f"{operator.url}/restore"
        )
        assert d.action == FailoverDrill.Action.URL
        drain_queues()
    finally:
        operator.stop()
    d.refresh_from_db()
    assert d.status == FailoverDrill.Status.DONE, d.message
    assert d.switch_seconds > 0 and d.return_seconds > 0
    payload = {"drill": d.id, "hostname": pdns_drill["host"], "primary": [PRIMARY]}
    assert operator.calls == [
        ("/fail", {**payload, "action": "fail"}),
        ("/restore", {**payload, "action": "restore"}),
    ]


def test_the_pages_propose_review_and_show_why_a_drill_may_not_run(pdns_drill, alice, bob, client):
    host = pdns_drill["host"]
    client.force_login(alice)
    page = client.get(f"/endpoints/host/{host}/").content.decode()
    assert f'href="/endpoints/host/{host}/drill/"' in page
    form = client.get(f"/endpoints/host/{host}/drill/").content.decode()
    assert PRIMARY in form and SECONDARY in form and 'name="fail_url"' in form
    response = client.post(f"/endpoints/host/{host}/drill/", {"fail_url": "", "restore_url": ""})
    assert response.status_code == 302
    d = FailoverDrill.objects.get(hostname=host)
    assert response["Location"] == f"/drills/{d.id}/"
    detail = client.get(f"/drills/{d.id}/").content.decode()
    assert "You proposed this drill, so a second person must approve it." in detail
    assert "drill-approve" not in detail and f"/drills/{d.id}/approve/" not in detail
    # while it is pending, the hostname page says why no second drill may start
    page = client.get(f"/endpoints/host/{host}/").content.decode()
    assert f"No drill now: Failover drill #{d.id} is under way on the name." in page
    client.force_login(bob)
    detail = client.get(f"/drills/{d.id}/").content.decode()
    assert f'hx-post="/drills/{d.id}/approve/"' in detail and "hx-confirm=" in detail
    response = client.post(f"/drills/{d.id}/reject/", {"comment": ""})
    assert response.status_code == 422
    assert "Say why the drill is rejected" in response.content.decode()
    response = client.post(f"/drills/{d.id}/reject/", {"comment": "not during the sale"})
    assert response.status_code == 302
    assert FailoverDrill.objects.get(id=d.id).status == FailoverDrill.Status.REJECTED
    timeline = client.get(f"/endpoints/host/{host}/timeline/").content.decode()
    assert f"Failover drill #{d.id} proposed by alice" in timeline
    assert f"Failover drill #{d.id} rejected" in timeline
    # a name that is not failover: the reason instead of the button
    other = "www." + pdns_drill["zone"].name.rstrip(".")
    publish({other: "127.0.0.31"}, "eks-primary")
    page = client.get(f"/endpoints/host/{other}/").content.decode()
    assert "No drill now: A failover drill needs a failover policy" in page
    assert f'href="/endpoints/host/{other}/drill/"' not in page


def test_a_primary_the_drill_could_not_restore_is_restored_by_the_next_sweep(pdns_drill, alice, bob):
    from records.jobs_drill import RESTORE_TRIES, drills_sweep

    primary = pdns_drill["pages"]["eks-primary"]
    operator = _Operator(primary.url, refuse_restores=RESTORE_TRIES)
    try:
        d = propose_and_approve(
            pdns_drill, alice, bob, fail_url=f"{operator.url}/fail", restore_url=f"{operator.url}/restore"
        )
        drain_queues()
        d.refresh_from_db()
        assert d.status == FailoverDrill.Status.FAILED
        assert d.message.startswith("THE PRIMARY COULD NOT BE RESTORED")
        assert d.primary_marked is True and d.switch_seconds > 0
        assert [e["ok"] for e in d.events if e["what"] == "restore"] == [False] * RESTORE_TRIES
        assert requests.get(primary.url, timeout=5).status_code == 503
        drills_sweep()  # the operator's automation answers again
    finally:
        operator.stop()
    d.refresh_from_db()
    assert d.primary_marked is False
    assert "the sweep restored the primary" in d.message
    assert requests.get(primary.url, timeout=5).status_code == 200
    assert AuditEntry.objects.filter(action="drill.primary_restored", object_id=str(d.id)).count() == 1


def test_a_failover_name_whose_records_are_not_the_portals_is_never_drilled(
    root, alice, route53, moto_service, settings
):
    """Someone else's failover pair in the zone (no ownership record of the portal's): its health check is
    theirs too, and a drill would invert it. The drill is refused before anything is asked of Route53."""
    zone = import_zone(root, route53, moto_service.url, "example.com")
    check = route53.create_health_check(
        CallerReference="theirs-1",
        HealthCheckConfig={"Type": "HTTP", "FullyQualifiedDomainName": "p.example.com", "Port": 80},
    )["HealthCheck"]["Id"]
    changes = [
        {
            "Action": "CREATE",
            "ResourceRecordSet": {
                "Name": "legacy.example.com",
                "Type": "A",
                "SetIdentifier": ident,
                "Failover": role,
                "TTL": 60,
                "ResourceRecords": [{"Value": value}],
                **({"HealthCheckId": check} if role == "PRIMARY" else {}),
            },
        }
        for ident, role, value in (("a", "PRIMARY", "192.0.2.1"), ("b", "SECONDARY", "192.0.2.2"))
    ]
    route53.change_resource_record_sets(HostedZoneId=zone.provider_zone_id, ChangeBatch={"Changes": changes})
    enqueue("zone_reconcile", zone_id=zone.id)  # the portal reads the zone (and plans nothing for them)
    drain_queues()
    stored = ZoneRecord.objects.filter(zone=zone, name="legacy.example.com.", type="A")
    assert sorted(r.ownership for r in stored) == ["unowned", "unowned"]
    with pytest.raises(PortalError, match="failover records are not the portal's"):
        drills.drill_propose(actor=alice, zone_id=zone.id, hostname="legacy.example.com")
    assert not FailoverDrill.objects.exists()
    config = route53.get_health_check(HealthCheckId=check)["HealthCheck"]["HealthCheckConfig"]
    assert config.get("Inverted", False) is False
