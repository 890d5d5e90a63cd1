"""Failover drills, the writes (services): propose, approve (four eyes, as shifts), reject, cancel; and the
runner's own steps (records.jobs_drill calls them). Every write is one transaction with its audit row; the
pure rules are records.drill.

A drill acts on what DNS serves: the failover pair is read from the zone's stored records of the name (the
primary's and secondary's values, the primary's health check), not from what the clusters ask for, because
that pair is what the nameservers answer and what the drill measures.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from dnsportal import queue
from dnsportal.audit import audit_record
from dnsportal.errors import PortalError
from records import drill
from records.models import FailoverDrill, PolicyProposal, Zone, ZoneRecord

# --- reads ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Failover:
    """A name's failover pair as the zone serves it (empty values: not a failover name there)."""

    rdtype: str = ""
    primary: tuple[str, ...] = ()
    secondary: tuple[str, ...] = ()
    health_check_id: str = ""
    owned: bool = True  # both record sets are the portal's (their ownership record names its owner id)

    @property
    def kind(self) -> str:
        return "failover" if self.primary and self.secondary else ""


def failover_of(zone: Zone, hostname: str) -> Failover:
    """The PRIMARY and SECONDARY record sets of `hostname` among the zone's stored records (A first)."""
    rows = ZoneRecord.objects.filter(zone=zone, name=f"{hostname}.", type__in=["A", "AAAA"]).order_by("type")
    for rdtype in ("A", "AAAA"):
        mine = [r for r in rows if r.type == rdtype and r.data.get("Failover")]
        primary = [r for r in mine if r.data["Failover"] == "PRIMARY"]
        secondary = [r for r in mine if r.data["Failover"] == "SECONDARY"]
        if primary and secondary:
            return Failover(
                rdtype=rdtype,
                primary=tuple(sorted({v for r in primary for v in r.values})),
                secondary=tuple(sorted({v for r in secondary for v in r.values})),
                health_check_id=str(primary[0].data.get("HealthCheckId") or ""),
                owned=all(r.ownership == ZoneRecord.Ownership.OWNED for r in primary + secondary),
            )
    return Failover()


def primary_healthy(health_check_id: str) -> bool | None:
    """The primary's health as the portal last read it (health_checks_status, every minute): None when the
    portal does not watch that check."""
    if not health_check_id:
        return None
    p = (
        PolicyProposal.objects.filter(health_check_id=health_check_id, health_check_checked_at__isnull=False)
        .order_by("-health_check_checked_at")
        .first()
    )
    return p.health_check_healthy if p else None


def active_drill(hostname: str) -> FailoverDrill | None:
    return FailoverDrill.objects.filter(hostname=hostname, status__in=drill.ACTIVE).first()


def refusal_now(zone: Zone, hostname: str, *, exclude: int | None = None) -> tuple[str, Failover]:
    """Why a drill may not start on the name now ("" when it may), and the failover pair it would drill."""
    from records.shifts import active_plan

    target = failover_of(zone, hostname)
    busy = FailoverDrill.objects.filter(hostname=hostname, status__in=drill.ACTIVE)
    if exclude is not None:
        busy = busy.exclude(id=exclude)
    plan = active_plan(hostname)
    first = busy.first()
    why = drill.refusal(
        kind=target.kind,
        owned=target.owned,
        active_shift=plan.id if plan else None,
        primary_healthy=primary_healthy(target.health_check_id),
        busy_drill=first.id if first else None,
    )
    return why, target


# --- the drill's life -------------------------------------------------------------------------------------


def _transition(d: FailoverDrill, target: str, *, actor: Any, note: str = "", **fields: Any) -> FailoverDrill:
    before = d.status
    try:
        drill.check(before, target)
    except drill.IllegalDrill as exc:
        raise PortalError(f"Failover drill #{d.id} is {d.get_status_display().lower()}: {exc}.") from exc
    d.status = target
    for name, value in fields.items():
        setattr(d, name, value)
    if target not in drill.ACTIVE:
        d.finished_at = timezone.now()
        fields["finished_at"] = d.finished_at
    d.save(update_fields=["status", *fields])
    after: dict[str, Any] = {"status": target}
    if note:
        after["note"] = note
    audit_record(actor=actor, action=f"drill.{target}", obj=d, before={"status": before}, after=after)
    return d


def _require(actor: Any, what: str) -> None:
    from dnsportal.roles import OPERATE, has_role_perm
    from records.changesets import NotAllowed

    if not has_role_perm(actor, OPERATE):
        raise NotAllowed(f"{what} needs the operator role.")


