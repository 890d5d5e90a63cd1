"""The Route53 provider against moto in server mode (real HTTP through `endpoint_url`), with and without the
tests' fault-injecting proxy in front, and the shared Redis rate limiter.

moto is not AWS (testinfra.md §1): it accepts a duplicate CREATE with other values, is only partly atomic,
deletes routed record sets by set identifier across the whole zone, and never pages inside a name. So set
identifiers are unique per zone here, batch limits moto does not enforce are proven in tests/unit, and
"applied exactly once" is checked on what the proxy saw moto accept, not on moto's errors.
"""

from __future__ import annotations

import multiprocessing
import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import pytest
import redis

from records.plan import ACTION_CREATE, ACTION_DELETE, ACTION_UPSERT, Change, apply_changes
from records.providers.base import ChangeGroupInput, ProviderError
from records.providers.ratelimit import LocalTokenBucket, RedisTokenBucket, expected_max_requests
from records.providers.route53 import Route53Provider
from records.recordset import AliasTarget, RecordSet, Routing, recordset_from_route53, txt_encode
from tests.fixtures.faultproxy import AFTER_FORWARD, ERROR, PENDING, THROTTLE, FaultProxy

# the `fault_proxy` fixture comes from tests.fixtures.faultproxy, a plugin listed in tests/conftest.py

SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY"
STATIC = {"kind": "static", "access_key_id": "AKIAIOSFODNN7EXAMPLE", "secret_access_key": SECRET}
ZONE = "example.com."
OWNER = "portal"


# --- helpers ------------------------------------------------------------------------------------------------


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
        credentials = kw.pop("credentials", STATIC)
        opts.update(kw)
        return Route53Provider(credentials, endpoint_url=url, **opts)

    return make


def new_zone(route53: Any, name: str = ZONE, *, private: bool = False) -> str:
    kw: dict[str, Any] = {"Name": name, "CallerReference": uuid.uuid4().hex}
    if private:
        kw["VPC"] = {"VPCRegion": "us-east-1", "VPCId": "vpc-12345678"}
        kw["HostedZoneConfig"] = {"PrivateZone": True, "Comment": "private"}
    return route53.create_hosted_zone(**kw)["HostedZone"]["Id"].removeprefix("/hostedzone/")


def a(
    name: str, *values: str, ttl: int = 300, sid: str = "", routing: Routing | None = None, hc: str = ""
) -> RecordSet:
    return RecordSet(
        f"{name}.{ZONE}" if not name.endswith(".") else name,
        "A",
        set_identifier=sid,
        ttl=ttl,
        values=values or ("192.0.2.1",),
        routing=routing or Routing(),
        health_check_id=hc,
    )


def owner_txt(rs: RecordSet) -> RecordSet:
    """The ownership TXT that goes with a record (ExternalDNS's new format: type prefix on the name)."""
    label, _, rest = rs.name.partition(".")
    text = f"heritage=external-dns,external-dns/owner={OWNER},external-dns/resource=service/default/{label}"
    return RecordSet(
        f"{rs.type.lower()}-{label}.{rest}",
        "TXT",
        set_identifier=rs.set_identifier,
        ttl=300,
        values=(txt_encode(text),),
        routing=rs.routing,
    )


def with_owner(index: int, action: str, rs: RecordSet) -> ChangeGroupInput:
    return ChangeGroupInput(index, (Change(action, rs), Change(action, owner_txt(rs), "ownership")))


def replace_group(index: int, old: RecordSet, new: RecordSet) -> ChangeGroupInput:
    """A record replaced by one Route53 cannot UPSERT into (A -> CNAME): DELETE both, CREATE both."""
    return ChangeGroupInput(
        index,
        (
            Change(ACTION_DELETE, old),
            Change(ACTION_DELETE, owner_txt(old), "ownership"),
            Change(ACTION_CREATE, new),
            Change(ACTION_CREATE, owner_txt(new), "ownership"),
        ),
    )


def zone_records(route53: Any, zone_id: str) -> list[RecordSet]:
    """The zone as moto holds it (read directly, not through the proxy), without the apex SOA and NS."""
    out: list[RecordSet] = []
    params: dict[str, Any] = {"HostedZoneId": zone_id, "MaxItems": "300"}
    while True:
        resp = route53.list_resource_record_sets(**params)
        out += [recordset_from_route53(i) for i in resp["ResourceRecordSets"]]
        if not resp["IsTruncated"]:
            break
        params.update(StartRecordName=resp["NextRecordName"], StartRecordType=resp["NextRecordType"])
    return [rs for rs in out if not (rs.name == ZONE and rs.type in ("SOA", "NS"))]


