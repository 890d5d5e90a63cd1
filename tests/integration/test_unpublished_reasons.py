"""A name that cannot be planned says why on its hostname page and in the Endpoints list: a conflict between
clusters, a record type the zone does not manage, a record another owner holds, no zone at all. The reasons
come from the plan engine over real rows (PostgreSQL), a zone imported from moto, and rendered pages."""

from __future__ import annotations

import html
import re

import pytest

from clusters.models import Cluster, DiscoveredObject
from dnsportal.models import JobRun
from records import services
from records.models import ChangeSet, Endpoint, Zone
from tests.fixtures.zones import import_zone, publish

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def zone(root, route53, moto_service) -> Zone:
    return import_zone(root, route53, moto_service.url, "why.example.com", approval_mode="flagged")


def _endpoint(
    cluster_name: str,
    service: str,
    dns_name: str,
    record_type: str,
    targets: list[str],
    *,
    set_identifier: str = "",
    properties: dict[str, str] | None = None,
) -> Endpoint:
    """An endpoint row as discovery stores it for Service `default/<service>` in `cluster_name`."""
    cluster, _ = Cluster.objects.get_or_create(name=cluster_name, defaults={"server": "https://127.0.0.1:1"})
    source, _ = DiscoveredObject.objects.get_or_create(
        cluster=cluster, kind="Service", namespace="default", name=service
    )
    resource = f"service/default/{service}"
    return Endpoint.objects.create(
        cluster=cluster,
        source=source,
        dns_name=dns_name,
        record_type=record_type,
        set_identifier=set_identifier,
        targets=targets,
        properties=properties or {},
        resource=resource,
        labels={"resource": resource},
    )


def _rows(page: str, dns_name: str) -> list[str]:
    """The Endpoints table rows of `dns_name`."""
    return [
        row
        for row in re.findall(r"<tr>.*?</tr>", page, re.S)
        if f'href="/endpoints/host/{dns_name}/">{dns_name}</a>' in row
    ]


def test_a_conflict_between_clusters_says_why_on_the_hostname_page_and_in_the_endpoint_list(
    zone, carol, client
):
    # A in one cluster, CNAME in the other: one name cannot be both.
    _endpoint("rke2-dc1", "shop", "shop.why.example.com", "A", ["203.0.113.10"])
    _endpoint("eks-eu1", "shop", "shop.why.example.com", "CNAME", ["shop-lb.elb.example.net"])
    # Failover from two clusters, both PRIMARY.
    primary = {"aws/failover": "PRIMARY"}
    _endpoint("rke2-dc1", "pay", "pay.why.example.com", "A", ["203.0.113.20"], set_identifier="dc1",
              properties=primary)  # fmt: skip
    _endpoint("eks-eu1", "pay", "pay.why.example.com", "A", ["203.0.113.21"], set_identifier="eu1",
              properties=primary)  # fmt: skip
    publish({"fine.why.example.com": "203.0.113.30"})
    client.force_login(carol)

    page = client.get("/endpoints/host/shop.why.example.com/").content.decode()
    section = re.search(r'<section class="card" id="unpublished">.*?</section>', page, re.S).group(0)
    assert "a CNAME cannot share its name with other records (A)" in section
    assert "The name stays as it is in DNS until this is resolved." in section
    assert f'href="/zones/{zone.id}/">why.example.com</a>' in section
    # The objects involved, each with what it asks for.
    assert "Service rke2-dc1/default/shop: A 203.0.113.10" in section
    assert "Service eks-eu1/default/shop: CNAME shop-lb.elb.example.net" in section

    page = client.get("/endpoints/host/pay.why.example.com/").content.decode()
    assert "pay.why.example.com. A: 2 PRIMARY record sets (dc1, eu1); one allowed" in page

    listing = client.get("/endpoints/").content.decode()
    shop = _rows(listing, "shop.why.example.com")
    assert len(shop) == 2
    assert all(">conflict</span>" in row and "a CNAME cannot share its name" in row for row in shop)
    pay = _rows(listing, "pay.why.example.com")
    assert len(pay) == 2
    assert all("2 PRIMARY record sets (dc1, eu1); one allowed" in row for row in pay)
    [fine] = _rows(listing, "fine.why.example.com")
    assert "badge bad" not in fine
    fine_page = client.get("/endpoints/host/fine.why.example.com/").content.decode()
    assert 'id="unpublished"' not in fine_page and "not published" not in fine_page


