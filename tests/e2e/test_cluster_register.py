"""An admin registers a cluster by pasting its kubeconfig in Chromium and watches it turn healthy."""

from __future__ import annotations

import yaml
from playwright.sync_api import Page, expect

from tests.fixtures.browser import snap
from tests.fixtures.people import PASSWORD


def test_register_a_cluster_by_pasting_a_kubeconfig(
    live_server, page: Page, root, kube_clusters, worker_process
):
    cluster_a, _ = kube_clusters
    page.goto(live_server.url + "/login/")
    page.fill("#id_username", root.username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.goto(live_server.url + "/clusters/")
    expect(page.get_by_text("No clusters registered yet.")).to_be_visible()
    page.get_by_role("link", name="Register a cluster").first.click()

    page.fill("#id_name", "eks-us-east-1")
    page.fill("#id_kubeconfig", yaml.safe_dump(cluster_a.kubeconfig("restricted")))
    # As soon as the kubeconfig is understood, the portal says what it found (and never echoes the token).
    expect(page.locator("#kubeconfig-understood")).to_contain_text(cluster_a.server)
    page.get_by_role("button", name="Test connection").click()
    expect(page.locator("#connection-result")).to_contain_text("Connected", timeout=20_000)
    snap(page, "cluster-register")
    page.get_by_role("button", name="Register").click()

    expect(page.locator("h1")).to_contain_text("eks-us-east-1")
    # The first check runs in the real worker; the page shows it once it has finished.
    for _ in range(40):
        if "Healthy" in page.locator("h1").inner_text():
            break
        page.wait_for_timeout(500)
        page.reload()
    expect(page.locator("h1")).to_contain_text("Healthy")
    expect(page.get_by_text("all granted")).to_be_visible()
    snap(page, "cluster-detail")
    page.goto(live_server.url + "/clusters/")
    snap(page, "cluster-list")
    assert cluster_a.tokens["restricted"] not in page.content()
