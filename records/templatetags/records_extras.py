"""Template helpers for record sets in Route53's shape."""

from django import template

register = template.Library()

_ROUTING = (
    ("Weight", "weight"),
    ("Failover", "failover"),
    ("Region", "latency region"),
    ("HealthCheckId", "health check"),
    ("MultiValueAnswer", "multivalue"),
)


@register.filter
def rrset_lines(rrset: dict | None) -> list[str]:
    """A record set as short lines: its values, TTL and routing fields (for the change set diff)."""
    if not rrset:
        return []
    lines = []
    alias = rrset.get("AliasTarget")
    if alias:
        lines.append(f"alias → {alias.get('DNSName', '')}")
    lines += [r.get("Value", "") for r in rrset.get("ResourceRecords", [])]
    if rrset.get("TTL") is not None:
        lines.append(f"TTL {rrset['TTL']}")
    return lines + routing_parts(rrset)


def routing_parts(rrset: dict) -> list[str]:
    """The routing fields of a record set in Route53's shape: "weight 80", "failover PRIMARY", ..."""
    parts = []
    for key, label in _ROUTING:
        if rrset.get(key) not in (None, "", False):
            parts.append(label if rrset[key] is True else f"{label} {rrset[key]}")
    geo = rrset.get("GeoLocation")
    if geo:
        parts.append("geo " + " ".join(f"{k.replace('Code', '').lower()}={v}" for k, v in geo.items()))
    prox = rrset.get("GeoProximityLocation")
    if prox:
        parts.append("geoproximity " + " ".join(f"{k}={v}" for k, v in prox.items()))
    return parts


@register.filter
def rrset_routing(rrset: dict | None) -> str:
    """A stored record set's routing for a table cell: "weight 80 · health check …", "" for simple routing."""
    return " · ".join(routing_parts(rrset)) if rrset else ""
