"""Traffic policies: how one hostname's traffic splits across the clusters that serve it, as the editor says.

A `TrafficPolicy` is one routing policy for one name: round robin (which clusters take part), weighted (a
weight per cluster), failover (a PRIMARY and a SECONDARY, the primary with a health check), latency (an AWS
region per cluster) or geolocation (a location per cluster; one may be the default location `*`). This module

- checks it with Route53's own rules (`records.policy`, the plan engine's), each problem on its form field;
- reads the policy the clusters ask for now from their endpoints (to fill the editor);
- turns it into the ExternalDNS annotations each object must carry (`annotation_patches`): the clusters carry
  the decision, so a cluster rebuilt from Git can be given the same;
- predicts the endpoints discovery will see once those annotations are written (`endpoints_under_patches`),
  for the predicted DNS change the editor shows before saving.

The set identifier of a cluster's record set is the cluster's name: stable across edits, unique per zone.
Pure: no Django, boto3 or Kubernetes import.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from clusters.annotations import (
    ALPHA_PREFIX,
    GA_PREFIX,
    HOSTNAME,
    PREFIXES,
    SET_IDENTIFIER,
    TTL,
    TTL_MAX,
    TTL_MIN,
    annotation_prefix,
    split_hostnames,
)
from records.endpoint import (
    PROP_FAILOVER,
    PROP_GEO_CONTINENT,
    PROP_GEO_COUNTRY,
    PROP_GEO_SUBDIVISION,
    PROP_REGION,
    PROP_WEIGHT,
    Endpoint,
)
from records.policy import MAX_WEIGHT, validate_name, validate_record_set
from records.recordset import RecordSet, Routing

ROUND_ROBIN, WEIGHTED, FAILOVER, LATENCY, GEOLOCATION = (
    "round-robin",
    "weighted",
    "failover",
    "latency",
    "geolocation",
)
KINDS = (ROUND_ROBIN, WEIGHTED, FAILOVER, LATENCY, GEOLOCATION)
KIND_LABELS = {
    ROUND_ROBIN: "round robin",
    WEIGHTED: "weighted",
    FAILOVER: "failover",
    LATENCY: "latency",
    GEOLOCATION: "geolocation",
}
PRIMARY, SECONDARY = "PRIMARY", "SECONDARY"
DEFAULT_LOCATION = "*"  # Route53's CountryCode "*": resolvers no other geolocation record matches

# The annotation keys (after the prefix) a policy decides. Every one not in the new policy is removed, so no
# key of the old policy lingers (a weight left beside a failover role is a record Route53 rejects).
ROUTING_KEYS = (
    SET_IDENTIFIER,
    "aws-weight",
    "aws-failover",
    "aws-health-check-id",
    "aws-region",
    "aws-geolocation-continent-code",
    "aws-geolocation-country-code",
    "aws-geolocation-subdivision-code",
    "aws-geoproximity-region",
    "aws-geoproximity-local-zone-group",
    "aws-geoproximity-coordinates",
    "aws-geoproximity-bias",
    "aws-multi-value-answer",
)
# Endpoint properties those keys become (aws-<rest> -> aws/<rest>): what a predicted endpoint loses or gains.
_ROUTING_PROPS = frozenset(
    f"aws/{key.removeprefix('aws-')}" for key in ROUTING_KEYS if key.startswith("aws-")
)


@dataclass(frozen=True, slots=True)
class ClusterShare:
    """One cluster's part in a policy. Only the fields of the policy's kind are read."""

    cluster: str
    enabled: bool = True  # takes part; a cluster left out stops publishing the name
    weight: int | None = None  # weighted: 0..255
    role: str = ""  # failover: PRIMARY or SECONDARY
    region: str = ""  # latency: an AWS region
    continent: str = ""  # geolocation: a continent code, or
    country: str = ""  # a country code ("*": the default location), with
    subdivision: str = ""  # optionally a subdivision (US states, ...)


@dataclass(frozen=True, slots=True)
class TrafficPolicy:
    hostname: str  # lower case, no trailing dot (as endpoints keep it)
    kind: str
    shares: tuple[ClusterShare, ...]
    ttl: int = 0  # 0: leave each object's TTL as it is

    def share(self, cluster: str) -> ClusterShare | None:
        return next((s for s in self.shares if s.cluster == cluster), None)

    @property
    def enabled(self) -> tuple[ClusterShare, ...]:
        return tuple(s for s in self.shares if s.enabled)

    def to_dict(self) -> dict[str, Any]:
        return {
            "hostname": self.hostname,
            "kind": self.kind,
            "ttl": self.ttl,
            "shares": [asdict(s) for s in self.shares],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrafficPolicy:
        return cls(
            hostname=str(data["hostname"]),
            kind=str(data["kind"]),
            ttl=int(data.get("ttl") or 0),
            shares=tuple(ClusterShare(**s) for s in data.get("shares", [])),
        )

    def describe(self) -> str:
        """One line for lists and audit entries: "weighted: rke2-dc1 80, k3s-edge 20"."""
        parts = []
        for s in self.enabled:
            detail = {
                WEIGHTED: str(s.weight),
                FAILOVER: s.role.lower(),
                LATENCY: s.region,
                GEOLOCATION: _location(s),
            }.get(self.kind, "")
            parts.append(f"{s.cluster} {detail}".strip())
        return f"{KIND_LABELS.get(self.kind, self.kind)}: {', '.join(parts) or 'no cluster'}"


def _location(s: ClusterShare) -> str:
    if s.country == DEFAULT_LOCATION:
        return "default location"
    return "/".join(x for x in (s.continent, s.country, s.subdivision) if x)


@dataclass(frozen=True, slots=True)
class FieldError:
    """A problem on one form field: "kind", "ttl", "health_check", "__all__" or "<cluster>.<field>"."""

    field: str
    message: str


def percentages(weights: Mapping[str, int]) -> dict[str, float]:
    """Each cluster's share of the answers in percent (what the editor shows live). All 0: Route53 answers
    them equally, so each gets an equal share."""
    total = sum(weights.values())
    if not weights:
        return {}
    if total == 0:
        return dict.fromkeys(weights, 100 / len(weights))
    return {cluster: 100 * w / total for cluster, w in weights.items()}


# --- checking a policy ----------------------------------------------------------------------------------


def validate(
    policy: TrafficPolicy,
    *,
    zone: str,
    serving: Collection[str],
    has_health_check: bool,
    leave_out_refused: Mapping[str, str] | None = None,
) -> tuple[list[FieldError], list[str]]:
    """Errors (each on its field) and warnings of a policy for `policy.hostname` in `zone` (FQDN with dot).

    `serving`: the clusters that publish the name now (each needs a share); `has_health_check`: the form
    carries a valid health check for the failover primary; `leave_out_refused`: clusters whose objects cannot
    be left out by an annotation, with the sentence saying why.
    """
    errors: list[FieldError] = []
    warnings: list[str] = []
    if policy.kind not in KINDS:
        return [FieldError("kind", f"Choose a routing policy: {', '.join(KIND_LABELS.values())}.")], []
    if policy.ttl and not TTL_MIN <= policy.ttl <= TTL_MAX:
        errors.append(
            FieldError("ttl", f"A TTL is from {TTL_MIN} to {TTL_MAX} seconds (or empty to keep it).")
        )
    shared = {s.cluster for s in policy.shares}
    for missing in sorted(set(serving) - shared):
        errors.append(FieldError("__all__", f"Cluster {missing} serves {policy.hostname}: give it a part."))
    for extra in sorted(shared - set(serving)):
        errors.append(FieldError(f"{extra}.enabled", f"Cluster {extra} does not serve {policy.hostname}."))
    enabled = policy.enabled
    if not enabled:
        errors.append(FieldError("__all__", f"At least one cluster must serve {policy.hostname}."))
    for s in policy.shares:
        if not s.enabled and leave_out_refused and s.cluster in leave_out_refused:
            errors.append(FieldError(f"{s.cluster}.enabled", leave_out_refused[s.cluster]))
    check = {
        WEIGHTED: _check_weighted,
        FAILOVER: _check_failover,
        LATENCY: _check_latency,
        GEOLOCATION: _check_geolocation,
    }.get(policy.kind)
    if check is not None:
        check(policy, errors, warnings, has_health_check)
    if not errors:  # the form's own sentences first; Route53's rules then catch what they do not say
        errors += _route53_problems(policy, zone)
    return errors, warnings


def _check_weighted(policy: TrafficPolicy, errors: list, warnings: list, _hc: bool) -> None:
    for s in policy.enabled:
        if s.weight is None or not 0 <= s.weight <= MAX_WEIGHT:
            errors.append(
                FieldError(f"{s.cluster}.weight", f"A weight is a whole number from 0 to {MAX_WEIGHT}.")
            )
    weights = [s.weight for s in policy.enabled]
    if weights and all(w == 0 for w in weights):
        errors.append(
            FieldError(
                "__all__",
                "Every weight is 0: Route53 would then answer with all of them equally, which is not a "
                "drain. Give the clusters that should take traffic a weight above 0.",
            )
        )
    elif len(weights) > 1 and weights.count(0) == len(weights) - 1:
        warnings.append("Only one cluster takes traffic; the others are drained (weight 0).")


def _check_failover(policy: TrafficPolicy, errors: list, warnings: list, has_health_check: bool) -> None:
    roles = [s.role for s in policy.enabled]
    for s in policy.enabled:
        if s.role not in (PRIMARY, SECONDARY):
            errors.append(FieldError(f"{s.cluster}.role", "Choose primary or secondary."))
    if roles.count(PRIMARY) != 1:
        errors.append(FieldError("__all__", "Failover needs exactly one primary cluster."))
    if roles.count(SECONDARY) > 1:
        errors.append(FieldError("__all__", "Failover allows one secondary cluster; leave the others out."))
    if roles.count(SECONDARY) == 0:
        warnings.append("No secondary: when the primary fails its health check, the name answers nothing.")
    if PRIMARY in roles and not has_health_check:
        errors.append(
            FieldError(
                "health_check",
                "A failover primary needs a health check: without one Route53 never fails over to the "
                "secondary.",
            )
        )


def _check_latency(policy: TrafficPolicy, errors: list, warnings: list, _hc: bool) -> None:
    for s in policy.enabled:
        if not s.region:
            errors.append(
                FieldError(f"{s.cluster}.region", "Choose the AWS region this cluster is closest to.")
            )


def _check_geolocation(policy: TrafficPolicy, errors: list, warnings: list, _hc: bool) -> None:
    for s in policy.enabled:
        if not (s.continent or s.country):
            errors.append(
                FieldError(f"{s.cluster}.location", "Choose a continent, a country or the default.")
            )
        elif s.continent and s.country:
            errors.append(FieldError(f"{s.cluster}.location", "Choose a continent or a country, not both."))
        elif s.subdivision and not s.country:
            errors.append(FieldError(f"{s.cluster}.location", "A subdivision needs its country."))
    if not any(s.country == DEFAULT_LOCATION for s in policy.enabled):
        warnings.append(
            "No cluster is the default location: resolvers outside the locations listed get no answer."
        )


def _candidate(policy: TrafficPolicy, s: ClusterShare, zone: str) -> RecordSet:
    """The record set a share becomes (a placeholder value: only its routing is checked here)."""
    return RecordSet(
        name=f"{policy.hostname}.",
        type="A",
        set_identifier=s.cluster if policy.kind != ROUND_ROBIN else "",
        ttl=policy.ttl or None,
        values=("192.0.2.1",),
        routing=routing_of(policy.kind, s),
        health_check_id="00000000-0000-0000-0000-000000000000" if s.role == PRIMARY else "",
    )


def _route53_problems(policy: TrafficPolicy, zone: str) -> list[FieldError]:
    """The plan engine's Route53 rules on the record sets the policy will make, each on its share's field."""
    field_of = {
        "Weight": "weight",
        "Failover": "role",
        "Region": "region",
        "GeoLocation": "location",
        "TTL": "ttl",
    }
    if policy.kind == ROUND_ROBIN:
        sets = [_candidate(policy, policy.enabled[0], zone)] if policy.enabled else []
    else:
        sets = [_candidate(policy, s, zone) for s in policy.enabled]
    out: list[FieldError] = []
    for rs in sets:
        for p in validate_record_set(rs, zone):
            short = field_of.get(p.field.split(".", 1)[0])
            if short == "ttl":
                out.append(FieldError("ttl", p.message))
            elif short and rs.set_identifier:
                out.append(FieldError(f"{rs.set_identifier}.{short}", p.message))
            else:
                out.append(FieldError("__all__", p.message))
    for p in validate_name(sets, zone):
        out.append(FieldError("__all__", p.message))
    return out


def routing_of(kind: str, s: ClusterShare) -> Routing:
    if kind == WEIGHTED:
        return Routing(weight=s.weight)
    if kind == FAILOVER:
        return Routing(failover=s.role)
    if kind == LATENCY:
        return Routing(region=s.region)
    if kind == GEOLOCATION:
        return Routing(continent=s.continent, country=s.country, subdivision=s.subdivision)
    return Routing()


# --- the policy the clusters ask for now ------------------------------------------------------------------


def policy_from_endpoints(hostname: str, endpoints: Sequence[Endpoint]) -> TrafficPolicy:
    """The policy the clusters' endpoints for `hostname` state now, one share per cluster (the editor's
    starting point). Mixed or unreadable routing reads as round robin: the editor then sets one policy."""
    mine = [e for e in endpoints if e.dns_name == hostname]
    by_cluster: dict[str, dict[str, str]] = {}
    for e in sorted(mine, key=lambda e: e.cluster):
        # Routing properties count only beside a set identifier: ExternalDNS's AWS provider (and the plan)
        # ignore them without one, so such an endpoint is published round robin.
        by_cluster.setdefault(e.cluster, {}).update(e.properties if e.set_identifier else {})
    kinds = {_kind_of(props) for props in by_cluster.values()}
    kind = kinds.pop() if len(kinds) == 1 else ROUND_ROBIN
    ttls = {e.ttl for e in mine}
    shares = []
    for cluster, props in sorted(by_cluster.items()):
        weight = props.get(PROP_WEIGHT, "")
        shares.append(
            ClusterShare(
                cluster=cluster,
                weight=int(weight) if weight.isdigit() else None,
                role=props.get(PROP_FAILOVER, ""),
                region=props.get(PROP_REGION, ""),
                continent=props.get(PROP_GEO_CONTINENT, ""),
                country=props.get(PROP_GEO_COUNTRY, ""),
                subdivision=props.get(PROP_GEO_SUBDIVISION, ""),
            )
        )
    return TrafficPolicy(
        hostname=hostname, kind=kind, shares=tuple(shares), ttl=ttls.pop() if len(ttls) == 1 else 0
    )


def _kind_of(props: Mapping[str, str]) -> str:
    if PROP_WEIGHT in props:
        return WEIGHTED
    if PROP_FAILOVER in props:
        return FAILOVER
    if PROP_REGION in props:
        return LATENCY
    if {PROP_GEO_CONTINENT, PROP_GEO_COUNTRY, PROP_GEO_SUBDIVISION} & props.keys():
        return GEOLOCATION
    return ROUND_ROBIN


# --- the annotations that carry a policy -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ObjectState:
    """A Service or Ingress that publishes the name, as discovery last saw it."""

    cluster: str
    kind: str  # "Service" | "Ingress"
    namespace: str
    name: str
    annotations: Mapping[str, str]  # its ExternalDNS annotations (either prefix), as on the object
    resource_version: str = ""
    hostnames: tuple[str, ...] = ()  # every name it publishes (the routing keys apply to all of them)
    default_prefix: str = ALPHA_PREFIX  # the cluster's setting, for an object with no ExternalDNS key yet

    @property
    def resource(self) -> str:
        return f"{self.kind.lower()}/{self.namespace}/{self.name}"

    def describe(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name} in cluster {self.cluster}"


@dataclass(frozen=True, slots=True)
class ObjectPatch:
    """What one object's annotations become: `changes` is the merge patch (None removes a key)."""

    obj: ObjectState
    changes: dict[str, str | None]
    before: dict[str, str]
    after: dict[str, str]
    also_affects: tuple[str, ...] = field(default=())  # other names this object publishes: they follow

    @property
    def empty(self) -> bool:
        return not self.changes


