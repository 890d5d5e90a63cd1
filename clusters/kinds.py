"""Which kinds a cluster's sources read, and which of them its API server serves.

Services, Ingresses and the inventory kinds are built in. Gateway API routes, Gateways and DNSEndpoints exist
only where their CRDs are installed: each cluster check asks the API server's discovery (`/apis/<group>/
<version>`) which version of each group serves the kind, newest first, and a kind it does not serve is "not
installed" (shown on the cluster page, neither listed nor watched), never an error.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from kubernetes import client as k8s

from clusters.kube import ClusterClient
from clusters.source_gateway import ROUTE_KINDS
from clusters.source_options import SourceOptions
from clusters.sources import read_kinds

GATEWAY_GROUP = "gateway.networking.k8s.io"
ISTIO_GROUP = "networking.istio.io"
# kind -> (group, plural, versions the portal reads, newest first). ExternalDNS v0.21 reads Gateways,
# HTTPRoutes and GRPCRoutes at v1 and TLS/TCP/UDP routes at v1alpha2; older clusters serve only the betas.
CUSTOM_KINDS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "Gateway": (GATEWAY_GROUP, "gateways", ("v1", "v1beta1")),
    "HTTPRoute": (GATEWAY_GROUP, "httproutes", ("v1", "v1beta1")),
    "GRPCRoute": (GATEWAY_GROUP, "grpcroutes", ("v1", "v1alpha2")),
    "TLSRoute": (GATEWAY_GROUP, "tlsroutes", ("v1", "v1alpha3", "v1alpha2")),
    "TCPRoute": (GATEWAY_GROUP, "tcproutes", ("v1alpha2",)),
    "UDPRoute": (GATEWAY_GROUP, "udproutes", ("v1alpha2",)),
    # Istio's Gateway shares its kind name with the Gateway API's: discovery keys it as IstioGateway.
    "IstioGateway": (ISTIO_GROUP, "gateways", ("v1", "v1beta1", "v1alpha3")),
    "VirtualService": (ISTIO_GROUP, "virtualservices", ("v1", "v1beta1", "v1alpha3")),
}
# The kind the API server names, where discovery's key differs.
API_KIND = {"IstioGateway": "Gateway"}
NOT_INSTALLED = "not installed"


@dataclass(frozen=True, slots=True)
class CustomKind:
    """Where a custom kind is served: `/apis/<group>/<version>/.../<plural>`."""

    group: str
    version: str
    plural: str

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}"


def wanted_custom_kinds(options: SourceOptions) -> dict[str, tuple[str, str, tuple[str, ...]]]:
    """The custom kinds a cluster's sources need: routes with their Gateways, and the --crd-source-kind."""
    kinds = read_kinds(options)
    wanted = {k: v for k, v in CUSTOM_KINDS.items() if k in kinds}
    if any(k in ROUTE_KINDS for k in kinds):
        wanted["Gateway"] = CUSTOM_KINDS["Gateway"]
    if {"istio-gateway", "istio-virtualservice"} & set(options.source):
        wanted["IstioGateway"] = CUSTOM_KINDS["IstioGateway"]  # VirtualServices take their Gateways' targets
    if "crd" in options.source:
        group, _, version = options.crd_source_apiversion.partition("/")
        # the plural the CRD's generator gives a kind (DNSEndpoint -> dnsendpoints)
        wanted[options.crd_source_kind] = (group, options.crd_source_kind.lower() + "s", (version,))
    return wanted


def _served(cc: ClusterClient, group: str, version: str) -> dict[str, str] | None:
    """kind -> plural served at group/version, or None when the API server does not serve that version."""
    try:
        response: Any = cc.api.call_api(
            f"/apis/{group}/{version}",
            "GET",
            header_params={"Accept": "application/json"},
            auth_settings=["BearerToken"],
            _preload_content=False,
            _return_http_data_only=True,
        )
    except k8s.exceptions.ApiException as exc:
        if exc.status == 404:
            return None
        raise
    data = json.loads(response.data)
    return {
        r.get("kind"): r.get("name")
        for r in (data or {}).get("resources") or []
        if "/" not in (r.get("name") or "")  # subresources such as httproutes/status
    }


def resolve_custom_kinds(cc: ClusterClient, options: SourceOptions) -> dict[str, CustomKind | None]:
    """Each custom kind the sources need, with the version the cluster serves, or None when not installed.

    Raises what the API server raises for anything but 404 (an unreachable cluster is stale, not empty).
    """
    cache: dict[tuple[str, str], dict[str, str] | None] = {}
    out: dict[str, CustomKind | None] = {}
    for kind, (group, plural, versions) in sorted(wanted_custom_kinds(options).items()):
        out[kind] = None
        for version in versions:
            if (group, version) not in cache:
                cache[(group, version)] = _served(cc, group, version)
            served = cache[(group, version)]
            if served is not None and served.get(API_KIND.get(kind, kind)) == plural:
                out[kind] = CustomKind(group, version, plural)
                break
    return out


def kind_status(resolved: dict[str, CustomKind | None]) -> dict[str, str]:
    """kind -> "gateway.networking.k8s.io/v1" or "not installed", for the cluster page."""
    return {k: (v.api_version if v else NOT_INSTALLED) for k, v in sorted(resolved.items())}
