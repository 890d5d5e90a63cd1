"""Under the Content-Security-Policy, in Chromium: the pages operators use report no violation, htmx still
swaps a refusal (422) into the page, and a locked login says so on the login page."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from dnsportal.models import JobRun
from records.models import ChangeSet, ProviderAccount, Verification, Zone, ZoneRecord
from tests.fixtures.people import PASSWORD
from tests.fixtures.zones import publish

pytestmark = pytest.mark.django_db(transaction=True)

NAME = "shop.example.com"
POLICY = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self' data:",
    "frame-ancestors": "'none'",
    "form-action": "'self'",
    "object-src": "'none'",
    "base-uri": "'none'",
}


def policy(response) -> dict[str, str]:
    """The Content-Security-Policy header as {directive: sources} (django-csp orders them its own way)."""
    parts = (p.strip().split(" ", 1) for p in response.headers["content-security-policy"].split(";"))
    return {p[0]: p[1] for p in parts if p[0]}


# Every violation the page sees, from the event the browser fires (and its console line, checked as well).
LISTEN = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", function (e) {
  window.__csp.push(e.violatedDirective + " " + (e.blockedURI || "inline") + " " + (e.sourceFile || ""));
});
"""


@pytest.fixture
def portal_data(alice) -> dict:
    """A zone with weighted records, a pending change set alice requested, a measured split with its chart."""
    account = ProviderAccount.objects.create(name="aws-prod", credential_kind="default")
    zone = Zone.objects.create(account=account, provider_zone_id="Z1", name="example.com.")
    for cluster, ip, weight in (("eks-us-east-1", "192.0.2.10", 80), ("k3s-edge", "192.0.2.20", 20)):
        ZoneRecord.objects.create(
            zone=zone,
            name=NAME + ".",
            type="A",
            set_identifier=cluster,
            data={
                "Name": NAME + ".",
                "Type": "A",
                "TTL": 60,
                "SetIdentifier": cluster,
                "Weight": weight,
                "ResourceRecords": [{"Value": ip}],
            },
            ownership="owned",
        )
        publish(
            {NAME: ip},
            cluster,
            set_identifier=cluster,
            properties={"aws/weight": str(weight)},
            annotations={
                "external-dns.alpha.kubernetes.io/hostname": NAME,
                "external-dns.alpha.kubernetes.io/set-identifier": cluster,
                "external-dns.alpha.kubernetes.io/aws-weight": str(weight),
            },
        )
    cs = ChangeSet.objects.create(zone=zone, fingerprint="f" * 64, requested_by=alice)
    JobRun.objects.create(name="zone_reconcile", queue="dns", kwargs={"zone_id": zone.id})
    rows = [
        {"label": "eks-us-east-1", "intended": 0.8, "observed": 0.79},
        {"label": "k3s-edge", "intended": 0.2, "observed": 0.21},
    ]
    Verification.objects.create(
        zone=zone,
        kind=Verification.Kind.DISTRIBUTION,
        hostname=NAME,
        status=Verification.Status.OK,
        message="consistent with 80/20",
        report={"queries": 1500, "verdict": {"rows": rows}},
    )
    return {"zone": zone, "changeset": cs}


