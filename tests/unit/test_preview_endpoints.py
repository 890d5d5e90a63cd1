"""`manage.py preview_endpoints` in a subprocess, with no DATABASE_URL or REDIS_URL: no services needed.

The manifests are in tests/data/manifests/. The command's data directory is a fresh temporary one, and the
test checks afterwards that no database file appeared in it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from records.endpoint import Endpoint

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = ROOT / "tests" / "data" / "manifests"
SHOP = str(MANIFESTS / "shop.yaml")
EXTRA = str(MANIFESTS / "extra.json")


def run(tmp_path: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    # No DATABASE_URL and no PostgreSQL of make up's in this data dir: a command that opened a database would
    # fail, so every exit code asserted below also says it needs none.
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env["DNSPORTAL_DATA_DIR"] = str(tmp_path / "data")
    env.pop("DJANGO_SETTINGS_MODULE", None)  # manage.py sets its own
    proc = subprocess.run(
        [sys.executable, "manage.py", "preview_endpoints", *args],
        cwd=ROOT,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return proc


def stderr_lines(proc: subprocess.CompletedProcess[str]) -> list[dict[str, str]]:
    return [json.loads(line) for line in proc.stderr.splitlines() if line.strip()]


def test_json_output_is_dnsendpoint_endpoints_and_errors_are_json_lines(tmp_path: Path) -> None:
    proc = run(tmp_path, "-f", SHOP, "-f", EXTRA, "--output", "json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out == [
        {
            "dnsName": "shop.example.com",
            "targets": ["k8s-shop-web-123.elb.eu-west-1.amazonaws.com"],
            "recordType": "CNAME",
            "setIdentifier": "eks-eu1",
            "recordTTL": 60,
            "labels": {"resource": "service/shop/web"},
            "providerSpecific": [{"name": "aws/weight", "value": "80"}],
        },
        {
            "dnsName": "_game._udp.game.example.com",
            "targets": ["0 50 30777 game.example.com."],
            "recordType": "SRV",
            "labels": {"resource": "service/shop/game"},
        },
        {
            "dnsName": "game.example.com",
            "targets": ["198.51.100.11"],  # node-b is cordoned
            "recordType": "A",
            "labels": {"resource": "service/shop/game"},
        },
        {
            "dnsName": "db-0.db.internal.example.com",
            "targets": ["10.1.0.5"],
            "recordType": "A",
            "labels": {"resource": "service/shop/db"},
        },
        {
            "dnsName": "db.internal.example.com",
            "targets": ["10.1.0.5"],
            "recordType": "A",
            "labels": {"resource": "service/shop/db"},
        },
        {
            "dnsName": "admin.example.org",
            "targets": ["203.0.113.20"],
            "recordType": "A",
            "labels": {"resource": "ingress/shop/api"},
        },
        {
            "dnsName": "api.example.com",
            "targets": ["203.0.113.20"],
            "recordType": "A",
            "labels": {"resource": "ingress/shop/api"},
        },
        {
            "dnsName": "legacy.example.com",
            "targets": ["10.20.30.40"],
            "recordType": "A",
            "labels": {"resource": "service/shop/legacy"},
        },
    ]
    # the output reads back as ExternalDNS DNSEndpoint items
    assert [Endpoint.from_dnsendpoint(item).to_dnsendpoint() for item in out] == out
    assert stderr_lines(proc) == [
        {
            "level": "error",
            "kind": "Service",
            "namespace": "shop",
            "name": "broken",
            "resource": "service/shop/broken",
            "annotation": "external-dns.alpha.kubernetes.io/aws-weight",
            "value": "300",
            "message": "annotation `external-dns.alpha.kubernetes.io/aws-weight` on Service `shop/broken`: "
            "`300` is not an integer from 0 to 255",
        }
    ]


def test_options_and_cluster_apply(tmp_path: Path) -> None:
    proc = run(
        tmp_path,
        "-f",
        SHOP,
        "--output",
        "json",
        "--cluster",
        "eks-eu1",
        "--option",
        "domain-filter=example.com",
        "--option",
        "service-type-filter=LoadBalancer,ClusterIP",
        "--option",
        "min-ttl=5m",
    )
    assert proc.returncode == 0, proc.stderr
    names = [(e["dnsName"], e.get("recordTTL")) for e in json.loads(proc.stdout)]
    assert names == [
        ("shop.example.com", 60),
        ("db-0.db.internal.example.com", 300),
        ("db.internal.example.com", 300),
        ("api.example.com", 300),
    ]
    assert "in cluster `eks-eu1`" in stderr_lines(proc)[0]["message"]


def test_table_output_marks_private_targets_and_counts(tmp_path: Path) -> None:
    proc = run(tmp_path, "-f", SHOP, "-f", EXTRA)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].split() == ["NAME", "TYPE", "TTL", "SET-ID", "TARGETS", "PROPERTIES", "RESOURCE"]
    assert any("legacy.example.com" in line and "10.20.30.40 (private)" in line for line in lines)
    assert lines[-1] == "6 objects: 5 publish 8 endpoints, 1 with errors, 0 publish nothing"


def test_stdin_merge_and_skipped_objects_at_verbosity_2(tmp_path: Path) -> None:
    text = (MANIFESTS / "shop.yaml").read_text()
    proc = run(
        tmp_path,
        "-f",
        "-",
        "--output",
        "json",
        "--merge",
        "-v",
        "2",
        "--option",
        "ingress-class=alb",
        stdin=text,
    )
    assert proc.returncode == 0, proc.stderr
    infos = [line for line in stderr_lines(proc) if line["level"] == "info"]
    assert infos == [
        {
            "level": "info",
            "kind": "Ingress",
            "namespace": "shop",
            "name": "api",
            "resource": "ingress/shop/api",
            "message": "skipped: ingress class `nginx` is not in option ingress-class (alb)",
        }
    ]
    assert "api.example.com" not in proc.stdout


def test_a_directory_reads_its_manifest_files_in_name_order(tmp_path: Path) -> None:
    proc = run(tmp_path, "-f", str(MANIFESTS), "--output", "json")
    assert proc.returncode == 0, proc.stderr
    names = [e["dnsName"] for e in json.loads(proc.stdout)]
    assert names[0] == "legacy.example.com"  # extra.json sorts before shop.yaml
    assert len(names) == 8


def test_fail_on_error_exits_3(tmp_path: Path) -> None:
    proc = run(tmp_path, "-f", SHOP, "--fail-on-error", "--output", "json")
    assert proc.returncode == 3
    assert json.loads(proc.stdout)  # the preview is still printed
    assert proc.stderr.splitlines()[-1] == "CommandError: 1 object with errors (see standard error)"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-f", str(MANIFESTS / "invalid" / "broken.yaml")], "broken.yaml line 4: not valid YAML"),
        (
            ["-f", str(MANIFESTS / "missing.yaml")],
            "missing.yaml: cannot read the file (No such file or directory)",
        ),
        (
            ["-f", SHOP, "--option", "min-tl=5"],
            "option `min-tl` is not a source option; did you mean `min-ttl`?",
        ),
        (
            ["-f", SHOP, "--option", "label-filter=a in b"],
            "option `label-filter`: `a in` must be followed by",
        ),
        (["-f", SHOP, "--option", "domain-filter"], "--option `domain-filter` must be NAME=VALUE"),
    ],
)
def test_unreadable_input_or_bad_options_exit_2_with_one_line(
    tmp_path: Path, args: list[str], message: str
) -> None:
    proc = run(tmp_path, *args)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert len(proc.stderr.splitlines()) == 1
    assert proc.stderr.startswith("CommandError: ") and message in proc.stderr


GATEWAY_AND_CRD = """
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: public, namespace: infra}
spec:
  gatewayClassName: any
  listeners:
  - name: https
    protocol: HTTPS
    port: 443
    hostname: "*.example.com"
    allowedRoutes: {namespaces: {from: All}}
