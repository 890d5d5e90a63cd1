"""Per-cluster source options, named after ExternalDNS's flags so users can copy their ExternalDNS arguments.

`SourceOptions.from_mapping({"domain-filter": ["example.com"], "publish-internal-services": True})` validates
and raises a ValueError naming every bad option ("option `min-ttl`: `ten` is not a duration like 60s or 1m");
`to_mapping()` gives the JSON-ready form the Cluster row stores, and `from_mapping(to_mapping())` round-trips.
Keys may be written as the flag (`--domain-filter`), with dashes or with underscores.

Pure: no Django or Kubernetes import.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from clusters.annotations import check_dns_name
from clusters.fqdn_template import FqdnTemplate, TemplateError, parse_template
from clusters.go_values import parse_go_duration
from clusters.label_selector import Selector, parse_selector

SERVICE_TYPES = ("ClusterIP", "NodePort", "LoadBalancer", "ExternalName")
# ExternalDNS's --source values the portal reads; by default a cluster reads Services and Ingresses.
SOURCES = (
    "service",
    "ingress",
    "gateway-httproute",
    "gateway-grpcroute",
    "gateway-tlsroute",
    "gateway-tcproute",
    "gateway-udproute",
    "crd",
    "istio-gateway",
    "istio-virtualservice",
)
DEFAULT_SOURCES = ("service", "ingress")

# option name (ExternalDNS flag without "--") -> dataclass field
LIST_OPTIONS = ("source", "domain-filter", "exclude-domains", "ingress-class", "service-type-filter")
BOOL_OPTIONS = (
    "publish-internal-services",
    "publish-host-ip",
    "always-publish-not-ready-addresses",
    "expose-internal-ipv6",
    "exclude-unschedulable",
    "ignore-hostname-annotation",
    "ignore-ingress-tls-spec",
    "ignore-ingress-rules-spec",
    "combine-fqdn-annotation",
)
STR_OPTIONS = (
    "namespace",
    "annotation-filter",
    "label-filter",
    "fqdn-template",
    "gateway-name",
    "gateway-namespace",
    "gateway-label-filter",
    "crd-source-apiversion",
    "crd-source-kind",
)
DURATION_OPTIONS = ("min-ttl",)
OPTION_NAMES = STR_OPTIONS + LIST_OPTIONS + BOOL_OPTIONS + DURATION_OPTIONS

_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})


class SourceOptionsError(ValueError):
    """Every bad option at once, one sentence each in `problems` (str() joins them)."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def _attr(option: str) -> str:
    return option.replace("-", "_")


def _domain_matches(filters: tuple[str, ...], name: str) -> bool:
    # ExternalDNS's DomainFilter.matchFilter: a filter starting with "." matches subdomains only; otherwise
    # the
    # name itself or any subdomain of it.
    for f in filters:
        if f.startswith("."):
            if name.endswith(f):
                return True
        elif name == f or name.endswith("." + f):
            return True
    return False