def login(page: Page, base: str, username: str, password: str = PASSWORD) -> None:
    page.goto(base + "/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    with page.expect_navigation():
        page.keyboard.press("Enter")


def test_operator_pages_report_no_csp_violation_and_htmx_swaps_a_422(
    live_server, page: Page, portal_data, root
):
    base = live_server.url
    console: list[str] = []
    page.on("console", lambda m: console.append(m.text) if "Content Security Policy" in m.text else None)
    page.add_init_script(LISTEN)
    page.on("dialog", lambda d: d.accept())  # hx-confirm asks through the browser's confirm()

    response = page.goto(base + "/login/")
    assert policy(response) == POLICY
    login(page, base, "root")  # the admin sees every page with all its actions (the editor's form, review)
    page.wait_for_url(base + "/")

    zone, cs = portal_data["zone"], portal_data["changeset"]
    pages = {
        "dashboard": "/",
        "zones": "/zones/",
        "zone": f"/zones/{zone.id}/",
        "hostname": f"/endpoints/host/{NAME}/",
        "change set": f"/changes/{cs.id}/",
        "endpoints": "/endpoints/",
        "policy editor": f"/endpoints/host/{NAME}/policy/",
        "records": "/records/",
        "audit": "/audit/",
        "jobs": "/jobs/",
    }
    for what, path in pages.items():
        response = page.goto(base + path)
        assert response.status == 200, f"{what} {path}: HTTP {response.status}"
        assert policy(response) == POLICY, what
        page.wait_for_load_state("networkidle")
        assert page.evaluate("window.__csp") == [], f"{what} {path}"
        assert page.evaluate("typeof htmx") == "object", f"{what}: htmx did not load"
        assert page.evaluate("htmx.config.includeIndicatorStyles") is False

    page.goto(f"{base}/endpoints/host/{NAME}/policy/")
    expect(page.locator("#policy-form")).to_be_visible()  # the policy editor rendered its form
    page.goto(f"{base}/endpoints/host/{NAME}/#verification")  # the verification tab with its SVG chart
    expect(page.locator("#distribution-chart svg")).to_be_visible()
    assert page.evaluate("window.__csp") == []

    # A refusal swapped in by htmx (422): rejecting without a comment.
    page.goto(f"{base}/changes/{cs.id}/")
    with page.expect_response(lambda r: r.url.endswith(f"/changes/{cs.id}/reject/")) as sent:
        page.get_by_role("button", name="Reject").click()
    assert sent.value.status == 422
    assert sent.value.request.headers.get("hx-request") == "true"
    expect(page.locator("#changeset-status [role=alert]")).to_have_text(
        "Say why the change set is rejected: the comment goes to the audit log."
    )
    assert page.url == f"{base}/changes/{cs.id}/"  # swapped in place, no page load
    page.fill(f"#comment-{cs.id}", "not needed after all")
    page.get_by_role("button", name="Reject").click()
    expect(page.locator("#changeset-state")).to_have_text("Rejected")
    assert page.evaluate("window.__csp") == []

    # The admin's lock page (and the way to it) under the same policy.
    page.get_by_role("link", name="Login locks").click()
    expect(page.get_by_role("heading", name="Login locks")).to_be_visible()
    assert page.evaluate("window.__csp") == []
    assert console == []


def test_a_locked_login_says_so_on_the_login_page(live_server, page: Page, alice, settings):
    settings.AXES_FAILURE_LIMIT = 2
    settings.LOGIN_SLOWDOWN_AFTER = 0
    base = live_server.url
    page.add_init_script(LISTEN)
    for _ in range(2):
        login(page, base, "alice", "wrong-password-typed")
    expect(page.locator("#login-locked")).to_have_text(
        "Too many failed logins for this account from this address; try again in 15 minutes or ask an admin."
    )
    login(page, base, "alice")  # the right password now: still locked
    expect(page.locator("#login-locked")).to_be_visible()
    assert page.url.startswith(base + "/login/")
    assert page.evaluate("window.__csp") == []


def test_the_api_documentation_pages_load_under_their_own_policy(live_server, page: Page, alice):
    base = live_server.url
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if "Content Security Policy" in m.text else None)
    page.add_init_script(LISTEN)
    login(page, base, "alice")
    page.wait_for_url(base + "/")
    outside: list[str] = []
    page.on(
        "request", lambda r: outside.append(r.url) if not r.url.startswith((base, "data:", "blob:")) else None
    )
    for path, ready in (("/api/v1/redoc/", "h1"), ("/api/v1/docs/", ".swagger-ui .info")):
        response = page.goto(base + path)
        loose = policy(response)
        assert loose["style-src"] == "'self' 'unsafe-inline'" and loose["script-src"] == "'self'", loose
        expect(page.locator(ready).first).to_contain_text("dnsportal API", timeout=20_000)
        # Redoc's "API docs by Redocly" footer links its logo from the vendor's CDN: the policy blocks it, as
        # it should (nothing is loaded from outside the portal); that one refusal is expected, no other.
        seen = [v for v in page.evaluate("window.__csp") if "cdn.redoc.ly/redoc/logo-mini.svg" not in v]
        assert seen == [], path
    assert all("cdn.redoc.ly/redoc/logo-mini.svg" in e for e in errors), errors
    # Every file from the portal itself; Redoc's logo alone is asked for, and refused by the policy above.
    assert set(outside) <= {"https://cdn.redoc.ly/redoc/logo-mini.svg"}, outside
