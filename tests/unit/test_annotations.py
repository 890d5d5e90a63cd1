"""clusters.annotations: ExternalDNS annotations under both prefixes, Go durations, names and aws-* checks."""

from __future__ import annotations

import pytest

from clusters.annotations import (
    ALPHA_PREFIX,
    GA_PREFIX,
    annotation_prefix,
    check_dns_name,
    controller_annotation,
    describe_object,
    external_dns_annotations,
    parse_annotations,
    parse_targets,
    split_hostnames,
)
from clusters.go_values import parse_go_duration, parse_ttl_seconds

A, G = ALPHA_PREFIX, GA_PREFIX
S = 10**9


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        ("0", 0),
        ("10m", 600 * S),
        ("1h30m", 5400 * S),
        ("2h45m30.5s", (2 * 3600 + 45 * 60 + 30) * S + S // 2),
        ("1.5s", 3 * S // 2),
        (".5s", S // 2),
        ("1.s", S),
        ("500ms", S // 2),
        ("1us", 1000),
        ("1\u00b5s", 1000),
        ("1\u03bcs", 1000),
        ("7ns", 7),
        ("-2s", -2 * S),
        ("+3m", 180 * S),
    ],
)
def test_go_duration_reads_like_time_parse_duration(text: str, ns: int) -> None:
    assert parse_go_duration(text) == ns


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "invalid duration"),
        ("abc", "invalid duration"),
        ("10", "missing unit"),
        ("1x", "unknown unit"),
        (".s", "invalid duration"),
        ("1d", "unknown unit"),
        ("-", "invalid duration"),
        ("9999999999h", "overflow"),
    ],
)
def test_go_duration_refuses_what_go_refuses(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        parse_go_duration(text)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("600", 600),
        ("+600", 600),
        ("10m", 600),
        ("1.9s", 1),
        ("-5", -5),
        ("0", 0),
        ("99999999999", 99999999999),
    ],
)
def test_ttl_tries_a_duration_then_an_integer(text: str, seconds: int) -> None:
    assert parse_ttl_seconds(text) == seconds


@pytest.mark.parametrize("text", ["abc", "1e3", " 60", "60 s", "6_0"])
def test_ttl_that_reads_as_neither_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="is not a TTL"):
        parse_ttl_seconds(text)


def test_hostname_annotation_split_strips_spaces_dots_and_empties() -> None:
    assert split_hostnames(" a.example.com., b.example.com ,, c . example.com,") == [
        "a.example.com",
        "b.example.com",
        "c.example.com",
    ]


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("web.example.com", None),
        ("*.example.com", None),
        ("_web._tcp.example.com", None),
        ("a.*.example.com", "is not a DNS name"),
        ("", "empty"),
        ("a..example.com", "empty label"),
        ("a" * 63 + ".example.com", None),
        ("a" * 64 + ".example.com", "64 characters long"),
        (".".join(["abcdefgh"] * 29), "at most 253"),
        ("web example.com", "is not a DNS name"),
        ("wéb.example.com", "is not a DNS name"),
    ],
)
def test_dns_name_check(name: str, reason: str | None) -> None:
    got = check_dns_name(name)
    assert (got is None) if reason is None else (got is not None and reason in got)


def test_ga_prefix_wins_and_a_differing_alpha_value_is_reported() -> None:
    found, shadowed = external_dns_annotations(
        {A + "ttl": "60", G + "ttl": "120", A + "hostname": "x.example.com"}
    )
    assert (found["ttl"].key, found["ttl"].value) == (G + "ttl", "120")
    assert found["hostname"].key == A + "hostname"
    assert len(shadowed) == 1 and shadowed[0].annotation == A + "ttl"


def test_the_same_value_under_both_prefixes_is_no_warning() -> None:
    pa = parse_annotations(
        {A + "hostname": "x.example.com", G + "hostname": "x.example.com"}, what="Service `a/b`"
    )
    assert pa.hostnames == ("x.example.com",) and pa.warnings == () and pa.prefix == G


