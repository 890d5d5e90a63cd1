"""clusters.source_istio: Istio Gateways and VirtualServices in, ExternalDNS's endpoints out.

Expected endpoints are `name TYPE target,target` strings (order-free) or the words of the skip reason or
error. Facts: external-dns v0.21.0 source/istio_gateway.go, istio_virtualservice.go.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from clusters.source_istio import (
    IstioIndex,
    binds_to_gateway,
    istio_gateway_endpoints,
    virtualservice_endpoints,
)
from clusters.source_options import SourceOptions
from clusters.sources import compute_all

A = "external-dns.alpha.kubernetes.io/"
API = "networking.istio.io/v1"


def gw(
    hosts: tuple[str, ...] = ("shop.example.com",),
    ns: str = "istio-system",
    name: str = "public",
    ann: dict[str, str] | None = None,
    selector: dict[str, str] | None = None,
) -> dict[str, Any]:
    return {
        "apiVersion": API,
        "kind": "Gateway",
        "metadata": {"name": name, "namespace": ns, "annotations": ann or {}},
        "spec": {
            "selector": {"istio": "ingressgateway"} if selector is None else selector,
            "servers": [
                {"port": {"number": 443, "name": "https", "protocol": "HTTPS"}, "hosts": list(hosts)}
            ],
        },
    }


def svc(
    ip: str = "203.0.113.5", selector: dict[str, str] | None = None, ns: str = "istio-system", **spec
) -> dict:
    return {
        "kind": "Service",
        "metadata": {"name": f"ingress-{ip}", "namespace": ns},
        "spec": {
            "type": "LoadBalancer",
            "selector": selector or {"istio": "ingressgateway", "app": "gw"},
            **spec,
        },
        "status": {"loadBalancer": {"ingress": [{"ip": ip}]}},
    }


def vs(
    hosts: tuple[str, ...] = ("shop.example.com",),
    gateways: tuple[str, ...] = ("istio-system/public",),
    ns: str = "shop",
    ann: dict[str, str] | None = None,
    export_to: tuple[str, ...] = (),
) -> dict[str, Any]:
    spec: dict[str, Any] = {"hosts": list(hosts), "gateways": list(gateways)}
    if export_to:
        spec["exportTo"] = list(export_to)
    return {
        "apiVersion": API,
        "kind": "VirtualService",
        "metadata": {"name": "web", "namespace": ns, "annotations": ann or {}},
        "spec": spec,
    }


@dataclass
class Case:
    id: str
    obj: dict[str, Any]
    others: list[dict[str, Any]] = field(default_factory=lambda: [svc()])
    options: dict[str, Any] = field(default_factory=dict)
    want: set[str] = field(default_factory=set)
    skipped: str = ""
    error: str = ""


def run(case: Case):
    index = IstioIndex.from_objects([case.obj, *case.others])
    fn = istio_gateway_endpoints if case.obj["kind"] == "Gateway" else virtualservice_endpoints
    return fn(case.obj, index, SourceOptions.from_mapping(case.options))


def shown(result) -> set[str]:
    return {f"{e.dns_name} {e.record_type} {','.join(e.targets)}" for e in result.endpoints}


SHOP = "shop.example.com A 203.0.113.5"
ING = {
    "kind": "Ingress",
    "metadata": {"name": "edge", "namespace": "istio-system"},
    "status": {"loadBalancer": {"ingress": [{"hostname": "lb.example.net"}]}},
}

GATEWAY_CASES = [
    Case("server hosts point at the selected Service", gw(), want={SHOP}),
    Case("namespace/host keeps the host, * is skipped", gw(("./shop.example.com", "*")), want={SHOP}),
    Case(
        "target annotation wins",
        gw(ann={A + "target": "198.51.100.9"}),
        want={"shop.example.com A 198.51.100.9"},
    ),
    Case(
        "ingress annotation reads the Ingress",
        gw(ann={A + "ingress": "edge"}),
        [ING],
        want={"shop.example.com CNAME lb.example.net"},
    ),
    Case(
        "ingress annotation naming a missing Ingress is an error",
        gw(ann={A + "ingress": "other/edge"}),
        error="not found",
    ),
    Case(
        "a Service whose selector lacks the Gateway's labels is not a target",
        gw(),
        [svc(selector={"app": "other"})],
        skipped="no target",
    ),
    Case(
        "externalIPs before the load balancer",
        gw(),
        [svc(externalIPs=["192.0.2.7"])],
        want={"shop.example.com A 192.0.2.7"},
    ),
    Case(
        "hostname annotation adds a name",
        gw(ann={A + "hostname": "extra.example.com"}),
        want={SHOP, "extra.example.com A 203.0.113.5"},
    ),
    Case("annotation-filter", gw(), options={"annotation-filter": "dns=yes"}, skipped="annotation-filter"),
    Case(
        "controller annotation of another controller",
        gw(ann={A + "controller": "x"}),
        skipped="another controller",
    ),
    Case(
        "fqdn-template when there are no hosts",
        gw(("*",)),
        options={"fqdn-template": "{{.Name}}.example.com"},
        want={"public.example.com A 203.0.113.5"},
    ),
]

VS_CASES = [
    Case("host bound to a Gateway server", vs(), [gw(), svc()], want={SHOP}),
    Case("wildcard server host covers the name", vs(), [gw(("*.example.com",)), svc()], want={SHOP}),
    Case(
        "server host of another name does not bind",
        vs(),
        [gw(("api.example.com",)), svc()],
        skipped="no target",
    ),
    Case(
        "server host for another namespace does not bind",
        vs(),
        [gw(("other/shop.example.com",)), svc()],
        skipped="no target",
    ),
    Case(
        "server host for the VirtualService's namespace binds",
        vs(),
        [gw(("shop/shop.example.com",)), svc()],
        want={SHOP},
    ),
    Case(
        "exportTo . hides it from a Gateway elsewhere",
        vs(export_to=(".",)),
        [gw(), svc()],
        skipped="no target",
    ),
    Case("exportTo * shows it everywhere", vs(export_to=("*",)), [gw(), svc()], want={SHOP}),
    Case(
        "own target annotation",
        vs(ann={A + "target": "lb.example.net"}),
        [],
        want={"shop.example.com CNAME lb.example.net"},
    ),
    Case("mesh gateway is not a target", vs(gateways=("mesh",)), [gw(), svc()], skipped="no target"),
    Case(
        "Gateway in the VirtualService's namespace by default",
        vs(gateways=("public",), ns="istio-system"),
        [gw(), svc()],
        want={SHOP},
    ),
    Case("missing Gateway", vs(gateways=("istio-system/nope",)), [svc()], skipped="does not exist"),
    Case(
        "hostname annotation binds too",
        vs(hosts=(), ann={A + "hostname": "shop.example.com"}),
        [gw(), svc()],
        want={SHOP},
    ),
]


@pytest.mark.parametrize("case", GATEWAY_CASES + VS_CASES, ids=lambda c: f"{c.obj['kind']}: {c.id}")
def test_istio(case: Case) -> None:
    result = run(case)
    if case.error:
        assert any(case.error in p.message for p in result.errors), result.errors
        return
    assert result.ok, result.errors
    assert shown(result) == case.want
    prefix = "gateway/" if case.obj["kind"] == "Gateway" else "virtualservice/"
    assert result.resource.startswith(prefix)
    if case.skipped:
        assert case.skipped in (result.skipped_reason or ""), result.skipped_reason


def test_binds_to_gateway_dot_namespace() -> None:
    assert binds_to_gateway(vs(ns="istio-system"), gw(("./shop.example.com",)), "shop.example.com")
    assert not binds_to_gateway(vs(ns="shop"), gw(("./shop.example.com",)), "shop.example.com")


def test_istio_gateway_is_told_apart_from_the_gateway_api_one() -> None:
    api_gateway = {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway", "metadata": {"name": "g"}}
    options = SourceOptions.from_mapping({"source": "istio-gateway,istio-virtualservice"})
    results = compute_all([gw(), svc(), api_gateway, vs()], options)
    assert [(r.kind, shown(r)) for r in results] == [("Gateway", {SHOP}), ("VirtualService", {SHOP})]
