"""A PowerDNS server as a provider account of the portal: added on the accounts page, its zone imported by the
real jobs, clusters' endpoints reconciled into it, verified by asking it, through the same machinery as
Route53 (pages, jobs, change sets, audit). PowerDNS runs on loopback (tools/pdns)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from records.models import ChangeSet, ProviderAccount, Verification, Zone, ZoneRecord
from tests.fixtures.dns import new_zone_name
from tests.fixtures.zones import publish
from tools.pdns import PdnsServer

pytest_plugins = ["tests.fixtures.dns"]
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def pdns_zone(pdns: PdnsServer) -> Iterator[str]:
    name = new_zone_name()
    pdns.create_zone(name, [("legacy", "A", 300, ["10.9.9.9"])])  # a record nobody owns
    yield name
    pdns.delete_zone(name)


def _add_account(client, pdns: PdnsServer, **changes: str):
    form = {
        "name": "pdns-dc1",
        "kind": "powerdns",
        "endpoint_url": f"http://127.0.0.1:{pdns.api_port}",
        "secret": pdns.api_key,
        "server_id": "localhost",
        "dns_servers": f"127.0.0.1:{pdns.dns_port}",
        "rate": "5",
        "burst": "5",
    }
    form.update(changes)
    return client.post("/accounts/add/", form)


@pytest.fixture
def zone(client, root, pdns: PdnsServer, pdns_zone: str, run_jobs) -> Zone:
    client.force_login(root)
    response = _add_account(client, pdns)
    assert response.status_code == 302, response.content.decode()[:2000]
    account = ProviderAccount.objects.get(name="pdns-dc1")
    run_jobs()
    account.refresh_from_db()
    assert account.last_check_ok, account.last_check_message
    assert account.last_check_message.startswith("PowerDNS 4.")
    response = client.post(f"/accounts/{account.id}/import/", {"domain_filter": pdns_zone})
    run_jobs()
    zone = Zone.objects.get(account=account, name=pdns_zone)
    # an internal zone: private addresses are legitimate; changes apply without a second person here
    Zone.objects.filter(id=zone.id).update(private=True, approval_mode=Zone.Approval.NONE)
    return Zone.objects.get(id=zone.id)


def test_the_account_form_says_what_a_powerdns_account_needs(client, root, pdns: PdnsServer) -> None:
    client.force_login(root)
    response = _add_account(client, pdns, endpoint_url="", secret="")
    assert response.status_code == 422
    errors = response.context["form"].errors
    assert "PowerDNS API's URL" in errors["endpoint_url"][0]
    assert "PowerDNS API key" in errors["secret"][0]
    response = _add_account(client, pdns, dns_servers="nohost:99999")
    assert response.status_code == 422 and "65535" in response.context["form"].errors["dns_servers"][0]
    assert not ProviderAccount.objects.exists()


def test_the_api_key_is_encrypted_and_never_shown(client, root, pdns: PdnsServer, zone: Zone) -> None:
    account = zone.account
    assert pdns.api_key not in str(
        ProviderAccount.objects.filter(id=account.id).values_list("secret_encrypted")
    )
    page = client.get(f"/accounts/{account.id}/").content.decode()
    assert "PowerDNS Authoritative" in page and account.secret_fingerprint in page
    assert pdns.api_key not in page


def test_a_wrong_api_key_is_shown_on_the_account(client, root, pdns: PdnsServer, run_jobs) -> None:
    client.force_login(root)
    assert _add_account(client, pdns, secret="wrong-key").status_code == 302
    run_jobs()
    account = ProviderAccount.objects.get(name="pdns-dc1")
    assert account.last_check_ok is False
    assert "API key was refused" in account.last_check_message
    assert "wrong-key" not in account.last_check_message
    assert "API key was refused" in client.get(f"/accounts/{account.id}/").content.decode()


def test_clusters_reconciled_into_powerdns_and_verified(
    client, root, pdns: PdnsServer, zone: Zone, run_jobs
) -> None:
    from dnsportal.queue import enqueue

    apex = zone.name.rstrip(".")
    publish({f"www.{apex}": "10.0.0.1"}, "rke2-dc1")
    publish({f"www.{apex}": "10.0.0.2"}, "k3s-edge")  # one name, two clusters: round robin
    publish(
        {f"shop.{apex}": "10.0.0.3"}, "rke2-dc1", set_identifier="rke2-dc1", properties={"aws/weight": "80"}
    )
    publish(
        {f"shop.{apex}": "10.0.0.4"}, "k3s-edge", set_identifier="k3s-edge", properties={"aws/weight": "20"}
    )
    enqueue("zone_reconcile", zone_id=zone.id, full_read=True)
    run_jobs()
    cs = ChangeSet.objects.get(zone=zone)
    assert cs.status == ChangeSet.Status.APPLIED, (cs.status, cs.error)
    rrsets = {(r["name"], r["type"]): r for r in pdns.rrsets(zone.name)}
    assert sorted(r["content"] for r in rrsets[(f"www.{zone.name}", "A")]["records"]) == [
        "10.0.0.1",
        "10.0.0.2",
    ]
    lua = rrsets[(f"shop.{zone.name}", "LUA")]["records"][0]["content"]
    assert lua == "A \"pickwrandom({{20,'10.0.0.4'},{80,'10.0.0.3'}})\""  # in set id order
    assert rrsets[(f"legacy.{zone.name}", "A")]["records"][0]["content"] == "10.9.9.9"
    # the zone page lists the weighted record sets by cluster, owned; the foreign record unmanaged
    owned = ZoneRecord.objects.filter(zone=zone, ownership=ZoneRecord.Ownership.OWNED)
    assert {(r.name, r.set_identifier) for r in owned} == {
        (f"www.{zone.name}", ""),
        (f"shop.{zone.name}", "rke2-dc1"),
        (f"shop.{zone.name}", "k3s-edge"),
    }
    # a full read plans nothing more: what PowerDNS holds reads back as what was planned
    enqueue("zone_reconcile", zone_id=zone.id, full_read=True)
    run_jobs()
    assert ChangeSet.objects.filter(zone=zone).count() == 1

    # "Verify now": every nameserver answers as planned (the account's DNS servers are asked)
    client.force_login(root)
    client.post(f"/zones/{zone.id}/verify/")
    run_jobs()
    v = Verification.objects.filter(zone=zone, kind=Verification.Kind.RESOLUTION).latest("started_at")
    assert v.status == Verification.Status.OK, (v.message, v.differences)
    assert v.nameservers and str(pdns.dns_port) in str(v.nameservers)
    # "Measure the split" on the weighted name: about 80/20
    # A right split fails a test at 1 % once in a hundred runs; a wrong one cannot pass twice.
    for _attempt in range(2):
        client.post("/verification/measure/", {"zone_id": zone.id, "hostname": f"shop.{apex}"})
        run_jobs()
        d = Verification.objects.filter(zone=zone, kind=Verification.Kind.DISTRIBUTION).latest("started_at")
        if d.status == Verification.Status.OK:
            break
    assert d.status == Verification.Status.OK, d.message
    # the largest share first, whatever the set identifiers' order (k3s-edge sorts before rke2-dc1)
    assert d.message.startswith("consistent with 80/20"), d.message


def test_routing_powerdns_cannot_answer_is_refused_on_the_hostname(
    client, root, pdns: PdnsServer, zone: Zone, run_jobs
) -> None:
    from dnsportal.queue import enqueue

    apex = zone.name.rstrip(".")
    publish(
        {f"near.{apex}": "10.0.0.1"}, "rke2-dc1", set_identifier="eu", properties={"aws/region": "eu-west-1"}
    )
    publish({f"ok.{apex}": "10.0.0.2"}, "rke2-dc1")
    enqueue("zone_reconcile", zone_id=zone.id, full_read=True)
    run_jobs()
    names = {r["name"] for r in pdns.rrsets(zone.name)}
    assert f"ok.{zone.name}" in names and f"near.{zone.name}" not in names
    client.force_login(root)
    page = client.get(f"/endpoints/host/near.{apex}/").content.decode()
    assert "PowerDNS has no latency-based routing" in page


def test_a_powerdns_zone_is_marked_internal_in_its_settings(
    client, root, pdns: PdnsServer, zone: Zone, run_jobs
) -> None:
    Zone.objects.filter(id=zone.id).update(private=False)
    form = {
        "owner_id": zone.owner_id,
        "policy": zone.policy,
        "txt_prefix": zone.txt_prefix,
        "drift_interval": zone.drift_interval,
        "full_read_interval": zone.full_read_interval,
        "approval_mode": zone.approval_mode,
        "verify_interval": zone.verify_interval,
        "enabled": "on",
        "private": "on",
    }
    page = client.get(f"/zones/{zone.id}/edit/").content.decode()
    assert "PowerDNS does not know whether a zone is internal" in page
    assert client.post(f"/zones/{zone.id}/edit/", form).status_code == 302
    zone.refresh_from_db()
    assert zone.private is True
    # a private address in an internal zone is not a reason to wait for a second person
    from dnsportal.queue import enqueue

    Zone.objects.filter(id=zone.id).update(approval_mode=Zone.Approval.FLAGGED)
    publish({f"db.{zone.name.rstrip('.')}": "192.168.1.5"}, "rke2-dc1")
    enqueue("zone_reconcile", zone_id=zone.id, full_read=True)
    run_jobs()
    assert ChangeSet.objects.get(zone=zone).status == ChangeSet.Status.APPLIED


def test_private_addresses_are_flagged_only_where_the_name_is_public(client, root, zone: Zone) -> None:
    from records.models import Endpoint

    apex = zone.name.rstrip(".")
    publish({f"db.{apex}": "192.168.1.5"}, "rke2-dc1")
    Endpoint.objects.filter(dns_name=f"db.{apex}").update(private_targets=["192.168.1.5"])
    flagged = 'class="badge bad" title="A private address in a public zone'
    assert flagged not in client.get(f"/endpoints/host/db.{apex}/").content.decode()  # internal zone
    Zone.objects.filter(id=zone.id).update(private=False)
    assert flagged in client.get(f"/endpoints/host/db.{apex}/").content.decode()


def test_the_editor_does_not_offer_latency_routing_in_a_powerdns_zone(client, root, zone: Zone) -> None:
    apex = zone.name.rstrip(".")
    publish({f"ok.{apex}": "10.0.0.2"}, "rke2-dc1")
    publish(
        {f"near.{apex}": "10.0.0.1"}, "rke2-dc1", set_identifier="eu", properties={"aws/region": "eu-west-1"}
    )
    client.force_login(root)

    def kind_input(page: str, kind: str) -> str:
        found = re.search(rf'<input type="radio" name="kind" value="{kind}"[^>]*>', page)
        assert found, page[:3000]
        return found.group(0)

    page = client.get(f"/endpoints/host/ok.{apex}/policy/").content.decode()
    assert "disabled" in kind_input(page, "latency")
    assert "disabled" not in kind_input(page, "weighted")
    assert "PowerDNS has no latency-based routing" in page
    # a name whose clusters ask for latency now keeps the choice: the page never drops what is there
    page = client.get(f"/endpoints/host/near.{apex}/policy/").content.decode()
    assert "disabled" not in kind_input(page, "latency") and "checked" in kind_input(page, "latency")
