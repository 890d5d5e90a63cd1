"""One row of the Policies page: what each cluster asks for at one hostname, and what the zone serves there.

A cell is one cluster's routing for the name ("round robin", "weighted 80", "failover PRIMARY", "latency
us-east-1", "geolocation DE"), with the targets for the hover. It comes from `records.aggregate` over that
cluster's endpoints alone, the merge the plan uses, so a cell says what those endpoints publish as the plan
reads them: routing properties without a set identifier are plain round robin, an unreadable weight is
invalid. Conflicts *between* clusters are the plan's to find (`records.selectors.unpublished_reasons`).

Pure: no Django, boto3 or Kubernetes import.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from records.aggregate import aggregate
from records.endpoint import (
    PROP_FAILOVER,
    PROP_GEO_CONTINENT,
    PROP_GEO_COUNTRY,
    PROP_GEO_SUBDIVISION,
    PROP_REGION,
    PROP_WEIGHT,
    Endpoint,
)
from records.recordset import RecordSet, Routing
from records.traffic import FAILOVER, GEOLOCATION, KIND_LABELS, LATENCY, WEIGHTED

ROUTING_CHOICES = tuple(KIND_LABELS.items())
# The endpoint properties that select each policy. They count only beside a set identifier: ExternalDNS's
# AWS provider (and `aggregate`) ignore them on an endpoint without one, which is then plain round robin.
ROUTING_PROPERTIES: dict[str, tuple[str, ...]] = {
    WEIGHTED: (PROP_WEIGHT,),
    FAILOVER: (PROP_FAILOVER,),
    LATENCY: (PROP_REGION,),
    GEOLOCATION: (PROP_GEO_CONTINENT, PROP_GEO_COUNTRY, PROP_GEO_SUBDIVISION),
}


@dataclass(frozen=True, slots=True)
class Entry:
    """One thing a cluster asks for at a name: a routing label and, for the hover, the record behind it."""

    label: str  # "weighted 80", "round robin", "conflict", ...
    title: str  # "A 203.0.113.10 · set id eu1 · TTL 60"
    problem: bool = False  # the cluster's own endpoints cannot be merged (conflict, invalid)


@dataclass(frozen=True, slots=True)
class Cell:
    """One cluster's column in a hostname's row; no entries: the cluster does not serve the name."""

    cluster: str
    entries: tuple[Entry, ...] = ()
    notes: tuple[str, ...] = ()  # what the merge left aside, e.g. a weight without a set identifier

    @property
    def serves(self) -> bool:
        return bool(self.entries)

    @property
    def title(self) -> str:
        return "\n".join([e.title for e in self.entries] + list(self.notes))


@dataclass(frozen=True, slots=True)
class StoredSet:
    """One record set a zone holds at the name, as the zone's stored state has it (the input side)."""

    zone: str  # the zone's display name
    record: RecordSet
    ownership: str  # ZoneRecord.Ownership value: owned, other, unowned, unmanaged
    owner_id: str = ""


@dataclass(frozen=True, slots=True)
class Served:
    """One record set the zone serves at the name, for the row: "A weighted 80", owned or not."""

    zone: str
    type: str
    label: str
    title: str
    ownership: str
    owner_id: str = ""

    @property
    def owned(self) -> bool:
        return self.ownership == "owned"


@dataclass(frozen=True, slots=True)
class PolicyRow:
    """A hostname across the clusters (one cell per cluster, in the columns' order) and in the zone."""

    name: str
    cells: tuple[Cell, ...]
    served: tuple[Served, ...]

    @property
    def clusters(self) -> tuple[str, ...]:
        """The clusters that serve the name."""
        return tuple(c.cluster for c in self.cells if c.serves)


