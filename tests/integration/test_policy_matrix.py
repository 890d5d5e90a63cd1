"""The Policies page: every hostname a cluster serves as a matrix of hostname by cluster, with what the zone
serves, conflicts, the last verification and open proposals; filters as a plain GET form and through htmx;
pages of 50 names read in a bounded number of queries. Real PostgreSQL, a zone imported from moto and
published by the real reconcile and apply jobs, pages through the Django test client."""

from __future__ import annotations

import html
import re
from datetime import timedelta

import pytest
from django.utils import timezone

from clusters.models import Cluster, DiscoveredObject
from dnsportal.queue import enqueue
from records import policy_matrix, services
from records.models import ChangeSet, Endpoint, Verification, Zone
from tests.fixtures.zones import import_zone

pytestmark = pytest.mark.django_db(transaction=True)

ZONE = "pol.example.com"


@pytest.fixture
def zone(root, route53, moto_service) -> Zone:
    return import_zone(root, route53, moto_service.url, ZONE, approval_mode="flagged")


def _endpoint(
    cluster_name: str,
    dns_name: str,
    record_type: str,
    targets: list[str],
    *,
    set_identifier: str = "",
    properties: dict[str, str] | None = None,
) -> Endpoint:
    """An endpoint row as discovery stores it for Service `default/<first label>` in `cluster_name`."""
    cluster, _ = Cluster.objects.get_or_create(name=cluster_name, defaults={"server": "https://127.0.0.1:1"})
    service = dns_name.split(".")[0]
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


def _names_on_two_clusters() -> None:
    """Round robin across two clusters, weighted 80/20, A vs CNAME, and a name one cluster serves alone."""
    _endpoint("rke2-dc1", f"rr.{ZONE}", "A", ["203.0.113.10"])
    _endpoint("eks-eu1", f"rr.{ZONE}", "A", ["203.0.113.20"])
    _endpoint("rke2-dc1", f"blue.{ZONE}", "A", ["203.0.113.11"], set_identifier="dc1",
              properties={"aws/weight": "80"})  # fmt: skip
    _endpoint("eks-eu1", f"blue.{ZONE}", "A", ["203.0.113.21"], set_identifier="eu1",
              properties={"aws/weight": "20"})  # fmt: skip
    _endpoint("rke2-dc1", f"shop.{ZONE}", "A", ["203.0.113.12"])
    _endpoint("eks-eu1", f"shop.{ZONE}", "CNAME", ["shop-lb.elb.example.net"])
    _endpoint("k3s-edge", f"solo.{ZONE}", "A", ["198.51.100.7"])


def _more_routing() -> None:
    _endpoint("rke2-dc1", f"fo.{ZONE}", "A", ["203.0.113.13"], set_identifier="dc1",
              properties={"aws/failover": "PRIMARY"})  # fmt: skip
    _endpoint("eks-eu1", f"fo.{ZONE}", "A", ["203.0.113.23"], set_identifier="eu1",
              properties={"aws/failover": "SECONDARY"})  # fmt: skip
    _endpoint("eks-eu1", f"lat.{ZONE}", "A", ["203.0.113.24"], set_identifier="eu1",
              properties={"aws/region": "us-east-1"})  # fmt: skip
    _endpoint("k3s-edge", f"geo.{ZONE}", "A", ["198.51.100.8"], set_identifier="edge",
              properties={"aws/geolocation-country-code": "DE"})  # fmt: skip
    # A weight without a set identifier: ExternalDNS (and the plan) ignore it, so this is round robin.
    _endpoint("k3s-edge", f"plain.{ZONE}", "A", ["198.51.100.9"], properties={"aws/weight": "50"})


def _row(page: str, name: str) -> str:
    match = re.search(rf'<tr id="policy-{re.escape(name)}">.*?</tr>', page, re.S)
    assert match, f"no row for {name}"
    return match.group(0)


