"""Probe over HTTP: each request resolves the name on real PowerDNS servers (tools/pdns) and reaches the web
server (tools/demo_http) of the cluster the answer points at, whose page names the cluster.

The clusters' servers listen on 127.0.0.2 (rke2-dc) and 127.0.0.3 (k3s-edge), one port for both; the zone's
records and the clusters' endpoints are rows, as the import and discovery would leave them. A correct split
fails a 1 % chi-square test once in a hundred runs: the statistical tests probe once more before failing,
which a wrong split (p < 1e-30 here) never survives.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from dnsportal.errors import PortalError
from dnsportal.models import JobRun
from records import verification_services
from records.models import ProviderAccount, Verification, Zone, ZoneRecord
from records.probe import probe_resolving
from records.verify import Nameserver
from tests.fixtures.dns import TestZone
from tests.fixtures.zones import publish
from tools.demo_http import PageServer, start_page_servers

pytestmark = pytest.mark.django_db(transaction=True)

RKE2, K3S = "127.0.0.2", "127.0.0.3"
WEIGHTED_80_20 = f"A \"pickwrandom({{{{80,'{RKE2}'}},{{20,'{K3S}'}}}})\""


@pytest.fixture
def pages() -> Iterator[list[PageServer]]:
    servers = start_page_servers({RKE2: "rke2-dc", K3S: "k3s-edge"})
    yield servers
    for server in servers:
        server.stop()


@pytest.fixture
def zone(dns_zone: TestZone, pdns_servers) -> Zone:
    """The portal's row of the zone both PowerDNS servers serve, verified against them (the override)."""
    account = ProviderAccount.objects.create(name="probe-test")
    return Zone.objects.create(
        account=account,
        provider_zone_id="Z-PROBE",
        name=dns_zone.name,
        nameserver_override=",".join(f"127.0.0.1:{s.dns_port}" for s in pdns_servers),
    )


def _record(zone: Zone, label: str, values: list[str], set_identifier: str = "", weight: int | None = None):
    data = {
        "Name": f"{label}.{zone.name}",
        "Type": "A",
        "TTL": 0,
        "ResourceRecords": [{"Value": v} for v in values],
    }
    if set_identifier:
        data |= {"SetIdentifier": set_identifier, "Weight": weight}
    ZoneRecord.objects.create(
        zone=zone,
        name=f"{label}.{zone.name}",
        type="A",
        set_identifier=set_identifier,
        data=data,
        ownership=ZoneRecord.Ownership.OWNED,
    )
    return f"{label}.{zone.name}".rstrip(".")


def _weighted(zone: Zone, dns_zone: TestZone) -> str:
    """`w.<zone>`: 80 to rke2-dc, 20 to k3s-edge, in the zone's rows, the clusters' endpoints and PowerDNS."""
    host = _record(zone, "w", [RKE2], "rke2", 80)
    _record(zone, "w", [K3S], "k3s", 20)
    publish({host: RKE2}, "rke2-dc", set_identifier="rke2", properties={"aws/weight": "80"})
    publish({host: K3S}, "k3s-edge", set_identifier="k3s", properties={"aws/weight": "20"})
    dns_zone.replace([("w", "LUA", 0, [WEIGHTED_80_20])])
    return host


def _probe(alice, zone: Zone, host: str, port: int, run_jobs, n: int = 1000, tries: int = 1) -> Verification:
    for _ in range(tries):
        verification_services.probe_request(
            actor=alice, zone_id=zone.id, hostname=host, n=n, port=port, path="/"
        )
        run_jobs()
        v = Verification.objects.filter(kind=Verification.Kind.PROBE).latest("id")
        if v.status == Verification.Status.OK:
            break
    return v


