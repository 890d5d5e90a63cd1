"""The traffic-policy editor's forms: the routing policy, one part per cluster, the failover health check.

Django forms only parse what a person typed (a weight that is not a number is an error on that field). The
rules of a policy (weights 0..255, exactly one primary, a region per cluster, Route53's own rules) are
records.traffic's; their errors come back from the preview, each on its field. `EditorForms` holds the three
forms and knows, for every field the page shows, which errors belong next to it (`slot_errors`): the page
renders them there, and the preview's htmx fragment swaps the same slots out of band while a person types.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django import forms
from django.core.validators import validate_slug

from records.geo_names import AWS_REGION_NAMES, CONTINENTS, COUNTRIES, US_SUBDIVISIONS
from records.models import Zone
from records.traffic import (
    DEFAULT_LOCATION,
    FAILOVER,
    KIND_LABELS,
    KINDS,
    PRIMARY,
    SECONDARY,
    WEIGHTED,
    ClusterShare,
    FieldError,
    TrafficPolicy,
    health_check_for,
    percentages,
)

KIND_HELP = {
    "round-robin": "every cluster's addresses in one record set; resolvers get them all",
    "weighted": "each cluster answers its share of the queries",
    "failover": "the primary answers while its health check passes, else the secondary",
    "latency": "each resolver gets the cluster in the AWS region closest to it",
    "geolocation": "each resolver gets the cluster for its location",
}
HC_FIELDS = (
    "protocol",
    "target",
    "port",
    "resource_path",
    "host_header",
    "request_interval",
    "failure_threshold",
)
# HealthCheckSpec's field names -> the form's (the form asks for one target: an address or a domain name).
_HC_SPEC_FIELD = {"ip_address": "target", "fully_qualified_domain_name": "target"}
EQUAL_WEIGHT = 50


def _choices(pairs: Mapping[str, str], label: str) -> list[tuple[str, str]]:
    return [("", label), *((code, f"{code} · {name}") for code, name in pairs.items())]


REGION_CHOICES = _choices(dict(sorted(AWS_REGION_NAMES.items())), "choose a region")
CONTINENT_CHOICES = _choices(CONTINENTS, "no continent")
COUNTRY_CHOICES = [
    ("", "no country"),
    (DEFAULT_LOCATION, "default location (everyone else)"),
    *((code, f"{code} · {name}") for code, name in sorted(COUNTRIES.items(), key=lambda kv: kv[1])),
]
SUBDIVISION_CHOICES = _choices(US_SUBDIVISIONS, "no subdivision (US states only)")


class PolicyForm(forms.Form):
    kind = forms.ChoiceField(
        label="Routing policy",
        choices=[(k, KIND_LABELS[k].capitalize()) for k in KINDS],
        widget=forms.RadioSelect,
    )
    ttl = forms.IntegerField(
        label="TTL (seconds)",
        required=False,
        help_text="How long resolvers keep the answer; empty keeps each object's TTL as it is.",
        widget=forms.NumberInput(attrs={"min": 0, "inputmode": "numeric"}),
    )
    zone = forms.ModelChoiceField(
        queryset=Zone.objects.filter(enabled=True),
        widget=forms.HiddenInput,
        error_messages={
            "required": "No imported zone holds this name: import its zone (Zones) to propose a policy.",
            "invalid_choice": "That zone is not imported or not enabled any more: reload the page.",
        },
    )
    # The clusters the page was built for, in its order (the preview checks them against those serving).
    clusters = forms.CharField(widget=forms.HiddenInput)

    def __init__(self, *args: Any, hostname: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.hostname = hostname

    def clean_zone(self) -> Zone:
        zone = self.cleaned_data["zone"]
        apex = zone.name.rstrip(".")
        if not (self.hostname == apex or self.hostname.endswith("." + apex)):
            raise forms.ValidationError(f"Zone {zone.display_name} does not hold {self.hostname}.")
        return zone

    def clean_clusters(self) -> list[str]:
        names = [n for n in self.cleaned_data["clusters"].split(",") if n]
        for name in names:
            validate_slug(name)
        return names


class ShareForm(forms.Form):
    """One cluster's part; the prefix is the cluster's name (a slug), so fields read `rke2-dc1-weight`."""

    enabled = forms.BooleanField(label="Takes part", required=False)
    weight = forms.IntegerField(
        label="Weight",
        required=False,
        widget=forms.NumberInput(attrs={"min": 0, "max": 255, "inputmode": "numeric", "class": "weight"}),
    )
    role = forms.ChoiceField(
        label="Role",
        required=False,
        choices=[("", "choose"), (PRIMARY, "Primary"), (SECONDARY, "Secondary")],
    )
    region = forms.ChoiceField(label="AWS region", required=False, choices=REGION_CHOICES)
    continent = forms.ChoiceField(label="Continent", required=False, choices=CONTINENT_CHOICES)
    country = forms.ChoiceField(label="Country", required=False, choices=COUNTRY_CHOICES)
    subdivision = forms.ChoiceField(label="Subdivision", required=False, choices=SUBDIVISION_CHOICES)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # A value the clusters carry that the lists lack stays selectable: the page never drops it silently.
        for name in ("region", "continent", "country", "subdivision"):
            value = self.data.get(self.add_prefix(name)) if self.is_bound else self.initial.get(name)
            f = self.fields[name]
            if value and value not in dict(f.choices):
                f.choices = [*f.choices, (value, f"{value} (as the clusters carry it)")]

    def share(self, cluster: str) -> ClusterShare:
        d = self.cleaned_data
        return ClusterShare(
            cluster=cluster,
            enabled=d["enabled"],
            weight=d["weight"],
            role=d["role"],
            region=d["region"],
            continent=d["continent"],
            country=d["country"],
            subdivision=d["subdivision"],
        )


class HealthCheckForm(forms.Form):
    protocol = forms.ChoiceField(choices=[("HTTP", "HTTP"), ("HTTPS", "HTTPS"), ("TCP", "TCP")])
    target = forms.CharField(
        label="Target: IP address or domain name",
        required=False,
        help_text="Route53's checkers probe it from the internet; empty means no health check.",
    )
    port = forms.IntegerField(required=False, widget=forms.NumberInput(attrs={"min": 1, "max": 65535}))
    resource_path = forms.CharField(
        label="Path", required=False, widget=forms.TextInput({"placeholder": "/"})
    )
    host_header = forms.CharField(
        label="Host header", required=False, help_text="For an IP address target over HTTP or HTTPS."
    )
    request_interval = forms.TypedChoiceField(
        label="Interval", coerce=int, choices=[(30, "every 30 s (standard)"), (10, "every 10 s (fast)")]
    )
    failure_threshold = forms.TypedChoiceField(
        label="Failure threshold",
        coerce=int,
        choices=[(n, f"{n} failed check{'s' if n > 1 else ''}") for n in range(1, 11)],
    )

    def spec(self) -> dict[str, Any] | None:
        """HealthCheckSpec's fields, or None when no target is given (no health check)."""
        d = self.cleaned_data
        target = (d.get("target") or "").strip()
        if not target:
            return None
        try:
            ipaddress.ip_address(target)
        except ValueError:
            where = {"fully_qualified_domain_name": target}
        else:
            where = {"ip_address": target}
        port = d.get("port")
        if port is None:
            port = 443 if d["protocol"] == "HTTPS" else 80
        return {
            "protocol": d["protocol"],
            "port": port,
            **where,
            "host_header": d.get("host_header") or "",
            "resource_path": d.get("resource_path") or "",
            "request_interval": d["request_interval"],
            "failure_threshold": d["failure_threshold"],
        }


