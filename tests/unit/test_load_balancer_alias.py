"""A CNAME to an AWS load balancer becomes alias A and AAAA records in a Route53 zone, as ExternalDNS's AWS
provider writes it (tests/integration/test_external_dns_differential.py found the portal writing a CNAME)."""

from __future__ import annotations

import pytest

from records.aggregate import aggregate
from records.aws_alias_zones import canonical_hosted_zone
from records.endpoint import Endpoint

ELB = "web-1234567890.us-east-1.elb.amazonaws.com"


@pytest.mark.parametrize(
    ("hostname", "zone_id"),
    [
        (ELB, "Z35SXDOTRQ7X7K"),
        ("net-lb-abc.elb.eu-west-1.amazonaws.com", "Z2IFOLAFXWLO4F"),
        ("d111111abcdef8.cloudfront.net", "Z2FDTNDATAQYW2"),
        ("WEB-1.US-EAST-1.ELB.AMAZONAWS.COM.", "Z35SXDOTRQ7X7K"),
        ("lb.example.net", ""),
        ("unknown-region.elb.mars-1.amazonaws.com", ""),
    ],
)
def test_canonical_hosted_zone_is_external_dns_table(hostname: str, zone_id: str) -> None:
    assert canonical_hosted_zone(hostname) == zone_id


def _records(endpoints: list[Endpoint], *, alias_load_balancers: bool) -> dict:
    desired = aggregate(endpoints, "example.com.", alias_load_balancers=alias_load_balancers)
    assert desired.conflicts == ()
    return {k: d.record for k, d in desired.records.items()}


def test_a_cname_to_a_load_balancer_is_an_alias_a_and_aaaa_in_route53() -> None:
    got = _records([Endpoint.make("web.example.com", "CNAME", [ELB])], alias_load_balancers=True)
    assert sorted(got) == [("web.example.com.", "A", ""), ("web.example.com.", "AAAA", "")]
    for rs in got.values():
        assert rs.ttl is None and rs.alias is not None
        assert (rs.alias.dns_name, rs.alias.hosted_zone_id) == (ELB, "Z35SXDOTRQ7X7K")
        assert rs.alias.evaluate_target_health is True  # --aws-evaluate-target-health defaults to true


def test_routing_and_evaluate_target_health_carry_over_to_the_alias() -> None:
    ep = Endpoint.make(
        "web.example.com",
        "CNAME",
        [ELB],
        set_identifier="blue",
        provider_specific={"aws/weight": "80", "aws/evaluate-target-health": "false"},
    )
    got = _records([ep], alias_load_balancers=True)
    rs = got[("web.example.com.", "A", "blue")]
    assert rs.routing.weight == 80 and rs.alias is not None and rs.alias.evaluate_target_health is False


def test_other_cnames_and_other_providers_keep_the_cname() -> None:
    other = Endpoint.make("app.example.com", "CNAME", ["lb.example.net"])
    assert list(_records([other], alias_load_balancers=True)) == [("app.example.com.", "CNAME", "")]
    elb = Endpoint.make("web.example.com", "CNAME", [ELB])
    assert list(_records([elb], alias_load_balancers=False)) == [("web.example.com.", "CNAME", "")]
    # alias=false written on the endpoint (a DNSEndpoint) keeps the CNAME, as ExternalDNS does
    explicit = Endpoint.make("web.example.com", "CNAME", [ELB], provider_specific={"alias": "false"})
    assert list(_records([explicit], alias_load_balancers=True)) == [("web.example.com.", "CNAME", "")]
