"""Demo data for `make up`: the user's story (reference/seed-article.md) on three sandbox clusters.

Each cluster runs the article's `nginx-distro-check` app: a ConfigMap with the page, a Deployment, its Pods on
two Nodes, a LoadBalancer Service annotated `external-dns.alpha.kubernetes.io/hostname: app.example.com` (the
"two public IPs, one name" of the article, here three), an Ingress with a host of its own behind the
distribution's usual ingress class, and a NodePort Service published on the nodes' external addresses.
Addresses are from the documentation ranges (TEST-NET-2/3 for public, RFC 1918 for private), so nothing here
points at a real host.

k3s-edge has moved one name to the Gateway API: the official Gateway API CRDs (from their Go module,
crds.sh) are installed there, and an HTTPRoute `gateway.app.example.com` attached to a Gateway (its address
set as a gateway controller would) publishes through ExternalDNS's gateway-httproute source, which the
cluster's source options turn on.

The on-prem clusters (rke2-dc1, k3s-edge) also publish the app inside the data centre: a LoadBalancer Service
`app-internal` annotated `external-dns.alpha.kubernetes.io/hostname: app.dc.internal`, whose load balancer
address is a loopback address of its own per cluster (127.0.0.2, 127.0.0.3). `make up` serves the zone
`dc.internal` from a real PowerDNS and starts a page server naming the cluster on each of those addresses
(tools/demo_http), so the name resolves and the addresses answer on this machine: one name, two clusters,
one round-robin record set with two values.

Each cluster's Nodes carry the labels, annotations and kubelet version their distribution really gives them
(EKS managed node groups, RKE2, K3s), so the portal's cluster check tells them apart as it would real ones.

Seeding is idempotent: objects that exist are left as they are; status (what controllers write) is set again,
and so are the Nodes' distribution labels, so a data directory kept from an earlier seed gets them too.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

# The kubernetes client is imported where a cluster is seeded: make up's supervisor reads the demo's names
# and addresses from this module while the portal starts, and importing the client takes it half a second.
if TYPE_CHECKING:
    from kubernetes.client import ApiClient

    from tools.kube_sandbox.sandbox import Cluster

DEMO_HOSTNAME = "app.example.com"
# The on-prem clusters' internal name, in the zone the demo's PowerDNS serves.
INTERNAL_ZONE = "dc.internal"
INTERNAL_HOSTNAME = f"app.{INTERNAL_ZONE}"
INTERNAL_SERVICE = "app-internal"
DEMO_NAMESPACE = "default"
APP = "nginx-distro-check"
ANNOTATION = "external-dns.alpha.kubernetes.io"


@dataclass(frozen=True, slots=True)
class DemoCluster:
    name: str
    distro: str  # shown on the nginx page, as in the article
    ingress_class: str
    lb_ip: str  # the LoadBalancer Service's public address
    ingress_ip: str  # the ingress controller's public address
    ingress_host: str
    nodes: tuple[tuple[str, str, str], ...]  # (name, InternalIP, ExternalIP)
    pod_cidr_prefix: str  # pods get <prefix>.<n>
    kubelet_suffix: (
        str  # what the distribution appends to the Kubernetes version: "-eks-…", "+rke2r1", "+k3s1"
    )
    # Labels every Node of the cluster gets besides the ones every kubelet sets; a None value removes a label
    # an earlier seed set. Per-node ones (zone, role, the distribution's own annotations) come from node_meta.
    node_labels: Mapping[str, str | None] = field(default_factory=dict)
    # The `app-internal` Service's load balancer address, a loopback address of the cluster's own (Linux
    # routes all of 127/8 to lo), where make up serves a page naming the cluster; "": no internal Service.
    internal_lb_ip: str = ""
    # (HTTPRoute hostname, Gateway address) when the cluster publishes through the Gateway API; () when not.
    gateway: tuple[str, str] = ()


# The source options make up gives a demo cluster that publishes through an HTTPRoute.
GATEWAY_SOURCES = ("service", "ingress", "gateway-httproute")
GATEWAY_API = ("gateway.networking.k8s.io", "v1")


DEMO_CLUSTERS: tuple[DemoCluster, ...] = (
    DemoCluster(
        name="eks-us-east-1",
        distro="EKS",
        ingress_class="alb",
        lb_ip="203.0.113.10",
        ingress_ip="203.0.113.11",
        ingress_host="eks.app.example.com",
        nodes=(
            ("ip-10-0-1-10.ec2.internal", "10.0.1.10", "203.0.113.21"),
            ("ip-10-0-2-11.ec2.internal", "10.0.2.11", "203.0.113.22"),
        ),
        pod_cidr_prefix="10.0.100",
        kubelet_suffix="-eks-3a1b2c4",
        # A managed node group's nodes, as EKS and the AWS cloud provider label them.
        node_labels={
            "eks.amazonaws.com/nodegroup": "ng-general",
            "eks.amazonaws.com/capacityType": "ON_DEMAND",
            "eks.amazonaws.com/nodegroup-image": "ami-0c2d6a5f0e6b1a2c3",
            "node.kubernetes.io/instance-type": "m5.large",
            "beta.kubernetes.io/instance-type": "m5.large",
            "topology.kubernetes.io/region": "us-east-1",
            "failure-domain.beta.kubernetes.io/region": "us-east-1",
        },
    ),
    DemoCluster(
        name="rke2-dc1",
        distro="RKE2",
        ingress_class="nginx",
        lb_ip="198.51.100.10",
        ingress_ip="198.51.100.11",
        ingress_host="rke2.app.example.com",
        nodes=(
            ("rke2-dc1-worker-1", "192.168.10.11", "198.51.100.21"),
            ("rke2-dc1-worker-2", "192.168.10.12", "198.51.100.22"),
        ),
        pod_cidr_prefix="10.42.0",
        kubelet_suffix="+rke2r1",
        # RKE2's embedded cloud provider names the distribution as the instance type; no region on premises.
        node_labels={
            "node.kubernetes.io/instance-type": "rke2",
            "beta.kubernetes.io/instance-type": "rke2",
            "topology.kubernetes.io/region": None,
        },
        internal_lb_ip="127.0.0.2",
    ),
    DemoCluster(
        name="k3s-edge",
        distro="K3s",
        ingress_class="traefik",
        lb_ip="198.51.100.40",
        ingress_ip="198.51.100.41",
        ingress_host="k3s.app.example.com",
        nodes=(
            ("k3s-edge-1", "172.16.0.11", "198.51.100.51"),
            ("k3s-edge-2", "172.16.0.12", "198.51.100.52"),
        ),
        pod_cidr_prefix="10.43.0",
        kubelet_suffix="+k3s1",
        # K3s, like RKE2 (its sibling), names itself as the instance type.
        node_labels={
            "node.kubernetes.io/instance-type": "k3s",
            "beta.kubernetes.io/instance-type": "k3s",
            "topology.kubernetes.io/region": None,
        },
        internal_lb_ip="127.0.0.3",
        gateway=("gateway.app.example.com", "198.51.100.42"),
    ),
)
DEMO_CLUSTER_NAMES: tuple[str, ...] = tuple(c.name for c in DEMO_CLUSTERS)


def internal_pages() -> dict[str, str]:
    """{load balancer address: cluster name} of the clusters with an `app-internal` Service: where make up
    serves each one's page."""
    return {c.internal_lb_ip: c.name for c in DEMO_CLUSTERS if c.internal_lb_ip}


