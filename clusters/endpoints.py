"""Endpoints from Services and Ingresses, computed exactly as ExternalDNS's service and ingress sources do.

Input: Kubernetes objects as plain dicts in the API server's JSON shape (`kubectl get -o json`, camelCase
keys), plus the Nodes, Pods and EndpointSlices some Services need, indexed once in an `Inventory`. Output: one
`ObjectResult` per Service or Ingress with its `records.endpoint.Endpoint`s, or the errors that stop it from
publishing, or the reason it publishes nothing. One object's malformed annotation never affects another.

Facts: shared/reference/external-dns.md sections 1, 2 and 7 (source/service.go, source/ingress.go,
endpoint/utils.go). Where the portal deliberately differs from ExternalDNS, a comment says so.

Pure: no Django, boto3 or Kubernetes import.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from clusters.annotations import (
    ANNOTATION_ONLY,
    CONTROLLER_VALUE,
    DEFINED_HOSTS_ONLY,
    ENDPOINTS_TYPE_HOST_IP,
    ENDPOINTS_TYPE_NODE_EXTERNAL_IP,
    NO_HOSTS,
    PREFIXES,
    ParsedAnnotations,
    Problem,
    annotation_prefix,
    check_dns_name,
    controller_annotation,
    describe_object,
    parse_annotations,
    parse_targets,
)
from clusters.fqdn_template import TemplateError
from clusters.gitops import GitOpsInfo, detect_gitops, managed_fields_owner
from clusters.label_selector import selector_from_map
from clusters.source_options import SourceOptions
from records.endpoint import LABEL_RESOURCE, PROP_ALIAS, Endpoint
from records.policy import is_private_address

Obj = Mapping[str, Any]

# The label the EndpointSlice controller puts on every slice of a Service (discovery.k8s.io/v1).
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
# Legacy ingress-class annotation, read when spec.ingressClassName is empty (ExternalDNS
# filterByIngressClass).
INGRESS_CLASS_ANNOTATION = "kubernetes.io/ingress.class"

_TYPE_ORDER = {"A": 0, "AAAA": 1, "CNAME": 2, "SRV": 3}


def suitable_type(target: str) -> str:
    """ExternalDNS's SuitableType: an IPv4 literal is A, an IPv6 literal AAAA, anything else CNAME."""
    try:
        ip = ipaddress.ip_address(target)
    except ValueError:
        return "CNAME"
    return "A" if ip.version == 4 else "AAAA"


def private_targets(endpoint: Endpoint) -> list[str]:
    """The endpoint's targets that must not be published in a public zone (DESIGN rule 3), in target order.

    RFC 1918, loopback, link-local, CGNAT 100.64/10, IPv6 ULA/loopback/link-local (records.policy's list).
    Host names (CNAME targets) and SRV values are never private by this test.
    """
    return [t for t in endpoint.targets if is_private_address(t)]


def _meta(obj: Obj) -> Mapping[str, Any]:
    return obj.get("metadata") or {}


def object_key(obj: Obj) -> tuple[str, str]:
    """(namespace, name) of an object; a manifest without a namespace is in `default`, as for kubectl."""
    meta = _meta(obj)
    return (meta.get("namespace") or "default", meta.get("name") or "")


