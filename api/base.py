"""What every API view shares: the audit channel (the API, and which token), and the pages' forms as the
validators of request bodies, so the API refuses with the pages' own sentences."""

from __future__ import annotations

from typing import Any

from django import forms
from rest_framework import exceptions, viewsets
from rest_framework.views import APIView

from api.models import ApiToken
from dnsportal.audit import Channel, channel_var


class ChannelMixin:
    """Every audit row written while an API request runs says it came through the API, and by which token."""

    def initial(self, request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)  # type: ignore[misc]
        token = request.auth if isinstance(request.auth, ApiToken) else None
        channel = Channel(
            via="api", token_id=token.id if token else None, token_name=token.name if token else ""
        )
        self._channel_reset = channel_var.set(channel)

    def finalize_response(self, request, response, *args: Any, **kwargs: Any):
        reset = getattr(self, "_channel_reset", None)
        if reset is not None:
            channel_var.reset(reset)
            self._channel_reset = None
        return super().finalize_response(request, response, *args, **kwargs)  # type: ignore[misc]


class PortalAPIView(ChannelMixin, APIView):
    perms: dict[str, str] = {}


class PortalViewSet(ChannelMixin, viewsets.GenericViewSet):
    perms: dict[str, str] = {}


def form_errors(form: forms.BaseForm) -> exceptions.ValidationError:
    """A page's form errors as the API's 400: the general error (or the first field's) as the sentence."""
    fields: dict[str, list[str]] = {}
    for name, errors in form.errors.items():
        fields["non_field_errors" if name == "__all__" else name] = list(errors)
    return exceptions.ValidationError(fields)


def clean_with(form: forms.BaseForm) -> dict[str, Any]:
    """Validate with a page's form; its errors are the API's 400."""
    if not form.is_valid():
        raise form_errors(form)
    return form.cleaned_data


def portal_error_fields(exc: Exception, field: str = "non_field_errors") -> exceptions.ValidationError:
    return exceptions.ValidationError({field: [str(exc)]})
