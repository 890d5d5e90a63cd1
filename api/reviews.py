"""What a second person reviews: change sets (list, the diff, approve, reject, wait for a final state) and
traffic-policy proposals (propose, approve, reject, retry, give up). The four-eyes rules are the services':
the author of a change set cannot approve it here either."""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings
from django.db.models import Prefetch
from django_filters import rest_framework as filters
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.generics import get_object_or_404
from rest_framework.response import Response

from api.base import PortalViewSet
from api.clusters import ERRORS, WRITE_ERRORS
from api.endpoints import PolicySerializer
from dnsportal.roles import APPROVE, OPERATE
from records import changesets, lifecycle, proposals
from records.models import Change, ChangeSet, PolicyObjectWrite, PolicyProposal, Zone
from records.traffic import TrafficPolicy

# select_related ignores the related model's manager: a zone joined to a row would bring its last applied
# endpoints (megabytes of JSON in a zone of 100,000 names) unless they are deferred here.
ZONE_SNAPSHOTS = tuple(f"zone__{f}" for f in Zone.SNAPSHOT_FIELDS)

WAIT = OpenApiParameter(
    "wait",
    int,
    description="Seconds to wait for a final state before answering (long poll; at most "
    "DNSPORTAL_API_MAX_WAIT_S). The answer says whether it is final.",
)
POLL_S = 0.25


def _wait_seconds(request) -> float:
    raw = request.query_params.get("wait", "")
    if not raw:
        return 0.0
    try:
        value = float(raw)
    except ValueError:
        raise serializers.ValidationError({"wait": ["wait must be a number of seconds."]}) from None
    if not value >= 0:  # NaN and negatives
        raise serializers.ValidationError({"wait": ["wait must be a number of seconds."]})
    return min(value, float(settings.API_MAX_WAIT_S))