def canon(rs: RecordSet) -> tuple[Any, ...]:
    """A record set in a form moto and our RecordSets agree on (moto keeps alias names as sent)."""
    if rs.alias is not None:
        body: tuple[Any, ...] = (rs.alias.dns_name.rstrip(".").lower(), rs.alias.hosted_zone_id)
    else:
        body = (rs.ttl, tuple(sorted(rs.values)))
    return (rs.name, rs.type, rs.set_identifier, body, rs.routing, rs.health_check_id)


def assert_zone_is(route53: Any, zone_id: str, expected: Iterable[RecordSet]) -> None:
    have = zone_records(route53, zone_id)
    keys = Counter(rs.key for rs in have)
    assert [k for k, n in keys.items() if n > 1] == [], "duplicate record sets (a CREATE sent twice?)"
    assert sorted(map(canon, have)) == sorted(map(canon, expected))


def assert_rate(times: Sequence[float], *, rate: float, burst: int, slack: float = 0.02) -> None:
    """No window of the arrival times holds more requests than a token bucket of rate/burst lets through."""
    ts = sorted(times)
    for i in range(len(ts)):
        for j in range(i, len(ts)):
            allowed = burst + rate * (ts[j] - ts[i] + slack)
            assert j - i + 1 <= allowed, (
                f"{j - i + 1} requests in {ts[j] - ts[i]:.3f} s (rate {rate}/s, burst {burst})"
            )


# --- zones and record sets ----------------------------------------------------------------------------------


def test_list_zones_public_and_private_with_a_domain_filter(
    route53: Any, moto_service: Any, make_provider: Any
) -> None:
    public = new_zone(route53, "example.com")
    sub = new_zone(route53, "dc1.example.com")
    private = new_zone(route53, "internal.example.org", private=True)
    provider = make_provider(moto_service.url)

    zones = {z.id: z for z in provider.list_zones()}
    assert set(zones) == {public, sub, private}
    assert zones[public].name == "example.com." and not zones[public].private
    assert zones[private].name == "internal.example.org." and zones[private].private
    assert zones[public].record_count == 2  # SOA + NS

    assert {z.id for z in provider.list_zones(domain_filter=["example.com"])} == {public, sub}
    assert {z.id for z in provider.list_zones(domain_filter=["DC1.Example.com."])} == {sub}
    assert {z.id for z in provider.list_zones(domain_filter=["example.org"])} == {private}
    assert provider.check_access() == "3 hosted zone(s) visible"


def test_list_zones_reads_every_page(route53: Any, moto_service: Any, make_provider: Any) -> None:
    ids = {new_zone(route53, f"z{i:03d}.example.net") for i in range(130)}
    provider = make_provider(moto_service.url)
    assert {z.id for z in provider.list_zones()} == ids
    assert provider.calls["ListHostedZones"] == 2  # 100 zones a page


def test_list_record_sets_reads_every_page_of_300(
    route53: Any, moto_service: Any, make_provider: Any
) -> None:
    zone_id = new_zone(route53)
    records = [a(f"h{i:04d}", f"10.0.{i // 250}.{i % 250}", ttl=60) for i in range(650)]
    # weighted sets of one name with set identifiers unique in the zone (moto deletes by identifier zone-wide)
    records += [a("shop", f"192.0.2.{k}", sid=f"w{k}", routing=Routing(weight=k)) for k in range(30)]
    changes = [Change(ACTION_CREATE, rs).to_route53() for rs in records]
    route53.change_resource_record_sets(HostedZoneId=zone_id, ChangeBatch={"Changes": changes[:500]})
    route53.change_resource_record_sets(HostedZoneId=zone_id, ChangeBatch={"Changes": changes[500:]})
    provider = make_provider(moto_service.url)

    items = provider.list_record_sets(f"/hostedzone/{zone_id}")
    assert len(items) == 680 + 2  # + SOA and NS
    assert provider.calls["ListResourceRecordSets"] == 3  # ceil(682 / 300)
    keys = [(i["Name"], i["Type"], i.get("SetIdentifier", "")) for i in items]
    assert len(set(keys)) == len(keys)
    assert {i["SetIdentifier"] for i in items if "SetIdentifier" in i} == {f"w{k}" for k in range(30)}