def _text(fragment: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", fragment).split())


def _cells(row: str) -> dict[str, tuple[str, str]]:
    """{cluster: (cell text, hover title)} of a row."""
    cells = re.findall(r'<td class="cell[^"]*" data-cluster="([^"]+)" title="([^"]*)">(.*?)</td>', row, re.S)
    return {cluster: (_text(text), html.unescape(title)) for cluster, title, text in cells}


def _listed(page: str) -> list[str]:
    return re.findall(r'<th scope="row"><a href="/endpoints/host/([^/]+)/">', page)


def test_each_hostname_shows_what_each_cluster_asks_for_and_what_the_zone_serves(
    zone, alice, carol, client, route53, run_jobs
):
    _names_on_two_clusters()
    # A record nobody owns (no ownership TXT) at a name a cluster publishes: shown, never touched.
    # And a record another ExternalDNS instance owns, with its ownership TXT at the same name (the layout
    # before ExternalDNS 0.13): the TXT is bookkeeping, not something the zone serves at that name.
    heritage = '"heritage=external-dns,external-dns/owner=team-b,external-dns/resource=service/x/old"'
    records = [
        (f"legacy.{ZONE}", "A", "192.0.2.98"),
        (f"old.{ZONE}", "A", "192.0.2.99"),
        (f"old.{ZONE}", "TXT", heritage),
    ]
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
                for name, rtype, value in records
            ]
        },
    )
    _endpoint("rke2-dc1", f"legacy.{ZONE}", "A", ["203.0.113.14"])
    _endpoint("rke2-dc1", f"old.{ZONE}", "A", ["203.0.113.15"])
    services.zone_reconcile_request(actor=alice, zone_id=zone.id)
    run_jobs()
    assert ChangeSet.objects.get(zone=zone).status == ChangeSet.Status.APPLIED
    client.force_login(carol)

    page = client.get("/policies/").content.decode()
    # Columns: every cluster that serves a name, each linking to its page.
    headers = re.findall(r'<th scope="col"><a href="/clusters/([^/]+)/">', page)
    assert headers == ["eks-eu1", "k3s-edge", "rke2-dc1"]
    assert _listed(page) == [f"{n}.{ZONE}" for n in ("blue", "legacy", "old", "rr", "shop", "solo")]

    rr = _row(page, f"rr.{ZONE}")
    assert f'<a href="/endpoints/host/rr.{ZONE}/">rr.{ZONE}</a>' in rr
    assert _cells(rr) == {
        "eks-eu1": ("round robin", "A 203.0.113.20"),
        "k3s-edge": ("—", "k3s-edge does not serve this name"),
        "rke2-dc1": ("round robin", "A 203.0.113.10"),
    }
    # One record set with both clusters' targets, owned by the portal (it just wrote it).
    assert '<span title="A 203.0.113.10, 203.0.113.20 · TTL 300">A round robin</span>' in rr
    assert '<span class="badge ok">owned</span>' in rr
    assert '<td class="conflicts">' in rr and ">none</span>" in rr

    blue = _row(page, f"blue.{ZONE}")
    assert _cells(blue)["rke2-dc1"] == ("weighted 80", "A 203.0.113.11 · set id dc1")
    assert _cells(blue)["eks-eu1"] == ("weighted 20", "A 203.0.113.21 · set id eu1")
    assert "A weighted 20</span>" in blue and "A weighted 80</span>" in blue
    assert blue.count('<span class="badge ok">owned</span>') == 2

    shop = _row(page, f"shop.{ZONE}")
    assert _cells(shop)["rke2-dc1"][0] == "round robin"
    assert _cells(shop)["eks-eu1"] == ("round robin", "CNAME shop-lb.elb.example.net")
    conflicts = re.search(r'<td class="conflicts">(.*?)</td>', shop, re.S).group(1)
    assert ">conflict</span>" in conflicts
    assert "a CNAME cannot share its name with other records (A)" in conflicts
    # The objects involved are on the badge's hover.
    assert "Service eks-eu1/default/shop: CNAME shop-lb.elb.example.net" in html.unescape(conflicts)
    # The conflict holds the name back: the zone has nothing there.
    assert "nothing at this name" in shop

    solo = _row(page, f"solo.{ZONE}")
    assert _cells(solo) == {
        "eks-eu1": ("—", "eks-eu1 does not serve this name"),
        "k3s-edge": ("round robin", "A 198.51.100.7"),
        "rke2-dc1": ("—", "rke2-dc1 does not serve this name"),
    }
    assert '<span class="badge ok">owned</span>' in solo

    legacy = _row(page, f"legacy.{ZONE}")
    assert '<span title="A 192.0.2.98 · TTL 300">A round robin</span>' in legacy
    assert '<span class="badge bad">not owned</span>' in legacy
    assert '>not owned</span> <span class="error">' in legacy  # and a conflict: the plan leaves it alone

    old = _row(page, f"old.{ZONE}")
    served = re.search(r'<td class="served">(.*?)</td>', old, re.S).group(1)
    assert '<span title="A 192.0.2.99 · TTL 300">A round robin</span>' in served
    assert '<span class="badge bad">owned by team-b</span>' in served
    assert "TXT" not in served