def test_annotation_prefix_tells_write_back_which_prefix_an_object_uses() -> None:
    assert annotation_prefix({A + "hostname": "x"}) == A
    assert annotation_prefix({A + "hostname": "x", G + "ttl": "60"}) == G
    assert annotation_prefix({"kubernetes.io/ingress.class": "nginx"}) == ""


def test_controller_annotation_reads_either_prefix() -> None:
    assert controller_annotation({}) is None
    got = controller_annotation({A + "controller": "kops", G + "controller": "dns-controller"})
    assert got is not None and (got.key, got.value) == (G + "controller", "dns-controller")


def test_describe_object() -> None:
    assert describe_object("Service", "shop", "web") == "Service `shop/web`"
    assert describe_object("Ingress", "shop", "web", "eks-eu1") == "Ingress `shop/web` in cluster `eks-eu1`"


WHAT = "Service `shop/web`"


@pytest.mark.parametrize(
    ("annotations", "error"),
    [
        ({A + "aws-weight": "-1"}, "`-1` is not an integer from 0 to 255"),
        ({A + "aws-weight": "300"}, "`300` is not an integer from 0 to 255"),
        ({A + "aws-failover": "primary"}, "`primary` is not PRIMARY or SECONDARY"),
        ({A + "aws-failover": "TERTIARY"}, "`TERTIARY` is not PRIMARY or SECONDARY"),
        ({A + "aws-geolocation-country-code": "de"}, "`de` is not an ISO 3166 country code"),
        ({A + "aws-geolocation-country-code": "XX"}, "`XX` is not an ISO 3166 country code"),
        (
            {A + "aws-geolocation-subdivision-code": "TOOLONG", A + "aws-geolocation-country-code": "US"},
            "TOOLONG",
        ),
        ({A + "aws-geoproximity-bias": "100"}, "`100` is not an integer from -99 to 99"),
        ({A + "aws-geoproximity-coordinates": "49.45"}, "is not `latitude,longitude`"),
        ({A + "aws-geoproximity-coordinates": "49.456,8.1"}, "at most two decimals"),
        ({A + "aws-geoproximity-region": "mars-1"}, "`mars-1` is not an AWS region"),
        ({A + "aws-health-check-id": "hc-123"}, "is not a Route53 health check id"),
        ({A + "set-identifier": "x" * 129}, "129 characters long; Route53 allows 128"),
    ],
)
def test_malformed_values_are_errors_naming_the_annotation(annotations: dict[str, str], error: str) -> None:
    pa = parse_annotations(annotations, what=WHAT)
    assert len(pa.errors) == 1, pa.errors
    err = pa.errors[0]
    assert err.annotation in annotations and err.value == annotations[err.annotation]
    assert err.message.startswith(f"annotation `{err.annotation}` on {WHAT}: ")
    assert error in err.message


@pytest.mark.parametrize(
    ("annotations", "published", "warning"),
    [
        # aws.go newChange: "Failed parsing value of aws/weight ...; using weight of 0"
        ({A + "aws-weight": "heavy"}, ("aws/weight", "0"), "published with weight 0"),
        ({A + "aws-weight": "1.5"}, ("aws/weight", "0"), "published with weight 0"),
        ({A + "aws-weight": ""}, ("aws/weight", "0"), "published with weight 0"),
        ({A + "aws-geoproximity-bias": "far"}, ("aws/geoproximity-bias", "0"), "published with bias 0"),
        # GetBoolProviderSpecificProperty: anything but "true" is false
        ({A + "aws-evaluate-target-health": "yes"}, ("aws/evaluate-target-health", "false"), "read as false"),
        (
            {A + "aws-evaluate-target-health": "TRUE"},
            ("aws/evaluate-target-health", "false"),
            "read as false",
        ),
    ],
)
def test_a_value_external_dns_replaces_with_a_default_publishes_the_default_with_a_warning(
    annotations: dict[str, str], published: tuple[str, str], warning: str
) -> None:
    pa = parse_annotations({A + "set-identifier": "blue", **annotations}, what=WHAT)
    assert pa.errors == ()
    assert published in pa.provider_specific
    [w] = [w for w in pa.warnings if warning in w.message]
    [key] = annotations
    assert w.annotation == key and w.value == annotations[key] and w.message.startswith(f"annotation `{key}`")


