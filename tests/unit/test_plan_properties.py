"""Properties of the plan over random zones and random desired states.

Zones hold records owned by the portal, by other owner ids and by nobody, with ownership TXTs in every format
ExternalDNS has written (typed, legacy untyped, pre-v0.22 `cname-` for alias A) and foreign TXT data, under
several TXT namings. For every such zone and desired state:
- the plan never updates or deletes a record (or ownership TXT) that is not ours, and creates only where
  nothing is (the Route53-faithful in-memory applier refuses a CREATE of an existing record set and a DELETE
  that does not match exactly);
- applying the plan and planning again gives an empty plan;
- the plan does not depend on the order of the inputs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from records.endpoint import Endpoint
from records.ownership import (
    DEFAULT_TXT_NAMING,
    EXTERNAL_DNS_TXT_NAMING,
    RECORD_TYPE_TEMPLATE,
    TxtNaming,
    ownership_record,
    parse_ownership_value,
    read_registry,
)
from records.plan import ADOPT, POLICIES, Plan, ZoneConfig, apply_plan, compute_plan
from records.policy import validate_name, validate_record_set
from records.recordset import AliasTarget, RecordSet, Routing, in_zone

ZONE = "example.com."
ME = "portal"
NAMES = [
    "example.com.",
    "a.example.com.",
    "b.example.com.",
    "a-b.example.com.",
    "*.example.com.",
    "x.a.example.com.",
]
OWNERS = ["extdns-eks", "extdns-dc1"]
NAMINGS = [
    DEFAULT_TXT_NAMING,
    EXTERNAL_DNS_TXT_NAMING,
    TxtNaming(prefix="txt."),
    TxtNaming(suffix="-%{record_type}"),
    TxtNaming(prefix="txt-", wildcard_replacement="wild"),
]
VALUES = {
    "A": ["1.1.1.1", "2.2.2.2", "10.0.0.1"],
    "AAAA": ["2001:db8::1", "2001:DB8::2"],
    "CNAME": ["lb1.example.net", "LB2.example.net."],
}
ROUTINGS = [
    ("", Routing()),
    ("s1", Routing(weight=10)),
    ("s2", Routing(weight=20)),
    ("s1", Routing(region="eu-west-1")),
]
SOA = RecordSet(ZONE, "SOA", ttl=900, values=("ns-1.awsdns.com. hostmaster. 1 7200 900 1209600 86400",))
NS = RecordSet(ZONE, "NS", ttl=172800, values=("ns-1.awsdns.com.",))
OWNERSHIP_KINDS = ["ours", "ours", "ours-legacy", "other", "other-legacy", "none", "foreign-txt"]


def _legacy_txt_name(naming: TxtNaming, name: str) -> str:
    # what ExternalDNS <= v0.17 wrote: the affix without a type marker (and without the template)
    prefix = naming.prefix.replace(RECORD_TYPE_TEMPLATE, "")
    suffix = naming.suffix.replace(RECORD_TYPE_TEMPLATE, "")
    if suffix:
        first, _, rest = name.partition(".")
        return f"{first}{suffix}.{rest}"
    return prefix + name


def _owner_value(owner: str) -> str:
    return f'"heritage=external-dns,external-dns/owner={owner},external-dns/resource=service/ns/old"'


@st.composite
def zones(draw: st.DrawFn, naming: TxtNaming) -> list[RecordSet]:
    records: dict[tuple[str, str, str], RecordSet] = {}

    def add(rs: RecordSet) -> bool:
        # only zones Route53 could hold: each record set valid, each name consistent
        if rs.key in records or not in_zone(rs.name, ZONE) or validate_record_set(rs, ZONE):
            return False
        if validate_name([*(r for r in records.values() if r.name == rs.name), rs], ZONE):
            return False
        records[rs.key] = rs
        return True

    add(SOA)
    add(NS)
    if draw(st.booleans()):
        add(RecordSet("a.example.com.", "MX", ttl=300, values=("10 mail.example.net.",)))  # unmanaged type
    for _ in range(draw(st.integers(0, 9))):
        name = draw(st.sampled_from(NAMES))
        if draw(st.integers(0, 9)) == 0:
            rs = RecordSet(name, "A", alias=AliasTarget("lb1.elb.amazonaws.com.", "Z1", True))
        else:
            rtype = draw(st.sampled_from(sorted(VALUES)))
            sid, routing = draw(st.sampled_from(ROUTINGS))
            vals = draw(
                st.lists(
                    st.sampled_from(VALUES[rtype]),
                    min_size=1,
                    max_size=1 if rtype == "CNAME" else 2,
                    unique=True,
                )
            )
            rs = RecordSet(name, rtype, sid, draw(st.sampled_from([60, 300])), tuple(vals), routing)
        if not add(rs):
            continue
        kind = draw(st.sampled_from(OWNERSHIP_KINDS))
        owner = ME if kind.startswith("ours") else draw(st.sampled_from(OWNERS))
        if kind in ("ours", "other"):
            txt_type = (
                "CNAME" if rs.alias is not None and draw(st.booleans()) else rs.type
            )  # pre-v0.22 alias TXT
            txt = ownership_record(rs, owner, {"resource": "service/ns/old"}, naming)
            txt = RecordSet(
                naming.txt_name(rs.name, txt_type), "TXT", txt.set_identifier, 300, txt.values, txt.routing
            )
            add(txt)
        elif kind in ("ours-legacy", "other-legacy"):
            add(
                RecordSet(
                    _legacy_txt_name(naming, rs.name),
                    "TXT",
                    rs.set_identifier,
                    300,
                    (_owner_value(owner),),
                    rs.routing,
                )
            )
        elif kind == "foreign-txt":
            add(
                RecordSet(
                    naming.txt_name(rs.name, rs.type),
                    "TXT",
                    rs.set_identifier,
                    300,
                    ('"v=spf1 -all"',),
                    rs.routing,
                )
            )
    return list(records.values())


@st.composite
def endpoints(draw: st.DrawFn) -> Endpoint:
    name = draw(st.sampled_from(NAMES)).rstrip(".")
    if draw(st.integers(0, 11)) == 0:
        return Endpoint.make(
            name,
            "A",
            ["lb1.elb.amazonaws.com"],
            provider_specific={"alias": "true"},
            labels={"resource": "ingress/ns/lb"},
            cluster="eks",
        )
    rtype = draw(st.sampled_from(sorted(VALUES)))
    sid, props = draw(
        st.sampled_from(
            [
                ("", {}),
                ("", {}),
                ("s1", {"aws/weight": "10"}),
                ("s2", {"aws/weight": "20"}),
                ("s1", {"aws/region": "eu-west-1"}),
            ]
        )
    )
    targets = draw(st.lists(st.sampled_from(VALUES[rtype]), min_size=1, max_size=2, unique=True))
    return Endpoint.make(
        name,
        rtype,
        targets,
        ttl=draw(st.sampled_from([0, 0, 60, 300])),
        set_identifier=sid,
        provider_specific=props,
        labels={"resource": draw(st.sampled_from(["service/ns/a", "ingress/ns/b"]))},
        cluster=draw(st.sampled_from(["rke2-dc1", "k3s-edge"])),
    )


@dataclass(frozen=True)
class Case:
    config: ZoneConfig
    zone: list[RecordSet]
    desired: list[Endpoint]


@st.composite
def cases(draw: st.DrawFn) -> Case:
    naming = draw(st.sampled_from(NAMINGS))
    also = tuple(draw(st.lists(st.sampled_from([n for n in NAMINGS if n != naming]), max_size=1)))
    config = ZoneConfig(
        zone=ZONE, owner_id=ME, naming=naming, policy=draw(st.sampled_from(POLICIES)), also_read=also
    )
    return Case(config, draw(zones(naming)), draw(st.lists(endpoints(), max_size=8)))


def _ours(zone: list[RecordSet], config: ZoneConfig) -> set[tuple[str, str, str]]:
    """The oracle: ExternalDNS's registry read of the zone (not the plan's own lookup path)."""
    reg = read_registry(zone, config.naming, also_read=config.also_read)
    out: set[tuple[str, str, str]] = set()
    for rs in zone:
        if rs.type == "TXT":
            labels = parse_ownership_value(rs.values[0]) if rs.values else None
            if labels is not None and labels.get("owner") == ME:
                out.add(rs.key)
        elif rs.type in config.managed_types and in_zone(rs.name, ZONE):
            o = reg.owner_of(rs)
            if o is not None and o.owner == ME:
                out.add(rs.key)
    return out


# A few hundred examples keep the unit tier fast; PLAN_PROPERTY_EXAMPLES=5000 runs a long search.
EXAMPLES = int(os.environ.get("PLAN_PROPERTY_EXAMPLES", "150"))
PROPERTY = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(case=cases())
def test_the_plan_never_touches_what_is_not_ours(case: Case) -> None:
    p = compute_plan(case.desired, case.zone, case.config)
    ours = _ours(case.zone, case.config)
    existing = {rs.key for rs in case.zone}
    for g in p.groups:
        assert g.kind != ADOPT
        for c in g.changes:
            if c.action == "CREATE" and c.record.key not in {
                x.record.key for x in g.changes if x.action == "DELETE"
            }:
                assert c.record.key not in existing, (g.key, c)
            elif c.action in ("UPSERT", "DELETE"):
                assert c.record.key in ours, (g.kind, g.key, c.action, c.record.key)
    apply_plan(case.zone, p)  # raises on a CREATE of an existing record set or an inexact DELETE


@PROPERTY
@given(case=cases())
def test_applying_the_plan_and_planning_again_gives_an_empty_plan(case: Case) -> None:
    p = compute_plan(case.desired, case.zone, case.config)
    after = apply_plan(case.zone, p)
    again = compute_plan(case.desired, after, case.config)
    assert again.is_empty, [(g.kind, str(g.key), g.reasons) for g in again.groups]
    # and what the portal wrote is a zone Route53 accepts
    names = {c.record.name for g in p.groups for c in g.changes}
    for name in names:
        at = [rs for rs in after if rs.name == name]
        before = {pr.message for pr in validate_name([rs for rs in case.zone if rs.name == name], ZONE)}
        assert {pr.message for pr in validate_name(at, ZONE)} <= before


@PROPERTY
@given(case=cases(), data=st.data())
def test_the_plan_does_not_depend_on_the_order_of_the_inputs(case: Case, data: st.DataObject) -> None:
    first = compute_plan(case.desired, case.zone, case.config)
    desired = data.draw(st.permutations(case.desired))
    zone = data.draw(st.permutations(case.zone))
    second = compute_plan(desired, zone, case.config)
    assert second == first
    assert second.to_dict() == first.to_dict()


@settings(max_examples=max(EXAMPLES // 3, 10), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=cases())
def test_adopting_everything_then_planning_again_is_empty(case: Case) -> None:
    names = sorted({e.dns_name for e in case.desired})
    p: Plan = compute_plan(case.desired, case.zone, case.config, adopt=names)
    assert all(g.needs_approval for g in p.groups if g.kind == ADOPT)
    after = apply_plan(case.zone, p)
    assert compute_plan(case.desired, after, case.config).is_empty