def _is_pod_ready(pod: Obj) -> bool:
    for cond in (pod.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return cond.get("status") == "True"
    return False


class Inventory:
    """The Nodes, Pods and EndpointSlices of one cluster, indexed once for every Service that needs them.

    Build it with `Inventory.from_objects(objects)` (or `Inventory()` and `upsert`); the watch process can
    keep one per cluster and `upsert`/`delete` objects as events arrive. Lookups are dict hits, so computing
    5,000 Services stays linear.
    """

    __slots__ = ("_nodes", "_pods", "_pods_by_label", "_pods_by_namespace", "_slices")

    def __init__(self) -> None:
        self._nodes: dict[str, Obj] = {}
        self._pods: dict[tuple[str, str], Obj] = {}
        self._pods_by_namespace: dict[str, dict[str, Obj]] = {}
        self._pods_by_label: dict[tuple[str, str, str], dict[str, Obj]] = {}
        # (namespace, service name) -> {slice name: slice}
        self._slices: dict[tuple[str, str], dict[str, Obj]] = {}

    @classmethod
    def from_objects(cls, objects: Iterable[Obj]) -> Inventory:
        """Index the Nodes, Pods and EndpointSlices among `objects` (by `kind`); other kinds are ignored."""
        inv = cls()
        for obj in objects:
            kind = obj.get("kind")
            if kind in ("Node", "Pod", "EndpointSlice"):
                inv.upsert(obj, kind=kind)
        return inv

    def upsert(self, obj: Obj, *, kind: str | None = None) -> None:
        """Add or replace a Node, Pod or EndpointSlice (`kind` for objects without one, as API list items)."""
        kind = kind or obj.get("kind") or ""
        if kind == "Node":
            self._nodes[_meta(obj).get("name") or ""] = obj
        elif kind == "Pod":
            self.delete(obj, kind="Pod")
            ns, name = object_key(obj)
            self._pods[(ns, name)] = obj
            self._pods_by_namespace.setdefault(ns, {})[name] = obj
            for k, v in (_meta(obj).get("labels") or {}).items():
                self._pods_by_label.setdefault((ns, k, v), {})[name] = obj
        elif kind == "EndpointSlice":
            self.delete(obj, kind="EndpointSlice")
            ns, name = object_key(obj)
            svc = (_meta(obj).get("labels") or {}).get(SERVICE_NAME_LABEL)
            if svc:
                self._slices.setdefault((ns, svc), {})[name] = obj
        else:
            raise ValueError(
                f"an inventory holds Nodes, Pods and EndpointSlices, not {kind or 'an object without kind'}"
            )

    def delete(self, obj: Obj, *, kind: str | None = None) -> None:
        """Forget a Node, Pod or EndpointSlice (only its kind, namespace and name are read)."""
        kind = kind or obj.get("kind") or ""
        if kind == "Node":
            self._nodes.pop(_meta(obj).get("name") or "", None)
        elif kind == "Pod":
            ns, name = object_key(obj)
            old = self._pods.pop((ns, name), None)
            if old is None:
                return
            self._pods_by_namespace.get(ns, {}).pop(name, None)
            for k, v in (_meta(old).get("labels") or {}).items():
                bucket = self._pods_by_label.get((ns, k, v))
                if bucket is not None:
                    bucket.pop(name, None)
                    if not bucket:
                        del self._pods_by_label[(ns, k, v)]
        elif kind == "EndpointSlice":
            ns, name = object_key(obj)
            for key, slices in list(self._slices.items()):
                if key[0] == ns and slices.pop(name, None) is not None and not slices:
                    del self._slices[key]

    def node(self, name: str) -> Obj | None:
        """The Node called `name`, or None."""
        return self._nodes.get(name)

    @property
    def nodes(self) -> list[Obj]:
        """Every Node, in the order they were added."""
        return list(self._nodes.values())

    def pod(self, namespace: str, name: str) -> Obj | None:
        """The Pod `namespace/name`, or None."""
        return self._pods.get((namespace, name))

    def pods_matching(self, namespace: str, selector: Mapping[str, str] | None) -> list[Obj]:
        """The Pods of `namespace` whose labels include every pair of `selector` (empty selects all)."""
        if not selector:
            return list(self._pods_by_namespace.get(namespace, {}).values())
        # start from the smallest label bucket, then check the other pairs: linear in the matching pods
        buckets = [self._pods_by_label.get((namespace, k, v), {}) for k, v in selector.items()]
        smallest = min(buckets, key=len)
        return [
            p
            for p in smallest.values()
            if all((_meta(p).get("labels") or {}).get(k) == v for k, v in selector.items())
        ]

    def endpoint_slices(self, namespace: str, service: str) -> list[Obj]:
        """The EndpointSlices labelled `kubernetes.io/service-name=<service>` in `namespace`."""
        return list(self._slices.get((namespace, service), {}).values())


EMPTY_INVENTORY = Inventory()


@dataclass(frozen=True, slots=True)
class ObjectResult:
    """What one Service or Ingress publishes.

    Exactly one of three outcomes: `endpoints` (possibly with `warnings`); `errors` and no endpoints (a
    malformed annotation or option value: the object publishes nothing until it is fixed); or no endpoints
    with a `skipped_reason` (filtered out, or nothing to publish yet, like a LoadBalancer without an address).
    """

    kind: str  # "Service" or "Ingress"
    namespace: str
    name: str
    resource: str  # "service/<ns>/<name>" or "ingress/<ns>/<name>": the endpoints' resource label
    endpoints: tuple[Endpoint, ...] = ()
    errors: tuple[Problem, ...] = ()
    warnings: tuple[Problem, ...] = ()
    skipped_reason: str | None = None
    uid: str = ""
    resource_version: str = ""
    annotation_prefix: str = ""  # the ExternalDNS prefix the object's annotations use ("" when none)
    # What the traffic-policy editor needs without asking the cluster: the ExternalDNS annotations under
    # either prefix exactly as written (key, value), and the GitOps tool that applies the object, if any.
    annotations: tuple[tuple[str, str], ...] = ()
    gitops: GitOpsInfo | None = None
    # The field manager that last set each of those annotations (managedFields): who reverted a write-back.
    annotation_owners: tuple[tuple[str, str], ...] = ()

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def error_messages(self) -> list[str]:
        return [p.message for p in self.errors]


@dataclass(slots=True)
class _Ep:
    """An endpoint under construction (ExternalDNS mutates endpoints while merging; so does this module)."""

    name: str
    type: str
    targets: list[str]
    ttl: int = 0
    set_identifier: str = ""
    provider_specific: tuple[tuple[str, str], ...] = ()


@dataclass(slots=True)
class _Ctx:
    """Per-object state while computing: what the object is and what went wrong."""

    kind: str
    obj: Obj
    namespace: str
    name: str
    what: str
    options: SourceOptions
    inventory: Inventory
    pa: ParsedAnnotations = field(default_factory=ParsedAnnotations)
    errors: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # why a name got no targets, for skipped_reason

    @property
    def resource(self) -> str:
        return f"{self.kind.lower()}/{self.namespace}/{self.name}"

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)


