"""The traffic-shift pages: plan a shift on a hostname, its page (steps, gates, live while it runs), and the
review and operator actions, each one service call (records.shifts)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from dnsportal.errors import PortalError
from dnsportal.roles import APPROVE, OPERATE, VIEW, has_role_perm, role_required
from records import services, shift, shifts
from records.models import ChangeSet, ShiftPlan, Zone
from records.traffic import WEIGHTED
from records.views_review import ReviewedPage


class ShiftForm(forms.Form):
    steps = forms.CharField(
        label="Steps",
        help_text="One split per step, weights in the clusters' order, e.g. 90/10, 75/25, 50/50, 0/100.",
        widget=forms.TextInput(attrs={"size": 40}),
    )
    hold_seconds = forms.IntegerField(label="Hold each step (seconds)", min_value=1)
    on_failure = forms.ChoiceField(label="When a gate fails", choices=ShiftPlan.OnFailure.choices)
    probe_port = forms.IntegerField(
        label="HTTP probe port",
        required=False,
        min_value=1,
        max_value=65535,
        help_text="Empty: no probe gate.",
    )
    probe_path = forms.CharField(label="Path", required=False, initial="/")
    probe_n = forms.IntegerField(label="Requests", required=False, initial=200, min_value=10, max_value=10000)
    probe_status = forms.IntegerField(label="Expected status", required=False, initial=200)
    probe_max_latency_ms = forms.IntegerField(
        label="Latency bound (ms)",
        required=False,
        min_value=1,
        max_value=60000,
        help_text="Each cluster's p95 response time must stay within it. Empty: no bound.",
    )

    def probe(self) -> dict[str, Any] | None:
        d = self.cleaned_data
        if not d.get("probe_port"):
            return None
        return {
            "port": d["probe_port"],
            "path": d.get("probe_path") or "/",
            "n": d.get("probe_n") or 200,
            "status": d.get("probe_status") or 200,
            "max_latency_ms": d.get("probe_max_latency_ms") or 0,
        }


def _name(dns_name: str) -> str:
    return dns_name.lower().rstrip(".")


def _zone(name: str) -> Zone | None:
    zones = services.zones_for_names([name])
    # the most specific zone holding the name, as the policy editor chooses
    return min(zones, key=lambda z: (-len(z.name), z.private, z.id), default=None)


def _suggested(clusters: list[str], start: dict[str, int]) -> str:
    if len(clusters) < 2:
        return ""
    # everything to the cluster that has the least now: the usual blue/green move
    now = shift.percent(start)
    to = min(clusters, key=lambda c: (now[c], c))
    target = {c: (100 if c == to else 0) for c in clusters}
    return ", ".join(shift.short(s) for s in shift.interpolate(start, target, 4))


@require_http_methods(["GET", "POST"])
@role_required(VIEW)
def shift_new(request: HttpRequest, dns_name: str) -> HttpResponse:
    """The plan form: steps from the split now, a hold per step, what a failed gate does, the probe gate."""
    name = _name(dns_name)
    zone = _zone(name)
    clusters, start, policy = shifts.start_split(name)
    if zone is None or not clusters:
        raise Http404(f"No cluster publishes {name} in a zone the portal manages.")
    ttl = shifts.record_ttl(zone, name)
    initial = {
        "steps": _suggested(clusters, start),
        "hold_seconds": max(ttl, shifts.min_hold_seconds(), 60),
        "on_failure": ShiftPlan.OnFailure.ROLLBACK,
    }
    form = ShiftForm(request.POST or None, initial=initial)
    error, status = "", 200
    if request.method == "POST":
        if not has_role_perm(request.user, OPERATE):
            return render(
                request, "403.html", {"reason": "Planning a traffic shift needs the operator role."}, 403
            )
        if form.is_valid():
            try:
                splits = shift.parse_steps(form.cleaned_data["steps"], clusters)
                plan = shifts.shift_propose(
                    actor=request.user,
                    zone_id=zone.id,
                    hostname=name,
                    splits=splits,
                    hold_seconds=form.cleaned_data["hold_seconds"],
                    on_failure=form.cleaned_data["on_failure"],
                    probe=form.probe(),
                )
            except (PortalError, ValueError) as exc:
                error = str(exc)
            else:
                messages.success(request, f"Traffic shift #{plan.id} saved: a second person approves it.")
                return redirect("records:shift-detail", plan_id=plan.id)
        status = 422
    ctx = {
        "dns_name": name,
        "zone": zone,
        "clusters": clusters,
        "start": shift.short(start),
        "policy_now": policy.describe() if policy.kind != WEIGHTED else "",
        "ttl": ttl,
        "min_hold": shifts.min_hold_seconds(),
        "form": form,
        "error": error,
        "active": shifts.active_plan(name),
    }
    return render(request, "records/shift_new.html", ctx, status=status)


def _plan(plan_id: int) -> ShiftPlan:
    try:
        rows = ShiftPlan.objects.select_related("zone", "proposed_by", "approved_by")
        # select_related ignores Zone's manager: its snapshot (the last applied endpoints) stays out
        return rows.defer(*(f"zone__{f}" for f in Zone.SNAPSHOT_FIELDS)).get(id=plan_id)
    except ShiftPlan.DoesNotExist:
        raise Http404("No such traffic shift.") from None


def _context(request: HttpRequest, plan: ShiftPlan, error: str = "") -> dict[str, Any]:
    pending = plan.status == ShiftPlan.Status.PENDING
    own = plan.proposed_by_id is not None and plan.proposed_by_id == request.user.id
    operator = has_role_perm(request.user, OPERATE)
    snapshots = (f"proposal__changeset__{f}" for f in ChangeSet.SNAPSHOT_FIELDS)
    steps = list(plan.steps.select_related("proposal__changeset").defer(*snapshots).order_by("index"))
    return {
        "plan": plan,
        "steps": steps,
        "start": shift.short(plan.start),
        "error": error,
        "can_review": pending and has_role_perm(request.user, APPROVE) and not own,
        "own": pending and own,
        "can_pause": operator and plan.status in (shift.APPROVED, shift.RUNNING),
        "can_resume": operator and plan.status == shift.PAUSED,
        "can_abort": operator and plan.status in (shift.APPROVED, shift.RUNNING, shift.PAUSED),
        "live": plan.status in shift.ACTIVE and plan.status != shift.PENDING,
    }


@require_GET
@role_required(VIEW)
def shift_detail(request: HttpRequest, plan_id: int) -> HttpResponse:
    """The plan and its steps; htmx (the page polling while it runs) gets the live part only."""
    return PAGE.show(request, plan_id)


PAGE = ReviewedPage(
    page="records/shift_detail.html",
    live="records/partials/shift_live.html",
    load=_plan,
    context=_context,
    url="records:shift-detail",
    kwarg="plan_id",
)


def _act(request: HttpRequest, plan_id: int, action, done: str) -> HttpResponse:
    return PAGE.act(request, plan_id, action, done)


@require_POST
@role_required(APPROVE)
def shift_approve(request: HttpRequest, plan_id: int) -> HttpResponse:
    comment = request.POST.get("comment", "").strip()
    return _act(
        request,
        plan_id,
        lambda: shifts.shift_approve(plan_id=plan_id, approver=request.user, comment=comment),
        f"Traffic shift #{plan_id} approved: its first step is being written to the clusters.",
    )


@require_POST
@role_required(APPROVE)
def shift_reject(request: HttpRequest, plan_id: int) -> HttpResponse:
    comment = request.POST.get("comment", "").strip()
    return _act(
        request,
        plan_id,
        lambda: shifts.shift_reject(plan_id=plan_id, reviewer=request.user, comment=comment),
        f"Traffic shift #{plan_id} rejected.",
    )


@require_POST
@role_required(OPERATE)
def shift_pause(request: HttpRequest, plan_id: int) -> HttpResponse:
    return _act(
        request,
        plan_id,
        lambda: shifts.shift_pause(plan_id=plan_id, actor=request.user),
        f"Traffic shift #{plan_id} paused: a step under way finishes, then nothing moves.",
    )


@require_POST
@role_required(OPERATE)
def shift_resume(request: HttpRequest, plan_id: int) -> HttpResponse:
    return _act(
        request,
        plan_id,
        lambda: shifts.shift_resume(plan_id=plan_id, actor=request.user),
        f"Traffic shift #{plan_id} resumed.",
    )


@require_POST
@role_required(OPERATE)
def shift_abort(request: HttpRequest, plan_id: int) -> HttpResponse:
    comment = request.POST.get("comment", "").strip()
    return _act(
        request,
        plan_id,
        lambda: shifts.shift_abort(plan_id=plan_id, actor=request.user, comment=comment),
        f"Traffic shift #{plan_id} aborted: the name returns to its starting split.",
    )


@require_GET
@role_required(VIEW)
def hostname_timeline(request: HttpRequest, dns_name: str) -> HttpResponse:
    """Every policy change, shift step, gate result and measurement of a name, with the split over time;
    live (htmx, every 2 s) while a shift runs on it."""
    from records.selectors_timeline import hostname_timeline as timeline

    name = _name(dns_name)
    ctx = {"dns_name": name, **timeline(name)}
    if request.htmx:
        return render(request, "records/partials/hostname_timeline.html", ctx)
    return render(request, "records/hostname_timeline.html", ctx)
