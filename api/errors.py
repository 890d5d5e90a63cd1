"""One error shape for the whole API: `{"error": "<sentence>", "fields": {"<field>": ["<sentence>", …]}}`.

The sentences are the pages' own (the services raise them). Statuses: 400 bad input, 401 no or a refused
token, 403 the missing role or four eyes, 404, 409 an action the object's state refuses (already approved,
already registered, stale), 429 a token over its rate.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ObjectDoesNotExist, PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from dnsportal.errors import PortalError


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "The object's state refuses this action."
    default_code = "conflict"


class ErrorSerializer(serializers.Serializer):
    """What every refusal looks like (documented as the error response of each operation)."""

    error = serializers.CharField()
    fields = serializers.DictField(child=serializers.ListField(child=serializers.CharField()))


def _flatten(detail: Any, prefix: str = "") -> dict[str, list[str]]:
    """DRF's nested error detail as {"field": [...], "shares.0.weight": [...]}."""
    out: dict[str, list[str]] = {}
    if isinstance(detail, dict):
        for key, value in detail.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            for k, v in _flatten(value, name).items():
                out.setdefault(k, []).extend(v)
    elif isinstance(detail, list):
        if all(not isinstance(v, dict | list) for v in detail):
            out[prefix or "non_field_errors"] = [str(v) for v in detail]
        else:
            for i, value in enumerate(detail):
                for k, v in _flatten(value, f"{prefix}.{i}" if prefix else str(i)).items():
                    out.setdefault(k, []).extend(v)
    else:
        out[prefix or "non_field_errors"] = [str(detail)]
    return out


def error_response(
    message: str, code: int, fields: dict[str, list[str]] | None = None, headers: dict | None = None
) -> Response:
    return Response({"error": message, "fields": fields or {}}, status=code, headers=headers)


def exception_handler(exc: Exception, context: dict) -> Response | None:
    from records.changesets import NotAllowed

    if isinstance(exc, NotAllowed):
        return error_response(str(exc), status.HTTP_403_FORBIDDEN)
    if isinstance(exc, PortalError):
        return error_response(str(exc), status.HTTP_409_CONFLICT)
    if isinstance(exc, ObjectDoesNotExist | Http404):
        return error_response("Not found.", status.HTTP_404_NOT_FOUND)
    if isinstance(exc, DjangoValidationError):
        fields = {k: list(v) for k, v in exc.message_dict.items()} if hasattr(exc, "error_dict") else {}
        return error_response("; ".join(exc.messages), status.HTTP_400_BAD_REQUEST, fields)
    if isinstance(exc, PermissionDenied):
        return error_response(str(exc) or "You may not do this.", status.HTTP_403_FORBIDDEN)
    if isinstance(exc, exceptions.ValidationError):
        fields = _flatten(exc.detail)
        general = fields.pop("non_field_errors", [])
        sentence = "; ".join(general) or "; ".join(f"{k}: {' '.join(v)}" for k, v in fields.items())
        return error_response(sentence or "The request is not valid.", status.HTTP_400_BAD_REQUEST, fields)
    if isinstance(exc, exceptions.NotAuthenticated):
        exc.detail = "Log in, or send a personal API token: Authorization: Bearer dnsp_…"
    response = drf_exception_handler(exc, context)
    if response is None:
        return None  # a bug: Django's 500 handling (and its log line) takes over
    detail = response.data.get("detail", "") if isinstance(response.data, dict) else response.data
    if isinstance(exc, exceptions.Throttled):
        detail = f"This token is over its rate; try again in {exc.wait:.0f} s." if exc.wait else str(detail)
    body = {"error": str(detail), "fields": {}}
    response.data = body
    return response


@csrf_exempt  # it changes nothing; a POST to an unknown URL is a 404 like any other
def not_found(request, *args: Any, **kwargs: Any) -> JsonResponse:
    return JsonResponse({"error": "Not found.", "fields": {}}, status=404)
