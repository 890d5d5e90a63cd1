"""The one helper every write uses to leave its audit row."""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import models
from django.db.models import Model

from dnsportal.logging import job_id_var, request_id_var
from dnsportal.models import AuditEntry


@dataclass(frozen=True)
class Channel:
    """How the current request reached the portal, when not through its pages: the API, and which token."""

    via: str = "api"
    token_id: int | None = None
    token_name: str = ""


# Set by the API's views for the duration of a request; every audit row written meanwhile carries it.
channel_var: ContextVar[Channel | None] = ContextVar("dnsportal_channel", default=None)


def audit_record(
    *,
    actor: AbstractBaseUser | None,
    action: str,
    obj: Model | None = None,
    object_type: str = "",
    object_id: str | int = "",
    object_repr: str = "",
    before: Any = None,
    after: Any = None,
) -> AuditEntry:
    """Append one audit entry; call it inside the transaction of the write it describes.

    `actor` None means the system (a scheduled or discovery job). The request id, or the job id when called
    from a job, ties the entry to the log lines of the same work.
    """
    if obj is not None:
        object_type = object_type or obj._meta.label_lower
        object_id = object_id or obj.pk
        object_repr = object_repr or str(obj)
    user = actor if actor is not None and getattr(actor, "is_authenticated", False) else None
    context_id = request_id_var.get() or (f"job-{job_id_var.get()}" if job_id_var.get() else "")
    return AuditEntry.objects.create(
        actor=user,
        actor_name=user.get_username() if user else "system",
        action=action,
        object_type=object_type,
        object_id=str(object_id),
        object_repr=object_repr[:200],
        before=before,
        after=after,
        request_id=context_id,
        via=channel.via if (channel := channel_var.get()) else "",
        api_token_id=channel.token_id if channel else None,
        api_token_name=channel.token_name if channel else "",
    )


def snapshot(obj: Model, fields: list[str]) -> dict[str, Any]:
    """The named fields of a row as JSON-able values, for an audit entry's before/after."""
    out: dict[str, Any] = {}
    for name in fields:
        value = getattr(obj, name)
        if isinstance(value, models.Model):
            value = value.pk
        elif hasattr(value, "isoformat"):
            value = value.isoformat()
        out[name] = value
    return out
