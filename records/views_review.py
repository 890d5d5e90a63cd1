"""The page of a reviewed thing (a policy proposal, a traffic shift plan, a failover drill) and its buttons,
shared: the page or, for htmx (the page polling while the thing runs), its live part; each button one
service call, a refusal (its sentence) re-rendering the page with status 422."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from dnsportal.errors import PortalError


@dataclass(frozen=True)
class ReviewedPage:
    page: str  # the whole page's template
    live: str  # its live part's template
    load: Callable[[int], Any]  # the thing by id, or Http404
    context: Callable[[HttpRequest, Any, str], dict[str, Any]]  # (request, thing, error) -> context
    url: str  # the page's URL name
    kwarg: str  # the id's name in that URL

    def show(self, request: HttpRequest, obj_id: int) -> HttpResponse:
        ctx = self.context(request, self.load(obj_id), "")
        return render(request, self.live if request.htmx else self.page, ctx)

    def act(self, request: HttpRequest, obj_id: int, action: Callable[[], Any], done: str) -> HttpResponse:
        self.load(obj_id)  # 404 before anything else
        try:
            action()
        except PortalError as exc:
            ctx = self.context(request, self.load(obj_id), str(exc))
            return render(request, self.live if request.htmx else self.page, ctx, status=422)
        if request.htmx:
            return render(request, self.live, self.context(request, self.load(obj_id), ""))
        messages.success(request, done)
        return redirect(self.url, **{self.kwarg: obj_id})
