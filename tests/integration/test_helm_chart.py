"""The Helm chart (deploy/helm/dnsportal), rendered by the real Helm and checked by a real kube-apiserver.

Helm is built from its Go module by `tools/helm/build.sh` (`make test` runs it); a missing binary fails these
tests, never skips them. For the default values and each documented variant (`values-*.yaml` in the chart):
`helm lint --strict` is clean, `helm template` renders, the rendered manifests have what a hardened deployment
needs (non-root, read-only root filesystem, resource requests, probes on /healthz and /readyz, no secret
value in plain text), and the sandbox apiserver accepts every manifest with a server-side dry run (strict
field validation: an unknown or misplaced field is refused), and every pod template under the `restricted`
Pod Security Standard.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import ResourceNotFoundError

from tests.fixtures.kube import kube_client

ROOT = Path(__file__).resolve().parents[2]
HELM = ROOT / "tools" / "helm" / "bin" / "helm"
CHART = ROOT / "deploy" / "helm" / "dnsportal"
RELEASE = "portal"
VARIANTS = ["default", *sorted(p.name for p in CHART.glob("values-*.yaml"))]
PORTAL_COMPONENTS = {"web", "worker", "scheduler", "watch", "migrate"}
SECRET_VARIABLES = {
    "SECRET_KEY",
    "DNSPORTAL_ENCRYPTION_KEYS",
    "DATABASE_URL",
    "REDIS_URL",
    "DNSPORTAL_METRICS_TOKEN",
    "DNSPORTAL_OIDC_CLIENT_SECRET",
}


def _helm(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    if not HELM.exists():
        pytest.fail(f"{HELM} is missing: `make test` builds it (tools/helm/build.sh)", pytrace=False)
    out = subprocess.run([str(HELM), *args], capture_output=True, text=True, check=False, timeout=120)
    if check and out.returncode != 0:
        pytest.fail(f"helm {' '.join(args)} exited {out.returncode}:\n{out.stderr}", pytrace=False)
    return out


def _values_args(variant: str) -> list[str]:
    return [] if variant == "default" else ["-f", str(CHART / variant)]


def render(variant: str, namespace: str = "dnsportal", *extra: str) -> list[dict[str, Any]]:
    out = _helm("template", RELEASE, str(CHART), "--namespace", namespace, *_values_args(variant), *extra)
    return [doc for doc in yaml.safe_load_all(out.stdout) if doc]


def _kinds(docs: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(d["kind"], d["metadata"]["name"]): d for d in docs}


def _pod_specs(docs: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    for doc in docs:
        if doc["kind"] in {"Deployment", "Job"}:
            yield doc["metadata"]["name"], doc["spec"]["template"]["spec"]


@pytest.mark.parametrize("variant", VARIANTS)
def test_chart_lints_clean(variant):
    out = _helm("lint", "--strict", str(CHART), *_values_args(variant))
    assert "0 chart(s) failed" in out.stdout, out.stdout


@pytest.mark.parametrize("variant", VARIANTS)
def test_rendered_manifests_are_hardened(variant):
    docs = render(variant)
    by_kind = _kinds(docs)
    deployments = {
        n.removeprefix(f"{RELEASE}-dnsportal-"): d for (k, n), d in by_kind.items() if k == "Deployment"
    }
    assert set(deployments) == {"web", "worker", "scheduler", "watch"}
    # The watch runs a standby: leadership is a lock in Redis, so no Role, Lease or token is rendered for it.
    assert deployments["watch"]["spec"]["replicas"] >= 2
    assert not {k for k, _ in by_kind} & {"Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding", "Lease"}
    job = by_kind[("Job", f"{RELEASE}-dnsportal-migrate")]
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert job["spec"]["template"]["spec"]["containers"][0]["command"][-2:] == ["migrate", "--no-input"]
    assert ("Service", f"{RELEASE}-dnsportal") in by_kind
    assert {n for k, n in by_kind if k == "PodDisruptionBudget"} == {
        f"{RELEASE}-dnsportal-{c}" for c in ("web", "worker", "watch")
    }
    # The chart makes no Secret: every secret comes from one that exists.
    assert "Secret" not in {k for k, _ in by_kind}

    for name, spec in _pod_specs(docs):
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        assert spec["automountServiceAccountToken"] is False, name
        mounts_of_tmp = {v["name"] for v in spec["volumes"] if "emptyDir" in v}
        for container in spec["containers"]:
            where = f"{name}/{container['name']}"
            sc = container["securityContext"]
            assert sc["readOnlyRootFilesystem"] is True, where
            assert sc["allowPrivilegeEscalation"] is False, where
            assert sc["capabilities"]["drop"] == ["ALL"], where
            assert {"cpu", "memory"} <= set(container["resources"]["requests"]), where
            assert "memory" in container["resources"]["limits"], where
            assert any(
                m["mountPath"] == "/tmp" and m["name"] in mounts_of_tmp for m in container["volumeMounts"]
            ), where
            for env in container.get("env", []):
                plain = env["name"].removesuffix("_FILE") in SECRET_VARIABLES and "value" in env
                assert not plain or env["name"].endswith("_FILE"), f"{where}: {env['name']} in plain text"
                if env["name"] in SECRET_VARIABLES:
                    assert set(env["valueFrom"]) == {"secretKeyRef"}, where

    web = deployments["web"]["spec"]["template"]["spec"]["containers"][0]
    assert web["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert web["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    # No value in the settings ConfigMap looks like a credential.
    config = by_kind[("ConfigMap", f"{RELEASE}-dnsportal-env")]["data"]
    assert config["DNSPORTAL_MODE"] == "production"
    assert not SECRET_VARIABLES & set(config)
    for key, value in config.items():
        assert not re.search(r"://[^/@\s]*:[^/@\s]*@", value), f"{key} carries a password"


def test_secrets_mounted_as_files_give_the_processes_file_paths():
    docs = render("values-secret-files.yaml")
    for name, spec in _pod_specs(docs):
        [projected] = [v["projected"] for v in spec["volumes"] if v["name"] == "secrets"]
        secrets = {s["secret"]["name"] for s in projected["sources"]}
        assert secrets == {
            "dnsportal-django",
            "dnsportal-encryption",
            "rds-dnsportal",
            "elasticache-dnsportal",
        }
        for container in spec["containers"]:
            env = {e["name"]: e for e in container["env"]}
            for var in ("SECRET_KEY", "DNSPORTAL_ENCRYPTION_KEYS", "DATABASE_URL", "REDIS_URL"):
                assert var not in env, f"{name}: {var}"
                assert env[f"{var}_FILE"]["value"].startswith("/var/run/secrets/dnsportal/"), name


def _labels_match(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def test_ingress_and_monitoring_variant():
    docs = render("values-ingress-monitoring.yaml", "mon")
    by_kind = _kinds(docs)
    ingress = by_kind[("Ingress", f"{RELEASE}-dnsportal")]
    assert [r["host"] for r in ingress["spec"]["rules"]] == ["dns.example.com"]
    config = by_kind[("ConfigMap", f"{RELEASE}-dnsportal-env")]["data"]
    assert config["ALLOWED_HOSTS"] == "dns.example.com"
    assert config["CSRF_TRUSTED_ORIGINS"] == "https://dns.example.com"
    assert config["DNSPORTAL_METRICS_PORT"] == "9100"
    assert config["DNSPORTAL_TRUSTED_PROXY_COUNT"] == "1"  # login locks per client behind the Ingress

    # Every pod is scraped with the token: the web's Service on `http`, the other processes' own port through
    # a headless Service; each endpoint finds its port on exactly one of the selected Services.
    monitor = by_kind[("ServiceMonitor", f"{RELEASE}-dnsportal")]
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": ["mon"]}
    endpoints = {e["port"]: e for e in monitor["spec"]["endpoints"]}
    assert set(endpoints) == {"http", "metrics"}
    for endpoint in endpoints.values():
        assert endpoint["path"] == "/metrics"
        assert endpoint["authorization"]["credentials"] == {"name": "dnsportal-metrics", "key": "token"}
    services = [
        d
        for d in docs
        if d["kind"] == "Service"
        and _labels_match(monitor["spec"]["selector"]["matchLabels"], d["metadata"]["labels"])
    ]
    ports = {p["name"]: s["spec"]["selector"] for s in services for p in s["spec"]["ports"]}
    assert set(ports) == {"http", "metrics"}
    for (kind, name), doc in by_kind.items():
        if kind != "Deployment":
            continue
        template = doc["spec"]["template"]
        component = template["metadata"]["labels"]["app.kubernetes.io/component"]
        port_names = {p["name"] for p in template["spec"]["containers"][0].get("ports", [])}
        scraped_on = {
            port
            for port, selector in ports.items()
            if _labels_match(selector, template["metadata"]["labels"])
        }
        assert scraped_on == {"web": {"http"}}.get(component, {"metrics"}), name
        assert scraped_on <= port_names, name
        token = {e["name"]: e for e in template["spec"]["containers"][0]["env"]}["DNSPORTAL_METRICS_TOKEN"]
        assert token["valueFrom"]["secretKeyRef"] == {"name": "dnsportal-metrics", "key": "token"}


def test_metrics_stay_off_without_a_token_or_allow_list():
    docs = render("default")
    by_kind = _kinds(docs)
    config = by_kind[("ConfigMap", f"{RELEASE}-dnsportal-env")]["data"]
    # Counters of a pod's processes still go to its own emptyDir, summed by the web's /metrics once enabled.
    assert config["PROMETHEUS_MULTIPROC_DIR"] == "/var/lib/dnsportal/metrics"
    assert "DNSPORTAL_METRICS_PORT" not in config
    assert {n for k, n in by_kind if k == "Service"} == {f"{RELEASE}-dnsportal"}
    for name, spec in _pod_specs(docs):
        for container in spec["containers"]:
            assert {p["name"] for p in container.get("ports", [])} <= {"http"}, name
            mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
            assert mounts["/var/lib/dnsportal/metrics"] in {
                v["name"] for v in spec["volumes"] if "emptyDir" in v
            }


def test_the_sso_client_secret_comes_from_an_existing_secret():
    docs = render(
        "default",
        "dnsportal",
        "--set",
        "oidc.clientSecret.name=sso",
        "--set",
        "env.DNSPORTAL_OIDC_ISSUER=https://id",
    )
    assert (
        _kinds(docs)[("ConfigMap", f"{RELEASE}-dnsportal-env")]["data"]["DNSPORTAL_OIDC_ISSUER"]
        == "https://id"
    )
    specs = list(_pod_specs(docs))
    assert specs
    for name, spec in specs:
        for container in spec["containers"]:
            env = {e["name"]: e for e in container.get("env", [])}
            ref = env["DNSPORTAL_OIDC_CLIENT_SECRET"]["valueFrom"]["secretKeyRef"]
            assert ref == {"name": "sso", "key": "client-secret"}, name
    # unset by default: no variable at all
    for _name, spec in _pod_specs(render("default")):
        for container in spec["containers"]:
            assert "DNSPORTAL_OIDC_CLIENT_SECRET" not in {e["name"] for e in container.get("env", [])}


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--set", "env.SECRET_KEY=hunter2"], "env.SECRET_KEY: secrets come from existing Secrets"),
        (["--set", "env.DATABASE_URL=postgres://u:p@db/x"], "env.DATABASE_URL: secrets come from existing"),
        (["--set", "env.DNSPORTAL_OIDC_CLIENT_SECRET=s3cret"], "env.DNSPORTAL_OIDC_CLIENT_SECRET: secrets"),
        (["--set", "postgres.urlSecret.name="], "DATABASE_URL needs an existing Secret"),
        (["--set", "metrics.serviceMonitor.enabled=true"], "needs metrics.tokenSecret"),
        # values.schema.json: a misspelt or ill-typed value fails the render instead of being ignored.
        (["--set", "secrets.mountAs=plain"], "at '/secrets/mountAs': value must be one of 'env', 'files'"),
        (["--set", "web.replica=3"], "at '/web': additional properties 'replica' not allowed"),
        (["--set", "worker.queues={default,dsn}"], "at '/worker/queues/1'"),
    ],
)
def test_chart_refuses_plain_secrets_and_missing_references(flags, message):
    out = _helm("template", RELEASE, str(CHART), *flags, check=False)
    assert out.returncode != 0
    assert message in out.stderr


# A minimal stand-in for prometheus-operator's ServiceMonitor CRD: the group, version and kind the chart
# uses, with a structural schema that keeps every field (the apiserver checks the envelope, not the spec).
SERVICE_MONITOR_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "servicemonitors.monitoring.coreos.com"},
    "spec": {
        "group": "monitoring.coreos.com",
        "scope": "Namespaced",
        "names": {
            "plural": "servicemonitors",
            "singular": "servicemonitor",
            "kind": "ServiceMonitor",
            "listKind": "ServiceMonitorList",
        },
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                        },
                    }
                },
            }
        ],
    },
}


@pytest.fixture(scope="module")
def sandbox_api(kube_clusters) -> Iterator[client.ApiClient]:
    cluster = kube_clusters[0]
    api = kube_client(cluster)
    ext = client.ApiextensionsV1Api(api)
    try:
        ext.create_custom_resource_definition(SERVICE_MONITOR_CRD)
    except ApiException as exc:
        if exc.status != 409:
            raise
    deadline = time.monotonic() + 30
    while True:
        crd = ext.read_custom_resource_definition(SERVICE_MONITOR_CRD["metadata"]["name"])
        conditions = {c.type: c.status for c in (crd.status.conditions or [])}
        if conditions.get("Established") == "True":
            break
        assert time.monotonic() < deadline, f"the ServiceMonitor CRD was not established: {conditions}"
        time.sleep(0.2)
    yield api
    ext.delete_custom_resource_definition(SERVICE_MONITOR_CRD["metadata"]["name"])
    api.close()


def _resource(dyn: DynamicClient, api_version: str, kind: str):
    # A CRD just established may not be in the discovery the client cached yet.
    deadline = time.monotonic() + 30
    while True:
        try:
            return dyn.resources.get(api_version=api_version, kind=kind)
        except ResourceNotFoundError:
            if time.monotonic() > deadline:
                raise
            dyn.resources.invalidate_cache()
            time.sleep(0.5)


def dry_run(api: client.ApiClient, namespace: str, docs: list[dict[str, Any]], cache: Path) -> dict[str, str]:
    """Send every manifest to the apiserver as a server-side dry run with strict field validation, then a pod
    of each pod template, as its controller would create it, into `namespace` (which enforces the
    `restricted` Pod Security Standard). Returns what was refused: "Kind/name" -> the apiserver's message."""
    core = client.CoreV1Api(api)
    core.patch_namespace(
        namespace, {"metadata": {"labels": {"pod-security.kubernetes.io/enforce": "restricted"}}}
    )
    dyn = DynamicClient(api, cache_file=str(cache))
    refused = {}
    for doc in docs:
        resource = _resource(dyn, doc["apiVersion"], doc["kind"])
        try:
            created = resource.create(
                body=doc,
                namespace=namespace if resource.namespaced else None,
                dry_run="All",
                query_params=[("fieldValidation", "Strict")],
            )
        except ApiException as exc:
            refused[f"{doc['kind']}/{doc['metadata']['name']}"] = json.loads(exc.body)["message"]
            continue
        assert created.metadata.name == doc["metadata"]["name"]
    for doc in docs:
        if doc["kind"] == "ServiceAccount":  # a pod's admission looks its account up, so it must exist
            core.create_namespaced_service_account(namespace, doc)
    for name, spec in _pod_specs(docs):
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"{name}-probe"}, "spec": spec}
        try:
            core.create_namespaced_pod(namespace, pod, dry_run="All", field_validation="Strict")
        except ApiException as exc:
            refused[f"Pod/{name}"] = json.loads(exc.body)["message"]
    return refused


