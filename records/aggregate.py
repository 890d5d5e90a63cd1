"""Desired state: the endpoints of every cluster, aggregated into one record set per (name, type, set id).

- Endpoints with a set identifier keep their routing (weighted, failover, latency, geolocation, geoproximity,
  multivalue) and become one record set each, as ExternalDNS's AWS provider writes them.
- The same (name, type) from several clusters *without* a set identifier becomes one record set whose values
  are the union of their targets, with the smallest configured TTL (multi-cluster round robin). ExternalDNS
  cannot do this (one owner per record); the portal can, because it sees every cluster.
- Endpoints that cannot share a record set (different routing under one set identifier, two CNAME targets,
  A beside CNAME, two PRIMARY...) are reported per name with the objects involved; that name is left as it is.

Pure: no Django, boto3 or Kubernetes import.
"""

from __future__ import annotations

import ipaddress
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from records import policy
from records.aws_alias_zones import canonical_hosted_zone
from records.endpoint import (
    PROP_ALIAS,
    PROP_EVALUATE_TARGET_HEALTH,
    PROP_FAILOVER,
    PROP_GEO_CONTINENT,
    PROP_GEO_COUNTRY,
    PROP_GEO_SUBDIVISION,
    PROP_GEOPROXIMITY_BIAS,
    PROP_GEOPROXIMITY_COORDINATES,
    PROP_GEOPROXIMITY_LOCAL_ZONE_GROUP,
    PROP_GEOPROXIMITY_REGION,
    PROP_HEALTH_CHECK_ID,
    PROP_MULTI_VALUE_ANSWER,
    PROP_REGION,
    PROP_TARGET_HOSTED_ZONE,
    PROP_WEIGHT,
    Endpoint,
)
from records.recordset import (
    NO_ROUTING,
    AliasTarget,
    RecordKey,
    RecordSet,
    Routing,
    canonical_value,
    normalize_name,
)

# ExternalDNS manages these types unless --managed-record-types says otherwise (plan.go).
DEFAULT_MANAGED_TYPES = frozenset({"A", "AAAA", "CNAME"})

# Routing properties the AWS provider applies only when the endpoint has a set identifier (aws.go newChange).
_ROUTING_PROPS = (
    PROP_WEIGHT,
    PROP_REGION,
    PROP_FAILOVER,
    PROP_MULTI_VALUE_ANSWER,
    PROP_GEO_CONTINENT,
    PROP_GEO_COUNTRY,
    PROP_GEO_SUBDIVISION,
    PROP_GEOPROXIMITY_REGION,
    PROP_GEOPROXIMITY_LOCAL_ZONE_GROUP,
    PROP_GEOPROXIMITY_COORDINATES,
    PROP_GEOPROXIMITY_BIAS,
)

# ExternalDNS's --aws-evaluate-target-health defaults to true.
DEFAULT_EVALUATE_TARGET_HEALTH = True

_KIND_NAMES = {
    "service": "Service",
    "ingress": "Ingress",
    "crd": "DNSEndpoint",
    "pod": "Pod",
    "node": "Node",
    "gateway-httproute": "HTTPRoute",
    "gateway-grpcroute": "GRPCRoute",
    "gateway-tlsroute": "TLSRoute",
    "gateway-tcproute": "TCPRoute",
    "gateway-udproute": "UDPRoute",
    # ExternalDNS's gateway sources label their endpoints `<kind lower-cased>/<ns>/<name>`
    "httproute": "HTTPRoute",
    "grpcroute": "GRPCRoute",
    "tlsroute": "TLSRoute",
    "tcproute": "TCPRoute",
    "udproute": "UDPRoute",
}


def describe_source(cluster: str, resource: str) -> str:
    """The object for explanations: "Service rke2-dc1/default/nginx" from a cluster and a resource label."""
    kind, _, rest = resource.partition("/")
    if not rest:
        return f"{resource or 'endpoint'} in cluster {cluster}" if cluster else (resource or "endpoint")
    kind_name = _KIND_NAMES.get(kind, kind[:1].upper() + kind[1:])
    return f"{kind_name} {cluster}/{rest}" if cluster else f"{kind_name} {rest}"


