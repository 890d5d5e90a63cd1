"""Clusters over the API: register from a kubeconfig (the register page's own form and service), check,
source options, enable/disable, edit, delete. Reads are a fixed number of queries per page."""

from __future__ import annotations

from django.db.models import Count, Q
from django_filters import rest_framework as filters
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.generics import get_object_or_404
from rest_framework.response import Response

from api.base import PortalViewSet, clean_with
from api.errors import ErrorSerializer
from clusters import services
from clusters.forms import (
    ClusterEditForm,
    ClusterRegisterForm,
    CredentialsForm,
    SourceOptionsForm,
    format_labels,
)
from clusters.kubeconfig import KubeconfigError
from clusters.models import Cluster, ClusterCheck, ConnectionTest, DiscoveredObject
from dnsportal.models import JobRun
from dnsportal.roles import ADMINISTER, OPERATE

ERRORS = {code: ErrorSerializer for code in (400, 401, 403, 404, 429)}
WRITE_ERRORS = {**ERRORS, 409: ErrorSerializer}


class ClusterCheckSerializer(serializers.ModelSerializer):
    class Meta:
        model = ClusterCheck
        fields = [
            "at",
            "health",
            "duration_ms",
            "server_version",
            "distribution",
            "node_count",
            "missing_permissions",
            "error",
        ]


class ClusterSerializer(serializers.ModelSerializer):
    endpoint_count = serializers.IntegerField(read_only=True)
    labels = serializers.DictField(child=serializers.CharField(allow_blank=True))
    missing_permissions = serializers.ListField(child=serializers.CharField())
    source_options = serializers.DictField()

    class Meta:
        model = Cluster
        fields = [
            "name",
            "display_name",
            "description",
            "labels",
            "enabled",
            "health",
            "server",
            "context",
            "fingerprint",
            "auth_kind",
            "allow_insecure",
            "distribution",
            "server_version",
            "node_count",
            "missing_permissions",
            "last_checked_at",
            "last_error",
            "is_stale",
            "stale_since",
            "last_sync_at",
            "last_sync_error",
            "source_options",
            "write_back_prefix",
            "is_demo",
            "created_at",
            "endpoint_count",
        ]


class ClusterDetailSerializer(ClusterSerializer):
    checks = ClusterCheckSerializer(many=True, source="recent_checks")
    private_endpoint_count = serializers.IntegerField()
    objects_with_errors = serializers.IntegerField()

    class Meta(ClusterSerializer.Meta):
        fields = [*ClusterSerializer.Meta.fields, "private_endpoint_count", "objects_with_errors", "checks"]


class CredentialsSerializer(serializers.Serializer):
    kubeconfig = serializers.CharField(
        required=False, allow_blank=True, trim_whitespace=False, help_text="Inline credentials only."
    )
    context = serializers.CharField(required=False, allow_blank=True, default="")
    allow_insecure = serializers.BooleanField(required=False, default=False)
    aws_access_key_id = serializers.CharField(required=False, allow_blank=True, default="")
    aws_secret_access_key = serializers.CharField(
        required=False, allow_blank=True, default="", write_only=True
    )
    eks_cluster_name = serializers.CharField(required=False, allow_blank=True, default="")
    eks_region = serializers.CharField(required=False, allow_blank=True, default="")


class ClusterRegisterSerializer(CredentialsSerializer):
    name = serializers.CharField(max_length=63)
    display_name = serializers.CharField(required=False, allow_blank=True, default="", max_length=100)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    labels = serializers.DictField(
        child=serializers.CharField(allow_blank=True), required=False, default=dict
    )
    kubeconfig = serializers.CharField(trim_whitespace=False, help_text="Inline credentials only.")


class ClusterUpdateSerializer(CredentialsSerializer):
    display_name = serializers.CharField(required=False, allow_blank=True, max_length=100)
    description = serializers.CharField(required=False, allow_blank=True)
    labels = serializers.DictField(child=serializers.CharField(allow_blank=True), required=False)
    write_back_prefix = serializers.ChoiceField(choices=Cluster.Prefix.choices, required=False)


class EnabledSerializer(serializers.Serializer):
    enabled = serializers.BooleanField()


class SourceOptionsSerializer(serializers.Serializer):
    args = serializers.ListField(
        child=serializers.CharField(max_length=2000),
        help_text="ExternalDNS's flags, e.g. --domain-filter=example.com, --namespace=shop.",
    )


class JobQueuedSerializer(serializers.Serializer):
    job_id = serializers.IntegerField(allow_null=True)
    message = serializers.CharField()


class ConnectionTestSerializer(serializers.ModelSerializer):
    result = serializers.DictField(
        help_text="health, server_version, distribution, node_count, "
        "missing_permissions, error, duration_ms (once done)"
    )

    class Meta:
        model = ConnectionTest
        fields = ["id", "status", "created_at", "result"]


class ObjectSerializer(serializers.ModelSerializer):
    cluster = serializers.CharField(source="cluster.name")
    errors = serializers.ListField(child=serializers.CharField())
    warnings = serializers.ListField(child=serializers.CharField())

    class Meta:
        model = DiscoveredObject
        fields = [
            "id",
            "cluster",
            "kind",
            "namespace",
            "name",
            "errors",
            "warnings",
            "skipped_reason",
            "first_seen",
            "last_seen",
        ]


