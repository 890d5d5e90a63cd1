from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from dnsportal.roles import VIEW, role_required
from records import selectors
from records.models import Endpoint


@role_required(VIEW)
def zone_list(request: HttpRequest) -> HttpResponse:
    return render(request, "records/zone_list.html", {"zones": []})


@role_required(VIEW)
def record_list(request: HttpRequest) -> HttpResponse:
    return render(request, "records/record_list.html", {"records": []})


@role_required(VIEW)
def changeset_list(request: HttpRequest) -> HttpResponse:
    return render(request, "records/changeset_list.html", {"changesets": []})


@role_required(VIEW)
def policy_list(request: HttpRequest) -> HttpResponse:
    return render(request, "records/policy_list.html", {"policies": []})


@role_required(VIEW)
def verification_list(request: HttpRequest) -> HttpResponse:
    return render(request, "records/verification_list.html", {"verifications": []})


ENDPOINT_PAGE_SIZE = 100


@role_required(VIEW)
def endpoint_list(request: HttpRequest) -> HttpResponse:
    from clusters.models import Cluster

    q = request.GET.get("q", "").strip()
    cluster = request.GET.get("cluster", "")
    private = request.GET.get("private") == "1"
    record_type = request.GET.get("type", "")
    rows = selectors.endpoints(q=q, cluster=cluster, private=private, record_type=record_type)
    page = Paginator(rows, ENDPOINT_PAGE_SIZE).get_page(request.GET.get("page"))
    for ep in page.object_list:
        ep.routing = selectors.routing_summary(ep.properties)
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
    rows = list(selectors.endpoints().filter(dns_name=dns_name.lower().rstrip(".")))
    for ep in rows:
        ep.routing = selectors.routing_summary(ep.properties)
    clusters = sorted({ep.cluster.name for ep in rows})
    return render(
        request, "records/hostname_detail.html", {"dns_name": dns_name, "rows": rows, "clusters": clusters}
    )


@role_required(VIEW)
def endpoint_errors(request: HttpRequest) -> HttpResponse:
    from clusters.models import DiscoveredObject

    objects = DiscoveredObject.objects.select_related("cluster").exclude(errors=[], warnings=[])
    cluster = request.GET.get("cluster", "")
    if cluster:
        objects = objects.filter(cluster__name=cluster)
    page = Paginator(objects.order_by("-last_seen"), ENDPOINT_PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "records/endpoint_errors.html", {"page": page, "cluster": cluster})
