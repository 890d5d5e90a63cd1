"""The Policies page's row, from endpoints and stored record sets to cells: pure data in, pure data out."""

from __future__ import annotations

from records.endpoint import Endpoint
from records.policy_cells import StoredSet, policy_row, routing_label
from records.recordset import AliasTarget, RecordSet, Routing

NAME = "shop.example.com"
CLUSTERS = ("eks-eu1", "k3s-edge", "rke2-dc1")


def ep(cluster: str, *targets: str, rtype: str = "A", sid: str = "", **props: str) -> Endpoint:
    props = {f"aws/{k.replace('_', '-')}": v for k, v in props.items()}
    return Endpoint.make(NAME, rtype, targets, set_identifier=sid, provider_specific=props, cluster=cluster)


def labels(row) -> dict[str, list[str]]:
    return {c.cluster: [e.label for e in c.entries] for c in row.cells}


def test_each_cluster_gets_a_cell_in_column_order_and_a_cluster_without_the_name_gets_none():
    row = policy_row(NAME, [ep("rke2-dc1", "203.0.113.10"), ep("eks-eu1", "203.0.113.20")], CLUSTERS)
    assert [c.cluster for c in row.cells] == list(CLUSTERS)
    assert labels(row) == {"eks-eu1": ["round robin"], "k3s-edge": [], "rke2-dc1": ["round robin"]}
    assert row.clusters == ("eks-eu1", "rke2-dc1")
    assert not row.cells[1].serves and row.cells[1].title == ""
    assert row.cells[0].title == "A 203.0.113.20"


def test_routing_of_each_policy_is_named_with_its_value():
    row = policy_row(
        NAME,
        [
            ep("eks-eu1", "203.0.113.20", sid="eu1", weight="80"),
            ep("k3s-edge", "203.0.113.30", sid="edge", failover="PRIMARY"),
            ep("rke2-dc1", "203.0.113.10", sid="dc1", region="us-east-1"),
        ],
        CLUSTERS,
    )
    assert labels(row) == {
        "eks-eu1": ["weighted 80"],
        "k3s-edge": ["failover PRIMARY"],
        "rke2-dc1": ["latency us-east-1"],
    }
    assert row.cells[0].title == "A 203.0.113.20 · set id eu1"


def test_geolocation_says_where():
    geo = [
        ep("eks-eu1", "203.0.113.20", sid="eu1", geolocation_country_code="DE"),
        ep("k3s-edge", "203.0.113.30", sid="edge", geolocation_continent_code="EU"),
        ep(
            "rke2-dc1",
            "203.0.113.10",
            sid="dc1",
            geolocation_country_code="US",
            geolocation_subdivision_code="CA",
        ),
    ]
    assert labels(policy_row(NAME, geo, CLUSTERS)) == {
        "eks-eu1": ["geolocation DE"],
        "k3s-edge": ["geolocation EU"],
        "rke2-dc1": ["geolocation US-CA"],
    }


def test_a_weight_without_a_set_identifier_is_round_robin_and_the_hover_says_it_was_ignored():
    # ExternalDNS's AWS provider applies routing properties only beside a set identifier.
    [cell] = policy_row(NAME, [ep("eks-eu1", "203.0.113.20", weight="80")], ["eks-eu1"]).cells
    assert [e.label for e in cell.entries] == ["round robin"]
    assert "aws/weight ignored" in cell.title


def test_an_unreadable_weight_is_invalid_with_the_reason_on_hover():
    [cell] = policy_row(NAME, [ep("eks-eu1", "203.0.113.20", sid="eu1", weight="eighty")], ["eks-eu1"]).cells
    [entry] = cell.entries
    assert entry.label == "invalid" and entry.problem
    assert "`eighty` is not an integer" in entry.title


def test_a_and_aaaa_with_the_same_routing_share_one_entry_and_both_targets_show_on_hover():
    row = policy_row(
        NAME, [ep("eks-eu1", "203.0.113.20"), ep("eks-eu1", "2001:db8::20", rtype="AAAA")], ["eks-eu1"]
    )
    [entry] = row.cells[0].entries
    assert entry.label == "round robin"
    assert entry.title == "A 203.0.113.20; AAAA 2001:db8::20"


def test_one_cluster_asking_for_a_beside_cname_is_a_conflict_in_its_cell():
    row = policy_row(
        NAME, [ep("eks-eu1", "203.0.113.20"), ep("eks-eu1", "lb.example.net", rtype="CNAME")], ["eks-eu1"]
    )
    [entry] = row.cells[0].entries
    assert (entry.label, entry.problem) == ("conflict", True)
    assert "CNAME" in entry.title


def test_endpoints_of_other_names_and_of_clusters_without_a_column_are_left_out():
    other = Endpoint.make("api.example.com", "A", ["203.0.113.99"], cluster="eks-eu1")
    row = policy_row(NAME, [other, ep("gke-us1", "203.0.113.50")], ["eks-eu1"])
    assert labels(row) == {"eks-eu1": []}


def test_the_zone_side_says_type_routing_and_ownership_sorted():
    eu1 = RecordSet(NAME + ".", "A", "eu1", 60, ("203.0.113.20",), Routing(weight=80))
    dc1 = RecordSet(NAME + ".", "A", "dc1", 60, ("203.0.113.10",), Routing(weight=20))
    theirs = RecordSet(NAME + ".", "AAAA", "", 300, ("2001:db8::1",))
    stored = [
        StoredSet("example.com", eu1, "owned", "dnsportal"),
        StoredSet("example.com", dc1, "owned", "dnsportal"),
        StoredSet("example.com", theirs, "other", "team-b"),
    ]
    served = policy_row(NAME, [], CLUSTERS, stored).served
    assert [(s.type, s.label, s.ownership, s.owner_id) for s in served] == [
        ("A", "weighted 20", "owned", "dnsportal"),
        ("A", "weighted 80", "owned", "dnsportal"),
        ("AAAA", "round robin", "other", "team-b"),
    ]
    assert served[0].title == "A 203.0.113.10 · set id dc1 · TTL 60"
    assert served[0].owned and not served[2].owned


def test_routing_label_edge_cases():
    assert routing_label(Routing()) == "round robin"
    assert routing_label(Routing(), alias=True) == "alias"
    assert routing_label(Routing(), set_identifier="x") == "set id, no routing"
    assert routing_label(Routing(country="*")) == "geolocation *"
    assert routing_label(Routing(geoproximity_region="eu-west-1", geoproximity_bias=0)) == (
        "geoproximity eu-west-1"
    )
    assert routing_label(Routing(multi_value_answer=True)) == "multivalue"
    assert routing_label(Routing(weight=10, failover="PRIMARY")) == "weighted 10 + failover PRIMARY"
    alias = RecordSet(NAME + ".", "A", alias=AliasTarget("lb.example.net."))
    served = policy_row(NAME, [], [], [StoredSet("example.com", alias, "unowned")]).served
    assert (served[0].label, served[0].title) == ("alias", "A alias lb.example.net.")