def test_nameservers_come_from_the_delegation_set(
    route53: Any, moto_service: Any, make_provider: Any
) -> None:
    zone_id = new_zone(route53)
    ns = make_provider(moto_service.url).nameservers(zone_id)
    assert len(ns) == 4 and all("awsdns" in n for n in ns)


# --- apply --------------------------------------------------------------------------------------------------


def routed_records(health_check_id: str) -> list[RecordSet]:
    return [
        a("www", "192.0.2.10", "192.0.2.11"),
        a("blue", "198.51.100.1", sid="blue-eks", routing=Routing(weight=80)),
        a("blue", "198.51.100.2", sid="blue-rke2", routing=Routing(weight=20)),
        a("api", "203.0.113.1", sid="api-primary", routing=Routing(failover="PRIMARY"), hc=health_check_id),
        a("api", "203.0.113.2", sid="api-secondary", routing=Routing(failover="SECONDARY")),
        a("near", "192.0.2.21", sid="near-eu", routing=Routing(region="eu-west-1")),
        a("near", "192.0.2.22", sid="near-us", routing=Routing(region="us-east-1")),
        a("geo", "192.0.2.31", sid="geo-eu", routing=Routing(continent="EU")),
        a("geo", "192.0.2.32", sid="geo-ca", routing=Routing(country="US", subdivision="CA")),
        a("geo", "192.0.2.33", sid="geo-default", routing=Routing(country="*")),
    ]


def test_apply_writes_every_routing_policy_and_updates_and_deletes_them(
    route53: Any, moto_service: Any, make_provider: Any
) -> None:
    zone_id = new_zone(route53)
    check = {"IPAddress": "203.0.113.1", "Port": 443, "Type": "HTTPS", "ResourcePath": "/healthz"}
    check |= {"RequestInterval": 30, "FailureThreshold": 3}
    hc = route53.create_health_check(CallerReference=uuid.uuid4().hex, HealthCheckConfig=check)[
        "HealthCheck"
    ]["Id"]
    records = routed_records(hc)
    alias = RecordSet(f"lb.{ZONE}", "A", alias=AliasTarget(f"www.{ZONE}", zone_id, False))
    groups = [with_owner(i, ACTION_CREATE, rs) for i, rs in enumerate(records)]
    groups.append(ChangeGroupInput(len(groups), (Change(ACTION_CREATE, alias),)))
    provider = make_provider(moto_service.url)

    result = provider.apply(zone_id, groups)
    assert result.complete and result.applied == [g.index for g in groups]
    assert result.calls == 2  # one ChangeResourceRecordSets + one GetChange
    assert result.change_ids
    state = apply_changes([], [c for g in groups for c in g.changes])
    assert_zone_is(route53, zone_id, state)
    read_back = {rs.key: rs for rs in zone_records(route53, zone_id)}
    primary = read_back[(f"api.{ZONE}", "A", "api-primary")]
    assert primary.routing.failover == "PRIMARY" and primary.health_check_id == hc
    assert read_back[(f"geo.{ZONE}", "A", "geo-ca")].routing == Routing(country="US", subdivision="CA")
    assert read_back[(f"blue.{ZONE}", "A", "blue-eks")].routing.weight == 80
    assert read_back[(f"near.{ZONE}", "A", "near-eu")].routing.region == "eu-west-1"

    # second round: weights and targets move, a latency pair goes, www becomes a CNAME (delete + create)
    by_sid = {rs.set_identifier: rs for rs in records}
    blue_eks = a("blue", "198.51.100.1", sid="blue-eks", routing=Routing(weight=50))
    api_secondary = a(
        "api", "203.0.113.9", "203.0.113.10", sid="api-secondary", routing=Routing(failover="SECONDARY")
    )
    cname = RecordSet(f"www.{ZONE}", "CNAME", ttl=60, values=("shop.example.net.",))
    second = [
        with_owner(100, ACTION_UPSERT, blue_eks),
        with_owner(101, ACTION_UPSERT, api_secondary),
        with_owner(102, ACTION_DELETE, by_sid["near-eu"]),
        with_owner(103, ACTION_DELETE, by_sid["near-us"]),
        ChangeGroupInput(104, (Change(ACTION_DELETE, alias),)),
        replace_group(105, records[0], cname),
    ]
    result = provider.apply(zone_id, second)
    assert result.complete and result.applied == [100, 101, 102, 103, 104, 105]
    state = apply_changes(state, [c for g in second for c in g.changes])
    assert_zone_is(route53, zone_id, state)


