"""The write-back job: an approved traffic-policy proposal's annotations, written to each cluster's objects.

One pass writes every object not written yet, each with the resourceVersion the reviewer saw (a concurrent
edit is a conflict for a person, never overwritten). A cluster that does not answer is retried by later
passes, the proposal "partially written" meanwhile, and the name held as it is in DNS. A failover primary
first gets the Route53 health check the portal creates and owns (idempotent per proposal and cluster).
Imported by clusters.jobs, so the worker registers it.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from clusters import services as cluster_services
from clusters.kubeconfig import KubeconfigError
from clusters.writeback import INVALID, UNREACHABLE, WriteResult, write_annotations
from dnsportal.queue import enqueue, register_job
from dnsportal.scheduler import periodic
from records import proposals
from records.models import PolicyObjectWrite, PolicyProposal

log = logging.getLogger(__name__)

# Seconds before each retry of the objects a cluster did not take (unreachable): about an hour in all.
RETRY_DELAYS_S = (5, 15, 30, 60, 120, 300, 600, 900, 1200)


def _stale(p: PolicyProposal) -> bool:
    """A pass claimed longer ago than the lease: its worker died (a pass takes seconds per cluster)."""
    lease = timedelta(seconds=settings.WRITEBACK_LEASE_S)
    return p.status == PolicyProposal.Status.WRITING and (
        p.writing_since is None or p.writing_since < timezone.now() - lease
    )


@register_job(queue="discovery")
def policy_write_back(*, proposal_id: int, attempt: int = 0) -> None:
    with transaction.atomic():
        p = PolicyProposal.objects.select_for_update().get(id=proposal_id)
        if _stale(p):
            # Its objects already written are recorded; one written but not recorded is recognised by the
            # next pass (the portal wrote it last, with these values) and not written twice.
            proposals.transition(
                p,
                PolicyProposal.Status.PARTIALLY_WRITTEN,
                note=f"the write-back pass claimed at {p.writing_since} stopped with its worker",
            )
        # The claim: one pass at a time (a retry now and a scheduled one never write the same object twice).
        if p.status not in (PolicyProposal.Status.APPROVED, PolicyProposal.Status.PARTIALLY_WRITTEN):
            log.info("policy proposal %s is %s; nothing to write", proposal_id, p.status)
            return
        proposals.transition(
            p,
            PolicyProposal.Status.WRITING,
            note=f"write-back pass {attempt + 1}",
            writing_since=timezone.now(),
        )
    if p.health_check and not p.health_check_id:
        _create_health_check(p)
    pending = PolicyObjectWrite.objects.filter(proposal_id=p.id).exclude(
        status__in=[
            PolicyObjectWrite.Status.WRITTEN,
            PolicyObjectWrite.Status.UNCHANGED,
            PolicyObjectWrite.Status.CONFLICT,
            PolicyObjectWrite.Status.GONE,
            PolicyObjectWrite.Status.FORBIDDEN,
            PolicyObjectWrite.Status.INVALID,
        ]
    )
    by_cluster: dict[int, list[PolicyObjectWrite]] = {}
    for w in pending.select_related("cluster"):
        by_cluster.setdefault(w.cluster_id, []).append(w)
    for writes in by_cluster.values():
        _write_cluster(writes)
    p = proposals.write_back_finished(proposal_id=p.id)
    if p.status == PolicyProposal.Status.PARTIALLY_WRITTEN:
        unreachable = p.writes.filter(status=PolicyObjectWrite.Status.UNREACHABLE).exists()
        if unreachable and attempt < len(RETRY_DELAYS_S):
            enqueue("policy_write_back", proposal_id=p.id, attempt=attempt + 1, delay=RETRY_DELAYS_S[attempt])
    log.info("policy proposal %s: %s", p.id, p.message or p.status)


def _write_cluster(writes: list[PolicyObjectWrite]) -> None:
    cluster = writes[0].cluster
    try:
        cc = cluster_services.client_for(cluster)
    except KubeconfigError as exc:
        for w in writes:
            proposals.write_recorded(write_id=w.id, status=UNREACHABLE, message=f"stored kubeconfig: {exc}")
        return
    with cc:
        for w in writes:
            try:
                result = write_annotations(
                    cc,
                    kind=w.kind,
                    namespace=w.namespace,
                    name=w.name,
                    resource_version=w.resource_version,
                    changes=w.changes,
                )
            except ValueError as exc:  # a write that could never be right: this object, not the whole pass
                result = WriteResult(status=INVALID, message=str(exc))
            proposals.write_recorded(
                write_id=w.id,
                status=result.status,
                message=result.message,
                changed_by=result.changed_by,
                resource_version_after=result.resource_version_after,
            )


def _create_health_check(p: PolicyProposal) -> None:
    """The failover primary's health check, created (or found again) before its record set names it."""
    from records.providers.base import HealthCheckSpec
    from records.services import provider_for
    from records.traffic import TrafficPolicy, health_check_for

    primary = health_check_for(TrafficPolicy.from_dict(p.policy))
    info = provider_for(p.zone.account).health_check_create(
        HealthCheckSpec(**p.health_check),
        owner_id=p.zone.owner_id,
        reference=f"policy-{p.id}-{primary}",
        name=f"{p.hostname} {primary}",
    )
    proposals.health_check_recorded(proposal_id=p.id, health_check_id=info.id)


@register_job(queue="discovery")
def writebacks_resume() -> None:
    """Claim again each write-back pass whose worker died (claimed longer ago than the lease)."""
    lease = timedelta(seconds=settings.WRITEBACK_LEASE_S)
    stale = PolicyProposal.objects.filter(status=PolicyProposal.Status.WRITING).filter(
        Q(writing_since__isnull=True) | Q(writing_since__lt=timezone.now() - lease)
    )
    for proposal_id in stale.values_list("id", flat=True):
        log.info("policy proposal %s: its write-back pass stopped with its worker; resuming", proposal_id)
        enqueue("policy_write_back", proposal_id=proposal_id)


periodic("writebacks_resume", every=60)
