"""The one small interface every DNS provider implements (Route53 now; PowerDNS for on-prem later).

A provider is built from plain configuration (no Django model) and talks to one account. Everything it returns
is plain data; every error it raises is a `ProviderError` whose `user_message` an operator can read and which
never carries a credential or a request body.
"""

from __future__ import annotations

import contextlib
import ipaddress
import re
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from records.plan import Change
from records.recordset import RecordSet


class ProviderError(Exception):
    """A provider call failed. `user_message` is safe to show and store; `applied` lists what got through.

    `code` is the provider's own error code when it gave one (Route53: "NoSuchHealthCheck"), so a caller can
    tell a refusal it expects from a failure without parsing the message.
    """

    def __init__(
        self, user_message: str, *, applied: Sequence[int] = (), retryable: bool = False, code: str = ""
    ) -> None:
        super().__init__(user_message)
        self.user_message = user_message
        self.applied = list(applied)
        self.retryable = retryable
        self.code = code


@dataclass(frozen=True)
class ZoneInfo:
    """A hosted zone as the provider lists it."""

    id: str  # Route53: "Z0123456789ABC" (without the "/hostedzone/" prefix)
    name: str  # FQDN with trailing dot, lower case
    private: bool
    record_count: int | None = None


@dataclass(frozen=True)
class ZoneSummary:
    """What one cheap call tells about a zone: its record set count (None: the provider does not say) and
    its authoritative nameservers (Route53: one GetHostedZone gives both)."""

    record_count: int | None
    nameservers: tuple[str, ...] = ()


@dataclass(frozen=True)
class ChangeGroupInput:
    """One unit that must be applied whole: a record change and its ownership TXT change(s).

    `index` is the caller's id for the group (the position in the plan, or a Change row's id), reported back
    in the result so the caller can mark each group applied or failed.
    """

    index: int
    changes: tuple[Change, ...]


@dataclass
class ApplyResult:
    """What an apply did, per group: applied ones, failed ones with the provider's message, change ids."""

    applied: list[int] = field(default_factory=list)
    failed: dict[int, str] = field(default_factory=dict)
    change_ids: list[str] = field(default_factory=list)
    calls: int = 0  # API requests made (ChangeResourceRecordSets + GetChange), for the economy figures

    @property
    def complete(self) -> bool:
        return not self.failed


# --- health checks ----------------------------------------------------------------------------------------

HEALTH_CHECK_PROTOCOLS = ("HTTP", "HTTPS", "TCP")
# route53.md, "Health checks": RequestInterval is 10 or 30 s, FailureThreshold 1 to 10.
HEALTH_CHECK_INTERVALS = (10, 30)
FAILURE_THRESHOLD_RANGE = (1, 10)
# Route53's schema: ResourcePath and FullyQualifiedDomainName at most 255 characters.
_HC_TEXT_MAX = 255
_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)", re.IGNORECASE)
# Route53 considers an endpoint healthy while more than 18% of its checkers report it healthy (Developer
# Guide, "How Amazon Route 53 determines whether a health check is healthy").
HEALTHY_CHECKER_SHARE = 0.18
# The id a health check will have once it is created: a policy preview plans with it (the real id exists only
# after the second person approves and the write-back creates the check).
PENDING_HEALTH_CHECK_ID = "00000000-0000-4000-8000-000000000000"


@dataclass(frozen=True)
class SpecProblem:
    """One thing wrong with a spec: the field it belongs to and a sentence saying what to change."""

    field: str
    message: str


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _hostname_problem(value: str, what: str) -> str:
    """Why `value` is not a domain name Route53's checkers can resolve or send, or "" when it is one."""
    name = value.strip().rstrip(".")
    try:
        ipaddress.ip_address(name)
    except ValueError:
        pass
    else:
        return f"{what} `{value}` is an IP address, not a domain name."
    labels = name.split(".")
    if len(name) > 253 or len(labels) < 2 or not all(_LABEL.fullmatch(label) for label in labels):
        return (
            f"{what} `{value}` is not a fully qualified domain name such as `shop.example.com` "
            "(letters, digits and hyphens, at most 63 characters a label)."
        )
    return ""


