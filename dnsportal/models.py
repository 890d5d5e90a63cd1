"""The portal's own rows: the append-only audit log and the job runs users can see."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class AuditImmutableError(Exception):
    pass


class AuditQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise AuditImmutableError("The audit log is append-only: entries cannot be changed.")

    def delete(self):
        raise AuditImmutableError("The audit log is append-only: entries cannot be deleted.")

    _raw_delete = delete


class AuditEntry(models.Model):
    """Who did what to which object, with the object before and after (as JSON).

    Append-only three times over: the model refuses save() of an existing row and delete(), its queryset
    refuses update() and delete(), and on PostgreSQL a trigger refuses UPDATE and DELETE from anything at all.
    """

    at = models.DateTimeField(default=timezone.now, db_index=True)
    # PROTECT: a user who appears in the audit log is deactivated, never deleted: the trail keeps its actor.
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT)
    actor_name = models.CharField(max_length=150, help_text="Username, or 'system' for scheduled work.")
    action = models.CharField(max_length=100, db_index=True)
    object_type = models.CharField(max_length=100, db_index=True)
    object_id = models.CharField(max_length=64, blank=True, db_index=True)
    object_repr = models.CharField(max_length=200, blank=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    request_id = models.CharField(max_length=64, blank=True, db_index=True)
    # "api" when the write came through the REST API (with the token, when a token authenticated it).
    via = models.CharField(max_length=8, blank=True)
    api_token_id = models.PositiveBigIntegerField(null=True, blank=True)
    api_token_name = models.CharField(max_length=100, blank=True)

    objects = AuditQuerySet.as_manager()

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name_plural = "audit entries"

    def __str__(self) -> str:
        return (
            f"{self.at:%Y-%m-%d %H:%M:%S} {self.actor_name} {self.action} {self.object_type}#{self.object_id}"
        )

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise AuditImmutableError("The audit log is append-only: entries cannot be changed.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AuditImmutableError("The audit log is append-only: entries cannot be deleted.")


class JobRun(models.Model):
    """One run of a background job, created before it is enqueued, so a user always sees what happened."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    name = models.CharField(max_length=100, db_index=True)
    queue = models.CharField(max_length=30)
    kwargs = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING, db_index=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    actor_name = models.CharField(max_length=150, default="system")
    request_id = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    # Moved by the running job while it lives (dnsportal.queue.execute): a run that stops moving it was killed
    # with its worker, and the sweep (dnsportal.jobs.jobruns_sweep) ends it and queues it again.
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)
    log = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.name} #{self.pk} ({self.status})"

    @property
    def duration(self) -> float | None:
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None


class PortalPermission(models.Model):  # noqa: DJ008  (no table, so no row is ever shown)
    """No table: a holder for the role permissions the groups are built from (see dnsportal.roles)."""

    class Meta:
        managed = False
        default_permissions = ()
        permissions = [
            ("view_portal", "Can see the portal's pages"),
            ("operate", "Can run operator actions (reconcile now, run jobs, propose changes)"),
            ("approve", "Can approve or reject changes proposed by someone else"),
            ("administer", "Can register clusters and provider accounts and change settings"),
        ]