def test_a_weighted_80_20_name_is_served_80_20_per_cluster(zone, dns_zone, pages, alice, run_jobs, client):
    host = _weighted(zone, dns_zone)
    v = _probe(alice, zone, host, pages[0].port, run_jobs, tries=2)
    assert v.status == "ok", v.message
    assert v.message.startswith("consistent with 80/20"), v.message
    probe = v.report["probe"]
    assert probe["n"] == 1000 and probe["errors"] == 0 and probe["unmatched"] == 0
    assert probe["counts"]["rke2-dc"] + probe["counts"]["k3s-edge"] == 1000
    assert abs(probe["counts"]["rke2-dc"] / 1000 - 0.8) < 0.05
    # each address served by its own cluster, and only by it
    assert set(probe["per_address"]) == {RKE2, K3S}
    assert set(probe["per_address"][RKE2]) == {"rke2-dc"} and set(probe["per_address"][K3S]) == {"k3s-edge"}
    rows = {r["key"]: r for r in v.report["verdict"]["rows"]}
    assert rows["rke2-dc"]["intended"] == pytest.approx(0.8) and rows["k3s-edge"][
        "intended"
    ] == pytest.approx(0.2)
    assert len(v.nameservers) == 2

    client.force_login(alice)
    detail = client.get(f"/verification/{v.id}/").content.decode()
    assert "<svg" in detail and f"Responses per cluster for {host}: intended vs observed" in detail
    assert "rke2-dc: intended 80 %" in detail  # the chart's description states every bar
    assert 'id="probe-per-address"' in detail and RKE2 in detail and K3S in detail
    assert "consistent with 80/20" in detail
    page = client.get(f"/endpoints/host/{host}/").content.decode()
    assert 'id="probe-chart"' in page and "consistent with 80/20" in page


def test_a_round_robin_name_is_served_evenly_by_the_clusters_publishing_its_values(
    zone, dns_zone, pages, alice, run_jobs
):
    host = _record(zone, "rr", [RKE2, K3S])
    publish({host: RKE2}, "rke2-dc")
    publish({host: K3S}, "k3s-edge")
    dns_zone.replace([("rr", "A", 0, [RKE2, K3S])])  # PowerDNS shuffles the two: each is first half the time
    v = _probe(alice, zone, host, pages[0].port, run_jobs, n=600, tries=2)
    assert v.status == "ok", v.message
    assert v.message.startswith("consistent with 50/50"), v.message
    counts = v.report["probe"]["counts"]
    assert counts["rke2-dc"] + counts["k3s-edge"] == 600 and abs(counts["rke2-dc"] / 600 - 0.5) < 0.08


def test_a_cluster_whose_server_is_down_shows_as_errors(zone, dns_zone, pages, alice, run_jobs, client):
    host = _weighted(zone, dns_zone)
    pages[1].stop()  # k3s-edge's web server is gone; DNS still sends a fifth of the requests there
    v = _probe(alice, zone, host, pages[0].port, run_jobs, n=300)
    assert v.status == "failed"
    probe = v.report["probe"]
    assert probe["errors"] == probe["per_address"][K3S]["error"] > 20 and probe["dns_errors"] == 0
    assert probe["counts"]["rke2-dc"] + probe["errors"] == 300
    assert f"{probe['errors']} of 300 requests failed" in v.message
    assert "not as configured: k3s-edge receives 0 %, expected 20 %" in v.message
    assert "ConnectionRefusedError" in probe["error_samples"][0] and K3S in probe["error_samples"][0]

    client.force_login(alice)
    detail = client.get(f"/verification/{v.id}/").content.decode()
    assert "First errors" in detail and "ConnectionRefusedError" in detail
    assert f'<dd class="error">{probe["errors"]}</dd>' in detail


def test_a_page_naming_no_known_cluster_is_unmatched_and_fails_the_check(zone, dns_zone, alice, run_jobs):
    host = _weighted(zone, dns_zone)
    servers = start_page_servers({RKE2: "someone-else", K3S: "k3s-edge"})
    try:
        v = _probe(alice, zone, host, servers[0].port, run_jobs, n=200)
    finally:
        for server in servers:
            server.stop()
    assert v.status == "failed"
    probe = v.report["probe"]
    assert probe["unmatched"] == probe["per_address"][RKE2]["unmatched"] > 100
    assert "not as configured: no cluster named receives" in v.message


