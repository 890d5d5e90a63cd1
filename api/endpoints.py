"""Endpoints (what each cluster wants published) and hostnames (the aggregate across clusters: routing per
cluster, what the zones serve, conflicts, the last verification)."""

from __future__ import annotations

from django.db.models import Q
from django.http import Http404
from django_filters import rest_framework as filters
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.response import Response

from api.base import PortalAPIView, PortalViewSet
from api.errors import ErrorSerializer
from records.models import Endpoint, Verification
from records.selectors import routing_summary

ERRORS = {code: ErrorSerializer for code in (400, 401, 403, 404, 429)}


class EndpointSerializer(serializers.ModelSerializer):
    cluster = serializers.CharField(source="cluster.name")
    cluster_stale = serializers.BooleanField(source="cluster.is_stale")
    targets = serializers.ListField(child=serializers.CharField())
    properties = serializers.DictField(child=serializers.CharField())
    labels = serializers.DictField(child=serializers.CharField(allow_blank=True))
    private_targets = serializers.ListField(child=serializers.CharField())
    routing = serializers.SerializerMethodField()
    source_kind = serializers.CharField(source="source.kind")
    source_namespace = serializers.CharField(source="source.namespace")
    source_name = serializers.CharField(source="source.name")

    class Meta:
        model = Endpoint
        fields = [
            "id",
            "dns_name",
            "record_type",
            "set_identifier",
            "targets",
            "ttl",
            "properties",
            "routing",
            "labels",
            "cluster",
            "cluster_stale",
            "resource",
            "source_kind",
            "source_namespace",
            "source_name",
            "private_targets",
            "has_private_target",
            "first_seen",
            "last_seen",
        ]

    def get_routing(self, ep: Endpoint) -> str:
        return routing_summary(ep.properties)

    def to_representation(self, ep: Endpoint) -> dict:
        # The declared fields document the shape; building the dict directly is what keeps a page of 100
        # well inside its time (DRF's field-by-field path costs about a fifth of a millisecond a row).
        source, cluster = ep.source, ep.cluster
        return {
            "id": ep.id,
            "dns_name": ep.dns_name,
            "record_type": ep.record_type,
            "set_identifier": ep.set_identifier,
            "targets": ep.targets,
            "ttl": ep.ttl,
            "properties": ep.properties,
            "routing": routing_summary(ep.properties),
            "labels": ep.labels,
            "cluster": cluster.name,
            "cluster_stale": cluster.is_stale,
            "resource": ep.resource,
            "source_kind": source.kind,
            "source_namespace": source.namespace,
            "source_name": source.name,
            "private_targets": ep.private_targets,
            "has_private_target": ep.has_private_target,
            "first_seen": self.fields["first_seen"].to_representation(ep.first_seen),
            "last_seen": self.fields["last_seen"].to_representation(ep.last_seen),
        }


class EndpointFilter(filters.FilterSet):
    name = filters.CharFilter(field_name="dns_name", help_text="Exact DNS name, no trailing dot.")
    q = filters.CharFilter(method="search", help_text="Part of the DNS name or of the object.")
    cluster = filters.CharFilter(field_name="cluster__name")
    type = filters.ChoiceFilter(
        field_name="record_type", choices=[(t, t) for t in ("A", "AAAA", "CNAME", "SRV", "TXT", "NS", "MX")]
    )
    private = filters.BooleanFilter(field_name="has_private_target")

    class Meta:
        model = Endpoint
        fields: list[str] = []

    def search(self, queryset, name, value):
        return queryset.filter(Q(dns_name__icontains=value) | Q(resource__icontains=value))


class EndpointViewSet(PortalViewSet):
    """Endpoints as discovery computed them, per cluster (a stale cluster's are frozen, and say so)."""

    serializer_class = EndpointSerializer
    filterset_class = EndpointFilter

    def get_queryset(self):
        # Only the columns shown: a cluster row also holds its (encrypted) kubeconfig.
        own = [f for f in EndpointSerializer.Meta.fields if f not in EndpointSerializer._declared_fields]
        return Endpoint.objects.select_related("cluster", "source").only(
            *own,
            "targets",
            "properties",
            "labels",
            "private_targets",
            "cluster__name",
            "cluster__is_stale",
            "source__kind",
            "source__namespace",
            "source__name",
        )

    @extend_schema(responses={200: EndpointSerializer(many=True), **ERRORS})
    def list(self, request):
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(EndpointSerializer(page, many=True).data)

    @extend_schema(responses={200: EndpointSerializer, **ERRORS})
    def retrieve(self, request, pk: str):
        return Response(EndpointSerializer(self.get_object()).data)


# --- hostnames ------------------------------------------------------------------------------------------


class CellSerializer(serializers.Serializer):
    cluster = serializers.CharField()
    routing = serializers.ListField(child=serializers.CharField(), help_text='e.g. ["weighted 80"]')
    problem = serializers.BooleanField()
    notes = serializers.ListField(child=serializers.CharField())


class ServedSerializer(serializers.Serializer):
    zone = serializers.CharField()
    type = serializers.CharField()
    routing = serializers.CharField(source="label")
    values = serializers.CharField(source="title")
    ownership = serializers.CharField()
    owner_id = serializers.CharField()


