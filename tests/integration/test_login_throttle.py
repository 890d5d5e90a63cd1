"""Password logins are slowed, then locked, per (account, address): through the real login view, on
PostgreSQL. Time passing is the attempt rows' times moved back, as the cool-off reads them."""

from __future__ import annotations

import logging
import re
from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.db.models import F
from django.test import Client

from dnsportal.models import AuditEntry
from tests.fixtures.people import PASSWORD

pytestmark = pytest.mark.django_db

HOME = "203.0.113.7"
ELSEWHERE = "198.51.100.9"
WRONG = "not-the-password-at-all"


@pytest.fixture(autouse=True)
def throttle(settings):
    # Small numbers so a test reaches each stage in a few requests: slowed after 2 failures, locked at 4.
    settings.AXES_FAILURE_LIMIT = 4
    settings.AXES_COOLOFF_TIME = timedelta(minutes=15)
    settings.LOGIN_SLOWDOWN_AFTER = 2
    settings.LOGIN_SLOWDOWN_BASE_S = 30
    settings.TRUSTED_PROXY_COUNT = 0


def post_login(client: Client, username: str, password: str, address: str = HOME, **extra):
    return client.post(
        "/login/", {"username": username, "password": password, "next": "/"}, REMOTE_ADDR=address, **extra
    )


def time_passes(seconds: float) -> None:
    AccessAttempt.objects.update(attempt_time=F("attempt_time") - timedelta(seconds=seconds))


def logged_in(client: Client) -> bool:
    return client.get("/").status_code == 200


def fail_until_locked(client: Client, username: str, address: str = HOME) -> None:
    """Fail as often as the limit allows, waiting out each slowdown (30 s, then 60 s): the pair is locked."""
    for i in range(4):
        if i >= 2:
            time_passes(120)
        assert post_login(client, username, WRONG, address).status_code == (429 if i == 3 else 200)
    assert sum(AccessAttempt.objects.values_list("failures_since_start", flat=True)) == 4


def test_failures_slow_the_pair_then_lock_it_with_a_message_saying_for_how_long(client, alice):
    assert post_login(client, "alice", WRONG).status_code == 200
    assert post_login(client, "alice", WRONG).status_code == 200  # 2 failures: slowed from now on

    slowed = post_login(client, "alice", PASSWORD)
    assert slowed.status_code == 429
    # 30 s from the last failure, less the moments this (busy) machine took since
    assert 20 < int(slowed["Retry-After"]) <= 30
    text = slowed.content.decode()
    wait = re.search(r"Too many failed logins for this account from this address; wait (\d+) seconds", text)
    assert wait and 20 < int(wait[1]) <= 30, text
    assert not logged_in(client)  # even the right password waits: it was never checked
    assert AccessAttempt.objects.get().failures_since_start == 2  # and the refusal was not counted

    time_passes(31)
    assert post_login(client, "alice", WRONG).status_code == 200  # 3rd failure: the wait doubles
    time_passes(31)
    again = post_login(client, "alice", WRONG)
    assert again.status_code == 429
    wait = re.search(r"wait (\d+) seconds before trying again", again.content.decode())
    assert wait and 20 < int(wait[1]) <= 29  # 60 s after the 3rd failure, 31 of them gone
    time_passes(30)
    locked = post_login(client, "alice", WRONG)  # 4th failure: the limit
    assert locked.status_code == 429
    assert (
        "Too many failed logins for this account from this address; try again in 15 minutes or ask an admin."
        in locked.content.decode()
    )
    assert locked["Retry-After"] == str(15 * 60)

    time_passes(5 * 60)
    still = post_login(client, "alice", PASSWORD)
    assert still.status_code == 429
    assert "try again in 10 minutes or ask an admin" in still.content.decode()
    assert not logged_in(client)
    assert AccessAttempt.objects.get().failures_since_start == 4


def test_the_lock_holds_for_that_pair_only(alice, bob):
    attacker = Client()
    fail_until_locked(attacker, "alice")
    assert post_login(attacker, "alice", PASSWORD).status_code == 429

    alice_elsewhere = Client()
    assert post_login(alice_elsewhere, "alice", PASSWORD, ELSEWHERE).status_code == 302
    assert logged_in(alice_elsewhere)
    bob_same_address = Client()
    assert post_login(bob_same_address, "bob", PASSWORD, HOME).status_code == 302
    assert logged_in(bob_same_address)


