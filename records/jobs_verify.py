"""Jobs of verification: ask every authoritative nameserver what it answers (after an apply, hourly, on
"Verify now"), measure how a hostname's answers split against its weights, and probe which cluster serves
its requests over HTTP. Imported by records.jobs."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from dnsportal import metrics
from dnsportal.errors import PortalError
from dnsportal.queue import enqueue, register_job
from dnsportal.scheduler import periodic
from records import verification_services
from records.models import ChangeSet, Zone
from records.providers.base import ProviderError

log = logging.getLogger(__name__)


def _verification_not_possible(v, zone: Zone, exc: Exception) -> bool:
    """Record on the verification row why it could not run. True for a configuration to change (the row says
    which, and the job ends); False for a failure the job should raise, so it is retried."""
    from records.models import Verification

    message = getattr(exc, "user_message", None) or str(exc)
    Verification.objects.filter(id=v.id).update(
        status=Verification.Status.ERROR, message=message, finished_at=timezone.now()
    )
    metrics.verification_finished(v.kind, Verification.Status.ERROR)
    if isinstance(exc, ValueError | PortalError):
        log.warning("verification of %s not possible: %s", zone, message)
        return True
    return False


@register_job(queue="verify")
def zone_verify(*, zone_id: int, changeset_id: int | None = None) -> None:
    """Ask every authoritative nameserver for every record set the portal owns: values, TTL, agreement.

    After an apply (the provider reported the change in sync) it waits for the nameservers to agree and
    measures the propagation time; a failure marks the zone and the change set and calls the zone's webhook.
    """
    from records.models import Verification
    from records.verify import check_resolution, wait_consistent

    zone = Zone.objects.select_related("account").get(id=zone_id)
    v = Verification.objects.create(zone=zone, changeset_id=changeset_id, kind=Verification.Kind.RESOLUTION)
    try:
        nameservers = verification_services.zone_nameservers(zone)
        expected = verification_services.expected_rrsets(zone)
        last: list = []
        propagation = None
        if changeset_id is not None:
            propagation = wait_consistent(
                nameservers,
                expected,
                timeout=settings.VERIFY_PROPAGATION_TIMEOUT_S,
                interval=1,
                on_report=last.append,
            )
        report = last[-1] if last else check_resolution(nameservers, expected)
    except (ProviderError, PortalError, ValueError, OSError) as exc:
        if _verification_not_possible(v, zone, exc):
            return
        raise
    status = Verification.Status.OK if report.ok else Verification.Status.FAILED
    data = report.to_dict()
    message = (
        f"{len(expected)} record set(s) answered as planned by {len(nameservers)} nameserver(s)"
        if report.ok
        else report.summary()
    )
    Verification.objects.filter(id=v.id).update(
        status=status,
        finished_at=timezone.now(),
        nameservers=[str(ns) for ns in nameservers],
        message=message,
        differences=data.get("differences", []),
        report=data,
        propagation_seconds=propagation,
    )
    Zone.objects.filter(id=zone.id).update(last_verified_at=timezone.now(), last_verification_ok=report.ok)
    metrics.verification_finished(Verification.Kind.RESOLUTION, status)
    if changeset_id is not None:
        ChangeSet.objects.filter(id=changeset_id).update(verification_status=status)
    if not report.ok:
        log.warning("zone %s: verification failed: %s", zone, message)
        if zone.webhook_url:
            enqueue("verification_webhook", verification_id=v.id)


@register_job(queue="default")
def verification_webhook(*, verification_id: int) -> None:
    import requests

    from records.models import Verification

    v = Verification.objects.select_related("zone").get(id=verification_id)
    payload = {
        "event": "verification.failed",
        "zone": v.zone.display_name,
        "verification": v.id,
        "changeset": v.changeset_id,
        "message": v.message,
        "differences": v.differences,
    }
    response = requests.post(v.zone.webhook_url, json=payload, timeout=5)
    if response.status_code >= 300:
        raise RuntimeError(f"the webhook of {v.zone} answered {response.status_code}")


@register_job(queue="verify")
def zones_verify_all() -> None:
    """The scheduled resolution check: each zone whose verify interval is up."""
    now = timezone.now()
    for zone in Zone.objects.filter(enabled=True):
        if (
            zone.last_verified_at is None
            or zone.last_verified_at + timedelta(seconds=zone.verify_interval) <= now
        ):
            enqueue("zone_verify", zone_id=zone.id)


periodic("zones_verify_all", every=300)


@register_job(queue="verify")
def hostname_distribution(*, verification_id: int) -> None:
    """Measure how the nameservers split a hostname's answers, against the weights (or round robin)."""
    from records.models import Verification
    from records.verify import distribution_verdict, measure_distribution, sample_size

    v = Verification.objects.select_related("zone__account").get(id=verification_id)
    zone, hostname = v.zone, v.hostname
    try:
        sets, intended, key = verification_services.intended_split(zone, hostname)
        nameservers = verification_services.zone_nameservers(zone)
        n = sample_size(intended, cap=settings.VERIFY_MAX_QUERIES)
        counts = measure_distribution(nameservers, hostname, "A", n, key=key)
        observed = counts.by_set(sets)
        verdict = distribution_verdict(observed, intended)
    except (ProviderError, PortalError, ValueError, OSError) as exc:
        if _verification_not_possible(v, zone, exc):
            return
        raise
    status = Verification.Status.OK if verdict.ok else Verification.Status.FAILED
    Verification.objects.filter(id=v.id).update(
        status=status,
        finished_at=timezone.now(),
        nameservers=[str(ns) for ns in nameservers],
        message=verdict.message,
        report={"verdict": verdict.to_dict(), "counts": counts.to_dict(), "key": key, "queries": n},
    )
    metrics.verification_finished(Verification.Kind.DISTRIBUTION, status)
    if verdict.p_value is not None:
        metrics.SPLIT_P_VALUE.labels(zone.display_name).observe(verdict.p_value)


@register_job(queue="verify")
def hostname_probe(*, verification_id: int) -> None:
    """Probe a hostname over HTTP as clients resolve it: which cluster served each request, against the
    intended split per cluster; failed requests are counted and fail the probe."""
    from records.models import Verification
    from records.probe import UNMATCHED, UNMATCHED_LABEL, probe_observed, probe_outcome, probe_resolving
    from records.verify import distribution_verdict

    v = Verification.objects.select_related("zone__account").get(id=verification_id)
    zone, hostname, request = v.zone, v.hostname, v.report["request"]
    try:
        intended, markers = verification_services.probe_plan(zone, hostname)
        nameservers = verification_services.zone_nameservers(zone)
        counts = probe_resolving(
            nameservers,
            hostname,
            request["path"],
            markers=markers,
            n=request["n"],
            port=request["port"],
        )
        verdict = distribution_verdict(
            probe_observed(counts, intended), intended, labels={UNMATCHED: UNMATCHED_LABEL}
        )
    except (ProviderError, PortalError, ValueError, OSError) as exc:
        if _verification_not_possible(v, zone, exc):
            return
        raise
    ok, message = probe_outcome(verdict, counts)
    log.info("probe of %s: %s", hostname, message)
    metrics.verification_finished(
        Verification.Kind.PROBE, Verification.Status.OK if ok else Verification.Status.FAILED
    )
    Verification.objects.filter(id=v.id).update(
        status=Verification.Status.OK if ok else Verification.Status.FAILED,
        finished_at=timezone.now(),
        nameservers=[str(ns) for ns in nameservers],
        message=message,
        report={"request": request, "verdict": verdict.to_dict(), "probe": counts.to_dict()},
    )
