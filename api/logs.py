"""The audit log (filter by actor, object, action, time), job runs (and "run now"), and personal API tokens
(list, revoke; they are made on the person's own page, where the key is shown once)."""

from __future__ import annotations

from datetime import UTC

from django.core.exceptions import ValidationError
from django.db import transaction
from django_filters import rest_framework as filters
from django_filters.fields import IsoDateTimeField
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.decorators import action
from rest_framework.generics import get_object_or_404
from rest_framework.response import Response

from api import tokens
from api.base import PortalViewSet
from api.clusters import ERRORS, WRITE_ERRORS
from api.models import ApiToken
from dnsportal import queue, scheduler
from dnsportal.audit import audit_record
from dnsportal.models import AuditEntry, JobRun
from dnsportal.roles import ADMINISTER, OPERATE, has_role_perm


class AuditSerializer(serializers.ModelSerializer):
    actor = serializers.CharField(source="actor_name")
    before = serializers.JSONField()
    after = serializers.JSONField()

    class Meta:
        model = AuditEntry
        fields = [
            "id",
            "at",
            "actor",
            "action",
            "object_type",
            "object_id",
            "object_repr",
            "before",
            "after",
            "request_id",
            "via",
            "api_token_id",
            "api_token_name",
        ]


class UtcDateTimeField(IsoDateTimeField):
    """An ISO 8601 time, compared in UTC: PostgreSQL refuses offsets beyond ±15:59 that Python accepts."""

    def to_python(self, value):
        parsed = super().to_python(value)
        try:
            return parsed.astimezone(UTC) if parsed is not None else None
        except OverflowError:
            raise ValidationError(self.error_messages["invalid"], code="invalid") from None


class UtcDateTimeFilter(filters.IsoDateTimeFilter):
    field_class = UtcDateTimeField


class AuditFilter(filters.FilterSet):
    actor = filters.CharFilter(field_name="actor_name", help_text="Username, or 'system'.")
    action = filters.CharFilter(help_text="e.g. changeset.approved")
    object_type = filters.CharFilter(help_text="e.g. records.changeset")
    object_id = filters.CharFilter()
    request_id = filters.CharFilter()
    via = filters.CharFilter(help_text="api: what came through the API")
    since = UtcDateTimeFilter(
        field_name="at", lookup_expr="gte", help_text="ISO 8601, e.g. 2026-11-30T12:00Z"
    )
    until = UtcDateTimeFilter(field_name="at", lookup_expr="lte")

    class Meta:
        model = AuditEntry
        fields: list[str] = []


class AuditViewSet(PortalViewSet):
    """The append-only audit log: who did what to which object, before and after."""

    serializer_class = AuditSerializer
    filterset_class = AuditFilter

    def get_queryset(self):
        return AuditEntry.objects.all()

    @extend_schema(responses={200: AuditSerializer(many=True), **ERRORS})
    def list(self, request):
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(AuditSerializer(page, many=True).data)

    @extend_schema(responses={200: AuditSerializer, **ERRORS})
    def retrieve(self, request, pk: str):
        return Response(AuditSerializer(self.get_object()).data)


class JobSerializer(serializers.ModelSerializer):
    actor = serializers.CharField(source="actor_name")
    kwargs = serializers.DictField()

    class Meta:
        model = JobRun
        fields = [
            "id",
            "name",
            "queue",
            "kwargs",
            "status",
            "actor",
            "created_at",
            "started_at",
            "finished_at",
            "error",
        ]


class JobDetailSerializer(JobSerializer):
    class Meta(JobSerializer.Meta):
        fields = [*JobSerializer.Meta.fields, "log"]


class JobFilter(filters.FilterSet):
    status = filters.ChoiceFilter(choices=JobRun.Status.choices)
    name = filters.CharFilter()

    class Meta:
        model = JobRun
        fields: list[str] = []


class JobViewSet(PortalViewSet):
    """Background job runs, with their log and error."""

    serializer_class = JobSerializer
    filterset_class = JobFilter
    perms = {"run": OPERATE}

    def get_queryset(self):
        return JobRun.objects.defer("log")

    @extend_schema(responses={200: JobSerializer(many=True), **ERRORS})
    def list(self, request):
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(JobSerializer(page, many=True).data)

    @extend_schema(responses={200: JobDetailSerializer, **ERRORS})
    def retrieve(self, request, pk: str):
        return Response(JobDetailSerializer(get_object_or_404(JobRun, id=pk)).data)

    @extend_schema(
        parameters=[OpenApiParameter("name", str, OpenApiParameter.PATH, enum=sorted(scheduler.SCHEDULES))],
        request=None,
        responses={202: JobSerializer, **WRITE_ERRORS},
    )
    @action(detail=False, methods=["post"], url_path=r"run/(?P<name>[a-z_]+)")
    def run(self, request, name: str):
        """Run a periodic job now instead of waiting for its schedule."""
        if name not in scheduler.SCHEDULES:
            raise serializers.ValidationError({"name": [f"There is no periodic job called {name!r}."]})
        with transaction.atomic():
            run = queue.enqueue(name, actor=request.user)
            audit_record(actor=request.user, action="job.run_now", obj=run, after={"job": name})
        return Response(JobSerializer(run).data, status=202)


class TokenSerializer(serializers.ModelSerializer):
    user = serializers.CharField(source="user.username")
    state = serializers.CharField()
    revoked_by = serializers.CharField(source="revoked_by.username", allow_null=True, default=None)

    class Meta:
        model = ApiToken
        fields = [
            "id",
            "user",
            "name",
            "prefix",
            "state",
            "created_at",
            "expires_at",
            "last_used_at",
            "revoked_at",
            "revoked_by",
        ]


class TokenViewSet(PortalViewSet):
    """Personal API tokens: your own (an admin sees everyone's). The key itself is never shown again."""

    serializer_class = TokenSerializer

    def get_queryset(self):
        rows = ApiToken.objects.select_related("user", "revoked_by")
        if getattr(self, "swagger_fake_view", False) or has_role_perm(self.request.user, ADMINISTER):
            return rows
        return rows.filter(user=self.request.user)

    @extend_schema(responses={200: TokenSerializer(many=True), **ERRORS})
    def list(self, request):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(TokenSerializer(page, many=True).data)

    @extend_schema(request=None, responses={200: TokenSerializer, **WRITE_ERRORS})
    @action(detail=True, methods=["post"])
    def revoke(self, request, pk: str):
        """Revoke a token: your own, or (admins) anyone's. It is refused from the next request on."""
        token = get_object_or_404(self.get_queryset(), id=pk)
        tokens.token_revoke(actor=request.user, token_id=token.id)
        return Response(TokenSerializer(self.get_queryset().get(id=token.id)).data)