def _for_hostname(ctx: _Ctx, hostname: str, targets: Sequence[str]) -> list[_Ep]:
    # endpoint.EndpointsForHostname: group targets by suitable type, one endpoint per type (A, AAAA, CNAME).
    by_type: dict[str, list[str]] = {}
    for t in targets:
        if t:
            by_type.setdefault(suitable_type(t), []).append(t)
    return [
        _Ep(hostname, rt, by_type[rt], ctx.pa.ttl, ctx.pa.set_identifier, ctx.pa.provider_specific)
        for rt in ("A", "AAAA", "CNAME")
        if rt in by_type
    ]


def _filtered(ctx: _Ctx) -> str | None:
    """Why the object is outside the source options (namespace, label and annotation filters), or None."""
    opts = ctx.options
    meta = _meta(ctx.obj)
    if opts.namespace and ctx.namespace != opts.namespace:
        return f"namespace `{ctx.namespace}` is outside option namespace=`{opts.namespace}`"
    if not opts.label_selector.matches(meta.get("labels")):
        return f"labels do not match label-filter `{opts.label_filter}`"
    if not opts.annotation_selector.matches(meta.get("annotations")):
        return f"annotations do not match annotation-filter `{opts.annotation_filter}`"
    return None


def _controller_skip(obj: Obj) -> str | None:
    a = controller_annotation(_meta(obj).get("annotations") or {})
    if a is not None and a.value != CONTROLLER_VALUE:
        return f"annotation `{a.key}` is `{a.value}`, not {CONTROLLER_VALUE}: another controller owns it"
    return None


def _template_hostnames(ctx: _Ctx) -> list[str]:
    template = ctx.options.template
    if template is None:
        return []
    try:
        raw = template.hostnames(ctx.obj, kind=ctx.kind)
    except TemplateError as exc:
        ctx.errors.append(Problem(f"option `fqdn-template` on {ctx.what}: {exc}", option="fqdn-template"))
        return []
    out = []
    for name in raw:
        name = name.lower()
        reason = check_dns_name(name)
        if reason:  # skipped, as ExternalDNS skips it; the object's other names publish
            ctx.warnings.append(
                Problem(
                    f"option `fqdn-template` on {ctx.what}: {reason}; that name is not published",
                    option="fqdn-template",
                    value=name,
                )
            )
        elif name not in out:
            out.append(name)
    return out


# ---------------------------------------------------------------------------------------------- Services


def _lb_targets(spec: Obj, status: Obj) -> list[str]:
    # extractLoadBalancerTargets: spec.externalIPs when set, else every status ingress ip and hostname
    external = [ip for ip in spec.get("externalIPs") or [] if ip]
    if external:
        return external
    out: list[str] = []
    for ing in (status.get("loadBalancer") or {}).get("ingress") or []:
        if ing.get("ip"):
            out.append(ing["ip"])
        if ing.get("hostname"):
            out.append(ing["hostname"].rstrip(".").lower())
    return out


def _cluster_ips(spec: Obj) -> list[str]:
    # extractServiceIps: spec.clusterIP, nothing for a headless Service
    ip = spec.get("clusterIP") or ""
    return [] if ip in ("", "None") else [ip]


