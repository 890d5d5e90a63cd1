"""The verification core without a network: sample sizes, verdicts, values, nameserver parsing, and how
answers (built with dnspython, as a server would send them) are judged."""

from __future__ import annotations

import socket

import dns.edns
import dns.flags
import dns.message
import dns.rcode
import dns.rrset
import pytest

from records.verify import (
    ANSWER,
    CNAME,
    NODATA,
    NXDOMAIN,
    REFERRAL,
    TIMEOUT,
    Answer,
    Counts,
    ExpectedRRset,
    Nameserver,
    compare_answers,
    distribution_verdict,
    interpret,
    make_query,
    nameserver_entry_problems,
    normalize_value,
    rdata_value,
    resolve_nameservers,
    sample_size,
)

# --- sample size ----------------------------------------------------------------------------------------


def test_sample_size_80_20_at_2_points_95_percent_is_1537() -> None:
    # 1.96² · 0.8 · 0.2 / 0.02² = 1536.6
    assert sample_size({"eks": 0.8, "k3s": 0.2}) == 1537


def test_sample_size_takes_weights_like_shares() -> None:
    assert sample_size({"eks": 80, "k3s": 20}) == sample_size({"eks": 4, "k3s": 1}) == 1537


def test_sample_size_is_driven_by_the_share_nearest_half() -> None:
    assert sample_size({"a": 50, "b": 50}) == 2401
    assert sample_size({"a": 50, "b": 30, "c": 20}) == 2401
    assert sample_size({"a": 90, "b": 10}) < sample_size({"a": 80, "b": 20})


def test_sample_size_grows_with_confidence_and_precision() -> None:
    assert sample_size({"a": 80, "b": 20}, confidence=0.99) > 1537
    assert sample_size({"a": 80, "b": 20}, precision=0.01, cap=100_000) == 6147


def test_sample_size_is_capped_and_floored() -> None:
    assert sample_size({"a": 50, "b": 50}, precision=0.005) == 5000
    assert sample_size({"a": 50, "b": 50}, precision=0.005, cap=50_000) == 38415
    assert sample_size({"only": 1}) == 200  # one set: every answer is it; nothing to estimate
    assert sample_size({"a": 99.9, "b": 0.1}, floor=300) == 300


def test_sample_size_treats_all_zero_weights_as_equal() -> None:
    # Route53: when every weight is 0, all record sets are equally likely
    assert sample_size({"a": 0, "b": 0}) == sample_size({"a": 1, "b": 1})