def describe_endpoint(ep: Endpoint) -> str:
    """The object behind an endpoint plus what it asks for, for conflict listings."""
    sid = f" [{ep.set_identifier}]" if ep.set_identifier else ""
    props = ", ".join(f"{k}={v}" for k, v in ep.provider_specific if k != "aws/hosted-zone-id")
    props = f" ({props})" if props else ""
    return f"{describe_source(ep.cluster, ep.resource)}: {ep.record_type}{sid} {', '.join(ep.targets)}{props}"


@dataclass(frozen=True, slots=True)
class Conflict:
    """A name the plan leaves unchanged, and why.

    kind: "conflict" (sources disagree), "invalid" (Route53 would reject it), "not-owned" (the record belongs
    to another owner id or to nobody), "ownership" (the ownership TXT cannot be written).
    """

    name: str
    kind: str
    message: str
    objects: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, object]:
        return {"name": self.name, "kind": self.kind, "message": self.message, "objects": list(self.objects)}


@dataclass(frozen=True, slots=True)
class DesiredRecord:
    """One desired record set and the endpoints merged into it (for explanations and the TXT labels)."""

    record: RecordSet
    endpoints: tuple[Endpoint, ...]
    labels: tuple[
        tuple[str, str], ...
    ]  # labels for the ownership TXT: the first contributor's (resource, ...)

    @property
    def sources(self) -> tuple[str, ...]:
        """Each contributing object once, ("Service eks-eu1/shop/web", "Service rke2-dc1/shop/web")"""
        return tuple(sorted({describe_source(e.cluster, e.resource) for e in self.endpoints}))

    @property
    def clusters(self) -> tuple[str, ...]:
        return tuple(sorted({e.cluster for e in self.endpoints}))

    def sources_of(self, value: str) -> tuple[str, ...]:
        """The objects that publish `value` (canonical comparison), for "target added ... (Service ...)"."""
        t = self.record.type
        want = canonical_value(t, value)
        return tuple(
            sorted(
                {
                    describe_source(e.cluster, e.resource)
                    for e in self.endpoints
                    if any(canonical_value(t, x) == want for x in e.targets)
                }
            )
        )


@dataclass(frozen=True, slots=True)
class Desired:
    """The aggregated desired state of one zone."""

    records: dict[tuple[str, str, str], DesiredRecord]
    conflicts: tuple[Conflict, ...]
    notes: tuple[str, ...]

    @property
    def blocked_names(self) -> frozenset[str]:
        return frozenset(c.name for c in self.conflicts)


@dataclass(frozen=True, slots=True)
class _Props:
    """What an endpoint's provider-specific properties mean for the record set (cached per distinct tuple)."""

    routing: Routing
    health_check_id: str
    alias: bool
    evaluate_target_health: bool
    target_hosted_zone: str
    errors: tuple[str, ...]
    ignored: tuple[str, ...]  # routing properties without a set identifier


def _parse_props(ps: tuple[tuple[str, str], ...], set_identifier: str) -> _Props:
    props = dict(ps)
    errors: list[str] = []
    ignored: list[str] = []
    routing = NO_ROUTING
    if set_identifier:
        weight: int | None = None
        if PROP_WEIGHT in props:
            raw = props[PROP_WEIGHT].strip()
            try:
                weight = int(raw)
            except ValueError:
                # ExternalDNS logs and writes weight 0; the portal refuses instead of silently draining
                # traffic
                errors.append(f"{PROP_WEIGHT} `{raw}` is not an integer from 0 to 255")
        coordinates: tuple[str, str] | None = None
        if PROP_GEOPROXIMITY_COORDINATES in props:
            lat, comma, lon = props[PROP_GEOPROXIMITY_COORDINATES].partition(",")
            if not comma:
                errors.append(f"{PROP_GEOPROXIMITY_COORDINATES} must be `latitude,longitude`")
            else:
                coordinates = (lat.strip(), lon.strip())
        bias: int | None = None
        if PROP_GEOPROXIMITY_BIAS in props:
            try:
                bias = int(props[PROP_GEOPROXIMITY_BIAS].strip())
            except ValueError:
                errors.append(f"{PROP_GEOPROXIMITY_BIAS} `{props[PROP_GEOPROXIMITY_BIAS]}` is not an integer")
        gp_region = props.get(PROP_GEOPROXIMITY_REGION, "")
        gp_lzg = props.get(PROP_GEOPROXIMITY_LOCAL_ZONE_GROUP, "")
        if bias is None and (gp_region or gp_lzg or coordinates is not None):
            bias = 0  # ExternalDNS's AdjustEndpoints defaults the bias to 0 for geoproximity records
        continent = props.get(PROP_GEO_CONTINENT, "")
        routing = Routing(
            weight=weight,
            region=props.get(PROP_REGION, ""),
            failover=props.get(PROP_FAILOVER, ""),
            continent=continent,
            # a continent code wins: ExternalDNS ignores country/subdivision when it is set
            country="" if continent else props.get(PROP_GEO_COUNTRY, ""),
            subdivision="" if continent else props.get(PROP_GEO_SUBDIVISION, ""),
            geoproximity_region=gp_region,
            geoproximity_local_zone_group=gp_lzg,
            geoproximity_coordinates=coordinates,
            geoproximity_bias=bias,
            multi_value_answer=PROP_MULTI_VALUE_ANSWER in props,
        )
        if routing == NO_ROUTING:
            routing = NO_ROUTING
    else:
        ignored = [p for p in _ROUTING_PROPS if p in props]
    ev = props.get(PROP_EVALUATE_TARGET_HEALTH)
    return _Props(
        routing=routing,
        health_check_id=props.get(PROP_HEALTH_CHECK_ID, ""),
        alias=props.get(PROP_ALIAS, "") == "true",
        # ExternalDNS: "true"/"false", any other string is false; absent → the --aws-evaluate-target-health
        # default
        evaluate_target_health=DEFAULT_EVALUATE_TARGET_HEALTH if ev is None else ev == "true",
        target_hosted_zone=props.get(PROP_TARGET_HOSTED_ZONE, ""),
        errors=tuple(errors),
        ignored=tuple(ignored),
    )


