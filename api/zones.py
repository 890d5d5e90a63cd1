"""Provider accounts, zones (reconcile, verify, adopt), their records (filter by ownership), and
verifications (a zone's check, a measured split, an HTTP probe)."""

from __future__ import annotations

from django.db.models import Count, Q
from django_filters import rest_framework as filters
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.generics import get_object_or_404
from rest_framework.response import Response

from api.base import PortalViewSet, clean_with
from api.clusters import ERRORS, WRITE_ERRORS, JobQueuedSerializer, _queued
from dnsportal import queue
from dnsportal.roles import ADMINISTER, OPERATE
from records import services, verification_services
from records.forms import AccountForm, ImportZonesForm, ZoneForm
from records.forms_verify import ProbeForm
from records.models import ProviderAccount, Verification, Zone, ZoneRecord

# select_related ignores Zone's manager: its snapshot (the last applied endpoints, megabytes) stays out.
ZONE_SNAPSHOTS = tuple(f"zone__{f}" for f in Zone.SNAPSHOT_FIELDS)


class AccountSerializer(serializers.ModelSerializer):
    zone_count = serializers.IntegerField(read_only=True)
    secret_fingerprint = serializers.CharField(read_only=True)

    class Meta:
        model = ProviderAccount
        fields = [
            "id",
            "name",
            "kind",
            "credential_kind",
            "access_key_id",
            "role_arn",
            "region",
            "endpoint_url",
            "server_id",
            "dns_servers",
            "rate",
            "burst",
            "secret_fingerprint",
            "last_check_at",
            "last_check_ok",
            "last_check_message",
            "is_demo",
            "created_at",
            "zone_count",
        ]


class AccountCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=63)
    kind = serializers.ChoiceField(choices=ProviderAccount.Kind.choices, default=ProviderAccount.Kind.ROUTE53)
    credential_kind = serializers.ChoiceField(
        choices=ProviderAccount.CredentialKind.choices, required=False, allow_blank=True, default=""
    )
    access_key_id = serializers.CharField(required=False, allow_blank=True, default="")
    secret = serializers.CharField(required=False, allow_blank=True, default="", write_only=True)
    role_arn = serializers.CharField(required=False, allow_blank=True, default="")
    region = serializers.CharField(required=False, allow_blank=True, default="us-east-1")
    endpoint_url = serializers.CharField(required=False, allow_blank=True, default="")
    server_id = serializers.CharField(required=False, allow_blank=True, default="localhost")
    dns_servers = serializers.CharField(required=False, allow_blank=True, default="")
    rate = serializers.FloatField(required=False, default=5.0)
    burst = serializers.IntegerField(required=False, default=5)


class ImportSerializer(serializers.Serializer):
    domain_filter = serializers.ListField(child=serializers.CharField(), required=False, default=list)


class ZoneSerializer(serializers.ModelSerializer):
    account_name = serializers.CharField(source="account.name")
    display_name = serializers.CharField()
    ownership_counts = serializers.DictField(child=serializers.IntegerField())

    class Meta:
        model = Zone
        fields = [
            "id",
            "name",
            "display_name",
            "account",
            "account_name",
            "provider_zone_id",
            "private",
            "enabled",
            "owner_id",
            "policy",
            "txt_prefix",
            "txt_suffix",
            "drift_interval",
            "full_read_interval",
            "drift_check_summary",
            "drift_found_at",
            "drift_found",
            "approval_mode",
            "webhook_url",
            "nameserver_override",
            "verify_interval",
            "last_verified_at",
            "last_verification_ok",
            "state_read_at",
            "last_reconcile_at",
            "last_reconcile_error",
            "ownership_counts",
            "is_demo",
            "created_at",
        ]


