"""The traffic-policy core: Route53's rules on each field, the policy read from endpoints, and the annotations
each object carries (the user's story: app.example.com on rke2-dc1 and k3s-edge)."""

from __future__ import annotations

import pytest

from records.endpoint import Endpoint
from records.traffic import (
    FAILOVER,
    GEOLOCATION,
    LATENCY,
    ROUND_ROBIN,
    WEIGHTED,
    ClusterShare,
    ObjectState,
    TrafficPolicy,
    annotation_patches,
    endpoints_under_patches,
    leave_out_problem,
    percentages,
    policy_from_endpoints,
    validate,
)

NAME = "app.example.com"
ZONE = "example.com."
ALPHA = "external-dns.alpha.kubernetes.io/"
GA = "external-dns.kubernetes.io/"
HC = "6c2a3c1e-1d1f-4a8e-9c55-0a1b2c3d4e5f"


def policy(kind: str, *shares: ClusterShare, ttl: int = 0) -> TrafficPolicy:
    return TrafficPolicy(hostname=NAME, kind=kind, shares=shares, ttl=ttl)


def check(p: TrafficPolicy, *, hc: bool = True, serving=("k3s-edge", "rke2-dc1"), **kw):
    errors, warnings = validate(p, zone=ZONE, serving=serving, has_health_check=hc, **kw)
    fields: dict[str, str] = {}
    for e in errors:
        fields[e.field] = f"{fields[e.field]} {e.message}" if e.field in fields else e.message
    return fields, warnings


def svc(cluster: str, annotations: dict[str, str], hostnames=(NAME,)) -> ObjectState:
    return ObjectState(
        cluster=cluster,
        kind="Service",
        namespace="default",
        name="nginx-distro-check",
        annotations=annotations,
        resource_version="41",
        hostnames=tuple(hostnames),
    )


RKE2 = svc("rke2-dc1", {f"{ALPHA}hostname": NAME, f"{ALPHA}ttl": "60"})
K3S = svc("k3s-edge", {f"{ALPHA}hostname": NAME})


# --- checking a policy ------------------------------------------------------------------------------------


def test_80_20_is_valid_and_says_so_in_one_line():
    p = policy(WEIGHTED, ClusterShare("rke2-dc1", weight=80), ClusterShare("k3s-edge", weight=20))
    assert check(p) == ({}, [])
    assert p.describe() == "weighted: rke2-dc1 80, k3s-edge 20"
    assert TrafficPolicy.from_dict(p.to_dict()) == p


def test_a_weight_out_of_range_is_an_error_on_its_field():
    errors, _ = check(
        policy(WEIGHTED, ClusterShare("rke2-dc1", weight=300), ClusterShare("k3s-edge", weight=1))
    )
    assert errors == {"rke2-dc1.weight": "A weight is a whole number from 0 to 255."}


def test_every_weight_0_is_flagged_before_saving_and_a_drain_is_only_a_warning():
    errors, _ = check(
        policy(WEIGHTED, ClusterShare("rke2-dc1", weight=0), ClusterShare("k3s-edge", weight=0))
    )
    assert "Every weight is 0" in errors["__all__"]
    errors, warnings = check(
        policy(WEIGHTED, ClusterShare("rke2-dc1", weight=100), ClusterShare("k3s-edge", weight=0))
    )
    assert errors == {} and warnings == ["Only one cluster takes traffic; the others are drained (weight 0)."]


def test_a_failover_primary_without_a_health_check_is_flagged_on_the_health_check():
    p = policy(FAILOVER, ClusterShare("rke2-dc1", role="PRIMARY"), ClusterShare("k3s-edge", role="SECONDARY"))
    errors, _ = check(p, hc=False)
    assert list(errors) == ["health_check"]
    assert "never fails over" in errors["health_check"]
    assert check(p, hc=True) == ({}, [])


def test_failover_needs_one_primary():
    errors, _ = check(
        policy(FAILOVER, ClusterShare("rke2-dc1", role="PRIMARY"), ClusterShare("k3s-edge", role="PRIMARY"))
    )
    assert errors["__all__"] == "Failover needs exactly one primary cluster."


def test_latency_regions_are_checked_with_route53s_rules_on_each_field():
    errors, _ = check(
        policy(
            LATENCY,
            ClusterShare("rke2-dc1", region="eu-central-1"),
            ClusterShare("k3s-edge", region="mars-1"),
        )
    )
    assert list(errors) == ["k3s-edge.region"]
    assert "mars-1" in errors["k3s-edge.region"]
    errors, _ = check(
        policy(
            LATENCY,
            ClusterShare("rke2-dc1", region="eu-west-1"),
            ClusterShare("k3s-edge", region="eu-west-1"),
        )
    )
    assert "region eu-west-1 is used by 2 record sets" in errors["__all__"]