def _node_port_targets(ctx: _Ctx, spec: Obj) -> list[str]:
    inv, opts = ctx.inventory, ctx.options
    if spec.get("externalTrafficPolicy") == "Local":
        # Only nodes running a pod of the Service answer on the node port. ExternalDNS prefers nodes with a
        # ready,
        # non-terminating pod, then a ready (terminating) one, then any running one. The portal ranks each
        # node
        # by its best pod; ExternalDNS ranks it by the first pod it lists (an order-dependent corner case).
        level: dict[str, int] = {}
        nodes: dict[str, Obj] = {}
        for pod in inv.pods_matching(ctx.namespace, spec.get("selector")):
            if (pod.get("status") or {}).get("phase") != "Running":
                continue
            node_name = (pod.get("spec") or {}).get("nodeName") or ""
            node = inv.node(node_name)
            if node is None:
                continue
            ready = _is_pod_ready(pod)
            rank = 3 if ready and not _meta(pod).get("deletionTimestamp") else 2 if ready else 1
            nodes.setdefault(node_name, node)
            level[node_name] = max(level.get(node_name, 0), rank)
        best = max(level.values(), default=0)
        chosen = [nodes[n] for n in nodes if level[n] == best]
        if not chosen:
            ctx.note("externalTrafficPolicy is Local and no node runs a running pod of the Service")
    else:
        chosen = inv.nodes
        if not chosen:
            ctx.note("NodePort Service and no Nodes are known")
    external: list[str] = []
    internal: list[str] = []
    internal_v6: list[str] = []
    for node in chosen:
        if (node.get("spec") or {}).get("unschedulable") and opts.exclude_unschedulable:
            continue  # --exclude-unschedulable (default true): cordoned nodes are not published
        for addr in (node.get("status") or {}).get("addresses") or []:
            a = addr.get("address") or ""
            if addr.get("type") == "ExternalIP":
                external.append(a)
            elif addr.get("type") == "InternalIP":
                internal.append(a)
                if suitable_type(a) == "AAAA":
                    internal_v6.append(a)
    extra_v6 = internal_v6 if opts.expose_internal_ipv6 else []
    access = ctx.pa.access
    if access == "public":
        out = external + extra_v6
    elif access == "private":
        out = internal
    elif external:  # no annotation: ExternalIPs if any node has one, else InternalIPs
        out = external + extra_v6
    else:
        out = internal
    if chosen and not out:
        ctx.note(f"no node has an address of the kind access={access or 'default'} selects")
    return out


def _srv_endpoints(ctx: _Ctx, spec: Obj, hostname: str) -> list[_Ep]:
    # One SRV per node port: `_<service>._<protocol>.<hostname>` -> "0 50 <nodePort> <hostname>." (RFC 2782)
    out: list[_Ep] = []
    for port in spec.get("ports") or []:
        node_port = port.get("nodePort") or 0
        if not isinstance(node_port, int) or node_port <= 0:
            continue
        protocol = (port.get("protocol") or "TCP").lower()
        out.append(
            _Ep(
                f"_{ctx.name}._{protocol}.{hostname}",
                "SRV",
                [f"0 50 {node_port} {hostname}."],
                ctx.pa.ttl,
                ctx.pa.set_identifier,
                ctx.pa.provider_specific,
            )
        )
    return out


def _headless_endpoints(ctx: _Ctx, spec: Obj, hostname: str) -> list[_Ep]:
    inv, opts = ctx.inventory, ctx.options
    publish_not_ready = bool(spec.get("publishNotReadyAddresses")) or opts.always_publish_not_ready_addresses
    endpoints_type = ctx.pa.endpoints_type
    publish_pod_ips = endpoints_type not in (ENDPOINTS_TYPE_NODE_EXTERNAL_IP, ENDPOINTS_TYPE_HOST_IP) and (
        not opts.publish_host_ip
    )
    selector = selector_from_map(spec.get("selector"))
    by_key: dict[tuple[str, str], list[str]] = {}
    slices = inv.endpoint_slices(ctx.namespace, ctx.name)
    if not slices:
        ctx.note("headless Service without EndpointSlices")
    for sl in slices:
        address_type = sl.get("addressType")
        for ep in sl.get("endpoints") or []:
            # conditions.ready unset means ready (discovery/v1: "consumers should interpret unknown as ready")
            ready = (ep.get("conditions") or {}).get("ready")
            if ready is False and not publish_not_ready:
                continue
            if publish_pod_ips and address_type not in ("IPv4", "IPv6"):
                continue  # FQDN slices carry no pod addresses
            ref = ep.get("targetRef") or {}
            # ExternalDNS requires an empty apiVersion (as the controller writes it); "v1" is the same core
            # Pod.
            if ref.get("kind") != "Pod" or ref.get("apiVersion", "") not in ("", "v1"):
                continue
            pod = inv.pod(ctx.namespace, ref.get("name") or "")
            if pod is None or not selector.matches(_meta(pod).get("labels")):
                ctx.warnings.append(
                    Problem(
                        f"{ctx.what}: Pod `{ctx.namespace}/{ref.get('name')}` of an EndpointSlice "
                        "is not known"
                    )
                )
                continue
            domains = [hostname]
            pod_hostname = (pod.get("spec") or {}).get("hostname") or ""
            if pod_hostname:
                domains.append(f"{pod_hostname.lower()}.{hostname}")
            pod_what = describe_object("Pod", *object_key(pod)) + f" (behind {ctx.what})"
            targets, problems = parse_targets(_meta(pod).get("annotations") or {}, what=pod_what)
            if problems:
                ctx.errors.extend(problems)
                continue
            if not targets:
                if endpoints_type == ENDPOINTS_TYPE_NODE_EXTERNAL_IP:
                    node_name = (pod.get("spec") or {}).get("nodeName") or ""
                    node = inv.node(node_name)
                    if node is None:
                        # ExternalDNS gives up on the whole headless Service when a pod's node is unknown
                        ctx.warnings.append(
                            Problem(
                                f"{ctx.what}: Node `{node_name}` of Pod `{ctx.namespace}/{ref.get('name')}` "
                                "is not known; ExternalDNS publishes no NodeExternalIP records then"
                            )
                        )
                        return []
                    targets = tuple(
                        a.get("address") or ""
                        for a in (node.get("status") or {}).get("addresses") or []
                        if a.get("type") == "ExternalIP"
                        or (
                            opts.expose_internal_ipv6
                            and a.get("type") == "InternalIP"
                            and suitable_type(a.get("address") or "") == "AAAA"
                        )
                    )
                elif endpoints_type == ENDPOINTS_TYPE_HOST_IP or opts.publish_host_ip:
                    targets = ((pod.get("status") or {}).get("hostIP") or "",)
                else:
                    addresses = ep.get("addresses") or []
                    if not addresses:
                        continue
                    # only the first address: further ones have no defined semantics (discovery/v1)
                    targets = (addresses[0],)
            for domain in domains:
                for t in targets:
                    if t:
                        by_key.setdefault((domain, suitable_type(t)), []).append(t)
    if slices and not by_key:
        ctx.note("headless Service has no ready endpoints")
    out = []
    for (domain, rtype), targets in sorted(by_key.items()):
        out.append(
            _Ep(
                domain,
                rtype,
                list(dict.fromkeys(targets)),
                ctx.pa.ttl,
                ctx.pa.set_identifier,
                ctx.pa.provider_specific,
            )
        )
    return out


