"""The stored zone state an apply leaves (records.services.zone_apply_to_state) is the zone the pure core says
the changes make (records.plan.apply_changes), written in bulk; a change that does not fit the stored state
is refused as a whole, and nothing of it is written."""

from __future__ import annotations

import pytest

from records.models import ProviderAccount, Zone, ZoneRecord
from records.plan import Change as PlanChange
from records.plan import ChangeRejected, apply_changes
from records.recordset import RecordSet, recordset_from_route53, recordset_to_route53
from records.services import account_create, zone_apply_to_state, zone_store_state

pytestmark = pytest.mark.django_db


def _a(name: str, ip: str, ttl: int = 300) -> RecordSet:
    return RecordSet(name=name, type="A", ttl=ttl, values=(ip,))


def _txt(name: str) -> RecordSet:
    value = (
        f'"heritage=external-dns,external-dns/owner=dnsportal,external-dns/resource=service/default/{name}"'
    )
    return RecordSet(name=f"_dnsportal-a.{name}", type="TXT", ttl=300, values=(value,))


@pytest.fixture
def zone(root) -> Zone:
    account_create(actor=root, name="state", credential_kind="static", access_key_id="k", secret="s")
    account = ProviderAccount.objects.get(name="state")
    return Zone.objects.create(account=account, provider_zone_id="Z1", name="example.com.")


def _stored(zone: Zone) -> list[RecordSet]:
    rows = ZoneRecord.objects.filter(zone=zone).order_by("name", "type", "set_identifier")
    return [recordset_from_route53(row.data) for row in rows]


def test_an_apply_updates_the_stored_state_as_the_pure_core_applies_the_changes(zone):
    before = [_a("keep.example.com.", "192.0.2.1"), _a("old.example.com.", "192.0.2.2")]
    before += [_txt("keep.example.com."), _txt("old.example.com."), _a("moved.example.com.", "192.0.2.3")]
    zone_store_state(zone_id=zone.id, records=[recordset_to_route53(rs) for rs in before], full_read=True)
    changes = [
        # many creates, as a first convergence makes them
        *(PlanChange("CREATE", _a(f"svc-{i}.example.com.", f"198.51.100.{i}")) for i in range(50)),
        *(PlanChange("CREATE", _txt(f"svc-{i}.example.com."), "ownership") for i in range(50)),
        PlanChange("UPSERT", _a("keep.example.com.", "192.0.2.10", ttl=60)),
        PlanChange("DELETE", _a("old.example.com.", "192.0.2.2")),
        PlanChange("DELETE", _txt("old.example.com."), "ownership"),
        # a DELETE and its re-CREATE of one record set, in one group
        PlanChange("DELETE", _a("moved.example.com.", "192.0.2.3")),
        PlanChange("CREATE", _a("moved.example.com.", "192.0.2.4")),
        # created, then changed again within the same apply
        PlanChange("CREATE", _a("twice.example.com.", "192.0.2.5")),
        PlanChange("UPSERT", _a("twice.example.com.", "192.0.2.6")),
    ]
    zone_apply_to_state(zone_id=zone.id, changes=changes)

    assert _stored(zone) == apply_changes(before, changes)
    ownership = dict(ZoneRecord.objects.filter(zone=zone).values_list("name", "ownership"))
    assert ownership["svc-7.example.com."] == "owned"
    assert ownership["_dnsportal-a.svc-7.example.com."] == "registry"
    zone.refresh_from_db()
    assert zone.ownership_counts["owned"] == 50 + 3 and zone.ownership_counts["registry"] == 50 + 1


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (PlanChange("CREATE", _a("here.example.com.", "192.0.2.9")), "already holds it"),
        (PlanChange("DELETE", _a("here.example.com.", "192.0.2.99")), "does not hold it"),
        (PlanChange("DELETE", _a("absent.example.com.", "192.0.2.1")), "does not hold it"),
    ],
)
def test_a_change_that_does_not_fit_the_stored_state_is_refused_and_nothing_is_written(zone, change, message):
    before = [_a("here.example.com.", "192.0.2.1")]
    zone_store_state(zone_id=zone.id, records=[recordset_to_route53(rs) for rs in before], full_read=True)
    with pytest.raises(ChangeRejected, match=message):
        zone_apply_to_state(
            zone_id=zone.id, changes=[PlanChange("CREATE", _a("new.example.com.", "192.0.2.2")), change]
        )
    assert _stored(zone) == before