_EMPTY_PROPS_NO_SID = _parse_props((), "")
_SLOW: Any = object()  # placeholder in aggregate's records for keys merged after the first pass


def _value_sort_key(record_type: str, v: str) -> tuple[int, object, str]:
    # IPs in numeric order (so 10.0.0.9 sorts before 10.0.0.10), everything else lexically
    if record_type in ("A", "AAAA"):
        try:
            ip = ipaddress.ip_address(v)
            return (0, (ip.version, int(ip)), v)
        except ValueError:
            pass
    return (1, v.lower(), v)


def aggregate(
    endpoints: Iterable[Endpoint],
    zone: str,
    *,
    managed_types: Iterable[str] = DEFAULT_MANAGED_TYPES,
    subzones: Iterable[str] = (),
    alias_load_balancers: bool = False,
) -> Desired:
    """Aggregate every cluster's endpoints into the desired record sets of `zone` (FQDN with trailing dot).

    `alias_load_balancers` (a Route53 zone): a CNAME to a host name in a zone AWS serves aliases for (a load
    balancer, CloudFront...) becomes alias A and AAAA records, as ExternalDNS's AWS provider writes it.

    Endpoints outside the zone, inside one of `subzones` (hosted zones below this one: a name belongs to the
    longest matching zone, as ExternalDNS places it), or of unmanaged types are left out (counted in
    `notes`). The result does not depend on the order of `endpoints`.
    """
    zone = zone.lower() if zone.endswith(".") else zone.lower() + "."
    dot_zone = "." + zone
    below = tuple(sorted({"." + z for z in (normalize_name(x) for x in subzones) if z.endswith(dot_zone)}))
    managed = frozenset(t.upper() for t in managed_types)
    records: dict[tuple[str, str, str], DesiredRecord] = {}
    # keys that need the general merge (a second endpoint, routing, several targets, AAAA, alias...); their
    # place in `records` holds _SLOW until the merge below
    slow: dict[tuple[str, str, str], list[Endpoint]] = {}
    outside = 0
    unmanaged: dict[str, int] = {}
    alias_true = (PROP_ALIAS, "true")
    for ep in endpoints:
        dn = ep.dns_name
        # Endpoint.make already lower-cases and strips the dot; endpoints built directly may not have
        if dn[-1:] == ".":
            dn = dn[:-1]
        name = (dn if dn.islower() else dn.lower()) + "."
        if name != zone and not name.endswith(dot_zone):
            outside += 1
            continue
        if below and ("." + name).endswith(below):
            outside += 1  # a hosted zone below this one serves that name
            continue
        rtype = ep.record_type
        ps = ep.provider_specific
        if alias_load_balancers and rtype == "CNAME" and ep.targets:
            ep = _load_balancer_alias(ep)
            ps = ep.provider_specific
        if rtype == "CNAME" and ps and alias_true in ps:
            # ExternalDNS's AWS AdjustEndpoints: a CNAME with alias=true becomes alias A plus alias AAAA
            for t in ("A", "AAAA"):
                k2 = (name, t, ep.set_identifier)
                old = records.setdefault(k2, _SLOW)
                if old is not _SLOW:
                    slow[k2] = [old.endpoints[0]]
                    records[k2] = _SLOW
                slow.setdefault(k2, []).append(ep)
            continue
        if rtype not in managed:
            unmanaged[rtype] = unmanaged.get(rtype, 0) + 1
            continue
        sid = ep.set_identifier
        key = (name, rtype, sid)
        targets = ep.targets
        if not ps and not sid and len(targets) == 1 and rtype != "AAAA":
            # The common case, kept cheap (one dict operation): one endpoint, one target, no routing. A and
            # CNAME values keep their spelling (validation refuses malformed ones); AAAA goes through _merge.
            target = targets[0]
            # reuse the endpoint's tuple when it is already clean (one allocation less per record)
            values = targets if type(targets) is tuple and target.strip() is target else (target.strip(),)
            new = DesiredRecord(RecordSet(name, rtype, "", ep.ttl or None, values), (ep,), ep.labels)
            old = records.setdefault(key, new)
            if old is new:
                continue
        else:
            old = records.setdefault(key, _SLOW)
        if old is _SLOW:
            slow.setdefault(key, []).append(ep)
        else:  # a second endpoint for a key that had one fast record: merge them in the general way
            records[key] = _SLOW
            slow[key] = [old.endpoints[0], ep]

    notes: list[str] = []
    if outside:
        notes.append(f"{outside} endpoint(s) outside zone {zone} (or in a zone below it) left out")
    for t in sorted(unmanaged):
        notes.append(f"{unmanaged[t]} {t} endpoint(s) left out: type {t} is not managed in this zone")

    problems: dict[str, list[Conflict]] = {}
    props_cache: dict[tuple[tuple[tuple[str, str], ...], str], _Props] = {}
    ignored_props: dict[str, int] = {}
    for key, eps in slow.items():
        name, rtype, sid = key
        eps.sort(key=_endpoint_order)
        parsed: list[_Props] = []
        for ep in eps:
            ps = ep.provider_specific
            if not ps and not sid:
                parsed.append(_EMPTY_PROPS_NO_SID)
                continue
            ck = (ps, sid)
            p = props_cache.get(ck)
            if p is None:
                p = props_cache[ck] = _parse_props(ps, sid)
            parsed.append(p)
            for prop in p.ignored:
                ignored_props[prop] = ignored_props.get(prop, 0) + 1
        if len(eps) == 1:
            ep, p = eps[0], parsed[0]
            if not p.errors and not p.alias and len(ep.targets) == 1 and rtype != "AAAA":
                # one endpoint with routing (weighted, failover...): the shape of every set-identifier record
                rec = RecordSet(
                    name, rtype, sid, ep.ttl or None, (ep.targets[0].strip(),), p.routing, p.health_check_id
                )
                records[key] = DesiredRecord(rec, (ep,), ep.labels)
                continue
        rec, conflict = _merge(key, eps, parsed)
        if conflict is not None:
            problems.setdefault(name, []).append(conflict)
            del records[key]
            continue
        assert rec is not None  # noqa: S101 - _merge returns one or the other
        # the TXT carries the first contributor's labels; ownership_labels puts our owner id over any "owner"
        records[key] = DesiredRecord(record=rec, endpoints=tuple(eps), labels=eps[0].labels)

    for prop in sorted(ignored_props):
        notes.append(
            f"{prop} ignored on {ignored_props[prop]} endpoint(s) without a set identifier: Route53 routing "
            "needs one, so those records are plain (simple routing), as ExternalDNS writes them"
        )

    # Names with several record sets (A and AAAA, weighted sets...) get the cross-record checks below; found
    # with set operations in C, since nearly every name of a large zone has a single record set.
    names = [k[0] for k in records]
    multi_names: set[str] = set()
    if len(set(names)) != len(names):
        multi_names = {n for n, c in Counter(names).items() if c > 1}
    multi_names |= problems.keys()

    # Cross-record rules on names with several record sets (A beside CNAME, mixed routing, two PRIMARY...).
    by_name: dict[str, list[tuple[str, str, str]]] = {}
    if multi_names:
        for key in records:
            if key[0] in multi_names:
                by_name.setdefault(key[0], []).append(key)
    for name, keys in by_name.items():
        if len(keys) < 2 or name in problems:
            continue
        found = policy.validate_name([records[k].record for k in keys], zone)
        if found:
            objs = sorted({describe_endpoint(e) for k in keys for e in records[k].endpoints})
            for pr in found:
                problems.setdefault(name, []).append(Conflict(name, "conflict", pr.message, tuple(objs)))

    for name in problems:
        for key in by_name.get(name, ()):  # a name with one (conflicting) key has nothing in records
            records.pop(key, None)
    conflicts = tuple(c for name in sorted(problems) for c in sorted(problems[name], key=_conflict_order))
    return Desired(records=records, conflicts=conflicts, notes=tuple(notes))


