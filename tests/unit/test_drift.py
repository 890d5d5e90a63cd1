"""The drift check's pure core: which records DNS can check, and what the answers mean."""

from __future__ import annotations

from records import drift
from records.drift import Seen
from records.ownership import DEFAULT_TXT_NAMING, read_registry
from records.recordset import AliasTarget, RecordKey, RecordSet, Routing

ZONE = "example.com."
OWNER = '"heritage=external-dns,external-dns/owner=dnsportal,external-dns/resource=service/default/web"'


def owned(name: str, value: str, *, rtype: str = "A", ttl: int = 300, **kw) -> list[RecordSet]:
    """A record and its ownership TXT, as the portal writes them."""
    rs = RecordSet(name, rtype, ttl=ttl, values=(value,), **kw)
    txt = RecordSet(
        DEFAULT_TXT_NAMING.txt_name(name, rtype),
        "TXT",
        set_identifier=rs.set_identifier,
        ttl=300,
        values=(OWNER,),
        routing=rs.routing,
    )
    return [rs, txt]


def checks_for(*records: RecordSet, owned_keys=None) -> list[drift.Probe]:
    keys = owned_keys if owned_keys is not None else [r.key for r in records if r.type != "TXT"]
    return drift.probes(records, keys, read_registry(records, DEFAULT_TXT_NAMING))


def answers_as_stored(checks, nameservers=("ns1", "ns2")) -> dict[RecordKey, list[Seen]]:
    return {p.key: [Seen(ns, "ANSWER", p.expected, p.record.ttl) for ns in nameservers] for p in checks}


def test_only_simple_records_and_their_ownership_txt_are_asked():
    simple = owned("shop.example.com.", "203.0.113.10")
    weighted = owned("w.example.com.", "203.0.113.20", set_identifier="eks", routing=Routing(weight=80))
    alias = owned("lb.example.com.", "", alias=AliasTarget("elb.amazonaws.com.", "Z1"))
    alias[0] = RecordSet("lb.example.com.", "A", alias=AliasTarget("elb.amazonaws.com.", "Z1"))
    unowned = RecordSet("other.example.com.", "A", ttl=60, values=("192.0.2.1",))
    checks = checks_for(*simple, *weighted, *alias, unowned)
    assert [p.key.name for p in checks] == ["_dnsportal-a.shop.example.com.", "shop.example.com."]
    record = next(p for p in checks if p.key.type == "A")
    assert record.owner_txt == simple[1].key
    assert record.expected == frozenset({"203.0.113.10"})


def test_a_record_without_its_ownership_txt_is_not_asked():
    rs = RecordSet("shop.example.com.", "A", ttl=300, values=("203.0.113.10",))
    assert checks_for(rs, owned_keys=[rs.key]) == []


def test_answers_as_stored_are_unchanged():
    checks = checks_for(
        *owned("shop.example.com.", "203.0.113.10"),
        *owned("c.example.com.", "Target.Example.com", rtype="CNAME"),
    )
    answers = answers_as_stored(checks)
    verdict = drift.judge(checks, answers, stored_count=6, provider_count=6, nameservers=2)
    assert verdict.outcome == drift.UNCHANGED, verdict.summary
    assert "4 record sets asked of 2 nameservers" in verdict.summary
    assert "record count 6 as stored" in verdict.summary
    # the CNAME's stored value is compared as DNS gives it: a lower-case FQDN
    cname = next(p for p in checks if p.key.type == "CNAME")
    assert cname.expected == frozenset({"target.example.com."})


def test_a_changed_value_on_a_simple_owned_record_is_restored_from_the_answers():
    checks = checks_for(*owned("shop.example.com.", "203.0.113.10"))
    answers = answers_as_stored(checks)
    key = RecordKey("shop.example.com.", "A")
    answers[key] = [Seen(ns, "ANSWER", frozenset({"198.51.100.9"}), 300) for ns in ("ns1", "ns2")]
    verdict = drift.judge(checks, answers, nameservers=2)
    assert verdict.outcome == drift.RESTORE
    assert verdict.names == ("shop.example.com.",)
    assert verdict.observed == (RecordSet("shop.example.com.", "A", ttl=300, values=("198.51.100.9",)),)
    assert (
        "shop.example.com A answers 198.51.100.9 (TTL 300), stored 203.0.113.10 (TTL 300)" in verdict.summary
    )


