"""Record sets in Route53's shape: the converters the Route53 provider uses, and the in-memory applier."""

from __future__ import annotations

from typing import Any

import pytest

from records.plan import Change as PlanChange
from records.plan import ChangeRejected, apply_changes
from records.recordset import (
    AliasTarget,
    RecordSet,
    Routing,
    load_route53_records,
    normalize_name,
    rdata_text,
    recordset_from_route53,
    recordset_to_route53,
    txt_decode,
    txt_encode,
    zone_from_records,
)

# As `aws route53 list-resource-record-sets` prints them (one of each shape the portal meets).
ROUTE53: list[dict[str, Any]] = [
    {
        "Name": "example.com.",
        "Type": "SOA",
        "TTL": 900,
        "ResourceRecords": [
            {"Value": "ns-1.awsdns-01.org. awsdns-hostmaster.amazon.com. 1 7200 900 1209600 86400"}
        ],
    },
    {
        "Name": "www.example.com.",
        "Type": "A",
        "TTL": 300,
        "ResourceRecords": [{"Value": "1.2.3.4"}, {"Value": "5.6.7.8"}],
    },
    {
        "Name": "blue.example.com.",
        "Type": "A",
        "SetIdentifier": "eks",
        "Weight": 80,
        "TTL": 60,
        "ResourceRecords": [{"Value": "1.1.1.1"}],
    },
    {
        "Name": "fo.example.com.",
        "Type": "A",
        "SetIdentifier": "p",
        "Failover": "PRIMARY",
        "TTL": 60,
        "ResourceRecords": [{"Value": "1.1.1.1"}],
        "HealthCheckId": "abcdef11-2222-3333-4444-555555fffff6",
    },
    {
        "Name": "lat.example.com.",
        "Type": "AAAA",
        "SetIdentifier": "eu",
        "Region": "eu-west-1",
        "TTL": 60,
        "ResourceRecords": [{"Value": "2001:db8::1"}],
    },
    {
        "Name": "geo.example.com.",
        "Type": "A",
        "SetIdentifier": "de",
        "GeoLocation": {"CountryCode": "DE"},
        "TTL": 60,
        "ResourceRecords": [{"Value": "1.1.1.1"}],
    },
    {
        "Name": "geo.example.com.",
        "Type": "A",
        "SetIdentifier": "ca",
        "GeoLocation": {"CountryCode": "US", "SubdivisionCode": "CA"},
        "TTL": 60,
        "ResourceRecords": [{"Value": "1.1.1.2"}],
    },
    {
        "Name": "geo.example.com.",
        "Type": "A",
        "SetIdentifier": "eu",
        "GeoLocation": {"ContinentCode": "EU"},
        "TTL": 60,
        "ResourceRecords": [{"Value": "1.1.1.3"}],
    },
    {
        "Name": "prox.example.com.",
        "Type": "A",
        "SetIdentifier": "x",
        "TTL": 60,
        "ResourceRecords": [{"Value": "1.1.1.1"}],
        "GeoProximityLocation": {"Coordinates": {"Latitude": "49.22", "Longitude": "-74.01"}, "Bias": 10},
    },
    {
        "Name": "mv.example.com.",
        "Type": "A",
        "SetIdentifier": "a",
        "MultiValueAnswer": True,
        "TTL": 60,
        "ResourceRecords": [{"Value": "1.1.1.1"}],
    },
    {
        "Name": "alias.example.com.",
        "Type": "A",
        "AliasTarget": {
            "HostedZoneId": "Z32O12XQLNTSW2",
            "DNSName": "dualstack.lb-1.eu-west-1.elb.amazonaws.com.",
            "EvaluateTargetHealth": True,
        },
    },
    {
        "Name": "\\052.example.com.",
        "Type": "CNAME",
        "TTL": 300,
        "ResourceRecords": [{"Value": "lb.example.net"}],
    },
    {
        "Name": "a-www.example.com.",
        "Type": "TXT",
        "TTL": 300,
        "ResourceRecords": [
            {
                "Value": '"heritage=external-dns,external-dns/owner=default,'
                'external-dns/resource=service/default/nginx"'
            }
        ],
    },
    {
        "Name": "cidr.example.com.",
        "Type": "A",
        "SetIdentifier": "c",
        "TTL": 60,
        "ResourceRecords": [{"Value": "1.1.1.1"}],
        "CidrRoutingConfig": {"CollectionId": "c1", "LocationName": "office"},
    },
    {
        "Name": "tp.example.com.",
        "Type": "A",
        "TTL": 60,
        "ResourceRecords": [{"Value": "1.1.1.1"}],
        "TrafficPolicyInstanceId": "tp-1",
    },
]


@pytest.mark.parametrize("item", ROUTE53, ids=[f"{d['Name']}{d.get('SetIdentifier', '')}" for d in ROUTE53])
def test_route53_dict_round_trips(item: dict[str, Any]) -> None:
    rs = recordset_from_route53(item)
    back = recordset_to_route53(rs)
    expected = dict(item, Name=normalize_name(item["Name"]))
    assert back == expected
    assert list(back)[:2] == ["Name", "Type"]