def leave_out_problem(hostname: str, obj: ObjectState) -> str | None:
    """Why `obj` cannot stop publishing `hostname` by an annotation edit, or None when it can."""
    hostnames = _annotated_hostnames(obj)
    if hostname in hostnames:
        return None
    return (
        f"{obj.describe()} publishes {hostname} from its spec, not from its hostname annotation; it cannot "
        "be left out by an annotation. Give it weight 0 (weighted) instead, or change the object itself."
    )


def _annotated_hostnames(obj: ObjectState) -> list[str]:
    for prefix in PREFIXES:  # the GA key wins, as discovery reads it
        value = obj.annotations.get(prefix + HOSTNAME)
        if value is not None:
            return [h.lower() for h in split_hostnames(value)]
    return []


def annotation_patches(
    policy: TrafficPolicy,
    objects: Sequence[ObjectState],
    *,
    health_check_ids: Mapping[str, str] | None = None,
) -> list[ObjectPatch]:
    """The annotation changes that make every object publishing `policy.hostname` carry the policy.

    Each object keeps the prefix it uses (else its cluster's); a routing key under the other prefix is removed
    so it cannot shadow the new value. `health_check_ids`: cluster -> the Route53 health check the portal
    created for it (failover). Raises ValueError for an object the policy does not name a share for.
    """
    hc = health_check_ids or {}
    out = []
    for obj in sorted(objects, key=lambda o: (o.cluster, o.kind, o.namespace, o.name)):
        share = policy.share(obj.cluster)
        if share is None:
            raise ValueError(
                f"{obj.describe()} publishes {policy.hostname}, but the policy has no part for it"
            )
        prefix = annotation_prefix(obj.annotations) or obj.default_prefix
        other = GA_PREFIX if prefix == ALPHA_PREFIX else ALPHA_PREFIX
        want: dict[str, str] = {}
        if not share.enabled:
            remaining = [h for h in _annotated_hostnames(obj) if h != policy.hostname]
            changes: dict[str, str | None] = {}
            _set(changes, obj, prefix, other, HOSTNAME, ",".join(remaining) if remaining else None)
        else:
            want = desired_keys(policy, share, hc.get(obj.cluster, ""))
            changes = {}
            for key in (*ROUTING_KEYS, TTL):
                if key == TTL and not policy.ttl:
                    continue  # the policy leaves each object's TTL as it is
                _set(changes, obj, prefix, other, key, want.get(key))
        after = {k: v for k, v in {**obj.annotations, **changes}.items() if v is not None}
        others = tuple(sorted(h for h in obj.hostnames if h != policy.hostname)) if share.enabled else ()
        out.append(
            ObjectPatch(
                obj=obj,
                changes=changes,
                before=dict(obj.annotations),
                after=after,
                also_affects=others,
            )
        )
    return out