def _load_balancer_alias(ep: Endpoint) -> Endpoint:
    """The CNAME endpoint as ExternalDNS's AWS provider writes it: an alias (with the target's hosted zone)
    when the target is in a zone AWS serves aliases for, unless the endpoint says alias=false.

    aws.go AdjustEndpoints (useAlias without --aws-prefer-cname) and isAWSAlias (canonicalHostedZone).
    """
    zone_id = canonical_hosted_zone(ep.targets[0])
    if not zone_id:
        return ep
    props = dict(ep.provider_specific)
    if props.setdefault(PROP_ALIAS, "true") != "true":
        return ep
    props.setdefault(PROP_TARGET_HOSTED_ZONE, zone_id)
    return replace(ep, provider_specific=tuple(sorted(props.items())))


def _endpoint_order(
    ep: Endpoint,
) -> tuple[str, str, tuple[str, ...], tuple[tuple[str, str], ...], int, object]:
    # The first endpoint gives the TXT's resource label: the alphabetically first resource, as ExternalDNS
    # keeps the label of the alphabetically first Service when it merges endpoints; the rest makes the order
    # total.
    return (ep.resource, ep.cluster, ep.targets, ep.provider_specific, ep.ttl, ep.labels)


def _conflict_order(c: Conflict) -> tuple[str, str, str]:
    return (c.name, c.kind, c.message)