def node_meta(spec: DemoCluster, index: int, name: str, internal_ip: str) -> tuple[dict, dict]:
    """The labels and annotations of the `index`-th (from 0) Node of a demo cluster, as its distribution and
    kubelet set them."""
    labels: dict[str, str | None] = {
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "beta.kubernetes.io/os": "linux",
        "beta.kubernetes.io/arch": "amd64",
        **spec.node_labels,
    }
    annotations: dict[str, str] = {"node.alpha.kubernetes.io/ttl": "0"}
    if spec.distro == "EKS":
        zone = ("us-east-1a", "us-east-1b", "us-east-1c")[index % 3]
        labels |= {"topology.kubernetes.io/zone": zone, "failure-domain.beta.kubernetes.io/zone": zone}
        annotations["alpha.kubernetes.io/provided-node-ip"] = internal_ip
    elif spec.distro in {"RKE2", "K3s"}:
        # rke2 and k3s record how each node was started in annotations under their own prefix.
        prefix = "rke2.io" if spec.distro == "RKE2" else "k3s.io"
        server = spec.distro == "K3s" and index == 0  # the edge site's first node runs the K3s server
        args = ["server"] if server else ["agent", "--server", "https://192.0.2.1:6443"]
        annotations |= {
            f"{prefix}/hostname": name,
            f"{prefix}/internal-ip": internal_ip,
            f"{prefix}/node-args": json.dumps(args),
            f"{prefix}/node-env": "{}",
        }
        if server:
            labels |= {
                "node-role.kubernetes.io/control-plane": "true",
                "node-role.kubernetes.io/master": "true",
            }
        elif spec.distro == "RKE2":
            # The role label RKE2 agents get from their config's `node-label` (Rancher sets the same one).
            labels["node-role.kubernetes.io/worker"] = "true"
    return labels, annotations


