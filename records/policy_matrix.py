"""Reads for the Policies page: every hostname a cluster serves, as a matrix of hostname by cluster.

The page's query stays bounded: the names are paginated in the database, and the matrix (endpoints, zone
records, conflicts, verifications) is read for the current page's names only, in a fixed number of queries
(the plan engine's conflict check costs two per zone holding a name of the page, as everywhere).
The one exception is the "has conflict" filter: which names have a conflict is known only once the plan
engine ran over them, so that filter runs it over every name the other filters leave, in chunks.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import urlencode

from django.core.paginator import Page, Paginator
from django.db.models import Exists, OuterRef, Q

from records.endpoint import Endpoint as EndpointData
from records.models import Endpoint, Verification, Zone, ZoneRecord
from records.policy_cells import (
    ROUTING_CHOICES,
    ROUTING_PROPERTIES,
    PolicyRow,
    StoredSet,
    policy_row,
)
from records.recordset import in_zone, recordset_from_route53
from records.selectors import Unpublished, unpublished_reasons
from records.traffic import ROUND_ROBIN

PAGE_SIZE = 50
# The plan's conflicts (records.aggregate / records.plan Conflict kinds): the name stays as it is in DNS until
# a person resolves them. Other reasons a name is held back (no zone, a type the zone does not manage, a
# disabled cluster, the zone's policy) are shown in the row but are not conflicts.
CONFLICT_KINDS = frozenset({"conflict", "invalid", "not-owned", "ownership"})
# Names per plan run when the "has conflict" filter scans every candidate name.
CONFLICT_SCAN_CHUNK = 500


def open_proposals_by_name(names: Iterable[str]) -> dict[str, int]:
    """The open traffic-policy proposal of each of `names` (lower case, no trailing dot): {name: proposal id},
    one query over the proposals in review or being written; the Policies page shows "proposal #N open"."""
    from records.proposals import open_proposals_by_name as open_by_name

    return open_by_name(list(names))


@dataclass(frozen=True)
class PolicyFilters:
    """The Policies page's filters, as its GET form sends them; a value the page does not offer is ignored."""

    q: str = ""
    zone: int | None = None
    cluster: str = ""
    routing: str = ""
    conflict: bool = False

    @classmethod
    def from_query(cls, params: Mapping[str, str]) -> PolicyFilters:
        zone = params.get("zone", "")
        routing = params.get("routing", "")
        return cls(
            q=params.get("q", "").strip().lower(),
            zone=int(zone) if zone.isdigit() else None,
            cluster=params.get("cluster", "").strip(),
            routing=routing if routing in dict(ROUTING_CHOICES) else "",
            conflict=params.get("conflict") == "1",
        )

    @property
    def active(self) -> bool:
        return bool(self.q or self.zone is not None or self.cluster or self.routing or self.conflict)

    def query(self, **extra: object) -> str:
        """The filters as a query string (for the pager's links), plus `extra` (page=2)."""
        params = {
            "q": self.q,
            "zone": "" if self.zone is None else self.zone,
            "cluster": self.cluster,
            "routing": self.routing,
            "conflict": "1" if self.conflict else "",
            **extra,
        }
        return urlencode({k: v for k, v in params.items() if v not in ("", None)})


@dataclass(frozen=True)
class Verdict:
    """The last verification that speaks for a name: a split measured for it, or its zone's check."""

    verification_id: int
    status: str  # Verification.Status value
    label: str  # "As planned", "Differs", ...
    scope: str  # "split" or "zone check"
    started_at: datetime
    message: str

    @property
    def badge(self) -> str:
        return {"ok": "ok", "running": "running"}.get(self.status, "bad")


@dataclass
class MatrixRow:
    """A page row: the pure row plus what the database says about the name around it."""

    row: PolicyRow
    zones: list[Zone]  # the enabled zones holding the name (a public and a private view may both)
    reasons: list[Unpublished]
    verdict: Verdict | None
    proposal: int | None
    unread_zones: list[Zone] = field(default_factory=list)  # holding zones whose state was never read

    @property
    def name(self) -> str:
        return self.row.name

    @property
    def conflicts(self) -> list[Unpublished]:
        return [r for r in self.reasons if r.kind in CONFLICT_KINDS]

    @property
    def held_back(self) -> list[Unpublished]:
        return [r for r in self.reasons if r.kind not in CONFLICT_KINDS]


