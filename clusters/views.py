from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from clusters import services
from clusters.forms import (
    ClusterEditForm,
    ClusterRegisterForm,
    CredentialsForm,
    SourceOptionsForm,
    format_flag_lines,
    format_labels,
)
from clusters.kubeconfig import KubeconfigError, redacted_summary
from clusters.models import Cluster, ConnectionTest
from dnsportal.errors import PortalError
from dnsportal.roles import ADMINISTER, OPERATE, VIEW, role_required

PAGE_SIZE = 50


@role_required(VIEW)
def cluster_list(request: HttpRequest) -> HttpResponse:
    clusters = Cluster.objects.all()
    q = request.GET.get("q", "").strip()
    if q:
        clusters = clusters.filter(
            Q(name__icontains=q) | Q(display_name__icontains=q) | Q(server__icontains=q)
        )
    health = request.GET.get("health", "")
    if health in Cluster.Health.values:
        clusters = clusters.filter(health=health)
    clusters = clusters.annotate(endpoint_count=Count("endpoints", distinct=True)).order_by("name")
    page = Paginator(clusters, PAGE_SIZE).get_page(request.GET.get("page"))
    ctx = {
        "page": page,
        "q": q,
        "health": health,
        "healths": Cluster.Health.choices,
        "any_cluster": Cluster.objects.exists(),
    }
    return render(request, "clusters/cluster_list.html", ctx)


@require_http_methods(["GET", "POST"])
@role_required(ADMINISTER)
def cluster_register(request: HttpRequest) -> HttpResponse:
    form = ClusterRegisterForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            cluster = services.cluster_register(
                actor=request.user,
                name=data["name"],
                display_name=data["display_name"],
                description=data["description"],
                labels=data["labels"],
                creds=form.credentials(),
            )
        except (PortalError, KubeconfigError) as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"Cluster {cluster.name} registered; its first check is running.")
            return redirect("clusters:cluster-detail", name=cluster.name)
    status = 422 if form.errors else 200
    return render(request, "clusters/cluster_register.html", {"form": form}, status=status)


@require_POST
@role_required(ADMINISTER)
def kubeconfig_parse(request: HttpRequest) -> HttpResponse:
    """htmx: while the operator pastes, show the contexts to pick and what was understood, or problems."""
    form = CredentialsForm(request.POST, request.FILES or None)
    form.is_valid()
    summary = redacted_summary(form.access) if hasattr(form, "access") else None
    ctx = {"form": form, "summary": summary, "live": True}
    return render(request, "clusters/partials/kubeconfig_summary.html", ctx)


@require_POST
@role_required(ADMINISTER)
def connection_test_create(request: HttpRequest) -> HttpResponse:
    form = CredentialsForm(request.POST, request.FILES or None)
    if not form.is_valid():
        return render(request, "clusters/partials/connection_test.html", {"form": form}, status=422)
    test = services.connection_test_create(actor=request.user, creds=form.credentials())
    return render(request, "clusters/partials/connection_test.html", {"test": test})


@role_required(ADMINISTER)
def connection_test_detail(request: HttpRequest, test_id: int) -> HttpResponse:
    test = get_object_or_404(ConnectionTest, id=test_id, created_by=request.user)
    return render(request, "clusters/partials/connection_test.html", {"test": test})


@role_required(VIEW)
def cluster_detail(request: HttpRequest, name: str) -> HttpResponse:
    cluster = get_object_or_404(Cluster, name=name)
    ctx = {
        "cluster": cluster,
        "checks": cluster.checks.all()[:20],
        "endpoint_count": cluster.endpoints.count(),
        "private_count": cluster.endpoints.filter(has_private_target=True).count(),
        "error_objects": cluster.discovered.exclude(errors=[]).count(),
        "options_form": SourceOptionsForm(initial={"options": format_flag_lines(cluster.source_options)}),
    }
    return render(request, "clusters/cluster_detail.html", ctx)


