"""Request id: from a well-formed X-Request-ID header or made up; logged on every line and echoed back."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable

from django.core.signals import request_finished
from django.http import HttpRequest, HttpResponse

from dnsportal.logging import request_id_var

_VALID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


class RequestIdMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.headers.get("X-Request-ID", "")
        request_id = incoming if _VALID.match(incoming) else uuid.uuid4().hex
        request.request_id = request_id  # type: ignore[attr-defined]
        # Not reset when the middleware returns: Django logs 4xx/5xx responses after the middleware chain,
        # and those lines need the id too. It is cleared when the response is finished (request_finished).
        request_id_var.set(request_id)
        response = self.get_response(request)
        response["X-Request-ID"] = request_id
        return response


def _clear_request_id(**kwargs: object) -> None:
    request_id_var.set("")


request_finished.connect(_clear_request_id, dispatch_uid="dnsportal.clear_request_id")


class HealthCheckMiddleware:
    """Answer /healthz, /readyz and /metrics before host validation and HTTPS redirects.

    Load balancers and container health checks probe by IP over plain HTTP, with a Host header that is not in
    ALLOWED_HOSTS; these two read-only JSON endpoints must answer them all the same.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        from dnsportal import views

        if request.path == "/healthz":
            return views.healthz(request)
        if request.path == "/readyz":
            return views.readyz(request)
        if request.path == "/metrics":
            # Prometheus scrapes by address over plain HTTP too; the view checks its token or allow-list.
            from dnsportal.metrics_export import metrics_view

            return metrics_view(request)
        return self.get_response(request)
