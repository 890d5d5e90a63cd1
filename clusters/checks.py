"""The connection check: version, distribution, node count, and exactly the permissions the portal needs."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from clusters.kinds import kind_status, resolve_custom_kinds, wanted_custom_kinds
from clusters.kube import ClusterClient, describe_error, elapsed_ms
from clusters.source_options import SourceOptions

# (verb, API group, resource): what discovery and annotation write-back use, nothing more.
REQUIRED_PERMISSIONS: list[tuple[str, str, str]] = [
    *[(verb, "", "services") for verb in ("list", "watch")],
    *[(verb, "networking.k8s.io", "ingresses") for verb in ("list", "watch")],
    *[(verb, "", "nodes") for verb in ("list", "watch")],
    *[(verb, "", "pods") for verb in ("list", "watch")],
    # Headless Services publish their pods' addresses, which ExternalDNS reads from EndpointSlices.
    *[(verb, "discovery.k8s.io", "endpointslices") for verb in ("list", "watch")],
    ("patch", "", "services"),
    ("patch", "networking.k8s.io", "ingresses"),
]


def required_permissions(options: SourceOptions | None = None) -> list[tuple[str, str, str]]:
    """The built-in permissions, plus list and watch of each custom kind the cluster's sources read (and
    namespaces for allowedRoutes selectors, and the DNSEndpoint status the crd source writes back)."""
    options = options or SourceOptions()
    out = list(REQUIRED_PERMISSIONS)
    custom = wanted_custom_kinds(options)
    for kind, (group, plural, _versions) in sorted(custom.items()):
        out += [(verb, group, plural) for verb in ("list", "watch")]
        if kind == options.crd_source_kind and "crd" in options.source:
            out.append(("update", group, f"{plural}/status"))
    if "Gateway" in custom:
        out += [(verb, "", "namespaces") for verb in ("list", "watch")]
    return out


def permission_name(verb: str, group: str, resource: str) -> str:
    return f"{verb} {resource}" + (f".{group}" if group else "")


@dataclass
class CheckResult:
    health: str  # Cluster.Health value
    duration_ms: int = 0
    server_version: str = ""
    distribution: str = ""
    node_count: int | None = None
    missing_permissions: list[str] = field(default_factory=list)
    error: str = ""
    custom_kinds: dict[str, str] | None = None  # kind -> "group/version" or "not installed"


def guess_distribution(git_version: str, node_labels: list[dict[str, str]]) -> str:
    """EKS / RKE2 / K3s / other, from the version string first and node labels second."""
    version = git_version.lower()
    if "-eks-" in version:
        return "EKS"
    if "+rke2" in version:
        return "RKE2"
    if "+k3s" in version:
        return "K3s"
    for labels in node_labels:
        keys = set(labels)
        if any(k.startswith(("eks.amazonaws.com/", "alpha.eksctl.io/")) for k in keys):
            return "EKS"
        if labels.get("node.kubernetes.io/instance-type") == "k3s" or any(
            k.startswith("k3s.io/") for k in keys
        ):
            return "K3s"
        # RKE2's embedded cloud provider, like K3s's, sets the instance type to the distribution's name.
        if labels.get("node.kubernetes.io/instance-type") == "rke2" or any(
            k.startswith(("rke2.io/", "rke.cattle.io/")) for k in keys
        ):
            return "RKE2"
    return "other"


def _nodes(cc: ClusterClient) -> tuple[int | None, list[dict[str, str]]]:
    """Node count and a sample of node labels; (None, []) when listing nodes is not allowed."""
    try:
        nodes = k8s.CoreV1Api(cc.api).list_node(limit=500)
    except ApiException as exc:
        if exc.status == 403:  # reachable, but without that permission: the review below names it
            return None, []
        raise
    count = len(nodes.items) + (nodes.metadata.remaining_item_count or 0)
    return count, [dict(n.metadata.labels or {}) for n in nodes.items[:20]]


def run_check(cc: ClusterClient, options: SourceOptions | None = None) -> CheckResult:
    """Ask the cluster; never raises for the cluster's own failures (they become the result's error).

    `options` (the cluster's sources) adds the custom kinds' permissions and which of them are installed.
    """
    start = time.monotonic()
    server = cc.access.server
    try:
        version = k8s.VersionApi(cc.api).get_code()
        node_count, labels = _nodes(cc)
        auth = k8s.AuthorizationV1Api(cc.api)
        missing = []
        for verb, group, resource in required_permissions(options):
            review = auth.create_self_subject_access_review(
                k8s.V1SelfSubjectAccessReview(
                    spec=k8s.V1SelfSubjectAccessReviewSpec(
                        resource_attributes=k8s.V1ResourceAttributes(
                            verb=verb,
                            group=group,
                            resource=resource.partition("/")[0],
                            subresource=resource.partition("/")[2] or None,
                        )
                    )
                )
            )
            if not review.status.allowed:
                missing.append(permission_name(verb, group, resource))
        custom = kind_status(resolve_custom_kinds(cc, options or SourceOptions()))
    except Exception as exc:
        return CheckResult(
            health="unreachable", duration_ms=elapsed_ms(start), error=describe_error(exc, server)
        )
    return CheckResult(
        health="degraded" if missing else "healthy",
        duration_ms=elapsed_ms(start),
        server_version=version.git_version,
        distribution=guess_distribution(version.git_version, labels),
        node_count=node_count,
        missing_permissions=missing,
        custom_kinds=custom,
    )
