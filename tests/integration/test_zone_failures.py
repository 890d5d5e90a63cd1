"""A zone whose last reconcile failed says so where people look: its page, the zone list and the dashboard,
with the error and a link to the job run, until a reconcile succeeds. Real Route53 (moto) behind the tests'
fault proxy, real jobs, rendered pages."""

from __future__ import annotations

import html
import re

import pytest

from dnsportal.models import JobRun
from records import changesets, services
from records.models import Zone
from tests.fixtures.zones import import_zone, publish

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def zone(root, route53, fault_proxy) -> Zone:
    return import_zone(root, route53, fault_proxy.url, "fails.example.com")


def _reconcile(alice, zone: Zone, run_jobs) -> JobRun:
    services.zone_reconcile_request(actor=alice, zone_id=zone.id)
    run_jobs()
    return JobRun.objects.filter(name="zone_reconcile", kwargs__zone_id=zone.id).latest("id")


def _section(page: str, element_id: str) -> str:
    found = re.search(rf'<(section|div)[^>]*id="{element_id}".*?</\1>', page, re.S)
    return found.group(0) if found else ""


def test_a_reconcile_that_cannot_read_route53_shows_on_the_zone_pages_until_one_succeeds(
    zone, alice, carol, client, fault_proxy, settings, run_jobs
):
    settings.ROUTE53_BACKOFF_BASE_MS = 1
    publish({"app.fails.example.com": "203.0.113.10"})
    # Route53 answers 500 to every attempt of the read (the provider tries 8 times).
    fault_proxy.inject("ListResourceRecordSets", *["error"] * 8)
    run = _reconcile(alice, zone, run_jobs)

    assert run.status == JobRun.Status.FAILED
    zone.refresh_from_db()
    assert "still failing after 8 attempts" in zone.last_reconcile_error
    assert zone.last_reconcile_error == run.error
    assert zone.last_reconcile_run_id == run.id
    assert not zone.changesets.exists()

    client.force_login(carol)
    error = html.escape(zone.last_reconcile_error)
    alert = _section(client.get(f"/zones/{zone.id}/").content.decode(), "reconcile-failure")
    assert "The last reconcile of fails.example.com failed" in alert
    assert error in alert
    assert f'href="/jobs/{run.id}/"' in alert
    listing = client.get("/zones/").content.decode()
    assert re.search(rf'<a class="badge bad" href="/jobs/{run.id}/"[^>]*>reconcile failed</a>', listing)
    dashboard = _section(client.get("/").content.decode(), "zone-failures")
    assert f'href="/zones/{zone.id}/">fails.example.com</a>' in dashboard
    assert error in dashboard
    assert f'href="/jobs/{run.id}/">zone_reconcile #{run.id}</a>' in dashboard

    # Route53 answers again: the next reconcile plans the zone and the failure is gone from every page.
    second = _reconcile(alice, zone, run_jobs)
    assert second.status == JobRun.Status.DONE
    zone.refresh_from_db()
    assert (zone.last_reconcile_error, zone.last_reconcile_run_id) == ("", second.id)
    assert zone.changesets.count() == 1
    assert 'id="reconcile-failure"' not in client.get(f"/zones/{zone.id}/").content.decode()
    assert "reconcile failed" not in client.get("/zones/").content.decode()
    assert 'id="zone-failures"' not in client.get("/").content.decode()


def test_a_reconcile_failing_outside_the_provider_is_shown_too(zone, alice, carol, client, run_jobs):
    # A zone row with an owner id the TXT registry cannot carry (written behind the form's back).
    Zone.objects.filter(id=zone.id).update(owner_id="team,a")
    publish({"app.fails.example.com": "203.0.113.10"})
    run = _reconcile(alice, zone, run_jobs)

    assert run.status == JobRun.Status.FAILED
    zone.refresh_from_db()
    assert zone.last_reconcile_error.startswith("ValueError: owner id 'team,a' must not contain")
    assert zone.last_reconcile_run_id == run.id
    client.force_login(carol)
    alert = _section(client.get(f"/zones/{zone.id}/").content.decode(), "reconcile-failure")
    assert html.escape(zone.last_reconcile_error) in alert
    assert f'href="/jobs/{run.id}/"' in alert
    assert f'href="/zones/{zone.id}/"' in _section(client.get("/").content.decode(), "zone-failures")

    Zone.objects.filter(id=zone.id).update(owner_id="dnsportal")
    assert _reconcile(alice, zone, run_jobs).status == JobRun.Status.DONE
    zone.refresh_from_db()
    assert zone.last_reconcile_error == ""
    assert 'id="zone-failures"' not in client.get("/").content.decode()


def test_an_apply_that_route53_refuses_links_its_run_from_the_zone_page(
    zone, alice, bob, carol, client, fault_proxy, settings, run_jobs
):
    settings.ROUTE53_BACKOFF_BASE_MS = 1
    publish({"app.fails.example.com": "203.0.113.10"})
    services.zone_reconcile_request(actor=alice, zone_id=zone.id)
    run_jobs()
    cs = zone.changesets.get()
    fault_proxy.inject("ChangeResourceRecordSets", *["error"] * 8)
    changesets.changeset_approve(changeset_id=cs.id, approver=bob)
    run_jobs()

    cs.refresh_from_db()
    assert cs.status == "failed"
    run = JobRun.objects.filter(name="changeset_apply").latest("id")
    # The run fails with the change set, so the Jobs page and the dashboard's count show it too.
    assert run.status == JobRun.Status.FAILED
    assert run.error == f"change set #{cs.id} failed: {cs.error}"
    zone.refresh_from_db()
    assert zone.last_reconcile_error == cs.error
    assert zone.last_reconcile_run_id == run.id
    client.force_login(carol)
    alert = _section(client.get(f"/zones/{zone.id}/").content.decode(), "reconcile-failure")
    assert "Reading or writing fails.example.com during an apply failed" in alert
    assert html.escape(cs.error) in alert
    assert f'href="/jobs/{run.id}/">Job run #{run.id} (changeset_apply)</a>' in alert
