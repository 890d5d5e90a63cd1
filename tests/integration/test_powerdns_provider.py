"""The PowerDNS provider against a real PowerDNS Authoritative on loopback (tools/pdns), through its HTTP API.

The same plan engine as Route53 plans every change here; the provider maps record sets onto plain and LUA
rrsets. Covered: create, update, delete; records the portal does not own left alone; TXT ownership read by the
same rules as Route53; weighted 80/20 as a LUA record measured at about 80/20; failover answering the
secondary once the primary's port closes; what PowerDNS cannot answer refused by the plan with a sentence.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import dns.edns
import dns.message
import dns.query
import pytest

from records.endpoint import Endpoint
from records.ownership import EXTERNAL_DNS_TXT_NAMING
from records.plan import ZoneConfig, compute_plan, record_owners
from records.providers.base import ChangeGroupInput, HealthCheckSpec, ProviderError
from records.providers.powerdns import PowerDNSProvider
from records.providers.powerdns_codec import record_problem
from records.recordset import RecordKey, recordset_from_route53
from records.verify import Nameserver, distribution_verdict, measure_distribution
from tests.fixtures.dns import TestZone
from tools.demo_http import start_page_server
from tools.pdns import PdnsServer

pytest_plugins = ["tests.fixtures.dns"]

OWNER = "dnsportal-test"


@pytest.fixture
def zone(pdns: PdnsServer) -> Iterator[TestZone]:
    from tests.fixtures.dns import new_zone_name

    z = TestZone(new_zone_name(), [pdns])
    pdns.create_zone(z.name)
    yield z
    pdns.delete_zone(z.name)


@pytest.fixture
def provider(pdns: PdnsServer) -> PowerDNSProvider:
    return PowerDNSProvider(
        f"http://127.0.0.1:{pdns.api_port}", pdns.api_key, dns_servers=[f"127.0.0.1:{pdns.dns_port}"]
    )


def config(zone: TestZone) -> ZoneConfig:
    # as records.services.zone_config builds it: ExternalDNS's default naming is read too
    return ZoneConfig(
        zone=zone.name,
        owner_id=OWNER,
        public=False,
        record_problem=record_problem,
        also_read=(EXTERNAL_DNS_TXT_NAMING,),
    )


def current(provider: PowerDNSProvider, zone: TestZone):
    return [recordset_from_route53(d) for d in provider.list_record_sets(zone.name)]


def reconcile(provider: PowerDNSProvider, zone: TestZone, desired: list[Endpoint]):
    """Plan against what the server holds and apply every group; returns the plan."""
    plan = compute_plan(desired, current(provider, zone), config(zone))
    groups = [ChangeGroupInput(i, g.changes) for i, g in enumerate(plan.groups)]
    result = provider.apply(zone.name, groups)
    assert result.failed == {}, result.failed
    assert sorted(result.applied) == list(range(len(groups)))
    return plan


def ask(server: PdnsServer, name: str, rdtype: str = "A") -> list[str]:
    resp = dns.query.udp(dns.message.make_query(name, rdtype), "127.0.0.1", port=server.dns_port, timeout=2)
    return sorted(
        str(rd) for rrset in resp.answer for rd in rrset if rrset.rdtype == dns.rdatatype.from_text(rdtype)
    )


def rrset(server: PdnsServer, zone: TestZone, name: str, rdtype: str) -> dict | None:
    return next((r for r in server.rrsets(zone.name) if r["name"] == name and r["type"] == rdtype), None)


def ep(zone: TestZone, label: str, targets, *, sid: str = "", cluster: str = "eks", **props: str) -> Endpoint:
    return Endpoint.make(
        zone.fqdn(label).rstrip("."),
        "A",
        targets,
        set_identifier=sid,
        provider_specific={f"aws/{k.replace('_', '-')}": v for k, v in props.items()},
        labels={"resource": f"service/default/{label}"},
        cluster=cluster,
    )


def test_create_update_delete_leave_foreign_records_alone(
    pdns: PdnsServer, provider: PowerDNSProvider, zone: TestZone
) -> None:
    # Not ours: one record nobody owns, one an ExternalDNS instance owns (its TXT in ExternalDNS's format).
    zone.replace(
        [
            ("legacy", "A", 300, ["10.9.9.9"]),
            ("team", "A", 300, ["10.8.8.8"]),
            ("a-team", "TXT", 300, ['"heritage=external-dns,external-dns/owner=other-cluster"']),
        ]
    )
    foreign_before = {
        (r["name"], r["type"]): r["records"] for r in pdns.rrsets(zone.name) if r["type"] in ("A", "TXT")
    }
    desired = [ep(zone, "app", ["10.0.0.1"]), ep(zone, "api", ["10.0.0.2", "10.0.0.3"])]
    plan = reconcile(provider, zone, desired)
    assert plan.counts()["create"] == 2
    assert ask(pdns, zone.fqdn("api")) == ["10.0.0.2", "10.0.0.3"]
    # the ownership TXT is ExternalDNS's format, so ExternalDNS's own PowerDNS provider reads it too
    txt = rrset(pdns, zone, f"_dnsportal-a.app.{zone.name}", "TXT")
    assert txt is not None
    assert txt["records"][0]["content"] == (
        f'"heritage=external-dns,external-dns/owner={OWNER},external-dns/resource=service/default/app"'
    )
    # planning again changes nothing (no ping-pong between plan and server)
    assert compute_plan(desired, current(provider, zone), config(zone)).is_empty

    # update: new address; delete: api's source is gone
    reconcile(provider, zone, [ep(zone, "app", ["10.0.0.9"])])
    assert ask(pdns, zone.fqdn("app")) == ["10.0.0.9"]
    assert ask(pdns, zone.fqdn("api")) == []
    assert rrset(pdns, zone, f"_dnsportal-a.api.{zone.name}", "TXT") is None

    # delete everything ours; the foreign records are exactly as they were
    reconcile(provider, zone, [])
    left = {(r["name"], r["type"]): r["records"] for r in pdns.rrsets(zone.name) if r["type"] in ("A", "TXT")}
    assert left == foreign_before


def test_ownership_is_read_by_the_same_rules_as_route53(
    pdns: PdnsServer, provider: PowerDNSProvider, zone: TestZone
) -> None:
    zone.replace(
        [
            ("team", "A", 300, ["10.8.8.8"]),
            ("a-team", "TXT", 300, ['"heritage=external-dns,external-dns/owner=other-cluster"']),
            ("legacy", "A", 300, ["10.9.9.9"]),
        ]
    )
    reconcile(provider, zone, [ep(zone, "app", ["10.0.0.1"])])
    owners = record_owners(current(provider, zone), config(zone))
    assert owners[RecordKey(zone.fqdn("app"), "A", "")] == OWNER
    assert owners[RecordKey(zone.fqdn("team"), "A", "")] == "other-cluster"
    assert owners[RecordKey(zone.fqdn("legacy"), "A", "")] is None
    # a desired record at another owner's name is a conflict, never an overwrite
    desired = [ep(zone, "app", ["10.0.0.1"]), ep(zone, "team", ["10.0.0.5"])]
    plan = compute_plan(desired, current(provider, zone), config(zone))
    assert plan.is_empty and "owned by 'other-cluster'" in " ".join(c.message for c in plan.conflicts)


def test_weighted_80_20_is_a_lua_record_measured_at_80_20(
    pdns: PdnsServer, provider: PowerDNSProvider, zone: TestZone
) -> None:
    desired = [
        ep(zone, "shop", ["10.0.0.1"], sid="eks", cluster="eks", weight="80"),
        ep(zone, "shop", ["10.0.0.2"], sid="k3s", cluster="k3s", weight="20"),
    ]
    reconcile(provider, zone, desired)
    lua = rrset(pdns, zone, zone.fqdn("shop"), "LUA")
    assert lua is not None and len(lua["records"]) == 1
    assert lua["records"][0]["content"] == "A \"pickwrandom({{80,'10.0.0.1'},{20,'10.0.0.2'}})\""
    # the two weighted record sets and their ownership TXTs read back as they were planned
    assert compute_plan(desired, current(provider, zone), config(zone)).is_empty
    sets = {
        rs.set_identifier: rs.routing.weight for rs in current(provider, zone) if rs.name == zone.fqdn("shop")
    }
    assert sets == {"eks": 80, "k3s": 20}

    # A right split fails a test at 1 % once in a hundred runs; a wrong one cannot pass twice.
    for _attempt in range(2):
        counts = measure_distribution([Nameserver("127.0.0.1", pdns.dns_port)], zone.fqdn("shop"), "A", 2000)
        observed = counts.by_set({"eks": ["10.0.0.1"], "k3s": ["10.0.0.2"]})
        verdict = distribution_verdict(observed, {"eks": 80, "k3s": 20})
        if verdict.ok:
            break
    assert verdict.ok, verdict.message
    assert 0.75 < observed["eks"] / 2000 < 0.85

    # a weight change updates the LUA record in place
    reconcile(
        provider, zone, [desired[0], ep(zone, "shop", ["10.0.0.2"], sid="k3s", cluster="k3s", weight="80")]
    )
    lua = rrset(pdns, zone, zone.fqdn("shop"), "LUA")
    assert lua["records"][0]["content"] == "A \"pickwrandom({{80,'10.0.0.1'},{80,'10.0.0.2'}})\""
    # removing one cluster's set leaves the other's
    reconcile(provider, zone, [desired[0]])
    assert {rs.set_identifier for rs in current(provider, zone) if rs.name == zone.fqdn("shop")} == {"eks"}
    reconcile(provider, zone, [])
    assert rrset(pdns, zone, zone.fqdn("shop"), "LUA") is None


def test_failover_answers_the_secondary_after_the_primary_port_closes(
    pdns: PdnsServer, provider: PowerDNSProvider, zone: TestZone
) -> None:
    primary = start_page_server("127.0.0.21", 0, "eks")
    secondary = start_page_server("127.0.0.22", primary.port, "k3s")
    try:
        check = provider.health_check_create(
            HealthCheckSpec(
                protocol="HTTP", port=primary.port, host_header="shop.example.com", resource_path="/"
            ),
            owner_id=OWNER,
            reference="t",
        )
        assert check.id == f"http://shop.example.com:{primary.port}/"
        desired = [
            ep(zone, "shop", ["127.0.0.21"], sid="eks", failover="PRIMARY", health_check_id=check.id),
            ep(zone, "shop", ["127.0.0.22"], sid="k3s", cluster="k3s", failover="SECONDARY"),
        ]
        reconcile(provider, zone, desired)
        assert compute_plan(desired, current(provider, zone), config(zone)).is_empty

        def answers_within(expected: str, seconds: float) -> bool:
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                if ask(pdns, zone.fqdn("shop")) == [expected]:
                    return True
                time.sleep(0.2)
            return False

        assert answers_within("127.0.0.21", 15), ask(pdns, zone.fqdn("shop"))
        primary.stop()  # the primary's port closes
        assert answers_within("127.0.0.22", 20), ask(pdns, zone.fqdn("shop"))
        assert provider.health_check_status(check.id).healthy is False
    finally:
        primary.stop()
        secondary.stop()


def test_what_powerdns_cannot_answer_is_refused_with_a_sentence(
    pdns: PdnsServer, provider: PowerDNSProvider, zone: TestZone
) -> None:
    desired = [
        ep(zone, "near", ["10.0.0.1"], sid="eu", region="eu-west-1"),
        ep(zone, "near", ["10.0.0.2"], sid="us", region="us-east-1"),
        ep(zone, "fine", ["10.0.0.3"]),
    ]
    plan = compute_plan(desired, current(provider, zone), config(zone))
    messages = [c.message for c in plan.conflicts if c.name == zone.fqdn("near")]
    assert messages and all("PowerDNS has no latency-based routing" in m for m in messages)
    assert {g.name for g in plan.groups} == {zone.fqdn("fine")}
    tcp = HealthCheckSpec(protocol="TCP", port=80, ip_address="10.0.0.1")
    with pytest.raises(ProviderError, match="use an HTTP or HTTPS health check"):
        provider.health_check_create(tcp, owner_id=OWNER, reference="t")


def test_a_lua_record_edited_by_hand_is_left_alone(
    pdns: PdnsServer, provider: PowerDNSProvider, zone: TestZone
) -> None:
    desired = [
        ep(zone, "shop", ["10.0.0.1"], sid="eks", weight="50"),
        ep(zone, "shop", ["10.0.0.2"], sid="k3s", cluster="k3s", weight="50"),
    ]
    reconcile(provider, zone, desired)
    hand = "A \"pickwrandom({{10,'10.0.0.1'},{90,'10.0.0.2'}})\""
    zone.replace([("shop", "LUA", 300, [hand])])  # someone edits it with pdnsutil
    listed = current(provider, zone)
    assert [rs.type for rs in listed if rs.name == zone.fqdn("shop")] == ["LUA"]
    plan = compute_plan(desired, listed, config(zone))
    groups = [
        ChangeGroupInput(i, g.changes) for i, g in enumerate(plan.groups) if g.name == zone.fqdn("shop")
    ]
    assert groups, "the plan wants its weighted record sets back"
    result = provider.apply(zone.name, groups)
    assert result.applied == []
    assert all("was not written by the portal" in m for m in result.failed.values())
    assert rrset(pdns, zone, zone.fqdn("shop"), "LUA")["records"][0]["content"] == hand


def test_a_wrong_api_key_or_a_dead_server_is_a_clear_error(pdns: PdnsServer, zone: TestZone) -> None:
    bad = PowerDNSProvider(f"http://127.0.0.1:{pdns.api_port}", "not-the-key-s3cr3t")
    with pytest.raises(ProviderError) as exc:
        bad.list_record_sets(zone.name)
    assert "API key was refused" in exc.value.user_message
    assert "s3cr3t" not in exc.value.user_message
    dead = PowerDNSProvider("http://127.0.0.1:9", pdns.api_key)
    with pytest.raises(ProviderError, match="does not answer") as exc2:
        dead.list_zones()
    assert exc2.value.retryable
    good = PowerDNSProvider(f"http://127.0.0.1:{pdns.api_port}", pdns.api_key)
    with pytest.raises(ProviderError, match="not found"):
        good.list_record_sets("no-such-zone.test.")
    assert zone.name in [z.name for z in good.list_zones()]


def ask_from(server: PdnsServer, name: str, subnet: str) -> list[str]:
    """The answer to a resolver whose client is in `subnet` (EDNS Client Subnet, as public resolvers send)."""
    query = dns.message.make_query(name, "A", use_edns=0, options=[dns.edns.ECSOption.from_text(subnet)])
    resp = dns.query.udp(query, "127.0.0.1", port=server.dns_port, timeout=2)
    return sorted(str(rd) for rrset in resp.answer for rd in rrset)


def test_geolocation_answers_by_country_then_continent_then_default(
    pdns: PdnsServer, provider: PowerDNSProvider, zone: TestZone
) -> None:
    desired = [
        ep(zone, "shop", ["10.0.0.1"], sid="us", cluster="eks", geolocation_country_code="US"),
        ep(zone, "shop", ["10.0.0.2"], sid="eu", cluster="rke2", geolocation_continent_code="EU"),
        ep(zone, "shop", ["10.0.0.9"], sid="rest", cluster="k3s", geolocation_country_code="*"),
    ]
    reconcile(provider, zone, desired)
    assert compute_plan(desired, current(provider, zone), config(zone)).is_empty
    shop = zone.fqdn("shop")
    # Debian's GeoIP country database: 8.8.8.0/24 is in the US, 81.2.69.0/24 in Great Britain (Europe),
    # 1.1.1.0/24 in Australia (neither: the default location)
    assert ask_from(pdns, shop, "8.8.8.0/24") == ["10.0.0.1"]
    assert ask_from(pdns, shop, "81.2.69.0/24") == ["10.0.0.2"]
    assert ask_from(pdns, shop, "1.1.1.0/24") == ["10.0.0.9"]


def test_geolocation_on_a_server_without_the_geoip_backend_is_refused_with_a_sentence() -> None:
    from tests.fixtures.dns import new_zone_name
    from tools.pdns import start_pdns

    server = start_pdns(geoip=False)
    try:
        zone = TestZone(new_zone_name(), [server])
        server.create_zone(zone.name)
        plain = PowerDNSProvider(f"http://127.0.0.1:{server.api_port}", server.api_key)
        desired = [
            ep(zone, "shop", ["10.0.0.1"], sid="us", geolocation_country_code="US"),
            ep(zone, "www", ["10.0.0.3"]),
        ]
        plan = compute_plan(desired, current(plain, zone), config(zone))
        result = plain.apply(zone.name, [ChangeGroupInput(i, g.changes) for i, g in enumerate(plan.groups)])
        [(index, message)] = result.failed.items()
        assert plan.groups[index].name == zone.fqdn("shop")
        assert "needs PowerDNS's GeoIP backend, which this server does not run" in message
        assert ask(server, zone.fqdn("www")) == ["10.0.0.3"]  # the other group is applied
        assert rrset(server, zone, zone.fqdn("shop"), "LUA") is None
    finally:
        server.stop()