def test_a_rejected_group_is_reported_with_route53s_message_and_the_others_applied(
    route53: Any, moto_service: Any, fault_proxy: FaultProxy, make_provider: Any
) -> None:
    zone_id = new_zone(route53)
    outside = RecordSet("www.example.org.", "A", ttl=300, values=("192.0.2.66",))
    # the bad group first: moto (only partly atomic) then stops before applying anything, as AWS would
    groups = [with_owner(0, ACTION_CREATE, outside)] + [
        with_owner(i, ACTION_CREATE, a(f"h{i}")) for i in range(1, 12)
    ]
    provider = make_provider(fault_proxy.url)

    result = provider.apply(zone_id, groups)
    assert result.applied == list(range(1, 12))
    assert list(result.failed) == [0]
    assert "www.example.org. A" in result.failed[0]
    assert "InvalidChangeBatch" in result.failed[0]
    assert "not permitted in zone" in result.failed[0]  # Route53's (here moto's) own words
    assert_zone_is(route53, zone_id, apply_changes([], [c for g in groups[1:] for c in g.changes]))
    # bisection: the good groups were each accepted once, in O(log n) rejected requests
    accepted = Counter(fault_proxy.accepted_changes())
    assert set(accepted.values()) == {1} and len(accepted) == 22
    assert provider.calls["ChangeResourceRecordSets"] <= 1 + 2 * 4


def test_a_rejected_group_in_the_middle_leaves_the_zone_right_on_a_partly_atomic_server(
    route53: Any, moto_service: Any, make_provider: Any
) -> None:
    zone_id = new_zone(route53)
    groups = [with_owner(i, ACTION_CREATE, a(f"h{i}")) for i in range(8)]
    groups.insert(
        4, with_owner(99, ACTION_CREATE, RecordSet("x.example.net.", "A", ttl=60, values=("192.0.2.1",)))
    )
    provider = make_provider(moto_service.url)

    result = provider.apply(zone_id, groups)
    # moto applied the groups before the bad one although it rejected the request; the provider finds them
    # in effect when it resends them and counts them applied instead of failing them
    assert list(result.failed) == [99]
    assert sorted(result.applied) == list(range(8))
    assert_zone_is(
        route53, zone_id, apply_changes([], [c for g in groups if g.index != 99 for c in g.changes])
    )


def test_a_group_too_large_for_one_request_is_failed_without_being_sent(
    route53: Any, moto_service: Any, make_provider: Any
) -> None:
    zone_id = new_zone(route53)
    big = a("big", *(f"10.1.{i // 250}.{i % 250}" for i in range(600)))
    groups = [with_owner(0, ACTION_UPSERT, big), with_owner(1, ACTION_CREATE, a("small"))]
    provider = make_provider(moto_service.url)

    result = provider.apply(zone_id, groups)
    assert result.applied == [1]
    assert "too large for one Route53 request" in result.failed[0]
    assert "1,202 resource records" in result.failed[0]
    assert provider.calls["ChangeResourceRecordSets"] == 1
    assert {rs.name for rs in zone_records(route53, zone_id)} == {f"small.{ZONE}", f"a-small.{ZONE}"}


def test_more_than_1000_records_go_in_several_requests(
    route53: Any, moto_service: Any, make_provider: Any
) -> None:
    zone_id = new_zone(route53)
    # moto enforces the 1,000-record limit: one request of 1,500 records would be refused whole
    groups = [
        ChangeGroupInput(i, (Change(ACTION_CREATE, a(f"h{i}", f"10.2.{i // 250}.{i % 250}")),))
        for i in range(1500)
    ]
    provider = make_provider(moto_service.url)

    result = provider.apply(zone_id, groups)
    assert result.complete and len(result.applied) == 1500
    assert provider.calls["ChangeResourceRecordSets"] == 2
    assert len(zone_records(route53, zone_id)) == 1500


def test_value_characters_over_32000_go_in_several_requests(
    route53: Any, moto_service: Any, fault_proxy: FaultProxy, make_provider: Any
) -> None:
    zone_id = new_zone(route53)
    # moto would accept all 200 x 252 characters in one request; Route53 would not, so neither do we
    groups = [
        ChangeGroupInput(
            i,
            (
                Change(
                    ACTION_CREATE, RecordSet(f"t{i}.{ZONE}", "TXT", ttl=60, values=(txt_encode("v" * 250),))
                ),
            ),
        )
        for i in range(200)
    ]
    result = make_provider(fault_proxy.url).apply(zone_id, groups)
    assert result.complete
    assert fault_proxy.forwarded["ChangeResourceRecordSets"] == 2
    assert len(zone_records(route53, zone_id)) == 200


