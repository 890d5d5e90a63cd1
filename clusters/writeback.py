"""Write ExternalDNS annotations back to a Service or Ingress, never over someone else's change.

The write is a JSON merge patch of `metadata.annotations` (a null value removes the key) that carries the
`metadata.resourceVersion` the portal last read. The API server compares it with the object's current one and
answers 409 Conflict when they differ (a PATCH with a resourceVersion is never retried or merged server-side),
so an edit made in the cluster after the proposal was reviewed is shown to a person, never overwritten. The
field manager `dnsportal` puts the portal's name in `metadata.managedFields`, where `kubectl` and the GitOps
tools show who set each annotation.

Every outcome is a `WriteResult` with a status the caller acts on: `written`; `conflict` (re-read the object:
who changed it last is in `changed_by`); `unreachable` (connection error, timeout, 429 or 5xx: retry later);
`gone` (404); `forbidden` (403, or 401: the identity may not patch, or its credentials are refused); `invalid`
(400/422: the API server refused the values). Messages name the object and the cause, never a credential: they
are built here from the status and the API server's Status message, not from the request.

Runs only in jobs (a cluster is outside world): never call it from a web request.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import urllib3
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from clusters.annotations import PREFIXES
from clusters.gitops import last_change, managed_fields_owner
from clusters.kube import ClusterClient, describe_error

log = logging.getLogger(__name__)

FIELD_MANAGER = "dnsportal"
KINDS = ("Service", "Ingress")

Status = Literal["written", "conflict", "unreachable", "gone", "forbidden", "invalid"]
WRITTEN: Status = "written"
CONFLICT: Status = "conflict"
UNREACHABLE: Status = "unreachable"
GONE: Status = "gone"
FORBIDDEN: Status = "forbidden"
INVALID: Status = "invalid"

# (API class, read method, patch method) per kind
_METHODS: dict[str, tuple[type, str, str]] = {
    "Service": (k8s.CoreV1Api, "read_namespaced_service", "patch_namespaced_service"),
    "Ingress": (k8s.NetworkingV1Api, "read_namespaced_ingress", "patch_namespaced_ingress"),
}

# Transport failures that mean "no answer from the cluster": retried later by the caller, never here.
_TRANSPORT_ERRORS = (urllib3.exceptions.HTTPError, OSError)


@dataclass(frozen=True, slots=True)
class WriteResult:
    """What a write-back did. `annotations_after` are the object's ExternalDNS annotations as the API server
    last showed them (after the write; the current ones on a conflict), empty when it did not answer."""

    status: Status
    resource_version_after: str = ""
    message: str = ""
    changed_by: str = ""  # on a conflict: "kubectl-edit at 2026-11-30T14:02:11Z"
    annotations_after: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == WRITTEN


class KubeObjectError(Exception):
    """Reading an object failed; `status` is one of WriteResult's ("gone", "unreachable", ...)."""

    def __init__(self, status: Status, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _describe(kind: str, namespace: str, name: str) -> str:
    return f"{kind} {namespace}/{name}"


def _api_message(exc: ApiException) -> str:
    """The API server's own sentence (the Status object's `message`), without headers or request data."""
    try:
        body = json.loads(exc.body or "")
    except (TypeError, ValueError):
        return str(exc.reason or "")
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return body["message"]
    return str(exc.reason or "")


def _classify(exc: BaseException, server: str, what: str, verb: str) -> tuple[Status, str]:
    """A failed request as a status and a message an operator can act on (no credential in it)."""
    if isinstance(exc, ApiException) and exc.status:
        code = exc.status
        detail = _api_message(exc)
        if code == 404:
            return GONE, f"{what} no longer exists in the cluster (404 Not Found); nothing was written."
        if code == 403:
            return FORBIDDEN, (
                f"The portal's identity may not {verb} {what} (403 Forbidden): {detail}. Grant it `{verb}` "
                "on services and ingresses (networking.k8s.io) in the cluster's RBAC."
            )
        if code == 401:
            return FORBIDDEN, describe_error(exc, server)
        answer = f"{code} {exc.reason}" if exc.reason else str(code)
        if code in (408, 429) or code >= 500:
            return UNREACHABLE, (
                f"The API server at {server} answered {answer} to {verb} {what}: "
                "it will be tried again later."
            )
        return INVALID, f"The API server refused to {verb} {what} ({answer}): {detail}"
    return UNREACHABLE, f"{describe_error(exc, server)} ({verb} {what}; it will be tried again later)"


def _external_dns_only(annotations: Mapping[str, Any] | None) -> dict[str, str]:
    return {k: str(v) for k, v in sorted((annotations or {}).items()) if k.startswith(PREFIXES)}


def _read_raw(cc: ClusterClient, kind: str, namespace: str, name: str) -> dict[str, Any]:
    api_class, read, _patch = _METHODS[kind]
    response = getattr(api_class(cc.api), read)(
        name, namespace, _preload_content=False, _request_timeout=cc.timeout
    )
    return json.loads(response.data)


def read_object(cc: ClusterClient, kind: str, namespace: str, name: str) -> dict[str, Any]:
    """The object's `metadata` as the API server has it now: annotations, labels, resourceVersion, uid,
    managedFields. Raises KubeObjectError (status "gone", "unreachable", "forbidden", ...) when it cannot."""
    _check_kind(kind)
    what = _describe(kind, namespace, name)
    try:
        obj = _read_raw(cc, kind, namespace, name)
    except (ApiException, *_TRANSPORT_ERRORS) as exc:
        status, message = _classify(exc, cc.access.server, what, "get")
        raise KubeObjectError(status, message) from None
    return obj.get("metadata") or {}


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"annotations are written back to Services and Ingresses, not {kind or 'nothing'}")