def _wait_for(model, pk: int, final: frozenset[str], seconds: float) -> None:
    """Poll the row's status (one small query each time) until it is final or the time is up."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        current = model.objects.filter(id=pk).values_list("status", flat=True).first()
        if current is None or current in final:
            return
        time.sleep(POLL_S)


# --- change sets ----------------------------------------------------------------------------------------


class ChangeSerializer(serializers.ModelSerializer):
    reasons = serializers.ListField(child=serializers.CharField())
    sources = serializers.ListField(child=serializers.JSONField())
    before = serializers.JSONField()
    after = serializers.JSONField()

    class Meta:
        model = Change
        fields = [
            "position",
            "kind",
            "name",
            "type",
            "set_identifier",
            "reasons",
            "sources",
            "before",
            "after",
            "replace",
            "drift",
            "needs_approval",
            "status",
            "error",
        ]


class ChangeSetSerializer(serializers.ModelSerializer):
    zone_name = serializers.CharField(source="zone.name")
    requested_by = serializers.CharField(source="requested_by.username", allow_null=True, default=None)
    approved_by = serializers.CharField(source="approved_by.username", allow_null=True, default=None)
    approval_reasons = serializers.ListField(child=serializers.CharField())
    summary = serializers.DictField(child=serializers.IntegerField())
    final = serializers.SerializerMethodField()

    class Meta:
        model = ChangeSet
        fields = [
            "id",
            "zone",
            "zone_name",
            "status",
            "final",
            "cause",
            "requested_by",
            "approved_by",
            "needs_approval",
            "approval_reasons",
            "summary",
            "created_at",
            "approved_at",
            "started_at",
            "finished_at",
            "review_comment",
            "error",
            "verification_status",
        ]

    def get_final(self, cs: ChangeSet) -> bool:
        return cs.status in lifecycle.FINAL


class ChangeSetDetailSerializer(ChangeSetSerializer):
    conflicts = serializers.ListField(child=serializers.JSONField())
    skipped = serializers.ListField(child=serializers.JSONField())
    notes = serializers.ListField(child=serializers.JSONField())
    changes = ChangeSerializer(many=True, source="all_changes")

    class Meta(ChangeSetSerializer.Meta):
        fields = [*ChangeSetSerializer.Meta.fields, "conflicts", "skipped", "notes", "changes"]


class ApproveSerializer(serializers.Serializer):
    comment = serializers.CharField(required=False, allow_blank=True, default="", max_length=5000)
    confirm_deletes = serializers.BooleanField(
        required=False, default=False, help_text="Needed when the change set deletes record sets."
    )


class RejectSerializer(serializers.Serializer):
    comment = serializers.CharField(max_length=5000, help_text="Why: it goes to the audit log.")


class ChangeSetFilter(filters.FilterSet):
    status = filters.ChoiceFilter(choices=ChangeSet.Status.choices)
    author = filters.CharFilter(field_name="requested_by__username")
    name = filters.CharFilter(method="by_name", help_text="Change sets that touched this DNS name.")

    class Meta:
        model = ChangeSet
        fields = ["zone"]

    def by_name(self, queryset, name, value):
        return queryset.filter(changes__name=f"{value.lower().rstrip('.')}.").distinct()


class ChangeSetViewSet(PortalViewSet):
    serializer_class = ChangeSetSerializer
    filterset_class = ChangeSetFilter
    perms = {"approve": APPROVE, "reject": APPROVE}

    def get_queryset(self):
        return ChangeSet.objects.select_related("zone", "requested_by", "approved_by").defer(*ZONE_SNAPSHOTS)

    def _detail(self, pk) -> ChangeSet:
        rows = Change.objects.order_by("position")
        queryset = self.get_queryset().prefetch_related(
            Prefetch("changes", queryset=rows, to_attr="all_changes")
        )
        return get_object_or_404(queryset, id=pk)

    @extend_schema(responses={200: ChangeSetSerializer(many=True), **ERRORS})
    def list(self, request):
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(ChangeSetSerializer(page, many=True).data)

    @extend_schema(parameters=[WAIT], responses={200: ChangeSetDetailSerializer, **ERRORS})
    def retrieve(self, request, pk: str):
        """A change set with its diff; `?wait=` long-polls until it is final (applied, failed, …)."""
        seconds = _wait_seconds(request)
        cs = self._detail(pk)
        if seconds and cs.status not in lifecycle.FINAL:
            _wait_for(ChangeSet, cs.id, lifecycle.FINAL, seconds)
            cs = self._detail(pk)
        return Response(ChangeSetDetailSerializer(cs).data)

    @extend_schema(parameters=[WAIT], responses={200: ChangeSetSerializer, **ERRORS})
    @action(detail=True, methods=["get"])
    def status(self, request, pk: str):
        """The change set's status without its diff; `?wait=` long-polls until it is final."""
        seconds = _wait_seconds(request)
        cs = get_object_or_404(self.get_queryset(), id=pk)
        if seconds and cs.status not in lifecycle.FINAL:
            _wait_for(ChangeSet, cs.id, lifecycle.FINAL, seconds)
            cs = get_object_or_404(self.get_queryset(), id=pk)
        return Response(ChangeSetSerializer(cs).data)

    @extend_schema(request=ApproveSerializer, responses={200: ChangeSetSerializer, **WRITE_ERRORS})
    @action(detail=True, methods=["post"])
    def approve(self, request, pk: str):
        """Approve (a second person, with the approver role); the apply runs once, as a job."""
        cs = get_object_or_404(ChangeSet, id=pk)
        body = ApproveSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        changesets.changeset_approve(
            changeset_id=cs.id,
            approver=request.user,
            comment=body.validated_data["comment"].strip(),
            confirm_deletes=body.validated_data["confirm_deletes"],
        )
        return Response(ChangeSetSerializer(self.get_queryset().get(id=cs.id)).data)

    @extend_schema(request=RejectSerializer, responses={200: ChangeSetSerializer, **WRITE_ERRORS})
    @action(detail=True, methods=["post"])
    def reject(self, request, pk: str):
        cs = get_object_or_404(ChangeSet, id=pk)
        body = RejectSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        changesets.changeset_reject(
            changeset_id=cs.id, reviewer=request.user, comment=body.validated_data["comment"].strip()
        )
        return Response(ChangeSetSerializer(self.get_queryset().get(id=cs.id)).data)


# --- policy proposals -----------------------------------------------------------------------------------


class WriteSerializer(serializers.ModelSerializer):
    cluster = serializers.CharField(source="cluster.name")
    before = serializers.DictField()
    after = serializers.DictField()
    changes = serializers.DictField(child=serializers.CharField(allow_null=True))

    class Meta:
        model = PolicyObjectWrite
        fields = [
            "cluster",
            "kind",
            "namespace",
            "name",
            "status",
            "message",
            "changed_by",
            "before",
            "after",
            "changes",
            "written_at",
        ]