@dataclass
class Initial:
    """What the editor starts from: the policy the clusters ask for, and guesses for fields it lacks."""

    policy: TrafficPolicy
    zone_id: int | None
    regions: dict[str, str] = field(default_factory=dict)  # cluster -> a region guessed from its labels
    health_check: dict[str, Any] | None = None  # the last one proposed for the name, if any
    targets: dict[str, str] = field(default_factory=dict)  # cluster -> its first target (health check)


def initial_values(start: Initial) -> tuple[dict, dict[str, dict], dict]:
    """Initial data of the policy form, each cluster's form and the health check form."""
    policy = start.policy
    roles = {s.cluster: s.role for s in policy.shares}
    if not any(roles.values()) and policy.shares:  # no failover yet: suggest the first as primary
        roles = {s.cluster: "" for s in policy.shares}
        roles[policy.shares[0].cluster] = PRIMARY
        if len(policy.shares) > 1:
            roles[policy.shares[1].cluster] = SECONDARY
    main = {
        "kind": policy.kind,
        "ttl": policy.ttl or None,
        "zone": start.zone_id,
        "clusters": ",".join(s.cluster for s in policy.shares),
    }
    shares = {
        s.cluster: {
            "enabled": s.enabled,
            "weight": s.weight if s.weight is not None else EQUAL_WEIGHT,
            "role": roles[s.cluster],
            "region": s.region or start.regions.get(s.cluster, ""),
            "continent": s.continent,
            "country": s.country,
            "subdivision": s.subdivision,
        }
        for s in policy.shares
    }
    primary = next((c for c, r in roles.items() if r == PRIMARY), "")
    hc = {"protocol": "HTTP", "port": 80, "request_interval": 30, "failure_threshold": 3}
    if start.health_check:
        spec = start.health_check
        hc.update({k: v for k, v in spec.items() if k in HC_FIELDS})
        hc["target"] = spec.get("ip_address") or spec.get("fully_qualified_domain_name") or ""
    else:
        hc["target"] = start.targets.get(primary, "")
    return main, shares, hc


