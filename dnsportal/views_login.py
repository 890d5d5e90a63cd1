"""Login locks for admins: which (account, address) pairs are slowed or locked, and unlocking one."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from dnsportal import login_throttle
from dnsportal.roles import ADMINISTER, role_required


@require_GET
@role_required(ADMINISTER)
def login_lock_list(request: HttpRequest) -> HttpResponse:
    ctx = {
        "locks": login_throttle.lock_list(),
        "limit": settings.AXES_FAILURE_LIMIT,
        "slowdown_after": settings.LOGIN_SLOWDOWN_AFTER,
        "slowdown_base": settings.LOGIN_SLOWDOWN_BASE_S,
        "cooloff_minutes": int(login_throttle.get_cool_off().total_seconds() // 60),
    }
    return render(request, "login_lock_list.html", ctx)


@require_http_methods(["GET", "POST"])
@role_required(ADMINISTER)
def login_unlock(request: HttpRequest) -> HttpResponse:
    """GET: the confirmation page for one pair; POST (sent by that page): forget the pair's failures."""
    source = request.POST if request.method == "POST" else request.GET
    username, ip_address = source.get("username", ""), source.get("ip_address", "")
    if request.method == "GET":
        lock = next(
            (
                lk
                for lk in login_throttle.lock_list()
                if (lk.username, lk.ip_address) == (username, ip_address)
            ),
            None,
        )
        return render(
            request, "login_unlock.html", {"lock": lock, "username": username, "ip_address": ip_address}
        )
    forgotten = login_throttle.login_unlock(username=username, ip_address=ip_address, actor=request.user)
    if forgotten:
        messages.success(
            request, f"{username} may log in from {ip_address} again ({forgotten} failures forgotten)."
        )
    else:
        messages.info(request, f"{username} had no failed logins left from {ip_address}; nothing to unlock.")
    return redirect("login-lock-list")