def test_geolocation_wants_one_place_per_cluster_and_warns_without_a_default():
    errors, warnings = check(
        policy(GEOLOCATION, ClusterShare("rke2-dc1", country="DE"), ClusterShare("k3s-edge", continent="NA"))
    )
    assert errors == {}
    assert warnings == [
        "No cluster is the default location: resolvers outside the locations listed get no answer."
    ]
    errors, warnings = check(
        policy(
            GEOLOCATION,
            ClusterShare("rke2-dc1", country="DE", continent="EU"),
            ClusterShare("k3s-edge", country="*"),
        )
    )
    assert errors == {"rke2-dc1.location": "Choose a continent or a country, not both."}
    assert warnings == []
    errors, _ = check(
        policy(GEOLOCATION, ClusterShare("rke2-dc1", country="XX"), ClusterShare("k3s-edge", country="*"))
    )
    assert list(errors) == ["rke2-dc1.location"]


def test_every_serving_cluster_needs_a_part_and_a_bad_ttl_is_refused():
    errors, _ = check(policy(ROUND_ROBIN, ClusterShare("rke2-dc1"), ttl=-5))
    assert errors["__all__"] == "Cluster k3s-edge serves app.example.com: give it a part."
    assert "TTL" in errors["ttl"]


def test_a_cluster_that_cannot_be_left_out_says_why_on_its_field():
    ingress = ObjectState("k3s-edge", "Ingress", "default", "web", {}, hostnames=(NAME,))
    reason = leave_out_problem(NAME, ingress)
    assert "from its spec" in reason and "weight 0" in reason
    assert leave_out_problem(NAME, K3S) is None
    p = policy(ROUND_ROBIN, ClusterShare("rke2-dc1"), ClusterShare("k3s-edge", enabled=False))
    errors, _ = check(p, leave_out_refused={"k3s-edge": reason})
    assert errors == {"k3s-edge.enabled": reason}


def test_percentages_follow_the_weights_and_all_zero_is_an_equal_split():
    assert percentages({"rke2-dc1": 95, "k3s-edge": 5}) == {"rke2-dc1": 95.0, "k3s-edge": 5.0}
    assert percentages({"a": 1, "b": 3}) == {"a": 25.0, "b": 75.0}
    assert percentages({"a": 0, "b": 0}) == {"a": 50.0, "b": 50.0}


# --- the policy the clusters ask for now -----------------------------------------------------------------


def test_the_policy_is_read_back_from_the_clusters_endpoints():
    eps = [
        Endpoint.make(
            NAME,
            "A",
            ["198.51.100.10"],
            set_identifier="rke2-dc1",
            provider_specific={"aws/weight": "80"},
            cluster="rke2-dc1",
        ),
        Endpoint.make(
            NAME,
            "A",
            ["198.51.100.40"],
            set_identifier="k3s-edge",
            provider_specific={"aws/weight": "20"},
            cluster="k3s-edge",
        ),
        Endpoint.make("other.example.com", "A", ["192.0.2.1"], cluster="k3s-edge"),
    ]
    p = policy_from_endpoints(NAME, eps)
    assert p.kind == WEIGHTED
    assert [(s.cluster, s.weight) for s in p.shares] == [("k3s-edge", 20), ("rke2-dc1", 80)]
    # A weight without a set identifier is ignored by ExternalDNS and the plan: that name is round robin.
    no_sid = [
        Endpoint.make(NAME, "A", ["198.51.100.10"], provider_specific={"aws/weight": "80"}, cluster="a")
    ]
    assert policy_from_endpoints(NAME, no_sid).kind == ROUND_ROBIN
    plain = [Endpoint.make(NAME, "A", ["198.51.100.10"], ttl=60, cluster="rke2-dc1")]
    assert policy_from_endpoints(NAME, plain) == policy(ROUND_ROBIN, ClusterShare("rke2-dc1"), ttl=60)


# --- the annotations that carry it ------------------------------------------------------------------------


def test_round_robin_to_80_20_adds_a_stable_set_identifier_and_the_weight_under_the_objects_prefix():
    p = policy(WEIGHTED, ClusterShare("rke2-dc1", weight=80), ClusterShare("k3s-edge", weight=20))
    patches = {pt.obj.cluster: pt for pt in annotation_patches(p, [RKE2, K3S])}
    assert patches["rke2-dc1"].changes == {f"{ALPHA}set-identifier": "rke2-dc1", f"{ALPHA}aws-weight": "80"}
    assert patches["k3s-edge"].after == {
        f"{ALPHA}hostname": NAME,
        f"{ALPHA}set-identifier": "k3s-edge",
        f"{ALPHA}aws-weight": "20",
    }
    assert patches["rke2-dc1"].before == RKE2.annotations


def test_weighted_to_failover_removes_the_weight_and_adds_the_role_and_the_health_check():
    weighted = {f"{ALPHA}hostname": NAME, f"{ALPHA}set-identifier": "rke2-dc1", f"{ALPHA}aws-weight": "80"}
    p = policy(FAILOVER, ClusterShare("rke2-dc1", role="PRIMARY"), ClusterShare("k3s-edge", role="SECONDARY"))
    [patch] = annotation_patches(p, [svc("rke2-dc1", weighted)], health_check_ids={"rke2-dc1": HC})
    assert patch.changes == {
        f"{ALPHA}aws-weight": None,
        f"{ALPHA}aws-failover": "PRIMARY",
        f"{ALPHA}aws-health-check-id": HC,
    }


