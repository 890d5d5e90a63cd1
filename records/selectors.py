"""Reads of the records app for pages."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import ClassVar

from django.db.models import Q, QuerySet
from django.db.models.expressions import RawSQL

from records import services
from records.aggregate import aggregate
from records.endpoint import Endpoint as EndpointData
from records.models import Endpoint, Zone
from records.ownership import MAPPER_TYPES
from records.ownership import RECORD_TYPE_TEMPLATE as TEMPLATE
from records.plan import ZoneConfig, compute_plan
from records.recordset import RecordSet, in_zone, recordset_from_route53

ROUTING_LABELS = {
    "aws/weight": "weight",
    "aws/failover": "failover",
    "aws/region": "latency region",
    "aws/geolocation-continent-code": "continent",
    "aws/geolocation-country-code": "country",
    "aws/geolocation-subdivision-code": "subdivision",
    "aws/geoproximity-region": "geoproximity region",
    "aws/health-check-id": "health check",
}


def endpoints(*, q: str = "", cluster: str = "", private: bool = False, record_type: str = "") -> QuerySet:
    qs = Endpoint.objects.select_related("cluster", "source")
    if q:
        qs = qs.filter(Q(dns_name__icontains=q) | Q(resource__icontains=q))
    if cluster:
        qs = qs.filter(cluster__name=cluster)
    if private:
        qs = qs.filter(has_private_target=True)
    if record_type:
        qs = qs.filter(record_type=record_type)
    return qs


def routing_summary(properties: dict[str, str]) -> str:
    """`weight 80 · health check 1234…` for a table cell."""
    parts = [f"{label} {properties[key]}" for key, label in ROUTING_LABELS.items() if key in properties]
    if "alias" in properties:
        parts.append("alias")
    return " · ".join(parts)


def hostname_known(name: str) -> bool:
    """Whether the portal knows `name` (lower case, no trailing dot) from a zone's records or a measurement,
    when no cluster publishes it now."""
    from records.models import Verification, ZoneRecord

    return (
        ZoneRecord.objects.filter(name=name + ".").exists()
        or Verification.objects.filter(kind=Verification.Kind.DISTRIBUTION, hostname=name).exists()
    )


def similar_hostnames(name: str, limit: int = 10) -> list[str]:
    """Published names sharing the first label or the rest of `name`: what a mistyped address meant."""
    first, _, rest = name.partition(".")
    query = Q(dns_name__startswith=first + ".") if first else Q()
    if rest:
        query |= Q(dns_name__endswith="." + rest)
    names = Endpoint.objects.filter(query).order_by("dns_name").values_list("dns_name", flat=True)
    return list(names.distinct()[:limit])


def zones_failing_reconcile() -> QuerySet:
    """Enabled zones whose last reconcile failed, with the failed job run (for the dashboard)."""
    return (
        Zone.objects.filter(enabled=True)
        .exclude(last_reconcile_error="")
        .select_related("last_reconcile_run")
        .order_by("name")
    )


# --- why a name is not published --------------------------------------------------------------------------


@dataclass(frozen=True)
class Unpublished:
    """One reason (part of) a name the clusters publish is not, or not fully, in DNS."""

    kind: str  # conflict, invalid, not-owned, ownership (plan conflicts); policy; type; no-zone; cluster
    message: str
    zone: Zone | None = None
    record_type: str = ""  # "": the whole name (a conflict anywhere on a name holds all of it back)
    objects: tuple[str, ...] = ()

    LABELS: ClassVar[dict[str, str]] = {
        "conflict": "conflict",
        "invalid": "invalid",
        "not-owned": "not owned",
        "ownership": "ownership record",
        "policy": "zone policy",
        "type": "type not managed",
        "no-zone": "no zone",
        "cluster": "cluster disabled",
    }

    @property
    def label(self) -> str:
        return self.LABELS.get(self.kind, self.kind)

    def applies_to(self, record_type: str) -> bool:
        return not self.record_type or self.record_type == record_type


@dataclass(frozen=True)
class PublishedSet:
    """One record set a hostname becomes, with the objects merged into it (hostname page)."""

    type: str
    set_identifier: str
    values: str  # "203.0.113.10, 203.0.113.11" or "alias …"
    ttl: int | None
    sources: tuple[str, ...]  # "Service eks-eu1/shop/web", each object once
    owner_resource: str  # the object its ownership TXT names ("service/shop/web"): the first by name


def published_record_sets(name: str) -> list[PublishedSet]:
    """The record sets the enabled clusters' endpoints for `name` become, merged as the plan merges them.

    Several objects publishing one name without a set identifier, in one cluster or several, make one record
    set with all their targets, as ExternalDNS merges Services that share a name; the ownership TXT names the
    first object by name. Names in conflict are left out (the page lists the conflict instead).
    """
    name = name.lower().rstrip(".")
    rows = Endpoint.objects.filter(dns_name=name, cluster__enabled=True).values_list(*Endpoint.ROW_FIELDS)
    eps = [Endpoint.data_from_row(row) for row in rows]
    if not eps:
        return []
    holding = [z for z in Zone.objects.select_related("account") if in_zone(name + ".", z.name.lower())]
    zone = max(holding, key=lambda z: len(z.name), default=None)  # a name belongs to its longest zone
    config = services.zone_config(zone) if zone is not None else None
    desired = aggregate(
        eps,
        config.zone if config else name + ".",
        managed_types=config.managed_types if config else {e.record_type for e in eps},
        alias_load_balancers=config.alias_load_balancers if config else False,
    )
    out = []
    for (_, _, sid), dr in sorted(desired.records.items()):
        rs = dr.record
        out.append(
            PublishedSet(
                type=rs.type,
                set_identifier=sid,
                values=rs.describe_values(),
                ttl=rs.ttl,
                sources=dr.sources,
                owner_resource=dict(dr.labels).get("resource", ""),
            )
        )
    return out


def unpublished_reasons(names: Iterable[str]) -> dict[str, list[Unpublished]]:
    """Why each of `names` (endpoint DNS names) is not, or not fully, published, keyed by name; names the
    plan publishes as the clusters ask have no entry.

    The plan engine decides, from the names' endpoints and the zone's stored records at those names (as of
    the zone's last read): conflicts between clusters (A beside CNAME, mixed routing, two PRIMARY, a reused
    set identifier), records another owner holds, changes the zone's policy holds back, and endpoints the
    aggregation leaves out (a type the zone does not manage). Also a name no imported zone holds, and
    endpoints of disabled clusters.
    """
    from clusters.models import Cluster

    wanted = sorted({n.lower().rstrip(".") for n in names if n})
    if not wanted:
        return {}
    out: dict[str, list[Unpublished]] = {}
    by_name: dict[str, list[EndpointData]] = {}
    rows = Endpoint.objects.filter(dns_name__in=wanted).values_list(*Endpoint.ROW_FIELDS)
    disabled = set(Cluster.objects.filter(enabled=False).values_list("name", flat=True))
    for row in rows:
        ep = Endpoint.data_from_row(row)
        if ep.cluster in disabled:
            message = f"Cluster {ep.cluster} is disabled: its {ep.record_type} endpoint is not published."
            _add(out, ep.dns_name, Unpublished("cluster", message, record_type=ep.record_type))
            continue
        by_name.setdefault(ep.dns_name, []).append(ep)
    placed: set[str] = set()
    zones = list(Zone.objects.select_related("account").order_by("name"))
    for zone in zones:
        if not zone.enabled or not any(in_zone(n + ".", zone.name.lower()) for n in by_name):
            continue
        config = services.zone_config(zone)
        mine = [n for n in by_name if _holds(config, n + ".")]
        if not mine:
            continue
        placed.update(mine)
        for name, reason in _plan_reasons(zone, config, mine, by_name):
            _add(out, name, reason)
    for name in sorted(by_name.keys() - placed):
        held_by = [z.display_name for z in zones if not z.enabled and in_zone(name + ".", z.name)]
        message = (
            f"Zone {', '.join(held_by)} holds this name but is disabled: nothing is published to it."
            if held_by
            else "No zone for this name: no imported zone holds it, so it is published nowhere. Import its "
            "hosted zone from a provider account."
        )
        _add(out, name, Unpublished("no-zone", message))
    return out


def _add(out: dict[str, list[Unpublished]], name: str, reason: Unpublished) -> None:
    if reason not in out.setdefault(name, []):
        out[name].append(reason)


def _holds(config: ZoneConfig, fqdn: str) -> bool:
    # A hosted zone below this one serves its names (ExternalDNS places a name in the longest matching zone).
    return in_zone(fqdn, config.zone) and not any(in_zone(fqdn, sub) for sub in config.subzones)


def _plan_reasons(
    zone: Zone, config: ZoneConfig, names: list[str], by_name: dict[str, list[EndpointData]]
) -> Iterator[tuple[str, Unpublished]]:
    endpoints = [ep for n in names for ep in by_name[n]]
    desired = aggregate(
        endpoints,
        config.zone,
        managed_types=config.managed_types,
        subzones=config.subzones,
        alias_load_balancers=config.alias_load_balancers,
    )
    plan = compute_plan(desired, _stored_at(zone, config, names), config)
    wanted = {n + "." for n in names}
    for c in plan.conflicts:
        if c.name in wanted:
            message = f"{c.message.rstrip('.')}. The name stays as it is in DNS until this is resolved."
            yield c.name[:-1], Unpublished(c.kind, message, zone, objects=c.objects)
    for s in plan.skipped:
        if s.key.name in wanted:
            yield s.key.name[:-1], Unpublished("policy", f"{s.key}: {s.reason}.", zone, s.key.type)
    # What aggregation left out, on names it had nothing against: a type this zone does not manage.
    used = {id(ep) for dr in desired.records.values() for ep in dr.endpoints}
    blocked = {c.name for c in plan.conflicts}
    managed = ", ".join(sorted(config.managed_types))
    for ep in endpoints:
        if id(ep) in used or ep.dns_name + "." in blocked or ep.record_type in config.managed_types:
            continue
        message = (
            f"{ep.record_type} records are not published to {zone.display_name}: the zone manages "
            f"{managed} records only."
        )
        yield ep.dns_name, Unpublished("type", message, zone, ep.record_type)


def _stored_at(zone: Zone, config: ZoneConfig, names: list[str]) -> list[RecordSet]:
    """The zone's stored record sets at `names`, with the TXT records that can carry their ownership: looked
    up by their exact names (the zone's index), never by a pattern, which would scan every record of the zone
    for each name (seconds per page of endpoints at 100,000 names)."""
    wanted = {n + "." for n in names}
    for n in names:
        wanted |= ownership_names(config, n + ".")
    # About 30 names per page name (3,200 a page): as one array, each looked up in the zone's index. An
    # `IN (…)` of 3,200 parameters was planned as a scan of the zone's every record (80 ms at 200,000), and
    # adapting its parameters one by one cost 30 ms more.
    in_array = RawSQL("SELECT unnest(%s::text[])", [sorted(wanted)])
    rows = zone.records.filter(name__in=in_array).order_by().values_list("data", flat=True)
    return [recordset_from_route53(data) for data in rows]


def ownership_names(config: ZoneConfig, fqdn: str) -> set[str]:
    """Every name an ownership TXT of record `fqdn` can have under the zone's namings, as `TxtNaming.
    record_for_txt` reads them back: typed (the template resolved for each type, or a `<type>-` marker on the
    first label) and legacy (untyped, or written before the template was configured), `cname-` included."""
    first, _, rest = fqdn[:-1].partition(".")
    tail = f".{rest}." if rest else "."
    markers = ("", *(t.lower() + "-" for t in MAPPER_TYPES))
    out: set[str] = set()
    for naming in (config.naming, *config.also_read):
        firsts = {first}
        if first == "*" and naming.wildcard_replacement:
            firsts.add(naming.wildcard_replacement)
        # (prefix, suffix, markers): the template resolved carries the type itself; without it, the first
        # label may carry a marker
        forms = [(naming.prefix.replace(TEMPLATE, ""), naming.suffix.replace(TEMPLATE, ""), markers)]
        if naming.type_in_affix:
            resolved = (
                (
                    naming.prefix.replace(TEMPLATE, t.lower()),
                    naming.suffix.replace(TEMPLATE, t.lower()),
                    ("",),
                )
                for t in MAPPER_TYPES
            )
            forms.extend(resolved)
        for prefix, suffix, marks in forms:
            out.update(prefix + m + f + suffix + tail for m in marks for f in firsts)
    return out