def _service_endpoints(ctx: _Ctx, hostname: str, *, use_cluster_ip: bool) -> list[_Ep]:
    """serviceSource.generateEndpoints for one hostname."""
    spec = ctx.obj.get("spec") or {}
    status = ctx.obj.get("status") or {}
    targets: list[str] = list(ctx.pa.targets)
    extra: list[_Ep] = []
    if not targets:  # the target annotation replaces whatever the Service itself would give
        stype = spec.get("type") or "ClusterIP"
        if stype == "LoadBalancer":
            targets = _cluster_ips(spec) if use_cluster_ip else _lb_targets(spec, status)
            if not targets:
                ctx.note("LoadBalancer has no address yet (status.loadBalancer.ingress is empty)")
        elif stype == "ClusterIP":
            if spec.get("clusterIP") == "None":
                extra = _headless_endpoints(ctx, spec, hostname)
            elif use_cluster_ip or ctx.options.publish_internal_services:
                targets = _cluster_ips(spec)
                if not targets:
                    ctx.note("the Service has no spec.clusterIP yet")
            else:
                ctx.note(
                    "ClusterIP Service: publishing it needs publish-internal-services or internal-hostname"
                )
        elif stype == "NodePort":
            targets = _node_port_targets(ctx, spec)
            extra = _srv_endpoints(ctx, spec, hostname)
        elif stype == "ExternalName":
            # extractServiceExternalName: externalIPs when set, else the external name (a CNAME)
            targets = [ip for ip in spec.get("externalIPs") or [] if ip] or [
                (spec.get("externalName") or "").rstrip(".").lower()
            ]
        else:
            ctx.note(f"Service type `{stype}` publishes nothing")
    return extra + _for_hostname(ctx, hostname, targets)


def _compute_service(ctx: _Ctx) -> list[_Ep]:
    opts = ctx.options
    eps: list[_Ep] = []
    if not opts.ignore_hostname_annotation:
        for h in ctx.pa.hostnames:
            eps += _service_endpoints(ctx, h, use_cluster_ip=False)
        # internal-hostname: LoadBalancer and ClusterIP Services publish spec.clusterIP under these names
        for h in ctx.pa.internal_hostnames:
            eps += _service_endpoints(ctx, h, use_cluster_ip=True)
    if opts.template is not None and (opts.combine_fqdn_annotation or not eps):
        templated: list[_Ep] = []
        for h in _template_hostnames(ctx):
            templated += _service_endpoints(ctx, h, use_cluster_ip=False)
        eps = eps + templated if opts.combine_fqdn_annotation else templated
    return eps


# ---------------------------------------------------------------------------------------------- Ingresses


def _ingress_class_skip(obj: Obj, classes: tuple[str, ...]) -> str | None:
    if not classes:
        return None
    name = (obj.get("spec") or {}).get("ingressClassName") or ""
    if not name:
        name = (_meta(obj).get("annotations") or {}).get(INGRESS_CLASS_ANNOTATION) or ""
    if name in classes:
        return None
    shown = f"ingress class `{name}`" if name else "no ingress class"
    return f"{shown} is not in option ingress-class ({', '.join(classes)})"


