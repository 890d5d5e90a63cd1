from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from dnsportal import queue
from dnsportal.errors import PortalError
from dnsportal.paging import IdPaginator
from dnsportal.roles import ADMINISTER, APPROVE, OPERATE, VIEW, role_required
from records import changesets, selectors, services, verification_services
from records.forms import AccountForm, ImportZonesForm, ZoneForm
from records.forms_verify import ProbeForm
from records.models import ChangeSet, Endpoint, ProviderAccount, ShiftPlan, Verification, Zone, ZoneRecord
from records.selectors_traffic import hostname_policy

# select_related ignores the related model's manager: without these, every row joined to its zone would bring
# the zone's snapshot columns (the last applied endpoints: megabytes of JSON in a zone of 100,000 names).
ZONE_SNAPSHOTS = tuple(f"zone__{f}" for f in Zone.SNAPSHOT_FIELDS)
CHANGESET_SNAPSHOTS = tuple(f"changeset__{f}" for f in ChangeSet.SNAPSHOT_FIELDS)


@role_required(VIEW)
def account_list(request: HttpRequest) -> HttpResponse:
    accounts = ProviderAccount.objects.annotate(zone_count=Count("zones"))
    return render(request, "records/account_list.html", {"accounts": accounts})


@require_http_methods(["GET", "POST"])
@role_required(ADMINISTER)
def account_create(request: HttpRequest) -> HttpResponse:
    form = AccountForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            account = services.account_create(actor=request.user, **form.cleaned_data)
        except PortalError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"Account {account.name} added; its connection test is running.")
            return redirect("records:account-detail", account_id=account.id)
    return render(request, "records/account_form.html", {"form": form}, status=422 if form.errors else 200)


@role_required(VIEW)
def account_detail(request: HttpRequest, account_id: int) -> HttpResponse:
    account = get_object_or_404(ProviderAccount, id=account_id)
    return render(
        request,
        "records/account_detail.html",
        {"account": account, "zones": account.zones.all(), "import_form": ImportZonesForm()},
    )


@require_POST
@role_required(ADMINISTER)
def account_check(request: HttpRequest, account_id: int) -> HttpResponse:
    account = get_object_or_404(ProviderAccount, id=account_id)
    queue.enqueue("account_check", actor=request.user, account_id=account.id)
    messages.info(request, "Testing the connection; the result appears here in a few seconds.")
    return redirect("records:account-detail", account_id=account.id)


@require_POST
@role_required(ADMINISTER)
def account_import(request: HttpRequest, account_id: int) -> HttpResponse:
    account = get_object_or_404(ProviderAccount, id=account_id)
    form = ImportZonesForm(request.POST)
    if form.is_valid():
        services.account_import_zones(
            actor=request.user, account_id=account.id, domain_filter=form.cleaned_data["domain_filter"]
        )
        messages.info(request, "Importing the account's hosted zones; they appear below in a few seconds.")
    return redirect("records:account-detail", account_id=account.id)


@role_required(VIEW)
def zone_list(request: HttpRequest) -> HttpResponse:
    zones = Zone.objects.select_related("account")
    q = request.GET.get("q", "").strip()
    if q:
        zones = zones.filter(name__icontains=q)
    ctx = {"zones": zones, "q": q, "any_account": ProviderAccount.objects.exists()}
    return render(request, "records/zone_list.html", ctx)


RECORD_PAGE_SIZE = 100


@role_required(VIEW)
def zone_detail(request: HttpRequest, zone_id: int) -> HttpResponse:
    from records.ownership import TxtNaming, explain_apex

    zone = get_object_or_404(Zone.objects.select_related("account", "last_reconcile_run"), id=zone_id)
    records = zone.records.all()
    q = request.GET.get("q", "").strip()
    if q:
        records = records.filter(name__icontains=q)
    ownership = request.GET.get("ownership", "")
    if ownership in ZoneRecord.Ownership.values:
        records = records.filter(ownership=ownership)
    page = IdPaginator(records, RECORD_PAGE_SIZE).get_page(request.GET.get("page"))
    latest = zone.changesets.order_by("-created_at").first()
    ctx = {
        "zone": zone,
        "page": page,
        "q": q,
        "ownership": ownership,
        "ownerships": ZoneRecord.Ownership.choices,
        "latest": latest,
        "latest_changes": latest.changes.all()[:50] if latest else [],
        "apex": explain_apex(TxtNaming(prefix=zone.txt_prefix, suffix=zone.txt_suffix), zone.name),
    }
    return render(request, "records/zone_detail.html", ctx)


