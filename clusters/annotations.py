"""ExternalDNS's annotations on a Service, Ingress or Pod: read under both prefixes and checked.

ExternalDNS up to v0.21 reads `external-dns.alpha.kubernetes.io/<key>`; v0.22 moved the default to
`external-dns.kubernetes.io/<key>` and reads only one prefix at a time. The portal serves clusters running
either version, so it reads **both**. When one object carries the same key under both prefixes, the GA prefix
(`external-dns.kubernetes.io/`) wins: it is the one current ExternalDNS reads, and an object that has it was
edited for the newer version. A differing alpha value is then reported as a warning, never silently.

Where ExternalDNS logs a malformed value and carries on, the portal does the same and shows a warning naming
the annotation and the value on the object: a ttl of "abc" or "-5" publishes with the TTL not configured.
Refusing the object instead would delete records ExternalDNS keeps, which a team moving off ExternalDNS must
never see (the real ExternalDNS is the oracle: tests/integration/test_external_dns_differential.py). So a
weight of "heavy" publishes weight 0, an `access` of "Public" reads as no annotation, an `evaluate-target-
health` of "yes" as false, and a host name that cannot be a record name is skipped while the object's other
names publish, each with a warning. Only values Route53 itself refuses (a weight of 300, failover `primary`)
stop the object, with an error: ExternalDNS would send them and fail. Facts: shared/reference/external-dns.md
section 1.

Pure: no Django, boto3 or Kubernetes import.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass

from clusters.go_values import go_parse_int, parse_ttl_seconds
from records.endpoint import PROP_ALIAS
from records.policy import (
    AWS_REGIONS,
    CONTINENT_CODES,
    COUNTRY_CODES,
    FAILOVER_VALUES,
    MAX_BIAS,
    MAX_SET_IDENTIFIER,
    MAX_WEIGHT,
    MIN_BIAS,
)

GA_PREFIX = "external-dns.kubernetes.io/"
ALPHA_PREFIX = "external-dns.alpha.kubernetes.io/"
# In order of precedence: the GA prefix wins when an object has a key under both.
PREFIXES = (GA_PREFIX, ALPHA_PREFIX)

HOSTNAME = "hostname"
INTERNAL_HOSTNAME = "internal-hostname"
TARGET = "target"
TTL = "ttl"
ACCESS = "access"
ENDPOINTS_TYPE = "endpoints-type"
CONTROLLER = "controller"
INGRESS_HOSTNAME_SOURCE = "ingress-hostname-source"
SET_IDENTIFIER = "set-identifier"
ALIAS = "alias"
AWS_PREFIX = "aws-"

# An object whose controller annotation names anything else belongs to another controller (kops' dns-
# controller
# compatibility value; source/annotations/annotations.go ControllerValue).
CONTROLLER_VALUE = "dns-controller"
ACCESS_VALUES = ("public", "private")
ENDPOINTS_TYPE_NODE_EXTERNAL_IP = "NodeExternalIP"
ENDPOINTS_TYPE_HOST_IP = "HostIP"
ENDPOINTS_TYPE_VALUES = (ENDPOINTS_TYPE_NODE_EXTERNAL_IP, ENDPOINTS_TYPE_HOST_IP)
DEFINED_HOSTS_ONLY = "defined-hosts-only"
ANNOTATION_ONLY = "annotation-only"
INGRESS_HOSTNAME_SOURCE_VALUES = (DEFINED_HOSTS_ONLY, ANNOTATION_ONLY)
NO_HOSTS = "none"  # what an unknown ingress-hostname-source value selects in ExternalDNS

# ExternalDNS's TTL range (source/annotations: ttlMinimum 1, ttlMaximum math.MaxInt32).
TTL_MIN = 1
TTL_MAX = 2**31 - 1

# Keys ExternalDNS knows besides the ones the portal reads; present on real objects, so not worth a warning.
_OTHER_KNOWN_KEYS = frozenset({"gateway-hostname-source", "ingress", "record-type"})
_OTHER_KNOWN_PREFIXES = ("scw-", "webhook-", "coredns-", "cloudflare-", "azure-", "gateway-")
_READ_KEYS = frozenset(
    {
        HOSTNAME,
        INTERNAL_HOSTNAME,
        TARGET,
        TTL,
        ACCESS,
        ENDPOINTS_TYPE,
        CONTROLLER,
        INGRESS_HOSTNAME_SOURCE,
        SET_IDENTIFIER,
        ALIAS,
    }
)

# aws-* keys that select a Route53 routing policy; the AWS provider applies them only with a set identifier.
_ROUTING_KEYS = frozenset(
    {
        "weight",
        "region",
        "failover",
        "geolocation-continent-code",
        "geolocation-country-code",
        "geolocation-subdivision-code",
        "geoproximity-region",
        "geoproximity-local-zone-group",
        "geoproximity-coordinates",
        "geoproximity-bias",
        "multi-value-answer",
    }
)
_KNOWN_AWS_KEYS = _ROUTING_KEYS | {
    "health-check-id",
    "evaluate-target-health",
    "target-hosted-zone",
    "hosted-zone-id",
}

_SUBDIVISION = re.compile(r"[A-Z0-9]{1,3}")
# Route53's GeoProximityLocation.Coordinates patterns: at most two decimals.
_LATITUDE = re.compile(r"[-+]?[0-9]{1,2}(\.[0-9]{0,2})?")
_LONGITUDE = re.compile(r"[-+]?[0-9]{1,3}(\.[0-9]{0,2})?")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_LABEL = re.compile(r"[a-z0-9_-]+")
MAX_LABEL = 63  # RFC 1035 2.3.4; ExternalDNS's NewEndpoint refuses longer labels
MAX_NAME = 253  # text form without the trailing dot


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong (or worth knowing) about an object, as a sentence the operator can act on.

    `annotation` is the full annotation key involved (as written on the object) and `value` its value;
    `option` the source option involved. They are empty when not applicable; `message` always says everything.
    """

    message: str
    annotation: str = ""
    value: str = ""
    option: str = ""

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True, slots=True)
class Annotation:
    """One ExternalDNS annotation as found on an object: the full key (with its prefix) and the value."""

    key: str
    value: str


