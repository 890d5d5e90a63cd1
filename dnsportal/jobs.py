"""The portal's own periodic housekeeping."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from dnsportal.audit import audit_record
from dnsportal.models import JobRun
from dnsportal.queue import register_job
from dnsportal.scheduler import periodic

log = logging.getLogger(__name__)


@register_job(queue="default")
def jobruns_prune() -> None:
    """Delete finished job runs older than DNSPORTAL_JOB_RETENTION_DAYS (the audit log is never pruned)."""
    cutoff = timezone.now() - timedelta(days=settings.JOB_RETENTION_DAYS)
    with transaction.atomic():
        old = JobRun.objects.filter(
            created_at__lt=cutoff, status__in=[JobRun.Status.DONE, JobRun.Status.FAILED]
        )
        count, _ = old.delete()
        if count:
            audit_record(
                actor=None,
                action="jobruns.prune",
                object_type="dnsportal.jobrun",
                after={"deleted": count, "older_than": cutoff.isoformat()},
            )
    log.info("pruned %d job runs older than %s", count, cutoff.date())


periodic("jobruns_prune", every=24 * 3600)
