"""Annotation write-back against real kube-apiservers, with the portal's own restricted identity.

Each outcome a policy proposal's write-back job has to handle is produced by a real API server: written (and
read back), a concurrent edit (409, never overwritten), an apiserver that is down, one that hangs or answers
503 (a stand-in HTTPS server: the sandbox's apiserver cannot be made to), a deleted object, an identity that
may read but not patch. And discovery keeps each object's ExternalDNS annotations and GitOps tool.
"""

from __future__ import annotations

import base64
import json
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client as k8s

from clusters import discovery
from clusters.gitops import managed_fields_owner
from clusters.kube import ClusterClient
from clusters.kubeconfig import parse_kubeconfig
from clusters.models import Cluster, DiscoveredObject
from clusters.services import Credentials, client_for, cluster_register
from clusters.writeback import FIELD_MANAGER, WriteResult, read_object, write_annotations
from tests.fixtures.kube import kube_client, set_service_load_balancer
from tools.kube_sandbox.pki import create_pki

pytestmark = pytest.mark.django_db
G = "external-dns.kubernetes.io/"
A = "external-dns.alpha.kubernetes.io/"


def register(name: str, sandbox_cluster: Any, root: Any, kubeconfig: dict | None = None) -> Cluster:
    """The cluster as the portal stores it: the restricted identity's kubeconfig (or the one given)."""
    text = yaml.safe_dump(kubeconfig or sandbox_cluster.kubeconfig("restricted"))
    return cluster_register(actor=root, name=name, creds=Credentials(kubeconfig=text, context=""))


def create_service(
    api: Any,
    namespace: str,
    name: str,
    annotations: dict,
    *,
    field_manager: str = "kubectl-create",
    **meta: Any,
) -> dict:
    body = {
        "metadata": {"name": name, "annotations": annotations, **meta},
        "spec": {"type": "LoadBalancer", "selector": {"app": name}, "ports": [{"port": 80}]},
    }
    k8s.CoreV1Api(api).create_namespaced_service(namespace, body, field_manager=field_manager)
    return admin_read(api, "Service", namespace, name)


def admin_read(api: Any, kind: str, namespace: str, name: str) -> dict:
    if kind == "Service":
        response = k8s.CoreV1Api(api).read_namespaced_service(name, namespace, _preload_content=False)
    else:
        response = k8s.NetworkingV1Api(api).read_namespaced_ingress(name, namespace, _preload_content=False)
    return json.loads(response.data)["metadata"]


def assert_no_secret(result: WriteResult, *tokens: str) -> None:
    for token in tokens:
        assert token not in result.message and token not in result.changed_by


def next_second() -> None:
    """Wait until the wall clock enters a new second: managedFields times have one-second resolution, and
    two writes within one second cannot be ordered by them."""
    start = int(time.time())
    while int(time.time()) == start:
        time.sleep(0.02)


def test_write_sets_and_removes_only_the_given_keys_as_dnsportal(root, kube_clusters, kube_namespace):
    sandbox_a, _ = kube_clusters
    api = kube_client(sandbox_a)
    create_service(
        api,
        kube_namespace,
        "web",
        {G + "hostname": "web.example.com", A + "aws-weight": "10", "team.example.com/owner": "shop"},
        labels={"app": "web"},
    )
    cluster = register("rke2-dc1", sandbox_a, root)
    with client_for(cluster) as cc:
        before = read_object(cc, "Service", kube_namespace, "web")
        result = write_annotations(
            cc,
            kind="Service",
            namespace=kube_namespace,
            name="web",
            resource_version=before["resourceVersion"],
            changes={G + "set-identifier": "rke2-dc1", G + "aws-weight": "80", A + "aws-weight": None},
        )
    assert result.status == "written", result.message
    after = admin_read(api, "Service", kube_namespace, "web")
    assert result.resource_version_after == after["resourceVersion"] != before["resourceVersion"]
    assert after["annotations"] == {
        G + "hostname": "web.example.com",
        G + "set-identifier": "rke2-dc1",
        G + "aws-weight": "80",
        "team.example.com/owner": "shop",  # not ours: untouched
    }
    assert after["labels"] == {"app": "web"}
    assert result.annotations_after == {
        G + "aws-weight": "80",
        G + "hostname": "web.example.com",
        G + "set-identifier": "rke2-dc1",
    }
    # managedFields say who set what: the portal owns the keys it wrote, the creator keeps the rest.
    assert managed_fields_owner(after, G + "aws-weight") == FIELD_MANAGER
    assert managed_fields_owner(after, G + "set-identifier") == FIELD_MANAGER
    assert managed_fields_owner(after, G + "hostname") == "kubectl-create"
    assert_no_secret(result, sandbox_a.tokens["restricted"], sandbox_a.tokens["admin"])


