"""The traffic-policy editor in Chromium, end to end: an operator splits app.example.com 80/20 across two real
sandbox clusters, a second person approves, the worker writes the annotations back, the watch process sees
them, and the reconcile publishes the weighted record sets to Route53 (moto)."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from records.models import ChangeSet, PolicyProposal
from tests.fixtures.browser import snap
from tests.fixtures.people import PASSWORD
from tests.fixtures.traffic import ALPHA, IPS, NAME, annotations, rrsets

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parents[2]


def login(page: Page, base: str, username: str) -> None:
    page.goto(base + "/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(base + "/")


def logout(page: Page) -> None:
    page.locator("form[action='/logout/'] button").click()


def wait_for(check, *, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def test_an_operator_splits_a_name_80_20_and_route53_follows_after_approval(
    story, live_server, page: Page, route53, request
):
    zone = story["zone"]
    # Only now the real processes: the story's setting was applied by jobs run in this process.
    request.getfixturevalue("worker_process")
    request.getfixturevalue("watch_process")
    base = live_server.url

    login(page, base, "alice")
    page.goto(f"{base}/endpoints/host/{NAME}/")
    expect(page.locator("#traffic-policy + section")).to_contain_text("round robin: k3s-edge, rke2-dc1")
    page.get_by_role("link", name="Edit the traffic policy").click()
    expect(page.get_by_role("heading", name=f"Traffic policy for {NAME}")).to_be_visible()

    # Weighted: the weights start equal, and the clusters' fields for other policies are out of the way.
    page.get_by_role("radio", name=re.compile("^Weighted")).check()
    expect(page.locator("#pct-rke2-dc1")).to_have_text("50.0 %")
    expect(page.get_by_label("Role").first).to_be_hidden()
    chart_desc = page.locator("#policy-chart desc")
    expect(chart_desc).to_have_text("k3s-edge: intended 50 %; rke2-dc1: intended 50 %.")
    snap(page, "policy-editor-weighted-equal")

    # Typed, not filled: each keystroke is an input event; the preview follows once typing pauses.
    for cluster, weight in (("rke2-dc1", "80"), ("k3s-edge", "20")):
        field = page.locator(f"#id_{cluster}-weight")
        field.select_text()
        field.press("Backspace")
        field.press_sequentially(weight, delay=60)
    expect(page.locator("#pct-rke2-dc1")).to_have_text("80.0 %")
    expect(page.locator("#pct-k3s-edge")).to_have_text("20.0 %")
    expect(chart_desc).to_have_text("k3s-edge: intended 20 %; rke2-dc1: intended 80 %.")
    expect(page.locator("#policy-chart rect.bar.intended")).to_have_count(2)
    # The preview: each Service's annotations before and after, and the DNS change that follows.
    preview = page.locator("#policy-preview")
    added = preview.locator(f"#object-rke2-dc1-service-{story['namespace']}-nginx ins.added")
    expect(added).to_have_text([f"+     {ALPHA}aws-weight: '80'", f"+     {ALPHA}set-identifier: rke2-dc1"])
    expect(preview.locator("table.predicted")).to_contain_text("create app.example.com. A [rke2-dc1]")
    expect(preview.locator("table.predicted")).to_contain_text("weight 80")
    expect(preview.locator("table.predicted")).to_contain_text("delete app.example.com. A")
    snap(page, "policy-editor-weighted-80-20")

    page.get_by_role("button", name="Propose for review").click()
    page.wait_for_url(re.compile(r"/policies/proposals/\d+/$"))
    proposal = PolicyProposal.objects.get()
    expect(page.locator("#proposal-state")).to_have_text("Pending review")
    expect(page.locator("#proposal-live")).to_contain_text("weighted: k3s-edge 20, rke2-dc1 80")
    snap(page, "policy-proposal-pending")
    logout(page)

    login(page, base, "bob")
    page.goto(f"{base}/policies/proposals/")
    page.get_by_role("link", name=f"#{proposal.id}").click()
    page.fill("textarea[name=comment]", "80/20 as agreed")
    page.get_by_role("button", name="Approve and write to the clusters").click()
    # The page follows the write-back done by the worker, then waits for the change set that publishes it.
    expect(page.locator("#proposal-state")).to_have_text("Written", timeout=30_000)
    expect(page.locator("#proposal-live")).to_contain_text("Written", timeout=30_000)

    for cluster in IPS:
        expect_weight = {"rke2-dc1": "80", "k3s-edge": "20"}[cluster]
        assert annotations(story, cluster) == {
            f"{ALPHA}hostname": NAME,
            f"{ALPHA}ttl": "60",
            f"{ALPHA}set-identifier": cluster,
            f"{ALPHA}aws-weight": expect_weight,
        }

    # The watch process sees the annotations; the reconcile's change set is the one bob approved.
    want = {
        (f"{NAME}.", "rke2-dc1"): {"values": [IPS["rke2-dc1"]], "Weight": 80},
        (f"{NAME}.", "k3s-edge"): {"values": [IPS["k3s-edge"]], "Weight": 20},
    }
    wait_for(lambda: rrsets(route53, zone) == want, timeout=60, what="the weighted record sets in Route53")

    def applied() -> bool:
        # Route53 shows the records as soon as they are sent; the change set is "applied" once the worker
        # has seen them in sync and stored the zone's state, a moment later on a busy machine
        proposal.refresh_from_db()
        return proposal.changeset is not None and proposal.changeset.status == ChangeSet.Status.APPLIED

    wait_for(applied, timeout=30, what="the proposal's change set applied")
    assert proposal.changeset.approved_by.username == "bob"
    expect(page.locator("#proposal-live")).to_contain_text(
        f"change set #{proposal.changeset_id}", timeout=15_000
    )
    page.reload()
    expect(page.locator("#proposal-live")).to_contain_text("Applied")
    snap(page, "policy-proposal-written-applied")