# --- retries and exactly once -------------------------------------------------------------------------------


def test_throttling_is_retried_with_full_jitter_backoff(
    route53: Any, moto_service: Any, fault_proxy: FaultProxy, make_provider: Any
) -> None:
    zone_id = new_zone(route53)
    sleeps: list[float] = []
    provider = make_provider(fault_proxy.url, sleep=sleeps.append, backoff_base=0.2, backoff_cap=0.3)
    fault_proxy.inject("ChangeResourceRecordSets", THROTTLE, THROTTLE, THROTTLE)

    result = provider.apply(zone_id, [with_owner(0, ACTION_CREATE, a("www"))])
    assert result.complete
    assert provider.calls["ChangeResourceRecordSets"] == 4
    assert provider.errors["Throttling"] == 3
    assert result.calls == 5  # 4 ChangeResourceRecordSets + 1 GetChange
    # full jitter: uniform(0, min(cap, base * 2^(attempt-1))) -> at most 0.2, 0.3 (capped), 0.3
    assert len(sleeps) == 3
    assert 0 <= sleeps[0] <= 0.2 and 0 <= sleeps[1] <= 0.3 and 0 <= sleeps[2] <= 0.3
    assert fault_proxy.forwarded["ChangeResourceRecordSets"] == 1  # throttled requests never reached moto


def test_retries_used_up_raise_a_retryable_error_naming_operation_and_code(
    fault_proxy: FaultProxy, make_provider: Any, caplog: pytest.LogCaptureFixture
) -> None:
    fault_proxy.throttle_share = 1.0
    provider = make_provider(fault_proxy.url, max_attempts=3)
    with pytest.raises(ProviderError) as info:
        provider.list_zones()
    err = info.value
    assert err.retryable
    assert "ListHostedZones" in err.user_message and "Throttling" in err.user_message
    assert "3 attempts" in err.user_message
    assert provider.calls["ListHostedZones"] == 3
    assert SECRET not in err.user_message and SECRET not in caplog.text
    assert "Throttling" in caplog.text  # each retry is logged


def test_an_error_names_the_operation_zone_and_aws_code_never_a_secret(
    moto_service: Any, route53: Any, make_provider: Any, caplog: pytest.LogCaptureFixture
) -> None:
    provider = make_provider(moto_service.url)
    with pytest.raises(ProviderError) as info:
        provider.nameservers("/hostedzone/ZNOSUCHZONE")
    msg = info.value.user_message
    assert "GetHostedZone" in msg and "ZNOSUCHZONE" in msg and "NoSuchHostedZone" in msg
    assert not info.value.retryable
    assert SECRET not in msg and STATIC["access_key_id"] not in msg
    assert SECRET not in repr(provider) and SECRET not in caplog.text


def test_apply_waits_for_insync_polling_get_change(
    route53: Any, moto_service: Any, fault_proxy: FaultProxy, make_provider: Any
) -> None:
    zone_id = new_zone(route53)
    sleeps: list[float] = []
    provider = make_provider(fault_proxy.url, sleep=sleeps.append, insync_poll_interval=0.5)
    fault_proxy.inject("GetChange", PENDING, PENDING)

    result = provider.apply(zone_id, [with_owner(0, ACTION_CREATE, a("www"))])
    assert result.complete
    assert provider.calls["GetChange"] == 3 and result.calls == 4
    assert sleeps == [0.5, 0.5]


def test_a_change_still_pending_at_the_deadline_is_a_retryable_error_that_says_it_was_applied(
    route53: Any, moto_service: Any, fault_proxy: FaultProxy, make_provider: Any
) -> None:
    zone_id = new_zone(route53)
    provider = make_provider(
        fault_proxy.url, sleep=lambda s: None, insync_poll_interval=0.01, insync_timeout=0.0
    )
    fault_proxy.inject("GetChange", PENDING)

    with pytest.raises(ProviderError, match="still PENDING") as info:
        provider.apply(zone_id, [with_owner(7, ACTION_CREATE, a("www"))])
    assert info.value.retryable and info.value.applied == [7]