@require_http_methods(["GET", "POST"])
@role_required(ADMINISTER)
def zone_edit(request: HttpRequest, zone_id: int) -> HttpResponse:
    zone = get_object_or_404(Zone, id=zone_id)
    form = ZoneForm(request.POST or None, instance=Zone.objects.get(id=zone_id))
    if request.method == "POST" and form.is_valid():
        fields = {f: form.cleaned_data[f] for f in form.Meta.fields}
        try:
            services.zone_update(actor=request.user, zone_id=zone.id, **fields)
        except ValidationError as exc:
            form.add_error(None, "; ".join(exc.messages))
        except ValueError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"Zone {zone} saved.")
            return redirect("records:zone-detail", zone_id=zone.id)
    return render(
        request, "records/zone_edit.html", {"zone": zone, "form": form}, status=422 if form.errors else 200
    )


@require_POST
@role_required(OPERATE)
def zone_reconcile(request: HttpRequest, zone_id: int) -> HttpResponse:
    zone = get_object_or_404(Zone, id=zone_id)
    services.zone_reconcile_request(actor=request.user, zone_id=zone.id)
    messages.info(
        request, f"Reconciling {zone}: the zone is read again and a change set appears if anything differs."
    )
    return redirect("records:zone-detail", zone_id=zone.id)


@require_http_methods(["GET", "POST"])
@role_required(OPERATE)
def zone_adopt(request: HttpRequest, zone_id: int, record_id: int) -> HttpResponse:
    """Take a record over from another owner id (or from nobody): planned as a change set a second person
    approves; nothing is written before that."""
    zone = get_object_or_404(Zone, id=zone_id)
    record = get_object_or_404(ZoneRecord, id=record_id, zone=zone)
    if request.method == "POST":
        try:
            services.zone_adopt_request(actor=request.user, zone_id=zone.id, record_id=record.id)
        except PortalError as exc:
            messages.error(request, str(exc))
        else:
            messages.info(
                request,
                f"Planning the adoption of {record.name} {record.type}: a change set appears "
                "under Changes for a second person to approve.",
            )
        return redirect("records:zone-detail", zone_id=zone.id)
    return render(request, "records/zone_adopt.html", {"zone": zone, "record": record})


@role_required(VIEW)
def record_list(request: HttpRequest) -> HttpResponse:
    # zone first: the order of the (zone, name, type, set identifier) index, so a page is an index range,
    # not a sort of every record of every zone (590 ms a page at 200,000 record sets)
    records = (
        ZoneRecord.objects.select_related("zone")
        .defer(*ZONE_SNAPSHOTS)
        .order_by("zone_id", "name", "type", "set_identifier")
    )
    q = request.GET.get("q", "").strip()
    if q:
        records = records.filter(name__icontains=q)
    ownership = request.GET.get("ownership", "")
    if ownership in ZoneRecord.Ownership.values:
        records = records.filter(ownership=ownership)
    page = IdPaginator(records, RECORD_PAGE_SIZE).get_page(request.GET.get("page"))
    ctx = {
        "page": page,
        "q": q,
        "ownership": ownership,
        "ownerships": ZoneRecord.Ownership.choices,
        "any_zone": Zone.objects.exists(),
    }
    return render(request, "records/record_list.html", ctx)