class ProposalSerializer(serializers.ModelSerializer):
    zone_name = serializers.CharField(source="zone.name")
    proposed_by = serializers.CharField(source="proposed_by.username", allow_null=True, default=None)
    approved_by = serializers.CharField(source="approved_by.username", allow_null=True, default=None)
    policy = serializers.DictField()

    class Meta:
        model = PolicyProposal
        fields = [
            "id",
            "zone",
            "zone_name",
            "hostname",
            "status",
            "summary",
            "policy",
            "proposed_by",
            "approved_by",
            "created_at",
            "approved_at",
            "finished_at",
            "review_comment",
            "message",
            "changeset",
        ]


class ProposalDetailSerializer(ProposalSerializer):
    before = serializers.DictField()
    warnings = serializers.ListField(child=serializers.JSONField())
    predicted = serializers.ListField(child=serializers.JSONField(), source="predicted_groups")
    health_check = serializers.DictField(allow_null=True)
    writes = WriteSerializer(many=True, source="all_writes")

    class Meta(ProposalSerializer.Meta):
        fields = [
            *ProposalSerializer.Meta.fields,
            "before",
            "warnings",
            "predicted",
            "health_check",
            "health_check_id",
            "writes",
        ]


class ProposeSerializer(serializers.Serializer):
    zone_id = serializers.IntegerField(min_value=1, max_value=2**63 - 1)
    hostname = serializers.CharField(max_length=253)
    policy = PolicySerializer()
    health_check = serializers.DictField(required=False, allow_null=True, default=None)


class PatchSerializer(serializers.Serializer):
    cluster = serializers.CharField(source="obj.cluster")
    kind = serializers.CharField(source="obj.kind")
    namespace = serializers.CharField(source="obj.namespace")
    name = serializers.CharField(source="obj.name")
    before = serializers.DictField(child=serializers.CharField())
    after = serializers.DictField(child=serializers.CharField())
    changes = serializers.DictField(child=serializers.CharField(allow_null=True))
    also_affects = serializers.ListField(child=serializers.CharField())


class PreviewSerializer(serializers.Serializer):
    ok = serializers.BooleanField()
    errors = serializers.DictField(child=serializers.ListField(child=serializers.CharField()))
    warnings = serializers.ListField(child=serializers.CharField())
    patches = PatchSerializer(many=True)
    read_only = serializers.DictField(child=serializers.CharField())
    predicted = serializers.ListField(child=serializers.JSONField(), help_text="The DNS change, by group.")


class CommentSerializer(serializers.Serializer):
    comment = serializers.CharField(required=False, allow_blank=True, default="", max_length=5000)


class ProposalFilter(filters.FilterSet):
    status = filters.ChoiceFilter(choices=PolicyProposal.Status.choices)
    hostname = filters.CharFilter()

    class Meta:
        model = PolicyProposal
        fields = ["zone"]