class ZoneUpdateSerializer(serializers.Serializer):
    owner_id = serializers.CharField(required=False, max_length=100)
    policy = serializers.ChoiceField(choices=Zone.Policy.choices, required=False)
    txt_prefix = serializers.CharField(required=False, allow_blank=True, max_length=63)
    txt_suffix = serializers.CharField(required=False, allow_blank=True, max_length=63)
    drift_interval = serializers.IntegerField(required=False, min_value=0, max_value=2147483647)
    full_read_interval = serializers.IntegerField(required=False, min_value=0, max_value=2147483647)
    approval_mode = serializers.ChoiceField(choices=Zone.Approval.choices, required=False)
    webhook_url = serializers.CharField(required=False, allow_blank=True, max_length=200)
    nameserver_override = serializers.CharField(required=False, allow_blank=True)
    verify_interval = serializers.IntegerField(required=False, min_value=0, max_value=2147483647)
    enabled = serializers.BooleanField(required=False)
    private = serializers.BooleanField(required=False)


class AdoptSerializer(serializers.Serializer):
    record_id = serializers.IntegerField(min_value=1, max_value=2**63 - 1)


class RecordSerializer(serializers.ModelSerializer):
    zone_name = serializers.CharField(source="zone.name")
    values = serializers.ListField(child=serializers.CharField())
    data = serializers.DictField(help_text="The record set as Route53 returns it.")

    class Meta:
        model = ZoneRecord
        fields = [
            "id",
            "zone",
            "zone_name",
            "name",
            "type",
            "set_identifier",
            "ownership",
            "owner_id",
            "values",
            "data",
        ]


class VerificationSerializer(serializers.ModelSerializer):
    zone_name = serializers.CharField(source="zone.name")
    requested_by = serializers.CharField(source="requested_by.username", allow_null=True, default=None)

    class Meta:
        model = Verification
        fields = [
            "id",
            "zone",
            "zone_name",
            "changeset",
            "kind",
            "hostname",
            "status",
            "requested_by",
            "started_at",
            "finished_at",
            "message",
            "propagation_seconds",
        ]


class VerificationDetailSerializer(VerificationSerializer):
    nameservers = serializers.ListField(child=serializers.CharField())
    differences = serializers.ListField(child=serializers.DictField())
    report = serializers.DictField()

    class Meta(VerificationSerializer.Meta):
        fields = [*VerificationSerializer.Meta.fields, "nameservers", "differences", "report"]


class MeasureSerializer(serializers.Serializer):
    zone_id = serializers.IntegerField(min_value=1, max_value=2**63 - 1)
    hostname = serializers.CharField(max_length=253)


class ProbeSerializer(MeasureSerializer):
    n = serializers.IntegerField(required=False, default=200)
    port = serializers.IntegerField(required=False, default=80)
    path = serializers.CharField(required=False, default="/", max_length=2000)


# --- filters --------------------------------------------------------------------------------------------


class ZoneFilter(filters.FilterSet):
    q = filters.CharFilter(field_name="name", lookup_expr="icontains")

    class Meta:
        model = Zone
        fields = ["account", "enabled", "private"]


class RecordFilter(filters.FilterSet):
    q = filters.CharFilter(field_name="name", lookup_expr="icontains")
    ownership = filters.ChoiceFilter(choices=ZoneRecord.Ownership.choices)
    owner_id = filters.CharFilter()
    type = filters.CharFilter()

    class Meta:
        model = ZoneRecord
        fields = ["zone"]


class VerificationFilter(filters.FilterSet):
    kind = filters.ChoiceFilter(choices=Verification.Kind.choices)
    status = filters.ChoiceFilter(choices=Verification.Status.choices)
    hostname = filters.CharFilter()
    q = filters.CharFilter(method="search")

    class Meta:
        model = Verification
        fields = ["zone", "changeset"]

    def search(self, queryset, name, value):
        return queryset.filter(Q(hostname__icontains=value) | Q(zone__name__icontains=value))


# --- views ----------------------------------------------------------------------------------------------