@role_required(VIEW)
def changeset_list(request: HttpRequest) -> HttpResponse:
    changesets = ChangeSet.objects.select_related("zone", "requested_by", "approved_by").defer(
        *ZONE_SNAPSHOTS
    )
    zone = request.GET.get("zone", "")
    if zone.isdigit():
        changesets = changesets.filter(zone_id=int(zone))
    status = request.GET.get("status", "")
    if status in ChangeSet.Status.values:
        changesets = changesets.filter(status=status)
    author = request.GET.get("author", "").strip()
    if author:
        changesets = changesets.filter(requested_by__username=author)
    name = request.GET.get("name", "").strip().lower().rstrip(".")
    if name:  # the change sets that touched one name (linked from its hostname page)
        changesets = changesets.filter(changes__name=f"{name}.").distinct()
    page = Paginator(changesets, 50).get_page(request.GET.get("page"))
    ctx = {
        "page": page,
        "zone": zone,
        "status": status,
        "author": author,
        "name": name,
        "statuses": ChangeSet.Status.choices,
        "zones": Zone.objects.all(),
        "any_changeset": ChangeSet.objects.exists(),
    }
    return render(request, "records/changeset_list.html", ctx)


CHANGE_PAGE_SIZE = 100


def _changeset_context(request: HttpRequest, cs: ChangeSet, error: str = "") -> dict:
    from dnsportal.roles import APPROVE, has_role_perm

    pending = cs.status == ChangeSet.Status.PENDING
    own = cs.requested_by_id is not None and cs.requested_by_id == request.user.id
    approver = has_role_perm(request.user, APPROVE)
    # A page of the diff: a change set of a large zone holds 10,000 changes, and the status panel that lists
    # them is polled every second while it applies. The Route53 actions are the apply's, not the page's.
    changes = cs.changes.defer("actions")
    q = request.GET.get("q", "").strip().lower()
    if q:
        changes = changes.filter(name__contains=q)
    return {
        "cs": cs,
        "error": error,
        "changes": Paginator(changes, CHANGE_PAGE_SIZE).get_page(request.GET.get("page")),
        "q": q,
        "can_review": pending and approver and not own,
        "own": pending and own,
        "waiting": pending and not approver and not own,
        "live": cs.status in (ChangeSet.Status.APPROVED, ChangeSet.Status.APPLYING),
    }


@role_required(VIEW)
def changeset_detail(request: HttpRequest, changeset_id: int) -> HttpResponse:
    cs = get_object_or_404(
        ChangeSet.objects.select_related("zone", "requested_by", "approved_by").defer(*ZONE_SNAPSHOTS),
        id=changeset_id,
    )
    ctx = _changeset_context(request, cs)
    return render(request, "records/changeset_detail.html", ctx)


@role_required(VIEW)
def changeset_status(request: HttpRequest, changeset_id: int) -> HttpResponse:
    """htmx: the status panel, polled while the change set is being applied."""
    cs = get_object_or_404(
        ChangeSet.objects.select_related("zone", "requested_by", "approved_by").defer(*ZONE_SNAPSHOTS),
        id=changeset_id,
    )
    return render(request, "records/partials/changeset_status.html", _changeset_context(request, cs))


def _review(request: HttpRequest, changeset_id: int, action) -> HttpResponse:
    try:
        cs = action()
    except PortalError as exc:
        cs = get_object_or_404(ChangeSet, id=changeset_id)
        # Refused because of who asks (four eyes): 403; refused because of the change set's state: 422.
        status = 403 if isinstance(exc, changesets.NotAllowed) else 422
        ctx = _changeset_context(request, cs, str(exc))
        if request.htmx:
            return render(request, "records/partials/changeset_status.html", ctx, status=status)
        return render(request, "records/changeset_detail.html", ctx, status=status)
    if request.htmx:
        return render(request, "records/partials/changeset_status.html", _changeset_context(request, cs))
    return redirect("records:changeset-detail", changeset_id=cs.id)


