"""An operator's change reaches Route53 only after a second person approves it in the browser."""

from __future__ import annotations

import yaml
from kubernetes import client as k8s
from playwright.sync_api import Page, expect

from clusters import discovery
from clusters.services import Credentials, cluster_register
from tests.fixtures.browser import snap
from tests.fixtures.kube import kube_client, set_service_load_balancer
from tests.fixtures.people import PASSWORD
from tests.fixtures.zones import import_zone

PREFIX = "external-dns.alpha.kubernetes.io/"


def login(page: Page, base: str, username: str) -> None:
    page.goto(base + "/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(base + "/")


def test_operator_change_pending_then_approved_and_applied(
    live_server,
    page: Page,
    root,
    alice,
    bob,
    kube_clusters,
    kube_namespace,
    route53,
    moto_service,
    worker_process,
):
    zone = import_zone(root, route53, moto_service.url, "shop.example.com")

    # The operator annotates a Service in a sandbox cluster; discovery stores its endpoint.
    sandbox_a, _ = kube_clusters
    api = kube_client(sandbox_a)
    k8s.CoreV1Api(api).create_namespaced_service(
        kube_namespace,
        {
            "metadata": {"name": "web", "annotations": {f"{PREFIX}hostname": "web.shop.example.com"}},
            "spec": {"type": "LoadBalancer", "selector": {"app": "web"}, "ports": [{"port": 80}]},
        },
    )
    set_service_load_balancer(api, kube_namespace, "web", ips=["203.0.113.80"])
    cluster = cluster_register(
        actor=root,
        name="eks-us-east-1",
        creds=Credentials(kubeconfig=yaml.safe_dump(sandbox_a.kubeconfig("restricted")), context=""),
    )
    cluster.source_options = {"namespace": kube_namespace}
    cluster.save()
    discovery.sync_cluster(cluster.id)

    base = live_server.url
    login(page, base, "alice")
    page.goto(f"{base}/zones/{zone.id}/")
    page.get_by_role("button", name="Reconcile now").click()
    expect(page.locator(".messages")).to_contain_text("Reconciling")
    # The worker reads the zone and plans: a pending change set, requested by alice.
    for _ in range(40):
        page.goto(f"{base}/changes/")
        if page.locator("td span.badge.pending").count():
            break
        page.wait_for_timeout(250)
    expect(page.locator("td span.badge.pending").first).to_have_text("Pending review")
    page.locator("table a").first.click()
    expect(page.get_by_text("You requested this change set")).to_be_visible()
    page.locator("form[action='/logout/'] button").click()

    login(page, base, "bob")
    page.goto(f"{base}/changes/")
    page.locator("table a").first.click()
    expect(page.locator("table.diff")).to_contain_text("web.shop.example.com.")
    expect(page.locator("table.diff")).to_contain_text("203.0.113.80")
    snap(page, "changeset-pending")
    page.fill("textarea[name=comment]", "matches the ticket")
    page.get_by_role("button", name="Approve and apply").click()
    # htmx keeps the status panel live until the apply is done.
    expect(page.locator("#changeset-state")).to_have_text("Applied", timeout=30_000)
    snap(page, "changeset-applied")
    records = route53.list_resource_record_sets(HostedZoneId=zone.provider_zone_id)["ResourceRecordSets"]
    a = [r for r in records if r["Name"] == "web.shop.example.com." and r["Type"] == "A"]
    assert a and a[0]["ResourceRecords"] == [{"Value": "203.0.113.80"}]
