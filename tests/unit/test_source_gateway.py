"""clusters.source_gateway: a route, its parent Gateways and the Namespaces in; ExternalDNS's endpoints out.

Each case is a route, the Gateways (and Namespace labels) of its cluster and the source options; expected
endpoints are `name TYPE target,target` strings (order-free) or the words of the skip reason.
Facts: external-dns v0.21.0 source/gateway.go and gateway_*route.go.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from clusters.source_gateway import (
    GatewayIndex,
    gateway_routes,
    label_selector,
    matching_host,
    route_endpoints,
)
from clusters.source_options import SourceOptions
from clusters.sources import compute_all, read_kinds

A = "external-dns.alpha.kubernetes.io/"
GROUP = "gateway.networking.k8s.io"


def listener(
    name: str = "http",
    protocol: str = "HTTP",
    port: int = 80,
    hostname: str | None = None,
    origin: str | None = "All",
    selector: dict[str, Any] | None = None,
    kinds: list[dict[str, str]] | None = None,
) -> dict[str, Any]:
    lis: dict[str, Any] = {"name": name, "protocol": protocol, "port": port}
    if hostname is not None:
        lis["hostname"] = hostname
    allowed: dict[str, Any] = {}
    if origin is not None:
        allowed["namespaces"] = {"from": origin}
        if selector is not None:
            allowed["namespaces"]["selector"] = selector
    if kinds is not None:
        allowed["kinds"] = kinds
    if allowed:
        lis["allowedRoutes"] = allowed
    return lis


def gateway(
    name: str = "gw",
    ns: str = "infra",
    listeners: list[dict[str, Any]] | None = None,
    addresses: tuple[str, ...] = ("203.0.113.7",),
    ann: dict[str, str] | None = None,
    labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/v1",
        "kind": "Gateway",
        "metadata": {"name": name, "namespace": ns, "annotations": ann or {}, "labels": labels or {}},
        "spec": {"gatewayClassName": "test", "listeners": listeners or [listener()]},
        "status": {"addresses": [{"type": "IPAddress", "value": a} for a in addresses]},
    }


def route(
    kind: str = "HTTPRoute",
    hostnames: tuple[str, ...] = ("shop.example.com",),
    parents: tuple[dict[str, Any], ...] = ({"name": "gw", "namespace": "infra"},),
    accepted: tuple[str, ...] | None = None,
    ns: str = "shop",
    ann: dict[str, str] | None = None,
    labels: dict[str, str] | None = None,
    status_parents: tuple[dict[str, Any], ...] | None = None,
) -> dict[str, Any]:
    """A route whose status accepts each parent (`accepted` gives each parent's Accepted status)."""
    accepted = accepted or tuple("True" for _ in parents)
    version = "v1" if kind in ("HTTPRoute", "GRPCRoute") else "v1alpha2"
    spec: dict[str, Any] = {"parentRefs": list(parents)}
    if hostnames:
        spec["hostnames"] = list(hostnames)
    return {
        "apiVersion": f"{GROUP}/{version}",
        "kind": kind,
        "metadata": {"name": "web", "namespace": ns, "annotations": ann or {}, "labels": labels or {}},
        "spec": spec,
        "status": {
            "parents": list(
                status_parents
                if status_parents is not None
                else (
                    {
                        "parentRef": p,
                        "controllerName": "example.com/gw",
                        "conditions": [{"type": "Accepted", "status": s}],
                    }
                    for p, s in zip(parents, accepted, strict=True)
                )
            )
        },
    }


@dataclass
class Case:
    id: str
    route: dict[str, Any]
    gateways: list[dict[str, Any]] = field(default_factory=lambda: [gateway()])
    options: dict[str, Any] = field(default_factory=dict)
    want: set[str] = field(default_factory=set)
    skipped: str = ""  # words the skip reason contains when nothing publishes
    namespaces: dict[str, dict[str, str]] = field(default_factory=dict)


def run(case: Case):
    index = GatewayIndex(
        {(g["metadata"]["namespace"], g["metadata"]["name"]): g for g in case.gateways}, case.namespaces
    )
    return route_endpoints(case.route, index, SourceOptions.from_mapping(case.options))


def shown(result) -> set[str]:
    return {f"{e.dns_name} {e.record_type} {','.join(e.targets)}" for e in result.endpoints}


SHOP = "shop.example.com A 203.0.113.7"

HTTPROUTE_CASES = [
    Case(
        "hostname under a wildcard listener",
        route(),
        [gateway(listeners=[listener(hostname="*.example.com")])],
        want={SHOP},
    ),
    Case("listener without hostname takes the route's", route(), want={SHOP}),
    Case(
        "route without hostnames takes the listener's",
        route(hostnames=()),
        [gateway(listeners=[listener(hostname="api.example.com")])],
        want={"api.example.com A 203.0.113.7"},
    ),
    Case("neither has a hostname: nothing", route(hostnames=()), skipped="no listener"),
    Case(
        "hostname outside the listener's",
        route(hostnames=("shop.other.org",)),
        [gateway(listeners=[listener(hostname="*.example.com")])],
        skipped="no listener",
    ),
    Case(
        "wildcard route under a specific listener takes the listener's name",
        route(hostnames=("*.example.com",)),
        [gateway(listeners=[listener(hostname="api.example.com")])],
        want={"api.example.com A 203.0.113.7"},
    ),
    Case(
        "wildcard does not cover the apex",
        route(hostnames=("example.com",)),
        [gateway(listeners=[listener(hostname="*.example.com")])],
        skipped="no listener",
    ),
    Case("not accepted by the parent", route(accepted=("False",)), skipped="not accepted"),
    Case(
        "status without the parent declared in spec",
        route(
            parents=({"name": "gw", "namespace": "infra"},),
            status_parents=(
                {
                    "parentRef": {"name": "other", "namespace": "infra"},
                    "conditions": [{"type": "Accepted", "status": "True"}],
                },
            ),
        ),
        skipped="not in spec.parentRefs",
    ),
    Case(
        "parent in the route's namespace by default",
        route(parents=({"name": "gw"},), ns="infra"),
        want={SHOP},
    ),
    Case(
        "cross-namespace parent refused by allowedRoutes Same",
        route(),
        [gateway(listeners=[listener(origin="Same")])],
        skipped="no listener",
    ),
    Case(
        "cross-namespace parent allowed by a namespace selector",
        route(),
        [gateway(listeners=[listener(origin="Selector", selector={"matchLabels": {"team": "shop"}})])],
        want={SHOP},
        namespaces={"shop": {"team": "shop"}},
    ),
    Case(
        "namespace selector that does not match",
        route(),
        [
            gateway(
                listeners=[
                    listener(
                        origin="Selector",
                        selector={"matchExpressions": [{"key": "team", "operator": "In", "values": ["ops"]}]},
                    )
                ]
            )
        ],
        skipped="no listener",
        namespaces={"shop": {"team": "shop"}},
    ),
    Case(
        "allowedRoutes kinds without HTTPRoute",
        route(),
        [gateway(listeners=[listener(kinds=[{"kind": "GRPCRoute"}])])],
        skipped="no listener",
    ),
    Case(
        "allowedRoutes kinds with HTTPRoute",
        route(),
        [gateway(listeners=[listener(kinds=[{"group": GROUP, "kind": "HTTPRoute"}])])],
        want={SHOP},
    ),
    Case(
        "HTTPS listener serves an HTTPRoute",
        route(),
        [gateway(listeners=[listener(protocol="HTTPS", port=443)])],
        want={SHOP},
    ),
    Case(
        "TCP listener does not serve an HTTPRoute",
        route(),
        [gateway(listeners=[listener(protocol="TCP")])],
        skipped="no listener",
    ),
    Case(
        "sectionName picks one listener",
        route(parents=({"name": "gw", "namespace": "infra", "sectionName": "b"},)),
        [gateway(listeners=[listener("a", hostname="*.example.com"), listener("b", hostname="*.other.org")])],
        skipped="no listener",
    ),
    Case(
        "port in the parentRef must match the listener's",
        route(parents=({"name": "gw", "namespace": "infra", "port": 8080},)),
        skipped="no listener",
    ),
    Case(
        "target annotation on the Gateway overrides its addresses",
        route(),
        [gateway(ann={A + "target": "lb.example.net"})],
        want={"shop.example.com CNAME lb.example.net"},
    ),
    Case(
        "IPv6 and IPv4 addresses give A and AAAA",
        route(),
        [gateway(addresses=("203.0.113.7", "2001:db8::1"))],
        want={SHOP, "shop.example.com AAAA 2001:db8::1"},
    ),
    Case(
        "two parents' addresses merge, sorted and unique",
        route(parents=({"name": "gw", "namespace": "infra"}, {"name": "gw2", "namespace": "infra"})),
        [gateway(), gateway("gw2", addresses=("198.51.100.1", "203.0.113.7"))],
        want={"shop.example.com A 198.51.100.1,203.0.113.7"},
    ),
    Case(
        "hostname annotation adds a name",
        route(ann={A + "hostname": "extra.example.com"}),
        want={SHOP, "extra.example.com A 203.0.113.7"},
    ),
    Case(
        "gateway-hostname-source annotation-only",
        route(ann={A + "hostname": "extra.example.com", A + "gateway-hostname-source": "annotation-only"}),
        want={"extra.example.com A 203.0.113.7"},
    ),
    Case(
        "gateway-hostname-source defined-hosts-only",
        route(ann={A + "hostname": "extra.example.com", A + "gateway-hostname-source": "defined-hosts-only"}),
        want={SHOP},
    ),
    Case(
        "ignore-hostname-annotation",
        route(ann={A + "hostname": "extra.example.com"}),
        options={"ignore-hostname-annotation": True},
        want={SHOP},
    ),
    Case(
        "--gateway-name excludes other Gateways",
        route(),
        options={"gateway-name": "public"},
        skipped="gateway-name",
    ),
    Case(
        "--gateway-namespace excludes other namespaces",
        route(),
        options={"gateway-namespace": "edge"},
        skipped="gateway-name",
    ),
    Case(
        "--gateway-label-filter",
        route(),
        [gateway(labels={"expose": "public"})],
        options={"gateway-label-filter": "expose=public"},
        want={SHOP},
    ),
    Case(
        "--gateway-label-filter excludes",
        route(),
        [gateway(labels={"expose": "internal"})],
        options={"gateway-label-filter": "expose=public"},
        skipped="gateway-name",
    ),
    Case(
        "--label-filter on the route",
        route(labels={"dns": "no"}),
        options={"label-filter": "dns=yes"},
        skipped="label-filter",
    ),
    Case(
        "--annotation-filter on the route",
        route(),
        options={"annotation-filter": "publish=yes"},
        skipped="annotation-filter",
    ),
    Case(
        "controller annotation of another controller",
        route(ann={A + "controller": "other"}),
        skipped="another controller",
    ),
    Case("ttl annotation", route(ann={A + "ttl": "60"}), want={SHOP}),
    Case("domain-filter", route(), options={"domain-filter": ["other.org"]}, skipped="domain-filter"),
    Case("Gateway without addresses", route(), [gateway(addresses=())], skipped="no status.addresses"),
    Case(
        "fqdn-template when the route has no hostnames",
        route(hostnames=()),
        options={"fqdn-template": "{{.Name}}.example.com"},
        want={"web.example.com A 203.0.113.7"},
    ),
    Case("IP literal hostname never matches", route(hostnames=("203.0.113.9",)), skipped="no listener"),
    Case("upper-case hostname is lowered", route(hostnames=("Shop.Example.COM",)), want={SHOP}),
]


@pytest.mark.parametrize("case", HTTPROUTE_CASES, ids=lambda c: c.id)
def test_httproute(case: Case) -> None:
    result = run(case)
    assert result.ok, result.errors
    assert shown(result) == case.want
    if case.skipped:
        assert case.skipped in (result.skipped_reason or ""), result.skipped_reason
    else:
        assert result.skipped_reason is None


def test_httproute_ttl_and_resource_label() -> None:
    result = run(Case("", route(ann={A + "ttl": "60", A + "set-identifier": "eu"})))
    (ep,) = result.endpoints
    assert (ep.ttl, ep.set_identifier, ep.resource) == (60, "eu", "httproute/shop/web")


OTHER_CASES = [
    # GRPCRoute: protocol HTTPS, so HTTP and HTTPS listeners both serve it; hostnames like HTTPRoute
    Case(
        "grpc on an HTTPS listener",
        route("GRPCRoute"),
        [gateway(listeners=[listener(protocol="HTTPS", port=443)])],
        want={SHOP},
    ),
    Case("grpc on an HTTP listener", route("GRPCRoute"), want={SHOP}),
    Case(
        "grpc not on a TLS listener",
        route("GRPCRoute"),
        [gateway(listeners=[listener(protocol="TLS", port=443)])],
        skipped="no listener",
    ),
    Case(
        "grpc refused by allowedRoutes kinds HTTPRoute",
        route("GRPCRoute"),
        [gateway(listeners=[listener(kinds=[{"kind": "HTTPRoute"}])])],
        skipped="no listener",
    ),
    Case("grpc not accepted", route("GRPCRoute", accepted=("False",)), skipped="not accepted"),
    # TLSRoute: TLS listeners only; hostnames intersect
    Case(
        "tls on a TLS listener",
        route("TLSRoute"),
        [gateway(listeners=[listener(protocol="TLS", port=443, hostname="*.example.com")])],
        want={SHOP},
    ),
    Case(
        "tls not on an HTTPS listener",
        route("TLSRoute"),
        [gateway(listeners=[listener(protocol="HTTPS", port=443)])],
        skipped="no listener",
    ),
    Case(
        "tls hostname outside the listener's",
        route("TLSRoute", hostnames=("a.other.org",)),
        [gateway(listeners=[listener(protocol="TLS", hostname="*.example.com")])],
        skipped="no listener",
    ),
    Case(
        "tls without hostnames takes the listener's",
        route("TLSRoute", hostnames=()),
        [gateway(listeners=[listener(protocol="TLS", hostname="tls.example.com")])],
        want={"tls.example.com A 203.0.113.7"},
    ),
    Case(
        "tls same-namespace only",
        route("TLSRoute"),
        [gateway(listeners=[listener(protocol="TLS", origin="Same")])],
        skipped="no listener",
    ),
    # TCPRoute: no hostnames of its own; TCP and TLS listeners serve it
    Case(
        "tcp takes the listener's hostname",
        route("TCPRoute", hostnames=("ignored.example.com",)),
        [gateway(listeners=[listener(protocol="TCP", port=5432, hostname="db.example.com")])],
        want={"db.example.com A 203.0.113.7"},
    ),
    Case(
        "tcp on a TLS listener",
        route("TCPRoute"),
        [gateway(listeners=[listener(protocol="TLS", hostname="db.example.com")])],
        want={"db.example.com A 203.0.113.7"},
    ),
    Case(
        "tcp hostname annotation",
        route("TCPRoute", ann={A + "hostname": "pg.example.com"}),
        [gateway(listeners=[listener(protocol="TCP")])],
        want={"pg.example.com A 203.0.113.7"},
    ),
    Case(
        "tcp not on a UDP listener",
        route("TCPRoute"),
        [gateway(listeners=[listener(protocol="UDP", hostname="db.example.com")])],
        skipped="no listener",
    ),
    Case(
        "tcp listener without hostname and no annotation",
        route("TCPRoute"),
        [gateway(listeners=[listener(protocol="TCP")])],
        skipped="no listener",
    ),
    # UDPRoute: no hostnames; UDP listeners only
    Case(
        "udp takes the listener's hostname",
        route("UDPRoute"),
        [gateway(listeners=[listener(protocol="UDP", port=53, hostname="dns.example.com")])],
        want={"dns.example.com A 203.0.113.7"},
    ),
    Case(
        "udp not on a TCP listener",
        route("UDPRoute"),
        [gateway(listeners=[listener(protocol="TCP", hostname="dns.example.com")])],
        skipped="no listener",
    ),
    Case(
        "udp hostname annotation",
        route("UDPRoute", ann={A + "hostname": "ntp.example.com"}),
        [gateway(listeners=[listener(protocol="UDP")])],
        want={"ntp.example.com A 203.0.113.7"},
    ),
    Case(
        "udp target annotation on the Gateway",
        route("UDPRoute"),
        [
            gateway(
                listeners=[listener(protocol="UDP", hostname="dns.example.com")],
                ann={A + "target": "nlb.example.net"},
            )
        ],
        want={"dns.example.com CNAME nlb.example.net"},
    ),
    Case(
        "udp not accepted",
        route("UDPRoute", accepted=("False",)),
        [gateway(listeners=[listener(protocol="UDP", hostname="dns.example.com")])],
        skipped="not accepted",
    ),
]


@pytest.mark.parametrize("case", OTHER_CASES, ids=lambda c: c.id)
def test_other_route_kinds(case: Case) -> None:
    result = run(case)
    assert result.ok, result.errors
    assert shown(result) == case.want
    assert result.resource.startswith(case.route["kind"].lower() + "/")
    if case.skipped:
        assert case.skipped in (result.skipped_reason or ""), result.skipped_reason


@pytest.mark.parametrize(
    ("listener_host", "route_host", "want"),
    [
        ("", "a.example.com", "a.example.com"),
        ("*.example.com", "a.example.com", "a.example.com"),
        ("a.example.com", "*.example.com", "a.example.com"),
        ("*.example.com", "*.example.com", "*.example.com"),
        ("*.example.com", "*.a.example.com", "*.a.example.com"),
        ("*.example.com", "example.com", None),
        ("a.example.com", "b.example.com", None),
        ("a.example.com.", "a.example.com", None),  # a trailing dot is not DNS-1123
        ("10.0.0.1", "", None),
    ],
)
def test_matching_host(listener_host: str, route_host: str, want: str | None) -> None:
    assert matching_host(listener_host, route_host) == want


def test_label_selector_absent_selects_nothing_and_bad_operator_raises() -> None:
    assert label_selector(None) is None
    assert label_selector({}).matches({"x": "y"})
    with pytest.raises(ValueError, match="matchExpressions"):
        label_selector({"matchExpressions": [{"key": "a", "operator": "Near"}]})


def test_gateway_routes_names_the_routes_to_recompute() -> None:
    routes = [route(), route(parents=({"name": "other", "namespace": "infra"},))]
    assert gateway_routes(gateway(), routes) == [("HTTPRoute", "shop", "web")]


def test_compute_all_reads_only_the_chosen_sources() -> None:
    objects = [gateway(), route(), {"kind": "Namespace", "metadata": {"name": "shop"}}]
    assert compute_all(objects) == []  # Services and Ingresses only by default
    options = SourceOptions.from_mapping({"source": "service,gateway-httproute"})
    (result,) = compute_all(objects, options)
    assert shown(result) == {SHOP}
    assert read_kinds(options) == {"Service", "HTTPRoute"}


def test_source_option_refuses_unknown_sources() -> None:
    with pytest.raises(ValueError, match="`gateway-route` is not a source"):
        SourceOptions.from_mapping({"source": "gateway-route"})


def test_a_filtered_route_still_says_which_prefix_its_annotations_use() -> None:
    result = run(Case("", route(ann={A + "ttl": "60"}), options={"annotation-filter": "publish=yes"}))
    assert (result.skipped_reason or "").startswith("annotations do not match")
    assert result.annotation_prefix == A and result.annotations == ((A + "ttl", "60"),)
