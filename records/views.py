from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from dnsportal.roles import VIEW, role_required


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
