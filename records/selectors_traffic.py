"""Reads for the traffic-policy pages: the editor's starting point and preview, proposals, a name's history.

All from the database (what discovery and the reconciles stored): no cluster or provider is asked here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.core.paginator import Page, Paginator
from django.db.models import QuerySet

from records import proposals, services
from records.forms_traffic import Initial
from records.models import ChangeSet, Endpoint, PolicyProposal, Zone
from records.policy import AWS_REGIONS
from records.proposals import Preview
from records.traffic import TrafficPolicy

REGION_LABELS = ("topology.kubernetes.io/region", "failure-domain.beta.kubernetes.io/region", "region")
_REGION_IN_NAME = re.compile("|".join(sorted(map(re.escape, AWS_REGIONS), key=len, reverse=True)))
PROPOSAL_PAGE_SIZE = 50


@dataclass
class EditorState:
    hostname: str
    zones: list[Zone]
    zone: Zone | None
    now: TrafficPolicy  # what the clusters ask for now
    start: Initial  # the editor's prefill
    stale: list[str] = field(default_factory=list)  # clusters whose endpoints are frozen (unreachable)
    proposals: list[PolicyProposal] = field(default_factory=list)  # the name's latest, open ones first
    preview: Preview | None = None

    @property
    def open_proposal(self) -> PolicyProposal | None:
        return next((p for p in self.proposals if p.is_open), None)


def region_guess(cluster: Any) -> str:
    """The AWS region a cluster is in, as far as the portal knows without asking it: a region label given
    at registration, its EKS region, or a region in its name (the demo's `eks-us-east-1`)."""
    labels = cluster.labels or {}
    for key in REGION_LABELS:
        if labels.get(key) in AWS_REGIONS:
            return labels[key]
    if cluster.eks_region in AWS_REGIONS:
        return cluster.eks_region
    match = _REGION_IN_NAME.search(cluster.name)
    return match.group(0) if match else ""


def _default_zone(zones: list[Zone], zone_id: int | None) -> Zone | None:
    chosen = next((z for z in zones if z.id == zone_id), None)
    if chosen is not None:
        return chosen
    # The most specific zone holding the name; a public one before a private view of the same name.
    return min(zones, key=lambda z: (-len(z.name), z.private, z.id), default=None)


def editor_state(
    hostname: str,
    *,
    zone_id: int | None = None,
    policy: TrafficPolicy | None = None,
    health_check: Mapping[str, Any] | None = None,
) -> EditorState:
    """What the editor shows for `hostname`; with `policy`, also its preview (annotations per object and the
    predicted DNS change) in the chosen zone."""
    endpoints = proposals.hostname_endpoints(hostname)
    zones = services.zones_for_names([hostname])
    zone = _default_zone(zones, zone_id)
    now = proposals.policy_now(hostname)
    clusters = {e.cluster.name: e.cluster for e in endpoints}
    targets: dict[str, str] = {}
    for e in sorted(endpoints, key=lambda e: (e.cluster.name, e.record_type)):
        if e.targets:
            targets.setdefault(e.cluster.name, e.targets[0])
    last = (
        PolicyProposal.objects.filter(hostname=hostname, health_check__isnull=False)
        .exclude(status__in=[PolicyProposal.Status.REJECTED, PolicyProposal.Status.SUPERSEDED])
        .order_by("-created_at")
        .first()
    )
    start = Initial(
        policy=now,
        zone_id=zone.id if zone else None,
        regions={name: region_guess(c) for name, c in clusters.items()},
        health_check=last.health_check if last else None,
        targets=targets,
    )
    recent = list(
        PolicyProposal.objects.filter(hostname=hostname)
        .select_related("proposed_by")
        .order_by("-created_at")[:10]
    )
    state = EditorState(
        hostname=hostname,
        zones=zones,
        zone=zone,
        now=now,
        start=start,
        stale=sorted(name for name, c in clusters.items() if c.is_stale),
        proposals=sorted(recent, key=lambda p: not p.is_open),
    )
    if policy is not None and zone is not None:
        state.preview = proposals.preview(
            zone=zone, hostname=hostname, policy=policy, health_check=health_check
        )
    return state


@dataclass
class HostnamePolicy:
    """The hostname page's "Traffic policy" section: the policy now, its proposals, its change sets."""

    now: TrafficPolicy | None
    proposals: list[PolicyProposal]
    changesets: list[ChangeSet]
    health_check: PolicyProposal | None = None  # the written failover policy whose check is in use


def hostname_policy(hostname: str, endpoints: Sequence[Endpoint] | None = None) -> HostnamePolicy:
    """`endpoints`: the name's endpoints of enabled clusters, when the caller has read them already."""
    if endpoints is None:
        endpoints = proposals.hostname_endpoints(hostname)
    now = proposals.policy_now(hostname, endpoints) if endpoints else None
    recent = PolicyProposal.objects.filter(hostname=hostname).select_related("proposed_by")
    changesets = (
        ChangeSet.objects.filter(changes__name=f"{hostname}.")
        .select_related("zone")
        .defer(*(f"zone__{f}" for f in Zone.SNAPSHOT_FIELDS))  # select_related ignores Zone's manager
        .distinct()
        .order_by("-created_at")
    )
    # The name's latest written policy, if a failover with the portal's health check (its live status).
    latest = PolicyProposal.objects.filter(hostname=hostname, status=PolicyProposal.Status.WRITTEN).first()
    checked = latest if latest is not None and latest.health_check_id else None
    return HostnamePolicy(
        now=now, proposals=list(recent[:5]), changesets=list(changesets[:5]), health_check=checked
    )


def proposal_list(*, status: str = "", q: str = "", page: Any = None) -> Page:
    rows: QuerySet = PolicyProposal.objects.select_related(
        "zone", "proposed_by", "approved_by", "changeset"
    ).defer(  # select_related ignores the related models' managers: their snapshots stay out
        *(f"zone__{f}" for f in Zone.SNAPSHOT_FIELDS), *(f"changeset__{f}" for f in ChangeSet.SNAPSHOT_FIELDS)
    )
    if status in PolicyProposal.Status.values:
        rows = rows.filter(status=status)
    if q:
        rows = rows.filter(hostname__icontains=q.lower().rstrip("."))
    return Paginator(rows.order_by("-created_at"), PROPOSAL_PAGE_SIZE).get_page(page)


def proposal_detail(proposal_id: int) -> PolicyProposal:
    """A proposal with what its page shows (raises PolicyProposal.DoesNotExist)."""
    return (
        PolicyProposal.objects.select_related(
            "zone", "proposed_by", "approved_by", "changeset", "superseded_by"
        )
        .prefetch_related("writes__cluster")
        .get(id=proposal_id)
    )