def _merge(
    key: tuple[str, str, str], eps: Sequence[Endpoint], parsed: Sequence[_Props]
) -> tuple[RecordSet | None, Conflict | None]:
    name, rtype, sid = key
    rk = RecordKey(*key)
    errors = sorted({f"{rk}: {e}" for p in parsed for e in p.errors})
    if errors:
        objs = tuple(sorted({describe_endpoint(e) for e in eps}))
        return None, Conflict(name, "invalid", "; ".join(errors), objs)
    p0 = parsed[0]
    if len(eps) > 1:
        # Everything but the targets and the TTL must agree for endpoints to share one record set.
        shape = {
            (p.routing, p.health_check_id, p.alias, p.evaluate_target_health, p.target_hosted_zone)
            for p in parsed
        }
        if len(shape) > 1:
            objs = tuple(sorted({describe_endpoint(e) for e in eps}))
            what = "routing" if len({p.routing for p in parsed}) > 1 else "health check or alias settings"
            if sid:
                msg = f"{rk}: set identifier {sid!r} is used with different {what}"
            else:
                msg = f"{rk}: the objects publishing this name ask for different {what}"
            return None, Conflict(name, "conflict", msg, objs)

    alias = p0.alias and rtype in ("A", "AAAA")
    ttls = [e.ttl for e in eps if e.ttl > 0]
    ttl = min(ttls) if ttls else None  # the smallest configured TTL; None = not configured (diff ignores it)

    if alias:
        targets = {e.targets[0].rstrip(".").lower() for e in eps if e.targets}
        if len(targets) != 1 or any(len(e.targets) != 1 for e in eps):
            objs = tuple(sorted({describe_endpoint(e) for e in eps}))
            return None, Conflict(name, "conflict", f"{rk}: an alias record needs exactly one target", objs)
        return (
            RecordSet(
                name=name,
                type=rtype,
                set_identifier=sid,
                ttl=None,  # alias records carry no TTL; they answer with the target's
                routing=p0.routing,
                health_check_id=p0.health_check_id,
                alias=AliasTarget(
                    dns_name=targets.pop(),
                    hosted_zone_id=p0.target_hosted_zone,
                    evaluate_target_health=p0.evaluate_target_health,
                ),
            ),
            None,
        )

    # Union of targets, deduplicated by canonical value; the spelling kept is the smallest, for stability.
    by_canon: dict[str, str] = {}
    for e in eps:
        for t in e.targets:
            c = canonical_value(rtype, t)
            v = c if rtype in ("A", "AAAA") else t.strip()
            old = by_canon.get(c)
            if old is None or v < old:
                by_canon[c] = v
    if not by_canon:
        objs = tuple(sorted({describe_endpoint(e) for e in eps}))
        return None, Conflict(name, "invalid", f"{rk}: no targets", objs)
    if rtype == "CNAME" and len(by_canon) > 1:
        # A CNAME has exactly one target (RFC 1034 3.6.2); ExternalDNS picks one silently, the portal asks
        objs = tuple(sorted({describe_endpoint(e) for e in eps}))
        return None, Conflict(name, "conflict", f"{rk}: objects ask for different CNAME targets", objs)
    vals = list(by_canon.values())
    values = tuple(sorted(vals, key=lambda v: _value_sort_key(rtype, v)) if len(vals) > 1 else vals)
    return (
        RecordSet(
            name=name,
            type=rtype,
            set_identifier=sid,
            ttl=ttl,
            values=values,
            routing=p0.routing,
            health_check_id=p0.health_check_id,
        ),
        None,
    )