def test_a_change_applied_but_answered_with_500_is_not_applied_again(
    route53: Any, moto_service: Any, fault_proxy: FaultProxy, make_provider: Any
) -> None:
    zone_id = new_zone(route53)
    provider = make_provider(fault_proxy.url)
    first = [with_owner(i, ACTION_CREATE, a(f"h{i}")) for i in range(6)]
    assert provider.apply(zone_id, first).complete
    state = apply_changes([], [c for g in first for c in g.changes])
    fault_proxy.reset_counters()

    # moto applies the request, the client sees a 500: the provider must find it in effect, not resend it
    fault_proxy.inject("ChangeResourceRecordSets", AFTER_FORWARD)
    second = [
        with_owner(10, ACTION_DELETE, a("h0")),
        with_owner(11, ACTION_UPSERT, a("h1", "192.0.2.99")),
        with_owner(12, ACTION_CREATE, a("new")),
    ]
    result = provider.apply(zone_id, second)
    assert result.complete and result.applied == [10, 11, 12]
    assert fault_proxy.forwarded["ChangeResourceRecordSets"] == 1  # nothing left to resend
    assert set(Counter(fault_proxy.accepted_changes()).values()) == {1}
    assert provider.errors["InternalError"] == 1
    assert_zone_is(route53, zone_id, apply_changes(state, [c for g in second for c in g.changes]))


def test_a_500_before_the_change_reached_route53_resends_it_once(
    route53: Any, moto_service: Any, fault_proxy: FaultProxy, make_provider: Any
) -> None:
    zone_id = new_zone(route53)
    provider = make_provider(fault_proxy.url)
    fault_proxy.inject("ChangeResourceRecordSets", ERROR)
    groups = [with_owner(i, ACTION_CREATE, a(f"h{i}")) for i in range(4)]

    result = provider.apply(zone_id, groups)
    assert result.complete
    assert fault_proxy.forwarded["ChangeResourceRecordSets"] == 1
    assert provider.calls["ChangeResourceRecordSets"] == 2
    assert provider.calls["ListResourceRecordSets"] >= 1  # it looked before resending
    assert_zone_is(route53, zone_id, apply_changes([], [c for g in groups for c in g.changes]))


def test_reading_back_names_after_an_ambiguous_failure_matches_a_full_read(
    route53: Any, moto_service: Any, make_provider: Any
) -> None:
    zone_id = new_zone(route53)
    records = [a(f"h{i:04d}", f"10.6.{i // 250}.{i % 250}", ttl=60) for i in range(700)]
    records += [owner_txt(rs) for rs in records[290:310]]  # names with two types around a page boundary
    changes = [Change(ACTION_CREATE, rs).to_route53() for rs in records]
    for k in range(0, len(changes), 400):
        route53.change_resource_record_sets(
            HostedZoneId=zone_id, ChangeBatch={"Changes": changes[k : k + 400]}
        )
    provider = make_provider(moto_service.url)
    full: dict[str, list[RecordSet]] = {}
    for item in provider.list_record_sets(zone_id):
        rs = recordset_from_route53(item)
        full.setdefault(rs.name, []).append(rs)
    provider.calls.clear()

    names = [f"h{i:04d}.{ZONE}" for i in (5, 6, 7, 299, 300, 301, 698)] + [f"absent.{ZONE}"]
    got = provider._read_names(zone_id, names)  # the read the provider makes before resending a request
    assert got == {n: full.get(n, []) for n in sorted(names)}
    assert got[f"absent.{ZONE}"] == []
    # neighbours share a page: fewer requests than names
    assert provider.calls["ListResourceRecordSets"] < len(names)


ROUNDS = 7  # create a zone, five reconciles of small changes, delete everything