@dataclass(frozen=True)
class HealthCheckSpec:
    """What a health check probes, as the portal sets it; `validate()` says what is wrong, field by field.

    The target is `ip_address` or, without one, `fully_qualified_domain_name` (Route53 then resolves the name
    and checks an IPv4 address it gets). `host_header` is for HTTP/HTTPS checks of an IP address: Route53
    sends it as the Host header (and as SNI for HTTPS), with ":<port>" appended when the port is not 80 or
    443; in Route53's configuration it is the FullyQualifiedDomainName that goes with an IPAddress.
    """

    protocol: str  # one of HEALTH_CHECK_PROTOCOLS
    port: int
    ip_address: str = ""
    fully_qualified_domain_name: str = ""
    host_header: str = ""
    resource_path: str = ""  # HTTP/HTTPS only; empty means "/"
    request_interval: int = 30  # seconds between one checker's requests: 10 or 30
    failure_threshold: int = 3  # consecutive results that flip a checker's verdict: 1 to 10

    @property
    def target(self) -> str:
        return self.ip_address or self.fully_qualified_domain_name

    def validate(self, *, public: bool = True) -> list[SpecProblem]:
        """Every problem with this spec, in field order; an empty list means Route53 can create it.

        `public`: the provider's checkers are on the internet (Route53's), so an IP address target must be a
        public address; False for checkers inside the network (PowerDNS's own).
        """
        problems: list[SpecProblem] = []
        tcp = self.protocol == "TCP"  # with an unknown protocol, only the protocol is reported
        if self.protocol not in HEALTH_CHECK_PROTOCOLS:
            problems.append(
                SpecProblem("protocol", f"Protocol must be HTTP, HTTPS or TCP, not `{self.protocol}`.")
            )
        if not _is_int(self.port) or not 1 <= self.port <= 65535:
            problems.append(
                SpecProblem("port", f"Port must be a whole number from 1 to 65535, not `{self.port}`.")
            )
        problems += self._target_problems(public)
        if self.host_header.strip():
            if tcp:
                message = "A Host header is only sent by HTTP and HTTPS health checks."
            elif not self.ip_address.strip():
                message = (
                    "A Host header goes with an IP address; a domain name target is its own Host header."
                )
            else:
                message = _hostname_problem(self.host_header, "Host header")
            if message:
                problems.append(SpecProblem("host_header", message))
        if self.resource_path:
            path = self.resource_path
            if tcp:
                message = "Only HTTP and HTTPS health checks request a path; a TCP check only connects."
            elif not path.startswith("/") or any(c.isspace() for c in path):
                message = f"The path must start with `/` and contain no spaces, unlike `{path}`."
            elif len(path) > _HC_TEXT_MAX:
                message = f"The path is longer than Route53's limit of {_HC_TEXT_MAX} characters."
            else:
                message = ""
            if message:
                problems.append(SpecProblem("resource_path", message))
        if not _is_int(self.request_interval) or self.request_interval not in HEALTH_CHECK_INTERVALS:
            message = f"Request interval must be 10 or 30 seconds, not `{self.request_interval}`."
            problems.append(SpecProblem("request_interval", message))
        low, high = FAILURE_THRESHOLD_RANGE
        if not _is_int(self.failure_threshold) or not low <= self.failure_threshold <= high:
            value = self.failure_threshold
            message = f"Failure threshold must be a whole number from {low} to {high}, not `{value}`."
            problems.append(SpecProblem("failure_threshold", message))
        return problems

    def _target_problems(self, public: bool) -> list[SpecProblem]:
        ip, name = self.ip_address.strip(), self.fully_qualified_domain_name.strip()
        if not ip and not name:
            return [
                SpecProblem("ip_address", "Give the IP address or the domain name the health check probes.")
            ]
        if not ip:
            problem = _hostname_problem(name, "Domain name")
            return [SpecProblem("fully_qualified_domain_name", problem)] if problem else []
        problems: list[SpecProblem] = []
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            problems.append(SpecProblem("ip_address", f"`{ip}` is not an IPv4 or IPv6 address."))
        else:
            # Route53's checkers are on the internet: a public health check refuses private, loopback,
            # link-local, shared (CGNAT), documentation and multicast addresses (RFC 5735, 6598, 5156).
            if public and (not addr.is_global or addr.is_multicast):
                message = (
                    f"{addr} is not a public internet address (it is private, shared, documentation, "
                    "reserved or multicast), so Route53's health checkers cannot reach it."
                )
                problems.append(SpecProblem("ip_address", message))
        if name:
            message = (
                "Give the target as an IP address or as a domain name, not both; to send a Host header to an "
                "IP address, set the host header."
            )
            problems.append(SpecProblem("fully_qualified_domain_name", message))
        return problems

    def normalized(self) -> HealthCheckSpec:
        """The same check written one way: names lower case without the final dot, canonical IP, path "/".

        Two specs that Route53 would treat as the same check compare equal after this.
        """
        ip = self.ip_address.strip()
        with contextlib.suppress(ValueError):  # an invalid address stays as given; validate() reports it
            ip = str(ipaddress.ip_address(ip)) if ip else ""
        protocol = self.protocol.strip().upper()
        path = self.resource_path.strip()
        if protocol in ("HTTP", "HTTPS") and not path:
            path = "/"  # what Route53's checkers request when no path is set
        return replace(
            self,
            protocol=protocol,
            ip_address=ip,
            fully_qualified_domain_name=self.fully_qualified_domain_name.strip().rstrip(".").lower(),
            host_header=self.host_header.strip().rstrip(".").lower(),
            resource_path=path,
        )

    def describe(self) -> str:
        """One line for pages and logs: "HTTPS 52.94.236.248:443/healthz (Host shop.example.com), ..."."""
        where = f"[{self.target}]" if ":" in self.target else self.target
        text = f"{self.protocol} {where}:{self.port}{self.resource_path if self.protocol != 'TCP' else ''}"
        if self.host_header:
            text += f" (Host {self.host_header})"
        return text + f", every {self.request_interval} s, {self.failure_threshold} failures to flip"


