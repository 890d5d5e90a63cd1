"""Demo data for `make up`: the user's story (reference/seed-article.md) on three sandbox clusters.

Each cluster runs the article's `nginx-distro-check` app: a ConfigMap with the page, a Deployment, its Pods on
two Nodes, a LoadBalancer Service annotated `external-dns.alpha.kubernetes.io/hostname: app.example.com` (the
"two public IPs, one name" of the article, here three), an Ingress with a host of its own behind the
distribution's usual ingress class, and a NodePort Service published on the nodes' external addresses.
Addresses are from the documentation ranges (TEST-NET-2/3 for public, RFC 1918 for private), so nothing here
points at a real host.

Seeding is idempotent: objects that exist are left as they are; status (what controllers write) is set again.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from kubernetes import client
from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException

from tools.kube_sandbox.objects import (
    api_client,
    create_node,
    create_pod,
    set_ingress_load_balancer,
    set_service_load_balancer,
)
from tools.kube_sandbox.sandbox import Cluster

DEMO_HOSTNAME = "app.example.com"
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
    ),
)
DEMO_CLUSTER_NAMES: tuple[str, ...] = tuple(c.name for c in DEMO_CLUSTERS)


def _create_if_absent(create: Any, *args: Any) -> None:
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
    core, apps, net = client.CoreV1Api(api), client.AppsV1Api(api), client.NetworkingV1Api(api)
    m = _manifests(spec)
    ns = DEMO_NAMESPACE
    # The serviceaccount controller would have made `default` in `default`; Pods need it to be admitted.
    _create_if_absent(
        core.create_namespaced_service_account,
        ns,
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default"}},
    )
    for node_name, internal_ip, external_ip in spec.nodes:
        _create_if_absent(
            lambda n=node_name, i=internal_ip, e=external_ip: create_node(
                api, n, internal_ip=i, external_ip=e, labels={"topology.kubernetes.io/region": spec.name}
            )
        )
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
    set_ingress_load_balancer(api, ns, APP, ips=[spec.ingress_ip])


def seed_demo(clusters: Iterable[Cluster]) -> list[str]:
    """Seed every cluster whose name is one of DEMO_CLUSTER_NAMES; returns the names seeded."""
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