def test_an_ingress_is_written_through_the_networking_api(root, kube_clusters, kube_namespace):
    _, sandbox_b = kube_clusters
    api = kube_client(sandbox_b)
    k8s.NetworkingV1Api(api).create_namespaced_ingress(
        kube_namespace,
        {
            "metadata": {"name": "shop", "annotations": {A + "hostname": "shop.example.com"}},
            "spec": {
                "rules": [
                    {
                        "host": "shop.example.com",
                        "http": {
                            "paths": [
                                {
                                    "path": "/",
                                    "pathType": "Prefix",
                                    "backend": {"service": {"name": "web", "port": {"number": 80}}},
                                }
                            ]
                        },
                    }
                ]
            },
        },
    )
    rv = admin_read(api, "Ingress", kube_namespace, "shop")["resourceVersion"]
    cluster = register("k3s-edge", sandbox_b, root)
    with client_for(cluster) as cc:
        result = write_annotations(
            cc,
            kind="Ingress",
            namespace=kube_namespace,
            name="shop",
            resource_version=rv,
            changes={A + "aws-failover": "SECONDARY", A + "set-identifier": "k3s-edge"},
        )
    assert result.status == "written", result.message
    after = admin_read(api, "Ingress", kube_namespace, "shop")
    assert after["annotations"] == {
        A + "hostname": "shop.example.com",
        A + "aws-failover": "SECONDARY",
        A + "set-identifier": "k3s-edge",
    }
    assert managed_fields_owner(after, A + "aws-failover") == FIELD_MANAGER


def test_a_change_after_the_read_is_a_conflict_naming_who_changed_it(root, kube_clusters, kube_namespace):
    sandbox_a, _ = kube_clusters
    api = kube_client(sandbox_a)
    create_service(api, kube_namespace, "web", {G + "hostname": "web.example.com", G + "aws-weight": "50"})
    cluster = register("eks-us-east-1", sandbox_a, root)
    with client_for(cluster) as cc:
        reviewed = read_object(cc, "Service", kube_namespace, "web")["resourceVersion"]
        # Someone edits the object between the review and the write-back.
        next_second()
        k8s.CoreV1Api(api).patch_namespaced_service(
            "web",
            kube_namespace,
            {"metadata": {"annotations": {G + "aws-weight": "5"}}},
            field_manager="kubectl-edit",
        )
        edited = admin_read(api, "Service", kube_namespace, "web")
        result = write_annotations(
            cc,
            kind="Service",
            namespace=kube_namespace,
            name="web",
            resource_version=reviewed,
            changes={G + "aws-weight": "80", G + "set-identifier": "eks-us-east-1"},
        )
    edit_time = next(e["time"] for e in edited["managedFields"] if e["manager"] == "kubectl-edit")
    assert result.status == "conflict"
    assert result.changed_by == f"kubectl-edit at {edit_time}"
    assert f"by kubectl-edit at {edit_time}" in result.message and "nothing was written" in result.message
    assert result.resource_version_after == edited["resourceVersion"]
    assert result.annotations_after == {G + "aws-weight": "5", G + "hostname": "web.example.com"}
    # Never overwritten: the object is exactly as the other person left it, and the portal wrote nothing.
    now = admin_read(api, "Service", kube_namespace, "web")
    assert now["resourceVersion"] == edited["resourceVersion"]
    assert now["annotations"] == {G + "hostname": "web.example.com", G + "aws-weight": "5"}
    assert FIELD_MANAGER not in {e["manager"] for e in now["managedFields"]}
    assert_no_secret(result, sandbox_a.tokens["restricted"], sandbox_a.tokens["admin"])


