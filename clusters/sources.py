"""Which source reads which kind, and one call that computes every object of a cluster by its kind.

Services and Ingresses go to `clusters.endpoints`, Gateway API routes to `clusters.source_gateway` (with the
cluster's Gateways and Namespaces), DNSEndpoints to `clusters.source_crd`, Istio Gateways and VirtualServices
to `clusters.source_istio`; the option `source` (ExternalDNS's --source) says which of them a cluster reads.
Istio's Gateway shares its kind name with the Gateway API's: its apiVersion (networking.istio.io) tells them
apart.

Pure: no Django, boto3 or Kubernetes import.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from clusters.endpoints import Inventory, ObjectResult, object_endpoints
from clusters.source_crd import dnsendpoint_endpoints
from clusters.source_gateway import ROUTE_KINDS, GatewayIndex, route_endpoints
from clusters.source_istio import IstioIndex, is_istio, istio_gateway_endpoints, virtualservice_endpoints
from clusters.source_options import SourceOptions

Obj = Mapping[str, Any]

# kind -> the ExternalDNS --source value that reads it
KIND_SOURCE: dict[str, str] = {
    "Service": "service",
    "Ingress": "ingress",
    **{kind: source for kind, (source, _) in ROUTE_KINDS.items()},
}


def source_of(kind: str, options: SourceOptions) -> str | None:
    """The --source value that reads `kind` (the crd source reads --crd-source-kind), or None."""
    if kind == options.crd_source_kind:
        return "crd"
    return KIND_SOURCE.get(kind)


def read_kinds(options: SourceOptions) -> frozenset[str]:
    """The kinds a cluster's sources read (what discovery lists and watches, besides their dependencies)."""
    kinds = {kind for kind, source in KIND_SOURCE.items() if source in options.source}
    if "crd" in options.source:
        kinds.add(options.crd_source_kind)
    if "istio-virtualservice" in options.source:
        kinds.add("VirtualService")
    return frozenset(kinds)


def reads(obj: Obj, options: SourceOptions) -> bool:
    """Whether one of the cluster's sources reads this object (an Istio Gateway only with istio-gateway)."""
    kind = obj.get("kind") or ""
    if kind == "Gateway":
        return is_istio(obj) and "istio-gateway" in options.source
    return kind in read_kinds(options)


def endpoints_for(
    obj: Obj,
    options: SourceOptions | None = None,
    *,
    inventory: Inventory | None = None,
    gateways: GatewayIndex | None = None,
    istio: IstioIndex | None = None,
    kind: str | None = None,
    cluster: str = "",
) -> ObjectResult:
    """One object's result by its kind: Service, Ingress, a Gateway API route, a DNSEndpoint, or an Istio
    Gateway or VirtualService."""
    options = options or SourceOptions()
    kind = kind or obj.get("kind") or ""
    if kind == "Gateway" and is_istio(obj):
        return istio_gateway_endpoints(obj, istio or IstioIndex(), options, cluster=cluster)
    if kind == "VirtualService":
        return virtualservice_endpoints(obj, istio or IstioIndex(), options, cluster=cluster)
    if kind in ROUTE_KINDS:
        return route_endpoints(obj, gateways or GatewayIndex({}, {}), options, kind=kind, cluster=cluster)
    if kind == options.crd_source_kind:
        return dnsendpoint_endpoints(obj, options, cluster=cluster)
    return object_endpoints(obj, inventory, options, kind=kind, cluster=cluster)


def compute_all(
    objects: Iterable[Obj], options: SourceOptions | None = None, *, cluster: str = ""
) -> list[ObjectResult]:
    """Every object among `objects` that one of the cluster's sources reads, in the objects' order.

    Nodes, Pods, EndpointSlices, Gateways and Namespaces among them are indexed once as the others' inputs.
    """
    options = options or SourceOptions()
    objects = list(objects)
    inventory = Inventory.from_objects(objects)
    gateways = GatewayIndex.from_objects(o for o in objects if not is_istio(o))
    istio = IstioIndex.from_objects(objects)
    return [
        endpoints_for(obj, options, inventory=inventory, gateways=gateways, istio=istio, cluster=cluster)
        for obj in objects
        if reads(obj, options)
    ]
