"""The two pages of single sign-on: the start (redirect to the provider) and the callback (back from it).

Every way a login through the provider can fail ends on a page that says what happened and what to do, never
on a 500: the provider unreachable, the portal's client credentials refused, the person in no mapped group.
The client secret appears in no page and no log line.
"""

from __future__ import annotations

import logging

import requests
from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import SuspiciousOperation
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.decorators import method_decorator
from mozilla_django_oidc.views import OIDCAuthenticationCallbackView, OIDCAuthenticationRequestView

from sso import discovery
from sso.services import SSOError

log = logging.getLogger(__name__)


def error_page(request: HttpRequest, message: str, *, status: int) -> HttpResponse:
    return render(
        request,
        "sso/error.html",
        {"message": message, "provider_name": settings.OIDC_PROVIDER_NAME},
        status=status,
    )


def _oauth_error(response: requests.Response | None) -> tuple[str, str]:
    """The OAuth error code and description of a refused request (RFC 6749, 5.2), as far as it says them."""
    if response is None:
        return "", ""
    try:
        body = response.json()
    except ValueError:
        return "", ""
    if not isinstance(body, dict):
        return "", ""
    return str(body.get("error") or "")[:100], str(body.get("error_description") or "")[:300]


@method_decorator(login_not_required, name="dispatch")
class SSOStartView(OIDCAuthenticationRequestView):
    """Redirects to the provider's authorization endpoint (state, nonce and PKCE kept in the session)."""

    def __init__(self, *args, **kwargs):
        # Settings and endpoints are read per request in get(): the provider may be down at start-up.
        super(OIDCAuthenticationRequestView, self).__init__(*args, **kwargs)

    def get(self, request: HttpRequest) -> HttpResponse:
        if not settings.OIDC_ENABLED:
            raise Http404("Single sign-on is not configured.")
        try:
            meta = discovery.provider_metadata(settings.OIDC_ISSUER, timeout=settings.OIDC_TIMEOUT)
        except discovery.DiscoveryError as exc:
            log.warning("sso: discovery failed: %s", exc)
            return error_page(
                request,
                f"The identity provider cannot be used right now: {exc} Log in with a local account, or try "
                "again later.",
                status=502,
            )
        self.OIDC_OP_AUTH_ENDPOINT = meta.authorization_endpoint
        self.OIDC_RP_CLIENT_ID = settings.OIDC_RP_CLIENT_ID
        return super().get(request)


@method_decorator(login_not_required, name="dispatch")
class SSOCallbackView(OIDCAuthenticationCallbackView):
    """The provider sends the person back here with a code; the backend exchanges it and logs them in."""

    def get(self, request: HttpRequest) -> HttpResponse:
        if not settings.OIDC_ENABLED:
            raise Http404("Single sign-on is not configured.")
        try:
            return super().get(request)
        except SSOError as exc:
            return error_page(request, str(exc), status=exc.status)
        except discovery.DiscoveryError as exc:
            log.warning("sso: discovery failed: %s", exc)
            return error_page(request, f"The identity provider cannot be used right now: {exc}", status=502)
        except requests.HTTPError as exc:
            return self._provider_refused(request, exc)
        except requests.RequestException as exc:
            log.warning("sso: the identity provider could not be reached: %s", type(exc).__name__)
            return error_page(
                request,
                f"The identity provider could not be reached to finish the login ({type(exc).__name__}). "
                "Try again later, or log in with a local account.",
                status=502,
            )
        except SuspiciousOperation as exc:
            # A replayed or foreign state, a bad nonce or signature: never a login, and no detail to the page.
            log.warning("sso: the provider's answer did not check out: %s", exc)
            return error_page(
                request,
                "The answer of the identity provider did not check out (its state, nonce or signature). "
                "Start the login again.",
                status=400,
            )

    def _provider_refused(self, request: HttpRequest, exc: requests.HTTPError) -> HttpResponse:
        response = exc.response
        code, description = _oauth_error(response)
        status = response.status_code if response is not None else 0
        # The library's message holds the response body, never the request's: no secret in this line.
        log.warning("sso: the identity provider refused a request: HTTP %s %s %s", status, code, description)
        if code == "invalid_client":
            message = (
                "The identity provider refused this portal's client credentials (invalid_client). A portal "
                "admin should check DNSPORTAL_OIDC_CLIENT_ID and DNSPORTAL_OIDC_CLIENT_SECRET against the "
                "client registered at the provider."
            )
        elif code:
            message = (
                f"The identity provider refused to finish the login ({code}{': ' if description else ''}"
            )
            message += f"{description}). Start the login again; if it keeps failing, tell an admin."
        else:
            message = (
                f"The identity provider answered HTTP {status} while finishing the login. Try again later, "
                "or log in with a local account."
            )
        return error_page(request, message, status=502)

    def login_failure(self) -> HttpResponse:
        # The library redirects to a failure URL without a word; say why instead. `error` is the provider's
        # own refusal (RFC 6749, 4.1.2.1), e.g. the person cancelled or may not use this client.
        code = self.request.GET.get("error", "")[:100]
        description = self.request.GET.get("error_description", "")[:300]
        if code:
            message = f"The identity provider did not log you in ({code}"
            message += f": {description})." if description else ")."
            return error_page(self.request, message, status=403)
        user = getattr(self, "user", None)
        if user is not None and not user.is_active:
            return error_page(self.request, f"The portal account {user.username} is disabled.", status=403)
        return error_page(
            self.request,
            "This login through the identity provider was not started here or has already been used. "
            "Start it again.",
            status=400,
        )