def kubelet_version(server_version: str, spec: DemoCluster) -> str:
    """The version a node's kubelet of this distribution reports, on the sandbox's Kubernetes release."""
    match = re.match(r"v\d+\.\d+\.\d+", server_version)
    return (match.group(0) if match else "v1.0.0") + spec.kubelet_suffix


def dress_node(
    api: ApiClient, spec: DemoCluster, index: int, name: str, internal_ip: str, version: str
) -> None:
    """Give a Node its distribution's labels, annotations and node info (a Node an earlier seed made too)."""
    from kubernetes import client

    core = client.CoreV1Api(api)
    labels, annotations = node_meta(spec, index, name, internal_ip)
    core.patch_node(
        name,
        {"metadata": {"labels": labels, "annotations": annotations}},
        _content_type="application/merge-patch+json",
    )
    system_uuid = str(uuid.uuid5(uuid.NAMESPACE_DNS, name))
    node_info = {
        "kubeletVersion": version,
        "kubeProxyVersion": "",  # deprecated: kubelets stopped reporting it
        "containerRuntimeVersion": "containerd://1.7.27" + ("-k3s1" if spec.distro == "K3s" else ""),
        "osImage": "Amazon Linux 2023" if spec.distro == "EKS" else "Ubuntu 24.04 LTS",
        "kernelVersion": "6.1.132-147.221.amzn2023.x86_64" if spec.distro == "EKS" else "6.8.0-57-generic",
        "operatingSystem": "linux",
        "architecture": "amd64",
        # Stable per node, so seeding again writes the same values.
        "machineID": uuid.uuid5(uuid.NAMESPACE_DNS, f"machine.{name}").hex,
        # An EC2 instance's system UUID starts with "ec2".
        "systemUUID": "ec2" + system_uuid[3:] if spec.distro == "EKS" else system_uuid,
        "bootID": str(uuid.uuid5(uuid.NAMESPACE_DNS, f"boot.{name}")),
    }
    core.patch_node_status(
        name, {"status": {"nodeInfo": node_info}}, _content_type="application/merge-patch+json"
    )


def _create_if_absent(create: Any, *args: Any) -> None:
    from kubernetes.client.exceptions import ApiException

    try:
        create(*args)
    except ApiException as exc:
        if exc.status != 409:
            raise


