"""The cluster registry against real kube-apiservers: register, check, refuse, encrypt, never leak a token."""

from __future__ import annotations

import base64
import io
import json
import logging
import time
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from django.db import connection
from kubernetes import client as k8s

from clusters.kube import ClusterClient
from clusters.kubeconfig import parse_kubeconfig
from clusters.models import Cluster, ClusterCheck
from dnsportal.models import AuditEntry, JobRun
from tests.fixtures.kube import kube_client
from tools.services import free_port

pytestmark = pytest.mark.django_db(transaction=True)


def _yaml(kubeconfig: dict) -> str:
    return yaml.safe_dump(kubeconfig, sort_keys=False)


def _register(client, name: str, kubeconfig: dict | str, **extra) -> object:
    text = kubeconfig if isinstance(kubeconfig, str) else _yaml(kubeconfig)
    return client.post(
        "/clusters/register/", {"name": name, "kubeconfig": text, "labels": "site=dc1", **extra}
    )


def _other_ca_pem() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "not-the-cluster-ca")])
    now = __import__("datetime").datetime.now(__import__("datetime").UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + __import__("datetime").timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return base64.b64encode(cert.public_bytes(serialization.Encoding.PEM)).decode()


def _token_for_service_account(cluster, namespace: str, rules: list[dict]) -> str:
    """A ServiceAccount bound to `rules` and a token for it, made by the apiserver's TokenRequest API."""
    api = kube_client(cluster)
    core, rbac = k8s.CoreV1Api(api), k8s.RbacAuthorizationV1Api(api)
    core.create_namespaced_service_account(namespace, {"metadata": {"name": "probe"}})
    role = f"probe-{namespace}"
    rbac.create_cluster_role({"metadata": {"name": role}, "rules": rules})
    rbac.create_cluster_role_binding(
        {
            "metadata": {"name": role},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
            "subjects": [{"kind": "ServiceAccount", "name": "probe", "namespace": namespace}],
        }
    )
    token = core.create_namespaced_service_account_token(
        "probe", namespace, {"spec": {"expirationSeconds": 3600}}
    )
    return token.status.token


def _with_token(kubeconfig: dict, token: str) -> dict:
    copy = json.loads(json.dumps(kubeconfig))
    copy["users"][0]["user"]["token"] = token
    return copy


def test_register_via_the_form_and_the_check_reports_version_and_permissions(
    client, root, kube_clusters, run_jobs
):
    cluster_a, _ = kube_clusters
    client.force_login(root)
    response = _register(client, "rke2-dc1", cluster_a.kubeconfig("restricted"), display_name="RKE2 in DC1")
    assert response.status_code == 302, response.content.decode()[:2000]
    run_jobs()
    cluster = Cluster.objects.get(name="rke2-dc1")
    assert cluster.health == Cluster.Health.HEALTHY, cluster.last_error
    assert cluster.server_version.startswith("v1.")
    assert cluster.missing_permissions == []  # the restricted identity has exactly what the portal needs
    assert cluster.distribution == "other" and cluster.labels == {"site": "dc1"}
    assert cluster.server == cluster_a.server and len(cluster.fingerprint) == 64
    check = ClusterCheck.objects.get(cluster=cluster)
    assert check.health == "healthy" and check.duration_ms > 0
    assert AuditEntry.objects.filter(action="cluster.register", object_id=str(cluster.id)).exists()
    page = client.get("/clusters/rke2-dc1/").content.decode()
    assert "Healthy" in page and cluster.server_version in page and "all granted" in page


def test_an_identity_without_patch_is_reported_by_name(client, root, kube_clusters, kube_namespace, run_jobs):
    cluster_a, _ = kube_clusters
    read_only = [
        {"apiGroups": [""], "resources": ["services", "pods", "nodes"], "verbs": ["get", "list", "watch"]},
        {"apiGroups": ["networking.k8s.io"], "resources": ["ingresses"], "verbs": ["get", "list", "watch"]},
        {
            "apiGroups": ["discovery.k8s.io"],
            "resources": ["endpointslices"],
            "verbs": ["get", "list", "watch"],
        },
    ]
    token = _token_for_service_account(cluster_a, kube_namespace, read_only)
    client.force_login(root)
    assert (
        _register(client, "read-only", _with_token(cluster_a.kubeconfig("admin"), token)).status_code == 302
    )
    run_jobs()
    cluster = Cluster.objects.get(name="read-only")
    assert cluster.health == Cluster.Health.DEGRADED
    assert cluster.missing_permissions == ["patch services", "patch ingresses.networking.k8s.io"]


def test_the_least_privilege_manifest_grants_exactly_what_is_needed(client, root, kube_clusters, run_jobs):
    from kubernetes import utils

    cluster_a, _ = kube_clusters
    api = kube_client(cluster_a)
    manifest = Path(__file__).resolve().parents[2] / "deploy" / "cluster-access.yaml"
    docs = [d for d in yaml.safe_load_all(manifest.read_text()) if d["kind"] != "Secret"]
    try:
        for doc in docs:
            utils.create_from_dict(api, doc)
        # The sandbox has no token controller for the long-lived Secret; TokenRequest gives that identity.
        token = (
            k8s.CoreV1Api(api)
            .create_namespaced_service_account_token(
                "dnsportal", "dnsportal", {"spec": {"expirationSeconds": 3600}}
            )
            .status.token
        )
        client.force_login(root)
        assert (
            _register(client, "least-priv", _with_token(cluster_a.kubeconfig("admin"), token)).status_code
            == 302
        )
        run_jobs()
        cluster = Cluster.objects.get(name="least-priv")
        assert (cluster.health, cluster.missing_permissions) == (Cluster.Health.HEALTHY, [])
        # ... and not more than that: no Secrets.
        access = parse_kubeconfig(_yaml(_with_token(cluster_a.kubeconfig("admin"), token)))
        with ClusterClient(access) as probe, pytest.raises(k8s.exceptions.ApiException) as denied:
            k8s.CoreV1Api(probe.api).list_secret_for_all_namespaces()
        assert denied.value.status == 403
    finally:
        rbac = k8s.RbacAuthorizationV1Api(api)
        rbac.delete_cluster_role_binding("dnsportal")
        rbac.delete_cluster_role("dnsportal")
        k8s.CoreV1Api(api).delete_namespace("dnsportal")


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("wrong-ca", "TLS error talking to"),
        ("dead-port", "connection refused"),
        ("bad-token", "401 Unauthorized"),
    ],
)
def test_each_failure_gives_a_distinct_clear_error_and_the_cluster_is_kept(
    client, root, kube_clusters, run_jobs, case, expected
):
    cluster_a, _ = kube_clusters
    kubeconfig = cluster_a.kubeconfig("restricted")
    if case == "wrong-ca":
        kubeconfig["clusters"][0]["cluster"]["certificate-authority-data"] = _other_ca_pem()
    elif case == "dead-port":
        kubeconfig["clusters"][0]["cluster"]["server"] = f"https://127.0.0.1:{free_port()}"
    else:
        kubeconfig["users"][0]["user"]["token"] = "this-token-does-not-exist-0123456789"
    client.force_login(root)
    assert _register(client, case, kubeconfig).status_code == 302
    start = time.monotonic()
    run_jobs()
    assert time.monotonic() - start < 20  # within the connect/read timeouts, no hanging
    cluster = Cluster.objects.get(name=case)  # marked, never deleted
    assert cluster.health == Cluster.Health.UNREACHABLE
    assert expected in cluster.last_error, cluster.last_error
    assert "Cannot" in cluster.last_error or "TLS" in cluster.last_error or "rejected" in cluster.last_error
    page = client.get(f"/clusters/{case}/").content.decode()
    assert expected in page