def _compute_ingress(ctx: _Ctx) -> list[_Ep]:
    opts = ctx.options
    spec = ctx.obj.get("spec") or {}
    status = ctx.obj.get("status") or {}
    targets = list(ctx.pa.targets)
    if not targets:
        # targetsFromIngressStatus: every status ingress ip and hostname; no DNS lookups
        for ing in (status.get("loadBalancer") or {}).get("ingress") or []:
            if ing.get("ip"):
                targets.append(ing["ip"])
            if ing.get("hostname"):
                targets.append(ing["hostname"].rstrip(".").lower())
    defined: list[str] = []

    def spec_host(host: Any, where: str) -> None:
        if not host:
            return  # rules without a host match every name; they publish nothing
        name = str(host).rstrip(".").lower()
        reason = check_dns_name(name)
        if reason:  # skipped, as ExternalDNS skips it; the object's other names publish
            ctx.warnings.append(
                Problem(f"{where} of {ctx.what}: {reason}; that name is not published", value=str(host))
            )
        elif name not in defined:
            defined.append(name)

    if not opts.ignore_ingress_rules_spec:
        for i, rule in enumerate(spec.get("rules") or []):
            spec_host(rule.get("host"), f"spec.rules[{i}].host")
    if not opts.ignore_ingress_tls_spec:
        for i, tls in enumerate(spec.get("tls") or []):
            for j, host in enumerate(tls.get("hosts") or []):
                spec_host(host, f"spec.tls[{i}].hosts[{j}]")
    annotated = [] if opts.ignore_hostname_annotation else list(ctx.pa.hostnames)
    source = ctx.pa.ingress_hostname_source
    if source == DEFINED_HOSTS_ONLY:
        hostnames = defined
    elif source == ANNOTATION_ONLY:
        hostnames = annotated
    elif source == NO_HOSTS:
        hostnames = []
    else:
        hostnames = defined + [h for h in annotated if h not in defined]
    eps: list[_Ep] = []
    for h in hostnames:
        eps += _for_hostname(ctx, h, targets)
    if opts.template is not None and (opts.combine_fqdn_annotation or not eps):
        templated: list[_Ep] = []
        for h in _template_hostnames(ctx):
            templated += _for_hostname(ctx, h, targets)
        eps = eps + templated if opts.combine_fqdn_annotation else templated
    if not eps:
        if not hostnames and opts.template is None:
            ctx.note("no host in spec.rules, spec.tls or the hostname annotation")
        elif not targets:
            ctx.note(
                "no load balancer address yet (status.loadBalancer.ingress is empty) and no target annotation"
            )
    return eps


# ---------------------------------------------------------------------------------------------- both


def merge_endpoints(endpoints: Iterable[Endpoint]) -> list[Endpoint]:
    """ExternalDNS's MergeEndpoints over finished endpoints (e.g. several objects' for a whole-cluster view).

    Endpoints with the same (name, type, set identifier, TTL) get their targets concatenated, sorted and
    deduplicated; the first one's properties and labels are kept. CNAMEs also key on their first target, so
    two different CNAME targets stay apart (a conflict for the plan to report).
    """
    merged: dict[tuple[str, str, str, int, str], Endpoint] = {}
    targets: dict[tuple[str, str, str, int, str], list[str]] = {}
    for ep in endpoints:
        if ep.record_type == "CNAME" and not ep.targets:
            continue
        key = (
            ep.dns_name,
            ep.record_type,
            ep.set_identifier,
            ep.ttl,
            ep.targets[0] if ep.record_type == "CNAME" else "",
        )
        if key in merged:
            targets[key].extend(ep.targets)
        else:
            merged[key] = ep
            targets[key] = list(ep.targets)
    out = []
    for key, ep in merged.items():
        out.append(
            Endpoint(
                dns_name=ep.dns_name,
                record_type=ep.record_type,
                targets=tuple(sorted(set(targets[key]))),
                ttl=ep.ttl,
                set_identifier=ep.set_identifier,
                provider_specific=ep.provider_specific,
                labels=ep.labels,
                cluster=ep.cluster,
            )
        )
    return sorted(out, key=_endpoint_order)


def _endpoint_order(ep: Endpoint) -> tuple[str, int, str, str, int, tuple[str, ...]]:
    return (
        ep.dns_name,
        _TYPE_ORDER.get(ep.record_type, 9),
        ep.record_type,
        ep.set_identifier,
        ep.ttl,
        ep.targets,
    )