def desired_keys(policy: TrafficPolicy, share: ClusterShare, health_check_id: str = "") -> dict[str, str]:
    """The routing annotation keys (without prefix) one cluster's objects carry under the policy."""
    if policy.kind == ROUND_ROBIN:
        keys: dict[str, str] = {}
    elif policy.kind == WEIGHTED:
        keys = {SET_IDENTIFIER: share.cluster, "aws-weight": str(share.weight)}
    elif policy.kind == FAILOVER:
        keys = {SET_IDENTIFIER: share.cluster, "aws-failover": share.role}
        if health_check_id:
            keys["aws-health-check-id"] = health_check_id
    elif policy.kind == LATENCY:
        keys = {SET_IDENTIFIER: share.cluster, "aws-region": share.region}
    else:
        keys = {SET_IDENTIFIER: share.cluster}
        for key, value in (
            ("aws-geolocation-continent-code", share.continent),
            ("aws-geolocation-country-code", share.country),
            ("aws-geolocation-subdivision-code", share.subdivision),
        ):
            if value:
                keys[key] = value
    if policy.ttl:
        keys[TTL] = str(policy.ttl)
    return keys


def _set(
    changes: dict[str, str | None], obj: ObjectState, prefix: str, other: str, key: str, value: str | None
) -> None:
    if obj.annotations.get(prefix + key) != value:
        changes[prefix + key] = value
    if (other + key) in obj.annotations:
        changes[other + key] = None


