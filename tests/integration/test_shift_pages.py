"""The traffic-shift pages through the Django test client: the plan form on a hostname, its refusals on the
page, the review by a second person and the operator's buttons. (The runner is tested with real clusters and
PowerDNS in test_traffic_shift.py.)"""

from __future__ import annotations

import re
from html import unescape

import pytest

from dnsportal.models import AuditEntry, JobRun
from records.models import ProviderAccount, ShiftPlan, ShiftStep, Zone
from tests.fixtures.zones import publish

pytestmark = pytest.mark.django_db

NAME = "app.example.com"
ALPHA = "external-dns.alpha.kubernetes.io/"
NEW = f"/endpoints/host/{NAME}/shift/"


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", html))).strip()


@pytest.fixture
def zone(db) -> Zone:
    account = ProviderAccount.objects.create(name="aws-prod", credential_kind="default")
    zone = Zone.objects.create(account=account, provider_zone_id="Z1", name="example.com.")
    for cluster, ip, weight in (("rke2-dc1", "198.51.100.10", "100"), ("k3s-edge", "198.51.100.40", "0")):
        publish(
            {NAME: ip},
            cluster,
            set_identifier=cluster,
            properties={"aws/weight": weight},
            annotations={
                f"{ALPHA}hostname": NAME,
                f"{ALPHA}set-identifier": cluster,
                f"{ALPHA}aws-weight": weight,
            },
        )
    return zone


def test_the_hostname_page_offers_a_shift_and_the_form_suggests_four_steps(zone, client, alice):
    client.force_login(alice)
    page = client.get(f"/endpoints/host/{NAME}/").content.decode()
    assert "Plan a traffic shift" in page
    form = client.get(NEW).content.decode()
    # the clusters by name: k3s-edge 0, rke2-dc1 100 now; the suggestion moves all to k3s-edge in 4 steps
    assert "Now: 0/100 (k3s-edge / rke2-dc1)" in _text(form)
    assert 'name="steps" value="25/75, 50/50, 75/25, 100/0"' in form


def test_a_plan_is_saved_reviewed_by_a_second_person_and_run_by_its_buttons(zone, client, alice, bob, carol):
    client.force_login(alice)
    response = client.post(
        NEW,
        {
            "steps": "10/90, 25/75, 50/50, 100/0",
            "hold_seconds": "60",
            "on_failure": "rollback",
            "probe_port": "8080",
            "probe_path": "/healthz",
            "probe_n": "100",
            "probe_status": "200",
            "probe_max_latency_ms": "300",
        },
    )
    assert response.status_code == 302
    plan = ShiftPlan.objects.get()
    assert response["Location"] == f"/shifts/{plan.id}/"
    assert [s.split for s in plan.steps.all()][-1] == {"k3s-edge": 100, "rke2-dc1": 0}
    assert plan.gates["probe"] == {
        "port": 8080,
        "path": "/healthz",
        "n": 100,
        "status": 200,
        "max_latency_ms": 300,
    }
    page = _text(client.get(f"/shifts/{plan.id}/").content.decode())
    assert (
        "HTTP probe on port 8080 /healthz (100 requests, status 200, p95 within 300 ms per cluster)" in page
    )
    assert "Pending review" in page and "You planned this shift, so a second person must approve it." in page
    assert "0/100 → 10/90 → 25/75 → 50/50 → 100/0" in page
    # the author cannot approve; a viewer may not
    assert client.post(f"/shifts/{plan.id}/approve/").status_code == 403
    client.force_login(carol)
    assert client.post(f"/shifts/{plan.id}/pause/").status_code == 403
    client.force_login(bob)
    page = client.get(f"/shifts/{plan.id}/").content.decode()
    assert "Approve the whole plan" in page
    response = client.post(f"/shifts/{plan.id}/approve/", {"comment": "go"})
    assert response.status_code == 302
    plan.refresh_from_db()
    assert (plan.status, plan.approved_by) == (ShiftPlan.Status.APPROVED, bob)
    assert JobRun.objects.filter(name="shift_advance", kwargs={"plan_id": plan.id}).count() == 1
    # the operator's buttons, with a confirmation
    client.force_login(alice)
    page = client.get(f"/shifts/{plan.id}/").content.decode()
    assert 'hx-confirm="Abort traffic shift' in page and 'hx-confirm="Pause traffic shift' in page
    response = client.post(f"/shifts/{plan.id}/abort/", HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert "Aborting" in response.content.decode()
    assert ShiftStep.objects.filter(plan=plan, kind=ShiftStep.Kind.ABORT, split=plan.start).exists()
    # a second abort is refused on the page, with the reason
    response = client.post(f"/shifts/{plan.id}/abort/", HTTP_HX_REQUEST="true")
    assert response.status_code == 422
    assert (
        "Traffic shift #" in _text(response.content.decode()) and "is aborting" in response.content.decode()
    )
    assert list(
        AuditEntry.objects.filter(object_type="records.shiftplan")
        .order_by("id")
        .values_list("action", flat=True)
    ) == ["shift.propose", "shift.approved", "shift.aborting"]


def test_bad_plans_are_refused_on_the_form_with_the_reason(zone, client, alice):
    client.force_login(alice)
    response = client.post(NEW, {"steps": "10/90/5", "hold_seconds": "60", "on_failure": "rollback"})
    assert response.status_code == 422
    assert "has 3 weight(s); give one per cluster, in this order: k3s-edge / rke2-dc1" in _text(
        response.content.decode()
    )
    response = client.post(NEW, {"steps": "50/50", "hold_seconds": "1", "on_failure": "rollback"})
    assert response.status_code == 422
    assert "Hold each step at least" in _text(response.content.decode())
    assert not ShiftPlan.objects.exists()


def test_a_policy_proposal_waits_for_the_shift_on_its_name(zone, client, alice):
    from dnsportal.errors import PortalError
    from records import proposals
    from records.traffic import ClusterShare, TrafficPolicy

    client.force_login(alice)
    client.post(NEW, {"steps": "50/50", "hold_seconds": "60", "on_failure": "pause"})
    plan = ShiftPlan.objects.get()
    policy = TrafficPolicy(
        NAME, "weighted", (ClusterShare("k3s-edge", weight=50), ClusterShare("rke2-dc1", weight=50))
    )
    with pytest.raises(PortalError, match=rf"Traffic shift #{plan.id} is pending review on {NAME}"):
        proposals.policy_propose(actor=alice, zone_id=zone.id, hostname=NAME, policy=policy)
