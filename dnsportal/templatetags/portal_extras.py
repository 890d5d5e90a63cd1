"""Template filters for values the portal stores as JSON or epoch seconds."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from django import template

register = template.Library()


@register.filter
def pretty_json(value: Any) -> str:
    """A JSON value as indented JSON (the audit log's before and after), "—" when there is none."""
    if value in (None, "", {}, []):
        return "—"
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


@register.filter
def epoch_datetime(value: float | int | str | None) -> datetime | None:
    """Epoch seconds (what Redis holds for the schedules) as an aware datetime, for `date` and `timesince`."""
    if value in (None, ""):
        return None
    try:
        return datetime.fromtimestamp(float(value), tz=UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return None


@register.filter
def duration(seconds: float | int | str | None) -> str:
    """An interval in seconds as people say it: "45 s", "5 min", "1 h 30 min", "1 day"."""
    try:
        total = int(float(seconds))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return "—"
    if total < 60:
        return f"{total} s"
    parts = []
    for unit, size in (("day", 86400), ("h", 3600), ("min", 60), ("s", 1)):
        count, total = divmod(total, size)
        if count:
            parts.append(f"{count} {unit}{'s' if unit == 'day' and count > 1 else ''}")
    return " ".join(parts[:2])