def describe_object(kind: str, namespace: str, name: str, cluster: str = "") -> str:
    """ "Service `shop/web`" (with " in cluster `eks-eu1`" when the cluster is known), for messages."""
    where = f"{namespace}/{name}" if namespace else name
    return f"{kind} `{where}`" + (f" in cluster `{cluster}`" if cluster else "")


def external_dns_annotations(annotations: Mapping[str, str]) -> tuple[dict[str, Annotation], list[Problem]]:
    """The object's ExternalDNS annotations by key without prefix, reading both prefixes (the GA one wins).

    Returns the annotations and, for each key present under both prefixes with different values, a
    warning-level problem saying which one is used. The problems' messages lack the object;
    `parse_annotations` adds it.
    """
    found: dict[str, Annotation] = {}
    shadowed: list[Problem] = []
    for prefix in PREFIXES:
        for key, value in annotations.items():
            if not key.startswith(prefix):
                continue
            short = key[len(prefix) :]
            value = "" if value is None else str(value)
            if short in found:
                if found[short].value != value:
                    shadowed.append(
                        Problem(
                            f"`{found[short].key}` and `{key}` are both set and differ; "
                            f"`{found[short].key}` (`{found[short].value}`) is used",
                            annotation=key,
                            value=value,
                        )
                    )
                continue
            found[short] = Annotation(key, value)
    return found, shadowed


def annotation_prefix(annotations: Mapping[str, str]) -> str:
    """The ExternalDNS prefix an object's annotations use: GA if any GA key, else alpha if any, else ""."""
    for prefix in PREFIXES:
        if any(k.startswith(prefix) for k in annotations):
            return prefix
    return ""


