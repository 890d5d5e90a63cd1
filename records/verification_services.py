"""Services of verification: where to ask, what the nameservers should answer, and the intended split of a
hostname (for "Measure the split") and per cluster (for "Probe over HTTP"). The jobs that ask the nameservers
are in records.jobs_verify."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import transaction

from dnsportal import queue
from dnsportal.audit import audit_record
from dnsportal.errors import PortalError
from records.models import Zone, ZoneRecord


def zone_nameservers(zone: Zone, *, delegation: Iterable[str] | None = None) -> list[Any]:
    """Where to ask: the zone's override (host:port, for on-prem servers and tests) or the provider's
    delegation set (Route53's four awsdns servers), resolved to addresses. `delegation`: the provider's
    nameservers when the caller has them already (the drift check's GetHostedZone), saving the call."""
    from records.verify import resolve_nameservers

    if zone.nameserver_override.strip():
        entries = [e.strip() for e in zone.nameserver_override.split(",") if e.strip()]
    elif zone.account.endpoint_url and not zone.account.is_powerdns:
        # Not AWS itself (moto, a compatible API): its delegation set names servers that do not exist.
        # (A PowerDNS account's URL is its API; its provider names the DNS servers to ask.)
        raise ValueError(
            f"{zone} is served through {zone.account.endpoint_url}, whose nameservers cannot be asked: "
            "set the zone's nameserver override (host:port) to verify it."
        )
    elif delegation is not None:
        entries = list(delegation)
    else:
        from records.services import provider_for

        entries = provider_for(zone.account).nameservers(zone.provider_zone_id)
    return resolve_nameservers(entries)


def expected_rrsets(zone: Zone, *, names: Iterable[str] | None = None) -> list[Any]:
    """What the nameservers should answer for the records the portal owns (or, with `names`, for those
    names): one ExpectedRRset per (name, type); routed record sets become "one of" their sets."""
    from records.verify import ExpectedRRset

    rows = ZoneRecord.objects.filter(zone=zone, ownership=ZoneRecord.Ownership.OWNED)
    if names is not None:
        rows = rows.filter(name__in=[n if n.endswith(".") else n + "." for n in names])
    grouped: dict[tuple[str, str], list[ZoneRecord]] = {}
    for row in rows:
        if "AliasTarget" in row.data:
            continue  # an alias answers with its target's addresses, which the zone does not hold
        grouped.setdefault((row.name, row.type), []).append(row)
    out = []
    for (name, rtype), records in sorted(grouped.items()):
        ttl = records[0].data.get("TTL")
        if len(records) == 1 and not records[0].set_identifier:
            out.append(ExpectedRRset(name, rtype, frozenset(records[0].values), ttl=ttl))
        else:
            out.append(ExpectedRRset.one_of(name, rtype, [r.values for r in records], ttl=ttl))
    return out


def intended_split(
    zone: Zone, hostname: str, rtype: str = "A"
) -> tuple[dict[str, list[str]], dict[str, float], str]:
    """(values per label, intended share per label, key) for a hostname: weighted record sets split by
    weight (key "answer": each answer is one set); one record set with several values splits evenly by first
    position (key "first": round robin, what most clients use)."""
    name = hostname if hostname.endswith(".") else hostname + "."
    rows = list(
        ZoneRecord.objects.filter(zone=zone, name=name.lower(), type=rtype).exclude(
            ownership=ZoneRecord.Ownership.REGISTRY
        )
    )
    if not rows:
        raise PortalError(f"{hostname} has no {rtype} record in {zone} to measure.")
    if len(rows) == 1 and not rows[0].set_identifier:
        values = rows[0].values
        return {v: [v] for v in values}, {v: 1 / len(values) for v in values}, "first"
    weights = {r.set_identifier: float(r.data.get("Weight", 1)) for r in rows}
    total = sum(weights.values()) or 1.0
    # Route53: all weights 0 means every set equally (route53.md)
    shares = {k: (w / total if sum(weights.values()) else 1 / len(weights)) for k, w in weights.items()}
    # the largest share first, so the verdict reads as people say it: "consistent with 80/20"
    shares = dict(sorted(shares.items(), key=lambda kv: (-kv[1], kv[0])))
    return {r.set_identifier: r.values for r in rows}, shares, "answer"


@transaction.atomic
def distribution_request(*, actor: Any, zone_id: int, hostname: str) -> None:
    from records.models import Verification

    zone = Zone.objects.get(id=zone_id)
    intended_split(zone, hostname)  # refuse at once, with the reason, when there is nothing to measure
    # The row exists from the request on, so the page can show "measuring" and follow it.
    v = Verification.objects.create(
        zone=zone,
        kind=Verification.Kind.DISTRIBUTION,
        hostname=hostname.lower().rstrip("."),
        requested_by=actor,
    )
    audit_record(actor=actor, action="verification.request", obj=zone, after={"hostname": v.hostname})
    queue.enqueue("hostname_distribution", actor=actor, verification_id=v.id)


def probe_plan(zone: Zone, hostname: str) -> tuple[dict[str, float], dict[str, str]]:
    """(intended share per cluster, marker per cluster) for an HTTP probe of a hostname.

    The DNS split (`intended_split`) mapped to clusters: a weighted record set to the clusters whose
    endpoints carry its set identifier, a round-robin value to the clusters whose endpoints publish it as a
    target. Every known cluster's marker is its name, which the demo's pages (and a team's own) show, so a
    cluster that should get nothing is named too when it serves.
    """
    from clusters.models import Cluster
    from records.models import Endpoint
    from records.probe import cluster_shares
    from records.verify import normalize_value

    sets, shares, key = intended_split(zone, hostname)
    name = hostname.lower().rstrip(".")
    owners: dict[str, set[str]] = {label: set() for label in sets}
    by_value = {normalize_value("A", v): v for v in sets} if key == "first" else {}
    rows = Endpoint.objects.filter(dns_name=name, record_type="A").values_list(
        "cluster__name", "set_identifier", "targets"
    )
    for cluster, set_identifier, targets in rows:
        if key == "answer":
            owners.get(set_identifier, set()).add(cluster)
            continue
        for target in targets:
            try:
                label = by_value.get(normalize_value("A", target))
            except ValueError:
                continue  # not an address: discovery shows the endpoint's error, the probe has no use for it
            if label is not None:
                owners[label].add(cluster)
    markers = {c: c for c in Cluster.objects.values_list("name", flat=True)}
    if not markers:
        raise PortalError("No cluster is registered: the probe counts responses by the cluster they name.")
    return cluster_shares(shares, owners), markers


def probe_parameters(*, n: int, port: int, path: str) -> dict[str, str]:
    """What is wrong with a probe's parameters, per field ("n", "port", "path"): the form and the service
    refuse alike."""
    from records.probe import path_problem, port_problem, requests_problem

    problems = {"n": requests_problem(n), "port": port_problem(port), "path": path_problem(path)}
    return {f: p for f, p in problems.items() if p}


@transaction.atomic
def probe_request(*, actor: Any, zone_id: int, hostname: str, n: int, port: int, path: str) -> Any:
    """Request an HTTP probe of a hostname: `n` requests, each resolved on the zone's nameservers and sent to
    the first address on `port`, counted per cluster against the intended split (job `hostname_probe`)."""
    from records.models import Verification

    if problems := probe_parameters(n=n, port=port, path=path):
        raise PortalError("; ".join(problems.values()) + ".")
    zone = Zone.objects.get(id=zone_id)
    probe_plan(zone, hostname)  # refuse at once, with the reason, when there is nothing to probe
    request = {"n": n, "port": port, "path": path}
    v = Verification.objects.create(
        zone=zone,
        kind=Verification.Kind.PROBE,
        hostname=hostname.lower().rstrip("."),
        requested_by=actor,
        report={"request": request},  # the job reads what to send from the row
    )
    audit_record(
        actor=actor,
        action="verification.request",
        obj=zone,
        after={"hostname": v.hostname, "kind": v.kind, **request},
    )
    queue.enqueue("hostname_probe", actor=actor, verification_id=v.id)
    return v