def test_routing_labels_for_failover_latency_and_geolocation(zone, carol, client):
    _more_routing()
    client.force_login(carol)
    page = client.get("/policies/").content.decode()
    fo = _cells(_row(page, f"fo.{ZONE}"))
    assert fo["rke2-dc1"][0] == "failover PRIMARY" and fo["eks-eu1"][0] == "failover SECONDARY"
    assert _cells(_row(page, f"lat.{ZONE}"))["eks-eu1"][0] == "latency us-east-1"
    assert _cells(_row(page, f"geo.{ZONE}"))["k3s-edge"][0] == "geolocation DE"
    plain = _cells(_row(page, f"plain.{ZONE}"))["k3s-edge"]
    assert plain[0] == "round robin" and "aws/weight ignored" in plain[1]
    # Importing a zone does not read its records: until a reconcile does, the row says so.
    assert "zone not read yet" in _row(page, f"fo.{ZONE}")


def test_each_filter_narrows_the_names_as_a_plain_form_and_through_htmx(
    zone, carol, client, route53, moto_service, root, run_jobs
):
    _names_on_two_clusters()
    _more_routing()
    other = import_zone(root, route53, moto_service.url, "other.example.org")
    _endpoint("rke2-dc1", "api.other.example.org", "A", ["203.0.113.50"])
    # A hosted zone below pol.example.com in the same account holds its own names.
    route53.create_hosted_zone(Name=f"team.{ZONE}", CallerReference="test-team")
    enqueue("account_import_zones", account_id=zone.account_id)
    run_jobs()
    team = Zone.objects.get(account=zone.account, name=f"team.{ZONE}.")
    _endpoint("eks-eu1", f"web.team.{ZONE}", "A", ["203.0.113.60"])
    client.force_login(carol)

    def names(**params: str) -> list[str]:
        full = client.get("/policies/", params)
        partial = client.get("/policies/", params, HTTP_HX_REQUEST="true")
        assert full.status_code == partial.status_code == 200
        body = partial.content.decode()
        # htmx gets the table alone, the same rows as the full page.
        assert "<html" not in body and "<form" not in body and '<div id="policy-table">' not in body
        assert '<div id="policy-table">' in full.content.decode()
        assert _listed(body) == _listed(full.content.decode())
        return [n.removesuffix("." + ZONE) for n in _listed(body)]

    mine = ["blue", "fo", "geo", "lat", "plain", "rr", "shop", "solo"]
    assert names() == ["api.other.example.org", *mine, "web.team"]
    assert names(q="SHO") == ["shop"]
    assert names(zone=str(zone.id)) == mine
    assert names(zone=str(team.id)) == ["web.team"]
    assert names(zone=str(other.id)) == ["api.other.example.org"]
    assert names(zone="99999") == []
    assert names(cluster="k3s-edge") == ["geo", "plain", "solo"]
    assert names(routing="round-robin") == [
        "api.other.example.org",
        "plain",
        "rr",
        "shop",
        "solo",
        "web.team",
    ]
    assert names(routing="weighted") == ["blue"]
    assert names(routing="failover") == ["fo"]
    assert names(routing="latency") == ["lat"]
    assert names(routing="geolocation") == ["geo"]
    assert names(conflict="1") == ["shop"]
    # Filters combine; on endpoints they hold for the same endpoint (this cluster asks for this routing).
    assert names(cluster="eks-eu1", routing="weighted") == ["blue"]
    assert names(cluster="eks-eu1", routing="round-robin") == ["rr", "shop", "web.team"]
    assert names(cluster="k3s-edge", routing="weighted") == []
    assert names(conflict="1", q="rr") == []
    # The form shows the filters it was sent.
    sent = {"routing": "failover", "conflict": "1", "zone": zone.id}
    page = client.get("/policies/", sent).content.decode()
    assert '<option value="failover" selected>failover</option>' in page
    assert 'name="conflict" value="1" checked' in page
    assert f'<option value="{zone.id}" selected>{ZONE}</option>' in page
    assert "No hostname matches these filters." in page
    # The form submits to itself as a plain GET and, with htmx, swaps only the table.
    assert 'method="get"' in page and 'hx-get="/policies/" hx-target="#policy-table"' in page