def test_back_to_round_robin_removes_every_routing_key_and_the_ttl_is_written_when_asked():
    weighted = {
        f"{ALPHA}hostname": NAME,
        f"{ALPHA}set-identifier": "k3s-edge",
        f"{ALPHA}aws-region": "us-east-1",
    }
    [patch] = annotation_patches(
        policy(ROUND_ROBIN, ClusterShare("k3s-edge"), ttl=30), [svc("k3s-edge", weighted)]
    )
    assert patch.changes == {
        f"{ALPHA}set-identifier": None,
        f"{ALPHA}aws-region": None,
        f"{ALPHA}ttl": "30",
    }
    assert patch.after == {f"{ALPHA}hostname": NAME, f"{ALPHA}ttl": "30"}


def test_an_object_on_the_ga_prefix_stays_on_it_and_loses_the_alpha_copy_that_would_linger():
    both = {f"{GA}hostname": NAME, f"{ALPHA}hostname": NAME, f"{ALPHA}aws-weight": "10"}
    p = policy(WEIGHTED, ClusterShare("rke2-dc1", weight=50))
    [patch] = annotation_patches(p, [svc("rke2-dc1", both)])
    assert patch.changes == {
        f"{GA}set-identifier": "rke2-dc1",
        f"{GA}aws-weight": "50",
        f"{ALPHA}aws-weight": None,
    }
    fresh = ObjectState("rke2-dc1", "Service", "default", "web", {}, default_prefix=GA)
    [patch] = annotation_patches(p, [fresh])
    assert set(patch.changes) == {f"{GA}set-identifier", f"{GA}aws-weight"}


def test_a_cluster_left_out_stops_publishing_the_name_and_keeps_its_others():
    shared = svc(
        "k3s-edge", {f"{ALPHA}hostname": f"{NAME}, www.example.com"}, hostnames=(NAME, "www.example.com")
    )
    p = policy(ROUND_ROBIN, ClusterShare("rke2-dc1"), ClusterShare("k3s-edge", enabled=False))
    patches = {pt.obj.cluster: pt for pt in annotation_patches(p, [RKE2, shared])}
    assert patches["k3s-edge"].changes == {f"{ALPHA}hostname": "www.example.com"}
    assert patches["rke2-dc1"].empty  # round robin already: nothing to write


def test_an_object_publishing_other_names_says_their_routing_follows():
    shared = svc(
        "rke2-dc1", {f"{ALPHA}hostname": f"{NAME},www.example.com"}, hostnames=(NAME, "www.example.com")
    )
    p = policy(WEIGHTED, ClusterShare("rke2-dc1", weight=1))
    [patch] = annotation_patches(p, [shared])
    assert patch.also_affects == ("www.example.com",)


def test_an_object_of_a_cluster_without_a_part_is_a_programming_error():
    with pytest.raises(ValueError, match="no part for it"):
        annotation_patches(policy(WEIGHTED, ClusterShare("rke2-dc1", weight=1)), [K3S])


# --- what discovery will see ------------------------------------------------------------------------------


def test_the_endpoints_after_the_write_take_the_new_routing_and_a_left_out_one_goes():
    eps = [
        Endpoint.make(
            NAME,
            "A",
            ["198.51.100.10"],
            ttl=60,
            labels={"resource": "service/default/nginx-distro-check"},
            cluster="rke2-dc1",
        ),
        Endpoint.make(
            NAME,
            "A",
            ["198.51.100.40"],
            labels={"resource": "service/default/nginx-distro-check"},
            cluster="k3s-edge",
        ),
        Endpoint.make(
            "rke2.app.example.com",
            "A",
            ["198.51.100.11"],
            labels={"resource": "ingress/default/x"},
            cluster="rke2-dc1",
        ),
    ]
    p = policy(WEIGHTED, ClusterShare("rke2-dc1", weight=80), ClusterShare("k3s-edge", weight=20))
    after = endpoints_under_patches(eps, annotation_patches(p, [RKE2, K3S]))
    assert [(e.cluster, e.set_identifier, e.properties, e.ttl) for e in after] == [
        ("rke2-dc1", "rke2-dc1", {"aws/weight": "80"}, 60),
        ("k3s-edge", "k3s-edge", {"aws/weight": "20"}, 0),
        ("rke2-dc1", "", {}, 0),  # another object: untouched
    ]
    out = policy(ROUND_ROBIN, ClusterShare("rke2-dc1"), ClusterShare("k3s-edge", enabled=False))
    after = endpoints_under_patches(eps, annotation_patches(out, [RKE2, K3S]))
    assert [e.cluster for e in after if e.dns_name == NAME] == ["rke2-dc1"]