def test_an_unreachable_cluster_is_marked_not_deleted_and_recovers(client, root, kube_clusters, run_jobs):
    _, cluster_b = kube_clusters
    client.force_login(root)
    _register(client, "k3s-edge", cluster_b.kubeconfig("restricted"))
    run_jobs()
    assert Cluster.objects.get(name="k3s-edge").health == "healthy"
    cluster_b.stop_apiserver()
    try:
        client.post("/clusters/k3s-edge/check/")
        run_jobs()
        down = Cluster.objects.get(name="k3s-edge")
        assert down.health == "unreachable" and "connection refused" in down.last_error
        assert down.server_version  # what it last knew stays visible
    finally:
        cluster_b.start_apiserver()
    client.post("/clusters/k3s-edge/check/")
    run_jobs()
    assert Cluster.objects.get(name="k3s-edge").health == "healthy"
    assert list(ClusterCheck.objects.filter(cluster__name="k3s-edge").values_list("health", flat=True)) == [
        "healthy",
        "unreachable",
        "healthy",
    ]


def test_the_kubeconfig_is_ciphertext_in_the_database_and_never_shown(client, root, kube_clusters, run_jobs):
    cluster_a, _ = kube_clusters
    kubeconfig = cluster_a.kubeconfig("restricted")
    token = kubeconfig["users"][0]["user"]["token"]
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    from dnsportal.logging import ContextFilter, JsonFormatter

    handler.setFormatter(JsonFormatter())
    handler.addFilter(ContextFilter())
    logging.getLogger().addHandler(handler)
    old_level = logging.getLogger().level
    logging.getLogger().setLevel(logging.DEBUG)
    try:
        client.force_login(root)
        assert _register(client, "secret-check", kubeconfig).status_code == 302
        run_jobs()
        cluster = Cluster.objects.get(name="secret-check")
        # Even debug logging of everything the portal knows would not show it.
        logging.getLogger("dnsportal.test").debug("kubeconfig was %s", cluster.kubeconfig)
    finally:
        logging.getLogger().removeHandler(handler)
        logging.getLogger().setLevel(old_level)
    with connection.cursor() as cur:
        cur.execute("SELECT kubeconfig_encrypted FROM clusters_cluster WHERE name = %s", ["secret-check"])
        (raw,) = cur.fetchone()
    assert token not in raw and "apiVersion" not in raw and raw.startswith("gAAAA")  # a Fernet token
    pages = [
        client.get(url).content.decode()
        for url in (
            "/clusters/",
            "/clusters/secret-check/",
            "/clusters/secret-check/edit/",
            "/audit/",
            "/jobs/",
            f"/audit/{AuditEntry.objects.get(action='cluster.register').id}/",
            f"/jobs/{JobRun.objects.filter(name='cluster_check').first().id}/",
        )
    ]
    for page in pages:
        assert token not in page
    assert token not in stream.getvalue() and "[redacted]" in stream.getvalue()
    assert token not in json.dumps(list(AuditEntry.objects.values("before", "after")), default=str)


