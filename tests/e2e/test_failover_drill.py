"""A failover drill in Chromium: an operator proposes it from the name's page, a second person approves it
(confirming the dialog), and the drill's page follows the real worker live: the primary marked unhealthy
through the demo hook, PowerDNS switching to the secondary and back, the two times and the chart of what
each nameserver answered."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from records.models import FailoverDrill
from tests.e2e.test_policy_editor import login, logout
from tests.fixtures.browser import snap

pytestmark = pytest.mark.django_db(transaction=True)


def test_an_operator_proposes_a_drill_an_approver_runs_it_and_the_page_shows_both_times(
    pdns_drill, live_server, page: Page, request
):
    host = pdns_drill["host"]
    request.getfixturevalue("worker_process")
    base = live_server.url

    login(page, base, "alice")
    page.goto(f"{base}/endpoints/host/{host}/")
    page.get_by_role("link", name="Run a failover drill…").click()
    expect(page.locator("main")).to_contain_text("127.0.0.21")
    page.get_by_role("button", name="Propose the drill").click()
    page.wait_for_url(re.compile(r"/drills/\d+/$"))
    drill = FailoverDrill.objects.get()
    expect(page.locator("#drill-state")).to_have_text("Pending review")
    expect(page.locator("main")).to_contain_text("a second person must approve it")
    snap(page, "drill-pending")
    logout(page)

    login(page, base, "bob")
    page.goto(f"{base}/drills/{drill.id}/")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Approve and run the drill").click()
    # The page polls while the drill runs: the switch-over, then the return, appear without a reload.
    expect(page.locator("#drill-state")).to_have_text("Done", timeout=90_000)
    expect(page.locator("#drill-switch")).to_contain_text(re.compile(r"\d+\.\d s from the primary marked"))
    expect(page.locator("#drill-return")).to_contain_text(re.compile(r"\d+\.\d s from the primary restored"))
    expect(page.locator("#drill-events")).to_contain_text("demo hook down")
    expect(page.locator("#drill-events")).to_contain_text("demo hook up")
    chart = page.locator("#drill-live svg[role=img]")
    expect(chart).to_be_visible()
    expect(chart.locator("desc")).to_contain_text("secondary")  # when each nameserver changed sides
    snap(page, "drill-done")
    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    snap(page, "drill-done-390")
    drill.refresh_from_db()
    assert drill.approved_by.username == "bob" and drill.switch_seconds > 0 and drill.return_seconds > 0
