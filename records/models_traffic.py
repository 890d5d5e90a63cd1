"""Traffic-policy proposals: a person's decision on how one name splits across clusters, reviewed by a second
person, then written to the clusters as annotations (one PolicyObjectWrite per Service or Ingress).

Imported by records.models, so Django registers them with the records app.
"""

from __future__ import annotations

from django.db import models

from records import lifecycle
from records.models_review import Reviewed


class PolicyProposal(Reviewed):
    class Status(models.TextChoices):
        PENDING = lifecycle.PENDING, "Pending review"
        APPROVED = lifecycle.APPROVED, "Approved"
        WRITING = lifecycle.WRITING, "Writing to the clusters"
        PARTIALLY_WRITTEN = lifecycle.PARTIALLY_WRITTEN, "Partially written"
        WRITTEN = lifecycle.WRITTEN, "Written"
        REJECTED = lifecycle.REJECTED, "Rejected"
        SUPERSEDED = lifecycle.SUPERSEDED, "Superseded"
        ABANDONED = lifecycle.ABANDONED, "Abandoned"

    zone = models.ForeignKey("records.Zone", on_delete=models.CASCADE, related_name="proposals")
    hostname = models.CharField(max_length=253, db_index=True, help_text="Lower case, no trailing dot.")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING, db_index=True)
    policy = models.JSONField(help_text="records.traffic.TrafficPolicy.to_dict()")
    before = models.JSONField(default=dict, help_text="The policy the clusters asked for when proposed.")
    summary = models.CharField(max_length=500, blank=True)
    # Failover: the Route53 health check the portal creates (and owns) for the primary's record set.
    health_check = models.JSONField(null=True, blank=True, help_text="HealthCheckSpec fields, or null.")
    health_check_id = models.CharField(max_length=64, blank=True)
    # Its live status, read every minute by the health_checks_status job (pages do not ask Route53).
    health_check_status = models.CharField(max_length=300, blank=True)
    health_check_healthy = models.BooleanField(null=True, blank=True)
    health_check_checked_at = models.DateTimeField(null=True, blank=True)
    # The DNS change the editor showed: plan groups as dicts, and their signature (compared with the change
    # set that follows: the same change is applied without a second approval).
    predicted = models.JSONField(default=dict, blank=True)
    warnings = models.JSONField(default=list, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    writing_since = models.DateTimeField(
        null=True, blank=True, help_text="When the running write-back pass claimed it (its lease starts)."
    )
    message = models.TextField(blank=True, help_text="What the write-back says: written, or what is missing.")
    changeset = models.ForeignKey(
        "records.ChangeSet", null=True, blank=True, on_delete=models.SET_NULL, related_name="proposals"
    )
    superseded_by = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["zone", "status"])]

    def __str__(self) -> str:
        return f"policy proposal #{self.id} for {self.hostname}"

    @property
    def is_open(self) -> bool:
        return self.status in lifecycle.PROPOSAL_OPEN

    @property
    def holds_dns(self) -> bool:
        return self.status in lifecycle.PROPOSAL_HOLDS

    def audit_view(self) -> dict:
        return {
            "hostname": self.hostname,
            "status": self.status,
            "policy": self.policy,
            "summary": self.summary,
        }


class PolicyObjectWrite(models.Model):
    """One object's annotations under a proposal: what they were, what they become, and how the write went."""

    class Status(models.TextChoices):
        PENDING = "pending", "Not written yet"
        WRITTEN = "written", "Written"
        UNCHANGED = "unchanged", "Already as proposed"
        CONFLICT = "conflict", "Conflict: changed by someone else"
        UNREACHABLE = "unreachable", "Cluster unreachable (retried)"
        GONE = "gone", "Object deleted"
        FORBIDDEN = "forbidden", "Not allowed (no patch permission)"
        INVALID = "invalid", "Refused by the API server"
        REVERTED = "reverted", "Reverted in the cluster"

    proposal = models.ForeignKey(PolicyProposal, on_delete=models.CASCADE, related_name="writes")
    cluster = models.ForeignKey("clusters.Cluster", on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=10)
    namespace = models.CharField(max_length=253)
    name = models.CharField(max_length=253)
    resource_version = models.CharField(max_length=64, blank=True, help_text="As seen when proposed.")
    before = models.JSONField(default=dict)
    after = models.JSONField(default=dict)
    changes = models.JSONField(default=dict, help_text="The merge patch: key -> value, null removes.")
    also_affects = models.JSONField(default=list, blank=True)
    gitops = models.JSONField(default=dict, blank=True, help_text="Argo CD / Flux managing the object.")
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PENDING)
    message = models.TextField(blank=True)
    changed_by = models.CharField(max_length=200, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    written_at = models.DateTimeField(null=True, blank=True)
    resource_version_after = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["cluster__name", "kind", "namespace", "name"]

    def __str__(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}"

    @property
    def done(self) -> bool:
        return self.status in (self.Status.WRITTEN, self.Status.UNCHANGED)
