"""Who is asking: a personal token (`Authorization: Bearer dnsp_…`) or the browser's session."""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from api.tokens import TOKEN_PREFIX, TokenRefused, token_authenticate


class TokenAuthentication(authentication.BaseAuthentication):
    """A personal API token acts as its owner, with the owner's roles at the time of the request."""

    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        scheme, _, key = header.partition(" ")
        if scheme.lower() not in ("bearer", "token"):
            return None  # Basic and others are not ours: the session may still apply
        key = key.strip()
        if not key.startswith(TOKEN_PREFIX):
            raise exceptions.AuthenticationFailed("This is not a dnsportal API token (they start dnsp_).")
        try:
            token = token_authenticate(key)
        except TokenRefused as exc:
            raise exceptions.AuthenticationFailed(str(exc)) from None
        return token.user, token

    def authenticate_header(self, request) -> str:
        # A 401 (not 403) for a missing or refused token, with the scheme to use.
        return 'Bearer realm="dnsportal"'


class SessionAuthentication(authentication.SessionAuthentication):
    """The browser's login; writes need the CSRF token like the pages' forms (DRF enforces it)."""


class TokenScheme(OpenApiAuthenticationExtension):
    target_class = "api.auth.TokenAuthentication"
    name = "token"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A personal API token (Your account → API tokens), sent as `Bearer dnsp_…`.",
        }


class SessionScheme(OpenApiAuthenticationExtension):
    target_class = "api.auth.SessionAuthentication"
    name = "session"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "cookie", "name": "sessionid"}