@pytest.mark.parametrize(("value", "number"), [("+5", "5"), ("007", "7"), ("255", "255"), ("0", "0")])
def test_a_weight_is_read_as_go_parses_it(value: str, number: str) -> None:
    pa = parse_annotations({A + "set-identifier": "blue", A + "aws-weight": value}, what=WHAT)
    assert pa.errors == () and pa.warnings == ()
    assert ("aws/weight", number) in pa.provider_specific


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [("access", "Public", "public or private"), ("endpoints-type", "PodIP", "NodeExternalIP or HostIP")],
)
def test_an_unknown_access_or_endpoints_type_reads_as_no_annotation_with_a_warning(
    key: str, value: str, expected: str
) -> None:
    pa = parse_annotations({A + "hostname": "x.example.com", A + key: value}, what=WHAT)
    assert pa.errors == () and pa.access == "" and pa.endpoints_type == ""
    [w] = pa.warnings
    assert w.annotation == A + key and f"is not {expected}; read as no annotation" in w.message


def test_a_hostname_that_cannot_be_a_record_name_is_skipped_and_the_others_publish() -> None:
    long = "l" * 64
    pa = parse_annotations(
        {A + "hostname": f"ok.example.com,{long}.example.com,bad_host!.example.com"}, what=WHAT
    )
    assert pa.errors == () and pa.hostnames == ("ok.example.com",)
    assert len(pa.warnings) == 2
    assert all("that name is not published, the others are" in w.message for w in pa.warnings)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("3000000000", "a TTL is from 1 to 2147483647 seconds"),
        ("-5", "a TTL is from 1"),
        ("abc", "is not a TTL"),
    ],
)
def test_a_malformed_ttl_is_a_warning_and_the_ttl_stays_unset_as_in_external_dns(
    value: str, reason: str
) -> None:
    pa = parse_annotations({A + "hostname": "x.example.com", A + "ttl": value}, what=WHAT)
    assert pa.errors == () and pa.ttl == 0 and pa.hostnames == ("x.example.com",)
    [warning] = pa.warnings
    assert warning.annotation == A + "ttl" and warning.value == value
    assert reason in warning.message and "published with the zone's default TTL" in warning.message


def test_well_formed_routing_annotations_become_sorted_properties() -> None:
    pa = parse_annotations(
        {
            G + "set-identifier": "eu",
            G + "aws-geoproximity-coordinates": "49.45,-8.1",
            G + "aws-geoproximity-bias": "-20",
            G + "aws-target-hosted-zone": "Z2FDTNDATAQYW2",
            G + "alias": "true",
        },
        what=WHAT,
    )
    assert pa.errors == ()
    assert pa.set_identifier == "eu"
    assert pa.provider_specific == (
        ("alias", "true"),
        ("aws/geoproximity-bias", "-20"),
        ("aws/geoproximity-coordinates", "49.45,-8.1"),
        ("aws/target-hosted-zone", "Z2FDTNDATAQYW2"),
    )


def test_alias_values_other_than_true_set_nothing_and_warn() -> None:
    pa = parse_annotations({A + "alias": "A"}, what=WHAT)
    assert pa.provider_specific == () and "only `true` makes an alias" in pa.warnings[0].message


def test_other_providers_annotations_are_known_and_dropped_for_route53() -> None:
    pa = parse_annotations(
        {A + "cloudflare-proxied": "true", A + "scw-foo": "x", A + "record-type": "ptr"}, what=WHAT
    )
    assert pa.provider_specific == () and pa.warnings == () and pa.errors == ()


def test_pod_target_annotation() -> None:
    assert parse_targets({G + "target": "203.0.113.5,Edge.Example.NET."}, what="Pod `a/b`") == (
        ("203.0.113.5", "edge.example.net"),
        [],
    )
    targets, problems = parse_targets({A + "target": "1.2.3.4.5.6"}, what="Pod `a/b`")
    assert targets == () or problems == []  # a dotted host name of digits is still a host name
    _, problems = parse_targets({A + "target": "a..b"}, what="Pod `a/b`")
    assert "empty label" in problems[0].message
