"""Roles are Django groups; a view names the permission it needs, never a group.

viewer    sees every page
operator  + runs operator actions (reconcile now, run a job, propose a policy change)
approver  + approves or rejects what someone else proposed
admin     everything, including clusters, provider accounts and settings
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

VIEW, OPERATE, APPROVE, ADMINISTER = "view_portal", "operate", "approve", "administer"

ROLE_PERMISSIONS: dict[str, list[str]] = {
    "viewer": [VIEW],
    "operator": [VIEW, OPERATE],
    "approver": [VIEW, APPROVE],
    "admin": [VIEW, OPERATE, APPROVE, ADMINISTER],
}
ROLES = list(ROLE_PERMISSIONS)

_ROLE_FOR = {VIEW: "viewer", OPERATE: "operator", APPROVE: "approver", ADMINISTER: "admin"}


def role_for(perm: str) -> str:
    """The least role holding `perm`, as refusals name it ("This needs the operator role.")."""
    return _ROLE_FOR[perm]


def has_role_perm(user, perm: str) -> bool:
    return bool(user and user.is_authenticated and user.has_perm(f"dnsportal.{perm}"))


def role_required(perm: str) -> Callable:
    """Refuse with a 403 page that says which role is missing (login itself is enforced by middleware)."""

    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @wraps(view)
        def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            if not has_role_perm(request.user, perm):
                return render(
                    request,
                    "403.html",
                    {"needed_role": _ROLE_FOR[perm], "reason": f"This needs the {_ROLE_FOR[perm]} role."},
                    status=403,
                )
            return view(request, *args, **kwargs)

        wrapped.required_perm = perm  # type: ignore[attr-defined]  (the URL-walking test reads it)
        return wrapped

    return decorator


def ensure_roles(apps=None) -> None:
    """Create the role groups with their permissions (idempotent).

    The data migration calls it with the historical app registry; tests call it again after a transactional
    test's flush has emptied the tables the migration filled.
    """
    from django.apps import apps as global_apps
    from django.contrib.auth.management import create_permissions

    registry = apps or global_apps
    app_config = registry.get_app_config("dnsportal")
    if apps is not None:
        # Historical app configs have no models module, which create_permissions needs to see.
        app_config.models_module = True
    create_permissions(app_config, apps=registry, verbosity=0)
    if apps is not None:
        app_config.models_module = None
    group_model = registry.get_model("auth", "Group")
    permission_model = registry.get_model("auth", "Permission")
    for role, codenames in ROLE_PERMISSIONS.items():
        group, _ = group_model.objects.get_or_create(name=role)
        perms = permission_model.objects.filter(content_type__app_label="dnsportal", codename__in=codenames)
        group.permissions.add(*perms)
