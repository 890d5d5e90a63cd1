"""Failover drills (records.drill is their pure core): the primary of a failover name marked unhealthy on
purpose, the nameservers' answers sampled until they switch to the secondary and, once the primary is
restored, until they return; reviewed like any change, recorded with every sample.

Imported by records.models, so Django registers them with the records app.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from records import drill
from records.models_review import Reviewed


class FailoverDrill(Reviewed):
    class Status(models.TextChoices):
        PENDING = drill.PENDING, "Pending review"
        APPROVED = drill.APPROVED, "Approved"
        FAILING = drill.FAILING, "Primary marked unhealthy"
        SWITCHED = drill.SWITCHED, "Switched to the secondary"
        RESTORING = drill.RESTORING, "Primary restored, waiting for the return"
        DONE = drill.DONE, "Done"
        FAILED = drill.FAILED, "Failed"
        REJECTED = drill.REJECTED, "Rejected"
        CANCELLED = drill.CANCELLED, "Cancelled"

    class Action(models.TextChoices):
        HEALTH_CHECK = "health_check", "Invert the portal's Route53 health check"
        DEMO_HOOK = "demo_hook", "The demo page server's health switch (tools/demo_http)"
        URL = "url", "POST to the operator's fail and restore URLs"

    zone = models.ForeignKey("records.Zone", on_delete=models.CASCADE, related_name="drills")
    hostname = models.CharField(max_length=253, db_index=True, help_text="Lower case, no trailing dot.")
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PENDING, db_index=True)
    action = models.CharField(max_length=12, choices=Action.choices)
    rdtype = models.CharField(max_length=5, default="A")
    primary = models.JSONField(help_text="The primary record set's values when proposed.")
    secondary = models.JSONField(help_text="The secondary record set's values when proposed.")
    health_check_id = models.CharField(max_length=300, blank=True, help_text="The primary's health check.")
    fail_url = models.CharField(max_length=500, blank=True)
    restore_url = models.CharField(max_length=500, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(
        null=True, blank=True, help_text="When the primary was marked unhealthy."
    )
    restored_at = models.DateTimeField(null=True, blank=True, help_text="When the primary was restored.")
    finished_at = models.DateTimeField(null=True, blank=True)
    # True from the moment the fail action may have taken effect until the restore action succeeded: what
    # the sweep looks at when the worker running the drill died.
    primary_marked = models.BooleanField(default=False)
    switch_seconds = models.FloatField(null=True, blank=True, help_text="Fail action to every NS switched.")
    return_seconds = models.FloatField(null=True, blank=True, help_text="Restore action to every NS back.")
    measured = models.BooleanField(null=True, blank=True, help_text="False: answers could not be asked.")
    # [{"t": seconds from started_at, "phase": "baseline"|"fail"|"restore", "answers": {ns: [values]}}]
    samples = models.JSONField(default=list, blank=True)
    # [{"t", "what", "ok", "detail"}]: the actions taken and read back (inverted, restored, hook answers)
    events = models.JSONField(default=list, blank=True)
    message = models.TextField(blank=True)
    lease_until = models.DateTimeField(null=True, blank=True, help_text="The running worker's heartbeat.")

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # One drill at a time on a name: the database refuses the second.
            models.UniqueConstraint(
                fields=["hostname"],
                condition=Q(status__in=sorted(drill.ACTIVE)),
                name="records_one_active_drill_per_hostname",
            )
        ]

    def __str__(self) -> str:
        return f"failover drill #{self.id} of {self.hostname}"

    @property
    def is_active(self) -> bool:
        return self.status in drill.ACTIVE

    def describe(self) -> str:
        return f"primary {', '.join(self.primary)} → secondary {', '.join(self.secondary)}"

    def audit_view(self) -> dict:
        return {
            "hostname": self.hostname,
            "status": self.status,
            "action": self.action,
            "primary": self.primary,
            "secondary": self.secondary,
            "health_check_id": self.health_check_id,
            "fail_url": self.fail_url,
            "restore_url": self.restore_url,
        }