def test_the_lock_ends_after_the_cool_off_and_a_success_clears_the_count(client, alice):
    fail_until_locked(client, "alice")
    assert post_login(client, "alice", PASSWORD).status_code == 429

    time_passes(15 * 60 + 1)
    assert post_login(client, "alice", PASSWORD).status_code == 302
    assert logged_in(client)
    assert not AccessAttempt.objects.exists()


def test_an_admin_sees_the_lock_and_unlocks_it_after_confirming(client, alice, root, carol):
    fail_until_locked(client, "alice")

    admin = Client()
    admin.force_login(root)
    page = admin.get("/login-locks/").content.decode()
    assert "alice" in page and HOME in page and "locked" in page and "4 of 4" in page
    changelist = admin.get("/admin/axes/accessattempt/")
    assert changelist.status_code == 200
    assert "alice" in changelist.content.decode() and "locked until" in changelist.content.decode()

    viewer = Client()
    viewer.force_login(carol)
    assert viewer.get("/login-locks/").status_code == 403
    assert viewer.post("/login-locks/unlock/", {"username": "alice", "ip_address": HOME}).status_code == 403
    assert post_login(client, "alice", PASSWORD).status_code == 429

    confirm = admin.get("/login-locks/unlock/", {"username": "alice", "ip_address": HOME}).content.decode()
    assert "Unlock alice from 203.0.113.7?" in confirm and "4 failed logins" in confirm
    assert AccessAttempt.objects.exists()  # the confirmation page changes nothing
    done = admin.post("/login-locks/unlock/", {"username": "alice", "ip_address": HOME}, follow=True)
    assert "alice may log in from 203.0.113.7 again (4 failures forgotten)." in done.content.decode()
    entry = AuditEntry.objects.get(action="login.unlock")
    assert (entry.actor_name, entry.before, entry.after) == ("root", {"failures": 4}, {"failures": 0})

    assert post_login(client, "alice", PASSWORD).status_code == 302
    assert logged_in(client)


def test_deleting_the_attempt_in_django_admin_unlocks_with_an_audit_entry(client, alice, root):
    fail_until_locked(client, "alice")
    attempt = AccessAttempt.objects.get()
    admin = Client()
    admin.force_login(root)
    url = f"/admin/axes/accessattempt/{attempt.id}/delete/"
    assert "Are you sure" in admin.get(url).content.decode()
    assert admin.post(url, {"post": "yes"}).status_code == 302
    assert AuditEntry.objects.filter(action="login.unlock", actor_name="root").count() == 1
    assert post_login(client, "alice", PASSWORD).status_code == 302


def test_behind_trusted_proxies_the_forwarded_client_address_counts(client, alice, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    proxy = "10.0.0.5"
    # The client's own X-Forwarded-For entry ("1.2.3.4") is not believed; the proxy's appended one is.
    for _ in range(2):
        post_login(client, "alice", WRONG, proxy, HTTP_X_FORWARDED_FOR=f"1.2.3.4, {HOME}")
    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {HOME}
    refused = post_login(client, "alice", PASSWORD, proxy, HTTP_X_FORWARDED_FOR=f"5.6.7.8, {HOME}")
    assert refused.status_code == 429
    other = Client()
    assert post_login(other, "alice", PASSWORD, proxy, HTTP_X_FORWARDED_FOR=ELSEWHERE).status_code == 302


def test_no_password_reaches_a_log_line_or_the_attempt_rows(client, alice, caplog):
    caplog.set_level(logging.DEBUG)
    typed = "hunter2-typed-by-mistake"
    post_login(client, "alice", typed)
    post_login(client, "alice", typed)
    post_login(client, "alice", typed)  # refused while slowed
    assert typed not in caplog.text
    for row in AccessAttempt.objects.all():
        assert typed not in row.post_data and typed not in row.get_data
        assert "csrfmiddlewaretoken=" not in row.post_data or "********" in row.post_data


def test_single_sign_on_and_manage_py_logins_are_not_counted(alice):
    from django.contrib.auth import authenticate
    from django.test import RequestFactory

    # The OpenID callback authenticates with a nonce and code verifier, no username: not the throttle's.
    request = RequestFactory().get("/sso/callback/", REMOTE_ADDR=HOME)
    request.session = {}
    assert authenticate(request, nonce="n", code_verifier="v") is None
    # Without a request (manage.py, the test client's login()) there is no address to count against.
    assert authenticate(username="alice", password=WRONG) is None
    assert not AccessAttempt.objects.exists()
