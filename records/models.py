"""Endpoints (desired state), zones, records, change sets and verifications."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from records.endpoint import Endpoint as EndpointData


class Endpoint(models.Model):
    """One record a cluster wants published (the desired state), as discovery computed it."""

    cluster = models.ForeignKey("clusters.Cluster", on_delete=models.CASCADE, related_name="endpoints")
    source = models.ForeignKey(
        "clusters.DiscoveredObject", on_delete=models.CASCADE, related_name="endpoints"
    )
    dns_name = models.CharField(max_length=253, db_index=True)
    record_type = models.CharField(max_length=10)
    set_identifier = models.CharField(max_length=128, blank=True)
    targets = models.JSONField(default=list)
    ttl = models.PositiveIntegerField(default=0, help_text="0: not set (the provider's default applies).")
    properties = models.JSONField(default=dict, blank=True, help_text="Provider-specific: aws/weight, ...")
    labels = models.JSONField(default=dict, blank=True)
    resource = models.CharField(max_length=600)
    # RFC 1918, loopback, link-local, CGNAT or IPv6 ULA targets: the private IP published by mistake.
    private_targets = models.JSONField(default=list, blank=True)
    has_private_target = models.BooleanField(default=False, db_index=True)
    first_seen = models.DateTimeField(default=timezone.now)
    last_seen = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["dns_name", "record_type", "set_identifier", "cluster"]
        constraints = [
            models.UniqueConstraint(
                fields=["source", "dns_name", "record_type", "set_identifier"],
                name="endpoint_unique_per_source",
            )
        ]

    def __str__(self) -> str:
        return f"{self.dns_name} {self.record_type} {' '.join(self.targets)}"

    def as_data(self, cluster_name: str = "") -> EndpointData:
        """The pure endpoint (what the plan engine takes)."""
        return EndpointData.make(
            self.dns_name,
            self.record_type,
            self.targets,
            ttl=self.ttl,
            set_identifier=self.set_identifier,
            provider_specific=self.properties,
            labels=self.labels,
            cluster=cluster_name,
        )
