"""Writes and the lookup of personal API tokens: one function per intent, the audit row inside."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from api.models import ApiToken
from dnsportal.audit import audit_record
from dnsportal.errors import PortalError

# "dnsp_" makes a leaked token recognisable to secret scanners and to people.
TOKEN_PREFIX = "dnsp_"  # noqa: S105  (a public marker, not a secret)
EXPIRY_CHOICES_DAYS = (7, 30, 90, 365)
# Recording every use would write a row per request; a minute is precise enough for "last used".
LAST_USE_RESOLUTION = timedelta(minutes=1)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True)
class NewToken:
    token: ApiToken
    key: str  # shown once, never stored


@transaction.atomic
def token_create(*, actor: Any, name: str, expires_in_days: int) -> NewToken:
    """A token for the person asking, acting as them; the key is returned once and only its hash kept."""
    name = name.strip()
    if not name:
        raise PortalError("Name the token after what uses it, e.g. ci-deploy.")
    if expires_in_days not in EXPIRY_CHOICES_DAYS:
        days = ", ".join(str(d) for d in EXPIRY_CHOICES_DAYS)
        raise PortalError(f"A token expires after {days} days; {expires_in_days} is not one of them.")
    if ApiToken.objects.filter(user=actor, name=name).exists():
        raise PortalError(f"You already have a token called {name!r}; revoke it or choose another name.")
    key = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        user=actor,
        name=name,
        prefix=key[: len(TOKEN_PREFIX) + 6],
        key_hash=hash_key(key),
        expires_at=timezone.now() + timedelta(days=expires_in_days),
    )
    audit_record(actor=actor, action="api_token.create", obj=token, after=token.audit_view())
    return NewToken(token, key)


@transaction.atomic
def token_revoke(*, actor: Any, token_id: int) -> ApiToken:
    """Revoke a token: its owner may revoke their own, an admin any."""
    from dnsportal.roles import ADMINISTER, has_role_perm

    token = ApiToken.objects.select_for_update().select_related("user").get(id=token_id)
    if token.user_id != actor.id and not has_role_perm(actor, ADMINISTER):
        from records.changesets import NotAllowed

        raise NotAllowed("Revoking another person's token needs the admin role.")
    if token.revoked_at is not None:
        raise PortalError(f"Token {token.name} of {token.user.get_username()} is already revoked.")
    token.revoked_at, token.revoked_by = timezone.now(), actor
    token.save(update_fields=["revoked_at", "revoked_by"])
    audit_record(
        actor=actor,
        action="api_token.revoke",
        obj=token,
        before={"state": "active"},
        after={"state": "revoked", **token.audit_view()},
    )
    return token


class TokenRefused(Exception):
    """The token is unknown, revoked or expired (the message says which, never echoing the token)."""


def token_authenticate(key: str) -> ApiToken:
    """The active token for `key`, with its user; its last use is recorded (to the minute)."""
    try:
        token = ApiToken.objects.select_related("user").get(key_hash=hash_key(key))
    except ApiToken.DoesNotExist:
        raise TokenRefused("This API token is not known.") from None
    if token.revoked_at is not None:
        raise TokenRefused(f"API token {token.name} was revoked on {token.revoked_at:%Y-%m-%d %H:%M} UTC.")
    if token.is_expired:
        raise TokenRefused(f"API token {token.name} expired on {token.expires_at:%Y-%m-%d %H:%M} UTC.")
    if not token.user.is_active:
        raise TokenRefused(f"API token {token.name} belongs to a deactivated account.")
    now = timezone.now()
    if token.last_used_at is None or token.last_used_at < now - LAST_USE_RESOLUTION:
        ApiToken.objects.filter(id=token.id).update(last_used_at=now)
        token.last_used_at = now
    return token
