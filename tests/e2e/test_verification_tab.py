"""A hostname's verification tab measures the split against real nameservers and shows the chart."""

from __future__ import annotations

import time

from playwright.sync_api import Page, expect

from dnsportal.queue import enqueue
from records.models import ChangeSet
from tests.fixtures.browser import snap
from tests.fixtures.people import PASSWORD
from tests.fixtures.zones import import_zone, publish


def test_the_verification_tab_shows_intended_vs_observed(
    live_server,
    page: Page,
    root,
    alice,
    route53,
    moto_service,
    dns_zone,
    pdns_servers,
    worker_process,
    settings,
):
    settings.VERIFY_PROPAGATION_TIMEOUT_S = 1
    ns = ",".join(f"127.0.0.1:{s.dns_port}" for s in pdns_servers)
    zone = import_zone(
        root,
        route53,
        moto_service.url,
        dns_zone.name.rstrip("."),
        approval_mode="flagged",
        nameserver_override=ns,
    )
    host = dns_zone.fqdn("app").rstrip(".")
    publish(
        {host: "203.0.113.10"},
        "eks-us-east-1",
        set_identifier="eks-us-east-1",
        properties={"aws/weight": "80"},
    )
    publish({host: "198.51.100.10"}, "k3s-edge", set_identifier="k3s-edge", properties={"aws/weight": "20"})
    enqueue("zone_reconcile", zone_id=zone.id)  # the real worker plans and applies it
    deadline = time.monotonic() + 30
    while not ChangeSet.objects.filter(zone=zone, status="applied").exists():
        assert time.monotonic() < deadline, list(ChangeSet.objects.values_list("status", "error"))
        time.sleep(0.1)
    dns_zone.replace([("app", "LUA", 0, ["A \"pickwrandom({{80,'203.0.113.10'},{20,'198.51.100.10'}})\""])])

    page.goto(live_server.url + "/login/")
    page.fill("#id_username", alice.username)
    page.fill("#id_password", PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(live_server.url + "/")
    page.goto(f"{live_server.url}/endpoints/host/{host}/#verification")
    expect(page.get_by_text("Served by 2 clusters")).to_be_visible()
    expect(page.locator("#distribution")).to_contain_text("Not measured yet")
    page.get_by_role("button", name="Measure the split").click()
    # The real worker sends ~1,500 queries to the two nameservers; the tab updates itself when it is done.
    chart = page.locator("#distribution-chart svg")
    expect(chart).to_be_visible(timeout=30_000)
    expect(page.locator("#distribution")).to_contain_text("consistent with 80/20")
    expect(chart).to_contain_text("eks-us-east-1")
    expect(chart).to_contain_text("k3s-edge")
    snap(page, "verification-tab")
    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    snap(page, "verification-tab-390")
