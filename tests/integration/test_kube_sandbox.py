"""The Kubernetes sandbox is a real API server: pagination, watch, conflicts, status, RBAC, independence.

Every client here is built only from the kubeconfigs the sandbox writes (`new_client_from_config_dict` with a
fresh Configuration), the way the portal will build its clients from stored kubeconfigs.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, watch
from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException

from tests.fixtures.kube import (
    create_pod,
    kube_client,
    set_ingress_load_balancer,
    set_service_load_balancer,
)
from tools.kube_sandbox import Cluster, Sandbox, assert_no_processes
from tools.kube_sandbox.objects import api_client, create_namespace, delete_namespace

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
MERGE = "application/merge-patch+json"


def _service(
    name: str, *, type_: str = "ClusterIP", annotations: dict[str, str] | None = None
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "annotations": annotations or {}},
        "spec": {"type": type_, "selector": {"app": name}, "ports": [{"port": 80, "targetPort": 80}]},
    }


def _ingress(name: str, host: str) -> dict[str, Any]:
    backend = {"service": {"name": name, "port": {"number": 80}}}
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": name},
        "spec": {
            "rules": [
                {"host": host, "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": backend}]}}
            ]
        },
    }


@pytest.fixture
def admin(kube_clusters: tuple[Cluster, Cluster]) -> Iterator[ApiClient]:
    with kube_client(kube_clusters[0], "admin") as api:
        yield api


@pytest.fixture
def restricted(kube_clusters: tuple[Cluster, Cluster]) -> Iterator[ApiClient]:
    with kube_client(kube_clusters[0], "restricted") as api:
        yield api


def test_kubeconfigs_carry_ca_and_token_inline(kube_clusters: tuple[Cluster, Cluster]) -> None:
    for cluster in kube_clusters:
        for identity in ("admin", "restricted"):
            written = yaml.safe_load(cluster.kubeconfig_path(identity).read_text())
            (entry,) = written["clusters"]
            (user,) = written["users"]
            assert entry["cluster"]["server"] == cluster.server
            assert entry["cluster"]["certificate-authority-data"]
            assert set(user["user"]) == {"token"}  # no client-certificate paths, no exec, no auth-provider
            assert "certificate-authority" not in entry["cluster"]
            assert oct(cluster.kubeconfig_path(identity).stat().st_mode & 0o777) == "0o600"
            with api_client(written) as api:
                assert client.VersionApi(api).get_code().git_version.startswith("v1.")


def test_list_paginates_with_limit_and_continue(
    admin: ApiClient, restricted: ApiClient, kube_namespace: str
) -> None:
    core = client.CoreV1Api(admin)
    names = {f"svc-{i}" for i in range(7)}
    for name in names:
        core.create_namespaced_service(kube_namespace, _service(name))

    seen: list[str] = []
    pages = 0
    token: str | None = None
    while True:
        page = client.CoreV1Api(restricted).list_namespaced_service(kube_namespace, limit=3, _continue=token)
        pages += 1
        seen += [s.metadata.name for s in page.items]
        token = page.metadata._continue
        if not token:
            break
        assert len(page.items) == 3
        assert page.metadata.remaining_item_count == 7 - len(seen)
    assert pages == 3
    assert sorted(seen) == sorted(names)


def test_watch_delivers_annotation_change_within_one_second(
    admin: ApiClient, restricted: ApiClient, kube_namespace: str
) -> None:
    created = client.CoreV1Api(admin).create_namespaced_service(kube_namespace, _service("web"))
    events: queue.Queue[tuple[float, dict[str, Any]]] = queue.Queue()
    w = watch.Watch()

    def consume() -> None:
        stream = w.stream(
            client.CoreV1Api(restricted).list_namespaced_service,
            kube_namespace,
            resource_version=created.metadata.resource_version,
            timeout_seconds=20,
        )
        for event in stream:
            events.put((time.monotonic(), event))
            if event["type"] == "MODIFIED":
                return  # leaving the generator closes the watch connection

    thread = threading.Thread(target=consume, daemon=True)
    thread.start()
    try:
        patched_at = time.monotonic()
        client.CoreV1Api(admin).patch_namespaced_service(
            "web",
            kube_namespace,
            {"metadata": {"annotations": {"external-dns.alpha.kubernetes.io/hostname": "web.example.com"}}},
            _content_type=MERGE,
        )
        received_at, event = events.get(timeout=5)
    finally:
        w.stop()
        thread.join(timeout=5)
    assert event["type"] == "MODIFIED"
    assert event["object"].metadata.annotations == {
        "external-dns.alpha.kubernetes.io/hostname": "web.example.com"
    }
    assert received_at - patched_at < 1.0


def test_patch_with_stale_resource_version_gets_409(admin: ApiClient, kube_namespace: str) -> None:
    core = client.CoreV1Api(admin)
    first = core.create_namespaced_service(kube_namespace, _service("web"))
    stale = first.metadata.resource_version
    core.patch_namespaced_service(
        "web", kube_namespace, {"metadata": {"annotations": {"a": "1"}}}, _content_type=MERGE
    )
    with pytest.raises(ApiException) as err:
        core.patch_namespaced_service(
            "web",
            kube_namespace,
            {"metadata": {"resourceVersion": stale, "annotations": {"a": "2"}}},
            _content_type=MERGE,
        )
    assert err.value.status == 409
    assert core.read_namespaced_service("web", kube_namespace).metadata.annotations == {"a": "1"}


def test_status_subresource_sets_load_balancer_ip(
    admin: ApiClient, restricted: ApiClient, kube_namespace: str
) -> None:
    core = client.CoreV1Api(admin)
    core.create_namespaced_service(kube_namespace, _service("lb", type_="LoadBalancer"))
    # Status written through the main resource is ignored, as in any real cluster...
    core.patch_namespaced_service(
        "lb",
        kube_namespace,
        {"status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.1"}]}}},
        _content_type=MERGE,
    )
    assert not core.read_namespaced_service("lb", kube_namespace).status.load_balancer.ingress
    # ...only the status subresource sets it, which is what a cloud controller uses.
    set_service_load_balancer(admin, kube_namespace, "lb", ips=["203.0.113.7"], hostnames=["lb.example.net"])
    seen = client.CoreV1Api(restricted).read_namespaced_service("lb", kube_namespace)
    assert [(i.ip, i.hostname) for i in seen.status.load_balancer.ingress] == [
        ("203.0.113.7", None),
        (None, "lb.example.net"),
    ]

    net = client.NetworkingV1Api(admin)
    net.create_namespaced_ingress(kube_namespace, _ingress("web", "web.example.com"))
    set_ingress_load_balancer(admin, kube_namespace, "web", ips=["198.51.100.9"])
    ing = client.NetworkingV1Api(restricted).read_namespaced_ingress("web", kube_namespace)
    assert ing.status.load_balancer.ingress[0].ip == "198.51.100.9"


def test_restricted_identity_is_forbidden_secrets_and_may_patch_annotations(
    admin: ApiClient, restricted: ApiClient, kube_namespace: str
) -> None:
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "stringData": {"k": "v"}}
    client.CoreV1Api(admin).create_namespaced_secret(kube_namespace, secret)
    client.CoreV1Api(admin).create_namespaced_service(kube_namespace, _service("web"))
    net = client.NetworkingV1Api(admin)
    net.create_namespaced_ingress(kube_namespace, _ingress("web", "web.example.com"))
    core = client.CoreV1Api(restricted)

    forbidden = [
        lambda: core.list_namespaced_secret(kube_namespace),
        lambda: core.read_namespaced_secret("s", kube_namespace),
        lambda: core.list_secret_for_all_namespaces(),
        lambda: core.create_namespaced_service(kube_namespace, _service("other")),
        lambda: core.delete_namespaced_service("web", kube_namespace),
        lambda: core.list_namespaced_config_map(kube_namespace),
    ]
    for call in forbidden:
        with pytest.raises(ApiException) as err:
            call()
        assert err.value.status == 403

    annotations = {
        "external-dns.alpha.kubernetes.io/set-identifier": "kube-a",
        "external-dns.alpha.kubernetes.io/aws-weight": "80",
    }
    body = {"metadata": {"annotations": annotations}}
    svc = core.patch_namespaced_service("web", kube_namespace, body, _content_type=MERGE)
    ing = client.NetworkingV1Api(restricted).patch_namespaced_ingress(
        "web", kube_namespace, body, _content_type=MERGE
    )
    assert svc.metadata.annotations == annotations
    assert ing.metadata.annotations == annotations
    # Reading what discovery needs works across namespaces.
    assert core.list_service_for_all_namespaces(limit=1).items
    assert core.list_namespace(limit=1).items is not None
    client.DiscoveryV1Api(restricted).list_endpoint_slice_for_all_namespaces(limit=1)


def test_invalid_objects_are_rejected_by_validation_and_admission(
    admin: ApiClient, kube_namespace: str
) -> None:
    core = client.CoreV1Api(admin)
    with pytest.raises(ApiException) as err:
        core.create_namespaced_service(kube_namespace, _service("Not_A_DNS_Label"))
    assert err.value.status == 422
    with pytest.raises(ApiException) as err:
        core.create_namespaced_service("no-such-namespace", _service("web"))
    assert err.value.status == 404  # NamespaceLifecycle admission


def test_clusters_are_independent(kube_clusters: tuple[Cluster, Cluster], kube_namespace: str) -> None:
    a, b = kube_clusters
    with kube_client(a) as api_a, kube_client(b) as api_b:
        client.CoreV1Api(api_a).create_namespaced_service(kube_namespace, _service("only-in-a"))
        with pytest.raises(ApiException) as err:
            client.CoreV1Api(api_b).read_namespaced_service("only-in-a", kube_namespace)
        assert err.value.status == 404
        assert "only-in-a" not in {
            s.metadata.name for s in client.CoreV1Api(api_b).list_service_for_all_namespaces().items
        }
    assert a.server != b.server and a.etcd_url != b.etcd_url
    # Separate CAs and tokens: a's credentials do not work against b's server.
    crossed = a.kubeconfig("admin")
    crossed["clusters"][0]["cluster"]["server"] = b.server
    with api_client(crossed) as api, pytest.raises(Exception, match="CERTIFICATE_VERIFY_FAILED"):
        client.VersionApi(api).get_code(_request_timeout=5)


def test_controller_helpers_create_nodes_and_pods(
    kube_clusters: tuple[Cluster, Cluster], kube_namespace: str, kube_nodes: Any
) -> None:
    cluster = kube_clusters[1]
    kube_nodes(cluster, f"node-{kube_namespace}", internal_ip="10.1.0.5", external_ip="198.51.100.5")
    with kube_client(cluster) as admin, kube_client(cluster, "restricted") as restricted:
        create_pod(
            admin,
            kube_namespace,
            "web-1",
            pod_ip="10.244.0.7",
            node_name=f"node-{kube_namespace}",
            host_ip="10.1.0.5",
            labels={"app": "web"},
        )
        core = client.CoreV1Api(restricted)
        node = core.read_node(f"node-{kube_namespace}")
        assert {(a.type, a.address) for a in node.status.addresses} >= {
            ("InternalIP", "10.1.0.5"),
            ("ExternalIP", "198.51.100.5"),
        }
        pod = core.read_namespaced_pod("web-1", kube_namespace)
        assert (pod.status.phase, pod.status.pod_ip, pod.spec.node_name) == (
            "Running",
            "10.244.0.7",
            f"node-{kube_namespace}",
        )
        assert [c.status for c in pod.status.conditions if c.type == "Ready"] == ["True"]


def test_namespace_deletion_removes_its_objects_from_cluster_wide_lists(
    kube_clusters: tuple[Cluster, Cluster],
) -> None:
    # Without a namespace controller the objects would outlive the namespace and leak into later tests'
    # cluster-wide lists (exactly what discovery reads); the fixture's cleanup must do that controller's work.
    name = f"t-cleanup-{uuid.uuid4().hex[:8]}"
    with kube_client(kube_clusters[0]) as api:
        core = client.CoreV1Api(api)
        create_namespace(api, name)
        core.create_namespaced_service(name, _service("web", type_="LoadBalancer"))
        create_pod(api, name, "web-1", pod_ip="10.244.1.1", labels={"app": "web"})
        delete_namespace(api, name)
        with pytest.raises(ApiException) as err:
            core.read_namespace(name)
        assert err.value.status == 404
        assert not [s for s in core.list_service_for_all_namespaces().items if s.metadata.namespace == name]
        assert not [p for p in core.list_pod_for_all_namespaces().items if p.metadata.namespace == name]


def test_own_sandbox_restarts_apiserver_with_data_and_leaves_no_process(tmp_path: Path) -> None:
    sandbox = Sandbox(tmp_path / "sb", ["solo"])
    try:
        sandbox.start(timeout=120)
        (cluster,) = sandbox.clusters
        port = cluster.apiserver_port
        kubeconfig = cluster.kubeconfig("admin")
        with api_client(kubeconfig) as api:
            client.CoreV1Api(api).create_namespaced_config_map(
                "default", {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "keep"}}
            )
        old_apiserver = cluster.apiserver_pid
        assert old_apiserver is not None

        cluster.stop_apiserver()
        assert_no_processes([old_apiserver])
        with api_client(kubeconfig) as api, pytest.raises(Exception, match=r"(?i)refused"):
            client.VersionApi(api).get_code(_request_timeout=2)

        cluster.start_apiserver()
        assert cluster.apiserver_port == port
        with api_client(kubeconfig) as api:  # the same kubeconfig works again: same port, CA and token
            assert client.CoreV1Api(api).read_namespaced_config_map("keep", "default").metadata.name == "keep"
        pids = sandbox.pids()
        assert len(pids) == 2
    finally:
        sandbox.stop()
    assert_no_processes(pids)
    assert not sandbox.state_file.exists()


def test_start_retries_on_fresh_ports_when_a_port_was_taken_meanwhile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Simulate the race a free-port pick can lose: the saved apiserver port is taken by someone else by the
    # time the apiserver binds it. The sandbox must notice the bind failure and retry on fresh ports.
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        (tmp_path / "sb" / "solo").mkdir(parents=True)
        (tmp_path / "sb" / "solo" / "ports.json").write_text(json.dumps({"apiserver": taken}))
        monkeypatch.setattr("tools.kube_sandbox.sandbox._port_is_free", lambda port: True)
        sandbox = Sandbox(tmp_path / "sb", ["solo"])
        try:
            sandbox.start(timeout=120)
            assert sandbox.clusters[0].apiserver_port != taken
            assert sandbox.clusters[0].probe_ready()
            pids = sandbox.pids()
        finally:
            sandbox.stop()
    assert "address already in use" in (tmp_path / "sb" / "solo" / "apiserver.log").read_text()
    assert_no_processes(pids)


def test_cli_up_seeds_demo_and_stops_everything_on_sigterm(tmp_path: Path) -> None:
    state = tmp_path / "sandbox.json"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tools.kube_sandbox",
            "up",
            "--names",
            "eks-us-east-1",
            "--seed-demo",
            "--dir",
            str(tmp_path),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        deadline = time.monotonic() + 120
        while not state.exists():
            assert proc.poll() is None, proc.communicate()[0]
            assert time.monotonic() < deadline, "the CLI did not become ready"
            time.sleep(0.1)  # poll interval of a deadline-bounded wait
        info = json.loads(state.read_text())["clusters"][0]
        kubeconfig = yaml.safe_load(Path(info["kubeconfig_restricted"]).read_text())
        # sandbox.json appears only once the clusters are ready and seeded: no further waiting.
        with api_client(kubeconfig) as api:
            ingresses = client.NetworkingV1Api(api).list_namespaced_ingress("default").items
            assert ingresses[0].status.load_balancer.ingress[0].ip == "203.0.113.11"
            listed = client.CoreV1Api(api).list_namespaced_service("default").items
            services = {s.metadata.name: s for s in listed}
            lb = services["nginx-distro-check"]
            assert lb.spec.type == "LoadBalancer"
            assert lb.metadata.annotations["external-dns.alpha.kubernetes.io/hostname"] == "app.example.com"
            assert lb.status.load_balancer.ingress[0].ip == "203.0.113.10"
            assert services["nginx-distro-check-nodeport"].spec.type == "NodePort"
            assert ingresses[0].spec.rules[0].host == "eks.app.example.com"
            externals = {
                a.address
                for n in client.CoreV1Api(api).list_node().items
                for a in n.status.addresses
                if a.type == "ExternalIP"
            }
            assert externals == {"203.0.113.21", "203.0.113.22"}
        pids = [info["apiserver_pid"], info["etcd_pid"]]
        assert all(Path(f"/proc/{pid}").exists() for pid in pids)
    finally:
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, output
    assert_no_processes(pids)
    assert not state.exists()