# --- what discovery will see ------------------------------------------------------------------------------


def endpoints_under_patches(endpoints: Sequence[Endpoint], patches: Sequence[ObjectPatch]) -> list[Endpoint]:
    """The endpoints once the patches are written: the patched objects' endpoints take the new routing (all
    their names), a left-out object's endpoints for the name go; every other endpoint stays as it is."""
    by_source = {(p.obj.cluster, p.obj.resource): p for p in patches}
    out = []
    for e in endpoints:
        patch = by_source.get((e.cluster, e.resource))
        if patch is None:
            out.append(e)
            continue
        hostnames = _annotated_hostnames(replace(patch.obj, annotations=patch.after))
        if HOSTNAME in _short_keys(patch.changes) and e.dns_name not in hostnames:
            continue  # left out of this name
        out.append(_with_routing(e, patch.after))
    return out


def _short_keys(annotations: Mapping[str, Any]) -> set[str]:
    return {k.split("/", 1)[1] for k in annotations if k.startswith(PREFIXES)}


def _with_routing(e: Endpoint, annotations: Mapping[str, str]) -> Endpoint:
    short = {}
    for prefix in (ALPHA_PREFIX, GA_PREFIX):  # the GA value, read last, wins
        short.update({k[len(prefix) :]: v for k, v in annotations.items() if k.startswith(prefix)})
    props = {k: v for k, v in e.properties.items() if k not in _ROUTING_PROPS}
    for key, value in short.items():
        if key.startswith("aws-") and f"aws/{key[4:]}" in _ROUTING_PROPS:
            props[f"aws/{key[4:]}"] = value
    ttl = int(short[TTL]) if short.get(TTL, "").isdigit() else e.ttl
    return Endpoint.make(
        e.dns_name,
        e.record_type,
        e.targets,
        ttl=ttl,
        set_identifier=short.get(SET_IDENTIFIER, ""),
        provider_specific=props,
        labels=e.labels,
        cluster=e.cluster,
    )


def health_check_for(policy: TrafficPolicy) -> str:
    """The cluster whose record set needs the health check the portal creates: the failover primary."""
    if policy.kind != FAILOVER:
        return ""
    primary = next((s for s in policy.enabled if s.role == PRIMARY), None)
    return primary.cluster if primary else ""
