"""Password logins are slowed, then locked, per account and address (django-axes, its database handler).

A failure is counted for the pair (username as typed, client address). From the SLOWDOWN_AFTER-th failure on,
the next try of that pair is refused, without checking the password, until SLOWDOWN_BASE_S * 2^(n - after)
seconds have passed since the last failure (2, 4, 8… s with the defaults). At FAILURE_LIMIT failures the pair
is locked for COOLOFF_MINUTES after its last failure, or until an admin deletes the attempt (Django admin:
"Access attempts", the delete asks to confirm and is audited). A refused try is not counted (its password was
never checked), so a person waiting out the lock is not kept out longer for trying once more; a success
clears the pair's failures.

Only a typed username and password are throttled: single sign-on (sso/) and API tokens never reach here,
and an authenticate() without a request (management commands) has no address to count against.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from axes.backends import AxesStandaloneBackend
from axes.handlers.database import AxesDatabaseHandler
from axes.helpers import get_client_username, get_cool_off
from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.db import transaction
from django.db.models import Max, Sum
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from dnsportal.audit import audit_record


def client_address(request: HttpRequest) -> str:
    """The address failures are counted against: the connection's, or the one the trusted proxies forwarded.

    With DNSPORTAL_TRUSTED_PROXY_COUNT = n, each of n proxies appends the address it was reached from to
    X-Forwarded-For, so the n-th entry from the right is the client as the outermost proxy saw it; entries
    left of it are whatever the client sent and are never believed. A request with fewer entries did not
    come through the proxies: its connection's address counts.
    """
    remote = request.META.get("REMOTE_ADDR", "")
    count = settings.TRUSTED_PROXY_COUNT
    if count <= 0:
        return remote
    forwarded = [a.strip() for a in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if a.strip()]
    if len(forwarded) < count:
        return remote
    return forwarded[-count]


def is_not_a_password_login(request: HttpRequest, credentials: dict | None) -> bool:
    """AXES_WHITELIST_CALLABLE: an authenticate() without a username (the OpenID callback's nonce and code
    verifier) is none of the throttle's business; the provider throttles its own logins."""
    return not (credentials or {}).get(settings.AXES_USERNAME_FORM_FIELD)


def slowdown_wait_s(failures: int, last_failure_age_s: float) -> int:
    """Seconds the next try must still wait after `failures` failures, the last `last_failure_age_s` ago."""
    after = settings.LOGIN_SLOWDOWN_AFTER
    if failures < after or after <= 0:
        return 0
    delay = settings.LOGIN_SLOWDOWN_BASE_S * 2 ** (failures - after)
    return max(0, math.ceil(delay - last_failure_age_s))


class ThrottlingHandler(AxesDatabaseHandler):
    """Axes's database handler plus the progressive refusal before the lock."""

    def is_allowed(self, request: HttpRequest, credentials: dict | None = None) -> bool:
        if self.is_whitelisted(request, credentials):
            return True
        failures, last = self._failures_and_last(request, credentials)
        now = request.axes_attempt_time
        if failures >= settings.AXES_FAILURE_LIMIT:
            cool_off = get_cool_off(request) or timedelta(0)
            request.login_retry_after_s = max(1, math.ceil((last + cool_off - now).total_seconds()))
            request.login_locked = True
            return False
        wait = slowdown_wait_s(failures, (now - last).total_seconds()) if last else 0
        if wait:
            request.login_retry_after_s = wait
            request.login_locked = False
            return False
        return True

    def _failures_and_last(self, request: HttpRequest, credentials: dict | None):
        failures, last = 0, None
        for attempts in self.get_user_attempts(request, credentials):
            agg = attempts.aggregate(n=Sum("failures_since_start"), last=Max("attempt_time"))
            failures = max(failures, agg["n"] or 0)
            if agg["last"] and (last is None or agg["last"] > last):
                last = agg["last"]
        return failures, last