@dataclass(frozen=True)
class HealthCheckInfo:
    """A health check the portal owns, as the provider holds it.

    `spec` is read back from the provider's configuration (normalised); `caller_reference` is the provider's
    idempotency key, derived from `owner_id` and `reference` (the caller's own name for the check).
    """

    id: str
    spec: HealthCheckSpec
    owner_id: str
    caller_reference: str
    reference: str = ""
    name: str = ""


@dataclass(frozen=True)
class CheckerObservation:
    """What one of the provider's health checkers last saw."""

    region: str
    checker_ip: str
    healthy: bool
    status: str  # the provider's own words: "Success: HTTP Status Code 200, OK", "Failure: ..."
    checked_at: datetime | None = None


@dataclass(frozen=True)
class HealthCheckStatus:
    """A health check's latest observations, per checker, summarised per checker region."""

    check_id: str
    observations: tuple[CheckerObservation, ...] = ()

    @property
    def regions(self) -> dict[str, bool]:
        """Region -> healthy, in name order; a region is healthy when every checker there says so."""
        out: dict[str, bool] = {}
        for o in sorted(self.observations, key=lambda o: o.region):
            out[o.region] = out.get(o.region, True) and o.healthy
        return out

    @property
    def healthy(self) -> bool:
        """The provider's own verdict: healthy while more than 18% of the checkers report it healthy."""
        if not self.observations:
            return False
        return sum(o.healthy for o in self.observations) > HEALTHY_CHECKER_SHARE * len(self.observations)

    @property
    def summary(self) -> str:
        """ "healthy in 8 of 8 regions"; before any checker has reported, says so."""
        regions = self.regions
        if not regions:
            return "no health checker has reported yet"
        return f"healthy in {sum(regions.values())} of {len(regions)} regions"


