"""The rows discovery stores: an object's and its endpoints' fields, and the write of a source's endpoints.

`replace_cluster` (a full list) and `store_object` (a watch event) store through the same functions, so a row
is the same whichever way it came.
"""

from __future__ import annotations

from typing import Any

from clusters.endpoints import ObjectResult, private_targets
from dnsportal.bulk import copy_insert


def endpoint_fields(ep: Any) -> dict[str, Any]:
    private = private_targets(ep)
    return {
        "targets": list(ep.targets),
        "ttl": ep.ttl,
        "properties": dict(ep.provider_specific),
        "labels": dict(ep.labels),
        "resource": ep.resource,
        "private_targets": private,
        "has_private_target": bool(private),
    }


# The stored fields of an endpoint row that discovery computes (the key fields aside).
ENDPOINT_FIELDS = (
    "targets",
    "ttl",
    "properties",
    "labels",
    "resource",
    "private_targets",
    "has_private_target",
)


# A new endpoint row: the key, first and last seen, then the computed fields.
ENDPOINT_COLUMNS = (
    "cluster",
    "source",
    "dns_name",
    "record_type",
    "set_identifier",
    "first_seen",
    "last_seen",
    *ENDPOINT_FIELDS,
)


def write_endpoints(
    cluster_id: int, existing: dict[tuple, Any], wanted: dict[tuple, dict[str, Any]], now: Any
) -> set[str]:
    """Turn the rows `existing` into `wanted` (both keyed (source id, name, type, set id); wanted maps to the
    `endpoint_fields` values): delete the gone, COPY the new in, bulk-update only what differs. Rows
    that did not change keep their id and first_seen. Returns the DNS names whose desired state changed."""
    from records.models import Endpoint

    changed = {key[1] for key in existing.keys() ^ wanted.keys()}
    Endpoint.objects.filter(id__in=[row.id for key, row in existing.items() if key not in wanted]).delete()
    create, update = [], []
    for key, fields in wanted.items():
        row = existing.get(key)
        if row is None:
            create.append((cluster_id, *key, now, now, *(fields[f] for f in ENDPOINT_FIELDS)))
        elif any(getattr(row, f) != v for f, v in fields.items()):
            for f, v in fields.items():
                setattr(row, f, v)
            row.last_seen = now
            update.append(row)
            changed.add(key[1])
    if create:
        copy_insert(Endpoint, ENDPOINT_COLUMNS, create)
    if update:
        Endpoint.objects.bulk_update(update, [*ENDPOINT_FIELDS, "last_seen"], batch_size=1000)
    return changed


# The stored fields of an object's row that discovery computes, in `object_fields`'s order.
OBJECT_FIELDS = (
    "uid",
    "resource_version",
    "annotation_prefix",
    "annotations",
    "gitops",
    "errors",
    "warnings",
    "skipped_reason",
)


def object_fields(result: ObjectResult) -> dict[str, Any]:
    return {
        "uid": result.uid,
        "resource_version": result.resource_version,
        "annotation_prefix": result.annotation_prefix,
        "annotations": dict(result.annotations),
        "gitops": result.gitops.as_dict() if result.gitops else {},
        "errors": [str(p) for p in result.errors],
        "warnings": [str(p) for p in result.warnings],
        "skipped_reason": result.skipped_reason or "",
    }