@pytest.mark.parametrize("kwargs", [{"precision": 0}, {"precision": 1.5}, {"confidence": 1}])
def test_sample_size_rejects_nonsense(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        sample_size({"a": 1, "b": 1}, **kwargs)


def test_sample_size_rejects_negative_weights() -> None:
    with pytest.raises(ValueError, match="0 or more"):
        sample_size({"a": -1, "b": 2})


# --- verdict --------------------------------------------------------------------------------------------


def test_verdict_exact_split_is_consistent_with_p_1() -> None:
    v = distribution_verdict({"eks": 800, "k3s": 200}, {"eks": 80, "k3s": 20})
    assert v.ok
    assert v.p_value == pytest.approx(1.0)
    assert v.message == "consistent with 80/20 (p = 1.00)"
    assert [(r.key, r.intended, r.observed, r.count) for r in v.rows] == [
        ("eks", 0.8, 0.8, 800),
        ("k3s", 0.2, 0.2, 200),
    ]


def test_verdict_chi_square_matches_the_hand_computation() -> None:
    # chi² = 30²/800 + 30²/200 = 5.625 with one degree of freedom: p = 0.0177
    v = distribution_verdict({"eks": 830, "k3s": 170}, {"eks": 80, "k3s": 20})
    assert v.statistic == pytest.approx(5.625)
    assert v.p_value == pytest.approx(0.01770, abs=1e-4)
    # 83/17 of 1,537 answers (p = 0.003): a correct 80/20 split shows this once in ~300 measurements,
    # which is why the default alpha is 0.001 and not 0.01
    assert distribution_verdict({"eks": 1276, "k3s": 261}, {"eks": 80, "k3s": 20}).ok
    off_by_ten = distribution_verdict({"eks": 1076, "k3s": 461}, {"eks": 80, "k3s": 20})
    assert not off_by_ten.ok and off_by_ten.p_value < 1e-10
    assert v.ok  # at the default alpha 0.001
    assert v.message == "consistent with 80/20 (p = 0.02)"
    strict = distribution_verdict({"eks": 830, "k3s": 170}, {"eks": 80, "k3s": 20}, alpha=0.05)
    assert not strict.ok
    assert strict.message.startswith(
        "not as configured: k3s receives 17 %, expected 20 % (p = 0.02); observed 83/17"
    )


def test_verdict_50_50_served_for_80_20_names_the_cluster_and_the_shares() -> None:
    v = distribution_verdict(
        {"eks": 690, "k3s": 310}, {"eks": 80, "k3s": 20}, {"eks": "eks-eu1", "k3s": "k3s-edge"}
    )
    assert not v.ok
    assert v.p_value is not None and v.p_value < 0.001
    assert v.message == (
        "not as configured: eks-eu1 receives 69 %, expected 80 % (p < 0.001); observed 69/31, intended 80/20"
    )


def test_verdict_zero_weight_set_that_answers_fails_with_p_0() -> None:
    v = distribution_verdict(
        {"blue": 990, "green": 10}, {"blue": 100, "green": 0}, {"green": "rke2-dc1 (weight 0)"}
    )
    assert not v.ok
    assert v.p_value == 0.0
    assert v.statistic is None  # no chi-square with an expectation of 0: no division by zero
    assert "rke2-dc1 (weight 0) receives 1 %, expected 0 % (p < 0.001)" in v.message


def test_verdict_zero_weight_set_that_stays_silent_is_consistent() -> None:
    v = distribution_verdict({"blue": 700, "green": 300, "old": 0}, {"blue": 70, "green": 30, "old": 0})
    assert v.ok
    assert v.message.startswith("consistent with 70/30/0 (p = ")


def test_verdict_small_share_of_a_zero_weight_set_is_shown_with_a_decimal() -> None:
    v = distribution_verdict({"blue": 996, "green": 4}, {"blue": 1, "green": 0})
    assert "green receives 0.4 %, expected 0 %" in v.message


def test_verdict_single_set_every_answer_it() -> None:
    v = distribution_verdict({"eks": 250}, {"eks": 1}, {"eks": "eks-eu1"})
    assert v.ok
    assert v.p_value == 1.0
    assert v.message == "consistent: every answer is eks-eu1 (250 answers)"


def test_verdict_unexpected_answer_counts_as_intended_zero() -> None:
    v = distribution_verdict({"eks": 180, "k3s": 20, "other: 192.0.2.99": 5}, {"eks": 90, "k3s": 10})
    assert not v.ok
    assert v.rows[-1].key == "other: 192.0.2.99"
    assert v.rows[-1].intended == 0.0
    assert "other: 192.0.2.99 receives 2 %, expected 0 %" in v.message


def test_verdict_without_answers_is_not_ok() -> None:
    v = distribution_verdict({}, {"eks": 80, "k3s": 20})
    assert not v.ok
    assert v.message == "no answers to compare"


def test_verdict_all_zero_weights_mean_equal_shares() -> None:
    v = distribution_verdict({"a": 500, "b": 500}, {"a": 0, "b": 0})
    assert v.ok
    assert v.message == "consistent with 50/50 (p = 1.00)"


def test_verdict_to_dict_is_json_ready() -> None:
    import json

    v = distribution_verdict({"a": 60, "b": 40}, {"a": 1, "b": 1})
    assert json.loads(json.dumps(v.to_dict()))["rows"][0]["key"] == "a"


def test_counts_by_set_maps_answers_to_record_sets() -> None:
    from collections import Counter

    counts = Counts(
        name="w.example.com.",
        type="A",
        key="answer",
        n=10,
        counts=Counter(
            {frozenset({"203.0.113.10"}): 7, frozenset({"198.51.100.10"}): 2, frozenset({"192.0.2.1"}): 1}
        ),
        errors=0,
        error_samples=[],
        per_nameserver={},
        elapsed=0.0,
    )
    assert counts.by_set({"eks": ["203.0.113.10"], "k3s": ["198.51.100.10"], "gone": ["192.0.2.50"]}) == {
        "eks": 7,
        "k3s": 2,
        "gone": 0,
        "other: 192.0.2.1": 1,
    }
    first = Counts("r.", "A", "first", 3, Counter({"192.0.2.1": 2, "": 1}), 0, [], {}, 0.0)
    assert first.by_set({"dc": ["192.0.2.1", "192.0.2.2"]}) == {"dc": 2, "other: no record": 1}


# --- values ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rdtype", "given", "canonical"),
    [
        ("A", " 203.0.113.10 ", "203.0.113.10"),
        ("AAAA", "2001:DB8:0:0::1", "2001:db8::1"),
        ("AAAA", "::ffff:192.0.2.1", "::ffff:c000:201"),
        ("CNAME", "Target.Example.COM", "target.example.com."),
        ("CNAME", "target.example.com.", "target.example.com."),
        ("NS", "NS-1.awsdns-01.org", "ns-1.awsdns-01.org."),
        ("MX", "10 Mail.Example.com", "10 mail.example.com."),
        ("SRV", "0 5 443 Svc.Example.com.", "0 5 443 svc.example.com."),
        ("TXT", "hello world", "hello world"),
        ("TXT", '"hello world"', "hello world"),
        (
            "TXT",
            '"heritage=external-dns," "external-dns/owner=portal"',
            "heritage=external-dns,external-dns/owner=portal",
        ),
        ("CAA", '0 issue "letsencrypt.org"', '0 issue "letsencrypt.org"'),
        ("a", "192.0.2.1", "192.0.2.1"),
    ],
)
def test_normalize_value(rdtype: str, given: str, canonical: str) -> None:
    assert normalize_value(rdtype, given) == canonical


