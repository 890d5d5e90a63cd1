"""clusters.endpoints: one object (and what it needs) in, the endpoints ExternalDNS would compute out.

Each case is an object, the cluster's source options and inventory, and the expected endpoints written
as `name TYPE target,target [ttl=N] [sid=X] [property=value...]` (order-free), or the expected errors,
warnings or skip reason. Facts: shared/reference/external-dns.md sections 1 and 2.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import pytest

from clusters.endpoints import (
    Inventory,
    compute_endpoints,
    inventory_kinds,
    merge_endpoints,
    object_endpoints,
    private_targets,
    service_endpoints,
    service_selects,
    slice_service,
    suitable_type,
)
from clusters.source_options import SourceOptions
from records.endpoint import Endpoint

A = "external-dns.alpha.kubernetes.io/"  # the prefix up to ExternalDNS v0.21
G = "external-dns.kubernetes.io/"  # the GA prefix since v0.22


# ------------------------------------------------------------------------------------------- builders


def svc(
    type: str = "LoadBalancer",
    ann: dict[str, str] | None = None,
    *,
    name: str = "web",
    ns: str = "shop",
    lb: tuple[str, ...] = (),
    cluster_ip: str = "10.96.0.10",
    labels: dict[str, str] | None = None,
    **spec: Any,
) -> dict[str, Any]:
    """A Service; `lb` entries are status ips or hostnames, `spec` extra spec keys (camelCase)."""
    ingress = [{"ip": x} if x[0].isdigit() or ":" in x else {"hostname": x} for x in lb]
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": name,
            "namespace": ns,
            "uid": f"uid-{name}",
            "resourceVersion": "42",
            "annotations": ann or {},
            "labels": labels or {},
        },
        "spec": {"type": type, "clusterIP": cluster_ip, "selector": {"app": name}, **spec},
        "status": {"loadBalancer": {"ingress": ingress}},
    }


def headless(ann: dict[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    return svc("ClusterIP", ann, cluster_ip="None", **spec)


def nodeport(ann: dict[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    ports = spec.pop("ports", [{"name": "http", "port": 80, "nodePort": 30080, "protocol": "TCP"}])
    return svc("NodePort", ann, ports=ports, **spec)


def ing(
    hosts: tuple[str, ...] = ("shop.example.com",),
    ann: dict[str, str] | None = None,
    *,
    lb: tuple[str, ...] = ("203.0.113.20",),
    tls: tuple[str, ...] = (),
    ingress_class: str | None = None,
    name: str = "web",
    ns: str = "shop",
) -> dict[str, Any]:
    spec: dict[str, Any] = {"rules": [{"host": h, "http": {"paths": []}} for h in hosts]}
    if tls:
        spec["tls"] = [{"hosts": list(tls), "secretName": "tls"}]
    if ingress_class is not None:
        spec["ingressClassName"] = ingress_class
    ingress = [{"ip": x} if x[0].isdigit() else {"hostname": x} for x in lb]
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": name, "namespace": ns, "annotations": ann or {}},
        "spec": spec,
        "status": {"loadBalancer": {"ingress": ingress}},
    }


def node(
    name: str, external: tuple[str, ...] = (), internal: tuple[str, ...] = (), unschedulable: bool = False
) -> dict[str, Any]:
    addrs = [{"type": "ExternalIP", "address": a} for a in external]
    addrs += [{"type": "InternalIP", "address": a} for a in internal]
    addrs.append({"type": "Hostname", "address": name})
    return {
        "kind": "Node",
        "metadata": {"name": name},
        "spec": {"unschedulable": True} if unschedulable else {},
        "status": {"addresses": addrs},
    }


def pod(
    name: str,
    node_name: str = "n1",
    *,
    app: str = "web",
    ready: bool = True,
    phase: str = "Running",
    hostname: str = "",
    ann: dict[str, str] | None = None,
    host_ip: str = "192.0.2.1",
    terminating: bool = False,
) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": name,
        "namespace": "shop",
        "labels": {"app": app},
        "annotations": ann or {},
    }
    if terminating:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    spec: dict[str, Any] = {"nodeName": node_name}
    if hostname:
        spec["hostname"] = hostname
    return {
        "kind": "Pod",
        "metadata": meta,
        "spec": spec,
        "status": {
            "phase": phase,
            "hostIP": host_ip,
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        },
    }


def slice_(*eps: tuple[str, str, bool], service: str = "web", address_type: str = "IPv4") -> dict[str, Any]:
    """An EndpointSlice of `service` with (address, pod name, ready) endpoints."""
    return {
        "kind": "EndpointSlice",
        "apiVersion": "discovery.k8s.io/v1",
        "metadata": {
            "name": f"{service}-abc",
            "namespace": "shop",
            "labels": {"kubernetes.io/service-name": service},
        },
        "addressType": address_type,
        "endpoints": [
            {"addresses": [ip], "conditions": {"ready": ready}, "targetRef": {"kind": "Pod", "name": p}}
            for ip, p, ready in eps
        ],
    }


NODES = (node("n1", ("198.51.100.1",), ("10.0.0.1",)), node("n2", ("198.51.100.2",), ("10.0.0.2",)))


def fmt(ep: Endpoint) -> str:
    out = f"{ep.dns_name} {ep.record_type} {','.join(ep.targets)}"
    if ep.ttl:
        out += f" ttl={ep.ttl}"
    if ep.set_identifier:
        out += f" sid={ep.set_identifier}"
    return out + "".join(f" {k}={v}" for k, v in ep.provider_specific)


@dataclass(frozen=True)
class C:
    id: str
    obj: dict[str, Any]
    want: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()  # each a substring of one error message, in order
    warnings: tuple[str, ...] = ()  # each a substring of some warning
    skipped: str | None = None  # substring of the skip reason
    options: dict[str, Any] = field(default_factory=dict)
    inventory: tuple[dict[str, Any], ...] = ()


H = {A + "hostname": "web.example.com"}
LB = ("203.0.113.10",)


CASES = [
    # --- LoadBalancer Services
    C("lb-ip-is-A", svc(ann=H, lb=LB), ("web.example.com A 203.0.113.10",)),
    C(
        "lb-hostname-is-CNAME",
        svc(ann=H, lb=("abc.elb.amazonaws.com",)),
        ("web.example.com CNAME abc.elb.amazonaws.com",),
    ),
    C(
        "lb-one-endpoint-per-type",
        svc(ann=H, lb=("203.0.113.10", "2001:db8::10", "203.0.113.11", "lb.example.net")),
        (
            "web.example.com A 203.0.113.10,203.0.113.11",
            "web.example.com AAAA 2001:db8::10",
            "web.example.com CNAME lb.example.net",
        ),
    ),
    C(
        "lb-external-ips-win-over-status",
        svc(ann=H, lb=LB, externalIPs=["198.51.100.7"]),
        ("web.example.com A 198.51.100.7",),
    ),
    C("lb-without-address-publishes-nothing-yet", svc(ann=H), skipped="no address yet"),
    C(
        "hostname-list-spaces-and-trailing-dots",
        svc(ann={A + "hostname": " web.example.com., WWW.example.com ,,"}, lb=LB),
        ("web.example.com A 203.0.113.10", "www.example.com A 203.0.113.10"),
    ),
    C(
        "ga-prefix-is-read",
        svc(ann={G + "hostname": "web.example.com"}, lb=LB),
        ("web.example.com A 203.0.113.10",),
    ),
    C(
        "ga-prefix-wins-over-alpha-with-a-warning",
        svc(
            ann={G + "hostname": "new.example.com", A + "hostname": "old.example.com", A + "ttl": "60"}, lb=LB
        ),
        ("new.example.com A 203.0.113.10 ttl=60",),
        warnings=(f"`{G}hostname` (`new.example.com`) is used",),
    ),
    C(
        "target-annotation-overrides-the-lb",
        svc(ann={**H, A + "target": "198.51.100.9, edge.example.net."}, lb=LB),
        ("web.example.com A 198.51.100.9", "web.example.com CNAME edge.example.net"),
    ),
    C(
        "target-ipv6-is-AAAA",
        svc(ann={**H, A + "target": "2001:db8::1"}),
        ("web.example.com AAAA 2001:db8::1",),
    ),
    C(
        "bad-target-fails-the-object",
        svc(ann={**H, A + "target": "not a host!"}, lb=LB),
        errors=(
            f"annotation `{A}target` on Service `shop/web`: `notahost!` is neither an IP address nor a host",
        ),
    ),
    # --- ttl
    C("ttl-seconds", svc(ann={**H, A + "ttl": "600"}, lb=LB), ("web.example.com A 203.0.113.10 ttl=600",)),
    C(
        "ttl-go-duration",
        svc(ann={**H, A + "ttl": "1h30m"}, lb=LB),
        ("web.example.com A 203.0.113.10 ttl=5400",),
    ),
    C(
        "ttl-fraction-truncates",
        svc(ann={**H, A + "ttl": "1.5s"}, lb=LB),
        ("web.example.com A 203.0.113.10 ttl=1",),
    ),
    C(
        # ExternalDNS publishes with the TTL not configured and a warning; so does the portal
        "ttl-abc-is-a-warning",
        svc(ann={**H, A + "ttl": "abc"}, lb=LB),
        ("web.example.com A 203.0.113.10",),
        warnings=(f"`{A}ttl` on Service `shop/web`: `abc`",),
    ),
    C(
        "ttl-zero-is-a-warning",
        svc(ann={**H, A + "ttl": "0"}, lb=LB),
        ("web.example.com A 203.0.113.10",),
        warnings=("from 1 to 2147483647 seconds",),
    ),
    C(
        "ttl-below-a-second-is-a-warning",
        svc(ann={**H, A + "ttl": "500ms"}, lb=LB),
        ("web.example.com A 203.0.113.10",),
        warnings=("`500ms` is 0 seconds",),
    ),
    # --- routing and aws-* properties
    C(
        "weighted",
        svc(ann={**H, A + "set-identifier": "eks-eu1", A + "aws-weight": "80"}, lb=LB),
        ("web.example.com A 203.0.113.10 sid=eks-eu1 aws/weight=80",),
    ),
    C(
        "weight-300-is-an-error",
        svc(ann={**H, A + "set-identifier": "a", A + "aws-weight": "300"}, lb=LB),
        errors=("`300` is not an integer from 0 to 255",),
    ),
    C(
        "failover-primary",
        svc(ann={**H, G + "set-identifier": "dc1", G + "aws-failover": "PRIMARY"}, lb=LB),
        ("web.example.com A 203.0.113.10 sid=dc1 aws/failover=PRIMARY",),
    ),
    C(
        "failover-lowercase-is-an-error",
        svc(ann={**H, A + "set-identifier": "dc1", A + "aws-failover": "primary"}, lb=LB),
        errors=(
            f"annotation `{A}aws-failover` on Service `shop/web`: `primary` is not PRIMARY or SECONDARY",
        ),
    ),
    C(
        "latency-region",
        svc(ann={**H, A + "set-identifier": "eu", A + "aws-region": "eu-west-1"}, lb=LB),
        ("web.example.com A 203.0.113.10 sid=eu aws/region=eu-west-1",),
    ),
    C(
        "unknown-region-is-an-error",
        svc(ann={**H, A + "set-identifier": "eu", A + "aws-region": "europe-1"}, lb=LB),
        errors=("`europe-1` is not an AWS region",),
    ),
    C(
        "geolocation-country-and-subdivision",
        svc(
            ann={
                **H,
                A + "set-identifier": "us-ca",
                A + "aws-geolocation-country-code": "US",
                A + "aws-geolocation-subdivision-code": "CA",
            },
            lb=LB,
        ),
        (
            "web.example.com A 203.0.113.10 sid=us-ca aws/geolocation-country-code=US "
            "aws/geolocation-subdivision-code=CA",
        ),
    ),
    C(
        "geolocation-bad-continent-is-an-error",
        svc(ann={**H, A + "set-identifier": "x", A + "aws-geolocation-continent-code": "XX"}, lb=LB),
        errors=("`XX` is not a continent code",),
    ),
    C(
        "geolocation-subdivision-without-country-is-an-error",
        svc(ann={**H, A + "set-identifier": "x", A + "aws-geolocation-subdivision-code": "CA"}, lb=LB),
        errors=("needs a country code",),
    ),
    C(
        "geoproximity-coordinates-out-of-range-is-an-error",
        svc(ann={**H, A + "set-identifier": "x", A + "aws-geoproximity-coordinates": "95.0,10"}, lb=LB),
        errors=("is not `latitude,longitude`",),
    ),
    C(
        "every-aws-annotation-is-passed-through",
        svc(
            ann={
                **H,
                A + "set-identifier": "blue",
                A + "aws-weight": "0",
                A + "aws-health-check-id": "3f2c4d1e-1a2b-4c3d-8e9f-0a1b2c3d4e5f",
                A + "aws-evaluate-target-health": "false",
                A + "aws-multi-value-answer": "",
                A + "aws-hosted-zone-id": "Z123",
                A + "aws-frobnicate": "yes",
            },
            lb=LB,
        ),
        (
            "web.example.com A 203.0.113.10 sid=blue aws/evaluate-target-health=false aws/frobnicate=yes "
            "aws/health-check-id=3f2c4d1e-1a2b-4c3d-8e9f-0a1b2c3d4e5f aws/hosted-zone-id=Z123 "
            "aws/multi-value-answer= aws/weight=0",
        ),
        warnings=("no `aws/frobnicate` property",),
    ),
    C(
        "routing-without-set-identifier-warns-and-publishes-simple",
        svc(ann={**H, A + "aws-weight": "10"}, lb=LB),
        ("web.example.com A 203.0.113.10 aws/weight=10",),
        warnings=("has no effect without a `set-identifier`",),
    ),
    C(
        "alias-true-sets-the-property",
        svc(ann={**H, A + "alias": "true"}, lb=("abc.elb.amazonaws.com",)),
        ("web.example.com CNAME abc.elb.amazonaws.com alias=true",),
    ),
    C(
        "alias-false-sets-nothing",
        svc(ann={**H, A + "alias": "false"}, lb=LB),
        ("web.example.com A 203.0.113.10",),
    ),
    C(
        "typo-annotation-warns",
        svc(ann={**H, A + "hostnmae": "x.example.com"}, lb=LB),
        ("web.example.com A 203.0.113.10",),
        warnings=("is not an ExternalDNS annotation",),
    ),
    # --- controller
    C(
        "other-controller-is-skipped",
        svc(ann={**H, A + "controller": "kops"}, lb=LB),
        skipped="another controller",
    ),
    C(
        "dns-controller-is-ours",
        svc(ann={**H, A + "controller": "dns-controller"}, lb=LB),
        ("web.example.com A 203.0.113.10",),
    ),
    # --- ClusterIP
    C("clusterip-needs-publish-internal", svc("ClusterIP", H), skipped="publish-internal-services"),
    C(
        "clusterip-with-publish-internal-services",
        svc("ClusterIP", H),
        ("web.example.com A 10.96.0.10",),
        options={"publish-internal-services": True},
    ),
    C(
        "internal-hostname-on-clusterip",
        svc("ClusterIP", {A + "internal-hostname": "web.internal.example.com"}),
        ("web.internal.example.com A 10.96.0.10",),
    ),
    C(
        "internal-hostname-on-lb-uses-cluster-ip",
        svc(ann={**H, A + "internal-hostname": "web.internal.example.com"}, lb=LB),
        ("web.example.com A 203.0.113.10", "web.internal.example.com A 10.96.0.10"),
    ),
    # --- headless
    C(
        "headless-ready-addresses-and-pod-hostnames",
        headless(H),
        (
            "web.example.com A 10.1.0.1,10.1.0.2",
            "web-0.web.example.com A 10.1.0.1",
            "web-1.web.example.com A 10.1.0.2",
        ),
        inventory=(
            pod("web-0", hostname="web-0"),
            pod("web-1", hostname="web-1"),
            pod("web-2", hostname="web-2", ready=False),
            slice_(("10.1.0.1", "web-0", True), ("10.1.0.2", "web-1", True), ("10.1.0.3", "web-2", False)),
        ),
    ),
    C(
        "headless-publish-not-ready-addresses",
        headless(H, publishNotReadyAddresses=True),
        ("web.example.com A 10.1.0.1,10.1.0.3",),
        inventory=(
            pod("web-0"),
            pod("web-2", ready=False),
            slice_(("10.1.0.1", "web-0", True), ("10.1.0.3", "web-2", False)),
        ),
    ),
    C(
        "headless-endpoints-type-hostip",
        headless({**H, A + "endpoints-type": "HostIP"}),
        ("web.example.com A 192.0.2.1,192.0.2.2",),
        inventory=(
            pod("web-0", host_ip="192.0.2.1"),
            pod("web-1", host_ip="192.0.2.2"),
            slice_(("10.1.0.1", "web-0", True), ("10.1.0.2", "web-1", True)),
        ),
    ),
    C(
        "headless-endpoints-type-node-external-ip",
        headless({**H, A + "endpoints-type": "NodeExternalIP"}),
        ("web.example.com A 198.51.100.1,198.51.100.2",),
        inventory=(
            *NODES,
            pod("web-0", "n1"),
            pod("web-1", "n2"),
            slice_(("10.1.0.1", "web-0", True), ("10.1.0.2", "web-1", True)),
        ),
    ),
    C(
        "headless-pod-target-annotation",
        headless(H),
        ("web.example.com A 10.1.0.2,203.0.113.50",),
        inventory=(
            pod("web-0", ann={A + "target": "203.0.113.50"}),
            pod("web-1"),
            slice_(("10.1.0.1", "web-0", True), ("10.1.0.2", "web-1", True)),
        ),
    ),
    C(
        "headless-ipv6-slice-is-AAAA",
        headless(H),
        ("web.example.com AAAA fd00::1",),
        inventory=(pod("web-0"), slice_(("fd00::1", "web-0", True), address_type="IPv6")),
    ),
    # --- NodePort
    C(
        "nodeport-external-ips-and-srv",
        nodeport(H),
        (
            "web.example.com A 198.51.100.1,198.51.100.2",
            "_web._tcp.web.example.com SRV 0 50 30080 web.example.com.",
        ),
        inventory=NODES,
    ),
    C(
        "nodeport-access-private-uses-internal-ips",
        nodeport({**H, A + "access": "private"}),
        ("web.example.com A 10.0.0.1,10.0.0.2", "_web._tcp.web.example.com SRV 0 50 30080 web.example.com."),
        inventory=NODES,
    ),
    C(
        "nodeport-without-external-ips-uses-internal",
        nodeport(H),
        ("web.example.com A 10.0.0.1", "_web._tcp.web.example.com SRV 0 50 30080 web.example.com."),
        inventory=(node("n1", (), ("10.0.0.1",)),),
    ),
    C(
        "nodeport-skips-unschedulable-nodes",
        nodeport(H),
        ("web.example.com A 198.51.100.1", "_web._tcp.web.example.com SRV 0 50 30080 web.example.com."),
        inventory=(NODES[0], node("n2", ("198.51.100.2",), unschedulable=True)),
    ),
    C(
        "nodeport-local-policy-only-nodes-with-pods",
        nodeport(H, externalTrafficPolicy="Local"),
        ("web.example.com A 198.51.100.2", "_web._tcp.web.example.com SRV 0 50 30080 web.example.com."),
        inventory=(*NODES, pod("web-0", "n2")),
    ),
    C(
        "nodeport-local-policy-prefers-ready-pods",
        nodeport(H, externalTrafficPolicy="Local"),
        ("web.example.com A 198.51.100.1", "_web._tcp.web.example.com SRV 0 50 30080 web.example.com."),
        inventory=(*NODES, pod("web-0", "n1"), pod("web-1", "n2", ready=False)),
    ),
    C(
        "nodeport-one-srv-per-protocol-merged",
        nodeport(
            H,
            ports=[
                {"port": 80, "nodePort": 30080, "protocol": "TCP"},
                {"port": 443, "nodePort": 30443, "protocol": "TCP"},
                {"port": 53, "nodePort": 30053, "protocol": "UDP"},
            ],
        ),
        (
            "web.example.com A 198.51.100.1",
            "_web._tcp.web.example.com SRV 0 50 30080 web.example.com.,0 50 30443 web.example.com.",
            "_web._udp.web.example.com SRV 0 50 30053 web.example.com.",
        ),
        inventory=(NODES[0],),
    ),
    C(
        "nodeport-target-annotation-means-no-srv",
        nodeport({**H, A + "target": "203.0.113.5"}),
        ("web.example.com A 203.0.113.5",),
        inventory=NODES,
    ),
    C(
        "nodeport-alias-drops-srv-with-a-warning",
        nodeport({**H, A + "alias": "true"}),
        ("web.example.com A 198.51.100.1 alias=true",),
        warnings=("cannot be an alias",),
        inventory=(NODES[0],),
    ),
    C(
        # ExternalDNS reads an unknown access value as none (external addresses first); a warning says so
        "nodeport-unknown-access-reads-as-none-with-a-warning",
        nodeport({**H, A + "access": "Public"}),
        (
            "web.example.com A 198.51.100.1,198.51.100.2",
            "_web._tcp.web.example.com SRV 0 50 30080 web.example.com.",
        ),
        warnings=("is not public or private; read as no annotation",),
        inventory=NODES,
    ),
    # --- ExternalName
    C(
        "externalname-is-cname",
        svc("ExternalName", H, externalName="backend.example.net."),
        ("web.example.com CNAME backend.example.net",),
    ),
    C(
        "externalname-with-external-ips",
        svc("ExternalName", H, externalName="backend.example.net", externalIPs=["198.51.100.3"]),
        ("web.example.com A 198.51.100.3",),
    ),
    # --- names
    C(
        # ExternalDNS skips a name with a label over 63 characters and publishes the object's other names
        "label-over-63-characters-is-skipped-the-others-publish",
        svc(ann={A + "hostname": "a" * 64 + ".example.com,web.example.com"}, lb=LB),
        ("web.example.com A 203.0.113.10",),
        warnings=("is 64 characters long",),
    ),
    C(
        "generated-srv-name-too-long-is-skipped-the-a-record-publishes",
        nodeport(H, name="s" * 63),
        ("web.example.com A 198.51.100.1,198.51.100.2",),
        warnings=("record name from Service `shop/sss",),
        inventory=NODES,
    ),
    C(
        "wildcard-hostname",
        svc(ann={A + "hostname": "*.example.com"}, lb=LB),
        ("*.example.com A 203.0.113.10",),
    ),
    C("no-hostname-no-template", svc(lb=LB), skipped="no hostname annotation and no fqdn-template"),
    # --- Ingress
    C("ingress-rules-and-status-ip", ing(), ("shop.example.com A 203.0.113.20",)),
    C(
        "ingress-tls-hosts-count",
        ing(tls=("secure.example.com", "shop.example.com")),
        ("shop.example.com A 203.0.113.20", "secure.example.com A 203.0.113.20"),
    ),
    C(
        "ingress-ignore-tls-spec",
        ing(tls=("secure.example.com",)),
        ("shop.example.com A 203.0.113.20",),
        options={"ignore-ingress-tls-spec": True},
    ),
    C(
        "ingress-ignore-rules-spec",
        ing(tls=("secure.example.com",)),
        ("secure.example.com A 203.0.113.20",),
        options={"ignore-ingress-rules-spec": True},
    ),
    C(
        "ingress-status-hostname-is-cname",
        ing(lb=("k8s-alb-123.eu-west-1.elb.amazonaws.com",)),
        ("shop.example.com CNAME k8s-alb-123.eu-west-1.elb.amazonaws.com",),
    ),
    C(
        "ingress-hostname-annotation-adds-names",
        ing(ann={A + "hostname": "alt.example.com"}),
        ("shop.example.com A 203.0.113.20", "alt.example.com A 203.0.113.20"),
    ),
    C(
        "ingress-hostname-source-defined-hosts-only",
        ing(ann={A + "hostname": "alt.example.com", A + "ingress-hostname-source": "Defined-Hosts-Only"}),
        ("shop.example.com A 203.0.113.20",),
    ),
    C(
        "ingress-hostname-source-annotation-only",
        ing(ann={A + "hostname": "alt.example.com", A + "ingress-hostname-source": "annotation-only"}),
        ("alt.example.com A 203.0.113.20",),
    ),
    C(
        # ExternalDNS selects no host for an unknown value; only an fqdn-template's names are published
        "ingress-hostname-source-unknown-publishes-no-host-with-a-warning",
        ing(ann={A + "ingress-hostname-source": "both"}),
        warnings=("`both` is not defined-hosts-only or annotation-only; no host",),
    ),
    C(
        "ingress-hostname-source-unknown-keeps-the-fqdn-template",
        ing(ann={A + "hostname": "alt.example.com", A + "ingress-hostname-source": "both"}),
        ("web.tmpl.example.com A 203.0.113.20",),
        warnings=("no host of the Ingress is published (only an fqdn-template's)",),
        options={"fqdn-template": "{{.Name}}.tmpl.example.com", "combine-fqdn-annotation": True},
    ),
    C(
        "ingress-ignore-hostname-annotation",
        ing(ann={A + "hostname": "alt.example.com"}),
        ("shop.example.com A 203.0.113.20",),
        options={"ignore-hostname-annotation": True},
    ),
    C(
        "ingress-target-annotation",
        ing(ann={A + "target": "edge.example.net"}),
        ("shop.example.com CNAME edge.example.net",),
    ),
    C("ingress-without-address-publishes-nothing-yet", ing(lb=()), skipped="no load balancer address yet"),
    C(
        "ingress-class-name-matches-filter",
        ing(ingress_class="nginx"),
        ("shop.example.com A 203.0.113.20",),
        options={"ingress-class": ["nginx", "alb"]},
    ),
    C(
        "ingress-class-annotation-matches-filter",
        ing(ann={"kubernetes.io/ingress.class": "alb"}),
        ("shop.example.com A 203.0.113.20",),
        options={"ingress-class": "alb"},
    ),
    C(
        "ingress-other-class-is-skipped",
        ing(ingress_class="traefik"),
        skipped="ingress class `traefik` is not in option ingress-class",
        options={"ingress-class": ["nginx"]},
    ),
    C(
        "ingress-weighted-with-ga-prefix",
        ing(ann={G + "set-identifier": "rke2-dc1", G + "aws-weight": "20", G + "ttl": "60"}),
        ("shop.example.com A 203.0.113.20 ttl=60 sid=rke2-dc1 aws/weight=20",),
    ),
    # --- source options
    C(
        "fqdn-template-when-no-hostname",
        svc(lb=LB, labels={"team": "pay"}),
        ("web.shop.example.com A 203.0.113.10", "web.pay.example.org A 203.0.113.10"),
        options={
            "fqdn-template": "{{.Name}}.{{.Namespace}}.example.com,{{.Name}}.{{.Labels.team}}.example.org"
        },
    ),
    C(
        "fqdn-template-unused-when-annotation-gives-names",
        svc(ann=H, lb=LB),
        ("web.example.com A 203.0.113.10",),
        options={"fqdn-template": "{{.Name}}.tmpl.example.com"},
    ),
    C(
        "combine-fqdn-annotation-unions-both",
        svc(ann=H, lb=LB),
        ("web.example.com A 203.0.113.10", "web.tmpl.example.com A 203.0.113.10"),
        options={"fqdn-template": "{{.Name}}.tmpl.example.com", "combine-fqdn-annotation": True},
    ),
    C(
        "fqdn-template-missing-label-is-an-error",
        svc(lb=LB),
        errors=("option `fqdn-template` on Service `shop/web`: label `team` is not set",),
        options={"fqdn-template": "{{.Labels.team}}.example.com"},
    ),
    C(
        "domain-filter-drops-other-names",
        svc(ann={A + "hostname": "web.example.com,web.other.org"}, lb=LB),
        ("web.example.com A 203.0.113.10",),
        options={"domain-filter": ["example.com"]},
    ),
    C(
        "domain-filter-everything-outside",
        svc(ann={A + "hostname": "web.other.org"}, lb=LB),
        skipped="outside domain-filter",
        options={"domain-filter": ["example.com"]},
    ),
    C(
        "min-ttl-fills-unset-ttl",
        svc(ann=H, lb=LB),
        ("web.example.com A 203.0.113.10 ttl=120",),
        options={"min-ttl": "2m"},
    ),
    C(
        "min-ttl-keeps-a-set-ttl",
        svc(ann={**H, A + "ttl": "30"}, lb=LB),
        ("web.example.com A 203.0.113.10 ttl=30",),
        options={"min-ttl": "2m"},
    ),
    C(
        "namespace-filter",
        svc(ann=H, lb=LB),
        skipped="outside option namespace",
        options={"namespace": "other"},
    ),
    C(
        "label-filter-matches",
        svc(ann=H, lb=LB, labels={"dns": "public"}),
        ("web.example.com A 203.0.113.10",),
        options={"label-filter": "dns in (public,both)"},
    ),
    C(
        "label-filter-excludes",
        svc(ann=H, lb=LB, labels={"dns": "private"}),
        skipped="label-filter",
        options={"label-filter": "dns in (public,both)"},
    ),
    C(
        "annotation-filter-excludes",
        svc(ann=H, lb=LB),
        skipped="annotation-filter",
        options={"annotation-filter": "kubernetes.io/ingress.class=nginx"},
    ),
    C(
        "service-type-filter-excludes",
        svc(ann=H, lb=LB),
        skipped="not in option service-type-filter",
        options={"service-type-filter": ["NodePort"]},
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_object_gives_expected_endpoints(case: C) -> None:
    options = SourceOptions.from_mapping(case.options)
    result = object_endpoints(case.obj, Inventory.from_objects(case.inventory), options)
    assert sorted(fmt(e) for e in result.endpoints) == sorted(case.want)
    messages = [e.message for e in result.errors]
    assert len(messages) == len(case.errors), messages
    for want, got in zip(case.errors, messages, strict=True):
        assert want in got
    for want in case.warnings:
        assert any(want in w.message for w in result.warnings), [w.message for w in result.warnings]
    if case.skipped is not None:
        assert result.skipped_reason is not None
        assert case.skipped in result.skipped_reason
    if case.want:
        assert result.skipped_reason is None
    for ep in result.endpoints:
        assert (
            ep.resource
            == result.resource
            == f"{case.obj['kind'].lower()}/shop/{case.obj['metadata']['name']}"
        )


def test_case_table_is_large_enough() -> None:
    # The issue asks for at least 40 object cases; keep the table honest.
    assert len(CASES) >= 40
    assert len({c.id for c in CASES}) == len(CASES)


def test_malformed_annotation_message_is_in_the_house_style() -> None:
    s = svc(ann={**H, A + "set-identifier": "x", A + "aws-weight": "300"}, lb=LB)
    result = service_endpoints(s, cluster="eks-eu1")
    assert result.endpoints == ()
    assert result.error_messages == [
        "annotation `external-dns.alpha.kubernetes.io/aws-weight` on Service `shop/web` "
        "in cluster `eks-eu1`: `300` is not an integer from 0 to 255"
    ]
    err = result.errors[0]
    assert (err.annotation, err.value) == (A + "aws-weight", "300")


def test_one_malformed_object_does_not_stop_the_others() -> None:
    good = svc(ann=H, lb=LB, name="good")
    bad = svc(ann={**H, A + "aws-weight": "300", A + "set-identifier": "a"}, lb=LB, name="bad")
    results = compute_endpoints([bad, good, ing()])
    assert [r.resource for r in results] == ["service/shop/bad", "service/shop/good", "ingress/shop/web"]
    assert results[0].errors and not results[0].endpoints
    assert [fmt(e) for e in results[1].endpoints] == ["web.example.com A 203.0.113.10"]
    assert [fmt(e) for e in results[2].endpoints] == ["shop.example.com A 203.0.113.20"]


def test_result_carries_uid_resource_version_prefix_and_cluster() -> None:
    result = service_endpoints(svc(ann={G + "hostname": "web.example.com"}, lb=LB), cluster="rke2-dc1")
    assert (result.uid, result.resource_version, result.annotation_prefix) == ("uid-web", "42", G)
    assert result.endpoints[0].cluster == "rke2-dc1"


def test_kind_can_be_given_for_api_list_items() -> None:
    obj = svc(ann=H, lb=LB)
    del obj["kind"]  # items of a ServiceList from the API server carry no kind
    assert object_endpoints(obj, kind="Service").endpoints
    with pytest.raises(ValueError, match="not Deployment"):
        object_endpoints({"kind": "Deployment", "metadata": {"name": "x"}})


def test_merge_endpoints_unions_a_records_and_keeps_cname_targets_apart() -> None:
    a1 = Endpoint.make("x.example.com", "A", ["10.0.0.2", "10.0.0.1"], labels={"resource": "service/a/a"})
    a2 = Endpoint.make("x.example.com", "A", ["10.0.0.1", "10.0.0.3"], labels={"resource": "service/b/b"})
    a3 = Endpoint.make("x.example.com", "A", ["10.0.0.9"], ttl=60)
    c1 = Endpoint.make("y.example.com", "CNAME", ["a.example.net"])
    c2 = Endpoint.make("y.example.com", "CNAME", ["b.example.net"])
    c3 = Endpoint.make("y.example.com", "CNAME", ["a.example.net"])
    merged = merge_endpoints([a1, a2, a3, c1, c2, c3])
    assert [fmt(e) for e in merged] == [
        "x.example.com A 10.0.0.1,10.0.0.2,10.0.0.3",
        "x.example.com A 10.0.0.9 ttl=60",
        "y.example.com CNAME a.example.net",
        "y.example.com CNAME b.example.net",
    ]
    assert merged[0].resource == "service/a/a"  # the first endpoint's labels are kept


@pytest.mark.parametrize(
    ("targets", "private"),
    [
        (["10.1.2.3", "203.0.113.1"], ["10.1.2.3"]),
        (["172.16.0.1", "192.168.1.1", "127.0.0.1", "169.254.1.1", "100.64.0.1"], None),
        (["fd00::1", "fe80::1", "::1"], None),
        (["2001:db8::1", "198.51.100.1", "100.128.0.1"], []),
        (["lb.example.net"], []),
    ],
)
def test_private_targets(targets: list[str], private: list[str] | None) -> None:
    rtype = suitable_type(targets[0])
    assert private_targets(Endpoint.make("x.example.com", rtype, targets)) == (
        targets if private is None else private
    )


def test_suitable_type() -> None:
    assert [suitable_type(t) for t in ("1.2.3.4", "::1", "::ffff:1.2.3.4", "a.example.com", "010.1.1.1")] == [
        "A",
        "AAAA",
        "AAAA",
        "CNAME",
        "CNAME",
    ]


def test_inventory_upsert_and_delete_follow_watch_events() -> None:
    inv = Inventory()
    p = pod("web-0")
    inv.upsert(p)
    inv.upsert(slice_(("10.1.0.1", "web-0", True)))
    assert [x["metadata"]["name"] for x in inv.pods_matching("shop", {"app": "web"})] == ["web-0"]
    relabelled = {**p, "metadata": {**p["metadata"], "labels": {"app": "api"}}}
    inv.upsert(relabelled)
    assert inv.pods_matching("shop", {"app": "web"}) == []
    assert len(inv.pods_matching("shop", {})) == 1
    assert len(inv.endpoint_slices("shop", "web")) == 1
    inv.delete(relabelled)
    inv.delete({"kind": "EndpointSlice", "metadata": {"name": "web-abc", "namespace": "shop"}})
    assert inv.pods_matching("shop", {}) == [] and inv.endpoint_slices("shop", "web") == []
    with pytest.raises(ValueError, match="not Service"):
        inv.upsert(svc())


def test_inventory_kinds_tell_the_watch_what_to_recompute() -> None:
    assert inventory_kinds(svc(ann=H)) == frozenset()
    assert inventory_kinds(nodeport(H)) == {"Node"}
    assert inventory_kinds(nodeport(H, externalTrafficPolicy="Local")) == {"Node", "Pod"}
    assert inventory_kinds(headless(H)) == {"EndpointSlice", "Pod"}
    assert inventory_kinds(headless({**H, A + "endpoints-type": "NodeExternalIP"})) == {
        "EndpointSlice",
        "Pod",
        "Node",
    }
    assert inventory_kinds(nodeport({**H, A + "target": "1.2.3.4"})) == frozenset()
    assert service_selects(svc(), pod("web-0")) and not service_selects(svc(name="api"), pod("web-0"))
    assert slice_service(slice_()) == ("shop", "web")


def test_five_thousand_services_compute_in_well_under_a_second_each_batch() -> None:
    # Issue 5: an initial sync of 5,000 Services within 10 s including the API; the pure part must be a small
    # share. Headless Services with pods exercise the inventory indexes.
    objects: list[dict[str, Any]] = [*NODES]
    for i in range(2500):
        objects.append(
            svc(ann={A + "hostname": f"s{i}.example.com"}, lb=(f"203.0.{i // 250}.{i % 250}",), name=f"s{i}")
        )
        objects.append(
            headless({A + "hostname": f"h{i}.example.com"}, name=f"h{i}", selector={"app": f"h{i}"})
        )
        p = pod(f"h{i}-0", app=f"h{i}")
        objects.append(p)
        objects.append(slice_((f"10.2.{i // 250}.{i % 250}", f"h{i}-0", True), service=f"h{i}"))
    start = time.perf_counter()
    results = compute_endpoints(objects, SourceOptions.from_mapping({"domain-filter": ["example.com"]}))
    elapsed = time.perf_counter() - start
    assert len(results) == 5000 and all(r.endpoints for r in results)
    assert elapsed < 3.0, f"5,000 Services took {elapsed:.2f} s"
