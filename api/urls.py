"""/api/v1/: the resources, the OpenAPI 3.1 schema, Swagger UI and Redoc (from drf-spectacular-sidecar's own
static files: no CDN)."""

from __future__ import annotations

from csp.constants import UNSAFE_INLINE
from csp.decorators import csp_update
from django.urls import URLPattern, URLResolver, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerSplitView
from rest_framework.routers import SimpleRouter

from api.clusters import ClusterViewSet, ObjectViewSet
from api.endpoints import EndpointViewSet, HostnameListView, HostnameViewSet
from api.errors import not_found
from api.logs import AuditViewSet, JobViewSet, TokenViewSet
from api.reviews import ChangeSetViewSet, ProposalViewSet
from api.zones import AccountViewSet, RecordViewSet, VerificationViewSet, ZoneViewSet

router = SimpleRouter()
router.register("clusters", ClusterViewSet, basename="cluster")
router.register("endpoints", EndpointViewSet, basename="endpoint")
router.register("objects", ObjectViewSet, basename="object")
router.register("hostnames", HostnameViewSet, basename="hostname")
router.register("accounts", AccountViewSet, basename="account")
router.register("zones", ZoneViewSet, basename="zone")
router.register("records", RecordViewSet, basename="record")
router.register("changesets", ChangeSetViewSet, basename="changeset")
router.register("proposals", ProposalViewSet, basename="proposal")
router.register("verifications", VerificationViewSet, basename="verification")
router.register("audit", AuditViewSet, basename="audit")
router.register("jobs", JobViewSet, basename="job")
router.register("tokens", TokenViewSet, basename="token")

# The documentation pages run third-party bundles (drf-spectacular-sidecar's, served from here) that style
# their parts with <style> elements and style attributes they create: those two pages allow inline style, and
# Redoc its search index's worker, which it starts from a blob: URL. Scripts stay 'self' only.
_docs_csp = csp_update({"style-src": [UNSAFE_INLINE], "worker-src": ["'self'", "blob:"]})

app_name = "api"
urlpatterns = [
    path("hostnames/", HostnameListView.as_view(), name="hostname-list"),
    *router.urls,
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves Swagger UI's start script from ?script, not inline.
    path(
        "docs/",
        _docs_csp(
            SpectacularSwaggerSplitView.as_view(url_name="api:schema", template_name="api/swagger_ui.html")
        ),
        name="swagger-ui",
    ),
    path(
        "redoc/",
        _docs_csp(SpectacularRedocView.as_view(url_name="api:schema", template_name="api/redoc.html")),
        name="redoc",
    ),
    # Anything else under /api/v1/ is a 404 in the API's error shape, not the pages' HTML 404.
    re_path(r"^.*$", not_found, name="not-found"),
]


def _no_login_redirect(patterns: list[URLPattern | URLResolver]) -> None:
    # The API answers 401 in its own JSON shape (a token is checked by the view, after the middleware): the
    # pages' LoginRequiredMiddleware must not redirect API clients to the login form.
    for p in patterns:
        if isinstance(p, URLPattern):
            p.callback.login_required = False  # type: ignore[attr-defined]


_no_login_redirect(urlpatterns)
