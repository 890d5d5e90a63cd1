"""The pages of a large zone cost the same number of queries whatever the zone's size, and they are paginated:
the zone page, the records list, the endpoints list, a hostname's page and a change set's diff.

Each size is built as discovery and a reconcile store it (Services, endpoints, the zone's records with their
ownership TXT, a change set of one change per tenth name); the query counts of a zone ten times larger must
not be higher. `bench/scale.py` measures the same pages at 100,000 endpoints.
"""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from clusters.models import Cluster, DiscoveredObject
from records.models import Change, ChangeSet, Endpoint, ProviderAccount, Zone, ZoneRecord
from records.ownership import MAPPER_TYPES, TxtNaming
from records.plan import ZoneConfig
from records.selectors import ownership_names

pytestmark = pytest.mark.django_db


def build(size: int, suffix: str) -> tuple[Zone, ChangeSet, str]:
    """A zone `<suffix>.example.com` of `size` names from two clusters (A + ownership TXT each) and a change
    set creating a tenth of them; returns the zone, the change set and one name."""
    account, _ = ProviderAccount.objects.get_or_create(name="aws", defaults={"credential_kind": "default"})
    zone = Zone.objects.create(account=account, provider_zone_id=f"Z{suffix}", name=f"{suffix}.example.com.")
    clusters = [
        Cluster.objects.get_or_create(name=f"{suffix}-{k}", defaults={"server": "https://127.0.0.1:1"})[0]
        for k in range(2)
    ]
    names = [f"svc-{i}.{suffix}.example.com" for i in range(size)]
    sources = DiscoveredObject.objects.bulk_create(
        [
            DiscoveredObject(cluster=clusters[i % 2], kind="Service", namespace="default", name=f"svc-{i}")
            for i in range(size)
        ]
    )
    Endpoint.objects.bulk_create(
        [
            Endpoint(
                cluster=clusters[i % 2],
                source=s,
                dns_name=names[i],
                record_type="A",
                targets=[f"11.0.{i // 250 % 250}.{i % 250 + 1}"],
                resource=f"service/default/svc-{i}",
                labels={"resource": f"service/default/svc-{i}"},
            )
            for i, s in enumerate(sources)
        ]
    )
    records = []
    for i, name in enumerate(names):
        a = {"Name": f"{name}.", "Type": "A", "TTL": 300, "ResourceRecords": [{"Value": f"11.0.0.{i % 250}"}]}
        txt = {
            "Name": f"_dnsportal-a.{name}.",
            "Type": "TXT",
            "TTL": 300,
            "ResourceRecords": [{"Value": '"heritage=external-dns,external-dns/owner=dnsportal"'}],
        }
        records.append(ZoneRecord(zone=zone, name=f"{name}.", type="A", data=a, ownership="owned"))
        records.append(ZoneRecord(zone=zone, name=txt["Name"], type="TXT", data=txt, ownership="registry"))
    ZoneRecord.objects.bulk_create(records)
    Zone.objects.filter(id=zone.id).update(ownership_counts={"owned": size, "registry": size})
    cs = ChangeSet.objects.create(
        zone=zone, fingerprint=suffix * 8, summary={"create": size // 10}, status=ChangeSet.Status.APPLIED
    )
    Change.objects.bulk_create(
        [
            Change(
                changeset=cs,
                position=n,
                kind="create",
                name=f"{names[i]}.",
                type="A",
                reasons=[f"new in {clusters[i % 2].name}"],
                sources=[f"Service {clusters[i % 2].name}/default/svc-{i}"],
                after={"Name": f"{names[i]}.", "Type": "A", "ResourceRecords": [{"Value": "11.0.0.1"}]},
                actions=[],
                status=Change.Status.APPLIED,
            )
            for n, i in enumerate(range(0, size, 10))
        ]
    )
    return zone, cs, names[3]


def pages(zone: Zone, cs: ChangeSet, name: str) -> dict[str, str]:
    return {
        "zone": f"/zones/{zone.id}/",
        "records": "/records/",
        "endpoints": "/endpoints/",
        "hostname": f"/endpoints/host/{name}/",
        "changeset": f"/changes/{cs.id}/",
    }


def cost(client, url: str) -> tuple[int, bytes]:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    return len(captured), response.content


def test_pages_of_a_zone_ten_times_larger_make_no_more_queries(client, carol):
    client.force_login(carol)
    small = pages(*build(60, "small"))
    counts_small = {page: cost(client, url)[0] for page, url in small.items()}
    # one zone at a time: a page of endpoints from two zones plans each zone's names
    Zone.objects.all().delete()
    Cluster.objects.all().delete()
    large = pages(*build(600, "large"))
    counts_large = {page: cost(client, url)[0] for page, url in large.items()}
    assert counts_large == counts_small


def test_no_page_reads_the_snapshots_of_a_zone_or_change_set(client, carol):
    """A zone's last applied endpoints and a change set's desired endpoints are megabytes of JSON in a large
    zone: a page joining rows to their zone or change set must leave them out."""
    client.force_login(carol)
    zone, cs, name = build(60, "snap")
    Zone.objects.filter(id=zone.id).update(applied_desired=[{"dnsName": "x.snap.example.com"}])
    urls = [*pages(zone, cs, name).values(), "/changes/", "/verification/"]
    for url in urls:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(url).status_code == 200, url
        sql = " ".join(q["sql"] for q in captured.captured_queries)
        assert "applied_desired" not in sql, url
        assert '"records_changeset"."desired"' not in sql, url


def test_a_large_change_set_shows_its_diff_a_page_at_a_time_and_page_2_is_reachable(client, carol):
    client.force_login(carol)
    _zone, cs, _ = build(3000, "diff")  # 300 changes: more than a page
    _, first = cost(client, f"/changes/{cs.id}/")
    assert b"svc-0.diff.example.com." in first
    assert b"svc-2990.diff.example.com." not in first
    assert b'href="?page=2#changes"' in first
    _, second = cost(client, f"/changes/{cs.id}/?page=2")
    assert b"svc-0.diff.example.com." not in second
    assert b"svc-1000.diff.example.com." in second  # the 101st change
    # the status panel, polled while the change set applies, keeps the page it shows
    _, polled = cost(client, f"/changes/{cs.id}/status/?page=2")
    assert b"svc-1000.diff.example.com." in polled
    _, found = cost(client, f"/changes/{cs.id}/?q=svc-2990.")
    assert b"svc-2990.diff.example.com." in found
    assert b"svc-0.diff.example.com." not in found


def test_the_records_and_endpoints_lists_are_paginated_and_searchable(client, carol):
    client.force_login(carol)
    zone, _, _ = build(600, "lists")
    for url in ("/records/", "/endpoints/", f"/zones/{zone.id}/"):
        _, first = cost(client, url)
        assert b"page=2" in first, url
        _, second = cost(client, f"{url}?page=2")
        assert second != first
        _, found = cost(client, f"{url}?q=svc-599.")
        assert b"svc-599.lists.example.com" in found, url
        assert b"svc-1.lists.example.com" not in found, url


@pytest.mark.parametrize(
    "naming",
    [
        TxtNaming(prefix="_dnsportal-%{record_type}."),
        TxtNaming(),
        TxtNaming(prefix="own-"),
        TxtNaming(suffix="-%{record_type}-own"),
        TxtNaming(suffix="-own", wildcard_replacement="any"),
    ],
    ids=str,
)
@pytest.mark.parametrize("fqdn", ["web.shop.example.com.", "*.shop.example.com.", "example.com."])
def test_the_ownership_names_a_page_looks_up_are_every_name_the_registry_reads_back(naming, fqdn):
    """The endpoints list plans a page of names from the zone's records at those names and at their
    ownership TXT names, looked up exactly: every name a TXT of the record can have is among them."""
    config = ZoneConfig(zone="example.com.", owner_id="dnsportal", naming=naming, also_read=(TxtNaming(),))
    names = ownership_names(config, fqdn)
    for n in (naming, TxtNaming()):
        typed = {n.txt_name(fqdn, t) for t in MAPPER_TYPES}
        assert typed <= names
        legacy_prefix = n.prefix.replace("%{record_type}", "")
        first, _, rest = fqdn.partition(".")
        assert f"{legacy_prefix}{first}{n.suffix.replace('%{record_type}', '')}.{rest}" in names
    for name in names:
        back = [n.record_for_txt(name) for n in (naming, TxtNaming())]
        assert any(
            b is not None and b[0] in (fqdn, fqdn.replace("*", naming.wildcard_replacement)) for b in back
        )


def test_a_page_deep_in_a_list_holds_the_rows_an_offset_over_the_whole_rows_gives(client, carol):
    """The lists find a page's ids first (dnsportal.paging.IdPaginator): every page, filtered or not, holds
    the rows, in order, that a plain LIMIT/OFFSET over the whole rows holds."""
    from django.core.paginator import Paginator

    from dnsportal.paging import IdPaginator
    from records import selectors

    zone, _, _ = build(450, "deep")
    lists = [
        selectors.endpoints().order_by("dns_name", "record_type", "set_identifier", "cluster_id"),
        selectors.endpoints(q="svc-1", cluster="deep-1"),
        ZoneRecord.objects.select_related("zone").order_by("zone_id", "name", "type", "set_identifier"),
        zone.records.filter(ownership="owned"),
    ]
    for rows in lists:
        plain, by_id = Paginator(rows, 20), IdPaginator(rows, 20)
        assert by_id.num_pages == plain.num_pages > 2
        for number in (1, 2, plain.num_pages // 2, plain.num_pages):
            assert [r.pk for r in by_id.page(number)] == [r.pk for r in plain.page(number)], (rows, number)
    client.force_login(carol)
    _, middle = cost(client, "/endpoints/?cluster=deep-1&page=3")
    assert b"deep-0" not in middle.split(b"<tbody>")[1]
    assert b"Page 3 of 3 (225 in all)" in middle


def test_the_lists_find_a_deep_page_in_an_index_alone():
    """A page's ids come from an index in the list's order that carries the id: no sort of every row, and
    no read of the rows skipped (an index-only scan), whatever the table's size."""
    from records import selectors

    zone, _, _ = build(200, "idx")
    lists = {
        "endpoints": selectors.endpoints().order_by(
            "dns_name", "record_type", "set_identifier", "cluster_id"
        ),
        "records": ZoneRecord.objects.order_by("zone_id", "name", "type", "set_identifier"),
        "zone": zone.records.all(),
    }
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE records_endpoint")
        cursor.execute("ANALYZE records_zonerecord")
        # with few rows a sort or a scan of the table is cheaper: make them as dear as PostgreSQL allows
        for plan_kind in ("sort", "incremental_sort", "seqscan", "bitmapscan"):
            cursor.execute(f"SET LOCAL enable_{plan_kind} = off")
    for name, rows in lists.items():
        plan = rows.values("pk")[150:250].explain()
        assert "Index Only Scan" in plan, (name, plan)
        assert "Sort" not in plan, (name, plan)


def test_a_page_of_endpoints_looks_up_its_records_in_one_array_whatever_the_names(client, carol):
    """The zone's records at a page's names and their ownership TXT names (about 30 a name) are one array
    parameter joined to the zone's index, not an `IN` list of thousands of parameters, which PostgreSQL
    planned as a scan of every record of the zone."""
    client.force_login(carol)
    build(300, "arr")
    with CaptureQueriesContext(connection) as captured:
        assert client.get("/endpoints/").status_code == 200
    lookups = [q["sql"] for q in captured.captured_queries if '"records_zonerecord"."data"' in q["sql"]]
    assert len(lookups) == 1
    assert "unnest(" in lookups[0]
    assert "_dnsportal-a.svc-0.arr.example.com." in lookups[0]


def test_no_api_view_or_review_page_reads_the_snapshots_of_a_zone_or_change_set(client, carol):
    """The API's change sets, proposals and verifications, the proposals list and the shift and drill pages
    join their rows to a zone or change set too: the snapshots stay out of their SQL as well."""
    from records.models import FailoverDrill, PolicyProposal, ShiftPlan, ShiftStep, Verification

    client.force_login(carol)
    zone, cs, name = build(20, "apisnap")
    Zone.objects.filter(id=zone.id).update(applied_desired=[{"dnsName": "x.apisnap.example.com"}])
    ChangeSet.objects.filter(id=cs.id).update(desired=[{"dnsName": "x.apisnap.example.com"}])
    host = name
    proposal = PolicyProposal.objects.create(zone=zone, hostname=host, policy={}, changeset=cs)
    v = Verification.objects.create(zone=zone, kind=Verification.Kind.DISTRIBUTION, hostname=host)
    plan = ShiftPlan.objects.create(
        zone=zone, hostname=host, clusters=[], start={}, splits=[], base_policy={}, hold_seconds=1
    )
    ShiftStep.objects.create(plan=plan, index=1, split={}, proposal=proposal)
    drill = FailoverDrill.objects.create(zone=zone, hostname=host, action="url", primary={}, secondary={})
    urls = [
        "/api/v1/changesets/",
        f"/api/v1/changesets/{cs.id}/",
        "/api/v1/proposals/",
        f"/api/v1/proposals/{proposal.id}/",
        "/api/v1/verifications/",
        f"/api/v1/verifications/{v.id}/",
        "/policies/proposals/",
        f"/shifts/{plan.id}/",
        f"/drills/{drill.id}/",
    ]
    for url in urls:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(url).status_code == 200, url
        sql = " ".join(q["sql"] for q in captured.captured_queries)
        assert "applied_desired" not in sql, url
        assert '"records_changeset"."desired"' not in sql, url


def test_a_hostname_page_reads_the_names_endpoints_and_zones_once_each(client, carol):
    """Its rows, the traffic-policy card and the drill card share one read of the name's endpoints and of the
    zones holding it (the why-not-published check reads its own: it is the endpoints list's too)."""
    client.force_login(carol)
    _, _, name = build(20, "one")
    with CaptureQueriesContext(connection) as captured:
        page = client.get(f"/endpoints/host/{name}/")
    assert page.status_code == 200 and name.encode() in page.content
    sql = [q["sql"] for q in captured.captured_queries]
    endpoint_reads = [s for s in sql if s.startswith('SELECT "records_endpoint"."id"')]
    assert len(endpoint_reads) == 1, endpoint_reads
    names_to_zones = 'SELECT "records_zone"."id" AS "id", "records_zone"."name"'
    zone_matches = [s for s in sql if s.startswith(names_to_zones)]
    assert len(zone_matches) == 1, zone_matches