def _check_changes(changes: Mapping[str, str | None]) -> None:
    if not changes:
        raise ValueError("no annotation changes to write")
    for key, value in changes.items():
        if not isinstance(key, str) or not key.startswith(PREFIXES):
            # The identity may patch whole Services; the portal itself only ever touches ExternalDNS's keys.
            raise ValueError(
                f"annotation `{key}` is not an ExternalDNS annotation "
                f"({' or '.join(PREFIXES)}); the portal writes back nothing else"
            )
        if value is not None and not isinstance(value, str):
            raise ValueError(f"annotation `{key}`: {value!r} is not a string; annotation values are strings")


def write_annotations(
    cc: ClusterClient,
    *,
    kind: str,
    namespace: str,
    name: str,
    resource_version: str,
    changes: Mapping[str, str | None],
) -> WriteResult:
    """Set (a string) or remove (None) ExternalDNS annotations of one Service or Ingress, only if it is still
    at `resource_version`; any other annotation, label or field is left as it is.

    Raises ValueError for a call that could never be right (another kind, a key outside the ExternalDNS
    prefixes, no resourceVersion: a merge patch without one would overwrite blindly); every answer of the
    cluster, or its silence, is a WriteResult.
    """
    _check_kind(kind)
    _check_changes(changes)
    if not resource_version:
        raise ValueError("a write-back needs the resourceVersion it was reviewed against; none was given")
    what = _describe(kind, namespace, name)
    server = cc.access.server
    api_class, _read, patch = _METHODS[kind]
    body = {"metadata": {"resourceVersion": resource_version, "annotations": dict(changes)}}
    try:
        response = getattr(api_class(cc.api), patch)(
            name,
            namespace,
            body,
            field_manager=FIELD_MANAGER,
            _content_type="application/merge-patch+json",
            _preload_content=False,
            _request_timeout=cc.timeout,
        )
        obj = json.loads(response.data)
    except (ApiException, *_TRANSPORT_ERRORS) as exc:
        if isinstance(exc, ApiException) and exc.status == 409:
            return _conflict(cc, kind, namespace, name, resource_version, changes)
        status, message = _classify(exc, server, what, "patch")
        log.info("write-back %s at %s: %s", what, server, status)
        return WriteResult(status, message=message)
    meta = obj.get("metadata") or {}
    after = meta.get("resourceVersion") or ""
    log.info("write-back %s at %s: written, resourceVersion %s -> %s", what, server, resource_version, after)
    return WriteResult(
        WRITTEN,
        resource_version_after=after,
        message=f"{what}: {_summary(changes)}.",
        annotations_after=_external_dns_only(meta.get("annotations")),
    )


def _summary(changes: Mapping[str, str | None]) -> str:
    parts = [f"set {k}={v}" if v is not None else f"removed {k}" for k, v in sorted(changes.items())]
    return "; ".join(parts)


def written_by_portal(meta: Mapping[str, Any], changes: Mapping[str, str | None]) -> bool:
    """Whether an object's annotations already are what `changes` would make them, by the portal's hand:
    every key set is owned by its field manager (managedFields), or, for removals only, it wrote last."""
    annotations = meta.get("annotations") or {}
    if not all(
        annotations.get(k) == v if v is not None else k not in annotations for k, v in changes.items()
    ):
        return False
    sets = [k for k, v in changes.items() if v is not None]
    if sets:
        return all(managed_fields_owner(meta, k) == FIELD_MANAGER for k in sets)
    last = last_change(meta)
    return last is not None and FIELD_MANAGER in last.managers


def _conflict(
    cc: ClusterClient,
    kind: str,
    namespace: str,
    name: str,
    resource_version: str,
    changes: Mapping[str, str | None],
) -> WriteResult:
    """409: the object changed after `resource_version`. Nothing was written; say who changed it (unless the
    portal itself wrote exactly these changes: then it is written)."""
    what = _describe(kind, namespace, name)
    try:
        meta = read_object(cc, kind, namespace, name)
    except KubeObjectError as exc:
        if exc.status == GONE:
            return WriteResult(GONE, message=f"{what} was deleted after the portal read it; nothing written.")
        return WriteResult(
            CONFLICT,
            message=(
                f"{what} changed in the cluster after the portal read it (resourceVersion "
                f"{resource_version}); nothing was written. Who changed it could not be read: {exc.message}"
            ),
        )
    current = meta.get("resourceVersion") or ""
    last = last_change(meta)
    annotations = meta.get("annotations") or {}
    if written_by_portal(meta, changes):
        # It holds these very values, the portal's own: an earlier pass of this write-back wrote them and its
        # worker stopped before recording it. Nothing is sent, so nothing of anyone else's is overwritten.
        log.info("write-back %s: already written by the portal (resourceVersion %s)", what, current)
        return WriteResult(
            WRITTEN,
            resource_version_after=current,
            message=f"{what}: {_summary(changes)} (already written by an earlier pass).",
            annotations_after=_external_dns_only(annotations),
        )
    changed_by = str(last) if last else ""
    by = f" by {changed_by}" if changed_by else ""
    log.info("write-back %s: conflict, resourceVersion %s is now %s%s", what, resource_version, current, by)
    return WriteResult(
        CONFLICT,
        resource_version_after=current,
        message=(
            f"{what} was changed in the cluster{by} after the portal read it (resourceVersion "
            f"{resource_version}, now {current}); nothing was written. Review the change against the "
            "object as it is now."
        ),
        changed_by=changed_by,
        annotations_after=_external_dns_only(meta.get("annotations")),
    )
