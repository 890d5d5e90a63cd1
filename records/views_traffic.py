"""The traffic-policy pages: the editor (with its live preview), the Kustomize patch download, proposals.

The editor is an ordinary form: htmx posts it to the preview while a person types and swaps the preview,
the percentages and the errors next to each field; without JavaScript the Preview button posts the same form
and gets the whole page. Proposing, approving, rejecting, retrying and giving up call one service each.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.contrib import messages
from django.core import signing
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from clusters.gitops import kustomize_patch, patch_file_name
from dnsportal.errors import PortalError
from dnsportal.roles import APPROVE, OPERATE, VIEW, has_role_perm, role_required
from records import proposals, selectors_traffic, services
from records.annotation_diff import AnnotationDiff, annotation_diff
from records.chart import distribution_svg
from records.forms_traffic import HC_FIELDS, KIND_HELP, EditorForms, apply_preset, error_slot
from records.models import PolicyObjectWrite, PolicyProposal
from records.selectors_traffic import EditorState
from records.traffic import (
    DEFAULT_LOCATION,
    FAILOVER,
    GEOLOCATION,
    LATENCY,
    WEIGHTED,
    TrafficPolicy,
    percentages,
)
from records.views_review import ReviewedPage

PATCH_SALT = "records.policy-patch"
# The weight presets each cluster offers: (preset, button text, accessible name before the cluster's name).
ROW_PRESETS = (
    ("main", "80 %", "80 % to"),
    ("canary", "Canary 5 %", "Canary 5 % to"),
    ("drain", "Drain", "Drain"),
)
# A written proposal's page keeps asking for the change set that publishes it, this long at most.
WAIT_FOR_CHANGESET_S = 600


def _name(dns_name: str) -> str:
    return dns_name.lower().rstrip(".")


# --- what the pages show of each object -------------------------------------------------------------------


@dataclass
class ObjectCard:
    """One Service or Ingress under a policy: its annotation diff, GitOps and write-back facts."""

    cluster: str
    kind: str
    namespace: str
    name: str
    diff: AnnotationDiff
    changes: dict[str, str | None]
    also_affects: list[str] = field(default_factory=list)
    gitops: dict[str, Any] = field(default_factory=dict)
    read_only: str = ""
    write: PolicyObjectWrite | None = None

    @property
    def empty(self) -> bool:
        return not self.changes

    @property
    def patch(self) -> str:
        """The same change as a Kustomize patch (for a GitOps repository, or a cluster the portal may not
        write to)."""
        if self.empty or not (self.gitops or self.read_only):
            return ""
        return kustomize_patch(self.kind, self.namespace, self.name, self.changes)

    @property
    def patch_file(self) -> str:
        return patch_file_name(self.kind, self.name)

    @property
    def patch_token(self) -> str:
        data = {"k": self.kind, "ns": self.namespace, "n": self.name, "c": self.changes}
        return signing.dumps(data, salt=PATCH_SALT, compress=True)


def _cards_from_preview(state: EditorState) -> list[ObjectCard]:
    preview = state.preview
    if preview is None:
        return []
    return [
        ObjectCard(
            cluster=p.obj.cluster,
            kind=p.obj.kind,
            namespace=p.obj.namespace,
            name=p.obj.name,
            diff=annotation_diff(p.before, p.after),
            changes=dict(p.changes),
            also_affects=list(p.also_affects),
            gitops=preview.gitops.get((p.obj.cluster, p.obj.resource), {}),
            read_only=preview.read_only.get(p.obj.cluster, ""),
        )
        for p in preview.patches
    ]


def _cards_from_writes(p: PolicyProposal) -> list[ObjectCard]:
    return [
        ObjectCard(
            cluster=w.cluster.name,
            kind=w.kind,
            namespace=w.namespace,
            name=w.name,
            diff=annotation_diff(w.before, w.after),
            changes=dict(w.changes),
            also_affects=list(w.also_affects),
            gitops=w.gitops or {},
            read_only=w.message if w.status == PolicyObjectWrite.Status.FORBIDDEN else "",
            write=w,
        )
        for w in p.writes.all()
    ]


# --- the editor --------------------------------------------------------------------------------------------


@dataclass
class Slot:
    id: str
    messages: list[str]


def _editor_context(
    request: HttpRequest, state: EditorState, forms: EditorForms, *, error: str = ""
) -> dict[str, Any]:
    preview = state.preview
    slots = forms.slot_errors(preview.errors if preview else ())
    named = {
        key.replace("__all__", "all").replace(".", "_"): Slot(error_slot(key), messages)
        for key, messages in slots.items()
    }
    rows = forms.rows(slots)
    for row in rows:
        row.errors = {f: Slot(error_slot(f"{row.cluster}.{f}"), m) for f, m in row.errors.items()}
    labels, shares = forms.split()
    chart = ""
    if labels:
        chart = distribution_svg(
            labels, shares, None, f"Intended split of {state.hostname}", id_prefix="split"
        )
    groups = preview.plan.to_dict()["groups"] if preview and preview.plan else []
    return {
        "state": state,
        "forms": forms,
        "rows": rows,
        "err": named,
        "oob_slots": [Slot(error_slot(k), m) for k, m in slots.items() if k != "__all__"],
        "kinds": _kinds(forms, state),
        "chart": chart,
        "preview": preview,
        "cards": _cards_from_preview(state),
        "groups": groups,
        "zone": state.zone,
        "zone_id": forms.zone_id() or (state.zone.id if state.zone else ""),
        "error": "" if preview and preview.errors else error,
        "hc_fields": [(forms.hc[f], named[f"hc_{f}"]) for f in HC_FIELDS],
        "row_presets": ROW_PRESETS,
        "can_edit": has_role_perm(request.user, OPERATE),
        "now_rows": _now_rows(state.now),
    }


def _kinds(forms: EditorForms, state: EditorState) -> list[tuple[Any, str, str]]:
    """The routing policies to choose from, each with its help and, when the zone's provider cannot answer
    it, why: that choice is disabled, unless the clusters carry it now (the page never drops what is there).
    """
    provider = services.provider_class(state.zone.account) if state.zone else None
    out = []
    for radio in forms.main["kind"]:
        kind = radio.data["value"]
        if not kind:
            continue
        problem = provider.routing_problem(kind) if provider else ""
        if problem and not radio.data["selected"]:
            radio.data["attrs"]["disabled"] = True
        out.append((radio, KIND_HELP[kind], problem))
    return out


def _now_rows(policy: TrafficPolicy) -> list[tuple[str, str]]:
    """The policy now, cluster by cluster, in words (the read-only view)."""
    shares = (
        percentages({s.cluster: s.weight or 0 for s in policy.enabled}) if policy.kind == WEIGHTED else {}
    )
    rows = []
    for s in policy.shares:
        if not s.enabled:
            part = "left out"
        elif policy.kind == WEIGHTED:
            part = f"weight {s.weight} ({shares.get(s.cluster, 0):.1f} %)"
        elif policy.kind == FAILOVER:
            part = s.role.lower() or "no role"
        elif policy.kind == LATENCY:
            part = f"region {s.region}" if s.region else "no region"
        elif policy.kind == GEOLOCATION:
            where = "/".join(x for x in (s.continent, s.country, s.subdivision) if x)
            part = "default location" if s.country == DEFAULT_LOCATION else where or "no location"
        else:
            part = "takes part"
        rows.append((s.cluster, part))
    return rows


def _no_editor(request: HttpRequest, state: EditorState) -> HttpResponse:
    """No cluster publishes the name: there is no policy to edit."""
    return render(request, "records/policy_edit.html", {"state": state, "unserved": True}, status=404)


@require_GET
@role_required(VIEW)
def policy_edit(request: HttpRequest, dns_name: str) -> HttpResponse:
    """The policy the clusters ask for now, as a form for operators (read-only for everyone else)."""
    name = _name(dns_name)
    state = selectors_traffic.editor_state(name)
    if not state.now.shares:
        return _no_editor(request, state)
    forms = EditorForms(name, start=state.start)
    return render(request, "records/policy_edit.html", _editor_context(request, state, forms))


@require_POST
@role_required(OPERATE)
def policy_preview(request: HttpRequest, dns_name: str) -> HttpResponse:
    """The preview of the posted policy. htmx gets the fragment (the preview, with the percentages and the
    errors swapped out of band), or the whole editor after a preset changed the weights."""
    name = _name(dns_name)
    preset = request.POST.get("preset", "")
    data = apply_preset(request.POST, preset) if preset else request.POST
    forms = EditorForms(name, data=data)
    state = selectors_traffic.editor_state(
        name,
        zone_id=forms.zone_id(),
        policy=forms.policy() if forms.forms_valid() else None,
        health_check=forms.health_check(),
    )
    if not state.now.shares:
        return _no_editor(request, state)
    ctx = _editor_context(request, state, forms)
    if request.htmx and request.htmx.target == "policy-editor":
        return render(request, "records/partials/policy_editor.html", ctx)
    if request.htmx:
        return render(request, "records/partials/policy_preview.html", {**ctx, "oob": True})
    return render(request, "records/policy_edit.html", ctx)


@require_POST
@role_required(OPERATE)
def policy_propose(request: HttpRequest, dns_name: str) -> HttpResponse:
    name = _name(dns_name)
    forms = EditorForms(name, data=request.POST)
    error = ""
    if forms.is_valid():
        try:
            proposal = proposals.policy_propose(
                actor=request.user,
                zone_id=forms.zone_id(),
                hostname=name,
                policy=forms.policy(),
                health_check=forms.health_check(),
            )
        except PortalError as exc:
            error = str(exc)
        else:
            messages.success(
                request,
                f"Policy proposal #{proposal.id} saved: a second person with the approver role reviews it.",
            )
            return redirect("records:proposal-detail", proposal_id=proposal.id)
    # Refused: the page again, each problem next to its field (the preview says which).
    state = selectors_traffic.editor_state(
        name,
        zone_id=forms.zone_id(),
        policy=forms.policy() if forms.forms_valid() else None,
        health_check=forms.health_check(),
    )
    if not state.now.shares:
        return _no_editor(request, state)
    ctx = _editor_context(request, state, forms, error=error)
    return render(request, "records/policy_edit.html", ctx, status=422)


@require_GET
@role_required(VIEW)
def policy_patch(request: HttpRequest, token: str) -> HttpResponse:
    """A Kustomize patch with the annotation changes of one object, as a file to commit."""
    try:
        data = signing.loads(token, salt=PATCH_SALT)
        text = kustomize_patch(data["k"], data["ns"], data["n"], data["c"])
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        raise Http404("No such patch.") from None
    response = HttpResponse(text, content_type="text/yaml; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{patch_file_name(data["k"], data["n"])}"'
    return response


# --- proposals ----------------------------------------------------------------------------------------------


@require_GET
@role_required(VIEW)
def proposal_list(request: HttpRequest) -> HttpResponse:
    status = request.GET.get("status", "")
    q = request.GET.get("q", "").strip()
    page = selectors_traffic.proposal_list(status=status, q=q, page=request.GET.get("page"))
    ctx = {"page": page, "status": status, "q": q, "statuses": PolicyProposal.Status.choices}
    return render(request, "records/proposal_list.html", ctx)


def _proposal_context(request: HttpRequest, p: PolicyProposal, error: str = "") -> dict[str, Any]:
    pending = p.status == PolicyProposal.Status.PENDING
    own = p.proposed_by_id is not None and p.proposed_by_id == request.user.id
    approver = has_role_perm(request.user, APPROVE)
    waiting_for_changeset = (
        p.status == PolicyProposal.Status.WRITTEN
        and p.changeset_id is None
        and p.finished_at is not None
        and (timezone.now() - p.finished_at).total_seconds() < WAIT_FOR_CHANGESET_S
    )
    health_check = ""
    if p.health_check:
        from records.providers.base import HealthCheckSpec

        try:
            health_check = HealthCheckSpec(**p.health_check).describe()
        except TypeError:
            health_check = str(p.health_check)
    return {
        "p": p,
        "error": error,
        "before": TrafficPolicy.from_dict(p.before).describe() if p.before else "",
        "health_check": health_check,
        "cards": _cards_from_writes(p),
        "groups": proposals.predicted_groups(p),
        "can_review": pending and approver and not own,
        "own": pending and own,
        "waiting": pending and not approver and not own,
        "can_operate": p.status == PolicyProposal.Status.PARTIALLY_WRITTEN
        and has_role_perm(request.user, OPERATE),
        "live": p.status in (PolicyProposal.Status.APPROVED, PolicyProposal.Status.WRITING)
        or waiting_for_changeset,
    }


def _proposal(proposal_id: int) -> PolicyProposal:
    try:
        return selectors_traffic.proposal_detail(proposal_id)
    except PolicyProposal.DoesNotExist:
        raise Http404("No such policy proposal.") from None


@require_GET
@role_required(VIEW)
def proposal_detail(request: HttpRequest, proposal_id: int) -> HttpResponse:
    """The proposal; htmx (the page polling while it is written) gets the live part only."""
    return PAGE.show(request, proposal_id)


PAGE = ReviewedPage(
    page="records/proposal_detail.html",
    live="records/partials/proposal_live.html",
    load=_proposal,
    context=_proposal_context,
    url="records:proposal-detail",
    kwarg="proposal_id",
)


def _act(request: HttpRequest, proposal_id: int, action, done: str) -> HttpResponse:
    return PAGE.act(request, proposal_id, action, done)


@require_POST
@role_required(APPROVE)
def proposal_approve(request: HttpRequest, proposal_id: int) -> HttpResponse:
    comment = request.POST.get("comment", "").strip()
    return _act(
        request,
        proposal_id,
        lambda: proposals.policy_approve(proposal_id=proposal_id, approver=request.user, comment=comment),
        f"Policy proposal #{proposal_id} approved; its annotations are being written to the clusters.",
    )


@require_POST
@role_required(APPROVE)
def proposal_reject(request: HttpRequest, proposal_id: int) -> HttpResponse:
    comment = request.POST.get("comment", "").strip()
    return _act(
        request,
        proposal_id,
        lambda: proposals.policy_reject(proposal_id=proposal_id, reviewer=request.user, comment=comment),
        f"Policy proposal #{proposal_id} rejected.",
    )


@require_POST
@role_required(OPERATE)
def proposal_retry(request: HttpRequest, proposal_id: int) -> HttpResponse:
    return _act(
        request,
        proposal_id,
        lambda: proposals.policy_retry(proposal_id=proposal_id, actor=request.user),
        f"Writing policy proposal #{proposal_id} again to the objects not written yet.",
    )


@require_POST
@role_required(OPERATE)
def proposal_abandon(request: HttpRequest, proposal_id: int) -> HttpResponse:
    comment = request.POST.get("comment", "").strip()
    return _act(
        request,
        proposal_id,
        lambda: proposals.policy_abandon(proposal_id=proposal_id, actor=request.user, comment=comment),
        f"Policy proposal #{proposal_id} given up: DNS follows what the clusters say now.",
    )