def test_fields_are_read_into_the_record_set() -> None:
    rs = {r.key: r for r in load_route53_records({"ResourceRecordSets": ROUTE53})}
    assert rs[("blue.example.com.", "A", "eks")].routing == Routing(weight=80)
    assert rs[("geo.example.com.", "A", "ca")].routing == Routing(country="US", subdivision="CA")
    assert rs[("prox.example.com.", "A", "x")].routing == Routing(
        geoproximity_coordinates=("49.22", "-74.01"), geoproximity_bias=10
    )
    alias = rs[("alias.example.com.", "A", "")]
    assert alias.ttl is None and alias.values == ()
    assert alias.alias == AliasTarget("dualstack.lb-1.eu-west-1.elb.amazonaws.com.", "Z32O12XQLNTSW2", True)
    assert rs[("*.example.com.", "CNAME", "")].values == ("lb.example.net",)  # \052 decoded
    assert rs[("fo.example.com.", "A", "p")].health_check_id.startswith("abcdef11")


@pytest.mark.parametrize(
    ("raw", "name"),
    [
        ("WWW.Example.COM", "www.example.com."),
        ("www.example.com.", "www.example.com."),
        ("\\052.example.com.", "*.example.com."),
        ("a\\.b.example.com.", "a.b.example.com."),
        ("\\100x.example.com.", "@x.example.com."),
    ],
)
def test_name_normalisation(raw: str, name: str) -> None:
    assert normalize_name(raw) == name


def test_bare_list_and_wrapped_list_are_both_accepted() -> None:
    assert load_route53_records(ROUTE53) == load_route53_records({"ResourceRecordSets": ROUTE53})
    assert zone_from_records(load_route53_records(ROUTE53)) == "example.com."


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"records": []}, "ResourceRecordSets"),
        ("nope", "must be a list"),
        ([{"Type": "A"}], r"ResourceRecordSets\[0\]: record set: `Name` is missing"),
        ([{"Name": "a.example.com.", "Type": "A", "TTL": "x"}], "`TTL` must be an integer"),
        ([{"Name": "a.example.com.", "Type": "A", "ResourceRecords": [{"V": 1}]}], "string `Value`"),
    ],
)
def test_bad_input_names_the_item_and_field(data: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        load_route53_records(data)


def test_alias_needs_a_hosted_zone_when_written() -> None:
    rs = RecordSet("w.example.com.", "A", alias=AliasTarget("lb.elb.amazonaws.com"))
    with pytest.raises(ValueError, match="hosted zone id"):
        recordset_to_route53(rs)
    assert recordset_to_route53(rs, default_alias_zone_id="ZSELF")["AliasTarget"]["HostedZoneId"] == "ZSELF"


def test_txt_strings() -> None:
    assert txt_encode("hello") == '"hello"'
    assert txt_encode('say "hi"') == '"say \\"hi\\""'
    long = txt_encode("x" * 300)
    assert long == '"' + "x" * 255 + '" "' + "x" * 45 + '"'
    assert txt_decode(long) == "x" * 300
    assert txt_decode('"say \\"hi\\""') == 'say "hi"'
    assert txt_decode("unquoted") == "unquoted"


# --- the in-memory applier ----------------------------------------------------------------------------------


A = RecordSet("w.example.com.", "A", ttl=300, values=("1.1.1.1",))


def test_apply_changes_follows_route53() -> None:
    zone = apply_changes([], [PlanChange("CREATE", A)])
    assert zone == [A]
    with pytest.raises(ChangeRejected, match="already exists"):
        apply_changes(zone, [PlanChange("CREATE", A)])
    with pytest.raises(ChangeRejected, match="matches exactly"):
        apply_changes(
            zone, [PlanChange("DELETE", RecordSet("w.example.com.", "A", ttl=60, values=("1.1.1.1",)))]
        )
    upserted = RecordSet("w.example.com.", "A", ttl=60, values=("2.2.2.2",))
    assert apply_changes(zone, [PlanChange("UPSERT", upserted)]) == [upserted]
    assert apply_changes(zone, [PlanChange("DELETE", A)]) == []


def test_change_to_route53() -> None:
    assert PlanChange("UPSERT", A).to_route53() == {
        "Action": "UPSERT",
        "ResourceRecordSet": {
            "Name": "w.example.com.",
            "Type": "A",
            "TTL": 300,
            "ResourceRecords": [{"Value": "1.1.1.1"}],
        },
    }


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (
            "{'Value': 'ns-2048.awsdns-64.com. hostmaster.example.com. 1 7200 900 1209600 86400'}",
            "ns-2048.awsdns-64.com. hostmaster.example.com. 1 7200 900 1209600 86400",
        ),
        ("ns-1.awsdns-01.org. awsdns-hostmaster.amazon.com. 1 7200 900 1209600 86400", None),
        ("\"{'Value': 'not a repr'}\"", None),  # a TXT value is quoted: left alone
        ("{'Value': __import__('os').getcwd()}", None),  # not a literal: never evaluated
        ("192.0.2.1", None),
    ],
)
def test_rdata_text_unwraps_the_soa_moto_returns_as_a_python_repr(value: str, text: str | None) -> None:
    assert rdata_text(value) == (text if text is not None else value)
