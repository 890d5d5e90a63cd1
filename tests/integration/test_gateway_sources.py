"""Gateway API routes and DNSEndpoints from a real kube-apiserver with the official CRDs, to a change set.

The first sandbox cluster gets the Gateway API (experimental channel) and DNSEndpoint CRDs from their Go
modules (tools/kube_sandbox/crds.sh); the second stays without them, as a cluster that never installed them.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml
from kubernetes import client as k8s

from clusters import discovery
from clusters.models import Cluster
from clusters.services import Credentials, cluster_register
from clusters.watch import ClusterWatcher, endpoints_changed
from records.models import Change, ChangeSet, Endpoint, Zone
from tests.fixtures.kube import kube_client, set_service_load_balancer
from tests.fixtures.zones import import_zone
from tools.kube_sandbox.crds import install_crds

pytestmark = pytest.mark.django_db(transaction=True)
ROOT = Path(__file__).resolve().parents[2]
GW = ("gateway.networking.k8s.io", "v1")
SOURCES = ["service", "ingress", "gateway-httproute", "gateway-grpcroute", "gateway-tcproute", "crd"]
NOW = "2026-01-01T00:00:00Z"


@pytest.fixture(autouse=True)
def _no_debounce(settings):
    settings.RECONCILE_DEBOUNCE_MS = 0


@pytest.fixture(scope="module")
def crd_cluster(kube_clusters):
    """Cluster A with the official CRDs installed (idempotent: the sandbox lives for the whole session)."""
    sandbox_a, _ = kube_clusters
    with kube_client(sandbox_a) as api:
        install_crds(api)
    return sandbox_a


@pytest.fixture
def zone(root, route53, moto_service) -> Zone:
    return import_zone(root, route53, moto_service.url, "example.com", approval_mode="flagged")


def _register(name: str, sandbox, root, namespace: str) -> Cluster:
    kubeconfig = yaml.safe_dump(sandbox.kubeconfig("restricted"))
    cluster = cluster_register(actor=root, name=name, creds=Credentials(kubeconfig=kubeconfig, context=""))
    Cluster.objects.filter(id=cluster.id).update(source_options={"namespace": namespace, "source": SOURCES})
    return Cluster.objects.get(id=cluster.id)


def _sync(cluster: Cluster) -> None:
    state, changed = discovery.sync_cluster(cluster.id)
    assert state is not None, Cluster.objects.get(id=cluster.id).last_sync_error
    if changed:
        endpoints_changed(cluster.id, changed)


def _condition(kind: str) -> dict:
    return {"type": kind, "status": "True", "reason": kind, "message": "", "lastTransitionTime": NOW}


def _gateway(api, ns: str, address: str) -> None:
    objs = k8s.CustomObjectsApi(api)
    listener = {
        "name": "http",
        "protocol": "HTTP",
        "port": 80,
        "hostname": "*.example.com",
        "allowedRoutes": {"namespaces": {"from": "Same"}},
    }
    body = {
        "apiVersion": "/".join(GW),
        "kind": "Gateway",
        "metadata": {"name": "public"},
        "spec": {"gatewayClassName": "sandbox", "listeners": [listener]},
    }
    objs.create_namespaced_custom_object(*GW, ns, "gateways", body)
    status = {"status": {"addresses": [{"type": "IPAddress", "value": address}]}}
    objs.patch_namespaced_custom_object_status(*GW, ns, "gateways", "public", status)


def _httproute(api, ns: str, name: str, hostname: str, *, accepted: bool = True) -> None:
    objs = k8s.CustomObjectsApi(api)
    body = {
        "apiVersion": "/".join(GW),
        "kind": "HTTPRoute",
        "metadata": {"name": name},
        "spec": {"parentRefs": [{"name": "public"}], "hostnames": [hostname]},
    }
    objs.create_namespaced_custom_object(*GW, ns, "httproutes", body)
    cond = _condition("Accepted") if accepted else {**_condition("Accepted"), "status": "False"}
    parent = {"parentRef": {"name": "public"}, "controllerName": "example.com/sandbox", "conditions": [cond]}
    objs.patch_namespaced_custom_object_status(*GW, ns, "httproutes", name, {"status": {"parents": [parent]}})


def test_an_httproute_reaches_a_change_set_and_its_deletion_plans_the_delete(
    root, crd_cluster, kube_namespace, zone, route53, run_jobs
):
    api = kube_client(crd_cluster)
    cluster = _register("gw-a", crd_cluster, root, kube_namespace)
    _gateway(api, kube_namespace, "203.0.113.30")
    _httproute(api, kube_namespace, "shop", "shop.example.com")
    _httproute(api, kube_namespace, "draft", "draft.example.com", accepted=False)
    _sync(cluster)
    ep = Endpoint.objects.get(cluster=cluster, dns_name="shop.example.com")
    assert (ep.record_type, list(ep.targets)) == ("A", ["203.0.113.30"])
    assert not Endpoint.objects.filter(cluster=cluster, dns_name="draft.example.com").exists()
    assert Cluster.objects.get(id=cluster.id).custom_kinds["HTTPRoute"] == "gateway.networking.k8s.io/v1"
    run_jobs()
    create = Change.objects.get(changeset__zone=zone, name="shop.example.com.", type="A")
    assert create.kind == "create"
    assert create.sources == [f"HTTPRoute gw-a/{kube_namespace}/shop"]

    k8s.CustomObjectsApi(api).delete_namespaced_custom_object(*GW, kube_namespace, "httproutes", "shop")
    _sync(cluster)
    assert not Endpoint.objects.filter(cluster=cluster, dns_name="shop.example.com").exists()
    run_jobs()
    delete = Change.objects.filter(changeset__zone=zone, name="shop.example.com.", type="A", kind="delete")
    assert delete.exists()
    assert ChangeSet.objects.filter(zone=zone).count() == 2


def test_a_dnsendpoint_publishes_and_gets_its_observed_generation(root, crd_cluster, kube_namespace):
    api = kube_client(crd_cluster)
    cluster = _register("crd-a", crd_cluster, root, kube_namespace)
    objs = k8s.CustomObjectsApi(api)
    body = {
        "apiVersion": "externaldns.k8s.io/v1alpha1",
        "kind": "DNSEndpoint",
        "metadata": {"name": "hand"},
        "spec": {
            "endpoints": [{"dnsName": "mail.example.com", "recordType": "A", "targets": ["192.0.2.25"]}]
        },
    }
    objs.create_namespaced_custom_object(
        "externaldns.k8s.io", "v1alpha1", kube_namespace, "dnsendpoints", body
    )
    _sync(cluster)
    ep = Endpoint.objects.get(cluster=cluster, dns_name="mail.example.com")
    assert list(ep.targets) == ["192.0.2.25"]
    got = objs.get_namespaced_custom_object(
        "externaldns.k8s.io", "v1alpha1", kube_namespace, "dnsendpoints", "hand"
    )
    assert got["status"]["observedGeneration"] == got["metadata"]["generation"]


def _wait_for(predicate, what: str, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_the_watch_follows_routes_and_their_gateway(root, crd_cluster, kube_namespace):
    api = kube_client(crd_cluster)
    _gateway(api, kube_namespace, "203.0.113.40")
    cluster = _register("gw-watch", crd_cluster, root, kube_namespace)
    watcher = ClusterWatcher(cluster, lambda _cid, _names: None)
    watcher.start()
    try:

        def targets() -> list[str]:
            ep = Endpoint.objects.filter(cluster=cluster, dns_name="live.example.com").first()
            return list(ep.targets) if ep else []

        _wait_for(lambda: Cluster.objects.get(id=cluster.id).last_sync_at, "the first list")
        _httproute(api, kube_namespace, "live", "live.example.com")
        _wait_for(lambda: targets() == ["203.0.113.40"], "the route's endpoint")
        # A new Gateway address recomputes the routes attached to it.
        status = {"status": {"addresses": [{"type": "IPAddress", "value": "203.0.113.41"}]}}
        k8s.CustomObjectsApi(api).patch_namespaced_custom_object_status(
            *GW, kube_namespace, "gateways", "public", status
        )
        _wait_for(lambda: targets() == ["203.0.113.41"], "the Gateway's new address")
        k8s.CustomObjectsApi(api).delete_namespaced_custom_object(*GW, kube_namespace, "httproutes", "live")
        _wait_for(lambda: not targets(), "the route's deletion")
    finally:
        watcher.stop()


def test_istio_gateways_and_virtualservices_publish_through_the_selected_service(
    root, crd_cluster, kube_namespace
):
    api = kube_client(crd_cluster)
    ns = kube_namespace
    istio = ("networking.istio.io", "v1")
    k8s.CoreV1Api(api).create_namespaced_service(
        ns,
        {
            "metadata": {"name": "ingressgateway"},
            "spec": {
                "type": "LoadBalancer",
                "selector": {"istio": "ingressgateway"},
                "ports": [{"port": 443}],
            },
        },
    )
    set_service_load_balancer(api, ns, "ingressgateway", ips=["203.0.113.50"])
    objs = k8s.CustomObjectsApi(api)
    server = {
        "port": {"number": 443, "name": "https", "protocol": "HTTPS"},
        "hosts": ["mesh.example.com", "*.example.com"],
    }
    gateway = {
        "apiVersion": "/".join(istio),
        "kind": "Gateway",
        "metadata": {"name": "edge"},
        "spec": {"selector": {"istio": "ingressgateway"}, "servers": [server]},
    }
    objs.create_namespaced_custom_object(*istio, ns, "gateways", gateway)
    vs = {
        "apiVersion": "/".join(istio),
        "kind": "VirtualService",
        "metadata": {"name": "shop"},
        "spec": {"hosts": ["vs.example.com"], "gateways": [f"{ns}/edge"], "http": [{"route": []}]},
    }
    objs.create_namespaced_custom_object(*istio, ns, "virtualservices", vs)
    cluster = _register("istio-a", crd_cluster, root, ns)
    Cluster.objects.filter(id=cluster.id).update(
        source_options={"namespace": ns, "source": ["service", "istio-gateway", "istio-virtualservice"]}
    )
    _sync(cluster)
    got = {e.dns_name: list(e.targets) for e in Endpoint.objects.filter(cluster=cluster)}
    # the Gateway publishes every server host but `*`, the wildcard one included (ExternalDNS does too)
    assert got == {n: ["203.0.113.50"] for n in ("mesh.example.com", "*.example.com", "vs.example.com")}
    kinds = Cluster.objects.get(id=cluster.id).custom_kinds
    assert kinds == {"IstioGateway": "networking.istio.io/v1", "VirtualService": "networking.istio.io/v1"}
    assert Cluster.objects.get(id=cluster.id).discovered.filter(kind="Gateway", name="edge").exists()


def test_a_cluster_without_the_crds_shows_not_installed_and_no_error(
    client, root, kube_clusters, kube_namespace, run_jobs
):
    _, sandbox_b = kube_clusters
    cluster = _register("plain-b", sandbox_b, root, kube_namespace)
    run_jobs()  # the registration's check
    for _ in range(2):  # a second read changes nothing: no error loop
        _sync(cluster)
    cluster.refresh_from_db()
    assert (cluster.is_stale, cluster.last_sync_error, cluster.health) == (False, "", Cluster.Health.HEALTHY)
    assert cluster.custom_kinds["HTTPRoute"] == "not installed"
    assert cluster.custom_kinds["DNSEndpoint"] == "not installed"
    client.force_login(root)
    page = client.get(f"/clusters/{cluster.name}/").content.decode()
    assert "HTTPRoute" in page and "not installed" in page


def test_watch_events_recompute_istio_objects_from_their_service_and_gateway():
    from clusters.kinds import CustomKind
    from clusters.source_options import SourceOptions

    options = SourceOptions.from_mapping({"source": ["service", "istio-gateway", "istio-virtualservice"]})
    kinds = {
        k: CustomKind("networking.istio.io", "v1", p)
        for k, p in [("IstioGateway", "gateways"), ("VirtualService", "virtualservices")]
    }
    state = discovery.ClusterState(0, "c", options, custom=kinds)

    def svc(ip: str) -> dict:
        return {
            "kind": "Service",
            "metadata": {"name": "ingress", "namespace": "istio"},
            "spec": {"type": "LoadBalancer", "selector": {"istio": "ingressgateway"}},
            "status": {"loadBalancer": {"ingress": [{"ip": ip}]}},
        }

    gw = {
        "apiVersion": "networking.istio.io/v1",
        "kind": "Gateway",
        "metadata": {"name": "edge", "namespace": "istio"},
        "spec": {"selector": {"istio": "ingressgateway"}, "servers": [{"hosts": ["*/*.example.com"]}]},
    }
    vs = {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": "shop", "namespace": "shop"},
        "spec": {"hosts": ["shop.example.com"], "gateways": ["istio/edge"]},
    }
    state.apply_event("Service", "ADDED", svc("203.0.113.1"))
    state.apply_event("IstioGateway", "ADDED", gw)
    (result,) = state.apply_event("VirtualService", "ADDED", vs)
    assert [(e.dns_name, e.targets) for e in result.endpoints] == [("shop.example.com", ("203.0.113.1",))]
    out = state.apply_event("Service", "MODIFIED", svc("203.0.113.2"))
    by_kind = {r.kind: [(e.dns_name, e.targets) for e in r.endpoints] for r in out}
    assert by_kind["VirtualService"] == [("shop.example.com", ("203.0.113.2",))]
    assert by_kind["Gateway"] == [("*.example.com", ("203.0.113.2",))]
    deleted = state.apply_event("IstioGateway", "DELETED", gw)
    assert deleted[0] == ("Gateway", "istio", "edge")  # stored under the kind the object names
    assert deleted[1].kind == "VirtualService" and not deleted[1].endpoints
