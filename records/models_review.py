"""What every reviewed thing records of its review (policy proposals, traffic shift plans, failover drills):
who proposed it and when, who approved it (a second person: `records.changesets.four_eyes`), when, and
what the reviewer said."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class Reviewed(models.Model):
    proposed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    approved_at = models.DateTimeField(null=True, blank=True)
    review_comment = models.TextField(blank=True)

    class Meta:
        abstract = True
