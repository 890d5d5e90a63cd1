"""Health checks as pure data: the spec's per-field validation, its Route53 form and back, the caller
reference, the update parameters and the status summary (records/providers/base.py, route53_health.py).

The Route53 calls themselves are in tests/integration/test_route53_health_checks.py, against moto.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from records.providers.base import HealthCheckSpec
from records.providers.route53_health import (
    caller_reference,
    health_check_config,
    spec_from_route53,
    status_from_route53,
    update_params,
)

# public addresses: Route53's checkers refuse documentation ranges such as 192.0.2.0/24
PUBLIC_IP = "52.94.236.248"
HTTPS_IP = HealthCheckSpec(
    protocol="HTTPS", port=443, ip_address=PUBLIC_IP, host_header="shop.example.com", resource_path="/healthz"
)
HTTP_NAME = HealthCheckSpec(protocol="HTTP", port=8080, fully_qualified_domain_name="eks-eu1.example.com")
TCP_IP = HealthCheckSpec(protocol="TCP", port=5432, ip_address="2600:1f18:4ab::7", request_interval=10)


# --- validate() -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("spec", [HTTPS_IP, HTTP_NAME, TCP_IP, replace(HTTP_NAME, failure_threshold=10)])
def test_a_spec_route53_can_create_has_no_problems(spec: HealthCheckSpec) -> None:
    assert spec.validate() == []


@pytest.mark.parametrize(
    ("base", "change", "field", "words"),
    [
        (HTTPS_IP, {"protocol": "HTTP_STR_MATCH"}, "protocol", "must be HTTP, HTTPS or TCP"),
        (HTTPS_IP, {"port": 0}, "port", "from 1 to 65535, not `0`"),
        (HTTPS_IP, {"port": 65536}, "port", "from 1 to 65535"),
        (HTTPS_IP, {"port": "443"}, "port", "whole number"),
        (HTTPS_IP, {"ip_address": "", "host_header": ""}, "ip_address", "IP address or the domain name"),
        (HTTPS_IP, {"ip_address": "52.94.236"}, "ip_address", "is not an IPv4 or IPv6 address"),
        (HTTPS_IP, {"ip_address": "10.1.2.3"}, "ip_address", "not a public internet address"),
        (HTTPS_IP, {"ip_address": "100.64.0.9"}, "ip_address", "not a public internet address"),  # CGNAT
        (HTTPS_IP, {"ip_address": "192.0.2.10"}, "ip_address", "Route53's health checkers cannot reach it"),
        (HTTPS_IP, {"ip_address": "127.0.0.1"}, "ip_address", "not a public internet address"),
        (HTTPS_IP, {"ip_address": "fe80::1"}, "ip_address", "not a public internet address"),
        (HTTPS_IP, {"ip_address": "224.0.0.251"}, "ip_address", "multicast"),
        (
            HTTPS_IP,
            {"fully_qualified_domain_name": "x.example.com"},
            "fully_qualified_domain_name",
            "not both",
        ),
        (
            HTTP_NAME,
            {"fully_qualified_domain_name": "localhost"},
            "fully_qualified_domain_name",
            "fully qualified",
        ),
        (
            HTTP_NAME,
            {"fully_qualified_domain_name": "-bad.example.com"},
            "fully_qualified_domain_name",
            "hyphens",
        ),
        (
            HTTP_NAME,
            {"fully_qualified_domain_name": "52.94.236.248"},
            "fully_qualified_domain_name",
            "IP address",
        ),
        (HTTPS_IP, {"host_header": "shop_example"}, "host_header", "Host header `shop_example`"),
        (HTTP_NAME, {"host_header": "shop.example.com"}, "host_header", "goes with an IP address"),
        (TCP_IP, {"host_header": "db.example.com"}, "host_header", "only sent by HTTP and HTTPS"),
        (HTTPS_IP, {"resource_path": "healthz"}, "resource_path", "must start with `/`"),
        (HTTPS_IP, {"resource_path": "/health z"}, "resource_path", "no spaces"),
        (HTTPS_IP, {"resource_path": "/" + "a" * 255}, "resource_path", "255 characters"),
        (TCP_IP, {"resource_path": "/healthz"}, "resource_path", "TCP check only connects"),
        (HTTPS_IP, {"request_interval": 15}, "request_interval", "10 or 30 seconds, not `15`"),
        (HTTPS_IP, {"failure_threshold": 0}, "failure_threshold", "from 1 to 10, not `0`"),
        (HTTPS_IP, {"failure_threshold": 11}, "failure_threshold", "from 1 to 10, not `11`"),
    ],
)
def test_each_problem_names_its_field_in_a_sentence(
    base: HealthCheckSpec, change: dict[str, Any], field: str, words: str
) -> None:
    problems = replace(base, **change).validate()
    assert [p.field for p in problems] == [field]
    assert words in problems[0].message
    assert problems[0].message.endswith(".")


def test_several_problems_come_in_field_order() -> None:
    spec = HealthCheckSpec(
        protocol="TCP", port=-1, resource_path="/x", request_interval=60, failure_threshold=0
    )
    assert [p.field for p in spec.validate()] == [
        "port",
        "ip_address",
        "resource_path",
        "request_interval",
        "failure_threshold",
    ]


# --- Route53's form ---------------------------------------------------------------------------------------


def test_an_ip_target_sends_the_host_header_as_fully_qualified_domain_name() -> None:
    assert health_check_config(HTTPS_IP) == {
        "Type": "HTTPS",
        "Port": 443,
        "RequestInterval": 30,
        "FailureThreshold": 3,
        "IPAddress": PUBLIC_IP,
        "FullyQualifiedDomainName": "shop.example.com",
        "ResourcePath": "/healthz",
    }


def test_a_domain_name_target_and_a_tcp_check_send_no_path_or_host_header_of_their_own() -> None:
    assert health_check_config(replace(HTTP_NAME, fully_qualified_domain_name="EKS-eu1.Example.com.")) == {
        "Type": "HTTP",
        "Port": 8080,
        "RequestInterval": 30,
        "FailureThreshold": 3,
        "FullyQualifiedDomainName": "eks-eu1.example.com",
        "ResourcePath": "/",  # what the checkers request without a path
    }
    config = health_check_config(TCP_IP)
    assert config["IPAddress"] == "2600:1f18:4ab::7"
    assert "ResourcePath" not in config and "FullyQualifiedDomainName" not in config


@pytest.mark.parametrize("spec", [HTTPS_IP, HTTP_NAME, TCP_IP])
def test_a_spec_reads_back_from_route53s_configuration_unchanged(spec: HealthCheckSpec) -> None:
    # what GetHealthCheck answers: our fields plus Route53's own defaults
    config = health_check_config(spec) | {"MeasureLatency": False, "Inverted": False, "EnableSNI": True}
    assert spec_from_route53(config) == spec.normalized()


def test_normalised_specs_of_the_same_check_are_equal() -> None:
    a = HealthCheckSpec(
        protocol="http", port=80, ip_address="2600:1F18:04AB:0000::7", host_header="Shop.Example.com."
    )
    b = HealthCheckSpec(
        protocol="HTTP", port=80, ip_address="2600:1f18:4ab::7", host_header="shop.example.com"
    )
    assert a.normalized() == b.normalized()
    assert a.normalized().resource_path == "/"


@pytest.mark.parametrize("kind", ["HTTP_STR_MATCH", "CALCULATED", "CLOUDWATCH_METRIC", ""])
def test_a_kind_the_portal_does_not_manage_is_not_read_as_a_spec(kind: str) -> None:
    with pytest.raises(ValueError, match="not one the portal manages"):
        spec_from_route53({"Type": kind, "IPAddress": PUBLIC_IP, "Port": 80})


def test_the_caller_reference_is_stable_short_and_tells_owners_and_references_apart() -> None:
    ref = caller_reference("portal", "policy-12-eks-eu1")
    assert ref == caller_reference("portal", "policy-12-eks-eu1")
    assert ref.startswith("dnsportal-") and len(ref) <= 64  # Route53's CallerReference limit
    assert ref != caller_reference("portal2", "policy-12-eks-eu1")
    assert ref != caller_reference("portal", "policy-12-eks-eu2")
    assert len(caller_reference("o" * 256, "r" * 256)) <= 64


# --- what an update sends ---------------------------------------------------------------------------------


def test_an_update_that_drops_the_host_header_resets_it() -> None:
    # UpdateHealthCheck keeps an omitted element: clearing one takes ResetElements (moto ignores it)
    params = update_params(HTTPS_IP.normalized(), replace(HTTPS_IP, host_header="").normalized())
    assert params["ResetElements"] == ["FullyQualifiedDomainName"]
    assert "FullyQualifiedDomainName" not in params


def test_an_update_sends_the_settings_route53_can_change() -> None:
    want = replace(
        HTTPS_IP, port=8443, ip_address="54.239.28.85", resource_path="/ready", failure_threshold=5
    )
    assert update_params(HTTPS_IP.normalized(), want.normalized()) == {
        "Port": 8443,
        "FailureThreshold": 5,
        "IPAddress": "54.239.28.85",
        "FullyQualifiedDomainName": "shop.example.com",
        "ResourcePath": "/ready",
    }
    tcp = update_params(TCP_IP.normalized(), replace(TCP_IP, port=5433).normalized())
    assert tcp == {"Port": 5433, "FailureThreshold": 3, "IPAddress": "2600:1f18:4ab::7"}


# --- status -----------------------------------------------------------------------------------------------

REGIONS = ["ap-northeast-1", "ap-southeast-1", "ap-southeast-2", "eu-west-1", "sa-east-1"]
REGIONS += ["us-east-1", "us-west-1", "us-west-2"]
CHECKED = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def observation(region: str, n: int, ok: bool) -> dict[str, Any]:
    status = "Success: HTTP Status Code 200, OK" if ok else "Failure: Connection timed out."
    return {
        "Region": region,
        "IPAddress": f"15.177.{n}.1",
        "StatusReport": {"Status": status, "CheckedTime": CHECKED},
    }


def test_status_is_summarised_per_checker_region() -> None:
    # two checkers a region; one failing checker makes its region unhealthy
    obs = [
        observation(r, 2 * i + k, ok=not (r == "sa-east-1" and k == 1))
        for i, r in enumerate(REGIONS)
        for k in (0, 1)
    ]
    status = status_from_route53("hc-1", obs)
    assert status.summary == "healthy in 7 of 8 regions"
    assert status.regions["sa-east-1"] is False and status.regions["us-east-1"] is True
    assert list(status.regions) == sorted(REGIONS)
    assert status.healthy  # Route53's verdict: more than 18% of checkers say healthy
    failing = [o for o in status.observations if not o.healthy]
    assert [(o.region, o.status, o.checked_at) for o in failing] == [
        ("sa-east-1", "Failure: Connection timed out.", CHECKED)
    ]


def test_all_regions_healthy_and_none_healthy() -> None:
    assert status_from_route53("hc", [observation(r, i, True) for i, r in enumerate(REGIONS)]).summary == (
        "healthy in 8 of 8 regions"
    )
    down = status_from_route53("hc", [observation(r, i, False) for i, r in enumerate(REGIONS)])
    assert down.summary == "healthy in 0 of 8 regions" and not down.healthy


def test_route53_calls_a_check_healthy_only_above_18_percent_of_checkers() -> None:
    # 3 of 16 checkers = 18.75% (healthy); 2 of 16 = 12.5% (unhealthy)
    def with_ok(n: int) -> bool:
        obs = [observation(REGIONS[i % 8], i, ok=i < n) for i in range(16)]
        return status_from_route53("hc", obs).healthy

    assert with_ok(3) and not with_ok(2)


def test_a_check_no_checker_has_reported_on_says_so() -> None:
    status = status_from_route53("hc", [])
    assert status.summary == "no health checker has reported yet"
    assert not status.healthy
