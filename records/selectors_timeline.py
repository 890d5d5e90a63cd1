"""A hostname's timeline (reads): every policy change, shift step, gate result and failover drill, newest
first, with the measured split over time for the chart (and the latest drill's answers over time)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.urls import reverse
from django.utils import timezone

from records import shift
from records.drill_chart import drill_svg
from records.models import PolicyProposal, ShiftPlan, ShiftStep, Verification
from records.timeline_chart import split_timeline_svg


@dataclass
class Event:
    at: datetime
    kind: str  # "policy", "shift", "step", "gate", "measure", "drill"
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
    drill_chart, live_drill = _drills(name, events)
    events.sort(key=lambda e: e.at, reverse=True)
    intended.sort(key=lambda p: p[0])
    chart = split_timeline_svg(measured, intended, f"The split of {name} over time", now=timezone.now())
    live = ShiftPlan.objects.filter(hostname=name, status__in=shift.ACTIVE).exists() or live_drill
    return {
        "events": events[:limit],
        "chart": chart,
        "live": live,
        "measurements": len(measured),
        "drill_chart": drill_chart,
    }


def _drills(name: str, events: list[Event]) -> tuple[str, bool]:
    """The name's failover drills as events (proposed, approved, the primary marked and restored, the end
    with its times), the chart of the latest one that sampled answers, and whether one is under way."""
    from records import drill
    from records.models import FailoverDrill

    chart, live = "", False
    for d in FailoverDrill.objects.filter(hostname=name).select_related("proposed_by", "approved_by"):
        url = reverse("records:drill-detail", args=[d.id])
        who = d.proposed_by.username if d.proposed_by else "?"
        events.append(Event(d.created_at, "drill", f"Failover drill #{d.id} proposed by {who}", url))
        if d.approved_at:
            by = d.approved_by.username if d.approved_by else "?"
            events.append(Event(d.approved_at, "drill", f"Failover drill #{d.id} approved by {by}", url))
        if d.failed_at:
            events.append(
                Event(d.failed_at, "drill", f"Failover drill #{d.id}: primary marked unhealthy", url)
            )
        if d.restored_at:
            events.append(Event(d.restored_at, "drill", f"Failover drill #{d.id}: primary restored", url))
        if d.finished_at and d.status in (drill.DONE, drill.FAILED):
            tail = f": {d.message}" if d.message else ""
            ok = d.status == drill.DONE
            events.append(Event(d.finished_at, "drill", f"Failover drill #{d.id} {d.status}{tail}", url, ok))
        elif d.finished_at:
            events.append(
                Event(d.finished_at, "drill", f"Failover drill #{d.id} {d.get_status_display().lower()}", url)
            )
        live = live or (d.status in drill.ACTIVE and d.status != drill.PENDING)
        if not chart and d.samples:  # newest first: the latest drill that sampled answers
            chart = drill_chart_of(d)
    return chart, live


def drill_chart_of(d: Any) -> str:
    """The drill's chart: each nameserver's side over time, with the fail and restore moments marked."""
    from records import drill

    points = drill.timeline_points(d.samples, frozenset(d.primary), frozenset(d.secondary))
    marks = []
    if d.started_at and d.failed_at:
        t_fail = (d.failed_at - d.started_at).total_seconds()
        marks.append((t_fail, "primary marked unhealthy"))
        if d.switch_seconds is not None:
            marks.append((t_fail + d.switch_seconds, "all switched"))
    if d.started_at and d.restored_at:
        t_back = (d.restored_at - d.started_at).total_seconds()
        marks.append((t_back, "restored"))
        if d.return_seconds is not None:
            marks.append((t_back + d.return_seconds, "all back"))
    return drill_svg(points, marks, f"What each nameserver answered for {d.hostname} during drill #{d.id}")
