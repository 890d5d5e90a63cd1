"""Single sign-on through a real OpenID provider (oidc-provider under Node.js on loopback, not a mock): the
authorization-code flow over HTTP against the live server, the role from the provider's groups at every login,
the unmapped person (viewer, or refused), and the failures a person can meet (wrong client secret, provider
down) ending on a page that says what happened."""

from __future__ import annotations

import os
import subprocess
import sys
from html import unescape
from pathlib import Path

import pytest
import requests
from django.contrib.auth.models import User

from dnsportal.models import AuditEntry
from dnsportal.roles import ensure_roles
from records import services
from records.models import ChangeSet
from sso.models import Identity
from tests.fixtures.oidc import PASSWORD, post_with_csrf, sso_login
from tests.fixtures.people import PASSWORD as LOCAL_PASSWORD
from tests.fixtures.people import make_user
from tests.fixtures.zones import import_zone, publish
from tools.services import free_port

pytestmark = pytest.mark.django_db(transaction=True)
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _role_groups(transactional_db) -> None:
    # The data migration made them; the flush after the previous transactional test emptied the table.
    ensure_roles()


def _roles(username: str) -> list[str]:
    return sorted(User.objects.get(username=username).groups.values_list("name", flat=True))


def _logged_in_as(session: requests.Session, portal_url: str) -> str | None:
    """The username the portal's header shows for this session, or None when it sends it to the login page."""
    page = session.get(f"{portal_url}/", timeout=30)
    if "/login/" in page.url:
        return None
    return page.text.split('title="Your roles">', 1)[1].split(" ", 1)[0].split("<", 1)[0]


def test_a_person_in_dns_approvers_logs_in_through_the_provider_gets_approver_and_approves(
    live_server, oidc_settings, oidc_provider, root, alice, route53, moto_service, run_jobs
):
    zone = import_zone(root, route53, moto_service.url, "sso.example.com")
    publish({"app.sso.example.com": "203.0.113.40"})
    services.zone_reconcile_request(actor=alice, zone_id=zone.id)
    run_jobs()
    cs = ChangeSet.objects.filter(zone=zone).order_by("-id").first()
    assert (cs.status, cs.requested_by) == ("pending", alice)

    session, landed = sso_login(live_server.url, "ann")
    assert landed.status_code == 200, landed.text[:2000]
    assert landed.url == f"{live_server.url}/", landed.url  # back on the dashboard, logged in
    ann = User.objects.get(username="ann")
    assert _roles("ann") == ["approver"]
    assert (ann.email, ann.has_usable_password()) == ("ann@example.com", False)
    assert Identity.objects.get(user=ann).issuer == oidc_provider.issuer
    assert _logged_in_as(session, live_server.url) == "ann"
    actions = list(
        AuditEntry.objects.filter(object_type="auth.user", object_id=str(ann.id))
        .order_by("id")
        .values_list("action", "before", "after")
    )
    assert [a[0] for a in actions] == ["user.sso_create", "user.role_change"]
    assert actions[1][1] == {"roles": []}
    assert actions[1][2]["roles"] == ["approver"] and actions[1][2]["mapped_groups"] == ["dns-approvers"]

    detail = session.get(f"{live_server.url}/changes/{cs.id}/", timeout=30)
    assert "Approve and apply" in detail.text
    approved = post_with_csrf(session, f"{live_server.url}/changes/{cs.id}/approve/", {"comment": "via SSO"})
    assert approved.status_code == 302, approved.text[:2000]
    run_jobs()
    cs.refresh_from_db()
    assert (cs.status, cs.approved_by, cs.review_comment) == ("applied", ann, "via SSO")


def test_the_role_is_set_from_the_groups_at_every_login_and_the_highest_wins(live_server, oidc_settings):
    make_user("ada", "viewer")  # a local account of the same name is not taken over
    session, landed = sso_login(live_server.url, "ada")
    assert landed.status_code == 200, landed.text[:2000]
    sso_ada = Identity.objects.get(subject="ada").user
    assert sso_ada.username == "ada-2"
    assert _roles("ada-2") == ["admin"]  # dns-operators and dns-admins: admin wins
    assert _roles("ada") == ["viewer"]
    assert User.objects.get(username="ada").check_password(LOCAL_PASSWORD)

    session, _ = sso_login(live_server.url, "vic")
    assert _roles("vic") == ["viewer"]
    # An admin of the portal gave vic more; the provider's groups decide again at the next login.
    vic = User.objects.get(username="vic")
    vic.groups.set(vic.groups.model.objects.filter(name="approver"))
    session, _ = sso_login(live_server.url, "vic")
    assert _logged_in_as(session, live_server.url) == "vic"
    assert _roles("vic") == ["viewer"]
    change = (
        AuditEntry.objects.filter(action="user.role_change", object_id=str(vic.id)).order_by("-id").first()
    )
    assert (change.before, change.after["roles"]) == ({"roles": ["approver"]}, ["viewer"])
    # The same groups again: no change, no audit entry.
    count = AuditEntry.objects.filter(action="user.role_change", object_id=str(vic.id)).count()
    sso_login(live_server.url, "vic")
    assert AuditEntry.objects.filter(action="user.role_change", object_id=str(vic.id)).count() == count