def test_fifty_names_a_page_in_a_bounded_number_of_queries(
    zone, carol, client, django_assert_max_num_queries
):
    clusters = [Cluster.objects.create(name=n, server="https://127.0.0.1:1") for n in ("eks-eu1", "rke2-dc1")]
    rows = []
    for c in clusters:
        source = DiscoveredObject.objects.create(cluster=c, kind="Service", namespace="default", name="web")
        for i in range(60):
            weight = "80" if c.name == "rke2-dc1" else "20"
            rows.append(
                Endpoint(
                    cluster=c,
                    source=source,
                    dns_name=f"host{i:02d}.{ZONE}",
                    record_type="A",
                    set_identifier=c.name,
                    targets=[f"203.0.113.{i}"],
                    properties={"aws/weight": weight},
                    resource="service/default/web",
                )
            )
    Endpoint.objects.bulk_create(rows)
    client.force_login(carol)
    client.get("/policies/")  # the session and permission caches warm up once

    # Every part of the matrix is read for the page's 50 names at once: endpoints, zone records, conflicts
    # (the plan engine: two queries per zone), verifications, proposals. One query per row or cell would
    # be hundreds.
    with django_assert_max_num_queries(20):
        page = client.get("/policies/").content.decode()
    assert len(_listed(page)) == 50
    assert _cells(_row(page, f"host49.{ZONE}"))["rke2-dc1"][0] == "weighted 80"
    assert "Page 1 of 2 (60 hostnames)" in page
    with django_assert_max_num_queries(20):
        second = client.get("/policies/", {"page": "2"}, HTTP_HX_REQUEST="true").content.decode()
    assert _listed(second) == [f"host{i}.{ZONE}" for i in range(50, 60)]
    assert 'href="?page=1"' in second and 'rel="prev"' in second
    # The pager keeps the filters.
    filtered = client.get("/policies/", {"cluster": "eks-eu1", "q": "host"}).content.decode()
    assert 'href="?q=host&amp;cluster=eks-eu1&amp;page=2"' in filtered