@dataclass
class PolicyMatrix:
    filters: PolicyFilters
    page: Page  # object_list: MatrixRow
    clusters: list  # the columns: every cluster that serves a name (clusters.models.Cluster)
    zones: list[Zone]  # the zone filter's choices
    routing_choices: tuple[tuple[str, str], ...] = ROUTING_CHOICES

    @property
    def empty(self) -> bool:
        """No cluster serves any name at all (not: no name matches the filters)."""
        return not self.filters.active and self.page.paginator.count == 0


def policy_matrix(filters: PolicyFilters, page_number: str | int | None = 1) -> PolicyMatrix:
    """The Policies page: the names matching `filters`, `PAGE_SIZE` a page, each with its row."""
    from clusters.models import Cluster

    serving = Endpoint.objects.filter(cluster=OuterRef("pk"))
    # Only what the column headers show: the rows hold encrypted kubeconfigs and credentials.
    columns = ("id", "name", "enabled", "is_stale", "stale_since", "last_sync_error")
    clusters = list(Cluster.objects.filter(Exists(serving)).only(*columns).order_by("name"))
    zones = list(Zone.objects.order_by("name"))
    names = _names(filters, zones)
    reasons: dict[str, list[Unpublished]] | None = None
    if filters.conflict:
        names, reasons = _with_conflicts(list(names))
    page = Paginator(names, PAGE_SIZE).get_page(page_number)
    page.object_list = _rows(list(page.object_list), clusters, zones, reasons)
    return PolicyMatrix(filters=filters, page=page, clusters=clusters, zones=zones)


def _names(filters: PolicyFilters, zones: Sequence[Zone]):
    """The names matching the filters on endpoints, sorted, each once (a lazy query)."""
    eps = Endpoint.objects.all()
    if filters.q:
        eps = eps.filter(dns_name__icontains=filters.q)
    if filters.cluster:
        eps = eps.filter(cluster__name=filters.cluster)
    if filters.routing == ROUND_ROBIN:
        eps = eps.filter(set_identifier="")
    elif filters.routing:
        eps = eps.exclude(set_identifier="").filter(
            properties__has_any_keys=list(ROUTING_PROPERTIES[filters.routing])
        )
    if filters.zone is not None:
        eps = eps.filter(_in_zone_q(filters.zone, zones))
    return eps.order_by("dns_name").values_list("dns_name", flat=True).distinct()


def _under(apex: str) -> Q:
    return Q(dns_name=apex) | Q(dns_name__endswith="." + apex)


def _in_zone_q(zone_id: int, zones: Sequence[Zone]) -> Q:
    """Endpoint names `zone` holds: under its apex, not under a hosted zone below it in the same account
    (which holds those names itself, as records.services.zone_config counts subzones)."""
    zone = next((z for z in zones if z.id == zone_id), None)
    if zone is None:
        return Q(pk__in=[])
    q = _under(zone.name.rstrip("."))
    for sub in zones:
        if sub.account_id == zone.account_id and sub.name.endswith("." + zone.name):
            q &= ~_under(sub.name.rstrip("."))
    return q


def _with_conflicts(names: list[str]) -> tuple[list[str], dict[str, list[Unpublished]]]:
    """The names with a conflict the plan engine finds, and every name's reasons (reused for the page)."""
    reasons: dict[str, list[Unpublished]] = {}
    for i in range(0, len(names), CONFLICT_SCAN_CHUNK):
        reasons.update(unpublished_reasons(names[i : i + CONFLICT_SCAN_CHUNK]))
    hits = [n for n in names if any(r.kind in CONFLICT_KINDS for r in reasons.get(n, ()))]
    return hits, reasons


def _holding(name: str, zones: Sequence[Zone]) -> list[Zone]:
    """The enabled zones that hold `name`: the longest matching zone of each account (a name under a hosted
    zone below another belongs to the lower one)."""
    fqdn = name + "."
    out = []
    for z in zones:
        if not z.enabled or not in_zone(fqdn, z.name.lower()):
            continue
        if any(
            s.enabled
            and s.account_id == z.account_id
            and s.name.endswith("." + z.name)
            and in_zone(fqdn, s.name)
            for s in zones
        ):
            continue
        out.append(z)
    return out


