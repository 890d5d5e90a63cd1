"""Endpoints from Istio `Gateway` and `VirtualService` objects, as ExternalDNS's istio-gateway and
istio-virtualservice sources compute them.

An Istio Gateway publishes the hosts of its servers (`namespace/host` keeps the host; `*` is skipped) and the
hostname annotation, pointing at its `target` annotation, else the load balancer of the Ingress its `ingress`
annotation names, else the external IPs or load balancer addresses of every Service (in --namespace) whose
selector its `spec.selector` matches. A VirtualService publishes its hosts (and the hostname annotation),
pointing at its own `target` annotation, else at the targets of each Gateway in spec.gateways it binds to
(exportTo, and a server host that covers the name from a namespace that allows the VirtualService).

Facts: external-dns v0.21.0 source/istio_gateway.go, istio_virtualservice.go, endpoints.go
(EndpointTargetsFromServices), utils.go (ParseIngress).

Pure: no Django, boto3 or Kubernetes import.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from clusters.annotations import (
    PREFIXES,
    Problem,
    annotation_prefix,
    describe_object,
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
)
from clusters.source_options import SourceOptions

Obj = Mapping[str, Any]

GROUP = "networking.istio.io"
INGRESS_ANNOTATION = "ingress"  # under either ExternalDNS prefix: "<namespace>/<name>" or "<name>"
MESH_GATEWAY = "mesh"


def is_istio(obj: Obj) -> bool:
    """Whether the object is Istio's (its Gateway shares a kind name with the Gateway API's)."""
    return str(obj.get("apiVersion") or "").startswith(GROUP + "/")


@dataclass(frozen=True, slots=True)
class IstioIndex:
    """A cluster's Istio Gateways and Ingresses by (namespace, name), and its Services."""

    gateways: Mapping[tuple[str, str], Obj] = field(default_factory=dict)
    services: tuple[Obj, ...] = ()
    ingresses: Mapping[tuple[str, str], Obj] = field(default_factory=dict)

    @classmethod
    def from_objects(cls, objects: Iterable[Obj]) -> IstioIndex:
        """Index the Istio Gateways, Services and Ingresses among `objects`."""
        gateways, services, ingresses = {}, [], {}
        for obj in objects:
            kind = obj.get("kind")
            if kind == "Gateway" and is_istio(obj):
                gateways[object_key(obj)] = obj
            elif kind == "Service":
                services.append(obj)
            elif kind == "Ingress":
                ingresses[object_key(obj)] = obj
        return cls(gateways, tuple(services), ingresses)


def _split_host(host: str) -> tuple[str, str] | None:
    parts = host.split("/")
    if len(parts) == 2:
        return parts[0], parts[1]
    return ("*", host) if len(parts) == 1 else None


def _lb_targets(status: Obj) -> list[str]:
    out = []
    for lb in (status.get("loadBalancer") or {}).get("ingress") or []:
        if lb.get("ip"):
            out.append(lb["ip"])
        elif lb.get("hostname"):
            out.append(lb["hostname"])
    return out


def gateway_targets(gw: Obj, index: IstioIndex, options: SourceOptions) -> tuple[list[str], str | None]:
    """targetsFromGateway: (targets, error). The target annotation, the `ingress` annotation's Ingress, or
    the Services the Gateway's selector matches."""
    ns, name = object_key(gw)
    annotations = _meta(gw).get("annotations") or {}
    targets, _ = parse_targets(annotations, what=f"Gateway `{ns}/{name}`")
    if targets:
        return list(targets), None
    ingress = next(
        (annotations[p + INGRESS_ANNOTATION] for p in PREFIXES if annotations.get(p + INGRESS_ANNOTATION)), ""
    )
    if ingress:
        parts = ingress.split("/")
        if len(parts) > 2:
            return (
                [],
                f"annotation `ingress` on Gateway `{ns}/{name}`: `{ingress}` is not <name> or <ns>/<name>",
            )
        ing_ns, ing_name = (parts[0], parts[1]) if len(parts) == 2 else (ns, parts[0])
        ing = index.ingresses.get((ing_ns or ns, ing_name))
        if ing is None:
            return (
                [],
                f"annotation `ingress` on Gateway `{ns}/{name}`: Ingress `{ing_ns}/{ing_name}` not found",
            )
        return _lb_targets(ing.get("status") or {}), None
    selector = (gw.get("spec") or {}).get("selector") or {}
    out: list[str] = []
    for svc in index.services:
        if options.namespace and object_key(svc)[0] != options.namespace:
            continue
        svc_selector = (svc.get("spec") or {}).get("selector") or {}
        # labels.SelectorFromSet(gateway selector).Matches(Service's selector): every pair must be in it
        if any(svc_selector.get(k) != v for k, v in selector.items()):
            continue
        external = (svc.get("spec") or {}).get("externalIPs") or []
        out += external if external else _lb_targets(svc.get("status") or {})
    return sorted(set(out)), None


def _start(kind: str, obj: Obj, options: SourceOptions | None, cluster: str) -> tuple[_Ctx, str | None]:
    options = options or SourceOptions()
    ns, name = object_key(obj)
    ctx = _Ctx(
        kind=kind,
        obj=obj,
        namespace=ns,
        name=name,
        what=describe_object(kind, ns, name, cluster),
        options=options,
        inventory=EMPTY_INVENTORY,
    )
    skip = _filtered(ctx) or _controller_skip(obj)
    if skip is None:
        ctx.pa = parse_annotations(_meta(obj).get("annotations") or {}, what=ctx.what)
        ctx.errors.extend(ctx.pa.errors)
        ctx.warnings.extend(ctx.pa.warnings)
    return ctx, skip