def test_a_write_the_portal_made_but_never_recorded_is_recognised_and_not_made_twice(
    root, kube_clusters, kube_namespace
):
    """A worker killed between its PATCH and recording it: the next pass sends the same write with the
    reviewed resourceVersion, gets 409, and finds the portal's own values there: written, nothing sent."""
    sandbox_a, _ = kube_clusters
    api = kube_client(sandbox_a)
    create_service(api, kube_namespace, "web", {G + "hostname": "web.example.com", G + "aws-weight": "50"})
    cluster = register("rke2-dc1", sandbox_a, root)
    changes = {G + "aws-weight": "80", G + "set-identifier": "rke2-dc1", A + "aws-weight": None}

    def write(reviewed: str) -> WriteResult:
        with client_for(cluster) as cc:
            return write_annotations(
                cc,
                kind="Service",
                namespace=kube_namespace,
                name="web",
                resource_version=reviewed,
                changes=changes,
            )

    reviewed = admin_read(api, "Service", kube_namespace, "web")["resourceVersion"]
    first = write(reviewed)
    assert first.status == "written"
    again = write(reviewed)
    assert again.status == "written", again.message
    assert "already written by an earlier pass" in again.message
    assert again.resource_version_after == first.resource_version_after  # nothing was sent the second time

    # Someone else changes one of those keys since, and back: the retry is a conflict for a person.
    next_second()
    for weight in ("5", "80"):
        k8s.CoreV1Api(api).patch_namespaced_service(
            "web",
            kube_namespace,
            {"metadata": {"annotations": {G + "aws-weight": weight}}},
            field_manager="kubectl-edit",
        )
    edited = write(reviewed)
    assert edited.status == "conflict" and "kubectl-edit" in edited.changed_by
    # and values other than the portal's own are never taken for its write
    other = dict(changes, **{G + "aws-weight": "10"})
    with client_for(cluster) as cc:
        rv_now = admin_read(api, "Service", kube_namespace, "web")["resourceVersion"]
        k8s.CoreV1Api(api).patch_namespaced_service(
            "web", kube_namespace, {"metadata": {"labels": {"tier": "web2"}}}, field_manager=FIELD_MANAGER
        )
        differs = write_annotations(
            cc, kind="Service", namespace=kube_namespace, name="web", resource_version=rv_now, changes=other
        )
    assert differs.status == "conflict"
    assert admin_read(api, "Service", kube_namespace, "web")["annotations"][G + "aws-weight"] == "80"


def test_a_deleted_object_is_gone(root, kube_clusters, kube_namespace):
    sandbox_a, _ = kube_clusters
    api = kube_client(sandbox_a)
    rv = create_service(api, kube_namespace, "old", {G + "hostname": "old.example.com"})["resourceVersion"]
    k8s.CoreV1Api(api).delete_namespaced_service("old", kube_namespace)
    cluster = register("rke2-dc1", sandbox_a, root)
    with client_for(cluster) as cc:
        result = write_annotations(
            cc,
            kind="Service",
            namespace=kube_namespace,
            name="old",
            resource_version=rv,
            changes={G + "aws-weight": "80"},
        )
    assert result.status == "gone"
    assert f"Service {kube_namespace}/old no longer exists" in result.message
    assert result.resource_version_after == ""


def test_an_identity_that_may_read_but_not_patch_is_forbidden(root, kube_clusters, kube_namespace):
    sandbox_a, _ = kube_clusters
    api = kube_client(sandbox_a)
    rv = create_service(api, kube_namespace, "web", {G + "hostname": "web.example.com"})["resourceVersion"]
    # A ServiceAccount that may get/list/watch Services in this namespace and nothing more, with a token from
    # the TokenRequest API: what a cluster owner who granted the portal read-only access hands over.
    core, rbac = k8s.CoreV1Api(api), k8s.RbacAuthorizationV1Api(api)
    core.create_namespaced_service_account(kube_namespace, {"metadata": {"name": "reader"}})
    rbac.create_namespaced_role(
        kube_namespace,
        {
            "metadata": {"name": "read-services"},
            "rules": [{"apiGroups": [""], "resources": ["services"], "verbs": ["get", "list", "watch"]}],
        },
    )
    rbac.create_namespaced_role_binding(
        kube_namespace,
        {
            "metadata": {"name": "reader"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "read-services"},
            "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": kube_namespace}],
        },
    )
    token = core.create_namespaced_service_account_token(
        "reader", kube_namespace, {"spec": {"expirationSeconds": 600}}
    ).status.token
    kubeconfig = sandbox_a.kubeconfig("restricted")
    kubeconfig["users"][0]["user"]["token"] = token
    cluster = register("read-only", sandbox_a, root, kubeconfig=kubeconfig)
    with client_for(cluster) as cc:
        assert read_object(cc, "Service", kube_namespace, "web")["resourceVersion"] == rv  # it can read
        result = write_annotations(
            cc,
            kind="Service",
            namespace=kube_namespace,
            name="web",
            resource_version=rv,
            changes={G + "aws-weight": "80"},
        )
    assert result.status == "forbidden"
    assert "403 Forbidden" in result.message and "`patch`" in result.message
    assert f"system:serviceaccount:{kube_namespace}:reader" in result.message  # the API server's words
    assert_no_secret(result, token)
    assert admin_read(api, "Service", kube_namespace, "web")["annotations"] == {
        G + "hostname": "web.example.com"
    }


