"""Endpoints (desired state), zones, records, change sets and verifications."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.conf import settings
from django.db import models
from django.utils import timezone

from dnsportal import crypto
from dnsportal.logging import register_secret
from records.endpoint import Endpoint as EndpointData
from records.recordset import rdata_text


class SnapshotsDeferred(models.Manager):
    """Leaves a model's snapshot columns (megabytes of JSON in a large zone) out of every query, related
    lookups included (it is the base manager too); code that reads one loads it on first access."""

    def get_queryset(self) -> models.QuerySet:
        return super().get_queryset().defer(*self.model.SNAPSHOT_FIELDS)


class SnapshotColumns(models.Model):
    """A model whose manager is SnapshotsDeferred: reading a deferred snapshot loads that column alone."""

    class Meta:
        abstract = True

    def refresh_from_db(self, using=None, fields=None, from_queryset=None) -> None:
        # Django loads a deferred field with only(field) on the base manager, which here has deferred that
        # very field already: only() then selects every column and overwrites the instance's unsaved edits.
        if from_queryset is None and fields is not None:
            from_queryset = type(self)._base_manager.db_manager(using, hints={"instance": self}).defer(None)
        super().refresh_from_db(using=using, fields=fields, from_queryset=from_queryset)


class Endpoint(models.Model):
    """One record a cluster wants published (the desired state), as discovery computed it."""

    cluster = models.ForeignKey("clusters.Cluster", on_delete=models.CASCADE, related_name="endpoints")
    source = models.ForeignKey(
        "clusters.DiscoveredObject", on_delete=models.CASCADE, related_name="endpoints"
    )
    dns_name = models.CharField(max_length=253)  # indexed below, as the list's order and for prefixes
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
        indexes = [
            # The endpoints list's order, with the id: a page deep in 100,000 endpoints is an index-only
            # scan to its ids (dnsportal.paging). Lookups by name use it too.
            models.Index(
                fields=["dns_name", "record_type", "set_identifier", "cluster"],
                include=["id"],
                name="endpoint_list_order",
            ),
            # LIKE 'prefix%' (similar names): the database's collation is not C
            models.Index(
                fields=["dns_name"], opclasses=["varchar_pattern_ops"], name="endpoint_dns_name_like"
            ),
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

    # The columns of a plain row (values_list or a JSON array) that `data_from_row` turns into the pure
    # endpoint: large reads skip model instances, and every one of them reads the same columns.
    ROW_FIELDS = (
        "dns_name",
        "record_type",
        "targets",
        "ttl",
        "set_identifier",
        "properties",
        "labels",
        "cluster__name",
    )

    @staticmethod
    def data_from_row(row: Sequence[Any]) -> EndpointData:
        name, rtype, targets, ttl, set_id, props, labels, cluster = row
        return EndpointData.make(
            name,
            rtype,
            targets,
            ttl=ttl,
            set_identifier=set_id,
            provider_specific=props,
            labels=labels,
            cluster=cluster,
        )


class ProviderAccount(models.Model):
    """A DNS provider account (Route53, or a PowerDNS server): how to reach it, its credentials encrypted."""

    class Kind(models.TextChoices):
        ROUTE53 = "route53", "AWS Route53"
        POWERDNS = "powerdns", "PowerDNS Authoritative (HTTP API)"

    class CredentialKind(models.TextChoices):
        STATIC = "static", "Access key pair"
        ROLE = "role", "Assume a role (ARN + external id)"
        DEFAULT = "default", "The process's default AWS credential chain"

    name = models.SlugField(max_length=63, unique=True)
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.ROUTE53)
    credential_kind = models.CharField(
        max_length=10, choices=CredentialKind.choices, default=CredentialKind.STATIC
    )
    access_key_id = models.CharField(max_length=128, blank=True)
    role_arn = models.CharField(max_length=2048, blank=True)
    # Route53: the secret access key (static) or the external id (role); PowerDNS: the API key. Encrypted,
    # shown only as a fingerprint.
    secret_encrypted = crypto.EncryptedTextField(blank=True)
    region = models.CharField(max_length=30, default="us-east-1")
    endpoint_url = models.URLField(
        blank=True,
        help_text="Route53: only for tests and compatible APIs (e.g. moto). PowerDNS: the API's URL, "
        "e.g. http://pdns.internal:8081.",
    )
    server_id = models.CharField(max_length=63, default="localhost", help_text="PowerDNS: the server id.")
    dns_servers = models.CharField(
        max_length=500,
        blank=True,
        help_text="PowerDNS: host:port of the servers answering its zones, comma-separated, for verification "
        "(empty: the zones' NS records).",
    )
    rate = models.FloatField(
        default=5.0, help_text="Route53 requests per second for this account, all workers."
    )
    burst = models.PositiveIntegerField(default=5)
    # The Route53 stand-in `make up` runs for the demo: removed with the demo, never reaches AWS.
    is_demo = models.BooleanField(default=False, editable=False)
    last_check_at = models.DateTimeField(null=True, blank=True)
    last_check_ok = models.BooleanField(null=True)
    last_check_message = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    secret = crypto.plaintext_property("secret_encrypted", reveal=register_secret)

    @property
    def secret_fingerprint(self) -> str:
        return crypto.fingerprint(self.secret)[:12] if self.secret_encrypted else ""

    def credentials(self) -> dict[str, str]:
        """The provider's credential dict (records.providers.route53)."""
        if self.credential_kind == self.CredentialKind.STATIC:
            return {"kind": "static", "access_key_id": self.access_key_id, "secret_access_key": self.secret}
        if self.credential_kind == self.CredentialKind.ROLE:
            creds = {"kind": "role", "role_arn": self.role_arn}
            if self.secret_encrypted:
                creds["external_id"] = self.secret
            return creds
        return {"kind": "default"}

    @property
    def is_powerdns(self) -> bool:
        return self.kind == self.Kind.POWERDNS

    def audit_view(self) -> dict:
        return {
            "name": self.name,
            "kind": self.kind,
            "server_id": self.server_id,
            "dns_servers": self.dns_servers,
            "credential_kind": self.credential_kind,
            "access_key_id": self.access_key_id,
            "role_arn": self.role_arn,
            "secret": self.secret_fingerprint,
            "region": self.region,
            "endpoint_url": self.endpoint_url,
            "rate": self.rate,
            "burst": self.burst,
        }