def _skipped(ctx: _Ctx, reason: str, cluster: str) -> ObjectResult:
    done = _finish(ctx, [], cluster)
    return ObjectResult(
        kind=done.kind,
        namespace=done.namespace,
        name=done.name,
        resource=done.resource,
        skipped_reason=reason,
        uid=done.uid,
        resource_version=done.resource_version,
        annotation_prefix=annotation_prefix(_meta(ctx.obj).get("annotations") or {}),
        annotations=done.annotations,
        gitops=done.gitops,
    )


def _with_template(ctx: _Ctx, eps: list, targets_for: Any) -> list:
    # CombineWithEndpoints: the template's names are added when combining, or used when nothing else is
    opts = ctx.options
    if opts.template is None or (eps and not opts.combine_fqdn_annotation):
        return eps
    templated = []
    for host in _template_hostnames(ctx):
        templated += _for_hostname(ctx, host, targets_for(host))
    return eps + templated if opts.combine_fqdn_annotation else templated


def istio_gateway_endpoints(
    gw: Obj, index: IstioIndex, options: SourceOptions | None = None, *, cluster: str = ""
) -> ObjectResult:
    """The endpoints one Istio Gateway publishes (ExternalDNS's istio-gateway source). Never raises."""
    ctx, skip = _start("Gateway", gw, options, cluster)
    if skip is not None:
        return _skipped(ctx, skip, cluster)
    hosts: list[str] = []
    for server in (gw.get("spec") or {}).get("servers") or []:
        for host in server.get("hosts") or []:
            if not host:
                continue
            parts = host.split("/")
            host = parts[1] if len(parts) == 2 else host
            if host != "*":
                hosts.append(host)
    if not ctx.options.ignore_hostname_annotation:
        hosts += list(ctx.pa.hostnames)
    targets, error = gateway_targets(gw, index, ctx.options)
    if error:
        ctx.errors.append(Problem(error))
    eps = []
    for host in hosts:
        eps += _for_hostname(ctx, host.lower(), targets)
    eps = _with_template(ctx, eps, lambda _h: targets)
    if not eps and not targets:
        ctx.note("no target annotation, no Ingress and no Service with a load balancer address matches")
    return _finish(ctx, eps, cluster)


def binds_to_gateway(vs: Obj, gw: Obj, host: str) -> bool:
    """virtualServiceBindsToGateway: exportTo lets the Gateway see the VirtualService, and a server host of
    the Gateway (from a namespace that allows the VirtualService) covers `host`."""
    vs_ns, gw_ns = object_key(vs)[0], object_key(gw)[0]
    export = (vs.get("spec") or {}).get("exportTo") or []
    if export and not any(ns in ("*", gw_ns) or (ns == "." and gw_ns == vs_ns) for ns in export):
        return False
    for server in (gw.get("spec") or {}).get("servers") or []:
        for raw in server.get("hosts") or []:
            split = _split_host(raw)
            if split is None:
                continue
            ns, gw_host = split
            if not (ns in ("*", vs_ns) or (ns == "." and vs_ns == gw_ns)):
                continue
            if gw_host == "*" or gw_host == host:
                return True
            if gw_host.startswith("*.") and host.endswith(gw_host[1:]):
                return True
    return False


def virtualservice_endpoints(
    vs: Obj, index: IstioIndex, options: SourceOptions | None = None, *, cluster: str = ""
) -> ObjectResult:
    """The endpoints one VirtualService publishes (ExternalDNS's istio-virtualservice source)."""
    ctx, skip = _start("VirtualService", vs, options, cluster)
    if skip is not None:
        return _skipped(ctx, skip, cluster)
    own = list(ctx.pa.targets)

    def targets_for(host: str) -> list[str]:
        if own:
            return own
        out: list[str] = []
        for ref in (vs.get("spec") or {}).get("gateways") or []:
            if not ref or ref == MESH_GATEWAY:
                continue
            parts = ref.split("/")
            if len(parts) > 2:
                ctx.errors.append(
                    Problem(f"spec.gateways of {ctx.what}: `{ref}` is not <name> or <namespace>/<name>")
                )
                continue
            gw_ns, gw_name = (
                (parts[0] or ctx.namespace, parts[1]) if len(parts) == 2 else (ctx.namespace, ref)
            )
            gw = index.gateways.get((gw_ns, gw_name))
            if gw is None:
                ctx.note(f"Gateway `{gw_ns}/{gw_name}` in spec.gateways does not exist")
                continue
            if not binds_to_gateway(vs, gw, host):
                continue
            found, error = gateway_targets(gw, index, ctx.options)
            if error:
                ctx.errors.append(Problem(error))
            out += [t for t in found if t not in out]
        return out

    eps = []
    hosts = []
    for host in (vs.get("spec") or {}).get("hosts") or []:
        if not host or host == "*":
            continue
        parts = host.split("/")
        hosts.append(parts[1] if len(parts) == 2 else host)
    if not ctx.options.ignore_hostname_annotation:
        hosts += list(ctx.pa.hostnames)
    for host in hosts:
        eps += _for_hostname(ctx, host.lower(), targets_for(host))
    eps = _with_template(ctx, eps, targets_for)
    if not eps and hosts:
        ctx.note("no target annotation and no bound Gateway with targets")
    return _finish(ctx, eps, cluster)