def plan_round(current: Sequence[RecordSet], round_no: int, rng: random.Random) -> list[ChangeGroupInput]:
    """The change groups of one reconcile of the convergence test, in the plan engine's apply order."""
    records = sorted((rs for rs in current if rs.type != "TXT"), key=lambda r: r.key)
    groups: list[ChangeGroupInput] = []
    index = round_no * 10_000
    if round_no == 0:
        # 600 records with their ownership TXTs: three requests under the 1,000-record/32,000-character limits
        for i in range(580):
            groups.append(
                with_owner(index + i, ACTION_CREATE, a(f"svc{i}", f"10.3.{i // 250}.{i % 250}", "192.0.2.1"))
            )
        for k in range(20):
            # set identifiers unique in the zone: moto deletes routed record sets by identifier zone-wide
            shop = a(f"shop{k // 2}", f"198.51.100.{k}", sid=f"w{k}", routing=Routing(weight=k))
            groups.append(with_owner(index + 600 + k, ACTION_CREATE, shop))
    elif round_no == ROUNDS - 1:
        groups = [with_owner(index + n, ACTION_DELETE, rs) for n, rs in enumerate(records)]
    else:
        picked = rng.sample(records, 27)
        for n, rs in enumerate(picked[:15]):
            # new targets and TTL; the ownership TXT stays as it is (the plan only upserts what changes)
            moved = RecordSet(rs.name, rs.type, rs.set_identifier, 60, (f"10.{round_no}.0.{n}",), rs.routing)
            groups.append(ChangeGroupInput(index + n, (Change(ACTION_UPSERT, moved),)))
        for n, rs in enumerate(picked[15:23]):
            groups.append(with_owner(index + 100 + n, ACTION_DELETE, rs))
        for n, rs in enumerate(picked[23:]):
            if rs.type == "A" and not rs.set_identifier:
                cname = RecordSet(rs.name, "CNAME", ttl=60, values=(f"target{round_no}-{n}.example.net.",))
                groups.append(replace_group(index + 200 + n, rs, cname))
        for n in range(12):
            groups.append(
                with_owner(index + 300 + n, ACTION_CREATE, a(f"r{round_no}-new{n}", f"10.5.{round_no}.{n}"))
            )
    # the plan engine's apply order: deletes first, then updates, creates last
    phase = {ACTION_DELETE: 0, ACTION_UPSERT: 1, ACTION_CREATE: 2}
    return sorted(groups, key=lambda g: phase[g.changes[0].action])


def change_keys(changes: Iterable[Change]) -> Counter[tuple[str, str, str, str]]:
    return Counter((c.action, c.record.name, c.record.type, c.record.set_identifier) for c in changes)


@pytest.mark.parametrize("seed", [11, 29, 47])
def test_a_zone_converges_through_throttling_and_500s_with_every_change_applied_once(
    route53: Any, moto_service: Any, fault_proxy: FaultProxy, make_provider: Any, seed: int
) -> None:
    zone_id = new_zone(route53)
    rate, burst = 100.0, 10
    provider = make_provider(fault_proxy.url, rate=rate, burst=burst, max_attempts=12)
    fault_proxy.seed(seed)
    fault_proxy.throttle_share = 0.30
    fault_proxy.error_share = 0.05
    fault_proxy.error_after_forward_share = 0.05
    rng = random.Random(seed)  # noqa: S311 - test data

    state: list[RecordSet] = []
    for round_no in range(ROUNDS):
        groups = plan_round(state, round_no, rng)
        expected = apply_changes(state, [c for g in groups for c in g.changes])
        fault_proxy.accepted_change_bodies.clear()
        if round_no in (0, ROUNDS - 1):
            # whatever the draw, the first request of the big rounds is applied but answered with a 500
            fault_proxy.inject("ChangeResourceRecordSets", AFTER_FORWARD)
        result = provider.apply(zone_id, groups)

        assert result.failed == {}
        assert sorted(result.applied) == sorted(g.index for g in groups)
        assert_zone_is(route53, zone_id, expected)
        assert change_keys(c for g in groups for c in g.changes) == Counter(fault_proxy.accepted_changes()), (
            "every change accepted by Route53 exactly once"
        )
        state = expected
    assert state == []

    faults = fault_proxy.faults
    assert faults[THROTTLE] >= 5 and faults[ERROR] + faults[AFTER_FORWARD] >= 3
    # every request the provider made went through the proxy, once: botocore retried nothing on its own
    assert sum(provider.calls.values()) == sum(fault_proxy.requests.values())
    assert provider.errors["Throttling"] == faults[THROTTLE]
    assert_rate(fault_proxy.times(), rate=rate, burst=burst)


# --- credentials --------------------------------------------------------------------------------------------


