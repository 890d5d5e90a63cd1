"""Jobs of traffic policies on the DNS side: the health checks the portal created for failover primaries are
deleted once no record set of their zone refers to them any more (a failover policy was replaced)."""

from __future__ import annotations

import logging

from dnsportal.audit import audit_record
from dnsportal.queue import register_job
from dnsportal.scheduler import periodic
from records.models import PolicyProposal, Zone, ZoneRecord
from records.providers.base import ProviderError

log = logging.getLogger(__name__)


@register_job(queue="dns")
def health_checks_prune(*, zone_id: int) -> None:
    """Delete the zone's proposals' health checks that its stored records no longer name. Only checks the
    portal created (and tagged with the zone's owner id); the provider refuses one a record set still uses."""
    zone = Zone.objects.select_related("account").get(id=zone_id)
    created = set(
        PolicyProposal.objects.filter(zone=zone)
        .exclude(health_check_id="")
        .values_list("health_check_id", flat=True)
    )
    if not created:
        return
    in_use = {
        data.get("HealthCheckId")
        for data in ZoneRecord.objects.filter(zone=zone, data__has_key="HealthCheckId").values_list(
            "data", flat=True
        )
    }
    from records.services import provider_for

    provider = provider_for(zone.account)
    for check_id in sorted(created - in_use):
        try:
            deleted = provider.health_check_delete(
                check_id, owner_id=zone.owner_id, zone_ids=[zone.provider_zone_id]
            )
        except ProviderError as exc:  # in use after all, or not ours: it stays, and says why in the log
            log.warning("zone %s: health check %s kept: %s", zone.name, check_id, exc.user_message)
            continue
        if deleted:
            audit_record(
                actor=None,
                action="healthcheck.delete",
                object_type="route53.healthcheck",
                object_id=check_id,
                object_repr=f"health check {check_id} of {zone.name}",
                before={"id": check_id},
            )
            log.info(
                "zone %s: deleted health check %s, which no record set uses any more", zone.name, check_id
            )


@register_job(queue="dns")
def health_checks_status() -> None:
    """The live status of each health check a written failover policy uses, stored for its hostname page (a
    page never asks Route53 itself)."""
    from django.utils import timezone

    from records.services import provider_for

    # Only checks a record set still names: an older policy's check (deleted once unused) would cost a
    # Route53 request a minute, from the account's shared budget, to learn that it is gone.
    named = ZoneRecord.objects.filter(data__has_key="HealthCheckId").values_list(
        "data__HealthCheckId", flat=True
    )
    in_use = PolicyProposal.objects.filter(
        status=PolicyProposal.Status.WRITTEN, health_check_id__in=set(named)
    ).exclude(health_check_id="")
    for p in in_use.select_related("zone__account"):
        try:
            status = provider_for(p.zone.account).health_check_status(p.health_check_id)
        except ProviderError as exc:
            summary, healthy = f"could not be read: {exc.user_message}", None
        else:
            summary, healthy = status.summary, status.healthy
        PolicyProposal.objects.filter(id=p.id).update(
            health_check_status=summary[:300],
            health_check_healthy=healthy,
            health_check_checked_at=timezone.now(),
        )


periodic("health_checks_status", every=60)