def test_bad_input_is_an_error_on_the_field_and_nothing_is_enqueued(zone, dns_zone, alice, client):
    host = _weighted(zone, dns_zone)
    client.force_login(alice)
    runs = JobRun.objects.count()
    cases = [
        ({"n": "0"}, "n must be 1–10000"),  # noqa: RUF001
        ({"n": "10001"}, "n must be 1–10000"),  # noqa: RUF001
        ({"n": "many"}, "n must be a whole number"),
        ({"port": "70000"}, "port must be 1–65535"),  # noqa: RUF001
        ({"path": "index.html"}, "path must start with /"),
        ({"path": "/a b"}, "path must start with /"),
    ]
    for change, error in cases:
        data = {"zone_id": zone.id, "hostname": host, "n": "200", "port": "80", "path": "/", **change}
        resp = client.post("/verification/probe/", data)
        assert resp.status_code == 422, change
        page = resp.content.decode()
        assert error in page, (change, page[page.find("Probe over HTTP") :][:2000])
        assert 'aria-invalid="true"' in page  # the field with the error says so to assistive technology
    assert JobRun.objects.count() == runs
    assert not Verification.objects.exists()
    with pytest.raises(PortalError, match="n must be 1–10000"):  # noqa: RUF001 (the service refuses alike)
        verification_services.probe_request(
            actor=alice, zone_id=zone.id, hostname=host, n=0, port=80, path="/"
        )


def test_the_hostname_page_offers_the_probe_beside_the_split(zone, dns_zone, alice, client):
    host = _weighted(zone, dns_zone)
    client.force_login(alice)
    page = client.get(f"/endpoints/host/{host}/").content.decode()
    assert "Measure the split" in page
    form = page[page.find('action="/verification/probe/"') :]
    form = form[: form.find("</form>")]
    assert 'name="n" value="200"' in form and 'min="1"' in form and 'max="10000"' in form
    assert 'name="port" value="80"' in form and 'name="path" value="/"' in form
    assert f'name="zone_id" value="{zone.id}"' in form and f'name="hostname" value="{host}"' in form
    assert '<label for="probe-n">' in form and "Probe over HTTP</button>" in form
    assert "Not probed yet." in page


def test_in_the_demo_the_probe_offers_the_port_the_demo_clusters_answer_on(
    zone, dns_zone, alice, client, settings, tmp_path
):
    from dnsportal.embedded import record_ports

    host = _weighted(zone, dns_zone)
    settings.DATA_DIR = tmp_path
    record_ports(tmp_path, demo_http=8080)
    client.force_login(alice)
    assert 'name="port" value="80"' in client.get(f"/endpoints/host/{host}/").content.decode()
    Zone.objects.filter(id=zone.id).update(is_demo=True)
    assert 'name="port" value="8080"' in client.get(f"/endpoints/host/{host}/").content.decode()


def test_the_probe_follows_the_answers_and_counts_names_that_do_not_resolve(
    dns_zone: TestZone, pdns_nameservers: list[Nameserver], pages
) -> None:
    dns_zone.replace([("w", "LUA", 0, [WEIGHTED_80_20])])
    markers = {"rke2-dc": "rke2-dc", "k3s-edge": "k3s-edge"}
    probe = probe_resolving(pdns_nameservers, dns_zone.fqdn("w"), markers=markers, n=400, port=pages[0].port)
    assert probe.errors == 0 and sum(probe.counts.values()) == 400
    assert probe.counts["rke2-dc"] > probe.counts["k3s-edge"] > 0  # both asked: the split reached HTTP
    missing = probe_resolving(
        pdns_nameservers, dns_zone.fqdn("nope"), markers=markers, n=10, port=pages[0].port
    )
    assert missing.errors == missing.dns_errors == 10 and missing.per_address == {}
    assert "NXDOMAIN" in missing.error_samples[0]