class ProposalViewSet(PortalViewSet):
    serializer_class = ProposalSerializer
    filterset_class = ProposalFilter
    perms = {
        "create": OPERATE,
        "preview": OPERATE,
        "approve": APPROVE,
        "reject": APPROVE,
        "retry": OPERATE,
        "abandon": OPERATE,
    }

    def get_queryset(self):
        return PolicyProposal.objects.select_related("zone", "proposed_by", "approved_by").defer(
            *ZONE_SNAPSHOTS
        )

    def _detail(self, pk) -> PolicyProposal:
        writes = PolicyObjectWrite.objects.select_related("cluster")
        p = get_object_or_404(
            self.get_queryset().prefetch_related(Prefetch("writes", queryset=writes, to_attr="all_writes")),
            id=pk,
        )
        p.predicted_groups = proposals.predicted_groups(p)
        return p

    @extend_schema(responses={200: ProposalSerializer(many=True), **ERRORS})
    def list(self, request):
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(ProposalSerializer(page, many=True).data)

    @extend_schema(parameters=[WAIT], responses={200: ProposalDetailSerializer, **ERRORS})
    def retrieve(self, request, pk: str):
        seconds = _wait_seconds(request)
        p = self._detail(pk)
        final = frozenset(s for s, t in lifecycle.PROPOSAL_TRANSITIONS.items() if not t)
        if seconds and p.status not in final:
            _wait_for(PolicyProposal, p.id, final, seconds)
            p = self._detail(pk)
        return Response(ProposalDetailSerializer(p).data)

    def _checked(self, request) -> tuple[Zone, str, TrafficPolicy, dict | None, Any]:
        body = ProposeSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        zone = get_object_or_404(Zone, id=data["zone_id"])
        hostname = data["hostname"].strip().lower().rstrip(".")
        policy = TrafficPolicy.from_dict({"hostname": hostname, **data["policy"]})
        shown = proposals.preview(
            zone=zone, hostname=hostname, policy=policy, health_check=data["health_check"]
        )
        return zone, hostname, policy, data["health_check"], shown

    @staticmethod
    def _field_errors(shown) -> dict[str, list[str]]:
        fields: dict[str, list[str]] = {}
        for e in shown.errors:
            key = "non_field_errors" if e.field == "__all__" else f"policy.{e.field}"
            fields.setdefault(key, []).append(e.message)
        return fields

    @extend_schema(request=ProposeSerializer, responses={201: ProposalDetailSerializer, **WRITE_ERRORS})
    def create(self, request):
        """Propose a traffic policy for a hostname (the editor's checks; each problem on its field)."""
        zone, hostname, policy, health_check, shown = self._checked(request)
        if shown.errors:
            raise serializers.ValidationError(self._field_errors(shown))
        p = proposals.policy_propose(
            actor=request.user, zone_id=zone.id, hostname=hostname, policy=policy, health_check=health_check
        )
        return Response(ProposalDetailSerializer(self._detail(p.id)).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=ProposeSerializer, responses={200: PreviewSerializer, **WRITE_ERRORS})
    @action(detail=False, methods=["post"])
    def preview(self, request):
        """What a policy would change, without proposing it: the editor's preview (annotations per object,
        the predicted DNS change) or its problems, each on its field."""
        _zone, _hostname, _policy, _hc, shown = self._checked(request)
        data = {
            "ok": shown.ok,
            "errors": self._field_errors(shown),
            "warnings": list(shown.warnings),
            "patches": PatchSerializer(shown.patches, many=True).data,
            "read_only": dict(shown.read_only),
            "predicted": shown.plan.to_dict()["groups"] if shown.ok and shown.plan else [],
        }
        return Response(data)

    @extend_schema(request=CommentSerializer, responses={200: ProposalSerializer, **WRITE_ERRORS})
    @action(detail=True, methods=["post"])
    def approve(self, request, pk: str):
        """Approve (a second person, with the approver role): the annotations are written back as a job."""
        p = get_object_or_404(PolicyProposal, id=pk)
        body = CommentSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        proposals.policy_approve(
            proposal_id=p.id, approver=request.user, comment=body.validated_data["comment"]
        )
        return Response(ProposalSerializer(self.get_queryset().get(id=p.id)).data)

    @extend_schema(request=RejectSerializer, responses={200: ProposalSerializer, **WRITE_ERRORS})
    @action(detail=True, methods=["post"])
    def reject(self, request, pk: str):
        p = get_object_or_404(PolicyProposal, id=pk)
        body = RejectSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        proposals.policy_reject(
            proposal_id=p.id, reviewer=request.user, comment=body.validated_data["comment"]
        )
        return Response(ProposalSerializer(self.get_queryset().get(id=p.id)).data)

    @extend_schema(request=None, responses={200: ProposalSerializer, **WRITE_ERRORS})
    @action(detail=True, methods=["post"])
    def retry(self, request, pk: str):
        """Write again what is not written yet (unreachable clusters); conflicts stay for a person."""
        p = get_object_or_404(PolicyProposal, id=pk)
        proposals.policy_retry(proposal_id=p.id, actor=request.user)
        return Response(ProposalSerializer(self.get_queryset().get(id=p.id)).data)

    @extend_schema(request=CommentSerializer, responses={200: ProposalSerializer, **WRITE_ERRORS})
    @action(detail=True, methods=["post"])
    def abandon(self, request, pk: str):
        """Give up a partially written proposal: DNS then follows what the clusters say."""
        p = get_object_or_404(PolicyProposal, id=pk)
        body = CommentSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        proposals.policy_abandon(proposal_id=p.id, actor=request.user, comment=body.validated_data["comment"])
        return Response(ProposalSerializer(self.get_queryset().get(id=p.id)).data)
