"""Traffic-policy proposals: the editor's preview, and the writes of a proposal's life (services).

A person states a policy for a name in the editor; `preview` checks it (records.traffic, Route53's rules),
shows the annotation diff per object and the predicted DNS change (the plan engine on the proposed endpoints
against the zone's stored state), all from the database: no cluster or provider is asked in a web request.
`policy_propose` stores it for review; a second person approves it (the same four-eyes rules as change sets);
the `policy_write_back` job (clusters.jobs) then writes the annotations and reports per object here. While it
is written, the plan holds the name as it is in DNS (`held_names`); once every object is written, one
reconcile publishes the new policy, and the change set it makes is approved with the proposal when it is
exactly the change the proposal showed (`proposal_matching`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from clusters.annotations import ALPHA_PREFIX
from dnsportal import queue
from dnsportal.audit import audit_record
from dnsportal.errors import PortalError
from records import lifecycle
from records.models import ChangeSet, Endpoint, PolicyObjectWrite, PolicyProposal, Zone
from records.plan import Plan, compute_plan
from records.providers.base import PENDING_HEALTH_CHECK_ID
from records.traffic import (
    FieldError,
    ObjectPatch,
    ObjectState,
    TrafficPolicy,
    annotation_patches,
    endpoints_under_patches,
    health_check_for,
    leave_out_problem,
    policy_from_endpoints,
    validate,
)

# Stands for the id of the health check the write-back creates, in previews and predicted changes.
HEALTH_CHECK_PLACEHOLDER = PENDING_HEALTH_CHECK_ID
# The cluster check names these when the identity may not patch (clusters.checks.permission_name).
PATCH_PERMISSIONS = {"Service": "patch services", "Ingress": "patch ingresses.networking.k8s.io"}


@dataclass
class Preview:
    """What the editor shows before saving. `ok`: no error; the proposal can be saved."""

    policy: TrafficPolicy
    errors: list[FieldError] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    patches: list[ObjectPatch] = field(default_factory=list)
    gitops: dict[tuple[str, str], dict] = field(default_factory=dict)  # (cluster, resource) -> tool, evidence
    read_only: dict[str, str] = field(default_factory=dict)  # cluster -> why it cannot be written
    plan: Plan | None = None

    @property
    def ok(self) -> bool:
        return not self.errors

    def errors_for(self, name: str) -> list[str]:
        return [e.message for e in self.errors if e.field == name]


# --- reads ------------------------------------------------------------------------------------------------


def hostname_endpoints(hostname: str) -> list[Endpoint]:
    return list(
        Endpoint.objects.filter(dns_name=hostname, cluster__enabled=True).select_related("cluster", "source")
    )


def policy_now(hostname: str, endpoints: Sequence[Endpoint] | None = None) -> TrafficPolicy:
    """The policy the clusters ask for now (the editor's starting point); `endpoints`: the name's endpoints of
    enabled clusters, when the caller has read them already."""
    if endpoints is None:
        endpoints = hostname_endpoints(hostname)
    return policy_from_endpoints(hostname, [e.as_data(e.cluster.name) for e in endpoints])


def hostname_objects(hostname: str) -> list[tuple[ObjectState, Any]]:
    """Every Service or Ingress publishing `hostname`, as discovery last saw it, with its DiscoveredObject."""
    eps = hostname_endpoints(hostname)
    sources = {e.source_id: e.source for e in eps}
    names: dict[int, set[str]] = {}
    for source_id, dns_name in Endpoint.objects.filter(source_id__in=sources).values_list(
        "source_id", "dns_name"
    ):
        names.setdefault(source_id, set()).add(dns_name)
    out = []
    for source_id, obj in sorted(sources.items(), key=lambda kv: str(kv[1])):
        cluster = next(e.cluster for e in eps if e.source_id == source_id)
        out.append(
            (
                ObjectState(
                    cluster=cluster.name,
                    kind=obj.kind,
                    namespace=obj.namespace,
                    name=obj.name,
                    annotations=dict(getattr(obj, "annotations", None) or {}),
                    resource_version=obj.resource_version,
                    hostnames=tuple(sorted(names.get(source_id, ()))),
                    default_prefix=obj.annotation_prefix or cluster.write_back_prefix or ALPHA_PREFIX,
                ),
                obj,
            )
        )
    return out


def held_names(zone: Zone) -> dict[str, str]:
    """Names the plan must hold as they are in DNS: their proposal is being written to the clusters."""
    rows = PolicyProposal.objects.filter(zone=zone, status__in=lifecycle.PROPOSAL_HOLDS).values_list(
        "id", "hostname", "status"
    )
    return {
        f"{hostname}.": f"policy proposal #{pid} is {PolicyProposal.Status(status).label.lower()}; "
        "the name stays as it is in DNS until every object is written"
        for pid, hostname, status in rows
    }


def open_proposals_by_name(names: Sequence[str]) -> dict[str, int]:
    """hostname -> the id of its open proposal (pending review, or being written)."""
    rows = PolicyProposal.objects.filter(hostname__in=list(names), status__in=lifecycle.PROPOSAL_OPEN)
    return dict(rows.order_by("created_at").values_list("hostname", "id"))


def preview(
    *, zone: Zone, hostname: str, policy: TrafficPolicy, health_check: Mapping[str, Any] | None = None
) -> Preview:
    """Check a policy and show what it changes: annotations per object and the predicted DNS change."""
    from records import services

    objects = hostname_objects(hostname)
    serving = sorted({state.cluster for state, _ in objects})
    refused = {}
    for state, _ in objects:
        share = policy.share(state.cluster)
        if share is not None and not share.enabled and (why := leave_out_problem(hostname, state)):
            refused[state.cluster] = why
    errors, warnings = validate(
        policy,
        zone=zone.name,
        serving=serving,
        has_health_check=bool(health_check),
        leave_out_refused=refused,
    )
    if health_check and health_check_for(policy):
        errors += [
            FieldError("health_check", p) for p in health_check_problems(health_check, account=zone.account)
        ]
    out = Preview(policy=policy, errors=errors, warnings=warnings)
    for state, obj in objects:
        info = getattr(obj, "gitops", None) or {}
        if info:
            out.gitops[(state.cluster, state.resource)] = info
    for state, obj in objects:
        missing = PATCH_PERMISSIONS[state.kind]
        if missing in (obj.cluster.missing_permissions or []):
            out.read_only[state.cluster] = (
                f"The portal's identity in {state.cluster} may not {missing}: export the change as YAML."
            )
    if errors:
        return out
    hc = {health_check_for(policy): HEALTH_CHECK_PLACEHOLDER} if health_check_for(policy) else {}
    out.patches = annotation_patches(policy, [s for s, _ in objects], health_check_ids=hc)
    names = {f"{hostname}."} | {f"{n}." for p in out.patches for n in p.also_affects}
    desired = endpoints_under_patches(services.desired_for_zone(zone), out.patches)
    plan = compute_plan(
        desired,
        services.zone_stored_recordsets(zone),
        services.zone_config(zone),
        previous=services.from_snapshot(zone.applied_desired) or None,
    )
    # The proposal's own change: other names' pending changes are not part of what is approved here.
    out.plan = replace(plan, groups=tuple(g for g in plan.groups if g.key.name in names))
    # What the zone's provider cannot answer is refused here, in its words, rather than proposed and left
    # waiting as a conflict (PowerDNS has no latency routing, for one).
    refusals = [
        c.message.split(": ", 1)[-1] for c in plan.conflicts if c.kind == "provider" and c.name in names
    ]
    out.errors += [FieldError("kind", m) for m in dict.fromkeys(refusals)]
    return out


def health_check_problems(spec: Mapping[str, Any], *, account: Any = None) -> list[str]:
    """The health check form's problems, as sentences: the rules of the zone's provider (`account`'s;
    without one, Route53's, records.providers.base.HealthCheckSpec)."""
    from records.providers.base import HealthCheckSpec
    from records.services import provider_class  # records.services imports this module's callers

    try:
        check = HealthCheckSpec(**spec)
    except TypeError as exc:
        return [f"The health check is incomplete ({exc})."]
    problems = (
        provider_class(account).health_check_problems(check) if account is not None else check.validate()
    )
    return [getattr(p, "message", str(p)) for p in problems]


# --- writes -----------------------------------------------------------------------------------------------


@transaction.atomic(durable=True)
def policy_propose(
    *,
    actor: Any,
    zone_id: int,
    hostname: str,
    policy: TrafficPolicy,
    health_check: Mapping[str, Any] | None = None,
) -> PolicyProposal:
    """Store a checked policy for review; an older open proposal for the name still in review is replaced."""
    from dnsportal.roles import OPERATE, has_role_perm
    from records.changesets import NotAllowed

    if not has_role_perm(actor, OPERATE):
        raise NotAllowed("Proposing a traffic policy needs the operator role.")
    zone = Zone.objects.get(id=zone_id)
    apex = zone.name.rstrip(".")
    if hostname != apex and not hostname.endswith("." + apex):
        raise PortalError(
            f"{hostname} is not in zone {zone.display_name}: propose it in the zone that holds it."
        )
    shown = preview(zone=zone, hostname=hostname, policy=policy, health_check=health_check)
    if not shown.ok:
        raise PortalError("; ".join(e.message for e in shown.errors))
    if not any(not p.empty for p in shown.patches):
        raise PortalError(f"The clusters already ask for this policy for {hostname}: nothing to propose.")
    busy = PolicyProposal.objects.select_for_update().filter(
        hostname=hostname, status__in=lifecycle.PROPOSAL_HOLDS
    )
    if busy.exists():
        raise PortalError(
            f"Policy proposal #{busy.first().id} for {hostname} is being written to the clusters; "
            "wait for it, or give it up, before proposing another."
        )
    from records.models import ShiftPlan
    from records.shift import ACTIVE

    if shifting := ShiftPlan.objects.filter(hostname=hostname, status__in=ACTIVE).first():
        raise PortalError(
            f"Traffic shift #{shifting.id} is {shifting.get_status_display().lower()} on {hostname}: "
            "its steps decide the policy until it ends (abort it to change the policy now)."
        )
    proposal = proposal_create(
        zone=zone, hostname=hostname, policy=policy, shown=shown, actor=actor, health_check=health_check
    )
    for older in (
        PolicyProposal.objects.select_for_update()
        .filter(hostname=hostname, status=PolicyProposal.Status.PENDING)
        .exclude(id=proposal.id)
    ):
        transition(
            older,
            PolicyProposal.Status.SUPERSEDED,
            actor=actor,
            note=f"replaced by #{proposal.id}",
            superseded_by=proposal,
            finished_at=timezone.now(),
        )
    audit_record(actor=actor, action="policy.propose", obj=proposal, after=proposal.audit_view())
    return proposal


def proposal_create(
    *,
    zone: Zone,
    hostname: str,
    policy: TrafficPolicy,
    shown: Preview,
    actor: Any,
    health_check: Mapping[str, Any] | None = None,
) -> PolicyProposal:
    """The proposal row and one write per object, from a checked preview (inside the caller's transaction:
    `policy_propose`, or a traffic shift's step)."""
    groups = shown.plan.to_dict()["groups"] if shown.plan else []
    proposal = PolicyProposal.objects.create(
        zone=zone,
        hostname=hostname,
        policy=policy.to_dict(),
        before=policy_now(hostname).to_dict(),
        summary=policy.describe()[:500],
        health_check=dict(health_check) if health_check and health_check_for(policy) else None,
        predicted={"groups": groups, "signature": _signature(groups)},
        warnings=shown.warnings,
        proposed_by=actor,
    )
    discovered = {(s.cluster, s.resource): obj for s, obj in hostname_objects(hostname)}
    PolicyObjectWrite.objects.bulk_create(
        [
            PolicyObjectWrite(
                proposal=proposal,
                cluster=discovered[(p.obj.cluster, p.obj.resource)].cluster,
                kind=p.obj.kind,
                namespace=p.obj.namespace,
                name=p.obj.name,
                resource_version=p.obj.resource_version,
                before=p.before,
                after=p.after,
                changes=p.changes,
                also_affects=list(p.also_affects),
                gitops=shown.gitops.get((p.obj.cluster, p.obj.resource), {}),
                status=PolicyObjectWrite.Status.UNCHANGED if p.empty else PolicyObjectWrite.Status.PENDING,
            )
            for p in shown.patches
        ]
    )
    return proposal


def _signature(groups: Sequence[dict[str, Any]], health_check_id: str = "") -> list[str]:
    from records.changesets import diff_signature

    sig = diff_signature(groups)
    return [s.replace(health_check_id, HEALTH_CHECK_PLACEHOLDER) for s in sig] if health_check_id else sig


def transition(p: PolicyProposal, target: str, *, actor: Any = None, note: str = "", **fields: Any) -> None:
    """Move a (locked) proposal along its life cycle, or raise IllegalTransition; audited."""
    from records.changesets import step

    step(
        p,
        target,
        lifecycle.PROPOSAL_TRANSITIONS,
        "policy proposal",
        "policy",
        actor=actor,
        note=note,
        **fields,
    )


@transaction.atomic(durable=True)
def policy_approve(*, proposal_id: int, approver: Any, comment: str = "") -> PolicyProposal:
    """A second person approves; the write-back is enqueued when this transaction commits."""
    from records.changesets import four_eyes

    p = PolicyProposal.objects.select_for_update().get(id=proposal_id)
    four_eyes(
        noun="policy proposal",
        number=p.id,
        status=p.get_status_display(),
        pending=p.status == PolicyProposal.Status.PENDING,
        author_id=p.proposed_by_id,
        reviewer=approver,
        verb="approve",
        authored="proposed",
    )
    transition(
        p,
        PolicyProposal.Status.APPROVED,
        actor=approver,
        note=comment,
        approved_by=approver,
        approved_at=timezone.now(),
        review_comment=comment,
    )
    queue.enqueue("policy_write_back", actor=approver, proposal_id=p.id)
    return p


@transaction.atomic(durable=True)
def policy_reject(*, proposal_id: int, reviewer: Any, comment: str) -> PolicyProposal:
    from records.changesets import four_eyes

    if not comment.strip():
        raise PortalError("Say why the proposal is rejected: the comment goes to the audit log.")
    p = PolicyProposal.objects.select_for_update().get(id=proposal_id)
    four_eyes(
        noun="policy proposal",
        number=p.id,
        status=p.get_status_display(),
        pending=p.status == PolicyProposal.Status.PENDING,
        author_id=None,
        reviewer=reviewer,
        verb="reject",
    )
    transition(
        p,
        PolicyProposal.Status.REJECTED,
        actor=reviewer,
        note=comment,
        review_comment=comment,
        finished_at=timezone.now(),
    )
    return p


@transaction.atomic(durable=True)
def policy_retry(*, proposal_id: int, actor: Any) -> PolicyProposal:
    """Write again, now, what is not written yet (unreachable clusters); conflicts stay for a person."""
    from dnsportal.roles import OPERATE, has_role_perm
    from records.changesets import NotAllowed

    if not has_role_perm(actor, OPERATE):
        raise NotAllowed("Retrying a write-back needs the operator role.")
    p = PolicyProposal.objects.select_for_update().get(id=proposal_id)
    if p.status != PolicyProposal.Status.PARTIALLY_WRITTEN:
        raise PortalError(f"Policy proposal #{p.id} is {p.get_status_display().lower()}: nothing to retry.")
    audit_record(actor=actor, action="policy.retry", obj=p)
    # The job claims the proposal (partially written -> writing): a pass already running is never doubled.
    queue.enqueue("policy_write_back", actor=actor, proposal_id=p.id)
    return p


@transaction.atomic(durable=True)
def policy_abandon(*, proposal_id: int, actor: Any, comment: str) -> PolicyProposal:
    """Give up a partially written proposal: the hold ends and DNS follows what the clusters say then."""
    from dnsportal.roles import OPERATE, has_role_perm
    from records.changesets import NotAllowed

    if not has_role_perm(actor, OPERATE):
        raise NotAllowed("Giving up a write-back needs the operator role.")
    p = PolicyProposal.objects.select_for_update().get(id=proposal_id)
    if p.status != PolicyProposal.Status.PARTIALLY_WRITTEN:
        raise PortalError(
            f"Policy proposal #{p.id} is {p.get_status_display().lower()}: it cannot be given up."
        )
    transition(
        p,
        PolicyProposal.Status.ABANDONED,
        actor=actor,
        note=comment or "given up",
        finished_at=timezone.now(),
    )
    queue.enqueue("zone_reconcile", zone_id=p.zone_id, cause=ChangeSet.Cause.DISCOVERY)
    return p


# --- what the write-back job reports ------------------------------------------------------------------------


@transaction.atomic
def write_recorded(
    *,
    write_id: int,
    status: str,
    message: str = "",
    changed_by: str = "",
    resource_version_after: str = "",
    actor: Any = None,
) -> PolicyObjectWrite:
    """One object's write-back outcome; a written patch is audited with its annotations before and after."""
    w = PolicyObjectWrite.objects.select_for_update().select_related("cluster").get(id=write_id)
    w.status, w.message, w.changed_by = status, message, changed_by
    w.attempts += 1
    fields = ["status", "message", "changed_by", "attempts"]
    if status == PolicyObjectWrite.Status.WRITTEN:
        w.written_at, w.resource_version_after = timezone.now(), resource_version_after
        fields += ["written_at", "resource_version_after"]
        audit_record(
            actor=actor,
            action="cluster.annotations.write",
            object_type="clusters.object",
            object_id=f"{w.cluster.name}/{w.kind}/{w.namespace}/{w.name}",
            object_repr=f"{w.kind} {w.namespace}/{w.name} in {w.cluster.name} (proposal #{w.proposal_id})",
            before=w.before,
            after=w.after,
        )
    w.save(update_fields=fields)
    return w


@transaction.atomic
def write_back_finished(*, proposal_id: int, actor: Any = None) -> PolicyProposal:
    """After a write-back pass: written (reconcile now), or partially written (the hold stays)."""
    p = PolicyProposal.objects.select_for_update().get(id=proposal_id)
    writes = list(p.writes.all())
    missing = [w for w in writes if not w.done]
    if not missing:
        transition(
            p,
            PolicyProposal.Status.WRITTEN,
            actor=actor,
            finished_at=timezone.now(),
            message=f"{len(writes)} object(s) carry the policy",
        )
        queue.enqueue("zone_reconcile", zone_id=p.zone_id, cause=ChangeSet.Cause.DISCOVERY)
    else:
        why = "; ".join(
            f"{w.kind} {w.namespace}/{w.name} in {w.cluster.name}: {w.get_status_display().lower()}"
            + (f" ({w.message})" if w.message else "")
            for w in missing
        )
        transition(p, PolicyProposal.Status.PARTIALLY_WRITTEN, actor=actor, message=why[:2000])
    return p


@transaction.atomic
def health_check_recorded(*, proposal_id: int, health_check_id: str) -> None:
    """The health check the write-back created: the primary's annotations name it from now on."""
    p = PolicyProposal.objects.select_for_update().get(id=proposal_id)
    p.health_check_id = health_check_id
    p.save(update_fields=["health_check_id"])
    for w in p.writes.select_for_update():
        changes = {k: health_check_id if v == HEALTH_CHECK_PLACEHOLDER else v for k, v in w.changes.items()}
        after = {k: health_check_id if v == HEALTH_CHECK_PLACEHOLDER else v for k, v in w.after.items()}
        if changes != w.changes or after != w.after:
            w.changes, w.after = changes, after
            w.save(update_fields=["changes", "after"])
    audit_record(actor=None, action="policy.health_check", obj=p, after={"health_check_id": health_check_id})


def proposal_matching(zone: Zone, groups: Sequence[dict[str, Any]]) -> PolicyProposal | None:
    """The written proposal whose predicted DNS change is exactly this plan's, not yet followed by a change
    set: its approval covers the change set (no second review of the same change)."""
    candidates = PolicyProposal.objects.filter(
        zone=zone, status=PolicyProposal.Status.WRITTEN, changeset__isnull=True
    ).filter(Q(finished_at__isnull=True) | Q(finished_at__gte=timezone.now() - timedelta(hours=1)))
    for p in candidates.order_by("-finished_at"):
        if _signature(groups, p.health_check_id) == p.predicted.get("signature"):
            return p
    return None


def reverts_seen(cluster_id: int, results: Sequence[Any]) -> int:
    """Written annotations the cluster no longer carries (a GitOps sync put its own back, or a person did):
    each such write is marked reverted with the field manager that did it, and its proposal says so.

    `results` are discovery's ObjectResults of the cluster just stored. Only the latest written proposal of a
    name counts (a newer one changes the same keys on purpose); returns how many writes were reverted.
    """
    writes = PolicyObjectWrite.objects.filter(
        cluster_id=cluster_id,
        status=PolicyObjectWrite.Status.WRITTEN,
        proposal__status=PolicyProposal.Status.WRITTEN,
        written_at__gte=timezone.now() - timedelta(days=1),
    )
    if not writes.exists():  # the common case: one cheap query per discovery write
        return 0
    by_key = {(r.kind, r.namespace, r.name): r for r in results}
    reverted = 0
    for w in writes.select_related("proposal", "cluster"):
        r = by_key.get((w.kind, w.namespace, w.name))
        if r is None or _superseded(w.proposal):
            continue
        now, owners = dict(r.annotations), dict(getattr(r, "annotation_owners", ()))
        undone = [k for k, v in w.changes.items() if now.get(k) != v]
        if not undone:
            continue
        key = undone[0]
        gitops = getattr(r, "gitops", None)
        who = owners.get(key) or (f"{gitops.tool} ({', '.join(gitops.managers)})" if gitops else "")
        written = w.changes[key]
        message = (
            f"`{key}` is {now[key]!r} again, not {written!r} as written"
            if key in now
            else f"`{key}` was removed again after the write-back set it to {written!r}"
        ) + (f", by {who}" if who else "")
        with transaction.atomic():
            PolicyObjectWrite.objects.filter(id=w.id).update(
                status=PolicyObjectWrite.Status.REVERTED, message=message, changed_by=who
            )
            note = f"{w.kind} {w.namespace}/{w.name} in {w.cluster.name}: {message}"
            PolicyProposal.objects.filter(id=w.proposal_id).update(message=f"Reverted: {note}"[:2000])
            audit_record(actor=None, action="policy.reverted", obj=w.proposal, after={"object": note})
        reverted += 1
    return reverted


def _superseded(p: PolicyProposal) -> bool:
    later = lifecycle.PROPOSAL_HOLDS | {lifecycle.WRITTEN}
    return PolicyProposal.objects.filter(
        hostname=p.hostname, created_at__gt=p.created_at, status__in=later
    ).exists()


def predicted_groups(proposal: PolicyProposal) -> list[dict[str, Any]]:
    return list(proposal.predicted.get("groups", []))