def controller_annotation(annotations: Mapping[str, str]) -> Annotation | None:
    """The `controller` annotation under either prefix (GA first), or None when absent."""
    for prefix in PREFIXES:
        value = annotations.get(prefix + CONTROLLER)
        if value is not None:
            return Annotation(prefix + CONTROLLER, str(value))
    return None


def check_dns_name(name: str, *, wildcard: bool = True) -> str | None:
    """Why `name` (lower case, no trailing dot) cannot be a record name, or None when it can.

    Each label is 1-63 letters, digits, `-` or `_` (SRV and service names start with `_`); `*` is allowed as
    the whole first label when `wildcard`; the name is at most 253 characters.
    """
    if not name:
        return "the name is empty"
    if len(name) > MAX_NAME:
        return f"`{name}` is {len(name)} characters long; a DNS name has at most {MAX_NAME}"
    labels = name.split(".")
    for i, label in enumerate(labels):
        if not label:
            return f"`{name}` has an empty label"
        if len(label) > MAX_LABEL:
            return f"label `{label}` of `{name}` is {len(label)} characters long; at most {MAX_LABEL} allowed"
        if label == "*" and i == 0 and wildcard:
            continue
        if not _LABEL.fullmatch(label):
            return f"`{name}` is not a DNS name (a label holds letters, digits, `-` and `_`)"
    return None


def normalize_name(name: str) -> str:
    """A DNS name as ExternalDNS keeps it: trailing dot trimmed; lower case as the portal compares names."""
    return name.strip().rstrip(".").lower()


def split_hostnames(value: str) -> list[str]:
    """ExternalDNS's SplitHostnameAnnotation: every space removed, split on commas, trailing dots trimmed.

    Empty entries ("a.example.com," or ",,") are dropped; ExternalDNS would make a nameless endpoint of them.
    """
    out = []
    for part in value.replace(" ", "").strip().split(","):
        part = part.rstrip(".")
        if part:
            out.append(part)
    return out


def is_ip(value: str) -> bool:
    """Whether `value` is an IPv4 or IPv6 address literal (Go's netip.ParseAddr)."""
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


@dataclass(frozen=True, slots=True)
class ParsedAnnotations:
    """What an object's ExternalDNS annotations ask for, already checked.

    `errors` are malformed values: the object must not publish anything. `warnings` are worth showing but
    change nothing (a shadowed alpha annotation, a routing annotation without a set identifier...).
    """

    prefix: str = ""  # the prefix this object uses (GA when it has both); "" when it has none
    hostnames: tuple[str, ...] = ()
    hostname_key: str = ""
    internal_hostnames: tuple[str, ...] = ()
    internal_hostname_key: str = ""
    targets: tuple[str, ...] = ()
    ttl: int = 0  # 0: not configured
    access: str = ""
    endpoints_type: str = ""
    ingress_hostname_source: str = ""
    set_identifier: str = ""
    provider_specific: tuple[tuple[str, str], ...] = ()
    errors: tuple[Problem, ...] = ()
    warnings: tuple[Problem, ...] = ()


def _hostnames(a: Annotation, what: str, warnings: list[Problem]) -> tuple[str, ...]:
    out: list[str] = []
    for raw in split_hostnames(a.value):
        name = raw.lower()
        reason = check_dns_name(name)
        if reason:
            # ExternalDNS skips such a name (NewEndpoint refuses a label over 63 characters) and publishes the
            # object's other names: refusing the whole object would delete records ExternalDNS keeps.
            warnings.append(
                Problem(
                    f"annotation `{a.key}` on {what}: {reason}; that name is not published, the others are",
                    annotation=a.key,
                    value=a.value,
                )
            )
            continue
        if name not in out:
            out.append(name)
    return tuple(out)