def _rows(
    names: list[str],
    clusters: Sequence,
    zones: Sequence[Zone],
    reasons: dict[str, list[Unpublished]] | None,
) -> list[MatrixRow]:
    if not names:
        return []
    endpoints = _endpoints(names)
    holding = {n: _holding(n, zones) for n in names}
    zone_ids = {z.id for zs in holding.values() for z in zs}
    by_id = {z.id: z for z in zones}
    stored: dict[str, list[StoredSet]] = {}
    records = (
        ZoneRecord.objects.filter(name__in=[n + "." for n in names], zone_id__in=zone_ids)
        .exclude(ownership=ZoneRecord.Ownership.REGISTRY)
        .values_list("zone_id", "name", "data", "ownership", "owner_id")
    )
    for zone_id, rname, data, ownership, owner_id in records:
        zone = by_id[zone_id].display_name
        stored.setdefault(rname[:-1], []).append(
            StoredSet(zone, recordset_from_route53(data), ownership, owner_id)
        )
    if reasons is None:
        reasons = unpublished_reasons(names)
    verdicts = _verdicts(names, holding)
    proposals = open_proposals_by_name(names)
    columns = [c.name for c in clusters]
    return [
        MatrixRow(
            row=policy_row(n, endpoints.get(n, ()), columns, stored.get(n, ())),
            zones=holding[n],
            reasons=reasons.get(n, []),
            verdict=verdicts.get(n),
            proposal=proposals.get(n),
            unread_zones=[z for z in holding[n] if z.state_read_at is None and z.state_known_at is None],
        )
        for n in names
    ]


def _endpoints(names: list[str]) -> dict[str, list[EndpointData]]:
    """Every endpoint at `names`, as the pure core takes them, by name (one query)."""
    out: dict[str, list[EndpointData]] = {}
    for row in Endpoint.objects.filter(dns_name__in=names).values_list(*Endpoint.ROW_FIELDS):
        ep = Endpoint.data_from_row(row)
        out.setdefault(ep.dns_name, []).append(ep)
    return out


_VERIFICATION_FIELDS = ("id", "zone_id", "kind", "hostname", "status", "started_at", "message", "differences")


def _verdicts(names: list[str], holding: Mapping[str, list[Zone]]) -> dict[str, Verdict]:
    """The latest verification for each name: its own measured split or its zone's resolution check,
    whichever ran last. Two queries (DISTINCT ON: the latest row per hostname, per zone)."""
    splits = {
        v.hostname: v
        for v in Verification.objects.filter(kind=Verification.Kind.DISTRIBUTION, hostname__in=names)
        .order_by("hostname", "-started_at", "-id")
        .distinct("hostname")
        .only(*_VERIFICATION_FIELDS)
    }
    zone_ids = {z.id for zs in holding.values() for z in zs}
    checks = {
        v.zone_id: v
        for v in Verification.objects.filter(kind=Verification.Kind.RESOLUTION, zone_id__in=zone_ids)
        .order_by("zone_id", "-started_at", "-id")
        .distinct("zone_id")
        .only(*_VERIFICATION_FIELDS)
    }
    out: dict[str, Verdict] = {}
    for name in names:
        found = [checks[z.id] for z in holding[name] if z.id in checks]
        if name in splits:
            found.append(splits[name])
        if found:
            out[name] = _verdict(name, max(found, key=lambda v: (v.started_at, v.id)))
    return out


def _verdict(name: str, v: Verification) -> Verdict:
    if v.kind == Verification.Kind.DISTRIBUTION:
        return Verdict(v.id, v.status, v.get_status_display(), "split", v.started_at, v.message)
    status, label = v.status, v.get_status_display()
    if status == Verification.Status.FAILED:
        # A zone check lists each difference by name: the zone may differ at other names only.
        here = [d for d in v.differences if str(d.get("name", "")).lower().rstrip(".") == name]
        if not here:
            message = f"This name answers as planned; the zone differs at other names: {v.message}"
            return Verdict(v.id, Verification.Status.OK, "As planned", "zone check", v.started_at, message)
        message = "; ".join(d.get("message", "") for d in here)
        return Verdict(v.id, status, label, "zone check", v.started_at, message)
    return Verdict(v.id, status, label, "zone check", v.started_at, v.message)


def hostname_row(name: str) -> MatrixRow | None:
    """One hostname's row (as the Policies page shows it), or None when no cluster serves it."""
    from clusters.models import Cluster

    if not Endpoint.objects.filter(dns_name=name).exists():
        return None
    columns = ("id", "name", "enabled", "is_stale", "stale_since", "last_sync_error")
    clusters = list(
        Cluster.objects.filter(endpoints__dns_name=name).distinct().only(*columns).order_by("name")
    )
    return _rows([name], clusters, list(Zone.objects.order_by("name")), None)[0]