def endpoints_from_document(data: Any, *, cluster: str = "") -> list[Endpoint]:
    """Endpoints from the JSON/YAML shapes desired state comes in (ValueError says where it is wrong).

    Accepted: a list of DNSEndpoint `spec.endpoints[]` items (what `preview_endpoints --output json`
    prints); a DNSEndpoint object; a list of them; a `kind: List` with DNSEndpoint items (`kubectl get -o
    json`). Endpoints of a DNSEndpoint object without a `resource` label get `crd/<namespace>/<name>`, the
    label ExternalDNS's CRD source gives them.
    """
    if isinstance(data, Mapping):
        if data.get("kind") == "List" or ("items" in data and "spec" not in data):
            items = data.get("items")
            if not isinstance(items, list):
                raise ValueError("`items` must be a list of DNSEndpoint objects")
            return [e for i, obj in enumerate(items) for e in _from_object(obj, f"items[{i}]", cluster)]
        return _from_object(data, "DNSEndpoint", cluster)
    if not isinstance(data, list):
        raise ValueError(
            "expected a list of endpoints, a DNSEndpoint object or a list of DNSEndpoint objects"
        )
    out: list[Endpoint] = []
    for i, item in enumerate(data):
        if isinstance(item, Mapping) and "spec" in item:
            out.extend(_from_object(item, f"DNSEndpoint #{i + 1}", cluster))
            continue
        try:
            out.append(Endpoint.from_dnsendpoint(item, cluster=cluster))
        except ValueError as exc:
            raise ValueError(f"endpoint #{i + 1}: {exc}") from None
    return out


def _from_object(obj: Any, where: str, cluster: str) -> list[Endpoint]:
    if not isinstance(obj, Mapping):
        raise ValueError(f"{where}: expected a DNSEndpoint object")
    kind = obj.get("kind", "DNSEndpoint")
    if kind != "DNSEndpoint":
        raise ValueError(f"{where}: kind {kind!r} is not DNSEndpoint")
    meta = obj.get("metadata") or {}
    spec = obj.get("spec")
    if not isinstance(spec, Mapping) or not isinstance(spec.get("endpoints", []), list):
        raise ValueError(f"{where}: `spec.endpoints` must be a list")
    ns = str(meta.get("namespace", "") or "default") if isinstance(meta, Mapping) else "default"
    name = str(meta.get("name", "") or "") if isinstance(meta, Mapping) else ""
    if name:
        where = f"DNSEndpoint {ns}/{name}"
    out: list[Endpoint] = []
    for i, item in enumerate(spec.get("endpoints", [])):
        try:
            ep = Endpoint.from_dnsendpoint(item, cluster=cluster)
        except ValueError as exc:
            raise ValueError(f"{where}: endpoint #{i + 1}: {exc}") from None
        if name and not ep.resource:
            ep = replace(ep, labels=tuple(sorted((*ep.labels, ("resource", f"crd/{ns}/{name}")))))
        out.append(ep)
    return out
