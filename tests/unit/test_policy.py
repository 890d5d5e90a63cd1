"""Route53's record and routing rules, and the private-address check."""

from __future__ import annotations

import pytest

from records.policy import (
    AWS_REGIONS,
    COUNTRY_CODES,
    is_private_address,
    private_addresses,
    validate_name,
    validate_record_set,
)
from records.recordset import NO_ROUTING, AliasTarget, RecordSet, Routing

ZONE = "example.com."


def _a(
    name: str = "www.example.com.", sid: str = "", routing: Routing = NO_ROUTING, **kw: object
) -> RecordSet:
    values = kw.pop("values", ("1.2.3.4",))
    return RecordSet(name, str(kw.pop("type", "A")), sid, kw.pop("ttl", 300), values, routing, **kw)  # type: ignore[arg-type]


def _fields(rs: RecordSet) -> set[str]:
    return {p.field for p in validate_record_set(rs, ZONE)}


def test_a_valid_record_set_has_no_problems() -> None:
    assert validate_record_set(_a(), ZONE) == []
    assert validate_record_set(_a(sid="blue", routing=Routing(weight=10)), ZONE) == []


@pytest.mark.parametrize(("weight", "ok"), [(0, True), (255, True), (256, False), (-1, False)])
def test_weight_is_0_to_255(weight: int, ok: bool) -> None:
    problems = validate_record_set(_a(sid="blue", routing=Routing(weight=weight)), ZONE)
    assert (problems == []) is ok
    if not ok:
        assert problems[0].field == "Weight"
        assert problems[0].message.startswith("www.example.com. A [blue]: weight")


@pytest.mark.parametrize(("length", "ok"), [(1, True), (128, True), (129, False)])
def test_set_identifier_is_1_to_128_characters(length: int, ok: bool) -> None:
    assert ("SetIdentifier" not in _fields(_a(sid="x" * length, routing=Routing(weight=1)))) is ok


def test_set_identifier_needs_a_routing_policy_and_routing_needs_a_set_identifier() -> None:
    assert _fields(_a(sid="blue")) == {"SetIdentifier"}
    assert _fields(_a(routing=Routing(weight=10))) == {"SetIdentifier"}
    assert _fields(_a(sid="x", routing=Routing(weight=1, region="eu-west-1"))) == {"SetIdentifier"}


@pytest.mark.parametrize(("ttl", "ok"), [(0, True), (2147483647, True), (2147483648, False), (-1, False)])
def test_ttl_range(ttl: int, ok: bool) -> None:
    assert ("TTL" not in _fields(_a(ttl=ttl))) is ok


def test_failover_values() -> None:
    assert _fields(_a(sid="p", routing=Routing(failover="PRIMARY"))) == set()
    assert _fields(_a(sid="p", routing=Routing(failover="primary"))) == {"Failover"}


@pytest.mark.parametrize("code", ["AF", "AN", "AS", "EU", "OC", "NA", "SA"])
def test_continent_codes(code: str) -> None:
    assert _fields(_a(sid="g", routing=Routing(continent=code))) == set()


def test_bad_geolocation_codes() -> None:
    assert _fields(_a(sid="g", routing=Routing(continent="XX"))) == {"GeoLocation.ContinentCode"}
    assert _fields(_a(sid="g", routing=Routing(country="XX"))) == {"GeoLocation.CountryCode"}
    assert _fields(_a(sid="g", routing=Routing(country="US", subdivision="C@"))) == {
        "GeoLocation.SubdivisionCode"
    }
    assert "GeoLocation.SubdivisionCode" in _fields(_a(sid="g", routing=Routing(subdivision="CA")))
    assert "GeoLocation" in _fields(_a(sid="g", routing=Routing(continent="EU", country="DE")))


def test_country_codes_include_the_default_location() -> None:
    assert {"DE", "US", "UA", "*"} <= COUNTRY_CODES
    assert _fields(_a(sid="g", routing=Routing(country="*"))) == set()
    assert _fields(_a(sid="g", routing=Routing(country="US", subdivision="CA"))) == set()


def test_latency_regions() -> None:
    assert {"us-east-1", "eu-central-2", "ap-southeast-7", "mx-central-1"} <= AWS_REGIONS
    assert _fields(_a(sid="r", routing=Routing(region="eu-west-1"))) == set()
    assert _fields(_a(sid="r", routing=Routing(region="eu-west-9"))) == {"Region"}


def test_geoproximity() -> None:
    ok = Routing(geoproximity_region="us-east-1", geoproximity_bias=0)
    assert _fields(_a(sid="x", routing=ok)) == set()
    assert (
        _fields(
            _a(sid="x", routing=Routing(geoproximity_coordinates=("49.22", "-74.01"), geoproximity_bias=10))
        )
        == set()
    )
    assert "GeoProximityLocation.Bias" in _fields(
        _a(sid="x", routing=Routing(geoproximity_region="us-east-1", geoproximity_bias=100))
    )
    assert "GeoProximityLocation.Coordinates.Latitude" in _fields(
        _a(sid="x", routing=Routing(geoproximity_coordinates=("91", "0"), geoproximity_bias=0))
    )
    assert "GeoProximityLocation" in _fields(
        _a(
            sid="x",
            routing=Routing(
                geoproximity_region="us-east-1", geoproximity_local_zone_group="g", geoproximity_bias=0
            ),
        )
    )


def test_values_by_type() -> None:
    assert _fields(_a(values=("1.2.3",))) == {"ResourceRecords"}
    assert _fields(_a(type="AAAA", values=("1.2.3.4",))) == {"ResourceRecords"}
    assert _fields(_a(type="CNAME", values=("a.example.net", "b.example.net"))) == {"ResourceRecords"}
    assert _fields(_a(values=())) == {"ResourceRecords"}