def apply_preset(data: Mapping[str, Any], preset: str) -> dict[str, Any]:
    """The form data with a preset's weights: "equal", "main:<cluster>" (it takes 80 %), "canary:<cluster>"
    (it takes 5 %) or "drain:<cluster>" (weight 0). Only clusters that take part share the weights."""
    out = {k: data.get(k) for k in data}
    clusters = [c for c in str(data.get("clusters") or "").split(",") if c]
    taking = [c for c in clusters if out.get(f"{c}-enabled")]
    action, _, target = preset.partition(":")
    others = [c for c in taking if c != target]
    weights: dict[str, int] = {}
    if action == "equal":
        weights = dict.fromkeys(taking, EQUAL_WEIGHT)
    elif action in ("main", "canary") and target in taking and others:
        n = len(others)
        if action == "main":  # target 4 parts per other cluster's 1 part: 80/20 however many there are
            k = max(1, min(20, 255 // (4 * n)))
            weights = {target: 4 * n * k, **dict.fromkeys(others, k)}
        else:  # target 1 part per 19 parts of each other: 5/95
            weights = {target: 5 * n, **dict.fromkeys(others, 95)}
    elif action == "drain" and target in taking:
        weights = {target: 0}
        for c in others:
            if not str(out.get(f"{c}-weight") or "").strip().isdigit():
                weights[c] = EQUAL_WEIGHT
    if not weights:
        return out
    out["kind"] = WEIGHTED
    for cluster, weight in weights.items():
        out[f"{cluster}-weight"] = str(weight)
    return out


def error_slot(key: str) -> str:
    """The id of the element holding the errors of `key` ("rke2-dc1.weight" -> "err-rke2-dc1-weight")."""
    return "err-" + ("all" if key == "__all__" else key.replace(".", "-").replace("_", "-"))


@dataclass
class Row:
    """One cluster's fields as the page shows them."""

    cluster: str
    form: ShareForm
    percent: str  # "80.0 %", "left out", or "" when the weight is not a number
    errors: dict[str, list[str]]  # enabled, weight, role, region, location


class EditorForms:
    """The editor's three forms, bound to a POST or filled from `Initial`."""

    def __init__(self, hostname: str, data: Mapping[str, Any] | None = None, start: Initial | None = None):
        self.hostname = hostname
        if data is None:
            assert start is not None  # noqa: S101 (a programming error, not input)
            main, shares, hc = initial_values(start)
            self.main = PolicyForm(initial=main, hostname=hostname)
            self.clusters = [s.cluster for s in start.policy.shares]
            self.shares = {c: ShareForm(initial=shares[c], prefix=c) for c in self.clusters}
            self.hc = HealthCheckForm(initial=hc, prefix="hc")
        else:
            self.main = PolicyForm(data, hostname=hostname)
            self.clusters = [c for c in str(data.get("clusters") or "").split(",") if _is_slug(c)]
            self.shares = {c: ShareForm(data, prefix=c) for c in self.clusters}
            self.hc = HealthCheckForm(data, prefix="hc")
        self._hc_problems: dict[str, list[str]] | None = None

    @property
    def bound(self) -> bool:
        return self.main.is_bound

    def forms_valid(self) -> bool:
        """Every form's own fields are valid: the policy can be previewed (the preview then says what else
        is wrong, each problem on its field, the health check's among them)."""
        return all([f.is_valid() for f in (self.main, self.hc, *self.shares.values())])

    def is_valid(self) -> bool:
        return self.forms_valid() and not self.hc_problems()

    def policy(self) -> TrafficPolicy:
        d = self.main.cleaned_data
        return TrafficPolicy(
            hostname=self.hostname,
            kind=d["kind"],
            shares=tuple(self.shares[c].share(c) for c in d["clusters"] if c in self.shares),
            ttl=d.get("ttl") or 0,
        )

    def zone_id(self) -> int | None:
        if self.bound:
            zone = self.main.cleaned_data.get("zone") if hasattr(self.main, "cleaned_data") else None
            return zone.id if zone else None
        return self.main.initial.get("zone")

    def kind(self) -> str:
        return str(self.main["kind"].value() or "")

    def health_check(self) -> dict[str, Any] | None:
        """The health check to propose: only a failover primary gets one."""
        if not self.bound or not self.hc.is_valid() or not self.main.is_valid():
            return None
        if self.kind() != FAILOVER or not all(f.is_valid() for f in self.shares.values()):
            return None
        if not health_check_for(self.policy()):
            return None
        return self.hc.spec()

    def hc_problems(self) -> dict[str, list[str]]:
        """The health check's problems by form field (HealthCheckSpec's rules), when one is proposed."""
        if self._hc_problems is None:
            from records.providers.base import HealthCheckSpec

            self._hc_problems = {}
            spec = self.health_check()
            if spec is not None:
                # the rules of the zone's provider: Route53 checks from the internet, PowerDNS from inside
                zone = self.main.cleaned_data.get("zone")
                check = HealthCheckSpec(**spec)
                if zone is not None:
                    from records.services import provider_class

                    problems = provider_class(zone.account).health_check_problems(check)
                else:
                    problems = check.validate()
                for p in problems:
                    name = _HC_SPEC_FIELD.get(p.field, p.field)
                    self._hc_problems.setdefault(name, []).append(p.message)
        return self._hc_problems

    def slot_errors(self, errors: Sequence[FieldError] = ()) -> dict[str, list[str]]:
        """Every error slot of the page (empty ones too: a swap clears what was fixed), with its errors:
        the forms' own, the health check's and the preview's `errors`."""
        slots: dict[str, list[str]] = {k: [] for k in ("__all__", "kind", "ttl", "zone", "health_check")}
        for c in self.clusters:
            for f in ("enabled", "weight", "role", "region", "location"):
                slots[f"{c}.{f}"] = []
        for f in HC_FIELDS:
            slots[f"hc.{f}"] = []
        if self.bound:
            for name, messages in self.main.errors.items():
                slots["__all__" if name in ("clusters", "__all__") else name].extend(messages)
            for c, form in self.shares.items():
                for name, messages in form.errors.items():
                    short = "location" if name in ("continent", "country", "subdivision") else name
                    slots.setdefault(f"{c}.{short}", []).extend(messages)
            for name, messages in self.hc.errors.items():
                slots.setdefault(f"hc.{name}", []).extend(messages)
            placed = set()
            for name, messages in self.hc_problems().items():
                slots.setdefault(f"hc.{name}", []).extend(messages)
                placed.update(messages)
            for e in errors:
                if e.field == "health_check" and e.message in placed:
                    continue  # already next to the health check field it is about
                slots.setdefault(e.field, []).append(e.message)
        return slots

    def rows(self, slots: Mapping[str, list[str]]) -> list[Row]:
        pct = self.percentages()
        rows = []
        for c in self.clusters:
            errors = {f: list(slots.get(f"{c}.{f}", [])) for f in ("enabled", "weight", "role", "region")}
            errors["location"] = list(slots.get(f"{c}.location", []))
            rows.append(Row(c, self.shares[c], pct.get(c, ""), errors))
        return rows

    def weights(self) -> dict[str, int]:
        """The weights typed for the clusters that take part (those that are whole numbers 0..255)."""
        out = {}
        for c, form in self.shares.items():
            if not _truthy(form["enabled"].value()):
                continue
            raw = str(form["weight"].value() if form["weight"].value() is not None else "").strip()
            if raw.isdigit() and int(raw) <= 255:
                out[c] = int(raw)
        return out

    def percentages(self) -> dict[str, str]:
        """cluster -> its share as shown next to its weight: "80.0 %", "left out", or ""."""
        weights = self.weights()
        shares = percentages(weights)
        out = {}
        for c, form in self.shares.items():
            if not _truthy(form["enabled"].value()):
                out[c] = "left out"
            elif c in shares:
                out[c] = f"{shares[c]:.1f} %"
            else:
                out[c] = ""
        return out

    def split(self) -> tuple[list[str], list[float]]:
        """The intended split for the chart: clusters that take part and their percentages."""
        weights = self.weights()
        shares = percentages(weights)
        labels = [c for c in self.clusters if c in shares]
        return labels, [shares[c] for c in labels]


def _truthy(value: Any) -> bool:
    return value not in (None, False, "", "false", "off", "0")


def _is_slug(name: str) -> bool:
    try:
        validate_slug(name)
    except forms.ValidationError:
        return False
    return bool(name)