def test_key_rotation_reencrypts_and_old_keys_still_decrypt(client, root, kube_clusters, settings):
    from cryptography.fernet import Fernet
    from django.core.management import call_command

    cluster_a, _ = kube_clusters
    client.force_login(root)
    _register(client, "rotating", cluster_a.kubeconfig("restricted"))
    old_key = settings.ENCRYPTION_KEYS[0]
    before = Cluster.objects.get(name="rotating")
    new_key = Fernet.generate_key().decode()
    settings.ENCRYPTION_KEYS = [new_key, old_key]
    plain = before.kubeconfig
    assert plain.startswith("apiVersion")  # every key of the list decrypts
    call_command("rotate_encryption_keys", stdout=io.StringIO())
    after = Cluster.objects.get(name="rotating")
    assert after.kubeconfig_encrypted != before.kubeconfig_encrypted
    settings.ENCRYPTION_KEYS = [new_key]  # the old key can go now
    assert after.kubeconfig == plain
    assert AuditEntry.objects.filter(action="secrets.rotate").exists()


def test_a_bad_kubeconfig_is_refused_on_the_form_with_the_field_named(client, root, kube_clusters):
    cluster_a, _ = kube_clusters
    kubeconfig = cluster_a.kubeconfig("restricted")
    kubeconfig["users"][0]["user"] = {"exec": {"command": "sh", "args": ["-c", "touch /tmp/pwned"]}}
    client.force_login(root)
    response = _register(client, "evil", kubeconfig)
    assert response.status_code == 422
    assert b"exec" in response.content
    assert not Cluster.objects.filter(name="evil").exists()