class Provider(ABC):
    """List zones and record sets, apply grouped changes, wait for them to be in sync, health checks."""

    @abstractmethod
    def list_zones(self, *, domain_filter: Sequence[str] = ()) -> list[ZoneInfo]:
        """Every hosted zone of the account (public and private), optionally only names under the filters."""

    @abstractmethod
    def list_record_sets(self, zone_id: str) -> list[dict[str, Any]]:
        """Every record set of the zone as Route53 dicts (`ResourceRecordSets` items), all pages."""

    def record_sets_at(self, zone_id: str, names: Iterable[str]) -> dict[str, list[RecordSet]] | None:
        """The record sets at these names (FQDNs, normalised) only, when the provider can read them for less
        than the whole zone; None when it cannot (the caller reads the whole zone)."""
        return None

    @abstractmethod
    def apply(self, zone_id: str, groups: Sequence[ChangeGroupInput], *, wait: bool = True) -> ApplyResult:
        """Apply the groups in the order given, in as few requests as the provider's limits allow.

        A group is never split across requests. When the provider rejects a request because of some of its
        changes, the good groups are still applied and the bad ones reported with the provider's message.
        With `wait`, returns once the provider reports the changes in sync.
        """

    @abstractmethod
    def nameservers(self, zone_id: str) -> list[str]:
        """The zone's authoritative nameservers (Route53: its delegation set)."""

    def zone_summary(self, zone_id: str) -> ZoneSummary:
        """The zone's record set count and nameservers in one cheap call, for the drift check between full
        reads; a provider without a cheap count says None (its drift check then relies on DNS answers)."""
        return ZoneSummary(None, tuple(self.nameservers(zone_id)))

    # --- health checks, owned like records: only those tagged with the caller's owner id are touched ------

    @abstractmethod
    def health_check_create(
        self, spec: HealthCheckSpec, *, owner_id: str, reference: str, name: str = ""
    ) -> HealthCheckInfo:
        """Create the health check `reference` names for `owner_id`, or return the one already created.

        Idempotent: the provider's idempotency key is derived from `owner_id` and `reference` (e.g.
        "policy-<proposal id>-<cluster>"), so calling again returns the same check; one whose settings
        differ from `spec` is updated to it. Raises ProviderError for a spec with problems, and for a
        change the provider cannot make in place (protocol, interval, IP address vs domain name target).
        """

    @abstractmethod
    def health_check_update(self, check_id: str, spec: HealthCheckSpec, *, owner_id: str) -> HealthCheckInfo:
        """Change an owned health check to `spec`; a check not tagged with `owner_id` is refused."""

    @abstractmethod
    def health_check_delete(
        self, check_id: str, *, owner_id: str, zone_ids: Sequence[str] | None = None
    ) -> bool:
        """Delete an owned health check; False when it was already gone.

        Refused (ProviderError naming them) while record sets in `zone_ids` (None: every zone of the
        account) still refer to it, and for a check not tagged with `owner_id`.
        """

    @abstractmethod
    def health_checks_owned(self, owner_id: str) -> list[HealthCheckInfo]:
        """Every health check tagged with `owner_id`, all pages; checks without that tag are never listed."""

    @abstractmethod
    def health_check_status(self, check_id: str) -> HealthCheckStatus:
        """The latest observation of each of the provider's health checkers for this check."""

    @classmethod
    def health_check_problems(cls, spec: HealthCheckSpec) -> list[SpecProblem]:
        """What is wrong with `spec` for this provider's health checks (Route53's rules by default)."""
        return spec.validate()

    @classmethod
    def routing_problem(cls, routing: str) -> str:
        """Why this provider cannot answer a routing policy ("latency", ...) at all; "" when it can."""
        return ""

    def check_access(self) -> str:
        """A cheap call proving the credentials work; returns a one-line description (account, zone count)."""
        zones = self.list_zones()
        return f"{len(zones)} hosted zone(s) visible"
