"""Writes of single sign-on: a person coming back from the identity provider becomes a portal account with the
role their groups map to, set again at every login; every change of role is in the audit log."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.contrib.auth.models import Group, User
from django.db import transaction

from dnsportal.audit import audit_record
from sso.mapping import ROLE_ORDER, groups_from_claim, role_for_groups
from sso.models import Identity

log = logging.getLogger(__name__)


class SSOError(Exception):
    """A login through the identity provider that did not succeed, as a sentence for the person at the login
    page; `status` is the HTTP status of the page that says it."""

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message)
        self.status = status


def _free_username(claims: Mapping[str, Any], subject: str) -> str:
    """The provider's preferred_username (else the e-mail's local part, else the subject), made a valid and
    unused Django username: a local account of the same name is never reused, the new one gets a suffix."""
    email = str(claims.get("email") or "")
    wanted = str(claims.get("preferred_username") or email.split("@")[0] or subject)
    base = re.sub(r"[^\w.@+-]", "-", wanted)[:140].strip("-") or "sso-user"
    candidate, n = base, 1
    while User.objects.filter(username__iexact=candidate).exists():
        n += 1
        candidate = f"{base}-{n}"
    return candidate


@transaction.atomic(durable=True)
def sso_sign_in(*, issuer: str, claims: Mapping[str, Any]) -> User:
    """The account for these verified claims (the ID token's and userinfo's), created on the first login, with
    its role set from the groups claim. Raises SSOError when the person may not log in."""
    subject = str(claims.get("sub") or "")
    if not subject:
        raise SSOError("The identity provider sent no subject (sub) for this person.", status=502)
    groups = groups_from_claim(claims.get(settings.OIDC_GROUPS_CLAIM))
    decision = role_for_groups(groups, settings.OIDC_ROLE_MAP)
    role = decision.role
    if role is None:
        if settings.OIDC_UNMAPPED == "refuse":
            log.warning("sso login refused: subject %s is in no mapped group", subject)
            raise SSOError(
                f"Your account at {settings.OIDC_PROVIDER_NAME} is in none of the groups that give a role in "
                "this portal. Ask an administrator of the identity provider to add you to one of them.",
                status=403,
            )
        role = "viewer"

    identity = Identity.objects.select_for_update().filter(issuer=issuer, subject=subject).first()
    if identity is None:
        user = User(
            username=_free_username(claims, subject),
            email=str(claims.get("email") or "")[:254],
            first_name=str(claims.get("given_name") or "")[:150],
            last_name=str(claims.get("family_name") or "")[:150],
        )
        # Single sign-on only: no password works for this account until an admin sets one.
        user.set_unusable_password()
        user.save()
        Identity.objects.create(user=user, issuer=issuer, subject=subject)
        audit_record(
            actor=None,
            action="user.sso_create",
            obj=user,
            after={"username": user.username, "issuer": issuer, "subject": subject},
        )
    else:
        user = User.objects.select_for_update().get(id=identity.user_id)
        if not user.is_active:
            raise SSOError(
                f"The portal account {user.username} is disabled; a portal admin can enable it again.",
                status=403,
            )
        email = str(claims.get("email") or "")[:254]
        if email and email != user.email:
            user.email = email
            user.save(update_fields=["email"])

    role_groups = Group.objects.filter(name__in=ROLE_ORDER)
    current = sorted(g.name for g in user.groups.all() if g.name in ROLE_ORDER)
    if current != [role]:
        user.groups.remove(*[g for g in role_groups if g.name != role])
        user.groups.add(*[g for g in role_groups if g.name == role])
        audit_record(
            actor=None,
            action="user.role_change",
            obj=user,
            before={"roles": current},
            after={
                "roles": [role],
                "source": "single sign-on",
                "issuer": issuer,
                "mapped_groups": list(decision.matched),
            },
        )
        log.info("sso role of %s set to %s (was %s)", user.username, role, ", ".join(current) or "none")
    return user
