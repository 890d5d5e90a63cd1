"""A traffic shift in Chromium, end to end: an operator plans a two-step shift of app.<zone> between two real
sandbox clusters, a second person approves it, and the plan's page and the hostname's timeline follow the
steps and their gates live while the real worker writes each step back, the real watch process sees it, and
PowerDNS (tools/pdns) serves it."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from records.models import ShiftPlan
from tests.e2e.test_policy_editor import login, logout
from tests.fixtures.browser import snap

pytestmark = pytest.mark.django_db(transaction=True)


def test_an_operator_plans_a_shift_an_approver_approves_and_the_pages_follow_it_live(
    shift_scene, live_server, page: Page, request
):
    host = shift_scene["host"]
    request.getfixturevalue("worker_process")
    request.getfixturevalue("watch_process")
    base = live_server.url

    login(page, base, "alice")
    page.goto(f"{base}/endpoints/host/{host}/")
    page.get_by_role("link", name="Plan a traffic shift").click()
    expect(page.get_by_role("heading", name=f"Plan a traffic shift · {host}")).to_be_visible()
    expect(page.locator("main, body").first).to_contain_text("Now: 1/1 (k3s-edge / rke2-dc1)")
    page.get_by_label("Steps").fill("30/70, 70/30")
    page.get_by_label("Hold each step (seconds)").fill("1")
    page.get_by_label("HTTP probe port").fill(str(shift_scene["pages"]["rke2-dc1"].port))
    page.get_by_label("Requests").fill("100")
    page.get_by_role("button", name="Save the plan for review").click()
    page.wait_for_url(re.compile(r"/shifts/\d+/$"))
    plan = ShiftPlan.objects.get()
    expect(page.locator("#shift-state")).to_have_text("Pending review")
    expect(page.locator("#shift-live")).to_contain_text("1/1 → 30/70 → 70/30")
    snap(page, "shift-pending")
    logout(page)

    login(page, base, "bob")
    page.goto(f"{base}/shifts/{plan.id}/")
    page.get_by_role("button", name="Approve the whole plan").click()
    # (a failure here is the approval's, not the runner's: the two are told apart)
    expect(page.locator("#shift-state")).not_to_have_text("Pending review", timeout=15_000)
    # The page polls while the plan runs: each step's phase, then its gates, appear without a reload.
    steps = page.locator("#shift-steps")
    expect(page.locator("#shift-step-1")).to_contain_text("Passed", timeout=90_000)
    expect(page.locator("#shift-step-1 .badge.ok")).to_have_text(["nameservers", "split", "probe"])
    snap(page, "shift-running")
    expect(page.locator("#shift-state")).to_have_text("Done", timeout=90_000)
    expect(steps.locator("#shift-step-2")).to_contain_text("Passed")
    expect(steps.locator("#shift-step-2")).to_contain_text("change set #")
    snap(page, "shift-done")

    page.goto(f"{base}/endpoints/host/{host}/")
    page.get_by_role("link", name="Timeline").click()
    events = page.locator("#timeline-events")
    expect(events).to_contain_text(f"Shift #{plan.id} step 1 (30/70) applied")
    expect(events).to_contain_text(f"Shift #{plan.id} step 2 (70/30): probe gate")
    expect(events).to_contain_text(f"Traffic shift #{plan.id} approved by bob")
    # a point per cluster and measurement: 2 steps x 2 clusters (more when a split gate measured twice)
    expect(page.locator("svg.split-timeline circle").nth(3)).to_be_attached()
    snap(page, "shift-timeline")