@require_POST
@role_required(APPROVE)
def changeset_approve(request: HttpRequest, changeset_id: int) -> HttpResponse:
    comment = request.POST.get("comment", "").strip()
    confirm = request.POST.get("confirm_deletes") == "1"
    response = _review(
        request,
        changeset_id,
        lambda: changesets.changeset_approve(
            changeset_id=changeset_id, approver=request.user, comment=comment, confirm_deletes=confirm
        ),
    )
    if (
        response.status_code == 302
        and not request.htmx
        and ChangeSet.objects.filter(id=changeset_id, approved_by=request.user).exists()
    ):
        messages.success(request, f"Change set #{changeset_id} approved; it is being applied.")
    return response


@require_POST
@role_required(APPROVE)
def changeset_reject(request: HttpRequest, changeset_id: int) -> HttpResponse:
    comment = request.POST.get("comment", "").strip()
    return _review(
        request,
        changeset_id,
        lambda: changesets.changeset_reject(
            changeset_id=changeset_id, reviewer=request.user, comment=comment
        ),
    )


@role_required(VIEW)
def policy_list(request: HttpRequest) -> HttpResponse:
    """Every hostname the clusters serve, hostname by cluster: the routing each cluster asks for, what the
    zone serves, conflicts, the last verification. htmx filters swap only the table."""
    from records.policy_matrix import PolicyFilters, policy_matrix

    filters = PolicyFilters.from_query(request.GET)
    matrix = policy_matrix(filters, request.GET.get("page"))
    ctx = {"matrix": matrix, "filters": filters, "page": matrix.page}
    if request.htmx and not request.htmx.history_restore_request:
        return render(request, "records/partials/policy_table.html", ctx)
    return render(request, "records/policy_list.html", ctx)


@role_required(VIEW)
def verification_list(request: HttpRequest) -> HttpResponse:
    rows = Verification.objects.select_related("zone", "changeset").defer(
        *ZONE_SNAPSHOTS, *CHANGESET_SNAPSHOTS
    )
    kind = request.GET.get("kind", "")
    if kind in Verification.Kind.values:
        rows = rows.filter(kind=kind)
    status = request.GET.get("status", "")
    if status in Verification.Status.values:
        rows = rows.filter(status=status)
    q = request.GET.get("q", "").strip()
    if q:
        rows = rows.filter(Q(hostname__icontains=q) | Q(zone__name__icontains=q))
    page = Paginator(rows, 50).get_page(request.GET.get("page"))
    ctx = {
        "page": page,
        "kind": kind,
        "status": status,
        "q": q,
        "kinds": Verification.Kind.choices,
        "statuses": Verification.Status.choices,
        "any_zone": Zone.objects.exists(),
    }
    return render(request, "records/verification_list.html", ctx)


def _chart(v: Verification) -> str:
    from records.chart import distribution_svg

    rows = (v.report.get("verdict") or {}).get("rows") or []
    if not rows:
        return ""
    what = "Responses per cluster" if v.kind == Verification.Kind.PROBE else "Answers"
    return distribution_svg(
        [r["label"] for r in rows],
        [100 * r["intended"] for r in rows],
        [100 * r["observed"] for r in rows],
        f"{what} for {v.hostname}: intended vs observed",
        id_prefix=f"v{v.id}-",
    )


@role_required(VIEW)
def verification_detail(request: HttpRequest, verification_id: int) -> HttpResponse:
    v = get_object_or_404(
        Verification.objects.select_related("zone", "changeset").defer(*ZONE_SNAPSHOTS, *CHANGESET_SNAPSHOTS),
        id=verification_id,
    )
    answers = []
    for ns, per_name in (v.report.get("answers") or {}).items():
        for key, answer in per_name.items():
            answers.append({"nameserver": ns, "record": key, **answer})
    ctx = {"v": v, "chart": _chart(v), "answers": answers, "probe": _probe_summary(v)}
    return render(request, "records/verification_detail.html", ctx)


