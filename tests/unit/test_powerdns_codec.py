"""The pure mapping between Route53-shaped record sets and PowerDNS rrsets (providers.powerdns_codec)."""

from __future__ import annotations

import pytest

from records.providers import powerdns_codec as codec
from records.recordset import AliasTarget, RecordSet, Routing

NAME = "shop.dc.internal."


def weighted(sid: str, weight: int, *values: str, rtype: str = "A") -> RecordSet:
    return RecordSet(NAME, rtype, sid, 60, values, Routing(weight=weight))


def failover(sid: str, role: str, *values: str, check: str = "") -> RecordSet:
    return RecordSet(NAME, "A", sid, 60, values, Routing(failover=role), health_check_id=check)


def api_form(rrset: codec.PdnsRRset) -> dict:
    """What `GET /zones/<zone>` returns for an rrset the provider PATCHed."""
    body = codec.to_api(rrset)
    return {k: body[k] for k in ("name", "type", "ttl", "records", "comments")}


def test_a_plain_record_set_is_a_plain_rrset_without_a_comment() -> None:
    rs = RecordSet("www.dc.internal.", "CNAME", "", 300, ("lb.dc.internal",))
    rendered = codec.render(codec.pdns_key(rs), [rs])
    assert rendered == codec.PdnsRRset("www.dc.internal.", "CNAME", 300, ("lb.dc.internal.",))
    assert codec.to_api(rendered)["comments"] == []
    assert codec.to_route53(codec.from_api(api_form(rendered))) == [
        {
            "Name": "www.dc.internal.",
            "Type": "CNAME",
            "TTL": 300,
            "ResourceRecords": [{"Value": "lb.dc.internal."}],
        }
    ]


def test_weighted_sets_become_one_pickwrandom_and_read_back_exactly() -> None:
    members = [weighted("eks", 80, "10.0.0.1"), weighted("k3s", 20, "10.0.0.2")]
    rendered = codec.render((NAME, "LUA"), members)
    assert rendered.contents == ("A \"pickwrandom({{80,'10.0.0.1'},{20,'10.0.0.2'}})\"",)
    back = codec.from_api(api_form(rendered))
    assert set(back.members) == set(members)


def test_a_set_with_several_values_keeps_its_share_of_the_weight() -> None:
    # Route53 answers a chosen set's every value; pickwrandom answers one, so each value carries weight/n,
    # scaled by 2 (the values' least common multiple) to whole numbers: eks 60+60 of 200, k3s 80 of 200
    rendered = codec.render(
        (NAME, "LUA"), [weighted("eks", 60, "10.0.0.1", "10.0.0.3"), weighted("k3s", 40, "10.0.0.2")]
    )
    assert rendered.contents == ("A \"pickwrandom({{60,'10.0.0.1'},{60,'10.0.0.3'},{80,'10.0.0.2'}})\"",)


def test_weight_zero_is_never_answered_unless_every_weight_is_zero() -> None:
    some = codec.render((NAME, "LUA"), [weighted("eks", 0, "10.0.0.1"), weighted("k3s", 5, "10.0.0.2")])
    assert some.contents == ("A \"pickwrandom({{5,'10.0.0.2'}})\"",)
    none = codec.render((NAME, "LUA"), [weighted("eks", 0, "10.0.0.1"), weighted("k3s", 0, "10.0.0.2")])
    assert none.contents == ("A \"pickwrandom({{1,'10.0.0.1'},{1,'10.0.0.2'}})\"",)


def test_a_and_aaaa_weighted_at_one_name_share_the_lua_rrset() -> None:
    members = [weighted("eks", 1, "10.0.0.1"), weighted("eks", 1, "2001:db8::1", rtype="AAAA")]
    rendered = codec.render((NAME, "LUA"), members)
    assert len(rendered.contents) == 2 and rendered.contents[1].startswith('AAAA "pickwrandom(')


def test_failover_is_ifurlup_with_the_primary_set_first() -> None:
    url = "http://shop.dc.internal:8080/healthz"
    members = [failover("eks", "PRIMARY", "10.0.0.1", check=url), failover("k3s", "SECONDARY", "10.0.0.2")]
    rendered = codec.render((NAME, "LUA"), members)
    assert rendered.contents == (f"A \"ifurlup('{url}', {{{{'10.0.0.1'}},{{'10.0.0.2'}}}})\"",)
    assert set(codec.from_api(api_form(rendered)).members) == set(members)


