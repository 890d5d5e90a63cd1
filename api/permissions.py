"""Roles over the API: each action names the permission it needs, as each page does (dnsportal.roles)."""

from __future__ import annotations

from rest_framework import exceptions, permissions

from dnsportal.roles import VIEW, has_role_perm, role_for


def needed_perm(view) -> str:
    """The permission an API request needs: the view's `perms` by action (viewsets) or method, else VIEW."""
    perms = getattr(view, "perms", {})
    action = getattr(view, "action", None)
    return perms.get(action) or perms.get(view.request.method) or VIEW


class RolePermission(permissions.BasePermission):
    """403 naming the missing role, in the sentence the pages use ("This needs the operator role.")."""

    def has_permission(self, request, view) -> bool:
        user = request.user
        if not (user and user.is_authenticated):
            raise exceptions.NotAuthenticated()
        perm = needed_perm(view)
        if not has_role_perm(user, perm):
            raise exceptions.PermissionDenied(f"This needs the {role_for(perm)} role.")
        return True


class SignedIn(permissions.BasePermission):
    """The schema and the API's documentation pages: anyone with a login or a token (no role needed)."""

    def has_permission(self, request, view) -> bool:
        if not (request.user and request.user.is_authenticated):
            raise exceptions.NotAuthenticated()
        return True