@require_POST
@role_required(ADMINISTER)
def cluster_source_options(request: HttpRequest, name: str) -> HttpResponse:
    cluster = get_object_or_404(Cluster, name=name)
    form = SourceOptionsForm(request.POST)
    if form.is_valid():
        services.cluster_set_source_options(
            actor=request.user, cluster_id=cluster.id, options=form.cleaned_data["options"]
        )
        messages.success(
            request, f"Source options of {cluster.name} saved; its endpoints are being recomputed."
        )
        return redirect("clusters:cluster-detail", name=cluster.name)
    ctx = {
        "cluster": cluster,
        "checks": cluster.checks.all()[:20],
        "endpoint_count": cluster.endpoints.count(),
        "private_count": cluster.endpoints.filter(has_private_target=True).count(),
        "error_objects": cluster.discovered.exclude(errors=[]).count(),
        "options_form": form,
    }
    return render(request, "clusters/cluster_detail.html", ctx, status=422)


@require_http_methods(["GET", "POST"])
@role_required(ADMINISTER)
def cluster_edit(request: HttpRequest, name: str) -> HttpResponse:
    cluster = get_object_or_404(Cluster, name=name)
    initial = {
        "display_name": cluster.display_name,
        "description": cluster.description,
        "labels": format_labels(cluster.labels),
        "write_back_prefix": cluster.write_back_prefix,
        "context": cluster.context,
    }
    form = ClusterEditForm(request.POST or None, request.FILES or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        creds = form.credentials() if data.get("kubeconfig", "").strip() else None
        services.cluster_update(
            actor=request.user,
            cluster_id=cluster.id,
            display_name=data["display_name"],
            description=data["description"],
            labels=data["labels"],
            creds=creds,
            write_back_prefix=data["write_back_prefix"],
        )
        messages.success(
            request, f"Cluster {cluster.name} saved" + ("; checking the new kubeconfig." if creds else ".")
        )
        return redirect("clusters:cluster-detail", name=cluster.name)
    status = 422 if form.errors else 200
    return render(request, "clusters/cluster_edit.html", {"form": form, "cluster": cluster}, status=status)


@require_POST
@role_required(OPERATE)
def cluster_check(request: HttpRequest, name: str) -> HttpResponse:
    cluster = get_object_or_404(Cluster, name=name)
    services.cluster_check_request(actor=request.user, cluster_id=cluster.id)
    messages.info(request, f"Checking {cluster.name}; the result appears below in a few seconds.")
    return redirect("clusters:cluster-detail", name=cluster.name)


@require_POST
@role_required(ADMINISTER)
def cluster_set_enabled(request: HttpRequest, name: str) -> HttpResponse:
    cluster = get_object_or_404(Cluster, name=name)
    enabled = request.POST.get("enabled") == "1"
    services.cluster_set_enabled(actor=request.user, cluster_id=cluster.id, enabled=enabled)
    messages.success(request, f"Cluster {cluster.name} {'enabled' if enabled else 'disabled'}.")
    return redirect("clusters:cluster-detail", name=cluster.name)


@require_http_methods(["GET", "POST"])
@role_required(ADMINISTER)
def cluster_delete(request: HttpRequest, name: str) -> HttpResponse:
    cluster = get_object_or_404(Cluster, name=name)
    error = ""
    if request.method == "POST":
        try:
            services.cluster_delete(
                actor=request.user,
                cluster_id=cluster.id,
                confirm_name=request.POST.get("confirm_name", "").strip(),
            )
        except PortalError as exc:
            error = str(exc)
        else:
            messages.success(
                request, f"Cluster {name} deleted. Its DNS records stay until a reviewed change removes them."
            )
            return redirect("clusters:cluster-list")
    return render(
        request,
        "clusters/cluster_delete.html",
        {
            "cluster": cluster,
            "error": error,
            "endpoints": cluster.endpoints.order_by("dns_name")[:500],
            "endpoint_count": cluster.endpoints.count(),
        },
        status=422 if error else 200,
    )