def parse_targets(annotations: Mapping[str, str], *, what: str) -> tuple[tuple[str, ...], list[Problem]]:
    """The `target` annotation's values (either prefix) and the problems with them; () when absent or empty.

    Each value is an IP literal or a host name (trailing dot trimmed, as ExternalDNS does).
    """
    found, _ = external_dns_annotations(annotations)
    a = found.get(TARGET)
    if a is None:
        return (), []
    return _targets(a, what)


def _targets(a: Annotation, what: str) -> tuple[tuple[str, ...], list[Problem]]:
    out: list[str] = []
    problems: list[Problem] = []
    for raw in split_hostnames(a.value):
        if is_ip(raw):
            value = raw
        else:
            value = raw.lower()
            reason = check_dns_name(value, wildcard=False)
            if reason:
                detail = "" if "is not a DNS name" in reason else f" ({reason})"
                problems.append(
                    Problem(
                        f"annotation `{a.key}` on {what}: `{raw}` is neither an IP address "
                        f"nor a host name{detail}",
                        annotation=a.key,
                        value=a.value,
                    )
                )
                continue
        if value not in out:
            out.append(value)
    return tuple(out), problems


def _check_aws(rest: str, value: str) -> str | None:
    """Why an `aws-<rest>` value would be refused by Route53 (or does not mean what it says), or None."""
    v = value
    if rest == "weight":
        # only reached with a value Go's ParseInt reads (see _lenient): Route53 refuses it out of range
        if not 0 <= go_parse_int(v) <= MAX_WEIGHT:
            return f"`{v}` is not an integer from 0 to {MAX_WEIGHT}"
    elif rest == "failover":
        if v not in FAILOVER_VALUES:
            return f"`{v}` is not PRIMARY or SECONDARY"
    elif rest in ("region", "geoproximity-region"):
        if v not in AWS_REGIONS:
            return f"`{v}` is not an AWS region (like eu-west-1)"
    elif rest == "geolocation-continent-code":
        if v not in CONTINENT_CODES:
            return f"`{v}` is not a continent code ({', '.join(sorted(CONTINENT_CODES))})"
    elif rest == "geolocation-country-code":
        if v not in COUNTRY_CODES:
            return f"`{v}` is not an ISO 3166 country code (like DE) or `*`"
    elif rest == "geolocation-subdivision-code":
        if not _SUBDIVISION.fullmatch(v):
            return f"`{v}` is not a subdivision code (1-3 upper-case letters or digits, like CA)"
    elif rest == "geoproximity-bias":
        if not MIN_BIAS <= go_parse_int(v) <= MAX_BIAS:
            return f"`{v}` is not an integer from {MIN_BIAS} to {MAX_BIAS}"
    elif rest == "geoproximity-coordinates":
        lat, comma, lon = v.partition(",")
        if (
            not comma
            or not _LATITUDE.fullmatch(lat)
            or not _LONGITUDE.fullmatch(lon)
            or not -90 <= float(lat) <= 90
            or not -180 <= float(lon) <= 180
        ):
            return f"`{v}` is not `latitude,longitude` (-90..90,-180..180, at most two decimals)"
    elif rest == "health-check-id" and not _UUID.fullmatch(v):
        return f"`{v}` is not a Route53 health check id (a UUID)"
    return None


def _lenient(rest: str, value: str) -> tuple[str, str] | None:
    """(the value the AWS provider uses instead, why) for an `aws-<rest>` value ExternalDNS replaces with a
    default and a log line rather than refusing; None when the value is used as written.

    aws.go newChange: a weight Go cannot parse is 0 ("using weight of 0"), as is a geoproximity bias
    ("using bias of 0"); GetBoolProviderSpecificProperty reads any evaluate-target-health but "true" as false.
    """
    if rest in ("weight", "geoproximity-bias"):
        try:
            number = str(go_parse_int(value))
        except ValueError:
            what = "weight" if rest == "weight" else "bias"
            return "0", f"`{value}` is not an integer; published with {what} 0, as ExternalDNS does"
        return None if number == value else (number, "")  # "+5" and "007" are 5 and 7 to Route53
    if rest == "evaluate-target-health" and value not in ("true", "false"):
        return "false", f"`{value}` is not true or false; read as false, as ExternalDNS does"
    return None