def _manifests(spec: DemoCluster) -> dict[str, dict[str, Any]]:
    labels = {"app": "nginx"}
    page = (
        "<html>\n<head><title>Cluster Discovery</title></head>\n<body>\n"
        "  <h1>Hello from the Cluster!</h1>\n"
        f"  <p>This application is currently running on: <b>{spec.distro} Cluster</b></p>\n</body>\n</html>\n"
    )
    port = [{"name": "http", "port": 80, "targetPort": 80, "protocol": "TCP"}]
    return {
        "configmap": {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "nginx-content"},
            "data": {"index.html": page},
        },
        "deployment": {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": APP, "labels": labels},
            "spec": {
                "replicas": len(spec.nodes),
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "containers": [
                            {
                                "name": "nginx",
                                "image": "nginx:latest",
                                "ports": [{"containerPort": 80}],
                                "volumeMounts": [
                                    {
                                        "name": "html-volume",
                                        "subPath": "index.html",
                                        "mountPath": "/usr/share/nginx/html/index.html",
                                    }
                                ],
                            }
                        ],
                        "volumes": [{"name": "html-volume", "configMap": {"name": "nginx-content"}}],
                    },
                },
            },
        },
        "lb": {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {
                "name": APP,
                "annotations": {
                    f"{ANNOTATION}/hostname": DEMO_HOSTNAME,
                    f"{ANNOTATION}/ttl": "60",
                },
            },
            "spec": {"type": "LoadBalancer", "selector": labels, "ports": port},
        },
        "nodeport": {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {
                "name": f"{APP}-nodeport",
                "annotations": {
                    f"{ANNOTATION}/hostname": f"nodes.{DEMO_HOSTNAME}",
                    f"{ANNOTATION}/access": "public",
                },
            },
            "spec": {"type": "NodePort", "selector": labels, "ports": port},
        },
        "internal": {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {
                "name": INTERNAL_SERVICE,
                "annotations": {
                    f"{ANNOTATION}/hostname": INTERNAL_HOSTNAME,
                    f"{ANNOTATION}/ttl": "60",
                },
            },
            "spec": {"type": "LoadBalancer", "selector": labels, "ports": port},
        },
        "ingress": {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "Ingress",
            "metadata": {
                "name": APP,
                "annotations": {f"{ANNOTATION}/ttl": "60", f"{ANNOTATION}/access": "public"},
            },
            "spec": {
                "ingressClassName": spec.ingress_class,
                "rules": [
                    {
                        "host": spec.ingress_host,
                        "http": {
                            "paths": [
                                {
                                    "path": "/",
                                    "pathType": "Prefix",
                                    "backend": {"service": {"name": APP, "port": {"number": 80}}},
                                }
                            ]
                        },
                    }
                ],
            },
        },
    }


