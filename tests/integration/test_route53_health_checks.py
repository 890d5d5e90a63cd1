"""Health checks the portal owns, through the Route53 provider against moto in server mode (real HTTP through
`endpoint_url`), with the tests' fault proxy where a request must fail or its body be seen.

moto 5.2 ignores CreateHealthCheck's CallerReference, UpdateHealthCheck's ResetElements and
HealthCheckVersion, and answers GetHealthCheckStatus with one canned healthy checker (route53_health.py). So
"one check per reference" is the provider's own lookup here, what moto ignores is asserted on the request
bodies the proxy saw, and the per-region summary of many checkers is proven in
tests/unit/test_health_check_spec.py.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any

import pytest
import redis

from records.providers.base import HealthCheckSpec, ProviderError
from records.providers.route53 import Route53Provider
from records.providers.route53_health import caller_reference
from tests.fixtures.faultproxy import THROTTLE, FaultProxy

SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY"
STATIC = {"kind": "static", "access_key_id": "AKIAIOSFODNN7EXAMPLE", "secret_access_key": SECRET}
OWNER = "portal"
# public addresses: the spec refuses private and documentation ranges, as Route53's checkers do
PRIMARY_IP = "52.94.236.248"
OTHER_IP = "54.239.28.85"
SPEC = HealthCheckSpec(
    protocol="HTTPS",
    port=443,
    ip_address=PRIMARY_IP,
    host_header="shop.example.com",
    resource_path="/healthz",
    failure_threshold=3,
)


@pytest.fixture
def redis_client(redis_service: Any) -> Iterable[redis.Redis]:
    client = redis.Redis.from_url(redis_service.url)
    yield client
    client.close()


@pytest.fixture
def make_provider(redis_client: redis.Redis) -> Callable[..., Route53Provider]:
    """Providers on the shared Redis bucket with a high rate and a tiny backoff, so tests take seconds."""

    def make(url: str, **kw: Any) -> Route53Provider:
        opts: dict[str, Any] = {
            "redis": redis_client,
            "account_key": f"test-{uuid.uuid4().hex[:8]}",
            "rate": 200.0,
            "burst": 20,
            "backoff_base": 0.002,
            "backoff_cap": 0.02,
        }
        opts.update(kw)
        return Route53Provider(STATIC, endpoint_url=url, **opts)

    return make


def all_checks(route53: Any) -> dict[str, dict[str, Any]]:
    """Every health check as moto holds it, read directly (not through the provider)."""
    return {c["Id"]: c for c in route53.list_health_checks()["HealthChecks"]}


def tags_of(route53: Any, check_id: str) -> dict[str, str]:
    tag_set = route53.list_tags_for_resource(ResourceType="healthcheck", ResourceId=check_id)[
        "ResourceTagSet"
    ]
    return {t["Key"]: t["Value"] for t in tag_set["Tags"]}


def foreign_check(route53: Any, ip: str = OTHER_IP, tags: dict[str, str] | None = None) -> str:
    """A check someone else made with boto3 directly: no owner tag of ours (maybe other tags)."""
    config = {"Type": "HTTP", "IPAddress": ip, "Port": 80, "ResourcePath": "/", "FailureThreshold": 2}
    check_id = route53.create_health_check(CallerReference=uuid.uuid4().hex, HealthCheckConfig=config)[
        "HealthCheck"
    ]["Id"]
    if tags:
        route53.change_tags_for_resource(
            ResourceType="healthcheck",
            ResourceId=check_id,
            AddTags=[{"Key": k, "Value": v} for k, v in tags.items()],
        )
    return check_id


def new_zone(route53: Any, name: str) -> str:
    zone = route53.create_hosted_zone(Name=name, CallerReference=uuid.uuid4().hex)["HostedZone"]
    return zone["Id"].removeprefix("/hostedzone/")


# --- create -------------------------------------------------------------------------------------------------


def test_create_twice_with_the_same_reference_makes_one_check(
    route53: Any, moto_service: Any, make_provider: Any
) -> None:
    provider = make_provider(moto_service.url)
    first = provider.health_check_create(SPEC, owner_id=OWNER, reference="policy-7-eks-eu1")
    again = provider.health_check_create(SPEC, owner_id=OWNER, reference="policy-7-eks-eu1")

    assert again == first
    assert list(all_checks(route53)) == [first.id]
    assert provider.calls["CreateHealthCheck"] == 1  # moto would have made a second check
    assert first.spec == SPEC.normalized()
    assert first.owner_id == OWNER and first.reference == "policy-7-eks-eu1"
    assert first.caller_reference == caller_reference(OWNER, "policy-7-eks-eu1")
    assert all_checks(route53)[first.id]["CallerReference"] == first.caller_reference
    assert tags_of(route53, first.id) == {
        "dnsportal-owner": OWNER,
        "dnsportal-reference": "policy-7-eks-eu1",
        "Name": "dnsportal policy-7-eks-eu1",
    }
    config = all_checks(route53)[first.id]["HealthCheckConfig"]
    # the host header travels as FullyQualifiedDomainName next to the IPAddress
    assert (config["IPAddress"], config["FullyQualifiedDomainName"]) == (PRIMARY_IP, "shop.example.com")
    assert (config["Type"], config["Port"], config["ResourcePath"]) == ("HTTPS", 443, "/healthz")

    other = provider.health_check_create(SPEC, owner_id=OWNER, reference="policy-7-rke2-dc1", name="dc1")
    assert other.id != first.id and tags_of(route53, other.id)["Name"] == "dc1"


def test_create_again_with_other_settings_updates_the_same_check(
    route53: Any, moto_service: Any, make_provider: Any
) -> None:
    provider = make_provider(moto_service.url)
    first = provider.health_check_create(SPEC, owner_id=OWNER, reference="policy-8-eks")
    moved = replace(SPEC, ip_address=OTHER_IP, port=8443, resource_path="/ready", failure_threshold=5)

    again = provider.health_check_create(moved, owner_id=OWNER, reference="policy-8-eks")
    assert again.id == first.id and again.spec == moved.normalized()
    assert list(all_checks(route53)) == [first.id]
    config = all_checks(route53)[first.id]["HealthCheckConfig"]
    assert (config["IPAddress"], config["Port"], config["ResourcePath"], config["FailureThreshold"]) == (
        OTHER_IP,
        8443,
        "/ready",
        5,
    )


def test_create_again_with_a_setting_route53_cannot_change_is_refused(
    route53: Any, moto_service: Any, make_provider: Any
) -> None:
    provider = make_provider(moto_service.url)
    first = provider.health_check_create(SPEC, owner_id=OWNER, reference="policy-9-eks")
    with pytest.raises(ProviderError) as info:
        provider.health_check_create(
            replace(SPEC, protocol="HTTP", port=80), owner_id=OWNER, reference="policy-9-eks"
        )
    msg = info.value.user_message
    assert "protocol HTTPS -> HTTP" in msg and "new reference" in msg
    assert all_checks(route53)[first.id]["HealthCheckConfig"]["Type"] == "HTTPS"
    assert provider.calls["UpdateHealthCheck"] == 0


def test_a_check_whose_tagging_was_interrupted_is_found_by_its_reference_and_tagged(
    route53: Any, moto_service: Any, make_provider: Any
) -> None:
    # what a create leaves behind when the worker dies between CreateHealthCheck and ChangeTagsForResource
    ref = caller_reference(OWNER, "policy-10-k3s")
    config = {"Type": "HTTPS", "IPAddress": PRIMARY_IP, "Port": 443, "ResourcePath": "/healthz"}
    config |= {"FullyQualifiedDomainName": "shop.example.com", "RequestInterval": 30, "FailureThreshold": 3}
    orphan = route53.create_health_check(CallerReference=ref, HealthCheckConfig=config)["HealthCheck"]["Id"]
    provider = make_provider(moto_service.url)
    assert provider.health_checks_owned(OWNER) == []  # untagged: not ours yet

    info = provider.health_check_create(SPEC, owner_id=OWNER, reference="policy-10-k3s")
    assert info.id == orphan
    assert list(all_checks(route53)) == [orphan]
    assert [i.id for i in provider.health_checks_owned(OWNER)] == [orphan]


def test_an_invalid_spec_is_refused_before_any_request(moto_service: Any, make_provider: Any) -> None:
    provider = make_provider(moto_service.url)
    bad = replace(SPEC, ip_address="10.0.0.7", failure_threshold=12)
    with pytest.raises(ProviderError) as info:
        provider.health_check_create(bad, owner_id=OWNER, reference="policy-11-eks")
    assert "not a public internet address" in info.value.user_message
    assert "from 1 to 10, not `12`" in info.value.user_message
    with pytest.raises(ProviderError, match="cannot be updated"):
        provider.health_check_update("some-id", bad, owner_id=OWNER)
    assert sum(provider.calls.values()) == 0


# --- ownership ----------------------------------------------------------------------------------------------


def test_only_checks_tagged_with_our_owner_id_are_listed(
    route53: Any, moto_service: Any, make_provider: Any
) -> None:
    provider = make_provider(moto_service.url)
    ours = [
        provider.health_check_create(replace(SPEC, port=443 + i), owner_id=OWNER, reference=f"policy-{i}")
        for i in range(3)
    ]
    theirs = provider.health_check_create(SPEC, owner_id="other-portal", reference="policy-1")
    foreign_check(route53)
    foreign_check(route53, tags={"Name": "dnsportal policy-1"})  # a Name alone does not make it ours

    listed = provider.health_checks_owned(OWNER)
    assert listed == sorted(ours, key=lambda i: i.reference)
    assert [i.id for i in provider.health_checks_owned("other-portal")] == [theirs.id]
    assert provider.health_checks_owned("nobody") == []
    assert len(all_checks(route53)) == 6
    # tags are read ten checks a request: 6 checks, one ListTagsForResources per listing
    assert provider.calls["ListTagsForResources"] == 3


def test_a_foreign_check_is_never_updated_or_deleted(
    route53: Any, moto_service: Any, make_provider: Any
) -> None:
    provider = make_provider(moto_service.url)
    foreign = foreign_check(route53)
    other = provider.health_check_create(SPEC, owner_id="other-portal", reference="policy-1").id
    before = all_checks(route53)

    for check_id, whose in ((foreign, "no portal"), (other, "owner id `other-portal`")):
        with pytest.raises(ProviderError) as info:
            provider.health_check_update(check_id, replace(SPEC, port=8443), owner_id=OWNER)
        assert f"Could not update health check {check_id}: it belongs to {whose}" in info.value.user_message
        assert "only changes health checks it created" in info.value.user_message
        with pytest.raises(ProviderError) as info:
            provider.health_check_delete(check_id, owner_id=OWNER)
        assert f"Could not delete health check {check_id}: it belongs to {whose}" in info.value.user_message
    assert all_checks(route53) == before
    assert provider.calls["UpdateHealthCheck"] == provider.calls["DeleteHealthCheck"] == 0


# --- update -------------------------------------------------------------------------------------------------


def test_update_changes_an_owned_check_guarded_by_its_version(
    route53: Any, fault_proxy: FaultProxy, make_provider: Any
) -> None:
    provider = make_provider(fault_proxy.url)
    check = provider.health_check_create(SPEC, owner_id=OWNER, reference="policy-12-eks")
    want = replace(SPEC, ip_address=OTHER_IP, resource_path="/ready", failure_threshold=2)

    updated = provider.health_check_update(check.id, want, owner_id=OWNER)
    config = all_checks(route53)[check.id]["HealthCheckConfig"]
    assert (config["IPAddress"], config["ResourcePath"]) == (OTHER_IP, "/ready")
    assert config["FailureThreshold"] == 2
    assert updated.id == check.id and updated.reference == "policy-12-eks"
    assert updated.spec == want.normalized()
    # Route53 refuses an update whose version is not the one read: a concurrent edit is not overwritten
    # (moto ignores the version, so the request is checked)
    (body,) = fault_proxy.bodies("UpdateHealthCheck")
    assert b"<HealthCheckVersion>1</HealthCheckVersion>" in body

    provider.health_check_update(check.id, want, owner_id=OWNER)
    assert provider.calls["UpdateHealthCheck"] == 1  # nothing to change, no request

    # dropping the host header takes ResetElements on Route53 (moto ignores it and keeps the header)
    provider.health_check_update(check.id, replace(want, host_header=""), owner_id=OWNER)
    body = fault_proxy.bodies("UpdateHealthCheck")[-1]
    assert b"<ResettableElementName>FullyQualifiedDomainName</ResettableElementName>" in body


def test_update_refuses_what_route53_cannot_change_in_place(
    route53: Any, moto_service: Any, make_provider: Any
) -> None:
    provider = make_provider(moto_service.url)
    check = provider.health_check_create(SPEC, owner_id=OWNER, reference="policy-13-eks")
    cases = {
        "request interval 30 s -> 10 s": replace(SPEC, request_interval=10),
        "(IP address vs domain name)": replace(
            SPEC, ip_address="", host_header="", fully_qualified_domain_name="eks.example.com"
        ),
    }
    for words, spec in cases.items():
        with pytest.raises(ProviderError) as info:
            provider.health_check_update(check.id, spec, owner_id=OWNER)
        assert words in info.value.user_message and "create a new check" in info.value.user_message
    assert provider.calls["UpdateHealthCheck"] == 0


def test_update_of_a_missing_check_says_so(moto_service: Any, route53: Any, make_provider: Any) -> None:
    provider = make_provider(moto_service.url)
    with pytest.raises(ProviderError) as info:
        provider.health_check_update("4b97f5e5-0000-0000-0000-000000000000", SPEC, owner_id=OWNER)
    assert info.value.code == "NoSuchHealthCheck"
    assert "has no health check 4b97f5e5-0000-0000-0000-000000000000" in info.value.user_message


# --- status -------------------------------------------------------------------------------------------------


def test_status_is_read_and_summarised(route53: Any, moto_service: Any, make_provider: Any) -> None:
    provider = make_provider(moto_service.url)
    check = provider.health_check_create(SPEC, owner_id=OWNER, reference="policy-14-eks")
    status = provider.health_check_status(check.id)
    # moto's canned answer: one checker in us-east-1 reporting success
    assert status.check_id == check.id
    assert status.summary == "healthy in 1 of 1 regions"
    assert status.regions == {"us-east-1": True} and status.healthy
    assert status.observations[0].status.startswith("Success")
    assert status.observations[0].checked_at is not None

    with pytest.raises(ProviderError) as info:
        provider.health_check_status("no-such-check")
    assert "has no health check no-such-check" in info.value.user_message


# --- delete -------------------------------------------------------------------------------------------------


def test_delete_of_an_owned_check(route53: Any, moto_service: Any, make_provider: Any) -> None:
    provider = make_provider(moto_service.url)
    keep = provider.health_check_create(SPEC, owner_id=OWNER, reference="policy-15-eks")
    check = provider.health_check_create(replace(SPEC, port=8443), owner_id=OWNER, reference="policy-15-rke2")
    new_zone(route53, "example.com")

    assert provider.health_check_delete(check.id, owner_id=OWNER) is True
    assert list(all_checks(route53)) == [keep.id]
    assert [i.id for i in provider.health_checks_owned(OWNER)] == [keep.id]
    # already gone (a job run again): nothing to do, no error
    assert provider.health_check_delete(check.id, owner_id=OWNER) is False


def test_delete_is_refused_while_record_sets_use_the_check(
    route53: Any, moto_service: Any, make_provider: Any
) -> None:
    provider = make_provider(moto_service.url)
    check = provider.health_check_create(SPEC, owner_id=OWNER, reference="policy-16-eks")
    zone_id = new_zone(route53, "example.com")
    other_zone = new_zone(route53, "example.org")
    failover = {"Name": "api.example.com", "Type": "A", "TTL": 60, "SetIdentifier": "api-eks"}
    failover |= {"Failover": "PRIMARY", "HealthCheckId": check.id, "ResourceRecords": [{"Value": PRIMARY_IP}]}
    change = {"Action": "CREATE", "ResourceRecordSet": failover}
    route53.change_resource_record_sets(HostedZoneId=zone_id, ChangeBatch={"Changes": [change]})

    # Route53 itself would delete it (DeleteHealthCheck does not check), so the provider looks first
    with pytest.raises(ProviderError) as info:
        provider.health_check_delete(check.id, owner_id=OWNER)
    assert info.value.code == "HealthCheckInUse"
    assert f"api.example.com. A (api-eks) in zone {zone_id}" in info.value.user_message
    assert "1 record set(s) still use it" in info.value.user_message
    assert check.id in all_checks(route53)
    assert provider.calls["DeleteHealthCheck"] == 0

    # the search covers the zones given: none of the other zone's records use it
    assert provider.health_check_delete(check.id, owner_id=OWNER, zone_ids=[other_zone]) is True
    assert check.id not in all_checks(route53)


# --- the shared retry path ----------------------------------------------------------------------------------

EVERY_OPERATION = (
    "ListHealthChecks",
    "CreateHealthCheck",
    "ChangeTagsForResource",
    "ListTagsForResources",
    "GetHealthCheck",
    "ListTagsForResource",
    "UpdateHealthCheck",
    "GetHealthCheckStatus",
    "DeleteHealthCheck",
)


def test_throttling_is_retried_on_every_health_check_call(
    route53: Any, fault_proxy: FaultProxy, make_provider: Any
) -> None:
    sleeps: list[float] = []
    provider = make_provider(fault_proxy.url, sleep=sleeps.append)
    for op in EVERY_OPERATION:
        fault_proxy.inject(op, THROTTLE, THROTTLE)

    check = provider.health_check_create(SPEC, owner_id=OWNER, reference="policy-17-eks")
    assert [i.id for i in provider.health_checks_owned(OWNER)] == [check.id]
    provider.health_check_update(check.id, replace(SPEC, port=8443), owner_id=OWNER)
    assert provider.health_check_status(check.id).summary == "healthy in 1 of 1 regions"
    assert provider.health_check_delete(check.id, owner_id=OWNER, zone_ids=[]) is True

    assert all_checks(route53) == {}
    assert fault_proxy.faults[THROTTLE] == 2 * len(EVERY_OPERATION)
    assert provider.errors["Throttling"] == 2 * len(EVERY_OPERATION)
    assert len(sleeps) == 2 * len(EVERY_OPERATION)  # backed off before each resend
    for op in EVERY_OPERATION:
        assert fault_proxy.requests[op] >= 3, op  # two throttled, then through
    assert fault_proxy.forwarded["CreateHealthCheck"] == 1


def test_throttling_past_the_last_attempt_is_a_retryable_error_about_the_check(
    route53: Any, fault_proxy: FaultProxy, make_provider: Any
) -> None:
    provider = make_provider(fault_proxy.url, max_attempts=2)
    fault_proxy.inject("CreateHealthCheck", THROTTLE, THROTTLE)
    with pytest.raises(ProviderError) as info:
        provider.health_check_create(SPEC, owner_id=OWNER, reference="policy-18-eks")
    err = info.value
    assert err.retryable
    assert err.user_message.startswith("Could not create health check `policy-18-eks`: ")
    assert "CreateHealthCheck still failing after 2 attempts: Throttling" in err.user_message
    assert SECRET not in err.user_message
    assert all_checks(route53) == {}
