"""Clusters: where each one is, how to reach it (encrypted), and what its last check found."""

from __future__ import annotations

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.utils import timezone

from dnsportal import crypto
from dnsportal.logging import register_secret

slug_validator = RegexValidator(
    r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$",
    "Use lower-case letters, digits and hyphens (like a Kubernetes name), at most 63 characters.",
)


# The labels `register_demo_clusters` gives the demo's sandbox clusters, for people and label filters. What
# makes a cluster part of the demo (and removed with it) is `is_demo`, which no form can set: an admin who
# labels a real cluster `demo=true` does not hand it to the demo's removal.
DEMO_LABELS = {"demo": "true"}


class Cluster(models.Model):
    class AuthKind(models.TextChoices):
        KUBECONFIG = "kubeconfig", "Kubeconfig with inline credentials"
        EKS = "eks", "EKS token made by the portal (AWS credentials)"

    class Health(models.TextChoices):
        UNKNOWN = "unknown", "Not checked yet"
        HEALTHY = "healthy", "Healthy"
        DEGRADED = "degraded", "Reachable, permissions missing"
        UNREACHABLE = "unreachable", "Unreachable"

    name = models.CharField(max_length=63, unique=True, validators=[slug_validator])
    display_name = models.CharField(max_length=100, blank=True)
    description = models.TextField(blank=True)
    labels = models.JSONField(
        default=dict, blank=True, help_text='e.g. {"region": "us-east-1", "site": "dc1"}'
    )
    enabled = models.BooleanField(default=True)
    # Registered by `register_demo_clusters` for make up's demo; only the demo's removal reads it.
    is_demo = models.BooleanField(default=False, editable=False)

    class Prefix(models.TextChoices):
        ALPHA = (
            "external-dns.alpha.kubernetes.io/",
            "external-dns.alpha.kubernetes.io/ (ExternalDNS up to v0.21)",
        )
        GA = "external-dns.kubernetes.io/", "external-dns.kubernetes.io/ (ExternalDNS v0.22 and later)"

    # The prefix traffic-policy write-back uses on an object that has no ExternalDNS annotation yet (an object
    # that has some keeps its own): the one this cluster's ExternalDNS reads.
    write_back_prefix = models.CharField(max_length=40, choices=Prefix.choices, default=Prefix.ALPHA)

    auth_kind = models.CharField(max_length=12, choices=AuthKind.choices, default=AuthKind.KUBECONFIG)
    kubeconfig_encrypted = crypto.EncryptedTextField(blank=True)
    context = models.CharField(max_length=253, blank=True)
    server = models.URLField(max_length=500, blank=True, help_text="The API server URL (not a secret).")
    fingerprint = models.CharField(max_length=64, blank=True, help_text="SHA-256 of server, CA and user.")
    allow_insecure = models.BooleanField(
        default=False, help_text="An admin accepted insecure-skip-tls-verify for this cluster."
    )
    # EKS without `aws eks get-token`: the portal signs the token itself with these (encrypted) credentials.
    eks_cluster_name = models.CharField(max_length=100, blank=True)
    eks_region = models.CharField(max_length=30, blank=True)
    aws_credentials_encrypted = crypto.EncryptedTextField(blank=True)

    health = models.CharField(max_length=12, choices=Health.choices, default=Health.UNKNOWN)
    last_checked_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    server_version = models.CharField(max_length=100, blank=True)
    distribution = models.CharField(max_length=20, blank=True)
    node_count = models.PositiveIntegerField(null=True, blank=True)
    missing_permissions = models.JSONField(default=list, blank=True)

    # Discovery: ExternalDNS's source flags for this cluster (clusters.source_options), and its freshness.
    source_options = models.JSONField(default=dict, blank=True)
    # An unreachable cluster is not an empty cluster: while stale, its endpoints are frozen, never deleted.
    is_stale = models.BooleanField(default=False)
    stale_since = models.DateTimeField(null=True, blank=True)
    last_sync_at = models.DateTimeField(null=True, blank=True)
    last_sync_error = models.TextField(blank=True)
    # The custom kinds its sources need (Gateway API routes, DNSEndpoint) as the last full list found them:
    # kind -> "group/version" served, or "not installed".
    custom_kinds = models.JSONField(default=dict, blank=True)

    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def title(self) -> str:
        return self.display_name or self.name

    kubeconfig = crypto.plaintext_property(
        "kubeconfig_encrypted",
        reveal=lambda text: _register_kubeconfig_secrets(text),  # defined below the model
        doc="The decrypted kubeconfig; its secrets are registered for redaction before anyone can log them.",
    )

    @property
    def aws_credentials(self) -> dict[str, str]:
        if not self.aws_credentials_encrypted:
            return {}
        import json

        creds = json.loads(crypto.decrypt(self.aws_credentials_encrypted))
        register_secret(creds.get("secret_access_key"))
        register_secret(creds.get("session_token"))
        return creds

    @aws_credentials.setter
    def aws_credentials(self, creds: dict[str, str]) -> None:
        import json

        self.aws_credentials_encrypted = crypto.encrypt(json.dumps(creds)) if creds else ""

    def audit_view(self) -> dict:
        """What the audit log keeps of a cluster: everything but secrets (the fingerprint stands for them)."""
        return {
            "name": self.name,
            "display_name": self.display_name,
            "description": self.description,
            "labels": self.labels,
            "enabled": self.enabled,
            "auth_kind": self.auth_kind,
            "context": self.context,
            "server": self.server,
            "fingerprint": self.fingerprint,
            "allow_insecure": self.allow_insecure,
            "eks_cluster_name": self.eks_cluster_name,
            "eks_region": self.eks_region,
            "write_back_prefix": self.write_back_prefix,
        }