def routing_label(routing: Routing, *, set_identifier: str = "", alias: bool = False) -> str:
    """A record set's routing in a word or two: "round robin", "weighted 80", "failover PRIMARY", "latency
    us-east-1", "geolocation DE" (country-subdivision "US-CA", a continent "EU", the default location "*"),
    "geoproximity eu-west-1", "multivalue"; several policies (which Route53 rejects) joined by " + "."""
    parts: list[str] = []
    for policy in routing.policies:
        if policy == WEIGHTED:
            parts.append(f"weighted {routing.weight}")
        elif policy == FAILOVER:
            parts.append(f"failover {routing.failover}")
        elif policy == LATENCY:
            parts.append(f"latency {routing.region}")
        elif policy == GEOLOCATION:
            where = routing.continent or "-".join(p for p in (routing.country, routing.subdivision) if p)
            parts.append(f"geolocation {where}")
        elif policy == "geoproximity":
            coords = routing.geoproximity_coordinates
            where = (
                routing.geoproximity_region
                or routing.geoproximity_local_zone_group
                or (",".join(coords) if coords else "")
            )
            parts.append(f"geoproximity {where}".rstrip())
        elif policy == "ip-based":
            parts.append(f"ip-based {routing.cidr_location_name}".rstrip())
        else:
            parts.append(policy)
    if parts:
        return " + ".join(parts)
    if set_identifier:
        # Route53 refuses a set identifier without a routing policy; say so rather than call it round robin.
        return "set id, no routing"
    return "alias" if alias else "round robin"


def _record_title(rs: RecordSet) -> str:
    parts = [f"{rs.type} {rs.describe_values()}"]
    if rs.set_identifier:
        parts.append(f"set id {rs.set_identifier}")
    if rs.health_check_id:
        parts.append(f"health check {rs.health_check_id}")
    if rs.ttl is not None:
        parts.append(f"TTL {rs.ttl}")
    return " · ".join(parts)


def cluster_cell(name: str, cluster: str, endpoints: Sequence[Endpoint]) -> Cell:
    """What `cluster` asks for at `name` (lower case, no trailing dot), from its endpoints at that name.

    Record sets with the same routing label (A beside AAAA) share one entry, their targets joined in the
    title.
    """
    if not endpoints:
        return Cell(cluster)
    # Every type the endpoints have counts here: whether the zone manages it is the plan's question.
    desired = aggregate(endpoints, name + ".", managed_types={e.record_type for e in endpoints})
    entries: dict[tuple[str, bool], list[str]] = {}
    for _key, dr in sorted(desired.records.items()):
        rs = dr.record
        label = routing_label(rs.routing, set_identifier=rs.set_identifier, alias=rs.alias is not None)
        entries.setdefault((label, False), []).append(_record_title(rs))
    for c in desired.conflicts:
        entries.setdefault((c.kind, True), []).append(c.message)
    return Cell(
        cluster,
        tuple(Entry(label, "; ".join(titles), problem) for (label, problem), titles in entries.items()),
        desired.notes,
    )


def served_sets(stored: Iterable[StoredSet]) -> tuple[Served, ...]:
    """The zone's record sets at a name as the row shows them, sorted by zone, type and set identifier."""
    out = []
    for s in sorted(stored, key=lambda s: (s.zone, s.record.type, s.record.set_identifier)):
        rs = s.record
        label = routing_label(rs.routing, set_identifier=rs.set_identifier, alias=rs.alias is not None)
        out.append(Served(s.zone, rs.type, label, _record_title(rs), s.ownership, s.owner_id))
    return tuple(out)


def policy_row(
    name: str, endpoints: Iterable[Endpoint], clusters: Sequence[str], stored: Iterable[StoredSet] = ()
) -> PolicyRow:
    """The row of `name`: one cell per cluster of `clusters` (in that order) from the endpoints at `name`,
    and the record sets the zone holds there (`stored`). Endpoints of other names are ignored, and so are
    endpoints of a cluster not in `clusters` (a column the page does not show)."""
    by_cluster: dict[str, list[Endpoint]] = {}
    for ep in endpoints:
        if ep.dns_name == name:
            by_cluster.setdefault(ep.cluster, []).append(ep)
    cells = tuple(cluster_cell(name, c, by_cluster.get(c, ())) for c in clusters)
    return PolicyRow(name, cells, served_sets(stored))