@pytest.mark.parametrize("variant", VARIANTS)
def test_sandbox_apiserver_accepts_every_manifest(variant, sandbox_api, kube_namespace, tmp_path):
    docs = render(variant, kube_namespace)
    kinds = {d["kind"] for d in docs}
    expected = {"ConfigMap", "Deployment", "Job", "Service", "PodDisruptionBudget"}
    if variant == "values-ingress-monitoring.yaml":
        expected |= {"Ingress", "ServiceMonitor"}
    assert expected <= kinds

    assert dry_run(sandbox_api, kube_namespace, docs, tmp_path / "discovery.json") == {}
    # A dry run persists nothing.
    core = client.CoreV1Api(sandbox_api)
    selector = "app.kubernetes.io/name=dnsportal"
    assert core.list_namespaced_config_map(kube_namespace, label_selector=selector).items == []


def test_sandbox_apiserver_refuses_a_misplaced_field_and_a_root_pod(sandbox_api, kube_namespace, tmp_path):
    """The dry run above has teeth: a typo in a manifest, or a pod the restricted standard forbids, is
    refused by the apiserver (so the hardening is checked by Kubernetes itself, not only by this file)."""
    docs = render(
        "default",
        kube_namespace,
        "--set-json",
        'web.livenessProbe={"httpGet": {"path": "/healthz", "port": "http"}, "periodSecond": 15}',
        "--set",
        "securityContext.allowPrivilegeEscalation=true",
    )
    refused = dry_run(sandbox_api, kube_namespace, docs, tmp_path / "discovery.json")
    assert 'unknown field "spec.template.spec.containers[0].livenessProbe.periodSecond"' in refused.pop(
        f"Deployment/{RELEASE}-dnsportal-web"
    )
    # The web pod is refused for the typo before Pod Security looks at it.
    assert 'unknown field "spec.containers[0].livenessProbe.periodSecond"' in refused.pop(
        f"Pod/{RELEASE}-dnsportal-web"
    )
    for component in ("worker", "scheduler", "watch", "migrate"):
        assert "allowPrivilegeEscalation != false" in refused.pop(f"Pod/{RELEASE}-dnsportal-{component}")
    assert refused == {}


def test_default_values_need_only_the_documented_secrets():
    """The Secrets the default values name are those README.md tells an operator to create."""
    docs = render("default")
    names = set()
    for _, spec in _pod_specs(docs):
        for container in spec["containers"]:
            for env in container.get("env", []):
                ref = env.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    names.add((ref["name"], ref["key"]))
    assert names == {
        ("dnsportal", "secret-key"),
        ("dnsportal", "encryption-keys"),
        ("dnsportal-postgres", "url"),
        ("dnsportal-redis", "url"),
    }
    readme = (ROOT / "README.md").read_text()
    for name, key in names:
        assert name in readme and key in readme, (name, key)
