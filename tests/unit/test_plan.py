"""The plan engine: aggregation across clusters, ownership, policies, reasons, safety, determinism."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterable, Mapping

import pytest

from records.aggregate import aggregate
from records.endpoint import Endpoint
from records.ownership import (
    DEFAULT_TXT_NAMING,
    EXTERNAL_DNS_TXT_NAMING,
    TxtNaming,
    ownership_record,
    read_registry,
)
from records.plan import (
    ADOPT,
    CREATE,
    DELETE,
    OWNERSHIP,
    UPDATE,
    Plan,
    ZoneConfig,
    apply_plan,
    compute_plan,
    hold_names,
    record_owners,
    summarize_ownership,
)
from records.recordset import AliasTarget, RecordKey, RecordSet, Routing

ZONE = "example.com."
ME = "portal"
SOA = RecordSet(ZONE, "SOA", ttl=900, values=("ns-1.awsdns.com. hostmaster. 1 7200 900 1209600 86400",))
NS = RecordSet(ZONE, "NS", ttl=172800, values=("ns-1.awsdns.com.",))


def ep(
    name: str,
    targets: str | Iterable[str],
    *,
    rtype: str = "A",
    cluster: str = "rke2-dc1",
    resource: str = "service/default/nginx",
    sid: str = "",
    props: Mapping[str, str] | None = None,
    ttl: int = 0,
) -> Endpoint:
    return Endpoint.make(
        name,
        rtype,
        [targets] if isinstance(targets, str) else targets,
        ttl=ttl,
        set_identifier=sid,
        provider_specific=props or {},
        labels={"resource": resource},
        cluster=cluster,
    )


def rec(
    name: str, values: str | Iterable[str], rtype: str = "A", sid: str = "", ttl: int = 300, **kw: object
) -> RecordSet:
    vals = (values,) if isinstance(values, str) else tuple(values)
    return RecordSet(name, rtype, sid, ttl, vals, **kw)  # type: ignore[arg-type]


def owned(
    rs: RecordSet,
    owner: str = ME,
    naming: TxtNaming = DEFAULT_TXT_NAMING,
    resource: str = "service/default/nginx",
) -> list[RecordSet]:
    return [rs, ownership_record(rs, owner, {"resource": resource}, naming)]


def cfg(**kw: object) -> ZoneConfig:
    return ZoneConfig(zone=ZONE, owner_id=ME, **kw)  # type: ignore[arg-type]


def plan(desired: Iterable[Endpoint], current: Iterable[RecordSet], **kw: object) -> Plan:
    adopt = kw.pop("adopt", ())
    previous = kw.pop("previous", None)
    return compute_plan(list(desired), [SOA, NS, *current], cfg(**kw), adopt=adopt, previous=previous)  # type: ignore[arg-type]


def kinds(p: Plan) -> list[tuple[str, str]]:
    return [(g.kind, str(g.key)) for g in p.groups]


def actions(p: Plan) -> list[tuple[str, str, str]]:
    return [(c.action, c.record.name, c.record.type) for g in p.groups for c in g.changes]


def converges(p: Plan, desired: Iterable[Endpoint], current: Iterable[RecordSet], **kw: object) -> None:
    after = apply_plan([SOA, NS, *current], p)
    again = compute_plan(list(desired), after, cfg(**kw))
    assert again.is_empty, [g.reasons for g in again.groups]


# --- aggregation across clusters --------------------------------------------------------------------------


def test_same_name_from_several_clusters_is_one_record_set_with_the_union_of_targets() -> None:
    d = aggregate(
        [
            ep("www.example.com", "1.2.3.4", cluster="rke2-dc1", ttl=300),
            ep("www.example.com", ["5.6.7.8", "1.2.3.4"], cluster="k3s-edge", ttl=60),
            ep("www.example.com", "10.9.9.9", cluster="eks-eu1"),
        ],
        ZONE,
    )
    r = d.records[("www.example.com.", "A", "")]
    assert r.record.values == ("1.2.3.4", "5.6.7.8", "10.9.9.9")  # numeric order
    assert r.record.ttl == 60  # the smallest configured TTL
    assert r.sources == (
        "Service eks-eu1/default/nginx",
        "Service k3s-edge/default/nginx",
        "Service rke2-dc1/default/nginx",
    )
    assert r.sources_of("1.2.3.4") == ("Service k3s-edge/default/nginx", "Service rke2-dc1/default/nginx")


def test_set_identifier_endpoints_stay_one_record_set_each() -> None:
    d = aggregate(
        [
            ep("shop.example.com", "1.1.1.1", sid="eks", props={"aws/weight": "80"}, cluster="eks"),
            ep("shop.example.com", "2.2.2.2", sid="dc1", props={"aws/weight": "20"}, cluster="dc1"),
        ],
        ZONE,
    )
    assert set(d.records) == {("shop.example.com.", "A", "eks"), ("shop.example.com.", "A", "dc1")}
    assert d.records[("shop.example.com.", "A", "eks")].record.routing == Routing(weight=80)
    assert d.conflicts == ()


@pytest.mark.parametrize(
    ("props", "routing"),
    [
        ({"aws/failover": "PRIMARY", "aws/health-check-id": "hc"}, Routing(failover="PRIMARY")),
        ({"aws/region": "eu-west-1"}, Routing(region="eu-west-1")),
        (
            {"aws/geolocation-continent-code": "EU", "aws/geolocation-country-code": "DE"},
            Routing(continent="EU"),
        ),
        (
            {"aws/geolocation-country-code": "US", "aws/geolocation-subdivision-code": "CA"},
            Routing(country="US", subdivision="CA"),
        ),
        (
            {"aws/geoproximity-region": "us-east-1"},
            Routing(geoproximity_region="us-east-1", geoproximity_bias=0),
        ),
        (
            {"aws/geoproximity-coordinates": "49.22,-74.01", "aws/geoproximity-bias": "5"},
            Routing(geoproximity_coordinates=("49.22", "-74.01"), geoproximity_bias=5),
        ),
        ({"aws/multi-value-answer": ""}, Routing(multi_value_answer=True)),
    ],
)
def test_routing_properties_as_external_dns_writes_them(props: dict[str, str], routing: Routing) -> None:
    r = aggregate([ep("a.example.com", "1.1.1.1", sid="x", props=props)], ZONE).records[
        ("a.example.com.", "A", "x")
    ]
    assert r.record.routing == routing
    assert r.record.health_check_id == props.get("aws/health-check-id", "")


def test_routing_properties_without_set_identifier_are_ignored_with_a_note() -> None:
    d = aggregate([ep("a.example.com", "1.1.1.1", props={"aws/weight": "10"})], ZONE)
    assert d.records[("a.example.com.", "A", "")].record.routing == Routing()
    assert any("aws/weight ignored" in n for n in d.notes)


def test_cname_with_alias_true_becomes_alias_a_and_aaaa() -> None:
    d = aggregate(
        [ep("www.example.com", "lb-1.eu-west-1.elb.amazonaws.com", rtype="CNAME", props={"alias": "true"})],
        ZONE,
    )
    assert set(d.records) == {("www.example.com.", "A", ""), ("www.example.com.", "AAAA", "")}
    a = d.records[("www.example.com.", "A", "")].record
    assert a.alias == AliasTarget("lb-1.eu-west-1.elb.amazonaws.com", "", True) and a.ttl is None


def test_endpoints_outside_the_zone_or_of_unmanaged_types_are_left_out() -> None:
    d = aggregate(
        [ep("www.example.org", "1.1.1.1"), ep("mx.example.com", "10 mail.example.com", rtype="MX")], ZONE
    )
    assert d.records == {}
    assert d.notes == (
        "1 endpoint(s) outside zone example.com. (or in a zone below it) left out",
        "1 MX endpoint(s) left out: type MX is not managed in this zone",
    )


@pytest.mark.parametrize(
    ("endpoints", "message"),
    [
        (
            [
                ep("x.example.com", "1.1.1.1", cluster="c1"),
                ep("x.example.com", "lb.example.net", rtype="CNAME", cluster="c2"),
            ],
            "x.example.com.: a CNAME cannot share its name with other records (A)",
        ),
        (
            [
                ep("x.example.com", "1.1.1.1", sid="a", props={"aws/weight": "1"}),
                ep("x.example.com", "2.2.2.2", sid="b", props={"aws/region": "eu-west-1"}),
            ],
            "x.example.com. A: mixed routing policies (a=weighted, b=latency)",
        ),
        (
            [
                ep("x.example.com", "1.1.1.1", sid="a", props={"aws/failover": "PRIMARY"}, cluster="c1"),
                ep("x.example.com", "2.2.2.2", sid="b", props={"aws/failover": "PRIMARY"}, cluster="c2"),
            ],
            "x.example.com. A: 2 PRIMARY record sets (a, b); one allowed",
        ),
        (
            [
                ep("x.example.com", "1.1.1.1", sid="a", props={"aws/weight": "10"}, cluster="c1"),
                ep("x.example.com", "2.2.2.2", sid="a", props={"aws/weight": "90"}, cluster="c2"),
            ],
            "x.example.com. A [a]: set identifier 'a' is used with different routing",
        ),
        (
            [
                ep("x.example.com", "1.1.1.1", cluster="c1"),
                ep("x.example.com", "2.2.2.2", sid="a", props={"aws/weight": "1"}, cluster="c2"),
            ],
            "x.example.com. A: a plain record set cannot coexist with set-identifier record sets (a)",
        ),
        (
            [
                ep("x.example.com", "a.example.net", rtype="CNAME", cluster="c1"),
                ep("x.example.com", "b.example.net", rtype="CNAME", cluster="c2"),
            ],
            "x.example.com. CNAME: objects ask for different CNAME targets",
        ),
        (
            [ep("x.example.com", "1.1.1.1", sid="a", props={"aws/weight": "abc"})],
            "x.example.com. A [a]: aws/weight `abc` is not an integer from 0 to 255",
        ),
    ],
)
def test_conflicts_are_reported_per_name_with_the_objects_and_the_name_is_left_alone(
    endpoints: list[Endpoint], message: str
) -> None:
    current = owned(rec("x.example.com.", "9.9.9.9"))
    others = [ep("ok.example.com", "3.3.3.3")]
    p = plan([*endpoints, *others], current)
    assert [c.message for c in p.conflicts] == [message]
    assert p.conflicts[0].name == "x.example.com."
    assert len(p.conflicts[0].objects) == len(
        {(e.cluster, e.targets, e.provider_specific) for e in endpoints}
    )
    assert all("x.example.com" not in str(g.key) for g in p.groups)  # owned x is neither updated nor deleted
    assert kinds(p) == [(CREATE, "ok.example.com. A")]  # the rest of the plan goes on


def test_conflict_objects_name_cluster_and_object() -> None:
    p = plan(
        [
            ep("x.example.com", "1.1.1.1", cluster="c1", resource="service/a/b"),
            ep("x.example.com", "lb.net", rtype="CNAME", cluster="c2", resource="ingress/a/c"),
        ],
        [],
    )
    assert p.conflicts[0].objects == ("Ingress c2/a/c: CNAME lb.net", "Service c1/a/b: A 1.1.1.1")


# --- creates, updates, deletes with their TXT ----------------------------------------------------------


def test_create_writes_the_record_and_its_ownership_txt_in_one_group() -> None:
    p = plan([ep("www.example.com", "1.2.3.4", cluster="rke2-dc1")], [])
    [g] = p.groups
    assert g.kind == CREATE and g.reasons == ("new Service rke2-dc1/default/nginx",)
    assert actions(p) == [
        ("CREATE", "www.example.com.", "A"),
        ("CREATE", "_dnsportal-a.www.example.com.", "TXT"),
    ]
    assert g.changes[1].record.values == (
        '"heritage=external-dns,external-dns/owner=portal,external-dns/resource=service/default/nginx"',
    )
    assert g.after == rec("www.example.com.", "1.2.3.4")  # TTL unset: the AWS default 300


def test_update_reason_names_the_target_change() -> None:
    current = owned(rec("www.example.com.", "1.2.3.4"))
    p = plan([ep("www.example.com", "5.6.7.8", cluster="k3s-edge")], current)
    [g] = p.groups
    assert g.kind == UPDATE and not g.replace
    assert g.reasons[0] == "target changed 1.2.3.4 → 5.6.7.8"
    assert "5.6.7.8 published by Service k3s-edge/default/nginx" in g.reasons
    assert actions(p) == [("UPSERT", "www.example.com.", "A")]  # the TXT is unchanged
    converges(p, [ep("www.example.com", "5.6.7.8")], current)


@pytest.mark.parametrize("with_previous", [True, False])
def test_round_robin_becoming_weighted_says_the_routing_changed(with_previous: bool) -> None:
    before = [
        ep("shop.example.com", "1.1.1.1", cluster="eks-eu1"),
        ep("shop.example.com", "2.2.2.2", cluster="rke2-dc1"),
    ]
    now = [
        ep("shop.example.com", "1.1.1.1", cluster="eks-eu1", sid="eks-eu1", props={"aws/weight": "80"}),
        ep("shop.example.com", "2.2.2.2", cluster="rke2-dc1", sid="rke2-dc1", props={"aws/weight": "20"}),
    ]
    current = owned(rec("shop.example.com.", ["1.1.1.1", "2.2.2.2"]))
    p = plan(now, current, previous=before if with_previous else None)
    [gone] = [g for g in p.groups if g.kind == DELETE]
    assert gone.reasons == (
        "routing changed from round robin to weighted: replaced by record sets [eks-eu1], [rke2-dc1]",
    )
    assert sorted(str(g.key) for g in p.groups if g.kind == CREATE) == [
        "shop.example.com. A [eks-eu1]",
        "shop.example.com. A [rke2-dc1]",
    ]
    converges(p, now, current)
    # and back: the weighted record sets give way to one simple record set
    back = plan(before, apply_plan(current, p), previous=now if with_previous else None)
    assert [g.reasons for g in back.groups if g.kind == DELETE] == [
        ("routing changed from weighted to round robin",),
        ("routing changed from weighted to round robin",),
    ]


def test_a_renamed_set_identifier_is_not_a_routing_change() -> None:
    before = [ep("shop.example.com", "1.1.1.1", cluster="eks", sid="eks", props={"aws/weight": "1"})]
    now = [ep("shop.example.com", "1.1.1.1", cluster="eks", sid="eks-eu1", props={"aws/weight": "1"})]
    current = owned(rec("shop.example.com.", "1.1.1.1", sid="eks", routing=Routing(weight=1)))
    p = plan(now, current, previous=before)
    [gone] = [g for g in p.groups if g.kind == DELETE]
    assert gone.reasons == ("source deleted in eks (Service eks/default/nginx)",)


def test_delete_takes_the_record_and_its_txt_exactly_as_they_are() -> None:
    record = rec("old.example.com.", ["1.1.1.1", "2.2.2.2"], ttl=77)
    current = owned(record, resource="service/shop/old")
    p = plan([], current)
    [g] = p.groups
    assert g.kind == DELETE
    assert g.reasons == ("no cluster publishes it any more (last written for service/shop/old)",)
    assert [c.record for c in g.changes] == current  # exact, as Route53 requires for DELETE


def test_source_deleted_in_a_cluster_with_the_previous_endpoints() -> None:
    before = [
        ep("www.example.com", "1.1.1.1", cluster="rke2-dc1"),
        ep("www.example.com", "2.2.2.2", cluster="k3s-edge"),
        ep("gone.example.com", "3.3.3.3", cluster="k3s-edge"),
    ]
    current = [
        *owned(rec("www.example.com.", ["1.1.1.1", "2.2.2.2"])),
        *owned(rec("gone.example.com.", "3.3.3.3")),
    ]
    now = [before[0]]
    p = plan(now, current, previous=before)
    by_key = {str(g.key): g for g in p.groups}
    assert by_key["gone.example.com. A"].reasons == (
        "source deleted in k3s-edge (Service k3s-edge/default/nginx)",
    )
    assert by_key["www.example.com. A"].reasons == (
        "target removed 2.2.2.2",
        "2.2.2.2: source deleted in k3s-edge",
    )


def test_drift_is_marked_when_the_sources_did_not_change() -> None:
    desired = [ep("www.example.com", "1.1.1.1"), ep("lost.example.com", "2.2.2.2")]
    current = owned(rec("www.example.com.", "9.9.9.9"))  # changed by hand; lost.example.com deleted by hand
    p = plan(desired, current, previous=desired)
    assert all(g.drift for g in p.groups)
    assert {str(g.key): g.reasons[0] for g in p.groups} == {
        "www.example.com. A": "drift: target changed 9.9.9.9 → 1.1.1.1 (changed outside the portal)",
        "lost.example.com. A": "drift: missing from the zone (deleted outside the portal); restoring "
        "Service rke2-dc1/default/nginx",
    }
    assert not any(g.drift for g in plan(desired, current).groups)  # without the previous state: no claim


def test_nothing_to_do_when_the_zone_matches() -> None:
    current = owned(rec("www.example.com.", "1.2.3.4"))
    assert plan([ep("www.example.com", "1.2.3.4")], current).is_empty


# --- diffing like ExternalDNS: no ping-pong -----------------------------------------------------------------


def test_ttl_only_when_configured() -> None:
    current = owned(rec("www.example.com.", "1.2.3.4", ttl=60))
    assert plan([ep("www.example.com", "1.2.3.4")], current).is_empty  # unset TTL leaves 60 alone
    p = plan([ep("www.example.com", "1.2.3.4", ttl=120)], current)
    assert p.groups[0].reasons[0] == "TTL changed 60 → 120"


def test_targets_compare_as_case_insensitive_sets_and_ips_by_value() -> None:
    current = [
        *owned(rec("c.example.com.", "LB.Example.NET.", rtype="CNAME")),
        *owned(rec("v6.example.com.", ["2001:0db8:0::1", "2001:db8::2"], rtype="AAAA")),
        *owned(rec("m.example.com.", ["2.2.2.2", "1.1.1.1"])),
    ]
    desired = [
        ep("c.example.com", "lb.example.net", rtype="CNAME"),
        ep("v6.example.com", ["2001:db8::2", "2001:DB8::1"], rtype="AAAA"),
        ep("m.example.com", ["1.1.1.1", "2.2.2.2"]),
    ]
    assert plan(desired, current).is_empty


def test_routing_and_health_check_changes_are_updates() -> None:
    current = owned(rec("w.example.com.", "1.1.1.1", sid="a", routing=Routing(weight=10)))
    p = plan(
        [ep("w.example.com", "1.1.1.1", sid="a", props={"aws/weight": "20", "aws/health-check-id": "hc1"})],
        current,
    )
    [g] = p.groups
    assert g.reasons[:2] == ("routing changed weight 10 → weight 20", "health check changed (none) → hc1")
    # the TXT carries the record's routing, so it changes with it, in the same group
    assert actions(p) == [("UPSERT", "w.example.com.", "A"), ("UPSERT", "_dnsportal-a.w.example.com.", "TXT")]
    assert g.changes[1].record.routing == Routing(weight=20)


def test_routing_policy_change_is_delete_and_create() -> None:
    current = owned(rec("w.example.com.", "1.1.1.1", sid="a", routing=Routing(weight=10)))
    p = plan([ep("w.example.com", "1.1.1.1", sid="a", props={"aws/region": "eu-west-1"})], current)
    [g] = p.groups
    assert g.replace
    assert actions(p) == [
        ("DELETE", "w.example.com.", "A"),
        ("DELETE", "_dnsportal-a.w.example.com.", "TXT"),
        ("CREATE", "w.example.com.", "A"),
        ("CREATE", "_dnsportal-a.w.example.com.", "TXT"),
    ]
    assert "DELETE + CREATE" in g.reasons[-1]
    converges(p, [ep("w.example.com", "1.1.1.1", sid="a", props={"aws/region": "eu-west-1"})], current)


def test_set_identifier_change_is_a_delete_and_a_create() -> None:
    current = owned(rec("w.example.com.", "1.1.1.1", sid="old", routing=Routing(weight=10)))
    desired = [ep("w.example.com", "1.1.1.1", sid="new", props={"aws/weight": "10"})]
    p = plan(desired, current)
    assert kinds(p) == [(DELETE, "w.example.com. A [old]"), (CREATE, "w.example.com. A [new]")]
    converges(p, desired, current)


def test_a_to_cname_deletes_before_it_creates() -> None:
    current = owned(rec("w.example.com.", "1.1.1.1"))
    desired = [ep("w.example.com", "lb.example.net", rtype="CNAME")]
    p = plan(desired, current)
    assert [c.action for c in p.changes()] == ["DELETE", "DELETE", "CREATE", "CREATE"]
    converges(p, desired, current)


# --- ownership --------------------------------------------------------------------------------------------


def test_records_of_other_owners_and_unowned_records_are_never_touched() -> None:
    current = [
        *owned(rec("theirs.example.com.", "1.1.1.1"), owner="extdns-eks"),
        rec("manual.example.com.", "2.2.2.2"),
    ]
    p = plan([ep("theirs.example.com", "9.9.9.9"), ep("manual.example.com", "9.9.9.9")], current)
    assert p.is_empty
    assert [(c.kind, c.name) for c in p.conflicts] == [
        ("not-owned", "manual.example.com."),
        ("not-owned", "theirs.example.com."),
    ]
    assert "owned by 'extdns-eks'" in p.conflicts[1].message
    assert "not owned by anyone" in p.conflicts[0].message
    assert plan([], current).is_empty  # and never deleted


def test_a_new_type_beside_a_foreign_record_is_a_conflict() -> None:
    # ExternalDNS creates in a (name, set id) row only when every record there is its own
    current = owned(rec("w.example.com.", "::1", rtype="AAAA"), owner="other")
    p = plan([ep("w.example.com", "1.1.1.1")], current)
    assert p.is_empty and p.conflicts[0].kind == "not-owned"


def test_ownership_txt_slot_taken_by_foreign_data_is_a_conflict() -> None:
    current = [rec("_dnsportal-a.w.example.com.", '"some other text"', rtype="TXT")]
    p = plan([ep("w.example.com", "1.1.1.1")], current)
    assert p.is_empty
    assert "is not an ownership record" in p.conflicts[0].message


def test_orphaned_txt_of_ours_is_reused_not_created_twice() -> None:
    txt = ownership_record(
        rec("w.example.com.", "1.1.1.1"), ME, {"resource": "service/default/old"}, DEFAULT_TXT_NAMING
    )
    p = plan([ep("w.example.com", "1.1.1.1")], [txt])
    assert actions(p) == [("CREATE", "w.example.com.", "A"), ("UPSERT", "_dnsportal-a.w.example.com.", "TXT")]
    converges(p, [ep("w.example.com", "1.1.1.1")], [txt])


def test_legacy_txt_ownership_is_migrated_to_the_current_format() -> None:
    legacy = RecordSet(
        "w.example.com.", "TXT", ttl=300, values=(f'"heritage=external-dns,external-dns/owner={ME}"',)
    )
    current = [rec("w.example.com.", "1.1.1.1"), legacy]
    p = compute_plan([ep("w.example.com", "1.1.1.1")], [SOA, *current], cfg(naming=EXTERNAL_DNS_TXT_NAMING))
    [g] = p.groups
    assert g.kind == OWNERSHIP
    assert "current TXT format (was legacy TXT w.example.com.)" in g.reasons[0]
    assert actions(p) == [("CREATE", "a-w.example.com.", "TXT")]
    assert p.approval_reasons == ()


def test_changing_the_zone_naming_keeps_ownership_through_also_read() -> None:
    old = TxtNaming(prefix="txt.")
    current = owned(rec("w.example.com.", "1.1.1.1"), naming=old)
    c = cfg(also_read=(old,))
    p = compute_plan([ep("w.example.com", "1.1.1.1")], current, c)
    assert [g.kind for g in p.groups] == [OWNERSHIP]
    assert "this zone's TXT naming (was txt.a-w.example.com.)" in p.groups[0].reasons[0]
    # without also_read the record would look unowned and be left alone
    assert compute_plan([ep("w.example.com", "1.1.1.1")], current, cfg()).conflicts[0].kind == "not-owned"


def test_external_dns_typed_txt_in_a_shared_zone() -> None:
    # an ExternalDNS instance (owner "eks") and the portal share a zone with ExternalDNS's default naming
    theirs = owned(rec("a.example.com.", "1.1.1.1"), owner="eks", naming=EXTERNAL_DNS_TXT_NAMING)
    mine = owned(rec("b.example.com.", "2.2.2.2"), naming=EXTERNAL_DNS_TXT_NAMING)
    assert [t.name for t in (theirs[1], mine[1])] == ["a-a.example.com.", "a-b.example.com."]
    p = compute_plan(
        [ep("b.example.com", "3.3.3.3")], [SOA, *theirs, *mine], cfg(naming=EXTERNAL_DNS_TXT_NAMING)
    )
    assert kinds(p) == [(UPDATE, "b.example.com. A")]
    assert record_owners([SOA, *theirs, *mine], cfg(naming=EXTERNAL_DNS_TXT_NAMING)) == {
        RecordKey("a.example.com.", "A", ""): "eks",
        RecordKey("b.example.com.", "A", ""): ME,
    }


def test_apex_with_external_dns_default_naming_is_an_ownership_conflict() -> None:
    p = compute_plan([ep("example.com", "1.1.1.1")], [SOA], cfg(naming=EXTERNAL_DNS_TXT_NAMING))
    assert p.is_empty
    assert p.conflicts[0].kind == "ownership"
    assert "a-example.com., outside the zone" in p.conflicts[0].message
    p = compute_plan([ep("example.com", "1.1.1.1")], [SOA], cfg())
    assert actions(p) == [("CREATE", "example.com.", "A"), ("CREATE", "_dnsportal-a.example.com.", "TXT")]


# --- adopt ------------------------------------------------------------------------------------------------


def test_adopt_takes_over_only_when_asked_and_needs_approval() -> None:
    theirs = owned(rec("w.example.com.", "1.1.1.1"), owner="extdns-eks", naming=DEFAULT_TXT_NAMING)
    manual = [rec("m.example.com.", "2.2.2.2")]
    desired = [ep("w.example.com", "1.1.1.1"), ep("m.example.com", "3.3.3.3")]
    assert plan(desired, [*theirs, *manual]).is_empty
    p = plan(desired, [*theirs, *manual], adopt=[RecordKey("w.example.com.", "A", ""), "m.example.com"])
    assert kinds(p) == [(ADOPT, "m.example.com. A"), (ADOPT, "w.example.com. A")]
    assert all(g.needs_approval for g in p.groups)
    assert p.needs_approval and "takes over 2 record(s)" in p.approval_reasons[-1]
    by_key = {str(g.key): g for g in p.groups}
    assert (
        by_key["w.example.com. A"].reasons[0]
        == "adopt: take over from owner 'extdns-eks' for Service rke2-dc1/default/nginx"
    )
    assert [c.action for c in by_key["w.example.com. A"].changes] == [
        "UPSERT"
    ]  # only the TXT: record is right
    assert [c.action for c in by_key["m.example.com. A"].changes] == ["UPSERT", "CREATE"]
    after = apply_plan([SOA, NS, *theirs, *manual], p)
    assert compute_plan(desired, after, cfg()).is_empty  # ours now, without adopting again


def _extdns_owner(zone: Iterable[RecordSet], rs: RecordSet, naming: TxtNaming) -> str | None:
    """Who ExternalDNS, reading only `naming`, thinks owns `rs` (its registry's lookup order)."""
    got = read_registry([t for t in zone if t.type == "TXT"], naming).owner_of(rs)
    return got.owner if got is not None else None


def test_adopt_deletes_the_previous_owners_claim_under_its_own_txt_naming() -> None:
    # ExternalDNS with its defaults (`a-w`, and the legacy untyped `w` of older releases) beside a zone with
    # the portal's prefix: writing only `_dnsportal-a.w` would leave ExternalDNS the owner in its own eyes.
    w = rec("w.example.com.", "1.1.1.1")
    typed = ownership_record(w, "extdns", {"resource": "service/default/w"}, EXTERNAL_DNS_TXT_NAMING)
    legacy = RecordSet("w.example.com.", "TXT", "", 300, typed.values)
    desired = [ep("w.example.com", "2.2.2.2")]
    zone = [w, typed, legacy]
    kw = {"also_read": (EXTERNAL_DNS_TXT_NAMING,)}
    p = plan(desired, zone, adopt=["w.example.com"], **kw)
    assert kinds(p) == [(ADOPT, "w.example.com. A")]
    assert sorted(actions(p)) == [
        ("CREATE", "_dnsportal-a.w.example.com.", "TXT"),
        ("DELETE", "a-w.example.com.", "TXT"),
        ("DELETE", "w.example.com.", "TXT"),
        ("UPSERT", "w.example.com.", "A"),
    ]
    after = apply_plan([SOA, NS, *zone], p)
    adopted = next(r for r in after if r.key == w.key)
    assert _extdns_owner(after, adopted, EXTERNAL_DNS_TXT_NAMING) is None  # ExternalDNS: not its own now
    assert _extdns_owner(after, adopted, DEFAULT_TXT_NAMING) == ME
    converges(p, desired, zone, **kw)


def test_adopt_with_the_same_txt_naming_rewrites_the_one_claim_in_place() -> None:
    w = rec("w.example.com.", "1.1.1.1")
    zone = owned(w, owner="extdns", naming=EXTERNAL_DNS_TXT_NAMING)
    p = plan([ep("w.example.com", "2.2.2.2")], zone, adopt=["w.example.com"], naming=EXTERNAL_DNS_TXT_NAMING)
    assert sorted(actions(p)) == [("UPSERT", "a-w.example.com.", "TXT"), ("UPSERT", "w.example.com.", "A")]
    after = apply_plan([SOA, NS, *zone], p)
    assert _extdns_owner(after, next(r for r in after if r.key == w.key), EXTERNAL_DNS_TXT_NAMING) == ME


def test_adopt_leaves_a_legacy_claim_that_also_owns_another_type_at_the_name() -> None:
    w = rec("w.example.com.", "1.1.1.1")
    mx = rec("w.example.com.", "10 mail.example.com.", rtype="MX")
    typed = ownership_record(w, "extdns", {"resource": "service/default/w"}, EXTERNAL_DNS_TXT_NAMING)
    legacy = RecordSet("w.example.com.", "TXT", "", 300, typed.values)
    p = plan(
        [ep("w.example.com", "2.2.2.2")],
        [w, mx, typed, legacy],
        adopt=["w.example.com"],
        also_read=(EXTERNAL_DNS_TXT_NAMING,),
    )
    assert ("DELETE", "a-w.example.com.", "TXT") in actions(p)
    assert ("DELETE", "w.example.com.", "TXT") not in actions(p)  # ExternalDNS's MX keeps its owner


def test_adopting_an_alias_a_record_deletes_its_cname_typed_claim() -> None:
    # ExternalDNS before v0.22 owns an alias A record through a `cname-` TXT and never reads the `a-` one.
    target = "lb-1.eu-west-1.elb.amazonaws.com"
    alias = AliasTarget(target, "Z32O12XQLNTSW2", True)
    a, aaaa = (RecordSet("w.example.com.", t, alias=alias) for t in ("A", "AAAA"))
    claims = [
        ownership_record(RecordSet(a.name, t, values=(target,)), "extdns", {}, EXTERNAL_DNS_TXT_NAMING)
        for t in ("CNAME", "AAAA")
    ]
    assert [c.name for c in claims] == ["cname-w.example.com.", "aaaa-w.example.com."]
    desired = [ep("w.example.com", target, rtype="CNAME", props={"alias": "true"})]
    zone = [a, aaaa, *claims]
    p = plan(desired, zone, adopt=["w.example.com"], naming=EXTERNAL_DNS_TXT_NAMING)
    assert sorted(actions(p)) == [
        ("CREATE", "a-w.example.com.", "TXT"),
        ("DELETE", "cname-w.example.com.", "TXT"),
        ("UPSERT", "aaaa-w.example.com.", "TXT"),
    ]
    after = apply_plan([SOA, NS, *zone], p)
    assert _extdns_owner(after, a, EXTERNAL_DNS_TXT_NAMING) == ME  # read through `a-w` once `cname-w` is gone


def test_adopt_of_something_nobody_publishes_is_a_note() -> None:
    p = plan([], [rec("m.example.com.", "2.2.2.2")], adopt=["m.example.com"])
    assert p.is_empty and p.notes == (
        "adopt m.example.com.: no cluster publishes this name, nothing to take over",
    )


# --- policies ---------------------------------------------------------------------------------------------


def _mixed_zone() -> tuple[list[Endpoint], list[RecordSet]]:
    current = [*owned(rec("upd.example.com.", "1.1.1.1")), *owned(rec("del.example.com.", "2.2.2.2"))]
    desired = [ep("upd.example.com", "9.9.9.9"), ep("new.example.com", "3.3.3.3")]
    return desired, current


@pytest.mark.parametrize(
    ("policy", "kept", "skipped"),
    [
        ("sync", [DELETE, UPDATE, CREATE], []),
        ("upsert-only", [UPDATE, CREATE], [DELETE]),
        ("create-only", [CREATE], [DELETE, UPDATE]),
    ],
)
def test_zone_policies(policy: str, kept: list[str], skipped: list[str]) -> None:
    desired, current = _mixed_zone()
    p = plan(desired, current, policy=policy)
    assert [g.kind for g in p.groups] == kept
    assert sorted(s.kind for s in p.skipped) == sorted(skipped)
    assert all(policy in s.reason for s in p.skipped)


def test_unknown_policy_is_refused() -> None:
    with pytest.raises(ValueError, match="policy"):
        cfg(policy="delete-all")


def test_policy_that_keeps_a_record_blocks_a_cname_beside_it() -> None:
    current = owned(rec("w.example.com.", "1.1.1.1"))
    p = plan([ep("w.example.com", "lb.example.net", rtype="CNAME")], current, policy="upsert-only")
    assert p.is_empty
    assert [s.kind for s in p.skipped] == [DELETE]
    assert "a CNAME cannot share its name with other records (A)" in p.conflicts[0].message


# --- validation against what is in the zone ---------------------------------------------------------------


def test_cname_beside_a_foreign_record_is_invalid() -> None:
    p = plan(
        [ep("w.example.com", "lb.example.net", rtype="CNAME")],
        [rec("w.example.com.", '"v=spf1 -all"', rtype="TXT")],
    )
    assert p.is_empty
    assert p.conflicts[0].kind == "invalid"
    assert any("existing w.example.com. TXT" in o for o in p.conflicts[0].objects)


def test_set_identifier_beside_foreign_records_of_another_policy_is_invalid() -> None:
    theirs = owned(
        rec("w.example.com.", "1.1.1.1", sid="eks", routing=Routing(weight=50)), owner="extdns-eks"
    )
    p = plan([ep("w.example.com", "2.2.2.2", sid="portal", props={"aws/region": "eu-west-1"})], theirs)
    assert p.is_empty
    assert "mixed routing policies (eks=weighted, portal=latency)" in p.conflicts[0].message
    ok = plan([ep("w.example.com", "2.2.2.2", sid="portal", props={"aws/weight": "50"})], theirs)
    assert kinds(ok) == [(CREATE, "w.example.com. A [portal]")]  # weighted beside weighted: shared name


def test_invalid_field_names_record_and_field() -> None:
    p = plan([ep("w.example.com", "1.1.1.1", sid="a", props={"aws/weight": "300"})], [])
    assert p.is_empty
    assert p.conflicts[0].message == "w.example.com. A [a]: weight 300 is outside 0..255"


# --- safety -----------------------------------------------------------------------------------------------


def test_private_address_in_a_public_zone_needs_approval() -> None:
    p = plan([ep("w.example.com", ["10.0.0.5", "1.1.1.1"], cluster="rke2-dc1")], [])
    assert p.needs_approval
    assert p.approval_reasons == (
        "publishes private address 10.0.0.5 at w.example.com. A in public zone example.com. "
        "(from Service rke2-dc1/default/nginx)",
    )
    assert p.groups[0].needs_approval
    assert not plan([ep("w.example.com", "10.0.0.5")], [], public=False).needs_approval


def test_private_address_already_published_is_not_flagged_again() -> None:
    current = owned(rec("w.example.com.", ["10.0.0.5", "1.1.1.1"]))
    p = plan([ep("w.example.com", ["10.0.0.5", "2.2.2.2"])], current)
    assert [g.kind for g in p.groups] == [UPDATE] and not p.needs_approval


def _owned_zone(n: int) -> list[RecordSet]:
    return [r for i in range(n) for r in owned(rec(f"h{i}.example.com.", f"1.1.1.{i}"))]


def test_changing_more_than_30_percent_of_owned_records_needs_approval() -> None:
    current = _owned_zone(10)
    keep = [ep(f"h{i}.example.com", f"1.1.1.{i}") for i in range(10)]
    three = plan(keep[3:], current)  # 3 deletes of 10: 30 %, not more
    assert len(three.groups) == 3 and not three.needs_approval
    four = plan(keep[4:], current)
    assert four.needs_approval
    assert four.approval_reasons == (
        "updates or deletes 4 of the 10 records owned in this zone (40 %, above the 30 % threshold)",
    )
    assert plan(keep[4:], current, max_change_share=0.5).approval_reasons == ()


def test_small_zones_are_exempt_from_the_share_rule() -> None:
    current = _owned_zone(9)
    assert not plan([], current).needs_approval  # deleting all 9: below the 10-record floor


# --- determinism and apply order ----------------------------------------------------------------------------


def test_plan_is_the_same_whatever_the_input_order() -> None:
    desired = [
        ep("a.example.com", "1.1.1.1", cluster="c1"),
        ep("a.example.com", "2.2.2.2", cluster="c2", resource="service/x/y"),
        ep("b.example.com", "3.3.3.3", sid="s1", props={"aws/weight": "1"}),
        ep("b.example.com", "4.4.4.4", sid="s2", props={"aws/weight": "2"}),
        ep("c.example.com", "lb.net", rtype="CNAME"),
        ep("c.example.com", "5.5.5.5"),
    ]
    current = [*owned(rec("d.example.com.", "6.6.6.6")), *owned(rec("a.example.com.", "7.7.7.7"))]
    first = plan(desired, current)
    second = plan(desired[::-1], current[::-1])
    assert first == second
    assert first.to_dict() == second.to_dict()
    assert first.fingerprint() == second.fingerprint()


def test_apply_order_is_deletes_then_updates_then_creates() -> None:
    current = [*owned(rec("u.example.com.", "1.1.1.1")), *owned(rec("d.example.com.", "2.2.2.2"))]
    p = plan([ep("u.example.com", "9.9.9.9"), ep("c.example.com", "3.3.3.3")], current)
    assert [g.kind for g in p.groups] == [DELETE, UPDATE, CREATE]
    assert p.counts() == {
        "create": 1,
        "update": 1,
        "delete": 1,
        "adopt": 0,
        "ownership": 0,
        "conflicts": 0,
        "skipped": 0,
    }


def test_names_of_a_hosted_zone_below_belong_to_it() -> None:
    # sub.example.com. is its own hosted zone: its names are planned there, not in the parent
    current = [RecordSet("sub.example.com.", "NS", ttl=300, values=("ns-9.awsdns.com.",))]
    current += owned(rec("old.sub.example.com.", "1.1.1.1"))  # a leftover in the parent: not ours to judge
    desired = [ep("x.sub.example.com", "2.2.2.2"), ep("y.example.com", "3.3.3.3")]
    p = plan(desired, current, subzones=("sub.example.com", "other.org."))
    assert kinds(p) == [(CREATE, "y.example.com. A")]
    assert p.notes == ("1 endpoint(s) outside zone example.com. (or in a zone below it) left out",)
    assert cfg(subzones=("Sub.Example.com", "other.org.")).subzones == ("sub.example.com.",)


def test_duplicate_current_record_sets_are_refused() -> None:
    with pytest.raises(ValueError, match="twice"):
        plan([], [rec("w.example.com.", "1.1.1.1"), rec("w.example.com.", "1.1.1.1")])


def test_summaries_for_the_zone_page() -> None:
    zone = [
        SOA,
        *owned(rec("a.example.com.", "1.1.1.1")),
        *owned(rec("b.example.com.", "1.1.1.2"), owner="eks"),
        rec("c.example.com.", "1.1.1.3"),
    ]
    assert summarize_ownership(zone, cfg()) == {
        "owned": 1,
        "other_owner": 1,
        "unowned": 1,
        "ownership_records": 2,
    }


# --- purity -----------------------------------------------------------------------------------------------


def test_pure_modules_import_neither_django_nor_boto3_nor_kubernetes() -> None:
    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in {'django', 'boto3', 'botocore', 'kubernetes'}:\n"
        "            raise ImportError('blocked: ' + name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "import records.plan, records.ownership, records.policy, records.recordset, records.aggregate\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in {'django', 'boto3', 'botocore', 'kubernetes'}]\n"
        "assert not bad, bad\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr


def test_the_collector_is_paused_inside_and_restored_after():
    import gc

    from records.plan import collector_paused

    assert gc.isenabled()
    with collector_paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    # A caller that had paused it already keeps it paused.
    gc.disable()
    try:
        with collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_a_held_name_stays_as_it_is_and_the_change_set_says_why():
    plan = compute_plan(
        [ep("app.example.com", "192.0.2.1"), ep("www.example.com", "192.0.2.2")], [SOA, NS], cfg()
    )
    why = "policy proposal #7 is being written to the clusters"
    held = hold_names(plan, {"app.example.com.": why})
    assert [g.key.name for g in held.groups] == ["www.example.com."]
    assert [(s.key.name, s.kind, s.reason) for s in held.skipped] == [("app.example.com.", CREATE, why)]
    assert hold_names(plan, {}) is plan and hold_names(plan, {"other.example.com.": why}) is plan
