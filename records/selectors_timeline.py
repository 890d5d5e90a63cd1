"""A hostname's timeline (reads): every policy change, shift step, gate result (and, later, drill), newest
first, with the measured split over time for the chart."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.urls import reverse
from django.utils import timezone

from records import shift
from records.models import PolicyProposal, ShiftPlan, ShiftStep, Verification
from records.timeline_chart import split_timeline_svg


@dataclass
class Event:
    at: datetime
    kind: str  # "policy", "shift", "step", "gate", "measure"
    text: str
    url: str = ""
    ok: bool | None = None  # a gate or a measurement: passed or not


def hostname_timeline(name: str, *, limit: int = 200) -> dict[str, Any]:
    events: list[Event] = []
    for p in PolicyProposal.objects.filter(hostname=name).select_related("proposed_by", "approved_by"):
        url = reverse("records:proposal-detail", args=[p.id])
        who = p.proposed_by.username if p.proposed_by else "?"
        events.append(Event(p.created_at, "policy", f"Policy proposal #{p.id} by {who}: {p.summary}", url))
        if p.finished_at and p.status == PolicyProposal.Status.WRITTEN:
            events.append(
                Event(p.finished_at, "policy", f"Policy proposal #{p.id} written to the clusters", url)
            )
    intended: list[tuple[datetime, dict[str, float]]] = []
    for plan in ShiftPlan.objects.filter(hostname=name).select_related("proposed_by", "approved_by"):
        url = reverse("records:shift-detail", args=[plan.id])
        who = plan.proposed_by.username if plan.proposed_by else "?"
        events.append(
            Event(
                plan.created_at, "shift", f"Traffic shift #{plan.id} planned by {who}: {plan.describe()}", url
            )
        )
        if plan.approved_at:
            by = plan.approved_by.username if plan.approved_by else "?"
            events.append(Event(plan.approved_at, "shift", f"Traffic shift #{plan.id} approved by {by}", url))
        if plan.finished_at:
            tail = f": {plan.message}" if plan.message else ""
            events.append(
                Event(
                    plan.finished_at,
                    "shift",
                    f"Traffic shift #{plan.id} {plan.get_status_display().lower()}{tail}",
                    url,
                )
            )
    steps = ShiftStep.objects.filter(plan__hostname=name).select_related("plan")
    for s in steps:
        url = reverse("records:shift-detail", args=[s.plan_id])
        head = f"Shift #{s.plan_id} {s.get_kind_display().lower()} {s.index} ({shift.short(s.split)})"
        if s.applied_at:
            events.append(Event(s.applied_at, "step", f"{head} applied", url))
            intended.append((s.applied_at, shift.percent(s.split)))
        for g in s.gate_results:
            events.append(
                Event(
                    s.gated_at or s.finished_at or s.applied_at,
                    "gate",
                    f"{head}: {g['gate']} gate — {g['message']}",
                    url,
                    g["ok"],
                )
            )
    measured: list[tuple[datetime, dict[str, float]]] = []
    rows = Verification.objects.filter(hostname=name, kind=Verification.Kind.DISTRIBUTION).exclude(
        finished_at__isnull=True
    )
    for v in rows.order_by("finished_at")[:limit]:
        verdict = v.report.get("verdict") or {}
        shares = {r["label"]: 100 * float(r["observed"]) for r in verdict.get("rows", [])}
        if shares:
            measured.append((v.finished_at, shares))
        events.append(
            Event(
                v.finished_at,
                "measure",
                f"Split measured: {v.message}",
                reverse("records:verification-detail", args=[v.id]),
                v.status == Verification.Status.OK,
            )
        )
    events.sort(key=lambda e: e.at, reverse=True)
    intended.sort(key=lambda p: p[0])
    chart = split_timeline_svg(measured, intended, f"The split of {name} over time", now=timezone.now())
    live = ShiftPlan.objects.filter(hostname=name, status__in=shift.ACTIVE).exists()
    return {"events": events[:limit], "chart": chart, "live": live, "measurements": len(measured)}