def _probe_summary(v: Verification) -> dict | None:
    """An HTTP probe's counts as the detail page lists them (None for other kinds, or while running)."""
    probe = v.report.get("probe")
    if v.kind != Verification.Kind.PROBE or not probe:
        return None
    rows = [
        {**r, "observed_pct": 100 * r["observed"], "intended_pct": 100 * r["intended"]}
        for r in (v.report.get("verdict") or {}).get("rows", [])
    ]
    return {
        **probe,
        "rows": rows,
        "statuses": sorted(probe["statuses"].items()),
        "per_address": sorted((a, sorted(c.items())) for a, c in probe["per_address"].items()),
        "rate": probe["n"] / probe["elapsed"] if probe["elapsed"] else None,
    }


@require_POST
@role_required(OPERATE)
def verification_measure(request: HttpRequest) -> HttpResponse:
    zone = get_object_or_404(Zone, id=request.POST.get("zone_id") or 0)
    hostname = request.POST.get("hostname", "").strip().rstrip(".")
    try:
        verification_services.distribution_request(actor=request.user, zone_id=zone.id, hostname=hostname)
    except PortalError as exc:
        messages.error(request, str(exc))
    else:
        messages.info(request, f"Measuring how {hostname} splits; the chart appears here in a few seconds.")
    return redirect("records:hostname-detail", dns_name=hostname)


@require_POST
@role_required(OPERATE)
def verification_probe(request: HttpRequest) -> HttpResponse:
    """The "Probe over HTTP" form of a hostname's page: bad input re-renders the page with the errors on
    the fields (422) and enqueues nothing."""
    hostname = request.POST.get("hostname", "").strip().rstrip(".").lower()
    form = ProbeForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        zone = get_object_or_404(Zone, id=data["zone_id"])
        try:
            verification_services.probe_request(
                actor=request.user,
                zone_id=zone.id,
                hostname=hostname,
                n=data["n"],
                port=data["port"],
                path=data["path"],
            )
        except PortalError as exc:
            form.add_error(None, str(exc))
        else:
            messages.info(
                request, f"Probing {hostname} over HTTP ({data['n']} requests); the result appears below."
            )
            return redirect(reverse("records:hostname-detail", args=[hostname]) + "#probe")
    ctx = _hostname_context(hostname)
    if ctx is None:
        return _hostname_unknown(request, hostname)
    return render(request, "records/hostname_detail.html", {**ctx, "probe_form": form}, status=422)


@require_POST
@role_required(OPERATE)
def zone_verify(request: HttpRequest, zone_id: int) -> HttpResponse:
    zone = get_object_or_404(Zone, id=zone_id)
    queue.enqueue("zone_verify", actor=request.user, zone_id=zone.id)
    messages.info(request, f"Asking the nameservers of {zone}; the result appears under Verification.")
    return redirect("records:zone-detail", zone_id=zone.id)


ENDPOINT_PAGE_SIZE = 100


@role_required(VIEW)
def endpoint_list(request: HttpRequest) -> HttpResponse:
    from clusters.models import Cluster

    q = request.GET.get("q", "").strip()
    cluster = request.GET.get("cluster", "")
    private = request.GET.get("private") == "1"
    record_type = request.GET.get("type", "")
    rows = selectors.endpoints(q=q, cluster=cluster, private=private, record_type=record_type)
    # the order of the endpoint_list_order index (cluster by id, not by name): a page is an index range
    rows = rows.order_by("dns_name", "record_type", "set_identifier", "cluster_id")
    page = IdPaginator(rows, ENDPOINT_PAGE_SIZE).get_page(request.GET.get("page"))
    # Why a row is not (fully) in DNS, planned for the names of this page only.
    reasons = selectors.unpublished_reasons(ep.dns_name for ep in page.object_list)
    for ep in page.object_list:
        ep.routing = selectors.routing_summary(ep.properties)
        ep.unpublished = [r for r in reasons.get(ep.dns_name, ()) if r.applies_to(ep.record_type)]
    ctx = {
        "page": page,
        "q": q,
        "cluster": cluster,
        "private": private,
        "record_type": record_type,
        "clusters": Cluster.objects.values_list("name", flat=True),
        "types": ["A", "AAAA", "CNAME", "SRV"],
        "any_endpoint": Endpoint.objects.exists(),
    }
    return render(request, "records/endpoint_list.html", ctx)


