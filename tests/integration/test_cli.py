"""The `dnsportal` command line, over HTTP to a live portal with real services: the user's story from
registering a cluster to an applied change set, with two people's tokens; and exit codes a script can use."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from kubernetes import client as k8s

from dnsportal.models import AuditEntry
from records.models import ChangeSet, ProviderAccount, Zone
from tests.fixtures.api import token_for
from tests.fixtures.kube import kube_client, set_service_load_balancer
from tests.fixtures.zones import import_zone

ROOT = Path(__file__).resolve().parents[2]
PREFIX = "external-dns.alpha.kubernetes.io/"
# The console script `pip install -e .` makes (scripts/bootstrap.sh): the command as users run it.
DNSPORTAL = Path(sys.executable).parent / "dnsportal"


def cli(base: str, token: str | None, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    assert DNSPORTAL.exists(), "the console script is missing: run scripts/bootstrap.sh (pip install -e .)"
    env = {k: v for k, v in os.environ.items() if not k.startswith("DNSPORTAL_")}
    env.update(DNSPORTAL_URL=base, DNSPORTAL_CONFIG=str(ROOT / "var" / "no-such-config.toml"))
    if token:
        env["DNSPORTAL_TOKEN"] = token
    return subprocess.run(
        [str(DNSPORTAL), *args], env=env, input=stdin, capture_output=True, text=True, timeout=600
    )


def ok(result: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert result.returncode == 0, (result.args, result.returncode, result.stdout, result.stderr)
    return result


def test_register_discover_reconcile_approve_by_a_second_token_and_wait_until_applied(
    live_server, root, alice, bob, kube_clusters, kube_namespace, route53, moto_service, tmp_path, request
):
    base = live_server.url
    zone = import_zone(root, route53, moto_service.url, "shop.example.com")
    # Jobs from here on run in a real worker process, and discovery in the real watch process.
    request.getfixturevalue("worker_process")
    request.getfixturevalue("watch_process")
    admin, operator, approver = token_for(root, "admin-cli"), token_for(alice, "ci"), token_for(bob, "laptop")

    sandbox, _ = kube_clusters
    api = kube_client(sandbox)
    k8s.CoreV1Api(api).create_namespaced_service(
        kube_namespace,
        {
            "metadata": {"name": "web", "annotations": {f"{PREFIX}hostname": "web.shop.example.com"}},
            "spec": {"type": "LoadBalancer", "selector": {"app": "web"}, "ports": [{"port": 80}]},
        },
    )
    set_service_load_balancer(api, kube_namespace, "web", ips=["203.0.113.80"])
    kubeconfig = tmp_path / "kubeconfig.yaml"
    kubeconfig.write_text(yaml.safe_dump(sandbox.kubeconfig("restricted")))

    # An admin registers the cluster from its kubeconfig; the check tells what it is.
    ok(cli(base, admin, "clusters", "register", "eks-us-east-1", "--kubeconfig", str(kubeconfig)))
    checked = json.loads(
        ok(cli(base, admin, "-o", "json", "clusters", "check", "eks-us-east-1", "--wait", "300")).stdout
    )
    assert checked["cluster"]["health"] in ("healthy", "degraded"), checked
    listed = ok(cli(base, admin, "clusters", "list")).stdout
    assert "eks-us-east-1" in listed.splitlines()[1]

    # Discovery finds the Service's name; the operator reconciles the zone and gets a change set.
    found = ok(
        cli(base, operator, "-o", "json", "endpoints", "--name", "web.shop.example.com", "--wait", "300")
    )
    assert [e["targets"] for e in json.loads(found.stdout)] == [["203.0.113.80"]]
    reconciled = json.loads(
        ok(
            cli(base, operator, "-o", "json", "zones", "reconcile", "shop.example.com", "--wait", "300")
        ).stdout
    )
    cs = reconciled["changeset"]
    assert cs is not None and cs["status"] == "pending", reconciled
    shown = ok(cli(base, operator, "changes", "show", str(cs["id"]))).stdout
    assert "web.shop.example.com." in shown and "203.0.113.80" in shown

    # The operator may not approve (no approver role, and whoever asked cannot); a second person does.
    refused = cli(base, operator, "changes", "approve", str(cs["id"]))
    assert refused.returncode == 3 and "approver role" in refused.stderr
    ok(cli(base, approver, "changes", "approve", str(cs["id"]), "--comment", "matches the ticket"))
    waited = ok(cli(base, operator, "changes", "wait", str(cs["id"]), "--timeout", "300"))
    assert "applied" in waited.stdout
    assert ChangeSet.objects.get(id=cs["id"]).status == ChangeSet.Status.APPLIED

    records = route53.list_resource_record_sets(HostedZoneId=zone.provider_zone_id)["ResourceRecordSets"]
    a = [r for r in records if r["Name"] == "web.shop.example.com." and r["Type"] == "A"]
    assert a and a[0]["ResourceRecords"] == [{"Value": "203.0.113.80"}]
    approved = AuditEntry.objects.get(action="changeset.approved", object_id=str(cs["id"]))
    assert (approved.actor, approved.via, approved.api_token_name) == (bob, "api", "laptop")
    trail = json.loads(ok(cli(base, admin, "-o", "json", "audit", "--via", "api", "--actor", "bob")).stdout)
    assert [e["action"] for e in trail] == ["changeset.approved"]
    # Waiting again on a final change set answers at once with the same verdict.
    ok(cli(base, approver, "changes", "wait", str(cs["id"]), "--timeout", "5"))


@pytest.mark.django_db(transaction=True)
def test_exit_codes_say_what_went_wrong(live_server, carol, alice):
    base = live_server.url
    account = ProviderAccount.objects.create(name="aws-prod", credential_kind="default")
    zone = Zone.objects.create(account=account, provider_zone_id="Z1", name="example.com.")
    viewer = token_for(carol)
    assert cli(base, None, "clusters", "list").returncode == 2  # no token configured
    bad = cli(base, "dnsp_not-a-token", "clusters", "list")
    assert bad.returncode == 3 and "not known" in bad.stderr
    refused = cli(base, viewer, "zones", "reconcile", str(zone.id))
    assert refused.returncode == 3 and "This needs the operator role." in refused.stderr
    assert cli(base, viewer, "changes", "show", "999999").returncode == 4
    rejected = cli(
        base, token_for(alice), "clusters", "register", "x1", "--kubeconfig", "-", stdin="not: [yaml"
    )
    assert rejected.returncode == 3  # registering needs the admin role, before the input is read
    cs = ChangeSet.objects.create(zone=zone, fingerprint="f" * 64)
    ChangeSet.objects.filter(id=cs.id).update(status=ChangeSet.Status.REJECTED)
    assert cli(base, viewer, "changes", "wait", str(cs.id), "--timeout", "5").returncode == 1
    assert cli("http://127.0.0.1:9", viewer, "clusters", "list").returncode == 7
    table = ok(cli(base, viewer, "changes", "list")).stdout.splitlines()
    assert table[0].split()[:3] == ["ID", "ZONE", "STATUS"] and str(cs.id) in table[1]


@pytest.mark.django_db(transaction=True)
def test_policy_show_and_propose_a_weighted_split_for_review(live_server, alice, carol):
    from records.models import PolicyProposal
    from tests.fixtures.zones import publish

    account = ProviderAccount.objects.create(name="aws-prod", credential_kind="default")
    zone = Zone.objects.create(account=account, provider_zone_id="Z1", name="example.com.")
    for cluster, ip in (("rke2-dc1", "198.51.100.10"), ("k3s-edge", "198.51.100.40")):
        publish({"app.example.com": ip}, cluster, annotations={f"{PREFIX}hostname": "app.example.com"})
    base, operator = live_server.url, token_for(alice)

    shown = ok(cli(base, token_for(carol), "policy", "show", "app.example.com")).stdout
    assert shown.startswith("app.example.com: round-robin") and "k3s-edge" in shown and "rke2-dc1" in shown
    bad = cli(
        base,
        operator,
        "policy",
        "propose",
        "app.example.com",
        "--kind",
        "weighted",
        "--share",
        "rke2-dc1=300",
        "--share",
        "k3s-edge=20",
    )
    assert bad.returncode == 2 and "rke2-dc1" in bad.stderr, bad.stderr
    assert not PolicyProposal.objects.exists()
    dry = ok(
        cli(
            base,
            operator,
            "policy",
            "propose",
            "app.example.com",
            "--kind",
            "weighted",
            "--share",
            "rke2-dc1=80",
            "--share",
            "k3s-edge=20",
            "--dry-run",
        )
    )
    assert "rke2-dc1 Service default/app: " in dry.stdout and "aws-weight=80" in dry.stdout, dry.stdout
    assert not PolicyProposal.objects.exists()
    proposed = cli(
        base,
        operator,
        "-o",
        "json",
        "policy",
        "propose",
        "app.example.com",
        "--kind",
        "weighted",
        "--share",
        "rke2-dc1=80",
        "--share",
        "k3s-edge=20",
    )
    p = PolicyProposal.objects.get(id=json.loads(ok(proposed).stdout)["id"])
    assert (p.zone, p.status, p.proposed_by) == (zone, PolicyProposal.Status.PENDING, alice)
    assert {s["cluster"]: s["weight"] for s in p.policy["shares"]} == {"rke2-dc1": 80, "k3s-edge": 20}