def test_only_admins_register_and_delete_and_delete_needs_the_name(client, alice, root, kube_clusters):
    cluster_a, _ = kube_clusters
    client.force_login(alice)
    assert _register(client, "by-operator", cluster_a.kubeconfig("restricted")).status_code == 403
    client.force_login(root)
    _register(client, "to-delete", cluster_a.kubeconfig("restricted"))
    confirm = client.get("/clusters/to-delete/delete/").content.decode()
    assert "No DNS record is deleted by this" in confirm
    assert client.post("/clusters/to-delete/delete/", {"confirm_name": "wrong"}).status_code == 422
    assert Cluster.objects.filter(name="to-delete").exists()
    assert client.post("/clusters/to-delete/delete/", {"confirm_name": "to-delete"}).status_code == 302
    assert not Cluster.objects.filter(name="to-delete").exists()
    entry = AuditEntry.objects.get(action="cluster.delete")
    assert entry.before["name"] == "to-delete" and entry.actor == root


def test_test_connection_before_saving_keeps_no_kubeconfig(client, root, kube_clusters, run_jobs):
    from clusters.models import ConnectionTest

    cluster_a, _ = kube_clusters
    client.force_login(root)
    response = client.post(
        "/clusters/test-connection/", {"kubeconfig": _yaml(cluster_a.kubeconfig("restricted"))}
    )
    assert response.status_code == 200 and b"Testing the connection" in response.content
    run_jobs()
    test = ConnectionTest.objects.get()
    assert test.status == "done" and test.result["health"] == "healthy"
    assert test.kubeconfig_encrypted == ""  # gone once tested
    assert not Cluster.objects.exists()  # nothing registered by a test
    done = client.get(f"/clusters/test-connection/{test.id}/").content.decode()
    assert "Connected" in done and "Every permission dnsportal needs is granted" in done


def test_an_eks_kubeconfig_is_registered_with_aws_keys_instead_of_running_aws(client, root, kube_clusters):
    cluster_a, _ = kube_clusters
    kubeconfig = cluster_a.kubeconfig("restricted")
    kubeconfig["users"][0]["user"] = {
        "exec": {
            "apiVersion": "client.authentication.k8s.io/v1beta1",
            "command": "aws",
            "args": ["--region", "us-east-1", "eks", "get-token", "--cluster-name", "prod"],
        }
    }
    client.force_login(root)
    refused = _register(client, "eks-no-keys", kubeconfig)
    assert refused.status_code == 422 and b"exec" in refused.content
    secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    response = _register(
        client, "eks-prod", kubeconfig, aws_access_key_id="AKIAIOSFODNN7EXAMPLE", aws_secret_access_key=secret
    )
    assert response.status_code == 302, response.context["form"].errors
    cluster = Cluster.objects.get(name="eks-prod")
    assert (cluster.auth_kind, cluster.eks_cluster_name, cluster.eks_region) == ("eks", "prod", "us-east-1")
    assert cluster.aws_credentials["secret_access_key"] == secret
    with connection.cursor() as cur:
        cur.execute("SELECT aws_credentials_encrypted FROM clusters_cluster WHERE name = 'eks-prod'")
        assert secret not in cur.fetchone()[0]
    assert secret not in client.get("/clusters/eks-prod/").content.decode()
    # The client it builds carries a signed EKS token, never the output of a command.
    from clusters.services import client_for

    with client_for(cluster) as cc:
        assert cc.api.configuration.api_key["BearerToken"].startswith("k8s-aws-v1.")
