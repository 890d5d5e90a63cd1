"""The portal's own periodic housekeeping."""

from __future__ import annotations

import logging
import time
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from dnsportal import queue
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

# The error a swept run ends with; a job swept this many times in an hour is not queued again (it may be what
# kills its worker).
SWEPT = "The worker running this job stopped"
SWEEP_RETRIES = 3


@register_job(queue="default")
def jobruns_sweep() -> None:
    """Runs that no worker will ever finish or pick up: queue them again.

    - Running, but silent for DNSPORTAL_JOB_LEASE_S (no heartbeat: its worker was killed, or the database
      was away when it ended): it ends failed, saying so, and a new run of the same job is queued (jobs are
      idempotent; what must happen once, an apply, is claimed on its own row).
    - Pending for that long with no message in Redis to start it (Redis lost it, was away when the row's
      transaction committed, or its worker died between taking the message and claiming the row): its
      message is pushed again (the same RQ job id; a second delivery finds the row claimed).
    """
    from rq.exceptions import NoSuchJobError
    from rq.job import Job

    lease = timedelta(seconds=settings.JOB_LEASE_S)
    cutoff = timezone.now() - lease
    silent = JobRun.objects.filter(status=JobRun.Status.RUNNING).filter(
        Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True, started_at__lt=cutoff)
    )
    for run in silent:
        message = f"{SWEPT} (no sign of life for {settings.JOB_LEASE_S} s)"
        ended = JobRun.objects.filter(id=run.id, status=JobRun.Status.RUNNING).update(
            status=JobRun.Status.FAILED, finished_at=timezone.now(), error=message
        )
        if ended != 1:
            continue
        recent = JobRun.objects.filter(
            name=run.name,
            kwargs=run.kwargs,
            error__startswith=SWEPT,
            created_at__gte=timezone.now() - timedelta(hours=1),
        ).count()
        if recent > SWEEP_RETRIES or run.name not in queue.JOBS:
            log.error("job run %s (%s) stopped with its worker; not queued again", run.id, run.name)
            continue
        again = queue.enqueue(run.name, **run.kwargs)
        log.warning("job run %s (%s) stopped with its worker; queued again as %s", run.id, run.name, again.id)
    redis = queue.rq_connection()
    for run_id, run_queue in JobRun.objects.filter(
        status=JobRun.Status.PENDING, created_at__lt=cutoff
    ).values_list("id", "queue"):
        try:
            job = Job.fetch(f"run-{run_id}", connection=redis)
        except NoSuchJobError:
            job = None
        if job is None or not _message_waits(job, redis):
            queue.push(run_id, run_queue)
            status = job.get_status(refresh=False) if job else "no message"
            log.warning(
                "job run %s was pending with no message to start it (%s); pushed again", run_id, status
            )


def _message_waits(job, redis) -> bool:
    """Whether RQ will still start this job: scheduled for a time not long past, in its queue's list, or taken
    by a worker that lives. (A worker killed, or exiting as Redis went away, between taking a message and
    starting it leaves the job `queued` in no queue, or `started` by nobody. A job scheduled for a queue whose
    scheduler died waits until a worker of that queue takes the scheduler's lock over: a worker started while
    the dead one's lock lived tries again only at its next maintenance, and bench/soak.py saw an apply wait
    five minutes that way.)"""
    import django_rq
    from rq import Worker
    from rq.job import JobStatus
    from rq.registry import ScheduledJobRegistry

    status = job.get_status(refresh=False)
    if status == JobStatus.SCHEDULED:
        due = redis.zscore(ScheduledJobRegistry(job.origin, connection=redis).key, job.id)
        return due is not None and due > time.time() - settings.JOB_LEASE_S
    if status == JobStatus.DEFERRED:
        return True
    if status == JobStatus.QUEUED:
        return redis.lpos(django_rq.get_queue(job.origin).key, job.id) is not None
    if status == JobStatus.STARTED:
        worker_key = Worker.redis_worker_namespace_prefix + (job.worker_name or "")
        return bool(job.worker_name) and bool(redis.exists(worker_key))
    return False


periodic("jobruns_sweep", every=15)
