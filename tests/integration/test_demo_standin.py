"""The demo's Route53 stand-in keeps what the portal applied across a `make up` restart, and the zone row
follows the zone moto creates anew (a new id), reading its state again instead of trusting the old one."""

from __future__ import annotations

import io

import pytest
import requests
from django.core.management import call_command

from records.models import ChangeSet, Zone
from tests.fixtures.zones import publish
from tools import standin

pytestmark = pytest.mark.django_db(transaction=True)


def _zone_rrsets(route53, zone_id: str) -> dict[tuple[str, str], list[str]]:
    sets = route53.list_resource_record_sets(HostedZoneId=zone_id)["ResourceRecordSets"]
    return {(r["Name"], r["Type"]): sorted(v["Value"] for v in r.get("ResourceRecords", [])) for r in sets}


def test_the_standin_keeps_applied_records_over_a_restart_and_the_zone_row_follows(
    client, alice, bob, settings, tmp_path, route53, moto_service, run_jobs
):
    settings.DATA_DIR = tmp_path / "data"
    call_command("register_demo_zone", moto_service.url, stdout=io.StringIO())
    run_jobs()
    zone = Zone.objects.get(account__name="demo-route53", name="example.com.")
    publish({"app.example.com": "203.0.113.10"}, "eks-us-east-1")
    client.force_login(alice)
    client.post(f"/zones/{zone.id}/reconcile/")
    run_jobs()
    cs = ChangeSet.objects.get(zone=zone)
    client.force_login(bob)
    client.post(f"/changes/{cs.id}/approve/")
    run_jobs()
    before = _zone_rrsets(route53, zone.provider_zone_id)
    assert before[("app.example.com.", "A")] == ["203.0.113.10"]

    # make up stops: the stand-in's records are saved; moto forgets everything; make up starts again.
    state = tmp_path / "zones.json"
    saved = standin.save(moto_service.url, state)
    assert saved == len(before) - 2  # all but the apex SOA and NS, which a new zone gets anew
    requests.post(f"{moto_service.url}/moto-api/reset", timeout=5).raise_for_status()
    assert standin.restore(moto_service.url, state) == saved
    assert standin.restore(moto_service.url, state) == 0  # a zone the stand-in has is left as it is
    call_command("register_demo_zone", moto_service.url, stdout=io.StringIO())
    run_jobs()

    zone_after = Zone.objects.get(id=zone.id)  # the same row, not a second example.com
    assert Zone.objects.filter(name="example.com.").count() == 1
    assert zone_after.provider_zone_id != zone.provider_zone_id
    after = _zone_rrsets(route53, zone_after.provider_zone_id)
    assert {k: v for k, v in after.items() if k[1] not in {"SOA", "NS"}} == {
        k: v for k, v in before.items() if k[1] not in {"SOA", "NS"}
    }
    # The stored state is read again from the new zone: the records are still the portal's, nothing to do.
    assert not zone_after.state_valid
    client.force_login(alice)
    client.post(f"/zones/{zone.id}/reconcile/")
    run_jobs()
    assert ChangeSet.objects.filter(zone=zone).count() == 1
    assert Zone.objects.get(id=zone.id).ownership_counts.get("owned")
