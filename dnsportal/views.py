from __future__ import annotations

import logging

import redis
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.core.paginator import Paginator
from django.db import connection, transaction
from django.db.models import Q
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.templatetags.static import static
from django.utils import timezone
from django.utils.cache import patch_cache_control
from django.utils.dateparse import parse_date
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from dnsportal import demo, queue, scheduler
from dnsportal.audit import audit_record
from dnsportal.errors import PortalError
from dnsportal.models import AuditEntry, JobRun
from dnsportal.roles import ADMINISTER, OPERATE, VIEW, role_required

log = logging.getLogger(__name__)

PAGE_SIZE = 50


@role_required(VIEW)
def dashboard(request: HttpRequest) -> HttpResponse:
    from clusters import selectors as cluster_selectors
    from records import selectors as records_selectors

    context = {
        "cluster_count": cluster_selectors.cluster_count(),
        "recent_jobs": JobRun.objects.select_related("actor")[:8],
        "recent_audit": AuditEntry.objects.all()[:8],
        "failed_jobs": JobRun.objects.filter(status=JobRun.Status.FAILED).count(),
        "zone_failures": records_selectors.zones_failing_reconcile(),
        "demo": demo.demo_banner(),
    }
    return render(request, "dashboard.html", context)


@require_GET
@role_required(VIEW)
def demo_status(request: HttpRequest) -> HttpResponse:
    """The dashboard's demo block, polled while the demo is coming; once it has arrived (or failed) the
    whole dashboard reloads, since its counts and lists change with it."""
    banner = demo.demo_banner()
    response = render(request, "partials/demo_banner.html", {"demo": banner})
    if request.htmx and banner.phase != "coming":
        response["HX-Refresh"] = "true"
    return response


@require_GET
@role_required(ADMINISTER)
def demo_remove_confirm(request: HttpRequest) -> HttpResponse:
    return render(request, "demo_remove.html", {"objects": demo.demo_objects(), "demo_on": settings.DEMO})


@require_POST
@role_required(ADMINISTER)
def demo_remove(request: HttpRequest) -> HttpResponse:
    # The confirmation page sends this; a bare POST (a stray form, a replayed request) only shows that page.
    if request.POST.get("confirm") != "remove-demo":
        return redirect("demo-remove-confirm")
    try:
        removed = demo.demo_remove(actor=request.user)
    except PortalError as exc:
        ctx = {"objects": demo.demo_objects(), "demo_on": settings.DEMO, "error": str(exc)}
        return render(request, "demo_remove.html", ctx, status=422)
    names = [*(c.name for c in removed.clusters), *(str(z) for z in removed.zones)]
    messages.success(
        request,
        f"The demo is removed ({', '.join(names) or 'nothing was registered yet'}); "
        "make up will not start it again. The Route53 stand-in's records were left as they were.",
    )
    return redirect("dashboard")


@require_GET
@role_required(VIEW)
def audit_list(request: HttpRequest) -> HttpResponse:
    entries = AuditEntry.objects.all()
    q = request.GET.get("q", "").strip()
    if q:
        entries = entries.filter(
            Q(actor_name__icontains=q)
            | Q(action__icontains=q)
            | Q(object_type__icontains=q)
            | Q(object_repr__icontains=q)
            | Q(object_id=q)
            | Q(request_id=q)
        )
    since, until = (
        parse_date(request.GET.get("since", "") or ""),
        parse_date(request.GET.get("until", "") or ""),
    )
    if since:
        entries = entries.filter(at__date__gte=since)
    if until:
        entries = entries.filter(at__date__lte=until)
    page = Paginator(entries, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "audit/audit_list.html", {"page": page, "q": q, "since": since, "until": until})


@require_GET
@role_required(VIEW)
def audit_detail(request: HttpRequest, entry_id: int) -> HttpResponse:
    entry = get_object_or_404(AuditEntry, id=entry_id)
    return render(request, "audit/audit_detail.html", {"entry": entry})


@role_required(VIEW)
def job_list(request: HttpRequest) -> HttpResponse:
    runs = JobRun.objects.select_related("actor")
    status = request.GET.get("status", "")
    if status in JobRun.Status.values:
        runs = runs.filter(status=status)
    q = request.GET.get("q", "").strip()
    if q:
        runs = runs.filter(name__icontains=q)
    page = Paginator(runs, PAGE_SIZE).get_page(request.GET.get("page"))
    try:
        due = scheduler.next_due(queue.rq_connection())
    except redis.RedisError:
        due = {}
    # The latest run of each periodic job, scheduled or run now (DISTINCT ON: one row per name).
    latest = JobRun.objects.filter(name__in=list(scheduler.SCHEDULES)).order_by("name", "-created_at")
    last = {run.name: run for run in latest.distinct("name")}
    schedules = [
        {"name": name, "every": spec.every, "next_due": due.get(name), "last": last.get(name)}
        for name, spec in sorted(scheduler.SCHEDULES.items())
    ]
    ctx = {
        "page": page,
        "status": status,
        "q": q,
        "statuses": JobRun.Status.choices,
        "schedules": schedules,
        "now": timezone.now(),
    }
    if request.htmx:
        return render(request, "jobs/partials/job_table.html", ctx)
    return render(request, "jobs/job_list.html", ctx)


@role_required(VIEW)
def job_detail(request: HttpRequest, run_id: int) -> HttpResponse:
    run = get_object_or_404(JobRun, id=run_id)
    return render(request, "jobs/job_detail.html", {"run": run})


@require_POST
@role_required(OPERATE)
def job_run_now(request: HttpRequest, name: str) -> HttpResponse:
    """Run a periodic job now (e.g. prune old job runs) instead of waiting for its schedule."""
    if name not in scheduler.SCHEDULES:
        messages.error(request, f"There is no periodic job called {name!r}.")
        return redirect("job-list")
    with transaction.atomic():
        run = queue.enqueue(name, actor=request.user)
        audit_record(actor=request.user, action="job.run_now", obj=run, after={"job": name})
    messages.success(request, f"Job {name} queued as run #{run.id}.")
    return redirect("job-detail", run_id=run.id)


@login_not_required
@require_GET
def favicon(request: HttpRequest) -> HttpResponse:
    """Browsers ask for /favicon.ico whatever a page links (bookmarks, feed readers): send the SVG."""
    response = HttpResponseRedirect(static("img/favicon.svg"))
    patch_cache_control(response, public=True, max_age=24 * 3600)
    return response


@login_not_required
@require_GET
@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    """The process is up and serving (no dependency is checked: that is /readyz)."""
    return JsonResponse({"status": "ok"})


@login_not_required
@require_GET
@never_cache
def readyz(request: HttpRequest) -> JsonResponse:
    """Ready when the database and Redis both answer; 503 naming the failing part otherwise."""
    checks: dict[str, str] = {}
    try:
        with connection.cursor() as cur:
            cur.execute("SELECT 1")
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"unreachable: {exc.__class__.__name__}"
        log.warning("readyz: database check failed: %s", exc)
    try:
        client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=1, socket_timeout=1)
        try:
            client.ping()
        finally:
            client.close()
        checks["redis"] = "ok"
    except redis.RedisError as exc:
        checks["redis"] = f"unreachable: {exc.__class__.__name__}"
        log.warning("readyz: redis check failed: %s", exc)
    failing = sorted(name for name, result in checks.items() if result != "ok")
    body = {"status": "ok" if not failing else "unavailable", "failing": failing, "checks": checks}
    return JsonResponse(body, status=503 if failing else 200)
