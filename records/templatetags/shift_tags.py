"""The hostname page's traffic-shift card: the plan running on the name (or the last ones) and the way to plan
one. A tag, so the hostname page's view stays as it is."""

from __future__ import annotations

from typing import Any

from django import template

from records.models import ShiftPlan

register = template.Library()


@register.inclusion_tag("records/partials/hostname_shift.html", takes_context=True)
def hostname_shift(context: Any, dns_name: str) -> dict[str, Any]:
    plans = list(ShiftPlan.objects.filter(hostname=dns_name).order_by("-created_at")[:5])
    return {
        "dns_name": dns_name,
        "plans": plans,
        "perms": context.get("perms"),
        "served": bool(context.get("rows")),
    }
