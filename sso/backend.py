"""The authentication backend of single sign-on: mozilla-django-oidc's authorization-code flow (with PKCE
and a nonce), with endpoints from the provider's discovery document and the account from sso.services."""

from __future__ import annotations

from typing import Any

import jwt
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import SuspiciousOperation
from mozilla_django_oidc.auth import OIDCAuthenticationBackend

from sso import discovery, services


class PortalOIDCBackend(OIDCAuthenticationBackend):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Django builds the backend of a signed-in person at every request (to load the user): nothing here
        # may read the provider. The endpoints are read in authenticate(), when a login comes back.
        self.UserModel = get_user_model()

    def authenticate(self, request, **kwargs):
        if request is None or not settings.OIDC_ENABLED:
            return None
        if not request.GET.get("code") or not request.GET.get("state"):
            return None  # a password login: not ours
        meta = discovery.provider_metadata(settings.OIDC_ISSUER, timeout=settings.OIDC_TIMEOUT)
        self.OIDC_OP_TOKEN_ENDPOINT = meta.token_endpoint
        self.OIDC_OP_USER_ENDPOINT = meta.userinfo_endpoint
        self.OIDC_OP_JWKS_ENDPOINT = meta.jwks_uri
        self.OIDC_RP_CLIENT_ID = settings.OIDC_RP_CLIENT_ID
        self.OIDC_RP_CLIENT_SECRET = settings.OIDC_RP_CLIENT_SECRET
        self.OIDC_RP_SIGN_ALGO = settings.OIDC_RP_SIGN_ALGO
        self.OIDC_RP_IDP_SIGN_KEY = None
        return super().authenticate(request, **kwargs)

    def _verify_jws(self, payload, key):
        # The library checks signature, expiry and nonce; an ID token must also be for this client from this
        # issuer (OpenID Connect Core 3.1.3.7), else a token minted for another application would log in here.
        claims = super()._verify_jws(payload, key)
        try:
            jwt.decode(
                payload,
                key,
                algorithms=[self.OIDC_RP_SIGN_ALGO],
                audience=settings.OIDC_RP_CLIENT_ID,
                issuer=settings.OIDC_ISSUER,
            )
        except jwt.InvalidTokenError as exc:
            raise SuspiciousOperation(f"ID token refused: {exc}") from None
        return claims

    def get_or_create_user(self, access_token, id_token, payload):
        userinfo = self.get_userinfo(access_token, id_token, payload)
        # OpenID Connect Core 5.3.2: userinfo's sub must be the ID token's, or its claims are someone else's.
        if userinfo.get("sub") != payload.get("sub"):
            raise services.SSOError(
                "The identity provider's userinfo answer is for another person than its ID token.", status=502
            )
        return services.sso_sign_in(issuer=settings.OIDC_ISSUER, claims={**payload, **userinfo})