class ObjectFilter(filters.FilterSet):
    cluster = filters.CharFilter(field_name="cluster__name")
    kind = filters.ChoiceFilter(choices=DiscoveredObject.Kind.choices)
    namespace = filters.CharFilter()
    problems = filters.BooleanFilter(
        method="with_problems", help_text="true: objects with errors or warnings"
    )

    class Meta:
        model = DiscoveredObject
        fields: list[str] = []

    def with_problems(self, queryset, name, value):
        problems = ~Q(errors=[]) | ~Q(warnings=[])
        return queryset.filter(problems) if value else queryset.exclude(problems)


class ClusterFilter(filters.FilterSet):
    q = filters.CharFilter(method="search", help_text="Part of the name, display name or server.")
    health = filters.ChoiceFilter(choices=Cluster.Health.choices)
    enabled = filters.BooleanFilter()
    stale = filters.BooleanFilter(field_name="is_stale")

    class Meta:
        model = Cluster
        fields = ["health", "enabled"]

    def search(self, queryset, name, value):
        return queryset.filter(
            Q(name__icontains=value) | Q(display_name__icontains=value) | Q(server__icontains=value)
        )


def _credentials_data(data: dict) -> dict:
    keys = ("kubeconfig", "context", "allow_insecure", "aws_access_key_id", "aws_secret_access_key")
    out = {k: data[k] for k in (*keys, "eks_cluster_name", "eks_region") if k in data}
    out["allow_insecure"] = "on" if data.get("allow_insecure") else ""
    return out


def _kubeconfig_error(exc: KubeconfigError) -> serializers.ValidationError:
    fields: dict[str, list[str]] = {}
    for problem in exc.problems:
        field = {"contexts": "context", "eks": "eks_cluster_name"}.get(problem.field, "kubeconfig")
        fields.setdefault(field, []).append(f"{problem.field}: {problem.message}")
    return serializers.ValidationError(fields)


def _queued(name: str, **ids: int) -> dict:
    run = JobRun.objects.filter(name=name, **{f"kwargs__{k}": v for k, v in ids.items()}).order_by("-id")
    return {"job_id": run.values_list("id", flat=True).first(), "message": f"{name} queued."}


