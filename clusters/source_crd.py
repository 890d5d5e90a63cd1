"""Endpoints from ExternalDNS's `DNSEndpoint` custom resource, as its crd source reads them.

A DNSEndpoint (externaldns.k8s.io/v1alpha1, or the group/version and kind of --crd-source-apiversion and
--crd-source-kind) lists its records in spec.endpoints: dnsName, targets, recordType, setIdentifier,
recordTTL, providerSpecific [{name, value}]. Each item becomes one endpoint labelled `crd/<ns>/<name>`;
an item whose target is written wrongly for its type (a trailing dot on an A record, none on NAPTR) is
skipped, as ExternalDNS skips it, and the others publish. After reading, ExternalDNS writes the object's
metadata.generation to status.observedGeneration; `observed_generation_status` says what to write.

Facts: external-dns v0.21.0 source/crd.go (Endpoints, buildCacheOptions: namespace, label filter and the
annotation filter apply; the controller annotation and fqdn-template do not).

Pure: no Django, boto3 or Kubernetes import.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from clusters.annotations import Problem, check_dns_name, describe_object
from clusters.endpoints import ObjectResult, _kept_metadata, _meta, merge_endpoints, object_key
from clusters.source_options import SourceOptions
from records.endpoint import LABEL_RESOURCE, Endpoint

Obj = Mapping[str, Any]

GROUP = "externaldns.k8s.io"
KIND = "DNSEndpoint"
_NO_TARGET_FORMAT = ("TXT", "MX", "CNAME")  # crd.go: no dot rule on these targets


def _illegal_target(record_type: str, target: str) -> str | None:
    if record_type in _NO_TARGET_FORMAT:
        return None
    has_dot = target.endswith(".")
    if record_type == "NAPTR":
        return None if has_dot else target + "."
    return target.removesuffix(".") if has_dot else None


def _filtered(obj: Obj, ns: str, options: SourceOptions) -> str | None:
    meta = _meta(obj)
    if options.namespace and ns != options.namespace:
        return f"namespace `{ns}` is outside option namespace=`{options.namespace}`"
    if not options.label_selector.matches(meta.get("labels")):
        return f"labels do not match label-filter `{options.label_filter}`"
    if not options.annotation_selector.matches(meta.get("annotations")):
        return f"annotations do not match annotation-filter `{options.annotation_filter}`"
    return None


def dnsendpoint_endpoints(
    obj: Obj, options: SourceOptions | None = None, *, cluster: str = ""
) -> ObjectResult:
    """The endpoints one DNSEndpoint publishes, as ExternalDNS's crd source reads them. Never raises."""
    options = options or SourceOptions()
    ns, name = object_key(obj)
    kind = obj.get("kind") or options.crd_source_kind
    what = describe_object(kind, ns, name, cluster)
    resource = f"crd/{ns}/{name}"
    meta = _meta(obj)
    base: dict[str, Any] = {
        "kind": kind,
        "namespace": ns,
        "name": name,
        "resource": resource,
        "uid": meta.get("uid") or "",
        "resource_version": meta.get("resourceVersion") or "",
        **_kept_metadata(meta),
    }
    skip = _filtered(obj, ns, options)
    if skip is not None:
        return ObjectResult(**base, skipped_reason=skip)
    warnings: list[Problem] = []
    built: list[Endpoint] = []
    outside: list[str] = []
    items = (obj.get("spec") or {}).get("endpoints") or []
    for i, item in enumerate(items):
        where = f"spec.endpoints[{i}] of {what}"
        if not isinstance(item, Mapping):
            continue  # a null item: ExternalDNS skips it
        dns_name = str(item.get("dnsName") or "").strip().rstrip(".").lower()
        record_type = str(item.get("recordType") or "").upper()
        targets = [str(t) for t in item.get("targets") or []]
        reason = check_dns_name(dns_name) if dns_name else "no dnsName"
        if reason:
            warnings.append(Problem(f"{where}: {reason}; it is not published", value=dns_name))
            continue
        if not record_type:
            warnings.append(Problem(f"{where}: no recordType; it is not published"))
            continue
        bad = next(((t, fix) for t in targets if (fix := _illegal_target(record_type, t)) is not None), None)
        if bad is not None:
            warnings.append(
                Problem(
                    f"{where}: target `{bad[0]}` is written wrongly for a {record_type} record "
                    f"(use `{bad[1]}`); it is not published",
                    value=bad[0],
                )
            )
            continue
        if not targets:
            warnings.append(
                Problem(f"{where}: `{dns_name}` {record_type} has no targets; it is not published")
            )
            continue
        if not options.domain_allowed(dns_name):
            if dns_name not in outside:
                outside.append(dns_name)
            continue
        ttl = item.get("recordTTL") or 0
        props = [
            (str(p.get("name") or ""), str(p.get("value") or ""))
            for p in item.get("providerSpecific") or []
            if isinstance(p, Mapping) and p.get("name")
        ]
        built.append(
            Endpoint(
                dns_name=dns_name,
                record_type=record_type,
                targets=tuple(targets),
                ttl=int(ttl) if isinstance(ttl, int) and ttl > 0 else options.min_ttl,
                set_identifier=str(item.get("setIdentifier") or ""),
                provider_specific=tuple(sorted(props)),
                labels=((LABEL_RESOURCE, resource),),
                cluster=cluster,
            )
        )
    endpoints = tuple(merge_endpoints(built))
    reason = None
    if not endpoints:
        if outside:
            reason = f"every name is outside domain-filter/exclude-domains: {', '.join(outside)}"
        elif not items:
            reason = "spec.endpoints is empty"
        else:
            reason = "no item of spec.endpoints can be published"
    return ObjectResult(
        **base, endpoints=endpoints, warnings=tuple(dict.fromkeys(warnings)), skipped_reason=reason
    )


def observed_generation_status(obj: Obj) -> dict[str, Any] | None:
    """The status ExternalDNS writes back after reading a DNSEndpoint (status.observedGeneration set to
    metadata.generation), or None when it is already current."""
    generation = _meta(obj).get("generation")
    status = dict(obj.get("status") or {})
    if generation is None or status.get("observedGeneration") == generation:
        return None
    status["observedGeneration"] = generation
    return status