@dataclass(frozen=True, slots=True)
class SourceOptions:
    """ExternalDNS's source flags for one cluster (defaults as ExternalDNS's).

    `min_ttl` is in seconds and fills TTLs the objects leave unset (Endpoint.WithMinTTL). The parsed selectors
    and template are derived fields, built once.
    """

    source: tuple[str, ...] = DEFAULT_SOURCES
    namespace: str = ""
    annotation_filter: str = ""
    label_filter: str = ""
    domain_filter: tuple[str, ...] = ()
    exclude_domains: tuple[str, ...] = ()
    ingress_class: tuple[str, ...] = ()
    service_type_filter: tuple[str, ...] = ()
    publish_internal_services: bool = False
    publish_host_ip: bool = False
    always_publish_not_ready_addresses: bool = False
    expose_internal_ipv6: bool = False
    exclude_unschedulable: bool = True
    ignore_hostname_annotation: bool = False
    ignore_ingress_tls_spec: bool = False
    ignore_ingress_rules_spec: bool = False
    fqdn_template: str = ""
    combine_fqdn_annotation: bool = False
    min_ttl: int = 0
    gateway_name: str = ""
    gateway_namespace: str = ""
    gateway_label_filter: str = ""
    crd_source_apiversion: str = "externaldns.k8s.io/v1alpha1"
    crd_source_kind: str = "DNSEndpoint"
    annotation_selector: Selector = field(init=False, repr=False, compare=False)
    label_selector: Selector = field(init=False, repr=False, compare=False)
    gateway_label_selector: Selector = field(init=False, repr=False, compare=False)
    template: FqdnTemplate | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Validate on construction too, so a SourceOptions can never hold a filter that does not parse.
        problems: list[str] = []
        for option, text in (
            ("annotation-filter", self.annotation_filter),
            ("label-filter", self.label_filter),
            ("gateway-label-filter", self.gateway_label_filter),
        ):
            try:
                # ExternalDNS reads --annotation-filter with metav1.ParseToLabelSelector: no `!=` there
                sel = parse_selector(text, not_equals=option != "annotation-filter")
            except ValueError as exc:
                problems.append(f"option `{option}`: {exc}")
            else:
                object.__setattr__(self, _attr(option).replace("_filter", "_selector"), sel)
        try:
            object.__setattr__(self, "template", parse_template(self.fqdn_template))
        except TemplateError as exc:
            problems.append(f"option `fqdn-template`: {exc}")
        for option in ("domain-filter", "exclude-domains"):
            for d in getattr(self, _attr(option)):
                reason = check_dns_name(d.lstrip("."), wildcard=False)
                if reason or d != d.lower().rstrip("."):
                    problems.append(
                        f"option `{option}`: `{d}` is not a domain ({reason or 'use lower case'})"
                    )
        for t in self.service_type_filter:
            if t not in SERVICE_TYPES:
                hint = next((s for s in SERVICE_TYPES if s.lower() == t.lower()), None)
                problems.append(
                    f"option `service-type-filter`: `{t}` is not a Service type"
                    + (f"; did you mean {hint}?" if hint else f" ({', '.join(SERVICE_TYPES)})")
                )
        for src in self.source:
            if src not in SOURCES:
                problems.append(
                    f"option `source`: `{src}` is not a source the portal reads ({', '.join(SOURCES)})"
                )
        if not self.source:
            problems.append("option `source`: name at least one source")
        if "/" not in self.crd_source_apiversion or not self.crd_source_kind:
            problems.append(
                "option `crd-source-apiversion`/`crd-source-kind`: give a group/version like "
                "externaldns.k8s.io/v1alpha1 and a kind like DNSEndpoint"
            )
        if self.min_ttl < 0:
            problems.append(f"option `min-ttl`: {self.min_ttl} is negative")
        if problems:
            raise SourceOptionsError(problems)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any] | None) -> SourceOptions:
        """Options from a JSON-like mapping keyed by ExternalDNS flag names; SourceOptionsError (a
        ValueError) lists every bad option, each named with its reason.

        Lists accept a list or a comma-separated string; booleans accept true/false (or yes/no, 1/0, on/off);
        `min-ttl` accepts a Go duration ("60s", "1m") or a number of seconds.
        """
        kwargs: dict[str, Any] = {}
        problems: list[str] = []
        for raw_key, value in (data or {}).items():
            option = str(raw_key).strip().lstrip("-").replace("_", "-")
            if option not in OPTION_NAMES:
                close = difflib.get_close_matches(option, OPTION_NAMES, n=1)
                hint = f"; did you mean `{close[0]}`?" if close else ""
                problems.append(f"option `{raw_key}` is not a source option{hint}")
                continue
            try:
                kwargs[_attr(option)] = _convert(option, value)
            except ValueError as exc:
                problems.append(str(exc))
        try:
            options = cls(**kwargs)
        except SourceOptionsError as exc:
            problems += exc.problems
        if problems:
            raise SourceOptionsError(problems)
        return options

    def to_mapping(self) -> dict[str, Any]:
        """Every option by its flag name, JSON-ready (lists as lists, min-ttl in seconds)."""
        out: dict[str, Any] = {}
        for option in OPTION_NAMES:
            value = getattr(self, _attr(option))
            out[option] = list(value) if isinstance(value, tuple) else value
        return out

    def changed(self) -> dict[str, Any]:
        """The options that differ from ExternalDNS's defaults, by flag name (for display)."""
        default = SourceOptions().to_mapping()
        return {k: v for k, v in self.to_mapping().items() if v != default[k]}

    def domain_allowed(self, name: str) -> bool:
        """Whether a record name passes domain-filter and exclude-domains (ExternalDNS's DomainFilter)."""
        if self.domain_filter and not _domain_matches(self.domain_filter, name):
            return False
        return not (self.exclude_domains and _domain_matches(self.exclude_domains, name))


def _convert(option: str, value: Any) -> Any:
    if option in LIST_OPTIONS:
        items: Iterable[Any]
        if value is None:
            items = ()
        elif isinstance(value, str):
            items = value.split(",")
        elif isinstance(value, (list, tuple)):
            items = value
        else:
            raise ValueError(f"option `{option}`: expected a list of strings, got {type(value).__name__}")
        out: list[str] = []
        for item in items:
            if not isinstance(item, str):
                raise ValueError(f"option `{option}`: `{item}` is not a string")
            item = item.strip()
            if option in ("domain-filter", "exclude-domains"):
                # ExternalDNS normalises filters: lower case, no trailing dot
                item = item.lower().rstrip(".")
            if item and item not in out:
                out.append(item)
        return tuple(out)
    if option in BOOL_OPTIONS:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        raise ValueError(f"option `{option}`: `{value}` is not true or false")
    if option in DURATION_OPTIONS:
        if isinstance(value, bool) or value is None:
            raise ValueError(f"option `{option}`: `{value}` is not a duration like 60s or 1m")
        if isinstance(value, int):
            seconds = value
        else:
            text = str(value).strip()
            if text.isdigit():
                seconds = int(text)
            else:
                try:
                    seconds = int(parse_go_duration(text) // 10**9)
                except ValueError:
                    raise ValueError(
                        f"option `{option}`: `{value}` is not a duration like 60s or 1m"
                    ) from None
        if seconds < 0:
            raise ValueError(f"option `{option}`: `{value}` is negative")
        return seconds
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValueError(f"option `{option}`: expected a string, got {type(value).__name__}")
    return value.strip() if option != "fqdn-template" else value


def option_fields() -> list[str]:
    """The dataclass fields that are options (for forms), in declaration order."""
    return [f.name for f in fields(SourceOptions) if f.init]