class PasswordLoginBackend(AxesStandaloneBackend):
    """First in AUTHENTICATION_BACKENDS: refuses a slowed or locked pair before any password is checked."""

    def authenticate(self, request: HttpRequest | None, username: str | None = None, **kwargs):
        if request is None:
            return None  # manage.py and the test client's login(): no address, nothing to count
        return super().authenticate(request, username, **kwargs)


def _retry_after(request: HttpRequest) -> tuple[bool, int]:
    """(locked, seconds to wait): from the check before this try, or, when this very try reached the limit,
    the whole cool-off."""
    if hasattr(request, "login_retry_after_s"):
        return request.login_locked, request.login_retry_after_s
    cool_off = get_cool_off(request) or timedelta(0)
    return True, max(1, math.ceil(cool_off.total_seconds()))


def locked_message(request: HttpRequest) -> str:
    locked, seconds = _retry_after(request)
    if locked:
        minutes = max(1, math.ceil(seconds / 60))
        return (
            "Too many failed logins for this account from this address; try again in "
            f"{minutes} minute{'s' if minutes != 1 else ''} or ask an admin."
        )
    return (
        "Too many failed logins for this account from this address; wait "
        f"{seconds} second{'s' if seconds != 1 else ''} before trying again."
    )


def lockout_response(
    request: HttpRequest, original_response: HttpResponse | None = None, credentials: dict | None = None
) -> HttpResponse:
    """AXES_LOCKOUT_CALLABLE: the login page again, saying why and for how long, as 429 with Retry-After.

    It never says whether the account exists or the password was right: the password was not checked."""
    ctx = {
        "lockout_message": locked_message(request),
        "username": get_client_username(request, credentials) or "",
        "next": request.POST.get("next", request.GET.get("next", "")),
    }
    response = render(request, "registration/login.html", ctx, status=429)
    response["Retry-After"] = str(_retry_after(request)[1])
    return response


@dataclass(frozen=True)
class Lock:
    """A (username, address) pair with failures inside the cool-off window, as the admin pages list it."""

    username: str
    ip_address: str
    failures: int
    last_failure: datetime
    until: datetime | None  # when the pair may try again; None: it may now (failures still count)

    @property
    def locked(self) -> bool:
        return self.failures >= settings.AXES_FAILURE_LIMIT


def lock_list() -> list[Lock]:
    """Every pair with failures inside the cool-off window, locked ones first, newest first."""
    from axes.models import AccessAttempt

    cool_off = get_cool_off() or timedelta(0)
    now = timezone.now()
    rows = (
        AccessAttempt.objects.filter(attempt_time__gte=now - cool_off)
        .values("username", "ip_address")
        .annotate(n=Sum("failures_since_start"), last=Max("attempt_time"))
    )
    locks = []
    for r in rows:
        if r["n"] >= settings.AXES_FAILURE_LIMIT:
            until = r["last"] + cool_off
        else:
            wait = slowdown_wait_s(r["n"], (now - r["last"]).total_seconds())
            until = now + timedelta(seconds=wait) if wait else None
        locks.append(Lock(r["username"] or "", r["ip_address"] or "", r["n"], r["last"], until))
    return sorted(locks, key=lambda lk: (not lk.locked, -lk.last_failure.timestamp(), lk.username))


@transaction.atomic  # not durable: Django admin's delete view calls it inside its own transaction
def login_unlock(*, username: str, ip_address: str, actor: AbstractBaseUser) -> int:
    """Forget the failures of one (username, address) pair: it may log in at once. Audited; returns the
    number of failures forgotten (0 when the pair had none left)."""
    from axes.models import AccessAttempt

    attempts = AccessAttempt.objects.select_for_update().filter(username=username, ip_address=ip_address)
    failures = sum(a.failures_since_start for a in attempts)
    attempts.delete()
    audit_record(
        actor=actor,
        action="login.unlock",
        object_type="login",
        object_id=f"{username}@{ip_address}"[:200],
        object_repr=f"logins of {username} from {ip_address}",
        before={"failures": failures},
        after={"failures": 0},
    )
    return failures
