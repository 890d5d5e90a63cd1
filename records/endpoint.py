"""The endpoint: one DNS record a cluster wants published, in ExternalDNS's shape.

Pure data (no Django, boto3 or Kubernetes import). `clusters.endpoints` produces these from Services and
Ingresses; `records.plan` aggregates them into record sets. The JSON form is the `spec.endpoints[]` item of
ExternalDNS's `DNSEndpoint` CRD, so `preview_endpoints` output can be applied as a DNSEndpoint object and fed
back to `preview_plan`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

# ExternalDNS label keys (endpoint/labels.go). The resource label names the Kubernetes object behind a record.
LABEL_RESOURCE = "resource"
LABEL_OWNER = "owner"

# Provider-specific property names, exactly as ExternalDNS's AWS provider names them (provider/aws/aws.go).
PROP_WEIGHT = "aws/weight"
PROP_REGION = "aws/region"
PROP_FAILOVER = "aws/failover"
PROP_GEO_CONTINENT = "aws/geolocation-continent-code"
PROP_GEO_COUNTRY = "aws/geolocation-country-code"
PROP_GEO_SUBDIVISION = "aws/geolocation-subdivision-code"
PROP_GEOPROXIMITY_REGION = "aws/geoproximity-region"
PROP_GEOPROXIMITY_LOCAL_ZONE_GROUP = "aws/geoproximity-local-zone-group"
PROP_GEOPROXIMITY_COORDINATES = "aws/geoproximity-coordinates"
PROP_GEOPROXIMITY_BIAS = "aws/geoproximity-bias"
PROP_MULTI_VALUE_ANSWER = "aws/multi-value-answer"
PROP_HEALTH_CHECK_ID = "aws/health-check-id"
PROP_EVALUATE_TARGET_HEALTH = "aws/evaluate-target-health"
PROP_TARGET_HOSTED_ZONE = "aws/target-hosted-zone"
PROP_HOSTED_ZONE_ID = "aws/hosted-zone-id"
PROP_ALIAS = "alias"


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One desired record: name, type, targets and routing, plus where it came from.

    `dns_name` is lower-case without a trailing dot (as ExternalDNS keeps it); `ttl` 0 means "not configured"
    (the provider default applies); `targets` are kept in the order the source gave them.
    `provider_specific` and `labels` are sorted tuples of pairs so endpoints hash and compare by value.
    """

    dns_name: str
    record_type: str
    targets: tuple[str, ...]
    ttl: int = 0
    set_identifier: str = ""
    provider_specific: tuple[tuple[str, str], ...] = ()
    labels: tuple[tuple[str, str], ...] = ()
    # Where the endpoint came from, for explanations ("new Service rke2-dc1/default/nginx"); not part of the
    # DNSEndpoint schema, so it is neither written by to_dnsendpoint nor compared by the plan.
    cluster: str = field(default="", compare=False)

    @classmethod
    def make(
        cls,
        dns_name: str,
        record_type: str,
        targets: Iterable[str],
        *,
        ttl: int = 0,
        set_identifier: str = "",
        provider_specific: Mapping[str, str] | Iterable[tuple[str, str]] = (),
        labels: Mapping[str, str] | Iterable[tuple[str, str]] = (),
        cluster: str = "",
    ) -> Endpoint:
        """Build an endpoint from loose inputs, normalising the name and sorting the pairs."""
        ps = provider_specific.items() if isinstance(provider_specific, Mapping) else provider_specific
        lb = labels.items() if isinstance(labels, Mapping) else labels
        return cls(
            dns_name=dns_name.strip().rstrip(".").lower(),
            record_type=record_type.upper(),
            targets=tuple(targets),
            ttl=int(ttl),
            set_identifier=set_identifier,
            provider_specific=tuple(sorted((str(k), str(v)) for k, v in ps)),
            labels=tuple(sorted((str(k), str(v)) for k, v in lb)),
            cluster=cluster,
        )

    @property
    def properties(self) -> dict[str, str]:
        return dict(self.provider_specific)

    @property
    def label_map(self) -> dict[str, str]:
        return dict(self.labels)

    @property
    def resource(self) -> str:
        """`service/<ns>/<name>` or `ingress/<ns>/<name>`, or "" when unknown."""
        return self.label_map.get(LABEL_RESOURCE, "")

    def to_dnsendpoint(self) -> dict[str, Any]:
        """The `DNSEndpoint.spec.endpoints[]` item (ExternalDNS's CRD schema)."""
        out: dict[str, Any] = {
            "dnsName": self.dns_name,
            "targets": list(self.targets),
            "recordType": self.record_type,
        }
        if self.set_identifier:
            out["setIdentifier"] = self.set_identifier
        if self.ttl:
            out["recordTTL"] = self.ttl
        if self.labels:
            out["labels"] = dict(self.labels)
        if self.provider_specific:
            out["providerSpecific"] = [{"name": k, "value": v} for k, v in self.provider_specific]
        return out

    @classmethod
    def from_dnsendpoint(cls, item: Mapping[str, Any], *, cluster: str = "") -> Endpoint:
        """Parse one DNSEndpoint endpoint item; raises ValueError naming the field that is wrong."""
        if not isinstance(item, Mapping):
            raise ValueError(f"endpoint must be an object, got {type(item).__name__}")
        name = item.get("dnsName")
        if not isinstance(name, str) or not name.strip():
            raise ValueError("endpoint: `dnsName` is missing or not a string")
        rtype = item.get("recordType")
        if not isinstance(rtype, str) or not rtype:
            raise ValueError(f"endpoint {name}: `recordType` is missing or not a string")
        targets = item.get("targets", [])
        if not isinstance(targets, list) or not all(isinstance(t, str) for t in targets):
            raise ValueError(f"endpoint {name}: `targets` must be a list of strings")
        ttl = item.get("recordTTL", 0) or 0
        if not isinstance(ttl, int) or isinstance(ttl, bool) or ttl < 0:
            raise ValueError(f"endpoint {name}: `recordTTL` must be a non-negative integer, got {ttl!r}")
        ps_raw = item.get("providerSpecific", []) or []
        if not isinstance(ps_raw, list):
            raise ValueError(f"endpoint {name}: `providerSpecific` must be a list of {{name, value}}")
        ps: list[tuple[str, str]] = []
        for p in ps_raw:
            if not isinstance(p, Mapping) or not isinstance(p.get("name"), str):
                raise ValueError(f"endpoint {name}: each `providerSpecific` item needs a string `name`")
            ps.append((p["name"], str(p.get("value", ""))))
        labels = item.get("labels", {}) or {}
        if not isinstance(labels, Mapping):
            raise ValueError(f"endpoint {name}: `labels` must be an object")
        return cls.make(
            name,
            rtype,
            targets,
            ttl=ttl,
            set_identifier=str(item.get("setIdentifier", "") or ""),
            provider_specific=ps,
            labels={str(k): str(v) for k, v in labels.items()},
            cluster=cluster,
        )