@pytest.mark.parametrize(
    ("rdtype", "bad"), [("A", "not-an-ip"), ("A", "192.0.2"), ("AAAA", "192.0.2.1"), ("MX", "mail")]
)
def test_normalize_value_rejects_malformed(rdtype: str, bad: str) -> None:
    with pytest.raises(ValueError, match=f"not a valid {rdtype} value"):
        normalize_value(rdtype, bad)


def test_answer_values_normalise_like_expected_values() -> None:
    rrset = dns.rrset.from_text("t.example.com.", 60, "IN", "TXT", '"heritage=external-dns," "owner=p"')
    assert rdata_value(next(iter(rrset))) == normalize_value("TXT", '"heritage=external-dns," "owner=p"')
    aaaa = dns.rrset.from_text("six.example.com.", 60, "IN", "AAAA", "2001:db8:0::1")
    assert rdata_value(next(iter(aaaa))) == normalize_value("AAAA", "2001:DB8::1")


def test_expected_rrset_normalises_name_type_and_values() -> None:
    exp = ExpectedRRset("App.Example.COM", "a", {"203.0.113.10", " 203.0.113.11"}, 60)
    assert (exp.name, exp.type, exp.values, exp.ttl) == (
        "app.example.com.",
        "A",
        frozenset({"203.0.113.10", "203.0.113.11"}),
        60,
    )
    assert exp.describe() == "A 203.0.113.10, 203.0.113.11"
    assert ExpectedRRset("gone.example.com", "A").describe() == "no A record"


def test_expected_rrset_one_of_accepts_any_whole_set() -> None:
    exp = ExpectedRRset.one_of("w.example.com", "A", [["203.0.113.10"], ["198.51.100.10", "198.51.100.11"]])
    assert exp.accepts(frozenset({"203.0.113.10"}))
    assert exp.accepts(frozenset({"198.51.100.10", "198.51.100.11"}))
    assert not exp.accepts(frozenset({"198.51.100.10"}))  # half a set is not what any set holds
    assert exp.values == {"203.0.113.10", "198.51.100.10", "198.51.100.11"}