def test_the_last_verification_of_the_name_or_its_zone(zone, carol, client):
    _names_on_two_clusters()
    now = timezone.now()

    def verification(kind: str, status: str, ago: int, hostname: str = "", differences=()) -> Verification:
        return Verification.objects.create(
            zone=zone, kind=kind, status=status, hostname=hostname, started_at=now - timedelta(minutes=ago),
            message=f"{kind} {status}", differences=list(differences),
        )  # fmt: skip

    res, dist = Verification.Kind.RESOLUTION, Verification.Kind.DISTRIBUTION
    verification(res, Verification.Status.OK, ago=60)
    # The latest zone check differs at rr only.
    rr_diff = {
        "nameserver": "ns1",
        "name": f"rr.{ZONE}.",
        "type": "A",
        "kind": "values",
        "message": f"ns1: rr.{ZONE} A answers 192.0.2.1, expected 203.0.113.10, 203.0.113.20",
    }
    check = verification(res, Verification.Status.FAILED, ago=30, differences=[rr_diff])
    # blue's split was measured after that, and came out as planned.
    split = verification(dist, Verification.Status.OK, ago=5, hostname=f"blue.{ZONE}")
    # shop's split was measured before the zone check: the zone check is the last word.
    verification(dist, Verification.Status.FAILED, ago=45, hostname=f"shop.{ZONE}")
    client.force_login(carol)
    page = client.get("/policies/").content.decode()

    def verdict(name: str) -> str:
        return re.search(r'<td class="verdict">(.*?)</td>', _row(page, name), re.S).group(1)

    rr = verdict(f"rr.{ZONE}")
    assert f'href="/verification/{check.id}/"' in rr and '<span class="badge bad">Differs</span>' in rr
    assert "answers 192.0.2.1, expected 203.0.113.10, 203.0.113.20" in html.unescape(rr)
    assert "zone check" in rr
    blue = verdict(f"blue.{ZONE}")
    assert f'href="/verification/{split.id}/"' in blue and '<span class="badge ok">As planned</span>' in blue
    assert "split" in blue
    # The zone check differs elsewhere only: for shop and solo the nameservers answered as planned.
    for name in (f"shop.{ZONE}", f"solo.{ZONE}"):
        v = verdict(name)
        assert f'href="/verification/{check.id}/"' in v and '<span class="badge ok">As planned</span>' in v
        assert "the zone differs at other names" in v


def test_a_name_without_any_verification_says_so(zone, carol, client):
    _endpoint("k3s-edge", f"solo.{ZONE}", "A", ["198.51.100.7"])
    client.force_login(carol)
    page = client.get("/policies/").content.decode()
    assert "not verified" in _row(page, f"solo.{ZONE}")


def test_an_open_proposal_shows_on_its_row(zone, carol, client):
    from records.models import PolicyProposal

    _names_on_two_clusters()
    assert policy_matrix.open_proposals_by_name([f"blue.{ZONE}"]) == {}
    client.force_login(carol)
    assert "proposal #" not in client.get("/policies/").content.decode()

    open_one = PolicyProposal.objects.create(zone=zone, hostname=f"blue.{ZONE}", policy={})
    PolicyProposal.objects.create(zone=zone, hostname=f"rr.{ZONE}", policy={}, status="rejected")
    page = client.get("/policies/").content.decode()
    assert f'<a href="/policies/proposals/{open_one.id}/">proposal #{open_one.id} open</a>' in _row(
        page, f"blue.{ZONE}"
    )
    assert "proposal #" not in _row(page, f"rr.{ZONE}")  # a rejected one is not open


def test_a_viewer_sees_the_page_and_an_anonymous_visitor_is_sent_to_log_in(carol, client, db):
    assert client.get("/policies/").status_code == 302
    client.force_login(carol)
    response = client.get("/policies/")
    assert response.status_code == 200
    # Nothing served yet: the empty state says where hostnames come from.
    assert "No hostname is served by a cluster yet." in response.content.decode()
    _endpoint("k3s-edge", "solo.example.net", "A", ["198.51.100.7"])
    page = client.get("/policies/").content.decode()
    assert _listed(page) == ["solo.example.net"]
    assert "no zone holds this name" in _row(page, "solo.example.net")
    assert ">no zone</span>" in _row(page, "solo.example.net")