@transaction.atomic(durable=True)
def drill_propose(
    *, actor: Any, zone_id: int, hostname: str, fail_url: str = "", restore_url: str = ""
) -> FailoverDrill:
    """Store a drill for review. Route53: the primary's health check (the portal's) is inverted. PowerDNS:
    the operator's fail and restore URLs are POSTed to, or, without them, the demo page server's health
    switch on each primary address (tools/demo_http) is turned off and on."""
    _require(actor, "Proposing a failover drill")
    zone = Zone.objects.select_related("account").get(id=zone_id)
    hostname = hostname.lower().rstrip(".")
    apex = zone.name.rstrip(".")
    if hostname != apex and not hostname.endswith("." + apex):
        raise PortalError(f"{hostname} is not in zone {zone.display_name}.")
    why, target = refusal_now(zone, hostname)
    if why:
        raise PortalError(why)
    fail_url, restore_url = fail_url.strip(), restore_url.strip()
    if zone.account.is_powerdns:
        if fail_url or restore_url:
            problems = [
                p for p in (drill.action_url_problem(fail_url), drill.action_url_problem(restore_url)) if p
            ]
            if problems:
                raise PortalError(" ".join(dict.fromkeys(problems)))
            action = FailoverDrill.Action.URL
        else:
            from records.providers.powerdns_codec import health_check_url

            if not health_check_url(target.health_check_id):
                raise PortalError(
                    "The primary has no HTTP health check URL, so the demo hook has no port to reach: "
                    "give a fail URL and a restore URL."
                )
            action = FailoverDrill.Action.DEMO_HOOK
    else:
        if fail_url or restore_url:
            raise PortalError(
                "A Route53 drill inverts the portal's health check of the primary; it takes no URLs."
            )
        if not target.health_check_id:
            raise PortalError("The primary has no health check to invert: a Route53 drill needs one.")
        action = FailoverDrill.Action.HEALTH_CHECK
    try:
        with transaction.atomic():
            d = FailoverDrill.objects.create(
                zone=zone,
                hostname=hostname,
                action=action,
                rdtype=target.rdtype,
                primary=list(target.primary),
                secondary=list(target.secondary),
                health_check_id=target.health_check_id,
                fail_url=fail_url,
                restore_url=restore_url,
                proposed_by=actor,
            )
    except IntegrityError as exc:  # a second request raced this one past the check above
        raise PortalError(f"Another failover drill was just proposed on {hostname}.") from exc
    audit_record(actor=actor, action="drill.propose", obj=d, after=d.audit_view())
    return d


@transaction.atomic(durable=True)
def drill_approve(*, drill_id: int, approver: Any, comment: str = "") -> FailoverDrill:
    """A second person approves; the drill runs when this transaction commits. Refused if a shift or an
    incident started on the name since it was proposed."""
    from records.changesets import four_eyes

    d = FailoverDrill.objects.select_for_update().select_related("zone").get(id=drill_id)
    four_eyes(
        noun="failover drill",
        number=d.id,
        status=d.get_status_display(),
        pending=d.status == FailoverDrill.Status.PENDING,
        author_id=d.proposed_by_id,
        reviewer=approver,
        verb="approve",
        authored="proposed",
    )
    why, _ = refusal_now(d.zone, d.hostname, exclude=d.id)
    if why:
        raise PortalError(why)
    _transition(
        d,
        drill.APPROVED,
        actor=approver,
        note=comment,
        approved_by=approver,
        approved_at=timezone.now(),
        review_comment=comment,
    )
    queue.enqueue("drill_run", actor=approver, drill_id=d.id)
    return d


@transaction.atomic(durable=True)
def drill_reject(*, drill_id: int, reviewer: Any, comment: str) -> FailoverDrill:
    from records.changesets import four_eyes

    if not comment.strip():
        raise PortalError("Say why the drill is rejected: the comment goes to the audit log.")
    d = FailoverDrill.objects.select_for_update().get(id=drill_id)
    four_eyes(
        noun="failover drill",
        number=d.id,
        status=d.get_status_display(),
        pending=d.status == FailoverDrill.Status.PENDING,
        author_id=None,
        reviewer=reviewer,
        verb="reject",
    )
    return _transition(d, drill.REJECTED, actor=reviewer, note=comment, review_comment=comment)


@transaction.atomic(durable=True)
def drill_cancel(*, drill_id: int, actor: Any, comment: str = "") -> FailoverDrill:
    """Withdraw a drill that has not started (pending or approved, its job not yet running)."""
    _require(actor, "Cancelling a failover drill")
    d = FailoverDrill.objects.select_for_update().get(id=drill_id)
    return _transition(d, drill.CANCELLED, actor=actor, note=comment or "cancelled by an operator")


# --- what the runner does (records.jobs_drill), each one transaction --------------------------------------


def lease() -> Any:
    return timezone.now() + timedelta(seconds=settings.DRILL_STALL_S)


@transaction.atomic
def drill_claim(*, drill_id: int) -> FailoverDrill | None:
    """Approved → failing, once: a second run (a redelivered job, a sweep) finds it taken."""
    d = FailoverDrill.objects.select_for_update().get(id=drill_id)
    if d.status != drill.APPROVED:
        return None
    return _transition(d, drill.FAILING, actor=None, started_at=timezone.now(), lease_until=lease())


@transaction.atomic
def drill_progress(*, drill_id: int, **fields: Any) -> None:
    """Store samples, events or the mark as they happen (no status change, no audit row: the actions that
    change DNS are audited by `drill_marked`), and renew the lease."""
    FailoverDrill.objects.filter(id=drill_id).update(lease_until=lease(), **fields)


@transaction.atomic
def drill_marked(*, drill_id: int, down: bool, detail: str, **fields: Any) -> None:
    """The primary was marked unhealthy (down) or restored: an audit row, as every change to DNS has."""
    d = FailoverDrill.objects.select_for_update().get(id=drill_id)
    for name, value in fields.items():
        setattr(d, name, value)
    d.primary_marked, d.lease_until = down, lease()
    d.save(update_fields=["primary_marked", "lease_until", *fields])
    audit_record(
        actor=None,
        action="drill.primary_down" if down else "drill.primary_restored",
        obj=d,
        before={"primary_marked": not down},
        after={"primary_marked": down, "action": d.action, "detail": detail[:500]},
    )


@transaction.atomic
def drill_to(*, drill_id: int, target: str, note: str = "", **fields: Any) -> FailoverDrill:
    """Move the drill on (checked, audited); a drill already final is left as it is."""
    d = FailoverDrill.objects.select_for_update().get(id=drill_id)
    if target not in drill.TRANSITIONS.get(d.status, ()):
        return d
    return _transition(d, target, actor=None, note=note, lease_until=lease(), **fields)
