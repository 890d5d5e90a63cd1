"""Do what a real cluster's controllers and kubelets would, for a sandbox that runs only kube-apiserver.

The sandbox has no kube-controller-manager, scheduler, kubelet or cloud provider, so nothing fills in a
LoadBalancer's address, registers Nodes, reports Pod IPs, creates a namespace's `default` ServiceAccount or
finalizes a deleted namespace. These helpers write exactly those things through the real API (status
subresources included), so code under test sees the objects a real cluster would show it.

Every helper takes an `ApiClient` built from a kubeconfig (`api_client`), never the global default config.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from kubernetes import client, config
from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException


def api_client(kubeconfig: Mapping[str, Any]) -> ApiClient:
    """A client for exactly this kubeconfig (a dict), with its own Configuration; never the global one."""
    return config.new_client_from_config_dict(dict(kubeconfig), persist_config=False)


def _raw_json(
    api: ApiClient, method: str, path: str, *, query: Sequence[tuple[str, Any]] = (), body: Any = None
) -> Any:
    resp = api.call_api(
        path,
        method,
        query_params=list(query),
        body=body,
        header_params={"Accept": "application/json", "Content-Type": "application/json"},
        auth_settings=["BearerToken"],
        _preload_content=False,
        _return_http_data_only=True,
    )
    data = resp.data
    return json.loads(data) if data else None


# ----- what the service / ingress controllers write ------------------------------------------------------


def _lb_ingress(ips: Iterable[str], hostnames: Iterable[str]) -> list[dict[str, str]]:
    return [{"ip": ip} for ip in ips] + [{"hostname": h} for h in hostnames]


def set_service_load_balancer(
    api: ApiClient, namespace: str, name: str, *, ips: Iterable[str] = (), hostnames: Iterable[str] = ()
) -> client.V1Service:
    """Set `status.loadBalancer.ingress` of a LoadBalancer Service, as a cloud controller does."""
    body = {"status": {"loadBalancer": {"ingress": _lb_ingress(ips, hostnames)}}}
    # A JSON merge patch replaces the list whole, which is what a controller publishing its addresses means.
    return client.CoreV1Api(api).patch_namespaced_service_status(
        name, namespace, body, _content_type="application/merge-patch+json"
    )


def set_ingress_load_balancer(
    api: ApiClient, namespace: str, name: str, *, ips: Iterable[str] = (), hostnames: Iterable[str] = ()
) -> client.V1Ingress:
    """Set `status.loadBalancer.ingress` of an Ingress, as an ingress controller does."""
    body = {"status": {"loadBalancer": {"ingress": _lb_ingress(ips, hostnames)}}}
    return client.NetworkingV1Api(api).patch_namespaced_ingress_status(
        name, namespace, body, _content_type="application/merge-patch+json"
    )


# ----- what kubelets write ------------------------------------------------------------------------------


def create_node(
    api: ApiClient,
    name: str,
    *,
    internal_ip: str,
    external_ip: str | None = None,
    labels: Mapping[str, str] | None = None,
    unschedulable: bool = False,
    ready: bool = True,
) -> client.V1Node:
    """Register a Node and report its addresses and readiness, as its kubelet would."""
    core = client.CoreV1Api(api)
    all_labels = {"kubernetes.io/hostname": name, **(labels or {})}
    core.create_node(
        {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": name, "labels": all_labels},
            "spec": {"unschedulable": unschedulable},
        }
    )
    addresses = [{"type": "InternalIP", "address": internal_ip}, {"type": "Hostname", "address": name}]
    if external_ip:
        addresses.insert(1, {"type": "ExternalIP", "address": external_ip})
    status = {
        "status": {
            "addresses": addresses,
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True" if ready else "False",
                    "reason": "KubeletReady",
                    "message": "kubelet is posting ready status",
                    "lastHeartbeatTime": _now(),
                    "lastTransitionTime": _now(),
                }
            ],
        }
    }
    return core.patch_node_status(name, status, _content_type="application/merge-patch+json")


def create_pod(
    api: ApiClient,
    namespace: str,
    name: str,
    *,
    pod_ip: str,
    node_name: str | None = None,
    host_ip: str | None = None,
    labels: Mapping[str, str] | None = None,
    ready: bool = True,
    image: str = "nginx:1.27",
) -> client.V1Pod:
    """Create a Pod (as a ReplicaSet would), bind it to `node_name` and report it running with `pod_ip`."""
    core = client.CoreV1Api(api)
    spec: dict[str, Any] = {"containers": [{"name": "app", "image": image, "ports": [{"containerPort": 80}]}]}
    if node_name:
        spec["nodeName"] = node_name  # what the scheduler's binding would set
    core.create_namespaced_pod(
        namespace,
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "labels": dict(labels or {})},
            "spec": spec,
        },
    )
    cond = "True" if ready else "False"
    status: dict[str, Any] = {
        "phase": "Running",
        "podIP": pod_ip,
        "podIPs": [{"ip": pod_ip}],
        "startTime": _now(),
        "conditions": [
            {"type": t, "status": cond, "lastTransitionTime": _now()}
            for t in ("Initialized", "Ready", "ContainersReady", "PodScheduled")
        ],
    }
    if host_ip:
        status["hostIP"] = host_ip
        status["hostIPs"] = [{"ip": host_ip}]
    return core.patch_namespaced_pod_status(
        name, namespace, {"status": status}, _content_type="application/merge-patch+json"
    )


def create_endpoint_slice(
    api: ApiClient,
    namespace: str,
    service_name: str,
    pods: Sequence[client.V1Pod],
    *,
    port: int = 80,
) -> client.V1EndpointSlice:
    """The EndpointSlice the endpointslice controller would write for a Service selecting `pods`."""
    endpoints = [
        {
            "addresses": [p.status.pod_ip],
            "conditions": {"ready": True, "serving": True, "terminating": False},
            "nodeName": p.spec.node_name,
            "targetRef": {
                "kind": "Pod",
                "namespace": namespace,
                "name": p.metadata.name,
                "uid": p.metadata.uid,
            },
        }
        for p in pods
    ]
    body = {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "generateName": f"{service_name}-",
            "labels": {
                "kubernetes.io/service-name": service_name,
                "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io",
            },
        },
        "addressType": "IPv4",
        "endpoints": endpoints,
        "ports": [{"name": "", "port": port, "protocol": "TCP"}],
    }
    return client.DiscoveryV1Api(api).create_namespaced_endpoint_slice(namespace, body)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


# ----- what the serviceaccount and namespace controllers do ---------------------------------------------


def create_namespace(api: ApiClient, name: str, *, labels: Mapping[str, str] | None = None) -> None:
    """Create a namespace with its `default` ServiceAccount (Pods cannot be admitted without it)."""
    core = client.CoreV1Api(api)
    core.create_namespace(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": dict(labels or {})}}
    )
    ensure_default_service_account(api, name)


def ensure_default_service_account(api: ApiClient, namespace: str) -> None:
    try:
        client.CoreV1Api(api).create_namespaced_service_account(
            namespace, {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default"}}
        )
    except ApiException as exc:
        if exc.status != 409:
            raise


# Namespaced resource types that support deletecollection, per server; discovery does not change at run time.
_discovery_cache: dict[str, list[str]] = {}


def _namespaced_collections(api: ApiClient) -> list[str]:
    """API paths like "/api/v1/namespaces/{ns}/pods" for every namespaced type that can be deleted in bulk."""
    host = api.configuration.host
    if host in _discovery_cache:
        return _discovery_cache[host]
    group_versions = ["/api/v1"]
    groups = _raw_json(api, "GET", "/apis")
    group_versions += [f"/apis/{g['preferredVersion']['groupVersion']}" for g in groups["groups"]]
    paths: list[str] = []
    for gv in group_versions:
        for res in _raw_json(api, "GET", gv)["resources"]:
            if res["namespaced"] and "/" not in res["name"] and "deletecollection" in res["verbs"]:
                paths.append(f"{gv}/namespaces/{{ns}}/{res['name']}")
    _discovery_cache[host] = paths
    return paths


def delete_namespace(api: ApiClient, name: str, *, timeout: float = 30.0) -> None:
    """Delete a namespace and everything in it, doing the namespace controller's part, and wait until gone.

    Without kube-controller-manager a deleted namespace would stay Terminating forever and its objects would
    still show up in cluster-wide lists, leaking one test's objects into the next.
    """
    core = client.CoreV1Api(api)
    try:
        core.delete_namespace(name)
    except ApiException as exc:
        if exc.status == 404:
            return
        raise
    for path in _namespaced_collections(api):
        try:
            _raw_json(api, "DELETE", path.format(ns=name), query=[("gracePeriodSeconds", 0)])
        except ApiException as exc:
            if exc.status not in (404, 405):
                raise
    # The namespace controller's last step: drop the "kubernetes" finalizer so the namespace itself goes.
    deadline = time.monotonic() + timeout
    while True:
        try:
            ns = core.read_namespace(name)
        except ApiException as exc:
            if exc.status == 404:
                return
            raise
        if ns.spec and ns.spec.finalizers:
            ns.spec.finalizers = []
            try:
                core.replace_namespace_finalize(name, ns)
            except ApiException as exc:
                if exc.status not in (404, 409):  # 409: changed under us, read again
                    raise
        if time.monotonic() > deadline:
            raise TimeoutError(f"namespace {name} still present after {timeout:.0f} s")
        time.sleep(0.05)  # poll interval of a deadline-bounded wait
