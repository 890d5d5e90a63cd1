"""The person's own page for API tokens: make one (its key shown once), list them, revoke; an admin's page
lists everyone's and revokes any."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from api import tokens
from api.models import ApiToken
from dnsportal.errors import PortalError
from dnsportal.roles import ADMINISTER, VIEW, has_role_perm, role_required


class TokenForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="What uses it, e.g. ci-deploy or laptop-cli.")
    expires_in_days = forms.TypedChoiceField(
        coerce=int,
        choices=[(d, f"{d} days") for d in tokens.EXPIRY_CHOICES_DAYS],
        initial=90,
        label="Expires after",
    )


@require_http_methods(["GET", "POST"])
@role_required(VIEW)
def token_list(request: HttpRequest) -> HttpResponse:
    form = TokenForm(request.POST or None)
    new = None
    if request.method == "POST" and form.is_valid():
        try:
            new = tokens.token_create(actor=request.user, **form.cleaned_data)
        except PortalError as exc:
            form.add_error(None, str(exc))
        else:
            form = TokenForm()
    ctx = {
        "form": form,
        "new": new,
        "tokens": ApiToken.objects.filter(user=request.user).select_related("revoked_by"),
        "is_admin": has_role_perm(request.user, ADMINISTER),
    }
    response = render(request, "api/token_list.html", ctx, status=422 if form.errors else 200)
    if new is not None:
        response["Cache-Control"] = "no-store"  # the key is on this page once: keep it out of every cache
    return response


@role_required(ADMINISTER)
def token_all(request: HttpRequest) -> HttpResponse:
    rows = ApiToken.objects.select_related("user", "revoked_by")
    return render(request, "api/token_all.html", {"tokens": rows})


@require_POST
@role_required(VIEW)
def token_revoke(request: HttpRequest, token_id: int) -> HttpResponse:
    token = get_object_or_404(ApiToken, id=token_id)
    try:
        tokens.token_revoke(actor=request.user, token_id=token.id)
    except PortalError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Token {token.name} revoked: it is refused from now on.")
    if token.user_id != request.user.id and has_role_perm(request.user, ADMINISTER):
        return redirect("account:token-all")
    return redirect("account:token-list")