def test_values_the_api_server_refuses_are_invalid_and_change_nothing(root, kube_clusters, kube_namespace):
    sandbox_a, _ = kube_clusters
    api = kube_client(sandbox_a)
    rv = create_service(api, kube_namespace, "web", {G + "hostname": "web.example.com"})["resourceVersion"]
    cluster = register("rke2-dc1", sandbox_a, root)
    with client_for(cluster) as cc:
        # An annotation key is a qualified name: no spaces. Only the API server's validation says so.
        result = write_annotations(
            cc,
            kind="Service",
            namespace=kube_namespace,
            name="web",
            resource_version=rv,
            changes={G + "aws weight": "80"},
        )
    assert result.status == "invalid"
    assert "422" in result.message and "aws weight" in result.message
    assert admin_read(api, "Service", kube_namespace, "web")["resourceVersion"] == rv


def test_a_stopped_apiserver_is_unreachable(root, kube_clusters, kube_namespace):
    _, sandbox_b = kube_clusters
    api = kube_client(sandbox_b)
    rv = create_service(api, kube_namespace, "edge", {G + "hostname": "edge.example.com"})["resourceVersion"]
    cluster = register("k3s-edge", sandbox_b, root)
    sandbox_b.stop_apiserver()
    try:
        with client_for(cluster) as cc:
            started = time.monotonic()
            result = write_annotations(
                cc,
                kind="Service",
                namespace=kube_namespace,
                name="edge",
                resource_version=rv,
                changes={G + "aws-weight": "80"},
            )
            elapsed = time.monotonic() - started
    finally:
        sandbox_b.start_apiserver()
    assert result.status == "unreachable"
    assert "connection refused" in result.message and "tried again later" in result.message
    assert elapsed < 5
    assert_no_secret(result, sandbox_b.tokens["restricted"])
    # Nothing happened while it was away: the retry later starts from the same object.
    assert admin_read(api, "Service", kube_namespace, "edge")["resourceVersion"] == rv


# ----- a stand-in HTTPS server for what a real apiserver will not do on demand: hang, or answer 503 -----


class _StandIn(BaseHTTPRequestHandler):
    mode = "503"
    release = threading.Event()

    def do_PATCH(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.mode == "hang":
            self.release.wait(30)
            return
        body = json.dumps(
            {
                "kind": "Status",
                "apiVersion": "v1",
                "status": "Failure",
                "message": "etcdserver: request timed out",
                "reason": "ServiceUnavailable",
                "code": 503,
            }
        ).encode()
        self.send_response(503, "Service Unavailable")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def stand_in(tmp_path: Path) -> Iterator[Callable[[str], ClusterClient]]:
    pki = create_pki(tmp_path / "pki", "stand-in", "10.96.0.1")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki.serving_cert, pki.serving_key)
    handler = type("Handler", (_StandIn,), {"release": threading.Event()})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    clients: list[ClusterClient] = []

    def make(mode: str) -> ClusterClient:
        handler.mode = mode
        kubeconfig = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "stand-in",
                    "cluster": {
                        "server": f"https://127.0.0.1:{server.server_address[1]}",
                        "certificate-authority-data": base64.b64encode(pki.ca_cert.read_bytes()).decode(),
                    },
                }
            ],
            "users": [{"name": "portal", "user": {"token": "stand-in-token-not-to-be-shown"}}],
            "contexts": [{"name": "stand-in", "context": {"cluster": "stand-in", "user": "portal"}}],
            "current-context": "stand-in",
        }
        access = parse_kubeconfig(yaml.safe_dump(kubeconfig))
        cc = ClusterClient(access, connect_timeout=1.0, read_timeout=1.0)
        clients.append(cc)
        return cc

    yield make
    handler.release.set()
    for cc in clients:
        cc.close()
    server.shutdown()
    server.server_close()


def _write(cc: ClusterClient) -> WriteResult:
    return write_annotations(
        cc, kind="Service", namespace="shop", name="web", resource_version="42", changes={G + "ttl": "60"}
    )


def test_an_apiserver_that_never_answers_is_unreachable_within_the_timeout(stand_in):
    started = time.monotonic()
    result = _write(stand_in("hang"))
    assert time.monotonic() - started < 5
    assert result.status == "unreachable"
    assert "No answer from" in result.message and "within the timeout" in result.message
    assert_no_secret(result, "stand-in-token-not-to-be-shown")


def test_a_5xx_answer_is_unreachable_and_tried_later(stand_in):
    result = _write(stand_in("503"))
    assert result.status == "unreachable"
    assert "answered 503 Service Unavailable" in result.message and "tried again later" in result.message
    assert_no_secret(result, "stand-in-token-not-to-be-shown")