status:
  addresses: [{type: IPAddress, value: 203.0.113.7}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: web, namespace: shop}
spec:
  hostnames: [shop.example.com]
  parentRefs: [{name: public, namespace: infra}]
status:
  parents:
  - parentRef: {name: public, namespace: infra}
    controllerName: example.com/gateway
    conditions: [{type: Accepted, status: "True"}]
---
apiVersion: externaldns.k8s.io/v1alpha1
kind: DNSEndpoint
metadata: {name: hand, namespace: ops}
spec:
  endpoints: [{dnsName: mail.example.com, recordType: A, targets: [192.0.2.25]}]
"""


def test_routes_and_dnsendpoints_are_read_unless_the_sources_say_otherwise(tmp_path: Path) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text(GATEWAY_AND_CRD)
    proc = run(tmp_path, "-f", str(path), "--output", "json")
    assert proc.returncode == 0, proc.stderr
    got = {(e["dnsName"], e["labels"]["resource"], tuple(e["targets"])) for e in json.loads(proc.stdout)}
    assert got == {
        ("shop.example.com", "httproute/shop/web", ("203.0.113.7",)),
        ("mail.example.com", "crd/ops/hand", ("192.0.2.25",)),
    }
    proc = run(tmp_path, "-f", str(path), "--output", "json", "--option", "source=crd")
    assert [e["dnsName"] for e in json.loads(proc.stdout)] == ["mail.example.com"]
