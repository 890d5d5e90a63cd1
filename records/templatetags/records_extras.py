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
    for key, label in _ROUTING:
        if rrset.get(key) not in (None, ""):
            lines.append(f"{label} {rrset[key]}")
    geo = rrset.get("GeoLocation")
    if geo:
        lines.append("geo " + " ".join(f"{k.replace('Code', '').lower()}={v}" for k, v in geo.items()))
    prox = rrset.get("GeoProximityLocation")
    if prox:
        lines.append("geoproximity " + " ".join(f"{k}={v}" for k, v in prox.items()))
    return lines
