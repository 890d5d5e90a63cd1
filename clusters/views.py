from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from dnsportal.roles import VIEW, role_required


@role_required(VIEW)
def cluster_list(request: HttpRequest) -> HttpResponse:
    return render(request, "clusters/cluster_list.html", {"clusters": []})