class AccountViewSet(PortalViewSet):
    """DNS provider accounts (Route53, PowerDNS); secrets are shown as fingerprints only."""

    serializer_class = AccountSerializer
    filterset_fields = ["kind"]
    perms = {"create": ADMINISTER, "check": ADMINISTER, "import_zones": ADMINISTER}

    def get_queryset(self):
        return ProviderAccount.objects.annotate(zone_count=Count("zones"))

    @extend_schema(responses={200: AccountSerializer(many=True), **ERRORS})
    def list(self, request):
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(AccountSerializer(page, many=True).data)

    @extend_schema(responses={200: AccountSerializer, **ERRORS})
    def retrieve(self, request, pk: str):
        return Response(AccountSerializer(self.get_object()).data)

    @extend_schema(request=AccountCreateSerializer, responses={201: AccountSerializer, **WRITE_ERRORS})
    def create(self, request):
        """Add an account (the add page's validation); its connection test runs as a job."""
        body = AccountCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        clean = clean_with(AccountForm(data=body.validated_data))
        account = services.account_create(actor=request.user, **clean)
        return Response(AccountSerializer(self.get_queryset().get(id=account.id)).data, status=201)

    @extend_schema(request=None, responses={202: JobQueuedSerializer, **WRITE_ERRORS})
    @action(detail=True, methods=["post"])
    def check(self, request, pk: str):
        account = self.get_object()
        queue.enqueue("account_check", actor=request.user, account_id=account.id)
        return Response(_queued("account_check", account_id=account.id), status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=ImportSerializer, responses={202: JobQueuedSerializer, **WRITE_ERRORS})
    @action(detail=True, methods=["post"], url_path="import")
    def import_zones(self, request, pk: str):
        """Import the account's hosted zones (optionally only under some domains), as a job."""
        account = self.get_object()
        body = ImportSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        clean = clean_with(
            ImportZonesForm(data={"domain_filter": ",".join(body.validated_data["domain_filter"])})
        )
        services.account_import_zones(
            actor=request.user, account_id=account.id, domain_filter=clean["domain_filter"]
        )
        return Response(_queued("account_import_zones", account_id=account.id), status=202)


class ZoneViewSet(PortalViewSet):
    """Zones: settings, reconcile now, verify now, adopt a record."""

    serializer_class = ZoneSerializer
    filterset_class = ZoneFilter
    perms = {"partial_update": ADMINISTER, "reconcile": OPERATE, "verify": OPERATE, "adopt": OPERATE}

    def get_queryset(self):
        return Zone.objects.select_related("account").order_by("name", "id")

    @extend_schema(responses={200: ZoneSerializer(many=True), **ERRORS})
    def list(self, request):
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(ZoneSerializer(page, many=True).data)

    @extend_schema(responses={200: ZoneSerializer, **ERRORS})
    def retrieve(self, request, pk: str):
        return Response(ZoneSerializer(self.get_object()).data)

    @extend_schema(request=ZoneUpdateSerializer, responses={200: ZoneSerializer, **WRITE_ERRORS})
    def partial_update(self, request, pk: str):
        """Change a zone's settings (the zone settings page's validation)."""
        zone = self.get_object()
        body = ZoneUpdateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        form = ZoneForm(instance=Zone.objects.get(id=zone.id))
        data = {f: form.initial.get(f) for f in ZoneForm.Meta.fields}
        data.update(body.validated_data)
        data = {k: ("" if v is None else v) for k, v in data.items()}
        for flag in ("enabled", "private"):
            data[flag] = "on" if data[flag] else ""
        form = ZoneForm(data=data, instance=Zone.objects.get(id=zone.id))
        clean = clean_with(form)
        try:
            services.zone_update(
                actor=request.user, zone_id=zone.id, **{f: clean[f] for f in ZoneForm.Meta.fields}
            )
        except ValueError as exc:
            raise serializers.ValidationError({"non_field_errors": [str(exc)]}) from None
        return Response(ZoneSerializer(self.get_queryset().get(id=zone.id)).data)

    @extend_schema(request=None, responses={202: JobQueuedSerializer, **WRITE_ERRORS})
    @action(detail=True, methods=["post"])
    def reconcile(self, request, pk: str):
        """Read the zone again and plan: a change set appears if anything differs (you cannot approve it)."""
        zone = self.get_object()
        services.zone_reconcile_request(actor=request.user, zone_id=zone.id)
        return Response(_queued("zone_reconcile", zone_id=zone.id), status=202)

    @extend_schema(request=None, responses={202: JobQueuedSerializer, **WRITE_ERRORS})
    @action(detail=True, methods=["post"])
    def verify(self, request, pk: str):
        """Ask every nameserver of the zone for every record set the portal owns, as a job."""
        zone = self.get_object()
        queue.enqueue("zone_verify", actor=request.user, zone_id=zone.id)
        return Response(_queued("zone_verify", zone_id=zone.id), status=202)

    @extend_schema(request=AdoptSerializer, responses={202: JobQueuedSerializer, **WRITE_ERRORS})
    @action(detail=True, methods=["post"])
    def adopt(self, request, pk: str):
        """Take over a record another owner id (or nobody) holds: planned as a change set for review."""
        zone = self.get_object()
        body = AdoptSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        record = get_object_or_404(ZoneRecord, id=body.validated_data["record_id"], zone=zone)
        services.zone_adopt_request(actor=request.user, zone_id=zone.id, record_id=record.id)
        return Response(_queued("zone_reconcile", zone_id=zone.id), status=202)