def _register_kubeconfig_secrets(text: str) -> None:
    import yaml

    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError:
        return
    for user in (doc or {}).get("users") or []:
        data = (user or {}).get("user") or {}
        for key in ("token", "client-key-data", "password"):
            if isinstance(data.get(key), str):
                register_secret(data[key])


class DiscoveredObject(models.Model):
    """A Service, Ingress, Gateway API route or DNSEndpoint of a cluster as discovery last saw it: what it
    publishes, or why not."""

    class Kind(models.TextChoices):
        SERVICE = "Service", "Service"
        INGRESS = "Ingress", "Ingress"
        HTTPROUTE = "HTTPRoute", "HTTPRoute"
        GRPCROUTE = "GRPCRoute", "GRPCRoute"
        TLSROUTE = "TLSRoute", "TLSRoute"
        TCPROUTE = "TCPRoute", "TCPRoute"
        UDPROUTE = "UDPRoute", "UDPRoute"
        DNSENDPOINT = "DNSEndpoint", "DNSEndpoint"

    cluster = models.ForeignKey(Cluster, on_delete=models.CASCADE, related_name="discovered")
    # 63: a kind is a DNS label; --crd-source-kind may name a kind outside the choices
    kind = models.CharField(max_length=63, choices=Kind.choices)
    namespace = models.CharField(max_length=253)
    name = models.CharField(max_length=253)
    uid = models.CharField(max_length=64, blank=True)
    resource_version = models.CharField(max_length=64, blank=True)
    annotation_prefix = models.CharField(max_length=100, blank=True)
    # For the traffic-policy editor, read without a request to the cluster: the ExternalDNS annotations under
    # either prefix exactly as on the object, and the GitOps tool that applies it (clusters.gitops:
    # {"tool", "evidence", "source", "managers"}; {} when none), whose next sync would revert a write-back.
    annotations = models.JSONField(default=dict, blank=True)
    gitops = models.JSONField(default=dict, blank=True)
    errors = models.JSONField(default=list, blank=True)
    warnings = models.JSONField(default=list, blank=True)
    skipped_reason = models.TextField(blank=True)
    first_seen = models.DateTimeField(default=timezone.now)
    last_seen = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["cluster", "kind", "namespace", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["cluster", "kind", "namespace", "name"], name="discovered_object_unique"
            )
        ]
        indexes = [models.Index(fields=["cluster", "kind"])]

    def __str__(self) -> str:
        return f"{self.cluster_id}:{self.kind}/{self.namespace}/{self.name}"

    @property
    def resource(self) -> str:
        return f"{self.kind.lower()}/{self.namespace}/{self.name}"


class ClusterCheck(models.Model):
    """One connection check: the history shown on the cluster page."""

    cluster = models.ForeignKey(Cluster, on_delete=models.CASCADE, related_name="checks")
    at = models.DateTimeField(default=timezone.now, db_index=True)
    health = models.CharField(max_length=12, choices=Cluster.Health.choices)
    duration_ms = models.PositiveIntegerField(default=0)
    server_version = models.CharField(max_length=100, blank=True)
    distribution = models.CharField(max_length=20, blank=True)
    node_count = models.PositiveIntegerField(null=True, blank=True)
    missing_permissions = models.JSONField(default=list, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"{self.cluster} {self.health} at {self.at:%Y-%m-%d %H:%M:%S}"


class ConnectionTest(models.Model):
    """A "test connection" before saving: the kubeconfig is kept (encrypted) only until the test has run."""

    class Status(models.TextChoices):
        PENDING = "pending", "Testing"
        DONE = "done", "Done"

    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    kubeconfig_encrypted = crypto.EncryptedTextField(blank=True)
    context = models.CharField(max_length=253, blank=True)
    allow_insecure = models.BooleanField(default=False)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    result = models.JSONField(default=dict, blank=True)

    def __str__(self) -> str:
        return f"connection test #{self.pk}"