def test_a_write_back_without_a_reviewed_version_or_outside_external_dns_is_refused(stand_in):
    cc = stand_in("503")
    base: dict[str, Any] = {"kind": "Service", "namespace": "shop", "name": "web", "resource_version": "42"}
    with pytest.raises(ValueError, match="needs the resourceVersion"):
        write_annotations(cc, **{**base, "resource_version": ""}, changes={G + "ttl": "60"})
    with pytest.raises(ValueError, match=r"`kubectl\.kubernetes\.io/restartedAt` is not an ExternalDNS"):
        write_annotations(cc, **base, changes={"kubectl.kubernetes.io/restartedAt": "now"})
    with pytest.raises(ValueError, match="not Deployment"):
        write_annotations(cc, **{**base, "kind": "Deployment"}, changes={G + "ttl": "60"})
    with pytest.raises(ValueError, match="no annotation changes"):
        write_annotations(cc, **base, changes={})


# ----- discovery keeps what the editor needs ---------------------------------------------------------------


def test_discovery_keeps_external_dns_annotations_and_gitops(root, kube_clusters, kube_namespace):
    sandbox_a, _ = kube_clusters
    api = kube_client(sandbox_a)
    # Applied by Flux's kustomize-controller: its labels, and its field manager in managedFields.
    create_service(
        api,
        kube_namespace,
        "flux-web",
        {G + "hostname": "flux.example.com", A + "ttl": "60", "fluxcd.io/note": "not ExternalDNS"},
        labels={
            "kustomize.toolkit.fluxcd.io/name": "apps",
            "kustomize.toolkit.fluxcd.io/namespace": "flux-system",
        },
        field_manager="kustomize-controller",
    )
    set_service_load_balancer(api, kube_namespace, "flux-web", ips=["203.0.113.50"])
    # Synced by Argo CD: the tracking annotation, and its server-side apply manager.
    create_service(
        api,
        kube_namespace,
        "argo-web",
        {
            A + "hostname": "argo.example.com",
            "argocd.argoproj.io/tracking-id": "shop:/Service:shop/argo-web",
        },
        labels={"app.kubernetes.io/instance": "shop"},
        field_manager="argocd-controller",
    )
    create_service(api, kube_namespace, "plain", {})
    cluster = register("eks-us-east-1", sandbox_a, root)
    Cluster.objects.filter(id=cluster.id).update(source_options={"namespace": kube_namespace})

    state, _changed = discovery.sync_cluster(cluster.id)
    assert state is not None
    rows = {o.name: o for o in DiscoveredObject.objects.filter(cluster=cluster)}
    flux = rows["flux-web"]
    assert flux.annotations == {G + "hostname": "flux.example.com", A + "ttl": "60"}
    assert flux.gitops == {
        "tool": "Flux",
        "evidence": "label kustomize.toolkit.fluxcd.io/name=apps and label "
        "kustomize.toolkit.fluxcd.io/namespace=flux-system and managedFields manager kustomize-controller",
        "source": "Kustomization flux-system/apps",
        "managers": ["kustomize-controller"],
    }
    argo = rows["argo-web"]
    assert argo.annotations == {A + "hostname": "argo.example.com"}
    assert argo.gitops["tool"] == "Argo CD" and argo.gitops["source"] == "Application shop"
    assert argo.gitops["evidence"] == (
        "annotation argocd.argoproj.io/tracking-id=shop:/Service:shop/argo-web and label "
        "app.kubernetes.io/instance=shop and managedFields manager argocd-controller"
    )
    assert (rows["plain"].annotations, rows["plain"].gitops) == ({}, {})

    # A write-back, then the one-object path (a watch event) stores what the cluster now says.
    with client_for(cluster) as cc:
        result = write_annotations(
            cc,
            kind="Service",
            namespace=kube_namespace,
            name="flux-web",
            resource_version=flux.resource_version,
            changes={G + "aws-weight": "80", A + "ttl": None},
        )
        assert result.status == "written", result.message
        services, _rv = discovery.list_kind(cc, "Service", kube_namespace)
    obj = next(s for s in services if s["metadata"]["name"] == "flux-web")
    discovery.store_object(cluster.id, state.apply_event("Service", "MODIFIED", obj)[0])  # type: ignore[arg-type]
    flux.refresh_from_db()
    assert flux.annotations == {G + "hostname": "flux.example.com", G + "aws-weight": "80"}
    assert flux.resource_version == result.resource_version_after
    assert flux.gitops["tool"] == "Flux"