def _kept_metadata(meta: Obj) -> dict[str, Any]:
    annotations = meta.get("annotations") or {}
    kept = tuple(sorted((k, str(v)) for k, v in annotations.items() if k.startswith(PREFIXES)))
    owners = ((k, managed_fields_owner(meta, k)) for k, _ in kept) if meta.get("managedFields") else ()
    return {
        "annotations": kept,
        "annotation_owners": tuple((k, owner) for k, owner in owners if owner),
        "gitops": detect_gitops(meta),
    }


def _finish(ctx: _Ctx, eps: list[_Ep], cluster: str) -> ObjectResult:
    opts = ctx.options
    meta = _meta(ctx.obj)
    base = {
        "kind": ctx.kind,
        "namespace": ctx.namespace,
        "name": ctx.name,
        "resource": ctx.resource,
        "uid": meta.get("uid") or "",
        "resource_version": meta.get("resourceVersion") or "",
        "annotation_prefix": ctx.pa.prefix,
        **_kept_metadata(meta),
    }
    # Names built from the object (SRV names, pod host names) can still be too long: ExternalDNS skips any
    # endpoint with a label over 63 characters (NewEndpoint) and publishes the others; so does the portal.
    fit = []
    for ep in eps:
        reason = check_dns_name(ep.name)
        if reason:
            ctx.warnings.append(
                Problem(f"record name from {ctx.what}: {reason}; it is not published", value=ep.name)
            )
        else:
            fit.append(ep)
    eps = fit
    if ctx.errors:
        unique_errors = tuple(dict.fromkeys(ctx.errors))
        return ObjectResult(**base, errors=unique_errors, warnings=tuple(dict.fromkeys(ctx.warnings)))

    built: list[Endpoint] = []
    outside: list[str] = []
    for ep in eps:
        if ep.type not in ("A", "AAAA", "CNAME") and PROP_ALIAS in dict(ep.provider_specific):
            # CheckEndpoint: only A, AAAA and CNAME endpoints may carry the alias property; others are dropped
            ctx.warnings.append(
                Problem(f"{ctx.what}: {ep.type} record `{ep.name}` cannot be an alias; it is not published")
            )
            continue
        if not opts.domain_allowed(ep.name):
            if ep.name not in outside:
                outside.append(ep.name)
            continue
        built.append(
            Endpoint(
                dns_name=ep.name,
                record_type=ep.type,
                targets=tuple(ep.targets),
                # --min-ttl fills TTLs the object leaves unset (Endpoint.WithMinTTL), never lowers a set one
                ttl=ep.ttl or opts.min_ttl,
                set_identifier=ep.set_identifier,
                provider_specific=ep.provider_specific,
                labels=((LABEL_RESOURCE, ctx.resource),),
                cluster=cluster,
            )
        )
    # MergeEndpoints runs on the source's endpoints before the post-processor applies --min-ttl; merging on
    # the
    # unset TTL first gives the same groups, since min-ttl maps every unset TTL to one value.
    endpoints = tuple(merge_endpoints(built))
    for ep in endpoints:
        if ep.record_type == "CNAME" and len(ep.targets) > 1:
            ctx.warnings.append(
                Problem(
                    f"{ctx.what}: CNAME `{ep.dns_name}` has {len(ep.targets)} targets "
                    f"({', '.join(ep.targets)}); DNS allows one, Route53 will refuse it"
                )
            )
    reason = None
    if not endpoints:
        if outside:
            reason = f"every name is outside domain-filter/exclude-domains: {', '.join(outside)}"
        elif ctx.notes:
            reason = "; ".join(ctx.notes)
        elif ctx.kind == "Service" and opts.ignore_hostname_annotation and opts.template is None:
            reason = "ignore-hostname-annotation is set and there is no fqdn-template"
        elif not ctx.pa.hostnames and not ctx.pa.internal_hostnames and opts.template is None:
            reason = "no hostname annotation and no fqdn-template"
        else:
            reason = "nothing to publish"
    return ObjectResult(
        **base,
        endpoints=endpoints,
        warnings=tuple(dict.fromkeys(ctx.warnings)),
        skipped_reason=reason,
    )


def _compute(
    kind: str, obj: Obj, options: SourceOptions | None, inventory: Inventory | None, cluster: str
) -> ObjectResult:
    options = options or SourceOptions()
    ns, name = object_key(obj)
    ctx = _Ctx(
        kind=kind,
        obj=obj,
        namespace=ns,
        name=name,
        what=describe_object(kind, ns, name, cluster),
        options=options,
        inventory=inventory or EMPTY_INVENTORY,
    )
    # Filters first, as ExternalDNS's informers and listers apply them: a filtered object is not read at all.
    skip = _filtered(ctx)
    if skip is None and kind == "Service" and options.service_type_filter:
        stype = (obj.get("spec") or {}).get("type") or "ClusterIP"
        if stype not in options.service_type_filter:
            allowed = ", ".join(options.service_type_filter)
            skip = f"type {stype} is not in option service-type-filter ({allowed})"
    if skip is None and kind == "Ingress":
        skip = _ingress_class_skip(obj, options.ingress_class)
    if skip is None:
        skip = _controller_skip(obj)
    if skip is not None:
        meta = _meta(obj)
        return ObjectResult(
            kind=kind,
            namespace=ns,
            name=name,
            resource=ctx.resource,
            skipped_reason=skip,
            uid=meta.get("uid") or "",
            resource_version=meta.get("resourceVersion") or "",
            annotation_prefix=annotation_prefix(meta.get("annotations") or {}),
            **_kept_metadata(meta),
        )
    ctx.pa = parse_annotations(_meta(obj).get("annotations") or {}, what=ctx.what)
    ctx.errors.extend(ctx.pa.errors)
    ctx.warnings.extend(ctx.pa.warnings)
    eps = _compute_service(ctx) if kind == "Service" else _compute_ingress(ctx)
    return _finish(ctx, eps, cluster)


