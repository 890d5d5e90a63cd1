from inspect import unwrap

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path, re_path
from django_rq.urls import get_admin_urlpatterns, get_api_urlpatterns

from dnsportal import views, views_login
from dnsportal.roles import ADMINISTER, role_required


# django-rq's dashboard, for the admin role only (its stats API too: no token access past the login).
# Its views carry Django's staff check, which is unwrapped so that the role decides, as everywhere else.
def _admin_only(view):
    return role_required(ADMINISTER)(unwrap(view))


rq_urlpatterns = [
    *[re_path(p.pattern.regex.pattern, _admin_only(p.callback), name=p.name) for p in get_api_urlpatterns()],
    *get_admin_urlpatterns(view_wrapper=_admin_only),
]

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("sso/", include("sso.urls")),
    path("favicon.ico", views.favicon, name="favicon"),
    path("healthz", views.healthz, name="healthz"),
    path("readyz", views.readyz, name="readyz"),
    path("login-locks/", views_login.login_lock_list, name="login-lock-list"),
    path("login-locks/unlock/", views_login.login_unlock, name="login-unlock"),
    path("audit/", views.audit_list, name="audit-list"),
    path("audit/<int:entry_id>/", views.audit_detail, name="audit-detail"),
    path("jobs/", views.job_list, name="job-list"),
    path("jobs/<int:run_id>/", views.job_detail, name="job-detail"),
    path("jobs/run/<str:name>/", views.job_run_now, name="job-run-now"),
    path("demo/status/", views.demo_status, name="demo-status"),
    path("demo/remove/", views.demo_remove, name="demo-remove"),
    path("demo/remove/confirm/", views.demo_remove_confirm, name="demo-remove-confirm"),
    path("api/v1/", include("api.urls")),
    path("account/", include("api.urls_pages")),
    path("clusters/", include("clusters.urls")),
    path("", include("records.urls")),
    path("rq/", include((rq_urlpatterns, "django_rq"))),
    path("admin/", admin.site.urls),
]