class Zone(SnapshotColumns):
    """A hosted zone the portal may write to, owning only the records whose TXT names its owner id."""

    class Policy(models.TextChoices):
        SYNC = "sync", "sync (create, update, delete)"
        UPSERT_ONLY = "upsert-only", "upsert-only (never delete)"
        CREATE_ONLY = "create-only", "create-only"

    account = models.ForeignKey(ProviderAccount, on_delete=models.PROTECT, related_name="zones")
    provider_zone_id = models.CharField(max_length=64)
    name = models.CharField(max_length=253, help_text="FQDN with the trailing dot.")
    private = models.BooleanField(default=False)
    owner_id = models.CharField(max_length=100, default="dnsportal")
    policy = models.CharField(max_length=12, choices=Policy.choices, default=Policy.SYNC)
    txt_prefix = models.CharField(max_length=63, blank=True, default="_dnsportal-%{record_type}.")
    txt_suffix = models.CharField(max_length=63, blank=True)
    drift_interval = models.PositiveIntegerField(
        default=600,
        help_text="Seconds between drift checks: the nameservers asked for the owned records, and the record "
        "count (one API call).",
    )
    full_read_interval = models.PositiveIntegerField(
        default=3600,
        help_text="Seconds between full reads of the zone through the API (the safety net for what DNS "
        "answers cannot show: weighted, latency and geo records).",
    )

    class Approval(models.TextChoices):
        ALL = "all", "Every change set needs a second person"
        FLAGGED = (
            "flagged",
            "Only flagged change sets (private address, large change, adopt) need a second person",
        )
        NONE = (
            "none",
            "Apply automatically (flagged change sets still wait: big changes always wait for a person)",
        )

    approval_mode = models.CharField(max_length=10, choices=Approval.choices, default=Approval.ALL)
    webhook_url = models.URLField(blank=True, help_text="Receives a JSON summary of each applied change set.")
    nameserver_override = models.CharField(
        max_length=500,
        blank=True,
        help_text="host:port of the authoritative nameservers to verify against, comma-separated "
        "(on-prem servers, tests); empty: the provider's delegation set.",
    )
    verify_interval = models.PositiveIntegerField(
        default=3600, help_text="Seconds between resolution checks."
    )
    last_verified_at = models.DateTimeField(null=True, blank=True)
    last_verification_ok = models.BooleanField(null=True, blank=True)  # None: never verified
    enabled = models.BooleanField(default=True)
    # Imported from the demo's account (inherited at import): removed with the demo, its records left alone.
    is_demo = models.BooleanField(default=False, editable=False)

    # The last zone state read (rows in ZoneRecord), and whether it can be trusted without a re-read.
    state_read_at = models.DateTimeField(null=True, blank=True)
    # When the stored state was last known to match the zone: a full read, or the portal's own apply.
    state_known_at = models.DateTimeField(null=True, blank=True)
    state_valid = models.BooleanField(default=False)
    # The last reconcile (or the zone read of an apply): when, what failed (empty once one succeeds), and
    # the job run whose page has its log. A failure no page shows is a bug: the zone pages show these.
    last_reconcile_at = models.DateTimeField(null=True, blank=True)
    last_reconcile_error = models.TextField(blank=True)
    last_reconcile_run = models.ForeignKey(
        "dnsportal.JobRun", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    last_drift_check_at = models.DateTimeField(null=True, blank=True)
    # What the last drift check found and how (DNS answers, record count, full read), and the last drift
    # found: the zone page says what was found how, and when.
    drift_check_summary = models.TextField(blank=True)
    drift_found_at = models.DateTimeField(null=True, blank=True)
    drift_found = models.TextField(blank=True)
    ownership_counts = models.JSONField(default=dict, blank=True)
    # The desired endpoints the last applied change set came from: lets the next plan say "source deleted in
    # k3s-edge" and tell drift (the zone moved) from a change in the clusters.
    applied_desired = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    SNAPSHOT_FIELDS = ("applied_desired",)
    objects = SnapshotsDeferred()

    class Meta:
        ordering = ["name"]
        base_manager_name = "objects"
        constraints = [
            models.UniqueConstraint(fields=["account", "provider_zone_id"], name="zone_unique_per_account")
        ]

    def __str__(self) -> str:
        return self.name.rstrip(".")

    @property
    def display_name(self) -> str:
        return self.name.rstrip(".")

    def applies_automatically(self, *, needs_approval: bool) -> bool:
        """Whether a plan is applied without a person: never when the plan engine flagged it (rule 3)."""
        return not needs_approval and self.approval_mode != self.Approval.ALL

    def audit_view(self) -> dict:
        return {
            "name": self.name,
            "provider_zone_id": self.provider_zone_id,
            "owner_id": self.owner_id,
            "policy": self.policy,
            "txt_prefix": self.txt_prefix,
            "txt_suffix": self.txt_suffix,
            "drift_interval": self.drift_interval,
            "full_read_interval": self.full_read_interval,
            "approval_mode": self.approval_mode,
            "webhook_url": self.webhook_url,
            "enabled": self.enabled,
            "private": self.private,
        }


class ZoneRecord(models.Model):
    """One record set of a zone as last read (or as updated by an apply): the zone page's table."""

    class Ownership(models.TextChoices):
        OWNED = "owned", "owned by this portal"
        OTHER = "other", "owned by another owner id"
        UNOWNED = "unowned", "not owned"
        REGISTRY = "registry", "ownership record"
        UNMANAGED = "unmanaged", "not managed (type or name)"

    zone = models.ForeignKey(Zone, on_delete=models.CASCADE, related_name="records")
    name = models.CharField(max_length=300)
    type = models.CharField(max_length=10)
    set_identifier = models.CharField(max_length=128, blank=True)
    data = models.JSONField(help_text="The record set as Route53 returns it.")
    ownership = models.CharField(max_length=10, choices=Ownership.choices, default=Ownership.UNMANAGED)
    owner_id = models.CharField(max_length=100, blank=True)

    class Meta:
        ordering = ["name", "type", "set_identifier"]
        constraints = [
            # with the id: the records lists' pages are found in this index alone (dnsportal.paging)
            models.UniqueConstraint(
                fields=["zone", "name", "type", "set_identifier"], include=["id"], name="zone_record_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} {self.type} {self.set_identifier}".strip()

    @property
    def values(self) -> list[str]:
        if "AliasTarget" in self.data:
            return [f"ALIAS {self.data['AliasTarget'].get('DNSName', '')}"]
        return [rdata_text(r.get("Value", "")) for r in self.data.get("ResourceRecords", [])]


class ChangeSet(SnapshotColumns):
    """The unit of review: what will change in one zone, why, who approved, what really happened."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending review"
        APPROVED = "approved", "Approved"
        APPLYING = "applying", "Applying"
        APPLIED = "applied", "Applied"
        PARTIALLY_APPLIED = "partially_applied", "Partially applied"
        FAILED = "failed", "Failed"
        REJECTED = "rejected", "Rejected"
        SUPERSEDED = "superseded", "Superseded"

    class Cause(models.TextChoices):
        DISCOVERY = "discovery", "Clusters changed"
        DRIFT = "drift", "Drift check"
        MANUAL = "manual", "Reconcile requested"
        ADOPT = "adopt", "Adoption"
        CLUSTER_DELETE = "cluster-delete", "Cluster deleted"

    zone = models.ForeignKey(Zone, on_delete=models.CASCADE, related_name="changesets")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING, db_index=True)
    cause = models.CharField(max_length=20, choices=Cause.choices, default=Cause.DISCOVERY)
    # Who caused it (asked for a reconcile, an adopt, or wrote the policy edit): never its approver.
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    fingerprint = models.CharField(max_length=64, db_index=True)
    needs_approval = models.BooleanField(default=False)
    approval_reasons = models.JSONField(default=list, blank=True)
    summary = models.JSONField(default=dict, blank=True)
    conflicts = models.JSONField(default=list, blank=True)
    skipped = models.JSONField(default=list, blank=True)
    notes = models.JSONField(default=list, blank=True)
    desired = models.JSONField(
        default=list, blank=True, help_text="The endpoints the plan was computed from."
    )
    adopt = models.JSONField(default=list, blank=True, help_text="[name, type, set id] this plan takes over.")
    scope = models.JSONField(
        default=list,
        blank=True,
        help_text="The names (FQDNs) this plan covers, when discovery changed only those; empty: the whole "
        "zone. `desired` then holds the endpoints at these names only.",
    )
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    approved_at = models.DateTimeField(null=True, blank=True)
    review_comment = models.TextField(blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)
    superseded_by = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # While applying: until when the claiming worker holds it. A worker killed mid-apply stops renewing it,
    # and the resume job hands the change set to the next worker, which completes what is still missing.
    lease_until = models.DateTimeField(null=True, blank=True)
    apply_attempts = models.PositiveIntegerField(default=0)
    verification_status = models.CharField(max_length=10, blank=True, help_text="ok / failed once verified.")

    SNAPSHOT_FIELDS = ("desired",)
    objects = SnapshotsDeferred()

    class Meta:
        ordering = ["-created_at", "-id"]
        base_manager_name = "objects"

    def __str__(self) -> str:
        return f"change set #{self.pk} for {self.zone}"


class Change(models.Model):
    """One group of a change set: a record change and its ownership TXT change(s), applied together."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        APPLIED = "applied", "Applied"
        FAILED = "failed", "Failed"

    changeset = models.ForeignKey(ChangeSet, on_delete=models.CASCADE, related_name="changes")
    position = models.PositiveIntegerField()
    kind = models.CharField(max_length=12)  # create / update / delete / adopt / ownership
    name = models.CharField(max_length=300)
    type = models.CharField(max_length=10)
    set_identifier = models.CharField(max_length=128, blank=True)
    reasons = models.JSONField(default=list)
    sources = models.JSONField(default=list, blank=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    actions = models.JSONField(help_text="[{Action, Role, ResourceRecordSet}] in apply order.")
    replace = models.BooleanField(default=False)
    drift = models.BooleanField(default=False)
    needs_approval = models.BooleanField(default=False)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    error = models.TextField(blank=True)
    # The idempotency key of the request it was sent in ("<change set>-<attempt>-<batch>"): a resumed apply
    # knows which changes were in flight when a worker died, and checks those against the zone first.
    batch_key = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["changeset", "position"]
        constraints = [
            models.UniqueConstraint(fields=["changeset", "position"], name="change_position_unique")
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.name} {self.type}"


class Verification(models.Model):
    """What the authoritative nameservers really answered: a zone's resolution check, or a measured split
    (of DNS answers, or of HTTP responses: which cluster served the requests of a probe)."""

    class Kind(models.TextChoices):
        RESOLUTION = "resolution", "Resolution check"
        DISTRIBUTION = "distribution", "Traffic split"
        PROBE = "probe", "HTTP probe"

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        OK = "ok", "As planned"
        FAILED = "failed", "Differs"
        ERROR = "error", "Could not check"

    zone = models.ForeignKey(Zone, on_delete=models.CASCADE, related_name="verifications")
    changeset = models.ForeignKey(
        ChangeSet, null=True, blank=True, on_delete=models.SET_NULL, related_name="verifications"
    )
    kind = models.CharField(max_length=12, choices=Kind.choices)
    hostname = models.CharField(max_length=300, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RUNNING, db_index=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    started_at = models.DateTimeField(default=timezone.now, db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    nameservers = models.JSONField(default=list)
    message = models.TextField(blank=True)
    differences = models.JSONField(default=list, blank=True)
    report = models.JSONField(default=dict, blank=True)
    propagation_seconds = models.FloatField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} of {self.hostname or self.zone}"


# Traffic-policy proposals and traffic shift plans live in their own modules; importing them here registers
# them with the app.
from records.models_drill import FailoverDrill  # noqa: E402, F401
from records.models_shift import ShiftPlan, ShiftStep  # noqa: E402, F401
from records.models_traffic import PolicyObjectWrite, PolicyProposal  # noqa: E402, F401
