"""Reads of the records app for pages."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from records.models import Endpoint, Zone

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


def zones_failing_reconcile() -> QuerySet:
    """Enabled zones whose last reconcile failed, with the failed job run (for the dashboard)."""
    return (
        Zone.objects.filter(enabled=True)
        .exclude(last_reconcile_error="")
        .select_related("last_reconcile_run")
        .order_by("name")
    )