def test_ownership_txts_of_routed_sets_share_one_txt_rrset() -> None:
    txt = '"heritage=external-dns,external-dns/owner=dnsportal,external-dns/resource=service/default/shop"'
    members = [
        RecordSet("_dnsportal-a.shop.dc.internal.", "TXT", sid, 300, (txt,), Routing(weight=w))
        for sid, w in (("eks", 80), ("k3s", 20))
    ]
    rendered = codec.render(("_dnsportal-a.shop.dc.internal.", "TXT"), members)
    assert rendered.contents == (txt,)
    assert set(codec.from_api(api_form(rendered)).members) == set(members)


def test_an_rrset_changed_since_it_was_rendered_reads_as_what_it_is() -> None:
    rendered = codec.render((NAME, "LUA"), [weighted("eks", 80, "10.0.0.1"), weighted("k3s", 20, "10.0.0.2")])
    edited = api_form(rendered)
    edited["records"] = [
        {"content": "A \"pickwrandom({{10,'10.0.0.1'},{90,'10.0.0.2'}})\"", "disabled": False}
    ]
    back = codec.from_api(edited)
    assert back.members == ()
    assert codec.to_route53(back)[0]["Type"] == "LUA"  # a type the plan does not manage: shown, never touched


@pytest.mark.parametrize(
    ("rs", "sentence"),
    [
        (
            RecordSet(NAME, "A", "eu", 60, ("10.0.0.1",), Routing(region="eu-west-1")),
            "no latency-based routing",
        ),
        (
            RecordSet(NAME, "A", "ca", 60, ("10.0.0.1",), Routing(country="US", subdivision="CA")),
            "no subdivisions",
        ),
        (RecordSet(NAME, "A", "x", 60, ("10.0.0.1",), Routing(multi_value_answer=True)), "multivalue answer"),
        (failover("eks", "PRIMARY", "10.0.0.1"), "needs an HTTP or HTTPS health check"),
        (
            failover("eks", "PRIMARY", "10.0.0.1", check="0f1e2d3c-route53-id"),
            "needs an HTTP or HTTPS health",
        ),
        (
            RecordSet(NAME, "A", "eks", 60, ("10.0.0.1",), Routing(weight=1), health_check_id="http://x.y/"),
            "do not consult a health check",
        ),
        (RecordSet(NAME, "A", "", None, (), alias=AliasTarget("lb.example.com.")), "no alias records"),
        (
            RecordSet(NAME, "MX", "a", 60, ("10 mx.example.com.",), Routing(weight=1)),
            "A, AAAA and CNAME only",
        ),
    ],
)
def test_what_powerdns_cannot_answer_is_said_in_a_sentence(rs: RecordSet, sentence: str) -> None:
    problem = codec.record_problem(rs)
    assert sentence in problem and problem.endswith(".")
    with pytest.raises(ValueError) as exc:
        codec.render(codec.pdns_key(rs), [rs])
    assert problem in str(exc.value)


def test_what_powerdns_answers_has_no_problem() -> None:
    for rs in (
        RecordSet(NAME, "A", "", 60, ("10.0.0.1", "10.0.0.2")),
        weighted("eks", 80, "10.0.0.1"),
        weighted("eks", 80, "lb.example.com", rtype="CNAME"),
        failover("eks", "PRIMARY", "10.0.0.1", check="https://shop.dc.internal/healthz"),
        failover("k3s", "SECONDARY", "10.0.0.2"),
    ):
        assert codec.record_problem(rs) == "", rs


def test_geolocation_tests_countries_then_continents_then_the_default() -> None:
    members = [
        RecordSet(NAME, "A", "eu", 60, ("10.0.0.2",), Routing(continent="EU")),
        RecordSet(NAME, "A", "us", 60, ("10.0.0.1",), Routing(country="US")),
        RecordSet(NAME, "A", "rest", 60, ("10.0.0.9", "10.0.0.8"), Routing(country="*")),
    ]
    rendered = codec.render((NAME, "LUA"), members)
    assert rendered.contents == (
        "A \";if country('US') then return {'10.0.0.1'} end "
        "if continent('EU') then return {'10.0.0.2'} end return {'10.0.0.8','10.0.0.9'}\"",
    )
    assert set(codec.from_api(api_form(rendered)).members) == set(members)
    without_default = codec.render((NAME, "LUA"), members[:2])
    assert without_default.contents[0].endswith(' return {}"')  # Route53: no matching location, no answer


def test_a_plain_set_and_routed_sets_cannot_share_an_rrset() -> None:
    txt = RecordSet("t.dc.internal.", "TXT", "", 300, ('"x"',))
    routed = RecordSet("t.dc.internal.", "TXT", "eks", 300, ('"y"',), Routing(weight=1))
    with pytest.raises(ValueError, match="cannot share"):
        codec.render(("t.dc.internal.", "TXT"), [txt, routed])