@pytest.fixture
def default_chain(monkeypatch: pytest.MonkeyPatch) -> None:
    """A process default chain with keys in the environment (and no instance metadata lookups)."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIADEFAULTCHAIN0000")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "default-chain-secret")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.delenv("AWS_PROFILE", raising=False)


def test_a_role_is_assumed_once_and_its_credentials_reused(
    route53: Any, fault_proxy: FaultProxy, make_provider: Any, default_chain: None
) -> None:
    new_zone(route53)
    provider = make_provider(
        fault_proxy.url,
        credentials={
            "kind": "role",
            "role_arn": "arn:aws:iam::123456789012:role/dns",
            "external_id": "ext-1",
        },
        account_key="",
    )
    assert provider.account_key == "aws:123456789012"
    assert len(provider.list_zones()) == 1
    assert len(provider.list_zones()) == 1
    assert fault_proxy.requests["sts:AssumeRole"] == 1
    assert provider.calls["sts:AssumeRole"] == 1


def test_the_default_chain_is_used_for_kind_default(
    route53: Any, moto_service: Any, make_provider: Any, default_chain: None
) -> None:
    new_zone(route53)
    assert len(make_provider(moto_service.url, credentials={"kind": "default"}).list_zones()) == 1


@pytest.mark.parametrize(
    ("credentials", "message"),
    [
        ({"kind": "static", "access_key_id": "AKIA1", "secret_access_key": ""}, "need `secret_access_key`"),
        ({"kind": "role"}, "need `role_arn`"),
        ({"kind": "password", "secret_access_key": SECRET}, "is not one of static, role, default"),
    ],
)
def test_bad_credentials_are_refused_without_echoing_them(credentials: dict[str, str], message: str) -> None:
    with pytest.raises(ProviderError, match=message) as info:
        Route53Provider(credentials, endpoint_url="http://127.0.0.1:9")
    assert SECRET not in info.value.user_message


# --- the shared rate limiter --------------------------------------------------------------------------------


def _acquire_for(url: str, key: str, seconds: float, rate: float, burst: int, out: Any) -> None:
    client = redis.Redis.from_url(url)
    bucket = RedisTokenBucket(client, rate=rate, burst=burst)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        bucket.acquire(key)
        out.append(time.monotonic())
    client.close()


def test_two_threads_sharing_the_redis_bucket_never_exceed_the_rate(redis_service: Any) -> None:
    rate, burst, seconds = 20.0, 5, 2.0
    stamps: list[float] = []
    lock = threading.Lock()

    class Sink:
        def append(self, t: float) -> None:
            with lock:
                stamps.append(t)

    threads = [
        threading.Thread(
            target=_acquire_for, args=(redis_service.url, "acct-threads", seconds, rate, burst, Sink())
        )
        for _ in range(2)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=seconds + 5)
    assert_rate(stamps, rate=rate, burst=burst)
    # and the bucket is actually used: close to burst + rate * seconds grants in total
    assert expected_max_requests(seconds, rate=rate, burst=burst) - 3 <= len(stamps)
    assert len(stamps) <= expected_max_requests(seconds + 0.1, rate=rate, burst=burst)


def test_two_processes_sharing_the_redis_bucket_never_exceed_the_rate(redis_service: Any) -> None:
    rate, burst, seconds = 20.0, 5, 2.0
    ctx = multiprocessing.get_context("fork")
    with ctx.Manager() as manager:
        stamps = manager.list()
        procs = [
            ctx.Process(
                target=_acquire_for, args=(redis_service.url, "acct-procs", seconds, rate, burst, stamps)
            )
            for _ in range(2)
        ]
        for p in procs:
            p.start()
        for p in procs:
            p.join(timeout=seconds + 10)
        assert all(p.exitcode == 0 for p in procs)
        times = list(stamps)
    assert_rate(times, rate=rate, burst=burst)
    assert len(times) >= expected_max_requests(seconds, rate=rate, burst=burst) - 3


def test_a_wait_longer_than_max_wait_is_refused_and_costs_no_token(redis_client: redis.Redis) -> None:
    bucket = RedisTokenBucket(redis_client, rate=2.0, burst=1, max_wait=0.2)
    assert bucket.acquire("acct") == 0
    with pytest.raises(ProviderError, match="would wait") as info:
        bucket.acquire("acct")  # the next token is 0.5 s away
    assert info.value.retryable
    # the refused reservation took nothing: the next token is still the one due 0.5 s after the first
    # (had it been taken, the next would be due after 1 s)
    patient = RedisTokenBucket(redis_client, rate=2.0, burst=1, max_wait=5.0, sleep=lambda s: None)
    assert 0.3 < patient.acquire("acct") <= 0.5


def test_the_in_process_bucket_reserves_tokens_in_turn() -> None:
    now = [100.0]
    slept: list[float] = []

    def sleep(s: float) -> None:
        slept.append(s)

    bucket = LocalTokenBucket(rate=10.0, burst=2, sleep=sleep, clock=lambda: now[0])
    waits = [bucket.acquire("k") for _ in range(5)]
    assert waits == pytest.approx([0, 0, 0.1, 0.2, 0.3])
    now[0] += 1.0  # refills to the burst, not beyond
    assert [bucket.acquire("k") for _ in range(3)] == pytest.approx([0, 0, 0.1])
    assert bucket.acquire("other") == 0  # one bucket per account