class RecordViewSet(PortalViewSet):
    """The zones' records as last read, with who owns each (owned, another owner id, nobody, unmanaged)."""

    serializer_class = RecordSerializer
    filterset_class = RecordFilter

    def get_queryset(self):
        return ZoneRecord.objects.select_related("zone").only(
            *[f for f in RecordSerializer.Meta.fields if f not in ("zone_name", "values")], "zone__name"
        )

    @extend_schema(responses={200: RecordSerializer(many=True), **ERRORS})
    def list(self, request):
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(RecordSerializer(page, many=True).data)

    @extend_schema(responses={200: RecordSerializer, **ERRORS})
    def retrieve(self, request, pk: str):
        return Response(RecordSerializer(self.get_object()).data)


class VerificationViewSet(PortalViewSet):
    """Verifications: a zone's resolution check, a measured split, an HTTP probe."""

    serializer_class = VerificationSerializer
    filterset_class = VerificationFilter
    perms = {"measure": OPERATE, "probe": OPERATE}

    def get_queryset(self):
        return Verification.objects.select_related("zone", "requested_by").defer(
            "report", "differences", *ZONE_SNAPSHOTS
        )

    @extend_schema(responses={200: VerificationSerializer(many=True), **ERRORS})
    def list(self, request):
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(VerificationSerializer(page, many=True).data)

    @extend_schema(responses={200: VerificationDetailSerializer, **ERRORS})
    def retrieve(self, request, pk: str):
        rows = Verification.objects.select_related("zone", "requested_by").defer(*ZONE_SNAPSHOTS)
        v = get_object_or_404(rows, id=pk)
        return Response(VerificationDetailSerializer(v).data)

    @extend_schema(request=MeasureSerializer, responses={202: VerificationSerializer, **WRITE_ERRORS})
    @action(detail=False, methods=["post"])
    def measure(self, request):
        """Measure how a hostname's answers split (enough queries for ±2 points at 95 %), as a job."""
        body = MeasureSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        zone = get_object_or_404(Zone, id=body.validated_data["zone_id"])
        hostname = body.validated_data["hostname"].strip().rstrip(".").lower()
        verification_services.distribution_request(actor=request.user, zone_id=zone.id, hostname=hostname)
        v = self.get_queryset().filter(zone=zone, hostname=hostname, kind=Verification.Kind.DISTRIBUTION)
        return Response(VerificationSerializer(v.order_by("-id").first()).data, status=202)

    @extend_schema(request=ProbeSerializer, responses={202: VerificationSerializer, **WRITE_ERRORS})
    @action(detail=False, methods=["post"])
    def probe(self, request):
        """Probe a hostname over HTTP: n requests, counted per cluster against the intended split."""
        body = ProbeSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        clean = clean_with(
            ProbeForm(
                data={"zone_id": data["zone_id"], "n": data["n"], "port": data["port"], "path": data["path"]}
            )
        )
        zone = get_object_or_404(Zone, id=clean["zone_id"])
        v = verification_services.probe_request(
            actor=request.user,
            zone_id=zone.id,
            hostname=data["hostname"].strip().rstrip(".").lower(),
            n=clean["n"],
            port=clean["port"],
            path=clean["path"],
        )
        return Response(VerificationSerializer(self.get_queryset().get(id=v.id)).data, status=202)
