"""Endpoints from Gateway API routes, computed as ExternalDNS's gateway-*route sources do.

A route (HTTPRoute, GRPCRoute, TLSRoute, TCPRoute, UDPRoute as plain dicts) publishes its hostnames
intersected with the hostnames of the listeners of each parent Gateway that accepted it, pointing at the
Gateway's `target` annotation or else its status addresses. A parent counts only when the route names it in
spec.parentRefs, its status.parents entry has condition Accepted=True, the Gateway passes --gateway-name,
--gateway-namespace and --gateway-label-filter, and a listener allows the route (protocol, port, section,
allowedRoutes namespaces and kinds).

Facts: external-dns v0.21.0 source/gateway.go (resolve, resolveParentRef, matchRouteToListener, hosts,
routeIsAllowed, gwMatchingHost, gwProtocolMatches) and gateway_*route.go (each kind's protocol; TCP and UDP
routes have no hostnames). ListenerSets (--gateway-listener-sets, off by default) are not read.

Pure: no Django, boto3 or Kubernetes import.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from clusters.annotations import (
    ANNOTATION_ONLY,
    DEFINED_HOSTS_ONLY,
    Problem,
    annotation_prefix,
    describe_object,
    external_dns_annotations,
    parse_annotations,
    parse_targets,
)
from clusters.endpoints import (
    EMPTY_INVENTORY,
    ObjectResult,
    _controller_skip,
    _Ctx,
    _filtered,
    _finish,
    _for_hostname,
    _meta,
    _template_hostnames,
    object_key,
    suitable_type,
)
from clusters.label_selector import Requirement, Selector
from clusters.source_options import SourceOptions

Obj = Mapping[str, Any]

GROUP = "gateway.networking.k8s.io"
# Route kind -> (ExternalDNS --source name, the protocol ExternalDNS gives the route kind).
ROUTE_KINDS: dict[str, tuple[str, str]] = {
    "HTTPRoute": ("gateway-httproute", "HTTP"),
    "GRPCRoute": ("gateway-grpcroute", "HTTPS"),
    "TLSRoute": ("gateway-tlsroute", "TLS"),
    "TCPRoute": ("gateway-tcproute", "TCP"),
    "UDPRoute": ("gateway-udproute", "UDP"),
}
_NO_HOSTNAMES = frozenset({"TCPRoute", "UDPRoute"})  # their Hostnames() is nil in ExternalDNS
GATEWAY_HOSTNAME_SOURCE = "gateway-hostname-source"
_LABEL = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?")


@dataclass(frozen=True, slots=True)
class GatewayIndex:
    """A cluster's Gateways by (namespace, name) and its Namespaces' labels: what routes resolve against."""

    gateways: Mapping[tuple[str, str], Obj]
    namespace_labels: Mapping[str, Mapping[str, str]]

    @classmethod
    def from_objects(cls, objects: Iterable[Obj]) -> GatewayIndex:
        """Index the `Gateway` and `Namespace` objects among `objects`; other kinds are ignored."""
        gateways: dict[tuple[str, str], Obj] = {}
        nss: dict[str, Mapping[str, str]] = {}
        for obj in objects:
            if obj.get("kind") == "Gateway":
                gateways[object_key(obj)] = obj
            elif obj.get("kind") == "Namespace":
                nss[_meta(obj).get("name") or ""] = _meta(obj).get("labels") or {}
        return cls(gateways, nss)


def _is_dns1123_domain(s: str) -> bool:
    return 0 < len(s) <= 255 and all(_LABEL.fullmatch(label) for label in s.split("."))


def _gw_host(host: str) -> str | None:
    # gwHost: "" matches anything; IP literals and names that are not DNS-1123 (a trailing dot included) never
    if host == "":
        return ""
    if suitable_type(host) != "CNAME" or not _is_dns1123_domain(host.removeprefix("*.")):
        return None
    return host.lower()


def matching_host(listener_host: str, route_host: str) -> str | None:
    """gwMatchingHost: the name a listener hostname and a route hostname have in common, or None.

    An empty side takes the other; a wildcard `*.example.com` covers names under it (the longer, more
    specific name wins); otherwise they must be equal.
    """
    a, b = _gw_host(listener_host), _gw_host(route_host)
    if a is None or b is None:
        return None
    if a == "":
        return b
    if b == "" or a == b:
        return a
    if len(b) < len(a) or (len(a) == len(b) and b.startswith("*.")):
        a, b = b, a
    if a.startswith("*.") and b.endswith(a[1:]):
        return b
    return None


def _protocol_matches(route: str, listener: str) -> bool:
    # gwProtocolMatches: HTTPS counts as HTTP on both sides; a TCP route attaches to a TLS listener
    route = "HTTP" if route == "HTTPS" else route
    listener = "HTTP" if listener == "HTTPS" else listener
    if route == "TCP" and listener == "TLS":
        listener = "TCP"
    return route == listener


def _accepted(conditions: Iterable[Obj] | None) -> bool:
    for cond in conditions or []:
        if cond.get("type") == "Accepted":
            return cond.get("status") == "True"
    return False


def _ref_key(ref: Obj, route_ns: str) -> tuple[str, str, str, str]:
    return (
        ref.get("group") or GROUP,
        ref.get("kind") or "Gateway",
        ref.get("namespace") or route_ns,
        ref.get("name") or "",
    )


_OPS = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!"}


def label_selector(sel: Obj | None) -> Selector | None:
    """metav1.LabelSelectorAsSelector: matchLabels and matchExpressions as one Selector.

    None for an absent selector (it selects nothing); ValueError for an unknown operator or a set operator
    without values (apimachinery refuses those too).
    """
    if sel is None:
        return None
    reqs = [Requirement(k, "=", (str(v),)) for k, v in sorted((sel.get("matchLabels") or {}).items())]
    for expr in sel.get("matchExpressions") or []:
        op = _OPS.get(expr.get("operator") or "")
        values = tuple(str(v) for v in expr.get("values") or [])
        if op is None or (op in ("in", "notin")) != bool(values):
            raise ValueError(f"matchExpressions: `{expr}` is not a valid requirement")
        reqs.append(Requirement(expr.get("key") or "", op, values))
    return Selector(tuple(reqs))


def _route_allowed(listener: Obj, gw_ns: str, route_kind: str, route_ns: str, index: GatewayIndex) -> bool:
    allow = listener.get("allowedRoutes") or {}
    namespaces = allow.get("namespaces") or {}
    origin = namespaces.get("from") or "Same"
    if origin == "Same":
        if gw_ns != route_ns:
            return False
    elif origin == "Selector":
        try:
            selector = label_selector(namespaces.get("selector"))
        except ValueError:
            return False
        labels = index.namespace_labels.get(route_ns)
        if selector is None or labels is None or not selector.matches(labels):
            return False
    elif origin != "All":
        return False
    kinds = allow.get("kinds") or []
    return not kinds or any((k.get("group") or GROUP) == GROUP and k.get("kind") == route_kind for k in kinds)


def _route_hosts(ctx: _Ctx, route_kind: str) -> list[str]:
    # gatewayRouteResolver.hosts: spec.hostnames, then the fqdn-template (when the route has none or when
    # combining), then "" (take the listener's hostname) for a route without hostnames, then the annotation
    spec_hosts = (
        []
        if route_kind in _NO_HOSTNAMES
        else [str(h) for h in (ctx.obj.get("spec") or {}).get("hostnames") or []]
    )
    hosts = list(spec_hosts)
    opts = ctx.options
    if opts.template is not None and (not hosts or opts.combine_fqdn_annotation):
        hosts += _template_hostnames(ctx)
    annotated = [] if opts.ignore_hostname_annotation else list(ctx.pa.hostnames)
    found, _ = external_dns_annotations(_meta(ctx.obj).get("annotations") or {})
    source = found.get(GATEWAY_HOSTNAME_SOURCE)
    mode = source.value.lower() if source is not None else ""
    if mode == ANNOTATION_ONLY:
        return annotated
    if mode == DEFINED_HOSTS_ONLY:
        return hosts
    if source is not None:
        ctx.warnings.append(
            Problem(
                f"annotation `{source.key}` on {ctx.what}: `{source.value}` is neither {ANNOTATION_ONLY} nor "
                f"{DEFINED_HOSTS_ONLY}; hostnames come from the route and the annotation",
                annotation=source.key,
                value=source.value,
            )
        )
    if not spec_hosts:
        hosts.append("")
    return hosts + annotated


def _gateway_passes(gw: Obj, options: SourceOptions) -> bool:
    ns, name = object_key(gw)
    if options.gateway_namespace and ns != options.gateway_namespace:
        return False
    if options.gateway_name and name != options.gateway_name:
        return False
    return options.gateway_label_selector.matches(_meta(gw).get("labels"))


def _resolve(ctx: _Ctx, route_kind: str, index: GatewayIndex) -> dict[str, list[str]]:
    """host -> targets over every parent that accepted the route (resolve + matchRouteToListener)."""
    protocol = ROUTE_KINDS[route_kind][1]
    hosts = _route_hosts(ctx, route_kind)
    spec = ctx.obj.get("spec") or {}
    declared = {_ref_key(r, ctx.namespace) for r in spec.get("parentRefs") or []}
    out: dict[str, list[str]] = {}
    if not declared:
        ctx.note("no spec.parentRefs")
        return out
    parents = (ctx.obj.get("status") or {}).get("parents") or []
    if not parents:
        ctx.note("no parent Gateway has reported on the route yet (status.parents is empty)")
    for i, parent in enumerate(parents):
        ref = parent.get("parentRef") or {}
        key = _ref_key(ref, ctx.namespace)
        group, kind, gw_ns, gw_name = key
        where = f"status.parents[{i}] (Gateway `{gw_ns}/{gw_name}`)"
        if key not in declared:
            ctx.note(f"{where}: not in spec.parentRefs")
            continue
        if group != GROUP or kind != "Gateway":
            continue  # ListenerSets (--gateway-listener-sets) and other parents are not read
        gw = index.gateways.get((gw_ns, gw_name))
        if gw is None or not _gateway_passes(gw, ctx.options):
            ctx.note(f"{where}: no such Gateway, or outside gateway-name/-namespace/-label-filter")
            continue
        if not _accepted(parent.get("conditions")):
            ctx.note(f"{where}: the Gateway has not accepted the route (no Accepted=True condition)")
            continue
        listeners = (gw.get("spec") or {}).get("listeners") or []
        section = ref.get("sectionName") or ""
        if section:
            listeners = [lis for lis in listeners if lis.get("name") == section]
        overrides, problems = parse_targets(
            _meta(gw).get("annotations") or {}, what=f"Gateway `{gw_ns}/{gw_name}`"
        )
        ctx.warnings.extend(problems)
        addresses = [a.get("value") or "" for a in (gw.get("status") or {}).get("addresses") or []]
        matched = False
        for lis in listeners:
            if not _protocol_matches(protocol, lis.get("protocol") or ""):
                continue
            if ref.get("port") is not None and ref.get("port") != lis.get("port"):
                continue
            if not _route_allowed(lis, gw_ns, route_kind, ctx.namespace, index):
                continue
            gw_host = lis.get("hostname") or ""
            for rt_host in hosts:
                if gw_host == "" and rt_host == "":
                    continue
                host = matching_host(gw_host, rt_host)
                if host is None:
                    continue
                out.setdefault(host, []).extend(overrides or addresses)
                matched = True
        if not matched:
            ctx.note(f"{where}: no listener allows this route with a matching hostname")
    # uniqueTargets: sorted, duplicates dropped
    return {h: sorted({t for t in targets if t}) for h, targets in out.items()}


def route_endpoints(
    route: Obj,
    index: GatewayIndex,
    options: SourceOptions | None = None,
    *,
    kind: str | None = None,
    cluster: str = "",
) -> ObjectResult:
    """The endpoints one Gateway API route publishes, as ExternalDNS's gateway-*route source computes them.

    `index` holds the cluster's Gateways and Namespace labels. The route's kind picks its protocol. Never
    raises for a malformed object.
    """
    options = options or SourceOptions()
    kind = kind or route.get("kind") or ""
    if kind not in ROUTE_KINDS:
        raise ValueError(f"{kind or 'an object without kind'} is not a Gateway API route kind")
    ns, name = object_key(route)
    ctx = _Ctx(
        kind=kind,
        obj=route,
        namespace=ns,
        name=name,
        what=describe_object(kind, ns, name, cluster),
        options=options,
        inventory=EMPTY_INVENTORY,
    )
    skip = _filtered(ctx) or _controller_skip(route)
    if skip is not None:
        return _finish_skipped(ctx, skip, cluster)
    ctx.pa = parse_annotations(_meta(route).get("annotations") or {}, what=ctx.what)
    ctx.errors.extend(ctx.pa.errors)
    ctx.warnings.extend(ctx.pa.warnings)
    eps = []
    for host, targets in _resolve(ctx, kind, index).items():
        eps += _for_hostname(ctx, host, targets)
        if not targets:
            ctx.note(f"`{host}`: the Gateway has no status.addresses and no target annotation")
    return _finish(ctx, eps, cluster)


def _finish_skipped(ctx: _Ctx, reason: str, cluster: str) -> ObjectResult:
    result = _finish(ctx, [], cluster)
    return ObjectResult(
        kind=result.kind,
        namespace=result.namespace,
        name=result.name,
        resource=result.resource,
        skipped_reason=reason,
        uid=result.uid,
        resource_version=result.resource_version,
        annotation_prefix=annotation_prefix(_meta(ctx.obj).get("annotations") or {}),
        annotations=result.annotations,
        gitops=result.gitops,
        annotation_owners=result.annotation_owners,
    )


def gateway_routes(gateway: Obj, routes: Iterable[Obj]) -> list[tuple[str, str, str]]:
    """(kind, namespace, name) of the routes that name `gateway` as a parent (for the watch: what to recompute
    when a Gateway changes)."""
    gw_key = (GROUP, "Gateway", *object_key(gateway))
    out = []
    for rt in routes:
        ns, name = object_key(rt)
        refs = (rt.get("spec") or {}).get("parentRefs") or []
        if any(_ref_key(r, ns) == gw_key for r in refs):
            out.append((rt.get("kind") or "", ns, name))
    return out
