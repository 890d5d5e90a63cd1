"""Every page needs a login, every view checks a role, and roles hold (viewer < operator < admin)."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import User
from django.urls import URLPattern, URLResolver, get_resolver

from dnsportal.roles import ADMINISTER, OPERATE, VIEW

# The only pages anyone may open without logging in (single sign-on's start and callback log people in;
# without an issuer configured they answer 404: tests/integration/test_oidc.py).
PUBLIC = {"login", "healthz", "readyz", "favicon", "sso:login", "sso:callback"}
# Django's own admin site checks is_staff itself (and the audit tests below prove it cannot change the log).
ADMIN_PREFIX = "admin/"
# The API answers 401/403 in JSON rather than redirecting to the login page: test_api_access.py walks every
# operation of its schema for every role and kind of token.
API_PREFIX = "api/v1/"


def _walk(resolver: URLResolver, prefix: str = "", namespace: str = ""):
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            ns = entry.namespace or ""
            yield from _walk(entry, prefix + str(entry.pattern), f"{namespace}{ns}:" if ns else namespace)
        elif isinstance(entry, URLPattern):
            yield prefix + str(entry.pattern), f"{namespace}{entry.name}", entry.callback


def _concrete(route: str) -> str:
    """A URL for a route with placeholder values for its parameters."""
    route = re.sub(r"<int:\w+>", "1", route)
    route = re.sub(r"<(str|slug|path):\w+>", "x", route)
    route = re.sub(r"\(\?P<\w+>[^)]*\)\??", "x", route)  # regex routes (django-rq's stats API)
    return "/" + re.sub(r"[\^$?\\]", "", route)


ROUTES = [r for r in _walk(get_resolver()) if not r[0].startswith((ADMIN_PREFIX, API_PREFIX))]
PRIVATE = [r for r in ROUTES if r[1] not in PUBLIC]


def test_the_url_walk_sees_the_portal():
    names = {name for _, name, _ in ROUTES}
    assert {"dashboard", "audit-list", "clusters:cluster-list", "django_rq:home", "job-run-now"} <= names


@pytest.mark.parametrize(("route", "name", "callback"), PRIVATE, ids=[r[1] for r in PRIVATE])
def test_every_page_needs_login(client, db, route, name, callback):
    url = _concrete(route)
    for method in (client.get, client.post):
        response = method(url)
        assert response.status_code == 302, f"{name} {url} answered {response.status_code} without login"
        assert response["Location"].startswith("/login/"), response["Location"]


@pytest.mark.parametrize(("route", "name", "callback"), PRIVATE, ids=[r[1] for r in PRIVATE])
def test_every_view_checks_a_role(route, name, callback):
    if name == "logout":
        return  # logging out needs only a session
    assert getattr(callback, "required_perm", None) in {VIEW, OPERATE, ADMINISTER, "approve"}, (
        f"view {name} does not declare the role it needs (@role_required)"
    )


def test_public_pages_answer_without_login(client, db):
    assert client.get("/login/").status_code == 200
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").status_code == 200


def test_a_user_without_a_role_is_refused_with_a_reason(client, db):
    User.objects.create_user("nobody", password="x-long-password-1")
    client.login(username="nobody", password="x-long-password-1")
    response = client.get("/")
    assert response.status_code == 403
    assert b"This needs the viewer role." in response.content


@pytest.mark.parametrize(
    "name",
    [
        "dashboard",
        "audit-list",
        "job-list",
        "clusters:cluster-list",
        "records:zone-list",
        "records:record-list",
        "records:changeset-list",
        "records:policy-list",
        "records:verification-list",
    ],
)
def test_a_viewer_sees_every_page(client, carol, name):
    from django.urls import reverse

    client.force_login(carol)
    response = client.get(reverse(name))
    assert response.status_code == 200
    assert b'aria-current="page"' in response.content or name == "job-list"


def test_a_viewer_gets_403_on_an_operator_action(client, carol):
    client.force_login(carol)
    response = client.post("/jobs/run/jobruns_prune/")
    assert response.status_code == 403
    assert b"operator role" in response.content
    from dnsportal.models import JobRun

    assert not JobRun.objects.exists()


def test_an_operator_can_run_a_job_now_and_it_is_audited(client, alice):
    from dnsportal.models import AuditEntry, JobRun

    client.force_login(alice)
    response = client.post("/jobs/run/jobruns_prune/")
    run = JobRun.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/jobs/{run.id}/"
    assert run.actor == alice and run.name == "jobruns_prune"
    entry = AuditEntry.objects.get(action="job.run_now")
    assert entry.actor == alice and entry.object_id == str(run.id)


def test_the_rq_dashboard_is_for_admins_only(client, alice, root):
    client.force_login(alice)
    assert client.get("/rq/").status_code == 403
    client.force_login(root)
    assert client.get("/rq/").status_code == 200
