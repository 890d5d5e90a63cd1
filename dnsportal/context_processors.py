from django.conf import settings
from django.http import HttpRequest

NAV = [
    ("dashboard", "Dashboard"),
    ("clusters:cluster-list", "Clusters"),
    ("records:endpoint-list", "Endpoints"),
    ("records:zone-list", "Zones"),
    ("records:record-list", "Records"),
    ("records:changeset-list", "Changes"),
    ("records:policy-list", "Policies"),
    ("records:verification-list", "Verification"),
    ("audit-list", "Audit"),
    ("job-list", "Jobs"),
]


def portal(request: HttpRequest) -> dict:
    user = getattr(request, "user", None)
    roles: list[str] = []
    if user is not None and user.is_authenticated:
        roles = sorted(g.name for g in user.groups.all())
        if user.is_superuser and "admin" not in roles:
            roles.append("admin")
    return {"NAV": NAV, "PORTAL_MODE": settings.MODE, "user_roles": roles}