def test_a_changed_ttl_is_restored_and_a_txt_keeps_its_quotes():
    records = owned("t.example.com.", '"hello world"', rtype="TXT")
    checks = checks_for(*records, owned_keys=[records[0].key])
    assert len(checks) == 2
    answers = answers_as_stored(checks)
    key = RecordKey("t.example.com.", "TXT")
    answers[key] = [Seen("ns1", "ANSWER", frozenset({"hello world"}), 60)]
    verdict = drift.judge(checks, answers)
    assert verdict.outcome == drift.RESTORE
    assert verdict.observed[0].values == ('"hello world"',) and verdict.observed[0].ttl == 60


def test_a_changed_ownership_txt_means_a_full_read():
    records = owned("shop.example.com.", "203.0.113.10")
    checks = checks_for(*records)
    answers = answers_as_stored(checks)
    answers[records[0].key] = [Seen("ns1", "ANSWER", frozenset({"198.51.100.9"}), 300)]
    answers[records[1].key] = [
        Seen("ns1", "ANSWER", frozenset({"heritage=external-dns,external-dns/owner=someone"}), 300)
    ]
    verdict = drift.judge(checks, answers)
    assert verdict.outcome == drift.READ and verdict.observed == ()


def test_a_record_gone_or_turned_into_a_cname_means_a_full_read():
    records = owned("shop.example.com.", "203.0.113.10")
    checks = checks_for(*records)
    for seen in (
        Seen("ns1", "NXDOMAIN"),
        Seen("ns1", "NODATA"),
        Seen("ns1", "CNAME", detail="x.example.com."),
    ):
        answers = answers_as_stored(checks)
        answers[records[0].key] = [seen]
        verdict = drift.judge(checks, answers)
        assert verdict.outcome == drift.READ, (seen, verdict)
        assert verdict.drift


def test_nameservers_that_disagree_mean_a_full_read():
    records = owned("shop.example.com.", "203.0.113.10")
    checks = checks_for(*records)
    answers = answers_as_stored(checks)
    answers[records[0].key] = [
        Seen("ns1", "ANSWER", frozenset({"198.51.100.9"}), 300),
        Seen("ns2", "ANSWER", frozenset({"203.0.113.10"}), 300),
    ]
    verdict = drift.judge(checks, answers)
    assert verdict.outcome == drift.UNCHECKED
    assert "disagree" in verdict.summary


def test_no_answer_at_all_is_unchecked_and_a_silent_server_beside_an_answering_one_is_not():
    records = owned("shop.example.com.", "203.0.113.10")
    checks = checks_for(*records)
    silent = {p.key: [Seen("ns1", "TIMEOUT", detail="no response")] for p in checks}
    assert drift.judge(checks, silent).outcome == drift.UNCHECKED
    mixed = answers_as_stored(checks, nameservers=("ns2",))
    for p in checks:
        mixed[p.key].insert(0, Seen("ns1", "TIMEOUT"))
    assert drift.judge(checks, mixed).outcome == drift.UNCHANGED
    refused = answers_as_stored(checks)
    refused[records[0].key] = [Seen("ns1", "REFUSED")]
    assert drift.judge(checks, refused).outcome == drift.UNCHECKED


def test_a_non_authoritative_answer_is_not_trusted():
    records = owned("shop.example.com.", "203.0.113.10")
    checks = checks_for(*records)
    answers = answers_as_stored(checks)
    answers[records[0].key] = [Seen("ns1", "ANSWER", frozenset({"198.51.100.9"}), 300, authoritative=False)]
    assert drift.judge(checks, answers).outcome == drift.UNCHECKED


def test_a_record_count_that_moved_means_a_full_read_whatever_dns_answers():
    checks = checks_for(*owned("shop.example.com.", "203.0.113.10"))
    verdict = drift.judge(checks, answers_as_stored(checks), stored_count=4, provider_count=5)
    assert verdict.outcome == drift.READ
    assert verdict.summary == "record count: the zone holds 5 record sets, the stored state 4"
    # a provider without a cheap count: the answers decide
    assert drift.judge(checks, answers_as_stored(checks), stored_count=4).outcome == drift.UNCHANGED


def test_ipv6_and_names_compare_by_value():
    checks = checks_for(*owned("v6.example.com.", "2001:DB8:0::1", rtype="AAAA"))
    answers = answers_as_stored(checks)
    assert answers[RecordKey("v6.example.com.", "AAAA")][0].values == frozenset({"2001:db8::1"})
    assert drift.judge(checks, answers).outcome == drift.UNCHANGED