def test_srv_endpoints_say_the_zone_does_not_manage_srv(zone, carol, client):
    # A NodePort Service: discovery gives an SRV endpoint beside the node addresses.
    _endpoint("k3s-edge", "game", "game.why.example.com", "A", ["198.51.100.7"])
    _endpoint("k3s-edge", "game", "game.why.example.com", "SRV", ["0 50 30777 game.why.example.com"])
    client.force_login(carol)
    why = "SRV records are not published to why.example.com: the zone manages A, AAAA, CNAME records only."

    page = client.get("/endpoints/host/game.why.example.com/").content.decode()
    section = re.search(r'<section class="card" id="unpublished">.*?</section>', page, re.S).group(0)
    assert why in section
    assert ">type not managed</span> <strong>SRV</strong>" in section
    rows = {("SRV" if "<td>SRV" in row else "A"): row for row in re.findall(r"<tr><td>.*?</tr>", page, re.S)}
    assert "not published" in rows["SRV"] and "not published" not in rows["A"]

    listing = client.get("/endpoints/").content.decode()
    [a_row, srv_row] = sorted(_rows(listing, "game.why.example.com"), key=lambda r: "<td>SRV</td>" in r)
    assert why in srv_row
    assert "badge bad" not in a_row


def test_a_name_in_no_imported_zone_says_so(zone, carol, client):
    publish({"api.elsewhere.example.org": "203.0.113.40"})
    client.force_login(carol)
    page = client.get("/endpoints/host/api.elsewhere.example.org/").content.decode()
    assert "No zone for this name: no imported zone holds it, so it is published nowhere." in page
    [row] = _rows(client.get("/endpoints/").content.decode(), "api.elsewhere.example.org")
    assert ">no zone</span>" in row and "No zone for this name" in row


def test_a_record_of_another_owner_holds_the_name_while_owned_names_show_nothing(
    zone, alice, carol, client, route53, run_jobs
):
    # mine.why.example.com is published and applied by the portal (its ownership TXT is in the zone);
    # theirs.why.example.com is held by another ExternalDNS instance.
    route53.change_resource_record_sets(
        HostedZoneId=zone.provider_zone_id,
        ChangeBatch={
            "Changes": [
                {
                    "Action": "CREATE",
                    "ResourceRecordSet": {
                        "Name": name,
                        "Type": rtype,
                        "TTL": 300,
                        "ResourceRecords": [{"Value": value}],
                    },
                }
                for name, rtype, value in (
                    ("theirs.why.example.com", "A", "192.0.2.98"),
                    (
                        "a-theirs.why.example.com",
                        "TXT",
                        '"heritage=external-dns,external-dns/owner=team-b,external-dns/resource=service/x/y"',
                    ),
                )
            ]
        },
    )
    publish({"mine.why.example.com": "203.0.113.50", "theirs.why.example.com": "203.0.113.51"})
    services.zone_reconcile_request(actor=alice, zone_id=zone.id)
    run_jobs()
    assert JobRun.objects.filter(name="changeset_apply", status=JobRun.Status.DONE).exists()
    assert ChangeSet.objects.get(zone=zone).status == ChangeSet.Status.APPLIED
    client.force_login(carol)

    page = client.get("/endpoints/host/theirs.why.example.com/").content.decode()
    assert html.escape("already exists and is owned by 'team-b'") in page
    assert "unless an admin adopts it" in page
    mine = client.get("/endpoints/host/mine.why.example.com/").content.decode()
    assert 'id="unpublished"' not in mine
    listing = client.get("/endpoints/").content.decode()
    assert ">not owned</span>" in _rows(listing, "theirs.why.example.com")[0]
    assert "badge bad" not in _rows(listing, "mine.why.example.com")[0]