@role_required(VIEW)
def hostname_detail(request: HttpRequest, dns_name: str) -> HttpResponse:
    name = dns_name.lower().rstrip(".")
    ctx = _hostname_context(name)
    if ctx is None:
        return _hostname_unknown(request, name)
    zones = ctx["zones"]
    ctx["probe_form"] = ProbeForm(initial=_probe_initial(zones[0])) if zones else None
    # a private address is worth a warning where the name is public, not in an internal zone
    ctx["flag_private"] = not zones or any(not z.private for z in zones)
    return render(request, "records/hostname_detail.html", ctx)


def _probe_initial(zone: Zone) -> dict:
    """The probe form's defaults: port 80, or, in the demo's zones, the port its clusters' pages use."""
    from django.conf import settings

    from dnsportal.embedded import demo_http_port

    initial: dict = {"zone_id": zone.id}
    if zone.is_demo and (port := demo_http_port(settings.DATA_DIR)):
        initial["port"] = port
    return initial


def _hostname_unknown(request: HttpRequest, name: str) -> HttpResponse:
    ctx = {
        "dns_name": name,
        "similar": selectors.similar_hostnames(name),
        "zones": services.zones_for_names([name]),
    }
    return render(request, "records/hostname_unknown.html", ctx, status=404)


def _hostname_context(name: str) -> dict | None:
    """What the hostname page shows (None: no cluster publishes it and no zone holds it)."""
    rows = list(selectors.endpoints().filter(dns_name=name))
    if not rows and not selectors.hostname_known(name):
        return None
    unpublished = selectors.unpublished_reasons([name]).get(name, []) if rows else []
    for ep in rows:
        ep.routing = selectors.routing_summary(ep.properties)
        ep.unpublished = [r for r in unpublished if r.applies_to(ep.record_type)]
    history = list(Verification.objects.filter(kind=Verification.Kind.DISTRIBUTION, hostname=name)[:10])
    latest = history[0] if history else None
    zones = services.zones_for_names([name])
    probe = Verification.objects.filter(kind=Verification.Kind.PROBE, hostname=name).first()
    return {
        "dns_name": name,
        "rows": rows,
        "published": selectors.published_record_sets(name) if rows else [],
        "clusters": sorted({ep.cluster.name for ep in rows}),
        "unpublished": unpublished,
        "zones": zones,
        "latest": latest,
        "chart": _chart(latest) if latest else "",
        "history": history,
        "live": latest is not None and latest.status == Verification.Status.RUNNING,
        "probe": probe,
        "probe_chart": _chart(probe) if probe else "",
        "probe_live": probe is not None and probe.status == Verification.Status.RUNNING,
        "policy": hostname_policy(name, [ep for ep in rows if ep.cluster.enabled]),
        "shift_plans": ShiftPlan.objects.filter(hostname=name)
        .select_related("proposed_by")
        .order_by("-created_at")[:5],
        **_hostname_drills(name, zones),
    }


def _hostname_drills(name: str, zones: list[Zone]) -> dict:
    """The failover-drill card: the name's drills, and why a drill may not run now ("" when it may)."""
    from records.drills import refusal_now
    from records.models import FailoverDrill

    zone = min(zones, key=lambda z: (-len(z.name), z.private, z.id), default=None)
    refusal = refusal_now(zone, name)[0] if zone else "No zone the portal manages holds the name."
    rows = FailoverDrill.objects.filter(hostname=name).select_related("proposed_by").order_by("-created_at")
    return {"drills": rows[:5], "drill_refusal": refusal}


@role_required(VIEW)
def endpoint_errors(request: HttpRequest) -> HttpResponse:
    from clusters.models import DiscoveredObject

    objects = DiscoveredObject.objects.select_related("cluster").exclude(errors=[], warnings=[])
    cluster = request.GET.get("cluster", "")
    if cluster:
        objects = objects.filter(cluster__name=cluster)
    page = Paginator(objects.order_by("-last_seen"), ENDPOINT_PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "records/endpoint_errors.html", {"page": page, "cluster": cluster})
