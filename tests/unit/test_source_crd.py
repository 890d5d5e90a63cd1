"""clusters.source_crd: a DNSEndpoint in, the endpoints ExternalDNS's crd source reads out.

Expected endpoints are `name TYPE target,target [ttl=N] [sid=X] [property=value...]` strings (order-free),
or the words of the skip reason. Facts: external-dns v0.21.0 source/crd.go.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from clusters.source_crd import dnsendpoint_endpoints, observed_generation_status
from clusters.source_options import SourceOptions
from clusters.sources import compute_all, endpoints_for, read_kinds


def item(name: str = "app.example.com", rtype: str = "A", *targets: str, **extra: Any) -> dict[str, Any]:
    return {"dnsName": name, "recordType": rtype, "targets": list(targets or ("192.0.2.1",)), **extra}


def dnsendpoint(
    *items: dict[str, Any],
    ns: str = "team",
    labels: dict[str, str] | None = None,
    ann: dict[str, str] | None = None,
    kind: str = "DNSEndpoint",
) -> dict[str, Any]:
    return {
        "apiVersion": "externaldns.k8s.io/v1alpha1",
        "kind": kind,
        "metadata": {"name": "hand", "namespace": ns, "labels": labels or {}, "annotations": ann or {}},
        "spec": {"endpoints": list(items)},
    }


@dataclass
class Case:
    id: str
    obj: dict[str, Any]
    options: dict[str, Any] = field(default_factory=dict)
    want: set[str] = field(default_factory=set)
    skipped: str = ""
    warning: str = ""


def shown(result) -> set[str]:
    out = set()
    for e in result.endpoints:
        text = f"{e.dns_name} {e.record_type} {','.join(e.targets)}"
        text += f" ttl={e.ttl}" if e.ttl else ""
        text += f" sid={e.set_identifier}" if e.set_identifier else ""
        text += "".join(f" {k}={v}" for k, v in e.provider_specific)
        out.add(text)
    return out


CASES = [
    Case("one A record", dnsendpoint(item()), want={"app.example.com A 192.0.2.1"}),
    Case(
        "several items, several types",
        dnsendpoint(
            item(),
            item("app.example.com", "AAAA", "2001:db8::1"),
            item("www.example.com", "CNAME", "app.example.com"),
        ),
        want={
            "app.example.com A 192.0.2.1",
            "app.example.com AAAA 2001:db8::1",
            "www.example.com CNAME app.example.com",
        },
    ),
    Case(
        "TXT targets are free text",
        dnsendpoint(item("app.example.com", "TXT", "v=spf1 -all")),
        want={"app.example.com TXT v=spf1 -all"},
    ),
    Case(
        "MX target may end in a dot",
        dnsendpoint(item("example.com", "MX", "10 mail.example.com.")),
        want={"example.com MX 10 mail.example.com."},
    ),
    Case(
        "CNAME target with a trailing dot is fine",
        dnsendpoint(item("www.example.com", "CNAME", "lb.example.net.")),
        want={"www.example.com CNAME lb.example.net."},
    ),
    Case(
        "A target with a trailing dot skips that item",
        dnsendpoint(item("bad.example.com", "A", "192.0.2.1."), item()),
        want={"app.example.com A 192.0.2.1"},
        warning="192.0.2.1",
    ),
    Case(
        "SRV target with a trailing dot skips it",
        dnsendpoint(item("_sip._tcp.example.com", "SRV", "10 5 5060 sip.example.com.")),
        skipped="no item",
        warning="sip.example.com",
    ),
    Case(
        "NAPTR target without a trailing dot skips it",
        dnsendpoint(item("example.com", "NAPTR", '100 10 "S" "SIP+D2U" "" _sip._udp.example.com')),
        skipped="no item",
    ),
    Case("recordTTL", dnsendpoint(item(recordTTL=300)), want={"app.example.com A 192.0.2.1 ttl=300"}),
    Case(
        "min-ttl fills an unset TTL",
        dnsendpoint(item()),
        options={"min-ttl": "60s"},
        want={"app.example.com A 192.0.2.1 ttl=60"},
    ),
    Case(
        "setIdentifier and providerSpecific",
        dnsendpoint(item(setIdentifier="eu", providerSpecific=[{"name": "aws/weight", "value": "10"}])),
        want={"app.example.com A 192.0.2.1 sid=eu aws/weight=10"},
    ),
    Case(
        "two items with one name merge their targets",
        dnsendpoint(item("app.example.com", "A", "192.0.2.2"), item()),
        want={"app.example.com A 192.0.2.1,192.0.2.2"},
    ),
    Case(
        "dnsName is lowered and loses its trailing dot",
        dnsendpoint(item("App.Example.com.")),
        want={"app.example.com A 192.0.2.1"},
    ),
    Case("empty spec.endpoints", dnsendpoint(), skipped="spec.endpoints is empty"),
    Case(
        "item without targets",
        dnsendpoint({"dnsName": "app.example.com", "recordType": "A", "targets": []}),
        skipped="no item",
        warning="no targets",
    ),
    Case("null item is skipped", dnsendpoint(None, item()), want={"app.example.com A 192.0.2.1"}),  # type: ignore[arg-type]
    Case("namespace option", dnsendpoint(item()), options={"namespace": "other"}, skipped="namespace"),
    Case(
        "label-filter",
        dnsendpoint(item(), labels={"dns": "public"}),
        options={"label-filter": "dns=public"},
        want={"app.example.com A 192.0.2.1"},
    ),
    Case(
        "label-filter excludes",
        dnsendpoint(item()),
        options={"label-filter": "dns=public"},
        skipped="label-filter",
    ),
    Case(
        "annotation-filter excludes",
        dnsendpoint(item()),
        options={"annotation-filter": "team=web"},
        skipped="annotation-filter",
    ),
    Case(
        "domain-filter",
        dnsendpoint(item(), item("x.other.org")),
        options={"domain-filter": "example.com"},
        want={"app.example.com A 192.0.2.1"},
    ),
    Case(
        "controller annotation does not apply to DNSEndpoints",
        dnsendpoint(item(), ann={"external-dns.alpha.kubernetes.io/controller": "other"}),
        want={"app.example.com A 192.0.2.1"},
    ),
    Case(
        "a name with a 64-character label is not published",
        dnsendpoint(item("a" * 64 + ".example.com")),
        skipped="no item",
        warning="not published",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_dnsendpoint(case: Case) -> None:
    result = dnsendpoint_endpoints(case.obj, SourceOptions.from_mapping(case.options))
    assert result.ok
    assert shown(result) == case.want
    assert all(e.resource == "crd/team/hand" for e in result.endpoints)
    if case.skipped:
        assert case.skipped in (result.skipped_reason or ""), result.skipped_reason
    else:
        assert result.skipped_reason is None
    if case.warning:
        assert any(case.warning in w.message for w in result.warnings), result.warnings


def test_crd_source_kind_reads_another_kind() -> None:
    options = SourceOptions.from_mapping(
        {"source": "crd", "crd-source-apiversion": "dns.example.com/v1", "crd-source-kind": "Record"}
    )
    assert read_kinds(options) == {"Record"}
    (result,) = compute_all([dnsendpoint(item(), kind="Record"), dnsendpoint(item())], options)
    assert (result.kind, shown(result)) == ("Record", {"app.example.com A 192.0.2.1"})
    assert endpoints_for(dnsendpoint(item(), kind="Record"), options).resource == "crd/team/hand"


@pytest.mark.parametrize(
    ("generation", "status", "want"),
    [
        (3, {}, {"observedGeneration": 3}),
        (3, {"observedGeneration": 2}, {"observedGeneration": 3}),
        (3, {"observedGeneration": 3}, None),
        (None, {}, None),
    ],
)
def test_observed_generation_written_back_when_behind(generation, status, want) -> None:
    obj = dnsendpoint(item())
    if generation is not None:
        obj["metadata"]["generation"] = generation
    obj["status"] = status
    assert observed_generation_status(obj) == want