def test_expected_rrset_rejects_a_bad_ttl_and_a_bad_value() -> None:
    with pytest.raises(ValueError, match="TTL -1"):
        ExpectedRRset("a.example.com", "A", {"192.0.2.1"}, -1)
    with pytest.raises(ValueError, match="not a valid A value"):
        ExpectedRRset("a.example.com", "A", {"192.0.2.300"})


# --- nameservers ----------------------------------------------------------------------------------------


def _no_lookup(host: str) -> list[str]:
    raise AssertionError(f"{host} should not be looked up")


@pytest.mark.parametrize(
    ("entry", "host", "port"),
    [
        ("192.0.2.1", "192.0.2.1", 53),
        ("192.0.2.1:5300", "192.0.2.1", 5300),
        ("2001:db8::1", "2001:db8::1", 53),
        ("2001:DB8:0::1", "2001:db8::1", 53),
        ("[2001:db8::1]:5300", "2001:db8::1", 5300),
        ("[::1]", "::1", 53),
        ("  127.0.0.1:5301 ", "127.0.0.1", 5301),
    ],
)
def test_resolve_nameservers_parses_addresses(entry: str, host: str, port: int) -> None:
    assert resolve_nameservers([entry], lookup=_no_lookup) == [Nameserver(host, port)]


def test_resolve_nameservers_resolves_host_names_to_every_address() -> None:
    seen: list[str] = []

    def lookup(host: str) -> list[str]:
        seen.append(host)
        return ["192.0.2.53", "2001:db8::53"]

    got = resolve_nameservers(["NS1.Example.com.:5300"], lookup=lookup)
    assert seen == ["ns1.example.com"]
    assert got == [
        Nameserver("192.0.2.53", 5300, "ns1.example.com"),
        Nameserver("2001:db8::53", 5300, "ns1.example.com"),
    ]
    assert [str(ns) for ns in got] == [
        "ns1.example.com 192.0.2.53:5300",
        "ns1.example.com [2001:db8::53]:5300",
    ]


