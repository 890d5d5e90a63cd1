"""Writes of drift detection: what a drift check found, on the zone, and the stored state brought up to date
with what the nameservers answer (records.drift decides; records.jobs_drift asks)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from records.models import Zone, ZoneRecord
from records.recordset import RecordSet, recordset_from_route53, recordset_to_route53


def zone_drift_checked(*, zone_id: int, summary: str, found: bool) -> None:
    """Keep what the drift check found and how, for the zone page; a drift found is kept until the next."""
    fields: dict = {"drift_check_summary": summary[:4000]}
    if found:
        fields.update(drift_found_at=timezone.now(), drift_found=summary[:4000])
    Zone.objects.filter(id=zone_id).update(**fields)


@transaction.atomic
def zone_observe_records(*, zone_id: int, records: Sequence[RecordSet], known_at: datetime) -> bool:
    """Store simple owned record sets as the nameservers answer them, in place of the stored ones.

    Only when the stored state is still the one the check compared with (`known_at`): an apply of the portal's
    since then moved it, and the answers may be that apply's. Each record set must replace a stored simple
    record set the portal owns, or nothing is stored. Returns whether the records were stored.
    """
    zone = Zone.objects.select_for_update().get(id=zone_id)
    if not zone.state_valid or zone.state_known_at != known_at:
        return False
    for rs in records:
        row = ZoneRecord.objects.filter(
            zone=zone, name=rs.name, type=rs.type, set_identifier="", ownership=ZoneRecord.Ownership.OWNED
        ).first()
        if row is None or recordset_from_route53(row.data).routing != rs.routing:
            transaction.set_rollback(True)
            return False
        row.data = recordset_to_route53(rs)
        row.save(update_fields=["data"])
    zone.state_known_at = timezone.now()
    zone.save(update_fields=["state_known_at"])
    return True