class ClusterViewSet(PortalViewSet):
    """Registered clusters, by name."""

    lookup_field = "name"
    lookup_value_regex = r"[a-z0-9-]+"
    filterset_class = ClusterFilter
    serializer_class = ClusterSerializer
    perms = {
        "create": ADMINISTER,
        "partial_update": ADMINISTER,
        "destroy": ADMINISTER,
        "check": OPERATE,
        "enabled": ADMINISTER,
        "source_options": ADMINISTER,
        "test_connection": ADMINISTER,
        "connection_test": ADMINISTER,
    }

    def get_queryset(self):
        return Cluster.objects.annotate(endpoint_count=Count("endpoints", distinct=True)).order_by("name")

    def _detail(self, name: str) -> Cluster:
        queryset = Cluster.objects.annotate(
            endpoint_count=Count("endpoints", distinct=True),
            private_endpoint_count=Count(
                "endpoints", filter=Q(endpoints__has_private_target=True), distinct=True
            ),
            objects_with_errors=Count("discovered", filter=~Q(discovered__errors=[]), distinct=True),
        )
        cluster = get_object_or_404(queryset, name=name)
        cluster.recent_checks = list(cluster.checks.all()[:20])
        return cluster

    @extend_schema(responses={200: ClusterSerializer(many=True), **ERRORS})
    def list(self, request):
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(ClusterSerializer(page, many=True).data)

    @extend_schema(responses={200: ClusterDetailSerializer, **ERRORS})
    def retrieve(self, request, name: str):
        return Response(ClusterDetailSerializer(self._detail(name)).data)

    @extend_schema(
        request=ClusterRegisterSerializer, responses={201: ClusterDetailSerializer, **WRITE_ERRORS}
    )
    def create(self, request):
        """Register a cluster from a kubeconfig (the register page's validation: inline credentials only)."""
        body = ClusterRegisterSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        form = ClusterRegisterForm(
            data={
                "name": data["name"],
                "display_name": data["display_name"],
                "description": data["description"],
                "labels": format_labels(data["labels"]),
                **_credentials_data(data),
            }
        )
        clean = clean_with(form)
        try:
            cluster = services.cluster_register(
                actor=request.user,
                name=clean["name"],
                display_name=clean["display_name"],
                description=clean["description"],
                labels=clean["labels"],
                creds=form.credentials(),
            )
        except KubeconfigError as exc:
            raise _kubeconfig_error(exc) from None
        return Response(
            ClusterDetailSerializer(self._detail(cluster.name)).data, status=status.HTTP_201_CREATED
        )

    @extend_schema(request=ClusterUpdateSerializer, responses={200: ClusterDetailSerializer, **WRITE_ERRORS})
    def partial_update(self, request, name: str):
        """Edit a cluster's names, labels, write-back prefix, or replace its kubeconfig."""
        cluster = get_object_or_404(Cluster, name=name)
        body = ClusterUpdateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        form = ClusterEditForm(
            data={
                "display_name": data.get("display_name", cluster.display_name),
                "description": data.get("description", cluster.description),
                "labels": format_labels(data.get("labels", cluster.labels)),
                "write_back_prefix": data.get("write_back_prefix", cluster.write_back_prefix),
                "context": cluster.context,
                **_credentials_data(data),
            }
        )
        clean = clean_with(form)
        creds = form.credentials() if clean.get("kubeconfig", "").strip() else None
        try:
            services.cluster_update(
                actor=request.user,
                cluster_id=cluster.id,
                display_name=clean["display_name"],
                description=clean["description"],
                labels=clean["labels"],
                creds=creds,
                write_back_prefix=clean["write_back_prefix"],
            )
        except KubeconfigError as exc:
            raise _kubeconfig_error(exc) from None
        return Response(ClusterDetailSerializer(self._detail(cluster.name)).data)

    @extend_schema(
        parameters=[OpenApiParameter("confirm", str, required=True, description="The cluster's name.")],
        responses={204: None, **WRITE_ERRORS},
    )
    def destroy(self, request, name: str):
        """Forget a cluster; what it published is removed by the next reconcile, as a reviewed change set."""
        cluster = get_object_or_404(Cluster, name=name)
        confirm = request.query_params.get("confirm", "")
        if not confirm:
            raise serializers.ValidationError(
                {"confirm": [f"Type the cluster's name, {cluster.name}, to confirm the deletion."]}
            )
        services.cluster_delete(actor=request.user, cluster_id=cluster.id, confirm_name=confirm.strip())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=None, responses={202: JobQueuedSerializer, **WRITE_ERRORS})
    @action(detail=True, methods=["post"])
    def check(self, request, name: str):
        """Check the cluster now (version, distribution, nodes, permissions), as a job."""
        cluster = get_object_or_404(Cluster, name=name)
        services.cluster_check_request(actor=request.user, cluster_id=cluster.id)
        return Response(_queued("cluster_check", cluster_id=cluster.id), status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=EnabledSerializer, responses={200: ClusterDetailSerializer, **WRITE_ERRORS})
    @action(detail=True, methods=["post"])
    def enabled(self, request, name: str):
        """Enable or disable a cluster: a disabled cluster's endpoints are not published."""
        cluster = get_object_or_404(Cluster, name=name)
        body = EnabledSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        services.cluster_set_enabled(
            actor=request.user, cluster_id=cluster.id, enabled=body.validated_data["enabled"]
        )
        return Response(ClusterDetailSerializer(self._detail(cluster.name)).data)

    @extend_schema(request=SourceOptionsSerializer, responses={200: ClusterDetailSerializer, **WRITE_ERRORS})
    @action(detail=True, methods=["put"], url_path="source-options")
    def source_options(self, request, name: str):
        """Replace the cluster's source options (ExternalDNS's flags); its endpoints are recomputed."""
        cluster = get_object_or_404(Cluster, name=name)
        body = SourceOptionsSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        clean = clean_with(SourceOptionsForm(data={"options": "\n".join(body.validated_data["args"])}))
        services.cluster_set_source_options(
            actor=request.user, cluster_id=cluster.id, options=clean["options"]
        )
        return Response(ClusterDetailSerializer(self._detail(cluster.name)).data)

    @extend_schema(request=CredentialsSerializer, responses={202: ConnectionTestSerializer, **WRITE_ERRORS})
    @action(detail=False, methods=["post"], url_path="test-connection")
    def test_connection(self, request):
        """Test a kubeconfig before registering it (the register page's "Test connection"), as a job."""
        body = CredentialsSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        form = CredentialsForm(data=_credentials_data(body.validated_data))
        clean_with(form)
        test = services.connection_test_create(actor=request.user, creds=form.credentials())
        return Response(ConnectionTestSerializer(test).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        parameters=[OpenApiParameter("test_id", int, OpenApiParameter.PATH)],
        responses={200: ConnectionTestSerializer, **ERRORS},
    )
    @action(detail=False, methods=["get"], url_path=r"test-connection/(?P<test_id>[0-9]+)")
    def connection_test(self, request, test_id: str):
        """A connection test's result (only the person who asked for it sees it, as on the page)."""
        test = get_object_or_404(ConnectionTest, id=test_id, created_by=request.user)
        return Response(ConnectionTestSerializer(test).data)


class ObjectViewSet(PortalViewSet):
    """The Services and Ingresses discovery saw, with what stopped them (errors) or what it warns about."""

    serializer_class = ObjectSerializer
    filterset_class = ObjectFilter

    def get_queryset(self):
        return DiscoveredObject.objects.select_related("cluster").only(
            *[f for f in ObjectSerializer.Meta.fields if f != "cluster"], "cluster__name"
        )

    @extend_schema(responses={200: ObjectSerializer(many=True), **ERRORS})
    def list(self, request):
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(ObjectSerializer(page, many=True).data)