def seed_cluster(api: ApiClient, spec: DemoCluster) -> None:
    """Create the demo objects in one cluster (admin client) and fill in what its controllers would."""
    from kubernetes import client

    from tools.kube_sandbox.objects import (
        create_node,
        create_pod,
        set_ingress_load_balancer,
        set_service_load_balancer,
    )

    core, apps, net = client.CoreV1Api(api), client.AppsV1Api(api), client.NetworkingV1Api(api)
    m = _manifests(spec)
    ns = DEMO_NAMESPACE
    # The serviceaccount controller would have made `default` in `default`; Pods need it to be admitted.
    _create_if_absent(
        core.create_namespaced_service_account,
        ns,
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default"}},
    )
    version = kubelet_version(client.VersionApi(api).get_code().git_version, spec)
    for index, (node_name, internal_ip, external_ip) in enumerate(spec.nodes):
        _create_if_absent(
            lambda n=node_name, i=internal_ip, e=external_ip: create_node(
                api, n, internal_ip=i, external_ip=e
            )
        )
        dress_node(api, spec, index, node_name, internal_ip, version)
    _create_if_absent(core.create_namespaced_config_map, ns, m["configmap"])
    _create_if_absent(apps.create_namespaced_deployment, ns, m["deployment"])
    for i, (node_name, internal_ip, _external) in enumerate(spec.nodes, start=1):
        _create_if_absent(
            lambda i=i, n=node_name, h=internal_ip: create_pod(
                api,
                ns,
                f"{APP}-{i}",
                pod_ip=f"{spec.pod_cidr_prefix}.{10 + i}",
                node_name=n,
                host_ip=h,
                labels={"app": "nginx"},
                image="nginx:latest",
            )
        )
    _create_if_absent(core.create_namespaced_service, ns, m["lb"])
    _create_if_absent(core.create_namespaced_service, ns, m["nodeport"])
    _create_if_absent(net.create_namespaced_ingress, ns, m["ingress"])
    set_service_load_balancer(api, ns, APP, ips=[spec.lb_ip])
    if spec.internal_lb_ip:
        _create_if_absent(core.create_namespaced_service, ns, m["internal"])
        set_service_load_balancer(api, ns, INTERNAL_SERVICE, ips=[spec.internal_lb_ip])
    set_ingress_load_balancer(api, ns, APP, ips=[spec.ingress_ip])
    if spec.gateway:
        seed_gateway(api, spec)


def seed_gateway(api: ApiClient, spec: DemoCluster) -> None:
    """The Gateway API CRDs, a Gateway with its address and an HTTPRoute it accepted (statuses as a gateway
    controller writes them)."""
    from kubernetes import client

    from tools.kube_sandbox.crds import install_crds

    install_crds(api)
    hostname, address = spec.gateway
    objects = client.CustomObjectsApi(api)
    ns = DEMO_NAMESPACE
    version = "/".join(GATEWAY_API)
    gateway = {
        "apiVersion": version,
        "kind": "Gateway",
        "metadata": {"name": "public"},
        "spec": {
            "gatewayClassName": spec.ingress_class,
            "listeners": [{"name": "http", "protocol": "HTTP", "port": 80, "hostname": f"*.{DEMO_HOSTNAME}"}],
        },
    }
    route = {
        "apiVersion": version,
        "kind": "HTTPRoute",
        "metadata": {"name": APP, "annotations": {f"{ANNOTATION}/ttl": "60"}},
        "spec": {
            "parentRefs": [{"name": "public"}],
            "hostnames": [hostname],
            "rules": [{"backendRefs": [{"name": APP, "port": 80}]}],
        },
    }
    _create_if_absent(objects.create_namespaced_custom_object, *GATEWAY_API, ns, "gateways", gateway)
    _create_if_absent(objects.create_namespaced_custom_object, *GATEWAY_API, ns, "httproutes", route)
    addresses = {"status": {"addresses": [{"type": "IPAddress", "value": address}]}}
    objects.patch_namespaced_custom_object_status(*GATEWAY_API, ns, "gateways", "public", addresses)
    accepted = {
        "type": "Accepted",
        "status": "True",
        "reason": "Accepted",
        "message": "",
        "lastTransitionTime": "2026-01-01T00:00:00Z",
    }
    parent = {"parentRef": {"name": "public"}, "controllerName": "example.com/demo", "conditions": [accepted]}
    objects.patch_namespaced_custom_object_status(
        *GATEWAY_API, ns, "httproutes", APP, {"status": {"parents": [parent]}}
    )


def seed_demo(clusters: Iterable[Cluster]) -> list[str]:
    """Seed every cluster whose name is one of DEMO_CLUSTER_NAMES; returns the names seeded."""
    from tools.kube_sandbox.objects import api_client

    by_name = {c.name: c for c in DEMO_CLUSTERS}
    seeded: list[str] = []
    for cluster in clusters:
        spec = by_name.get(cluster.name)
        if spec is None:
            continue
        with api_client(cluster.kubeconfig("admin")) as api:
            seed_cluster(api, spec)
        seeded.append(cluster.name)
    return seeded