class ReasonSerializer(serializers.Serializer):
    kind = serializers.CharField()
    message = serializers.CharField()
    zone = serializers.CharField(source="zone.display_name", allow_null=True, default=None)
    record_type = serializers.CharField()
    objects = serializers.ListField(child=serializers.CharField())


class VerdictSerializer(serializers.Serializer):
    verification_id = serializers.IntegerField()
    status = serializers.CharField()
    label = serializers.CharField()
    scope = serializers.CharField()
    started_at = serializers.DateTimeField()
    message = serializers.CharField()


class ZoneRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField(source="display_name")


class HostnameSerializer(serializers.Serializer):
    name = serializers.CharField()
    clusters = serializers.SerializerMethodField()
    served = ServedSerializer(many=True, source="row.served")
    zones = ZoneRefSerializer(many=True)
    conflicts = ReasonSerializer(many=True)
    held_back = ReasonSerializer(many=True)
    verification = VerdictSerializer(source="verdict", allow_null=True)
    open_proposal = serializers.IntegerField(source="proposal", allow_null=True)

    @extend_schema_field(CellSerializer(many=True))
    def get_clusters(self, row) -> list[dict]:
        return CellSerializer(
            [
                {
                    "cluster": c.cluster,
                    "routing": [e.label for e in c.entries],
                    "problem": any(e.problem for e in c.entries),
                    "notes": list(c.notes),
                }
                for c in row.row.cells
                if c.serves
            ],
            many=True,
        ).data


class ShareSerializer(serializers.Serializer):
    cluster = serializers.CharField()
    enabled = serializers.BooleanField(default=True)
    weight = serializers.IntegerField(allow_null=True, required=False, default=None)
    role = serializers.CharField(allow_blank=True, required=False, default="")
    region = serializers.CharField(allow_blank=True, required=False, default="")
    continent = serializers.CharField(allow_blank=True, required=False, default="")
    country = serializers.CharField(allow_blank=True, required=False, default="")
    subdivision = serializers.CharField(allow_blank=True, required=False, default="")


class PolicySerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=["round-robin", "weighted", "failover", "latency", "geolocation"])
    ttl = serializers.IntegerField(min_value=0, max_value=2147483647, required=False, default=0)
    shares = ShareSerializer(many=True)


class HostnameDetailSerializer(HostnameSerializer):
    policy = PolicySerializer(help_text="The traffic policy the clusters ask for now.")
    endpoints = EndpointSerializer(many=True)
    latest_split = serializers.IntegerField(allow_null=True)
    latest_probe = serializers.IntegerField(allow_null=True)


class HostnamePageSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    page = serializers.IntegerField()
    pages = serializers.IntegerField()
    results = HostnameSerializer(many=True)


class HostnameListView(PortalAPIView):
    """Every hostname the clusters serve, across clusters (the Policies page), 50 a page."""

    @extend_schema(
        operation_id="hostnames_list",
        parameters=[
            OpenApiParameter("q", str, description="Part of the hostname."),
            OpenApiParameter("zone", int),
            OpenApiParameter("cluster", str),
            OpenApiParameter(
                "routing", str, enum=["round-robin", "weighted", "failover", "latency", "geolocation"]
            ),
            OpenApiParameter("conflict", int, enum=[0, 1], description="1: names with a conflict only."),
            OpenApiParameter("page", int),
        ],
        responses={200: HostnamePageSerializer, **ERRORS},
    )
    def get(self, request):
        from records.policy_matrix import PolicyFilters, policy_matrix

        params = {k: v for k, v in request.query_params.items() if isinstance(v, str)}
        page = request.query_params.get("page", "1")
        matrix = policy_matrix(PolicyFilters.from_query(params), page if page.isdigit() else 1)
        body = {
            "count": matrix.page.paginator.count,
            "page": matrix.page.number,
            "pages": matrix.page.paginator.num_pages,
            "results": HostnameSerializer(matrix.page.object_list, many=True).data,
        }
        return Response(body)


class HostnameViewSet(PortalViewSet):
    """One hostname across clusters: routing per cluster, what the zones serve, conflicts, verification."""

    lookup_field = "name"
    lookup_value_regex = r"[^/]+"
    pagination_class = None
    filter_backends: list = []

    @extend_schema(responses={200: HostnameDetailSerializer, **ERRORS})
    def retrieve(self, request, name: str):
        from records.policy_matrix import hostname_row
        from records.proposals import policy_now

        name = name.lower().rstrip(".")
        row = hostname_row(name)
        if row is None:
            raise Http404
        data = HostnameSerializer(row).data
        policy = policy_now(name).to_dict()
        endpoints = EndpointViewSet().get_queryset().filter(dns_name=name)
        latest = Verification.objects.filter(hostname=name).order_by("-started_at", "-id")
        data.update(
            policy={k: policy[k] for k in ("kind", "ttl", "shares")},
            endpoints=EndpointSerializer(endpoints, many=True).data,
            latest_split=latest.filter(kind=Verification.Kind.DISTRIBUTION)
            .values_list("id", flat=True)
            .first(),
            latest_probe=latest.filter(kind=Verification.Kind.PROBE).values_list("id", flat=True).first(),
        )
        return Response(data)
