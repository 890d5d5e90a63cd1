"""Traffic shift plans (records.shift is their pure core): one approval for a list of weighted splits, each
step then written back, applied, held and gated on its own, with its state here so a runner that dies resumes.

Imported by records.models, so Django registers them with the records app.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from records import shift
from records.models_review import Reviewed


class ShiftPlan(Reviewed):
    class Status(models.TextChoices):
        PENDING = shift.PENDING, "Pending review"
        APPROVED = shift.APPROVED, "Approved"
        RUNNING = shift.RUNNING, "Running"
        PAUSED = shift.PAUSED, "Paused"
        ROLLING_BACK = shift.ROLLING_BACK, "Rolling back"
        ROLLED_BACK = shift.ROLLED_BACK, "Rolled back"
        ABORTING = shift.ABORTING, "Aborting"
        ABORTED = shift.ABORTED, "Aborted"
        DONE = shift.DONE, "Done"
        REJECTED = shift.REJECTED, "Rejected"
        CANCELLED = shift.CANCELLED, "Cancelled"
        FAILED = shift.FAILED, "Failed"

    class OnFailure(models.TextChoices):
        ROLLBACK = "rollback", "Roll back to the last good step"
        PAUSE = "pause", "Pause for a person"

    zone = models.ForeignKey("records.Zone", on_delete=models.CASCADE, related_name="shift_plans")
    hostname = models.CharField(max_length=253, db_index=True, help_text="Lower case, no trailing dot.")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING, db_index=True)
    clusters = models.JSONField(help_text="The clusters in the order the splits give their weights.")
    start = models.JSONField(help_text="The split when the plan was made: cluster -> weight.")
    splits = models.JSONField(help_text="The steps: a list of cluster -> weight.")
    base_policy = models.JSONField(help_text="The policy when made (TTL kept in every step).")
    ttl = models.PositiveIntegerField(default=0, help_text="The record's TTL when the plan was made.")
    hold_seconds = models.PositiveIntegerField()
    on_failure = models.CharField(max_length=10, choices=OnFailure.choices, default=OnFailure.ROLLBACK)
    # {"probe": {"n", "port", "path", "status"}} or {}: the HTTP probe gate, where configured.
    gates = models.JSONField(default=dict, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    message = models.TextField(blank=True, help_text="What happened last: a failed gate with its figures.")
    # The one live chain of runner ticks: a tick whose run is not this one stops (a resume, a sweep).
    tick_run_id = models.BigIntegerField(null=True, blank=True)
    wake_at = models.DateTimeField(null=True, blank=True, help_text="When the next tick is due.")

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # Two plans never run on one name: the database refuses the second.
            models.UniqueConstraint(
                fields=["hostname"],
                condition=Q(status__in=sorted(shift.ACTIVE)),
                name="records_one_active_shift_per_hostname",
            )
        ]

    def __str__(self) -> str:
        return f"traffic shift #{self.id} of {self.hostname}"

    @property
    def is_active(self) -> bool:
        return self.status in shift.ACTIVE

    def describe(self) -> str:
        return " → ".join([shift.short(self.start), *(shift.short(s) for s in self.splits)])

    def audit_view(self) -> dict:
        return {
            "hostname": self.hostname,
            "status": self.status,
            "clusters": self.clusters,
            "start": self.start,
            "splits": self.splits,
            "hold_seconds": self.hold_seconds,
            "on_failure": self.on_failure,
            "gates": self.gates,
        }


class ShiftStep(models.Model):
    class Kind(models.TextChoices):
        FORWARD = "forward", "Step"
        ROLLBACK = "rollback", "Roll back"
        ABORT = "abort", "Return to the start"

    class Phase(models.TextChoices):
        PENDING = shift.STEP_PENDING, "Waiting"
        WRITING = shift.WRITING, "Writing to the clusters"
        APPLYING = shift.APPLYING, "Applying to DNS"
        HOLDING = shift.HOLDING, "Holding"
        GATING = shift.GATING, "Checking the gates"
        PASSED = shift.PASSED, "Passed"
        FAILED = shift.STEP_FAILED, "Failed"
        SKIPPED = shift.SKIPPED, "Not taken"

    plan = models.ForeignKey(ShiftPlan, on_delete=models.CASCADE, related_name="steps")
    index = models.PositiveIntegerField(help_text="1..n: the plan's steps; after them, returns.")
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.FORWARD)
    split = models.JSONField()
    phase = models.CharField(max_length=10, choices=Phase.choices, default=Phase.PENDING)
    proposal = models.ForeignKey(
        "records.PolicyProposal", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    started_at = models.DateTimeField(null=True, blank=True)
    applied_at = models.DateTimeField(null=True, blank=True)
    gated_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # One entry per gate: {"gate", "ok", "message", "figures", "verification_id"}.
    gate_results = models.JSONField(default=list, blank=True)
    message = models.TextField(blank=True)

    class Meta:
        ordering = ["plan", "index"]
        constraints = [models.UniqueConstraint(fields=["plan", "index"], name="records_shift_step_index")]

    def __str__(self) -> str:
        return f"{self.get_kind_display().lower()} {self.index} of shift #{self.plan_id}"

    @property
    def label(self) -> str:
        return f"{self.get_kind_display()} {shift.short(self.split)}"
