"""Change sets: a plan stored for review, its life cycle (records.lifecycle) and the four-eyes rules every
reviewed thing shares (change sets, policy proposals). Writes: one function per intent, one transaction, the
audit row inside.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from django.db import transaction
from django.utils import timezone

from dnsportal import queue
from dnsportal.audit import audit_record
from dnsportal.errors import PortalError
from records import lifecycle
from records.endpoint import Endpoint as EndpointData
from records.models import Change, ChangeSet, Zone
from records.plan import Plan
from records.services import snapshot


class NotAllowed(PortalError):
    """Refused because of who asks (the requester approving their own change, a missing role)."""


def transition(cs: ChangeSet, target: str, *, actor: Any = None, note: str = "", **fields: Any) -> ChangeSet:
    """Move a (locked) change set to `target`, or raise IllegalTransition; audited with actor and time."""
    return step(
        cs, target, lifecycle.TRANSITIONS, "change set", "changeset", actor=actor, note=note, **fields
    )


def step(
    obj: Any, target: str, transitions: dict, what: str, action: str, *, actor: Any, note: str, **fields: Any
) -> Any:
    """One step of a reviewed thing's life cycle (a change set, a policy proposal) on its locked row: checked
    against `transitions`, saved with `fields`, audited as `<action>.<target>` with the actor and the note."""
    before = obj.status
    lifecycle.check_transition(before, target, transitions, what)
    obj.status = target
    for name, value in fields.items():
        setattr(obj, name, value)
    obj.save(update_fields=["status", *fields])
    after: dict[str, Any] = {"status": target}
    if note:
        after["note"] = note
    audit_record(actor=actor, action=f"{action}.{target}", obj=obj, before={"status": before}, after=after)
    return obj


def four_eyes(
    *,
    noun: str,
    number: int,
    status: str,
    pending: bool,
    author_id: int | None,
    reviewer: Any,
    verb: str,
    authored: str = "requested",
) -> None:
    """The review rules every reviewed thing shares (change sets, policy proposals): the approver role, a
    thing still pending, and a second person (whoever proposed or caused it cannot approve it)."""
    from dnsportal.roles import APPROVE, has_role_perm

    if not has_role_perm(reviewer, APPROVE):
        raise NotAllowed(
            f"{ {'approve': 'Approving', 'reject': 'Rejecting'}[verb] } needs the approver role."
        )
    if not pending:
        raise PortalError(f"{noun.capitalize()} #{number} is already {status.lower()}.")
    if verb == "approve" and author_id is not None and author_id == reviewer.id:
        raise NotAllowed(f"A second person must approve this {noun}: you {authored} it.")


@transaction.atomic(durable=True)
def changeset_approve(
    *, changeset_id: int, approver: Any, comment: str = "", confirm_deletes: bool = False
) -> ChangeSet:
    """A second person approves; the apply is enqueued once, when this transaction commits."""
    cs = ChangeSet.objects.select_for_update().get(id=changeset_id)  # two approvers at once: one waits here
    four_eyes(
        noun="change set",
        number=cs.id,
        status=cs.get_status_display(),
        pending=cs.status == ChangeSet.Status.PENDING,
        author_id=cs.requested_by_id,
        reviewer=approver,
        verb="approve",
    )
    if cs.summary.get("delete") and not confirm_deletes:
        raise PortalError(
            f"Change set #{cs.id} deletes {cs.summary['delete']} record set(s): confirm the deletes."
        )
    transition(
        cs,
        ChangeSet.Status.APPROVED,
        actor=approver,
        note=comment,
        approved_by=approver,
        approved_at=timezone.now(),
        review_comment=comment,
    )
    queue.enqueue("changeset_apply", actor=approver, changeset_id=cs.id)
    return cs


@transaction.atomic(durable=True)
def changeset_reject(*, changeset_id: int, reviewer: Any, comment: str) -> ChangeSet:
    from dnsportal.roles import APPROVE, has_role_perm

    if not has_role_perm(reviewer, APPROVE):
        raise NotAllowed("Rejecting needs the approver role.")
    if not comment.strip():
        raise PortalError("Say why the change set is rejected: the comment goes to the audit log.")
    cs = ChangeSet.objects.select_for_update().get(id=changeset_id)
    four_eyes(
        noun="change set",
        number=cs.id,
        status=cs.get_status_display(),
        pending=cs.status == ChangeSet.Status.PENDING,
        author_id=None,
        reviewer=reviewer,
        verb="reject",
    )
    return transition(
        cs,
        ChangeSet.Status.REJECTED,
        actor=reviewer,
        note=comment,
        review_comment=comment,
        finished_at=timezone.now(),
    )


def diff_signature(groups: Sequence[dict[str, Any]]) -> list[str]:
    """What a reviewer approved, per group: the record, the kind of change, before, after and the actions.
    Equal signatures mean the zone is as it was when the diff was shown; anything else is a new diff."""
    import json

    return sorted(
        json.dumps(
            [g["name"], g["type"], g["set_identifier"], g["kind"], g["before"], g["after"], g["changes"]],
            sort_keys=True,
        )
        for g in groups
    )


def rows_signature(rows: Iterable[Change]) -> list[str]:
    return diff_signature(
        [
            {
                "name": r.name,
                "type": r.type,
                "set_identifier": r.set_identifier,
                "kind": r.kind,
                "before": r.before,
                "after": r.after,
                "changes": r.actions,
            }
            for r in rows
        ]
    )


@transaction.atomic
def changeset_replan(*, changeset_id: int, plan: Plan) -> ChangeSet:
    """Reality moved since approval: replace the change set's diff with the new plan and send it back to
    review (or, when the zone already serves what was wanted, close it as applied by someone else)."""
    cs = ChangeSet.objects.select_for_update().get(id=changeset_id)
    if plan.is_empty and not plan.conflicts:
        note = "the zone already serves what this change set wanted; nothing was sent"
        cs.changes.update(status=Change.Status.APPLIED, error="already in effect")
        return transition(
            cs, ChangeSet.Status.APPLIED, note=note, finished_at=timezone.now(), error=note, lease_until=None
        )
    data = plan.to_dict()
    cs.changes.all().delete()
    _create_changes(cs, data["groups"])
    note = "re-planned: the zone changed since approval; review the new diff"
    return transition(
        cs,
        ChangeSet.Status.PENDING,
        note=note,
        fingerprint=plan.fingerprint(),
        summary=data["summary"],
        needs_approval=plan.needs_approval,
        approval_reasons=list(plan.approval_reasons),
        conflicts=data["conflicts"],
        skipped=data["skipped"],
        notes=data["notes"],
        approved_by=None,
        approved_at=None,
        error=note,
        lease_until=None,
        apply_attempts=0,
        started_at=None,
    )


@transaction.atomic
def changeset_record(
    *,
    zone_id: int,
    plan: Plan,
    desired: Sequence[EndpointData],
    cause: str,
    requested_by: Any = None,
    adopt: Sequence[Sequence[str]] = (),
    scope: Sequence[str] = (),
) -> ChangeSet | None:
    """Store a plan as a pending change set, superseding an older unapproved one.

    `scope`: the names a plan of a few changed names covered (records.plan_scope); `desired` then holds the
    endpoints at those names only.

    A plan equal to the pending one (same fingerprint) creates nothing; an empty plan supersedes the pending
    one (the zone already matches). When the zone auto-applies and nobody needs to approve, it is approved by
    the system and its apply enqueued.
    """
    zone = Zone.objects.select_for_update().get(id=zone_id)
    pending = zone.changesets.filter(status=ChangeSet.Status.PENDING).order_by("-created_at").first()
    fingerprint = plan.fingerprint()
    if plan.is_empty:
        if pending is not None:
            _supersede(pending, None, "the zone already serves what the clusters want")
        return None
    if pending is not None and pending.fingerprint == fingerprint:
        return pending
    user = requested_by if getattr(requested_by, "is_authenticated", False) else None
    data = plan.to_dict()
    cs = ChangeSet.objects.create(
        zone=zone,
        cause=cause,
        requested_by=user,
        fingerprint=fingerprint,
        needs_approval=plan.needs_approval,
        approval_reasons=list(plan.approval_reasons),
        summary=data["summary"],
        conflicts=data["conflicts"],
        skipped=data["skipped"],
        notes=data["notes"],
        desired=snapshot(desired),
        adopt=[list(a) for a in adopt],
        scope=sorted(scope),
    )
    _create_changes(cs, data["groups"])
    if pending is not None:
        _supersede(pending, cs, f"replaced by change set #{cs.id}")
    audit_record(
        actor=user,
        action="changeset.create",
        obj=cs,
        after={
            "zone": zone.name,
            "cause": cause,
            "summary": cs.summary,
            "needs_approval": cs.needs_approval,
            "reasons": cs.approval_reasons,
        },
    )
    from records.proposals import proposal_matching

    if (proposal := proposal_matching(zone, data["groups"])) is not None:
        # Exactly the DNS change the approved policy proposal showed: its approval covers it.
        comment = f"approved with policy proposal #{proposal.id}: exactly the DNS change it showed"
        transition(
            cs,
            ChangeSet.Status.APPROVED,
            actor=proposal.approved_by,
            note=comment,
            approved_by=proposal.approved_by,
            approved_at=timezone.now(),
            review_comment=comment,
        )
        type(proposal).objects.filter(id=proposal.id).update(changeset=cs)
        queue.enqueue("changeset_apply", changeset_id=cs.id)
    elif zone.applies_automatically(needs_approval=plan.needs_approval):
        comment = "approved automatically: the zone applies change sets nobody needs to approve"
        transition(
            cs, ChangeSet.Status.APPROVED, note=comment, approved_at=timezone.now(), review_comment=comment
        )
        queue.enqueue("changeset_apply", changeset_id=cs.id)
    return cs


def _create_changes(cs: ChangeSet, groups: Sequence[dict[str, Any]]) -> None:
    """The change set's Change rows, one per plan group (Plan.to_dict()["groups"]), in apply order."""
    Change.objects.bulk_create(
        [
            Change(
                changeset=cs,
                position=i,
                kind=g["kind"],
                name=g["name"],
                type=g["type"],
                set_identifier=g["set_identifier"],
                reasons=g["reasons"],
                sources=g["sources"],
                before=g["before"],
                after=g["after"],
                actions=g["changes"],
                replace=g["replace"],
                drift=g["drift"],
                needs_approval=g["needs_approval"],
            )
            for i, g in enumerate(groups)
        ],
        batch_size=1000,
    )


def _supersede(cs: ChangeSet, by: ChangeSet | None, why: str) -> None:
    transition(
        cs, ChangeSet.Status.SUPERSEDED, note=why, superseded_by=by, error=why, finished_at=timezone.now()
    )


# --- accounts and zones ---------------------------------------------------------------------------------