def test_cname_not_at_the_apex() -> None:
    problems = validate_record_set(_a(ZONE, type="CNAME", values=("lb.example.net",)), ZONE)
    assert [p.field for p in problems] == ["Type"]
    assert "apex" in problems[0].message


def test_txt_strings_at_most_255_characters() -> None:
    assert _fields(_a(type="TXT", values=('"' + "x" * 255 + '"',))) == set()
    assert _fields(_a(type="TXT", values=('"' + "x" * 256 + '"',))) == {"ResourceRecords"}
    assert _fields(_a(type="TXT", values=('"' + "x" * 255 + '" "' + "y" * 10 + '"',))) == set()


def test_alias_rules() -> None:
    alias = RecordSet("www.example.com.", "A", alias=AliasTarget("lb.elb.amazonaws.com.", "Z1"))
    assert validate_record_set(alias, ZONE) == []
    assert "MultiValueAnswer" in _fields(
        RecordSet("www.example.com.", "A", "m", routing=Routing(multi_value_answer=True), alias=alias.alias)
    )


def test_name_outside_zone_and_long_labels() -> None:
    assert "Name" in _fields(_a("www.example.org."))
    assert "Name" in _fields(_a("x" * 64 + ".example.com."))


# --- rules between record sets of one name ---------------------------------------------------------------


def _messages(*sets: RecordSet) -> list[str]:
    return [p.message for p in validate_name(list(sets), ZONE)]


def test_cname_cannot_share_its_name() -> None:
    cname = _a(type="CNAME", values=("lb.example.net",))
    assert _messages(cname, _a()) == [
        "www.example.com.: a CNAME cannot share its name with other records (A)"
    ]
    txt = _a(type="TXT", values=('"hello"',))
    assert _messages(cname, txt)  # the legacy ExternalDNS TXT at the record's own name collides too
    # weighted CNAMEs of one name are fine
    assert (
        _messages(
            _a(type="CNAME", sid="a", routing=Routing(weight=1), values=("a.net",)),
            _a(type="CNAME", sid="b", routing=Routing(weight=1), values=("b.net",)),
        )
        == []
    )


def test_plain_and_set_identifier_record_sets_cannot_mix() -> None:
    msgs = _messages(_a(), _a(sid="blue", routing=Routing(weight=1)))
    assert msgs == [
        "www.example.com. A: a plain record set cannot coexist with set-identifier record sets (blue)"
    ]
    # other types are separate groups
    assert _messages(_a(type="AAAA", values=("::1",)), _a(sid="blue", routing=Routing(weight=1))) == []


def test_one_routing_policy_per_name_and_type() -> None:
    msgs = _messages(_a(sid="a", routing=Routing(weight=1)), _a(sid="b", routing=Routing(region="eu-west-1")))
    assert msgs == ["www.example.com. A: mixed routing policies (a=weighted, b=latency)"]


def test_one_primary_and_at_most_one_secondary() -> None:
    p1 = _a(sid="p1", routing=Routing(failover="PRIMARY"))
    p2 = _a(sid="p2", routing=Routing(failover="PRIMARY"))
    s1 = _a(sid="s1", routing=Routing(failover="SECONDARY"))
    s2 = _a(sid="s2", routing=Routing(failover="SECONDARY"))
    assert _messages(p1, s1) == []
    assert _messages(p1, p2) == ["www.example.com. A: 2 PRIMARY record sets (p1, p2); one allowed"]
    assert _messages(p1, s1, s2) == ["www.example.com. A: 2 SECONDARY record sets (s1, s2); one allowed"]


def test_geolocations_and_latency_regions_are_unique() -> None:
    g = [_a(sid=s, routing=Routing(country="DE")) for s in ("a", "b")]
    assert _messages(*g) == ["www.example.com. A: location DE is used by 2 record sets (a, b)"]
    r = [_a(sid=s, routing=Routing(region="eu-west-1")) for s in ("a", "b")]
    assert _messages(*r) == ["www.example.com. A: region eu-west-1 is used by 2 record sets (a, b)"]


def test_at_most_100_weighted_record_sets() -> None:
    sets = [_a(sid=f"s{i}", routing=Routing(weight=1)) for i in range(101)]
    assert len(_messages(*sets)) == 1
    assert _messages(*sets[:100]) == []


# --- private addresses ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "ip",
    [
        "10.0.0.1",
        "172.16.5.4",
        "172.31.255.255",
        "192.168.1.1",
        "127.0.0.1",
        "169.254.169.254",
        "100.64.0.1",
        "100.127.255.254",
        "::1",
        "fe80::1",
        "fc00::1",
        "fd12:3456::1",
        "::ffff:10.1.2.3",
        " 10.0.0.1 ",
    ],
)
def test_private_addresses(ip: str) -> None:
    assert is_private_address(ip)


@pytest.mark.parametrize(
    "ip",
    [
        "1.2.3.4",
        "172.32.0.1",
        "100.128.0.1",
        "192.169.0.1",
        "2001:db8::1",
        "2606:4700::1111",
        "lb.example.com",
        "",
    ],
)
def test_public_addresses_and_host_names(ip: str) -> None:
    assert not is_private_address(ip)


def test_private_addresses_of_a_record_set() -> None:
    assert private_addresses(_a(values=("10.0.0.1", "1.2.3.4", "192.168.0.1"))) == ["10.0.0.1", "192.168.0.1"]
    assert private_addresses(_a(type="CNAME", values=("10.0.0.1",))) == []