def test_a_person_in_no_mapped_group_is_a_viewer_by_default_and_refused_when_set_to_refuse(
    live_server, oidc_settings, alice
):
    session, landed = sso_login(live_server.url, "otto")
    assert landed.status_code == 200 and landed.url == f"{live_server.url}/", landed.text[:2000]
    assert _roles("otto") == ["viewer"]
    assert session.get(f"{live_server.url}/rq/", timeout=30).status_code == 403  # admins only

    oidc_settings.OIDC_UNMAPPED = "refuse"
    session, landed = sso_login(live_server.url, "otto")
    assert landed.status_code == 403
    assert "is in none of the groups that give a role in this portal" in landed.text
    assert _logged_in_as(session, live_server.url) is None
    # A newcomer in no mapped group gets no account at all.
    assert not User.objects.filter(email="ann@example.com").exists()
    oidc_settings.OIDC_ROLE_MAP = {"dns-admins": "admin"}
    session, landed = sso_login(live_server.url, "ann")
    assert landed.status_code == 403
    assert not User.objects.filter(email="ann@example.com").exists()


def test_a_deactivated_account_is_refused_at_the_next_login(live_server, oidc_settings):
    sso_login(live_server.url, "vic")
    User.objects.filter(username="vic").update(is_active=False)
    session, landed = sso_login(live_server.url, "vic")
    assert landed.status_code == 403 and "The portal account vic is disabled" in landed.text
    assert _logged_in_as(session, live_server.url) is None


def test_a_refusal_by_the_provider_or_a_replayed_callback_logs_nobody_in(live_server, oidc_settings):
    refused = requests.get(f"{live_server.url}/sso/callback/?error=access_denied&state=x", timeout=30)
    assert refused.status_code == 403 and "did not log you in (access_denied)" in refused.text

    _, landed = sso_login(live_server.url, "ann")
    callback = next(r.url for r in landed.history if "/sso/callback/" in r.url)
    assert "code=" in callback
    replay = requests.Session()
    again = replay.get(callback, timeout=30)
    assert again.status_code == 400 and "Start it again." in again.text
    assert _logged_in_as(replay, live_server.url) is None


def test_a_wrong_client_secret_ends_on_a_page_that_says_so_not_a_500(
    live_server, oidc_settings, oidc_provider
):
    oidc_settings.OIDC_RP_CLIENT_SECRET = "not-the-secret-the-provider-knows"
    session, landed = sso_login(live_server.url, "ann")
    assert landed.status_code == 502, landed.text[:2000]
    assert "refused this portal's client credentials (invalid_client)" in unescape(landed.text)
    assert "DNSPORTAL_OIDC_CLIENT_SECRET" in landed.text
    assert "not-the-secret-the-provider-knows" not in landed.text
    assert oidc_provider.client_secret not in landed.text
    assert _logged_in_as(session, live_server.url) is None
    assert not User.objects.filter(username="ann").exists()


def test_a_wrong_password_at_the_provider_logs_nobody_in(live_server, oidc_settings):
    session, landed = sso_login(live_server.url, "ann", password=PASSWORD + "-wrong")
    assert landed.status_code == 401 and "Wrong username or password." in landed.text
    assert _logged_in_as(session, live_server.url) is None


def test_an_unreachable_provider_says_so_and_local_accounts_still_log_in(live_server, oidc_settings, carol):
    oidc_settings.OIDC_ISSUER = f"http://127.0.0.1:{free_port()}"
    _, page = sso_login(live_server.url, "ann")
    assert page.status_code == 502
    assert (
        "The identity provider cannot be used right now" in page.text and "could not be reached" in page.text
    )

    local = requests.Session()
    form = local.get(f"{live_server.url}/login/", timeout=30)
    assert "Sign in with Test IdP" in form.text
    logged_in = local.post(
        f"{live_server.url}/login/",
        data={
            "username": "carol",
            "password": LOCAL_PASSWORD,
            "csrfmiddlewaretoken": local.cookies["csrftoken"],
        },
        timeout=30,
    )
    assert logged_in.url == f"{live_server.url}/"
    assert _logged_in_as(local, live_server.url) == "carol"


def test_without_an_issuer_there_is_no_button_and_no_sso_page(live_server, settings):
    settings.OIDC_ENABLED = False
    page = requests.get(f"{live_server.url}/login/", timeout=30)
    assert page.status_code == 200 and "Sign in with" not in page.text
    assert requests.get(f"{live_server.url}/sso/login/", timeout=30, allow_redirects=False).status_code == 404
    assert (
        requests.get(f"{live_server.url}/sso/callback/", timeout=30, allow_redirects=False).status_code == 404
    )


def _check(env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith("DNSPORTAL_OIDC_")}
    return subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_settings_refuse_an_incomplete_or_wrong_sso_configuration_naming_the_variable(tmp_path):
    issuer = {"DNSPORTAL_OIDC_ISSUER": "https://idp.example.com"}
    out = _check(issuer, tmp_path)
    assert out.returncode != 0 and "DNSPORTAL_OIDC_CLIENT_ID and DNSPORTAL_OIDC_CLIENT_SECRET" in out.stderr
    client = {**issuer, "DNSPORTAL_OIDC_CLIENT_ID": "portal", "DNSPORTAL_OIDC_CLIENT_SECRET": "s3cret-value"}
    out = _check({**client, "DNSPORTAL_OIDC_ROLE_MAP": "dns-admins=root"}, tmp_path)
    assert out.returncode != 0 and "DNSPORTAL_OIDC_ROLE_MAP maps 'dns-admins' to 'root'" in out.stderr
    out = _check({**client, "DNSPORTAL_OIDC_UNMAPPED": "admin"}, tmp_path)
    assert out.returncode != 0 and "DNSPORTAL_OIDC_UNMAPPED must be viewer or refuse" in out.stderr
    out = _check({**client, "DNSPORTAL_OIDC_SCOPES": "email groups"}, tmp_path)
    assert out.returncode != 0 and "DNSPORTAL_OIDC_SCOPES must include openid" in out.stderr
    out = _check({**client, "DNSPORTAL_OIDC_ROLE_MAP": "dns-admins=admin"}, tmp_path)
    assert out.returncode == 0, out.stderr
    assert "s3cret-value" not in out.stdout + out.stderr