def service_endpoints(
    service: Obj,
    inventory: Inventory | None = None,
    options: SourceOptions | None = None,
    *,
    cluster: str = "",
) -> ObjectResult:
    """The endpoints one Service publishes, as ExternalDNS's service source computes them.

    `inventory` holds the Nodes (NodePort), Pods and EndpointSlices (headless, externalTrafficPolicy Local) of
    the cluster; `cluster` names it in messages and on the endpoints. Never raises for a malformed object.
    """
    return _compute("Service", service, options, inventory, cluster)


def ingress_endpoints(
    ingress: Obj, options: SourceOptions | None = None, *, cluster: str = ""
) -> ObjectResult:
    """The endpoints one Ingress publishes, as ExternalDNS's ingress source computes them."""
    return _compute("Ingress", ingress, options, None, cluster)


def object_endpoints(
    obj: Obj,
    inventory: Inventory | None = None,
    options: SourceOptions | None = None,
    *,
    kind: str | None = None,
    cluster: str = "",
) -> ObjectResult:
    """`service_endpoints` or `ingress_endpoints` by the object's kind (`kind` when the dict has none)."""
    kind = kind or obj.get("kind") or ""
    if kind == "Service":
        return service_endpoints(obj, inventory, options, cluster=cluster)
    if kind == "Ingress":
        return ingress_endpoints(obj, options, cluster=cluster)
    raise ValueError(f"endpoints come from Services and Ingresses, not {kind or 'an object without kind'}")


def compute_endpoints(
    objects: Iterable[Obj], options: SourceOptions | None = None, *, cluster: str = ""
) -> list[ObjectResult]:
    """Every Service and Ingress among `objects`; the Nodes, Pods and EndpointSlices among them indexed once.

    Objects are recognised by `kind`; other kinds are ignored. Results are in the objects' order.
    """
    objects = list(objects)
    inventory = Inventory.from_objects(objects)
    return [
        object_endpoints(obj, inventory, options, cluster=cluster)
        for obj in objects
        if obj.get("kind") in ("Service", "Ingress")
    ]


def inventory_kinds(service: Obj, options: SourceOptions | None = None) -> frozenset[str]:
    """Which other kinds a Service's endpoints depend on (for the watch: what to recompute on which event).

    NodePort: Nodes (and Pods with externalTrafficPolicy Local); headless: EndpointSlices, Pods, and Nodes for
    endpoints-type NodeExternalIP. A `target` annotation makes the Service depend on nothing else.
    """
    options = options or SourceOptions()
    annotations = _meta(service).get("annotations") or {}
    pa = parse_annotations(annotations, what="Service")
    if pa.targets:
        return frozenset()
    spec = service.get("spec") or {}
    stype = spec.get("type") or "ClusterIP"
    if stype == "NodePort":
        return frozenset({"Node", "Pod"} if spec.get("externalTrafficPolicy") == "Local" else {"Node"})
    if stype == "ClusterIP" and spec.get("clusterIP") == "None":
        kinds = {"EndpointSlice", "Pod"}
        if pa.endpoints_type == ENDPOINTS_TYPE_NODE_EXTERNAL_IP:
            kinds.add("Node")
        return frozenset(kinds)
    return frozenset()


def service_selects(service: Obj, pod: Obj) -> bool:
    """Whether a Service's selector picks the Pod (same namespace; an empty selector picks every Pod)."""
    if object_key(service)[0] != object_key(pod)[0]:
        return False
    return selector_from_map((service.get("spec") or {}).get("selector")).matches(_meta(pod).get("labels"))


def slice_service(endpoint_slice: Obj) -> tuple[str, str] | None:
    """(namespace, Service name) an EndpointSlice belongs to, from its `kubernetes.io/service-name` label."""
    svc = (_meta(endpoint_slice).get("labels") or {}).get(SERVICE_NAME_LABEL)
    return (object_key(endpoint_slice)[0], svc) if svc else None
