"""The failover-drill pages: propose a drill on a failover name (or read why not), its page (status, who,
the switch-over and return times, a chart of each nameserver's answers over time, live while it runs), and
the review actions, each one service call (records.drills)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from dnsportal.errors import PortalError
from dnsportal.roles import APPROVE, OPERATE, VIEW, has_role_perm, role_required
from records import drill, drills, services
from records.models import FailoverDrill, Zone
from records.selectors_timeline import drill_chart_of as chart_of
from records.views_review import ReviewedPage


class DrillForm(forms.Form):
    fail_url = forms.CharField(
        label="Fail URL (optional)",
        required=False,
        max_length=500,
        help_text="PowerDNS only: the drill POSTs {drill, hostname, primary, action: fail} here to make the "
        "primary's health check fail. Empty: the demo page server's health switch on each primary address.",
    )
    restore_url = forms.CharField(
        label="Restore URL (optional)",
        required=False,
        max_length=500,
        help_text="POSTed {…, action: restore} when the drill restores the primary (always, even after a "
        "failure).",
    )


def _zone(name: str) -> Zone | None:
    zones = services.zones_for_names([name])
    return min(zones, key=lambda z: (-len(z.name), z.private, z.id), default=None)


@require_http_methods(["GET", "POST"])
@role_required(VIEW)
def drill_new(request: HttpRequest, dns_name: str) -> HttpResponse:
    """The drill form: the failover pair the zone serves, how the primary is marked unhealthy, or the reason
    a drill may not run now."""
    name = dns_name.lower().rstrip(".")
    zone = _zone(name)
    if zone is None:
        raise Http404(f"No zone the portal manages holds {name}.")
    refusal, target = drills.refusal_now(zone, name)
    form = DrillForm(request.POST or None)
    error, status = "", 200
    if request.method == "POST":
        if not has_role_perm(request.user, OPERATE):
            return render(
                request, "403.html", {"reason": "Proposing a failover drill needs the operator role."}, 403
            )
        if form.is_valid():
            try:
                d = drills.drill_propose(
                    actor=request.user,
                    zone_id=zone.id,
                    hostname=name,
                    fail_url=form.cleaned_data["fail_url"],
                    restore_url=form.cleaned_data["restore_url"],
                )
            except PortalError as exc:
                error = str(exc)
            else:
                messages.success(request, f"Failover drill #{d.id} saved: a second person approves it.")
                return redirect("records:drill-detail", drill_id=d.id)
        status = 422
    ctx = {
        "dns_name": name,
        "zone": zone,
        "target": target,
        "refusal": refusal,
        "form": form,
        "error": error,
        "powerdns": zone.account.is_powerdns,
    }
    return render(request, "records/drill_new.html", ctx, status=status)


def _drill(drill_id: int) -> FailoverDrill:
    try:
        rows = FailoverDrill.objects.select_related("zone", "proposed_by", "approved_by")
        # select_related ignores Zone's manager: its snapshot (the last applied endpoints) stays out
        return rows.defer(*(f"zone__{f}" for f in Zone.SNAPSHOT_FIELDS)).get(id=drill_id)
    except FailoverDrill.DoesNotExist:
        raise Http404("No such failover drill.") from None


def _context(request: HttpRequest, d: FailoverDrill, error: str = "") -> dict[str, Any]:
    pending = d.status == FailoverDrill.Status.PENDING
    own = d.proposed_by_id is not None and d.proposed_by_id == request.user.id
    return {
        "drill": d,
        "error": error,
        "chart": chart_of(d) if d.samples else "",
        "can_review": pending and has_role_perm(request.user, APPROVE) and not own,
        "own": pending and own,
        "can_cancel": has_role_perm(request.user, OPERATE) and d.status in (drill.PENDING, drill.APPROVED),
        "live": d.status in drill.ACTIVE and d.status != drill.PENDING,
    }


@require_GET
@role_required(VIEW)
def drill_detail(request: HttpRequest, drill_id: int) -> HttpResponse:
    """The drill; htmx (the page polling while it runs) gets the live part only."""
    return PAGE.show(request, drill_id)


PAGE = ReviewedPage(
    page="records/drill_detail.html",
    live="records/partials/drill_live.html",
    load=_drill,
    context=_context,
    url="records:drill-detail",
    kwarg="drill_id",
)


def _act(request: HttpRequest, drill_id: int, action, done: str) -> HttpResponse:
    return PAGE.act(request, drill_id, action, done)


@require_POST
@role_required(APPROVE)
def drill_approve(request: HttpRequest, drill_id: int) -> HttpResponse:
    comment = request.POST.get("comment", "").strip()
    return _act(
        request,
        drill_id,
        lambda: drills.drill_approve(drill_id=drill_id, approver=request.user, comment=comment),
        f"Failover drill #{drill_id} approved: the primary is marked unhealthy as soon as a worker runs it.",
    )


@require_POST
@role_required(APPROVE)
def drill_reject(request: HttpRequest, drill_id: int) -> HttpResponse:
    comment = request.POST.get("comment", "").strip()
    return _act(
        request,
        drill_id,
        lambda: drills.drill_reject(drill_id=drill_id, reviewer=request.user, comment=comment),
        f"Failover drill #{drill_id} rejected.",
    )


@require_POST
@role_required(OPERATE)
def drill_cancel(request: HttpRequest, drill_id: int) -> HttpResponse:
    comment = request.POST.get("comment", "").strip()
    return _act(
        request,
        drill_id,
        lambda: drills.drill_cancel(drill_id=drill_id, actor=request.user, comment=comment),
        f"Failover drill #{drill_id} cancelled.",
    )
