"""The TXT ownership registry: ExternalDNS's names and values, byte for byte, both ways."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from records.ownership import (
    DEFAULT_TXT_NAMING,
    EXTERNAL_DNS_TXT_NAMING,
    PORTAL_TXT_PREFIX,
    TxtNaming,
    can_own_apex,
    explain_apex,
    format_ownership_value,
    ownership_in_value,
    ownership_record,
    parse_ownership_value,
    read_registry,
)
from records.recordset import AliasTarget, RecordSet, Routing, recordset_to_route53

VALUE = '"heritage=external-dns,external-dns/owner=default,external-dns/resource=service/default/nginx"'


# --- names ------------------------------------------------------------------------------------------------

# (naming, record name, type) -> TXT name, as ExternalDNS v0.18+ writes it (reference section 3 examples and
# the mapper's ToTXTName rules).
NAME_CASES = [
    (TxtNaming(), "www.ex.com.", "A", "a-www.ex.com."),
    (TxtNaming(), "www.ex.com.", "AAAA", "aaaa-www.ex.com."),
    (TxtNaming(), "www.ex.com.", "CNAME", "cname-www.ex.com."),
    (TxtNaming(prefix="txt."), "www.ex.com.", "A", "txt.a-www.ex.com."),
    (TxtNaming(prefix="txt."), "www.ex.com.", "AAAA", "txt.aaaa-www.ex.com."),
    (TxtNaming(prefix="txt."), "www.ex.com.", "CNAME", "txt.cname-www.ex.com."),
    (TxtNaming(prefix="%{record_type}-abc-."), "www.ex.com.", "A", "a-abc-.www.ex.com."),
    (TxtNaming(prefix="%{record_type}-abc-."), "www.ex.com.", "CNAME", "cname-abc-.www.ex.com."),
    (TxtNaming(suffix="-%{record_type}"), "www.ex.com.", "A", "www-a.ex.com."),
    (TxtNaming(suffix="-%{record_type}"), "www.ex.com.", "AAAA", "www-aaaa.ex.com."),
    (TxtNaming(suffix="-txt"), "www.ex.com.", "A", "a-www-txt.ex.com."),
    (TxtNaming(suffix="-txt"), "www.ex.com.", "CNAME", "cname-www-txt.ex.com."),
    (TxtNaming(prefix="TXT-"), "www.ex.com.", "A", "txt-a-www.ex.com."),  # affixes are lower-cased
    (TxtNaming(prefix="txt-", wildcard_replacement="wild"), "*.example.com.", "A", "txt-a-wild.example.com."),
    (TxtNaming(), "*.example.com.", "A", "a-*.example.com."),
    (DEFAULT_TXT_NAMING, "www.ex.com.", "A", "_dnsportal-a.www.ex.com."),
    (DEFAULT_TXT_NAMING, "ex.com.", "AAAA", "_dnsportal-aaaa.ex.com."),
    (TxtNaming(), "ex.com.", "A", "a-ex.com."),  # the apex problem: a sibling of the zone
]


@pytest.mark.parametrize(("naming", "name", "rtype", "txt"), NAME_CASES)
def test_txt_name_is_what_external_dns_writes(naming: TxtNaming, name: str, rtype: str, txt: str) -> None:
    assert naming.txt_name(name, rtype) == txt


@pytest.mark.parametrize(("naming", "name", "rtype", "txt"), [c for c in NAME_CASES if "*" not in c[1]])
def test_txt_name_reads_back_to_the_record(naming: TxtNaming, name: str, rtype: str, txt: str) -> None:
    assert naming.record_for_txt(txt) == (name, rtype)


@pytest.mark.parametrize(
    ("naming", "txt", "expected"),
    [
        # legacy untyped names (ExternalDNS <= v0.17 wrote them) read with type ""
        (TxtNaming(), "www.ex.com.", ("www.ex.com.", "")),
        (TxtNaming(prefix="txt."), "txt.www.ex.com.", ("www.ex.com.", "")),
        (TxtNaming(suffix="-txt"), "www-txt.ex.com.", ("www.ex.com.", "")),
        # a template affix still reads TXTs written before the template was configured
        (TxtNaming(prefix="%{record_type}-abc-."), "-abc-.a-www.ex.com.", ("www.ex.com.", "A")),
        # names outside the configured affix are not ownership names of this naming
        (TxtNaming(prefix="txt."), "a-www.ex.com.", None),
        (TxtNaming(prefix="_p-%{record_type}."), "_x.www.ex.com.", None),
        # mapper types beyond A/AAAA/CNAME
        (TxtNaming(), "mx-mail.ex.com.", ("mail.ex.com.", "MX")),
        (TxtNaming(), "srv-_sip._tcp.ex.com.", ("_sip._tcp.ex.com.", "SRV")),
        # ExternalDNS reads "a-team" as typed too (the text before the first "-" is a type): same here
        (TxtNaming(), "a-team.ex.com.", ("team.ex.com.", "A")),
        (TxtNaming(), "A-WWW.EX.COM.", ("www.ex.com.", "A")),
    ],
)
def test_record_for_txt_reads_every_format(
    naming: TxtNaming, txt: str, expected: tuple[str, str] | None
) -> None:
    assert naming.record_for_txt(txt) == expected


def test_prefix_and_suffix_are_mutually_exclusive() -> None:
    with pytest.raises(ValueError, match="mutually exclusive"):
        TxtNaming(prefix="p.", suffix="-s")


_label = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True)


@settings(max_examples=200, deadline=None)
@given(
    labels=st.lists(_label, min_size=1, max_size=4),
    rtype=st.sampled_from(["A", "AAAA", "CNAME"]),
    naming=st.sampled_from(
        [
            TxtNaming(),
            TxtNaming(prefix="txt."),
            TxtNaming(prefix="txt-"),
            TxtNaming(prefix=PORTAL_TXT_PREFIX),
            TxtNaming(prefix="%{record_type}-abc-."),
            TxtNaming(suffix="-%{record_type}"),
            TxtNaming(suffix="-own"),
        ]
    ),
)
def test_every_txt_name_reads_back(labels: list[str], rtype: str, naming: TxtNaming) -> None:
    name = ".".join([*labels, "example", "com"]) + "."
    assert naming.record_for_txt(naming.txt_name(name, rtype)) == (name, rtype)


# --- values -----------------------------------------------------------------------------------------------


def test_value_is_what_external_dns_writes() -> None:
    assert format_ownership_value({"resource": "service/default/nginx", "owner": "default"}) == VALUE


def test_value_keys_are_sorted_crd_labels_included() -> None:
    got = format_ownership_value({"owner": "o1", "resource": "crd/ns/ep", "app": "x"})
    assert (
        got
        == '"heritage=external-dns,external-dns/app=x,external-dns/owner=o1,external-dns/resource=crd/ns/ep"'
    )


def test_value_round_trips() -> None:
    assert parse_ownership_value(VALUE) == {"owner": "default", "resource": "service/default/nginx"}
    assert ownership_in_value(VALUE) == (VALUE[1:-1], "default")


@pytest.mark.parametrize(
    ("value", "labels"),
    [
        ('"heritage=external-dns,external-dns/owner=a"', {"owner": "a"}),
        ("heritage=external-dns,external-dns/owner=a", {"owner": "a"}),  # quotes are optional when reading
        ('"heritage=external-dns"', {}),  # an ownership record without owner: owned by ""
        ('"heritage=other,external-dns/owner=a"', None),  # another heritage: foreign data
        ('"external-dns/owner=a"', None),  # no heritage
        ('"v=spf1 include:_spf.example.com ~all"', None),
        # ExternalDNS skips tokens that do not split into exactly two on "="
        ('"heritage=external-dns,external-dns/owner=a=b,external-dns/resource=r"', {"resource": "r"}),
        # order does not matter when reading; a later duplicate wins (Go map semantics)
        ('"external-dns/owner=a,heritage=external-dns"', {"owner": "a"}),
        ('"heritage=external-dns,external-dns/owner=a,external-dns/owner=b"', {"owner": "b"}),
        # several character-strings in one value are one text
        ('"heritage=external-dns,external-dns/ow" "ner=a"', {"owner": "a"}),
    ],
)
def test_parse_ownership_value(value: str, labels: dict[str, str] | None) -> None:
    assert parse_ownership_value(value) == labels
    owner = None if labels is None else labels.get("owner", "")
    assert ownership_in_value(value)[1] == owner


def test_long_value_is_split_into_255_character_strings_and_reads_back() -> None:
    labels = {"owner": "o", "resource": "crd/ns/" + "x" * 400}
    value = format_ownership_value(labels)
    strings = value.split('" "')
    assert len(strings) == 2
    assert all(len(s.strip('"')) <= 255 for s in strings)
    assert parse_ownership_value(value) == labels


# --- the TXT record set ---------------------------------------------------------------------------------


def test_ownership_record_matches_external_dns_byte_for_byte() -> None:
    rec = RecordSet("www.ex.com.", "A", ttl=60, values=("1.2.3.4",))
    txt = ownership_record(rec, "default", {"resource": "service/default/nginx"}, EXTERNAL_DNS_TXT_NAMING)
    assert recordset_to_route53(txt) == {
        "Name": "a-www.ex.com.",
        "Type": "TXT",
        "TTL": 300,
        "ResourceRecords": [{"Value": VALUE}],
    }


@pytest.mark.parametrize(
    ("routing", "fields"),
    [
        (Routing(weight=80), {"Weight": 80}),
        (Routing(failover="PRIMARY"), {"Failover": "PRIMARY"}),
        (Routing(region="eu-west-1"), {"Region": "eu-west-1"}),
        (Routing(continent="EU"), {"GeoLocation": {"ContinentCode": "EU"}}),
        (
            Routing(country="US", subdivision="CA"),
            {"GeoLocation": {"CountryCode": "US", "SubdivisionCode": "CA"}},
        ),
        (Routing(multi_value_answer=True), {"MultiValueAnswer": True}),
        (
            Routing(geoproximity_region="us-east-1", geoproximity_bias=0),
            {"GeoProximityLocation": {"AWSRegion": "us-east-1", "Bias": 0}},
        ),
    ],
)
def test_ownership_record_carries_set_identifier_and_routing(
    routing: Routing, fields: dict[str, object]
) -> None:
    rec = RecordSet("www.ex.com.", "AAAA", "blue", 60, ("2001:db8::1",), routing, health_check_id="hc-1")
    for naming, txt_name in [
        (EXTERNAL_DNS_TXT_NAMING, "aaaa-www.ex.com."),
        (TxtNaming(prefix="txt."), "txt.aaaa-www.ex.com."),
        (TxtNaming(suffix="-%{record_type}"), "www-aaaa.ex.com."),
        (DEFAULT_TXT_NAMING, "_dnsportal-aaaa.www.ex.com."),
    ]:
        txt = ownership_record(rec, "default", {"resource": "service/default/nginx"}, naming)
        assert recordset_to_route53(txt) == {
            "Name": txt_name,
            "Type": "TXT",
            "SetIdentifier": "blue",
            **fields,
            "TTL": 300,
            "ResourceRecords": [{"Value": VALUE}],
            "HealthCheckId": "hc-1",
        }


def test_ownership_record_of_an_alias_a_is_typed_a_and_not_an_alias() -> None:
    rec = RecordSet("www.ex.com.", "A", alias=AliasTarget("elb.amazonaws.com.", "Z1", True))
    txt = ownership_record(rec, "o", {}, EXTERNAL_DNS_TXT_NAMING)
    assert txt.name == "a-www.ex.com."  # v0.22+: a-, not the old cname-
    assert txt.alias is None
    assert txt.values == ('"heritage=external-dns,external-dns/owner=o"',)


def test_ownership_record_overrides_an_owner_label_from_the_source() -> None:
    rec = RecordSet("www.ex.com.", "A", ttl=60, values=("1.2.3.4",))
    txt = ownership_record(rec, "portal", {"owner": "someone", "resource": "r"}, EXTERNAL_DNS_TXT_NAMING)
    assert parse_ownership_value(txt.values[0]) == {"owner": "portal", "resource": "r"}


def test_empty_owner_id_is_refused() -> None:
    with pytest.raises(ValueError, match="owner id"):
        ownership_record(RecordSet("a.ex.com.", "A", values=("1.2.3.4",)), "", {}, DEFAULT_TXT_NAMING)


# --- reading a zone ---------------------------------------------------------------------------------------


def _txt(name: str, owner: str | None, sid: str = "", value: str | None = None) -> RecordSet:
    if value is None:
        value = f'"heritage=external-dns,external-dns/owner={owner},external-dns/resource=service/ns/x"'
    return RecordSet(name, "TXT", sid, 300, (value,))


def test_registry_typed_legacy_and_preference() -> None:
    zone = [
        RecordSet("www.ex.com.", "A", ttl=60, values=("1.1.1.1",)),
        RecordSet("www.ex.com.", "AAAA", ttl=60, values=("::1",)),
        _txt("a-www.ex.com.", "new"),
        _txt("www.ex.com.", "legacy"),  # the untyped TXT of ExternalDNS <= v0.17
        RecordSet("old.ex.com.", "A", ttl=60, values=("1.1.1.2",)),
        RecordSet("old.ex.com.", "AAAA", ttl=60, values=("::2",)),
        _txt("old.ex.com.", "legacy"),
    ]
    reg = read_registry(zone, EXTERNAL_DNS_TXT_NAMING)
    owner = {
        rs.key: (reg.owner_of(rs).owner if reg.owner_of(rs) else None) for rs in zone if rs.type != "TXT"
    }
    assert owner == {
        ("www.ex.com.", "A", ""): "new",  # typed first
        ("www.ex.com.", "AAAA", ""): None,  # AAAA never falls back to the legacy TXT
        ("old.ex.com.", "A", ""): "legacy",
        ("old.ex.com.", "AAAA", ""): None,
    }
    assert reg.owner_of(zone[0]).form == "typed"
    assert reg.owner_of(zone[4]).form == "legacy"
    assert set(reg.txt_owners) == {
        ("a-www.ex.com.", "TXT", ""),
        ("www.ex.com.", "TXT", ""),
        ("old.ex.com.", "TXT", ""),
    }


def test_registry_set_identifier_is_part_of_the_key() -> None:
    blue = RecordSet("www.ex.com.", "A", "blue", 60, ("1.1.1.1",), Routing(weight=50))
    green = RecordSet("www.ex.com.", "A", "green", 60, ("2.2.2.2",), Routing(weight=50))
    reg = read_registry([blue, green, _txt("a-www.ex.com.", "cluster-a", "blue")], EXTERNAL_DNS_TXT_NAMING)
    assert reg.owner_of(blue).owner == "cluster-a"
    assert reg.owner_of(green) is None


def test_registry_alias_a_reads_the_pre_v022_cname_txt() -> None:
    alias = RecordSet("www.ex.com.", "A", alias=AliasTarget("elb.amazonaws.com.", "Z1", True))
    plain = RecordSet("www2.ex.com.", "A", ttl=60, values=("1.1.1.1",))
    reg = read_registry([_txt("cname-www.ex.com.", "old"), _txt("cname-www2.ex.com.", "x")], TxtNaming())
    o = reg.owner_of(alias)
    assert o is not None and o.owner == "old" and o.form == "alias-cname"
    assert reg.owner_of(plain) is None  # only alias A records read cname- TXTs


def test_registry_wildcard_replacement() -> None:
    wild = RecordSet("*.ex.com.", "A", ttl=60, values=("1.1.1.1",))
    naming = TxtNaming(prefix="txt-", wildcard_replacement="wild")
    reg = read_registry([_txt("txt-a-wild.ex.com.", "o")], naming)
    assert reg.owner_of(wild).owner == "o"


def test_registry_ignores_foreign_txt_and_reads_other_namings_when_asked() -> None:
    rec = RecordSet("www.ex.com.", "A", ttl=60, values=("1.1.1.1",))
    zone = [_txt("txt.a-www.ex.com.", "ext-a"), _txt("a-www.ex.com.", None, value='"v=spf1 -all"')]
    assert read_registry(zone, DEFAULT_TXT_NAMING).owner_of(rec) is None
    reg = read_registry(zone, DEFAULT_TXT_NAMING, also_read=[TxtNaming(prefix="txt.")])
    assert reg.owner_of(rec).owner == "ext-a"
    assert ("a-www.ex.com.", "TXT", "") not in reg.txt_owners  # the SPF record is not an ownership record


def test_registry_is_independent_of_input_order() -> None:
    rec = RecordSet("www.ex.com.", "A", ttl=60, values=("1.1.1.1",))
    # two TXTs that both claim the record (typed under the template, and an old template-less name)
    zone = [_txt("a-x.www.ex.com.", "first"), _txt("-x.a-www.ex.com.", "second")]
    naming = TxtNaming(prefix="%{record_type}-x.")
    got = {read_registry(order, naming).owner_of(rec).owner for order in (zone, zone[::-1])}
    assert len(got) == 1


# --- the apex ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("naming", "ok"),
    [
        (DEFAULT_TXT_NAMING, True),
        (TxtNaming(prefix="someprefix-%{record_type}."), True),  # ExternalDNS's documented apex advice
        (TxtNaming(), False),  # a-example.com: outside the zone
        (TxtNaming(prefix="txt."), False),  # txt.a-example.com: the type marker is glued to "example"
        (TxtNaming(prefix="txt-"), False),
        (TxtNaming(suffix="-%{record_type}"), False),  # example-a.com
        (TxtNaming(prefix="%{record_type}-"), False),  # a-example.com
    ],
)
def test_can_own_apex(naming: TxtNaming, ok: bool) -> None:
    assert can_own_apex(naming, "example.com") is ok
    text = explain_apex(naming, "example.com.")
    assert ("can manage apex records" in text) is ok
    assert naming.txt_name("example.com.", "A") in text


def test_default_naming_owns_the_apex_inside_the_zone() -> None:
    assert DEFAULT_TXT_NAMING.txt_name("example.com.", "A") == "_dnsportal-a.example.com."
    assert DEFAULT_TXT_NAMING.record_for_txt("_dnsportal-a.example.com.") == ("example.com.", "A")