def parse_annotations(annotations: Mapping[str, str] | None, *, what: str) -> ParsedAnnotations:
    """Read and check an object's ExternalDNS annotations (both prefixes; the GA one wins).

    `what` names the object in messages ("Service `shop/web`", see `describe_object`). Never raises: every
    malformed value becomes an error naming the annotation and the value, e.g. "annotation
    `external-dns.alpha.kubernetes.io/aws-weight` on Service `shop/web`: `abc` is not an integer from 0 to
    255".
    """
    annotations = annotations or {}
    found, shadowed = external_dns_annotations(annotations)
    errors: list[Problem] = []
    warnings = [
        Problem(f"annotations on {what}: {p.message}", annotation=p.annotation, value=p.value)
        for p in shadowed
    ]

    def bad(a: Annotation, reason: str) -> None:
        errors.append(Problem(f"annotation `{a.key}` on {what}: {reason}", annotation=a.key, value=a.value))

    hostnames: tuple[str, ...] = ()
    internal: tuple[str, ...] = ()
    targets: tuple[str, ...] = ()
    ttl = 0
    if (a := found.get(HOSTNAME)) is not None:
        hostnames = _hostnames(a, what, warnings)
    if (a := found.get(INTERNAL_HOSTNAME)) is not None:
        internal = _hostnames(a, what, warnings)
    if (a := found.get(TARGET)) is not None:
        targets, problems = _targets(a, what)
        errors.extend(problems)
    if (a := found.get(TTL)) is not None:
        # ExternalDNS logs a warning and publishes with the TTL not configured (getTTLFromAnnotations); so
        # does the portal, with the warning on the object: refusing the object would delete records that
        # ExternalDNS keeps (tests/integration/test_external_dns_oracle.py).
        reason = ""
        try:
            seconds = parse_ttl_seconds(a.value)
        except ValueError as exc:
            reason = str(exc)
        else:
            if TTL_MIN <= seconds <= TTL_MAX:
                ttl = seconds
            else:
                reason = f"`{a.value}` is {seconds} seconds; a TTL is from {TTL_MIN} to {TTL_MAX} seconds"
        if reason:
            warnings.append(
                Problem(
                    f"annotation `{a.key}` on {what}: {reason}; published with the zone's default TTL, as "
                    "ExternalDNS does",
                    annotation=a.key,
                    value=a.value,
                )
            )

    def as_absent(a: Annotation, expected: str) -> None:
        # ExternalDNS compares the value exactly and treats any other like no annotation; so does the portal
        # (refusing the object would delete what ExternalDNS publishes), with a warning: a typo ("Public")
        # publishes other addresses than meant.
        warnings.append(
            Problem(
                f"annotation `{a.key}` on {what}: `{a.value}` is not {expected}; read as no annotation, "
                "as ExternalDNS does",
                annotation=a.key,
                value=a.value,
            )
        )

    access = ""
    if (a := found.get(ACCESS)) is not None:
        if a.value in ACCESS_VALUES:
            access = a.value
        else:
            as_absent(a, "public or private")
    endpoints_type = ""
    if (a := found.get(ENDPOINTS_TYPE)) is not None:
        if a.value in ENDPOINTS_TYPE_VALUES:
            endpoints_type = a.value
        else:
            as_absent(a, "NodeExternalIP or HostIP")
    hostname_source = ""
    if (a := found.get(INGRESS_HOSTNAME_SOURCE)) is not None:
        # Compared case-insensitively by ExternalDNS. Any other value selects no host (neither spec nor
        # annotation), yet an fqdn-template still applies: so the portal, with a warning (refusing the object
        # would delete the templated records ExternalDNS keeps).
        hostname_source = a.value.lower()
        if hostname_source not in INGRESS_HOSTNAME_SOURCE_VALUES:
            hostname_source = NO_HOSTS
            warnings.append(
                Problem(
                    f"annotation `{a.key}` on {what}: `{a.value}` is not defined-hosts-only or "
                    "annotation-only; no host of the Ingress is published (only an fqdn-template's), as "
                    "ExternalDNS does",
                    annotation=a.key,
                    value=a.value,
                )
            )
    set_identifier = ""
    if (a := found.get(SET_IDENTIFIER)) is not None:
        set_identifier = a.value
        if len(a.value) > MAX_SET_IDENTIFIER:
            bad(
                a,
                f"the set identifier is {len(a.value)} characters long; Route53 allows {MAX_SET_IDENTIFIER}",
            )

    props: dict[str, str] = {}
    if (a := found.get(ALIAS)) is not None:
        # Only the exact string "true" sets the property (ProviderSpecificAnnotations); "false" sets nothing.
        if a.value == "true":
            props[PROP_ALIAS] = "true"
        elif a.value != "false":
            warnings.append(
                Problem(
                    f"annotation `{a.key}` on {what}: `{a.value}` has no effect; only `true` makes an alias",
                    annotation=a.key,
                    value=a.value,
                )
            )
    routing: list[str] = []
    for short in sorted(found):
        a = found[short]
        if short.startswith(AWS_PREFIX):
            rest = short[len(AWS_PREFIX) :]
            # Every aws-<rest> annotation becomes property aws/<rest>, value verbatim (generic pass-through),
            # except where the AWS provider reads a malformed value as a default (_lenient).
            value = a.value
            lenient = _lenient(rest, value)
            if lenient is not None:
                value, why = lenient
                if why:
                    warnings.append(
                        Problem(f"annotation `{a.key}` on {what}: {why}", annotation=a.key, value=a.value)
                    )
            reason = _check_aws(rest, value)
            if reason:
                bad(a, reason)
                continue
            props[f"aws/{rest}"] = value
            if rest in _ROUTING_KEYS:
                routing.append(a.key)
            if rest not in _KNOWN_AWS_KEYS:
                warnings.append(
                    Problem(
                        f"annotation `{a.key}` on {what}: Route53 has no `aws/{rest}` property; "
                        "it is passed through and ignored",
                        annotation=a.key,
                        value=a.value,
                    )
                )
        elif (
            short not in _READ_KEYS
            and short not in _OTHER_KNOWN_KEYS
            and not short.startswith(_OTHER_KNOWN_PREFIXES)
        ):
            warnings.append(
                Problem(
                    f"annotation `{a.key}` on {what} is not an ExternalDNS annotation (a typo?); "
                    "it is ignored",
                    annotation=a.key,
                    value=a.value,
                )
            )
    if "aws/geolocation-subdivision-code" in props and "aws/geolocation-country-code" not in props:
        a = found[AWS_PREFIX + "geolocation-subdivision-code"]
        bad(a, "a subdivision code needs a country code annotation (`aws-geolocation-country-code`)")
    if routing and not set_identifier:
        # The AWS provider applies routing only to records with a set identifier (ExternalDNS issue #1363).
        warnings.append(
            Problem(
                f"annotation `{routing[0]}` on {what} has no effect without a `set-identifier` annotation; "
                "the record is published as a simple record",
                annotation=routing[0],
                value=found[routing[0].rpartition("/")[2]].value,
            )
        )
    return ParsedAnnotations(
        prefix=annotation_prefix(annotations),
        hostnames=hostnames,
        hostname_key=found[HOSTNAME].key if HOSTNAME in found else "",
        internal_hostnames=internal,
        internal_hostname_key=found[INTERNAL_HOSTNAME].key if INTERNAL_HOSTNAME in found else "",
        targets=targets,
        ttl=ttl,
        access=access,
        endpoints_type=endpoints_type,
        ingress_hostname_source=hostname_source,
        set_identifier=set_identifier,
        provider_specific=tuple(sorted(props.items())),
        errors=tuple(errors),
        warnings=tuple(warnings),
    )