def test_resolve_nameservers_drops_duplicates_and_blank_entries() -> None:
    got = resolve_nameservers(["192.0.2.1", "", "192.0.2.1:53", "192.0.2.2"], lookup=_no_lookup)
    assert got == [Nameserver("192.0.2.1"), Nameserver("192.0.2.2")]


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("192.0.2.1:99999", "port 99999"),
        ("192.0.2.1:dns", "'dns' is not a port number"),
        ("bad host!", "neither an IP address nor a host name"),
        ("[2001:db8::1", "neither an IP address nor a host name"),
        ("[not-v6]:53", "neither an IP address nor a host name"),
    ],
)
def test_resolve_nameservers_rejects_malformed_entries(entry: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        resolve_nameservers([entry], lookup=_no_lookup)


def test_nameserver_entry_problems_names_every_bad_entry_and_looks_nothing_up() -> None:
    assert nameserver_entry_problems("192.0.2.1:5300, [2001:db8::1]:53, ns1.example.net, ::1") == []
    assert nameserver_entry_problems("nohost:99999, ::::, 192.0.2.1, ns1.example.net:0") == [
        "nameserver 'nohost:99999': port 99999 is not between 1 and 65535",
        "nameserver '::::' is neither an IP address nor a host name",
        "nameserver 'ns1.example.net:0': port 0 is not between 1 and 65535",
    ]


def test_resolve_nameservers_names_the_host_that_does_not_resolve() -> None:
    def lookup(host: str) -> list[str]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    with pytest.raises(ValueError, match=r"nameserver 'ns9\.example\.com' does not resolve"):
        resolve_nameservers(["ns9.example.com"], lookup=lookup)


def test_nameserver_str_names_it_and_its_address() -> None:
    assert str(Nameserver("127.0.0.1", 5301, "ns2")) == "ns2 127.0.0.1:5301"
    assert str(Nameserver("::1")) == "[::1]:53"
    with pytest.raises(ValueError, match="not an IP address"):
        Nameserver("ns1.example.com")


# --- interpreting answers (responses built as a server sends them) --------------------------------------


def _response(name: str, rdtype: str, rcode: int = dns.rcode.NOERROR, aa: bool = True) -> dns.message.Message:
    r = dns.message.make_response(make_query(name, rdtype))
    r.set_rcode(rcode)
    if aa:  # an authoritative server sets AA on answers from its own zones
        r.flags |= dns.flags.AA
    return r


def test_make_query_asks_without_recursion_with_edns() -> None:
    q = make_query("App.Example.com", "a", ecs="198.51.100.0/24")
    assert not q.flags & dns.flags.RD
    assert q.edns == 0
    assert q.payload == 1232
    (ecs,) = q.options
    assert isinstance(ecs, dns.edns.ECSOption)
    assert (ecs.address, ecs.srclen) == ("198.51.100.0", 24)
    with pytest.raises(ValueError, match="not a client subnet"):
        make_query("a.example.com", "A", ecs="nowhere")


def test_interpret_answer_keeps_the_first_value_in_wire_order() -> None:
    r = _response("r.example.com", "A")
    r.answer.append(dns.rrset.from_text("r.example.com.", 60, "IN", "A", "192.0.2.3", "192.0.2.1"))
    a = interpret(r, "r.example.com", "A")
    assert (a.status, a.values, a.first, a.ttl, a.authoritative) == (
        ANSWER,
        frozenset({"192.0.2.1", "192.0.2.3"}),
        "192.0.2.3",
        60,
        True,
    )


def test_interpret_nxdomain_nodata_cname_referral_and_refused() -> None:
    assert (
        interpret(_response("x.example.com", "A", rcode=dns.rcode.NXDOMAIN), "x.example.com", "A").status
        == NXDOMAIN
    )
    assert interpret(_response("x.example.com", "AAAA"), "x.example.com", "AAAA").status == NODATA
    alias = _response("www.example.com", "A")
    alias.answer.append(dns.rrset.from_text("www.example.com.", 300, "IN", "CNAME", "Edge.Example.net."))
    a = interpret(alias, "www.example.com", "A")
    assert (a.status, a.detail) == (CNAME, "edge.example.net.")
    referral = _response("sub.example.com", "A", aa=False)
    referral.authority.append(dns.rrset.from_text("sub.example.com.", 300, "IN", "NS", "ns.elsewhere.net."))
    assert interpret(referral, "sub.example.com", "A").status == REFERRAL
    assert interpret(_response("x.other", "A", rcode=dns.rcode.REFUSED), "x.other", "A").status == "REFUSED"


def test_interpret_reads_the_ecs_scope() -> None:
    q = make_query("geo.example.com", "A", ecs="198.51.100.0/24")
    r = dns.message.make_response(q)
    r.use_edns(0, options=[dns.edns.ECSOption("198.51.100.0", 24, 16)])
    assert interpret(r, "geo.example.com", "A").ecs_scope == 16


# --- judging answers ------------------------------------------------------------------------------------

NS1, NS2, NS3 = (
    Nameserver("127.0.0.1", 5300, "ns1"),
    Nameserver("127.0.0.1", 5301, "ns2"),
    Nameserver("::1", 53, "ns3"),
)
APP = ExpectedRRset("app.example.com", "A", {"203.0.113.10"}, 60)


def _ok(*values: str, ttl: int = 60) -> Answer:
    return Answer(ANSWER, frozenset(values), first=values[0], ttl=ttl)


def _messages(expected: list[ExpectedRRset], **per_ns: Answer) -> list[str]:
    by_name = {"ns1": NS1, "ns2": NS2, "ns3": NS3}
    answers = {by_name[n]: {expected[0].key: a} for n, a in per_ns.items()}
    return [d.message for d in compare_answers(expected, answers)]


def test_matching_answers_have_no_difference() -> None:
    assert _messages([APP], ns1=_ok("203.0.113.10"), ns2=_ok("203.0.113.10")) == []


def test_wrong_value_names_nameserver_and_values() -> None:
    assert _messages([APP], ns1=_ok("203.0.113.10"), ns2=_ok("192.0.2.9"), ns3=_ok("203.0.113.10")) == [
        "ns2 127.0.0.1:5301: app.example.com A answers 192.0.2.9, expected 203.0.113.10",
        "ns2 127.0.0.1:5301 differs from ns1 127.0.0.1:5300: app.example.com A answers 192.0.2.9 (TTL 60), "
        "ns1 127.0.0.1:5300 answers 203.0.113.10 (TTL 60)",
    ]


def test_majority_is_the_reference_not_the_first_nameserver() -> None:
    msgs = _messages([APP], ns1=_ok("192.0.2.9"), ns2=_ok("203.0.113.10"), ns3=_ok("203.0.113.10"))
    assert msgs[-1].startswith("ns1 127.0.0.1:5300 differs from ns2 127.0.0.1:5301:")


def test_wrong_ttl_and_missing_records_are_named() -> None:
    assert _messages([APP], ns1=_ok("203.0.113.10", ttl=300)) == [
        "ns1 127.0.0.1:5300: app.example.com A TTL 300, expected 60"
    ]
    assert _messages([APP], ns1=Answer(NXDOMAIN)) == [
        "ns1 127.0.0.1:5300: app.example.com A NXDOMAIN, expected A 203.0.113.10"
    ]
    assert _messages([APP], ns1=Answer(NODATA)) == [
        "ns1 127.0.0.1:5300: app.example.com A answers no A record (NODATA), expected A 203.0.113.10"
    ]


def test_no_answer_and_refused_are_errors() -> None:
    timeout = Answer(TIMEOUT, detail="no response within 2 s, 3 tries")
    assert _messages([APP], ns1=timeout, ns2=Answer("REFUSED"), ns3=_ok("203.0.113.10")) == [
        "ns1 127.0.0.1:5300: app.example.com A got no answer: no response within 2 s, 3 tries",
        "ns2 127.0.0.1:5301: app.example.com A answers REFUSED (the server does not serve this zone), "
        "expected A 203.0.113.10",
        # a server without a response is not compared; REFUSED is a response, and on a one-to-one tie the
        # server answering as planned is the reference
        "ns2 127.0.0.1:5301 differs from ns3 [::1]:53: app.example.com A answers REFUSED, "
        "ns3 [::1]:53 answers 203.0.113.10 (TTL 60)",
    ]


def test_an_answer_without_the_aa_flag_is_not_authoritative() -> None:
    cached = Answer(ANSWER, frozenset({"203.0.113.10"}), first="203.0.113.10", ttl=60, authoritative=False)
    assert _messages([APP], ns1=cached) == [
        "ns1 127.0.0.1:5300: app.example.com A answer has no AA flag: the server is not authoritative for it"
    ]


def test_a_record_that_must_be_gone() -> None:
    gone = ExpectedRRset("old.example.com", "A")
    assert _messages([gone], ns1=Answer(NXDOMAIN), ns2=Answer(NODATA)) == [
        "ns2 127.0.0.1:5301 differs from ns1 127.0.0.1:5300: old.example.com A answers no A record (NODATA), "
        "ns1 127.0.0.1:5300 answers NXDOMAIN"
    ]
    assert _messages([gone], ns1=_ok("192.0.2.1")) == [
        "ns1 127.0.0.1:5300: old.example.com A answers 192.0.2.1, expected no record"
    ]


def test_weighted_servers_may_answer_different_sets() -> None:
    weighted = ExpectedRRset.one_of("w.example.com", "A", [["203.0.113.10"], ["198.51.100.10"]], ttl=60)
    assert _messages([weighted], ns1=_ok("203.0.113.10"), ns2=_ok("198.51.100.10")) == []
    assert _messages([weighted], ns1=_ok("192.0.2.1")) == [
        "ns1 127.0.0.1:5300: w.example.com A answers 192.0.2.1, "
        "expected one of A {203.0.113.10} / {198.51.100.10}"
    ]
