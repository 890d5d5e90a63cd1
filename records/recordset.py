"""Record sets in Route53's shape, as pure data, and the converters to and from Route53's dicts.

A `RecordSet` is what a hosted zone holds under one (name, type, set identifier): the unit Route53 creates,
upserts and deletes. The plan engine compares desired record sets (aggregated from endpoints) with current
ones (read from the provider) and emits changes carrying record sets; the Route53 provider turns them into
`ChangeResourceRecordSets` entries with `recordset_to_route53`.

Pure: no Django, boto3 or Kubernetes import. The dict shape is the one `aws route53 list-resource-record-sets`
prints and boto3 returns (`Name`, `Type`, `TTL`, `ResourceRecords`, `SetIdentifier`, `Weight`, ...).
"""

from __future__ import annotations

import ast
import ipaddress
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

# Route53 fills an unset TTL with nothing: the API requires one. ExternalDNS's AWS provider uses 300 s for
# endpoints without a configured TTL, so a record the portal writes looks the same as one ExternalDNS writes.
DEFAULT_TTL = 300
MAX_TTL = 2_147_483_647  # Route53 TTL range is 0..2^31-1 (route53.md, "Record rules")

# A TXT character-string holds at most 255 bytes (RFC 1035 3.3); longer texts are several strings in one
# value.
TXT_CHUNK = 255

# Record types whose values are host names: compared case-insensitively and without the trailing dot, as
# ExternalDNS's Targets.Same does, so "Foo.example.com." and "foo.example.com" are the same target.
_HOSTNAME_TYPES = frozenset({"CNAME", "NS", "PTR", "DNAME"})

# Route53 escapes characters outside [a-z0-9-_.] in names as \ooo octal (e.g. "*" comes back as "\052").
_ESCAPE = re.compile(r"\\(\d{3}|.)")


class RecordKey(NamedTuple):
    """The identity of a record set in a zone: Route53 allows one record set per (name, type, set id).

    A NamedTuple rather than a dataclass on purpose: the plan keys dicts of 100,000s of record sets by it, and
    a tuple hashes and compares in C (a plain `(name, type, set_id)` tuple is an equal dict key).
    """

    name: str  # lower-case FQDN with trailing dot: "shop.example.com."
    type: str  # "A", "AAAA", "CNAME", "TXT"
    set_identifier: str = ""  # weighted/failover/latency records share a name; this tells them apart

    def __str__(self) -> str:
        sid = f" [{self.set_identifier}]" if self.set_identifier else ""
        return f"{self.name} {self.type}{sid}"


@dataclass(frozen=True, slots=True)
class Routing:
    """The routing fields of a record set; all empty means the simple routing policy.

    Kept flat (one field per Route53 element) so record sets compare by value and the diff can name the field
    that changed. Coordinates are the strings Route53 stores ("49.22"), not floats, so they round-trip
    exactly.
    """

    weight: int | None = None
    region: str = ""  # latency routing: an AWS region name
    failover: str = ""  # "PRIMARY" or "SECONDARY"
    continent: str = ""  # geolocation: ContinentCode, or CountryCode (+ SubdivisionCode)
    country: str = ""
    subdivision: str = ""
    geoproximity_region: str = ""
    geoproximity_local_zone_group: str = ""
    geoproximity_coordinates: tuple[str, str] | None = None  # (latitude, longitude)
    geoproximity_bias: int | None = None
    multi_value_answer: bool = False
    cidr_collection_id: str = ""  # IP-based routing; read and written back, never produced from endpoints
    cidr_location_name: str = ""

    @property
    def policies(self) -> tuple[str, ...]:
        """Every routing policy these fields select; more than one is a record Route53 rejects."""
        out: list[str] = []
        if self.weight is not None:
            out.append("weighted")
        if self.failover:
            out.append("failover")
        if self.region:
            out.append("latency")
        if self.continent or self.country or self.subdivision:
            out.append("geolocation")
        if (
            self.geoproximity_region
            or self.geoproximity_local_zone_group
            or self.geoproximity_coordinates is not None
            or self.geoproximity_bias is not None
        ):
            out.append("geoproximity")
        if self.multi_value_answer:
            out.append("multivalue")
        if self.cidr_collection_id or self.cidr_location_name:
            out.append("ip-based")
        return tuple(out)

    @property
    def policy(self) -> str:
        """The routing policy name ("simple", "weighted", ...); "weighted+latency" style when mixed."""
        return "+".join(self.policies) or "simple"

    def describe(self) -> str:
        """A short human form for explanations: "weight 80", "failover PRIMARY", "region eu-west-1"."""
        parts: list[str] = []
        if self.weight is not None:
            parts.append(f"weight {self.weight}")
        if self.failover:
            parts.append(f"failover {self.failover}")
        if self.region:
            parts.append(f"region {self.region}")
        if self.continent:
            parts.append(f"continent {self.continent}")
        if self.country:
            parts.append(f"country {self.country}")
        if self.subdivision:
            parts.append(f"subdivision {self.subdivision}")
        if self.geoproximity_region:
            parts.append(f"geoproximity region {self.geoproximity_region}")
        if self.geoproximity_local_zone_group:
            parts.append(f"geoproximity local zone group {self.geoproximity_local_zone_group}")
        if self.geoproximity_coordinates is not None:
            parts.append("geoproximity coordinates {},{}".format(*self.geoproximity_coordinates))
        if self.geoproximity_bias is not None:
            parts.append(f"bias {self.geoproximity_bias}")
        if self.multi_value_answer:
            parts.append("multivalue answer")
        if self.cidr_collection_id or self.cidr_location_name:
            parts.append(f"cidr {self.cidr_collection_id}/{self.cidr_location_name}")
        return ", ".join(parts) or "simple"


NO_ROUTING = Routing()


@dataclass(frozen=True, slots=True)
class AliasTarget:
    """Route53 alias: the record answers with the target's addresses; alias records carry no TTL."""

    dns_name: str
    hosted_zone_id: str = ""  # "" = not known yet; the provider fills the target's canonical zone id
    evaluate_target_health: bool = False


@dataclass(frozen=True, slots=True)
class RecordSet:
    """One Route53 resource record set.

    `name` is the normalised FQDN (lower case, trailing dot, escapes decoded). `ttl` is None for alias records
    and, in desired record sets, when no TTL was configured (the diff then leaves the TTL alone). `values` are
    the ResourceRecords values exactly as Route53 stores them (TXT values include their quotes).
    `extra` keeps Route53 fields the portal does not model (AZAffinity, TrafficPolicyInstanceId) as JSON, so a
    DELETE built from a read record set still matches it exactly.
    """

    name: str
    type: str
    set_identifier: str = ""
    ttl: int | None = None
    values: tuple[str, ...] = ()
    routing: Routing = NO_ROUTING
    health_check_id: str = ""
    alias: AliasTarget | None = None
    extra: str = ""

    @property
    def key(self) -> RecordKey:
        return RecordKey(self.name, self.type, self.set_identifier)

    def describe_values(self) -> str:
        """The values for a human: "1.2.3.4, 5.6.7.8" or "alias dualstack.elb.amazonaws.com."."""
        if self.alias is not None:
            return f"alias {self.alias.dns_name}"
        return ", ".join(self.values)


def unescape_name(name: str) -> str:
    """Decode Route53's name escapes: `\\052` → `*`, `\\.`-style escapes → the character."""
    if "\\" not in name:
        return name

    def _one(m: re.Match[str]) -> str:
        s = m.group(1)
        return chr(int(s, 8)) if len(s) == 3 else s

    return _ESCAPE.sub(_one, name)


def normalize_name(name: str) -> str:
    """Canonical FQDN for comparisons: escapes decoded, lower case (DNS ignores case), one trailing dot."""
    n = unescape_name(name.strip()).lower()
    return n if n.endswith(".") else n + "."


def in_zone(name: str, zone: str) -> bool:
    """Whether the normalised `name` is the zone apex or below it (both FQDNs with trailing dot)."""
    return name == zone or name.endswith("." + zone)


def canonical_value(record_type: str, value: str) -> str:
    """The form two values are compared in: IPs canonical, host names lower case without the dot.

    ExternalDNS compares targets case-insensitively and IPv6 addresses by value (`::1` = `0:0::1`), so a
    provider returning a different spelling never causes an update (no ping-pong).
    """
    if record_type == "A":
        # a valid dotted quad has one spelling (Python and Route53 both reject leading zeros); invalid values
        # are refused by validation, so this path, which runs for every A value of a zone, parses nothing
        return value.strip()
    if record_type == "AAAA":
        try:
            return str(ipaddress.IPv6Address(value.strip()))
        except ValueError:
            return value.strip().lower()
    if record_type == "TXT":
        return value  # TXT content is case-sensitive
    return value.strip().rstrip(".").lower()


def rdata_text(value: str) -> str:
    """A `ResourceRecords` value as a zone file writes the rdata.

    moto (the local Route53 stand-in of the tests and the demo) returns a zone's SOA value as the repr of a
    Python dict, `{'Value': 'ns-2048.awsdns-64.com. hostmaster.example.com. 1 7200 900 1209600 86400'}`;
    the rdata inside is what Route53 itself returns. Every other value is returned as it is.
    """
    text = value.strip()
    if not (text.startswith("{'Value': ") and text.endswith("}")):
        return value
    try:
        inner = ast.literal_eval(text)  # literals only: nothing in the value runs
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return value
    if isinstance(inner, dict) and isinstance(inner.get("Value"), str):
        return inner["Value"]
    return value


# --- TXT character-strings -------------------------------------------------------------------------------


def txt_encode(text: str) -> str:
    """A Route53 TXT value for `text`: quoted, `"` and `\\` escaped, split into ≤255-character strings."""
    chunks = [text[i : i + TXT_CHUNK] for i in range(0, len(text), TXT_CHUNK)] or [""]
    return " ".join('"' + c.replace("\\", "\\\\").replace('"', '\\"') + '"' for c in chunks)


_TXT_STRING = re.compile(r'"((?:[^"\\]|\\.)*)"')


def txt_decode(value: str) -> str:
    """The text of a Route53 TXT value: its quoted strings concatenated and unescaped.

    A value that is not a sequence of quoted strings is returned with surrounding quotes trimmed, which is
    what ExternalDNS does (`strings.Trim(text, "\\"")`) for every value.
    """
    if (
        len(value) > 1
        and value[0] == '"'
        and value[-1] == '"'
        and '"' not in value[1:-1]
        and "\\" not in value
    ):
        return value[1:-1]  # one plain string: every ownership TXT ExternalDNS writes
    v = value.strip()
    parts = _TXT_STRING.findall(v)
    if parts and _TXT_STRING.sub("", v).strip() == "":
        return "".join(re.sub(r"\\(\d{3}|.)", _unescape_txt_char, p) for p in parts)
    return v.strip('"')


def _unescape_txt_char(m: re.Match[str]) -> str:
    s = m.group(1)
    return chr(int(s, 8)) if len(s) == 3 else s


def txt_strings(value: str) -> list[str]:
    """The character-strings of one TXT value, unescaped (for the 255-character check)."""
    parts = _TXT_STRING.findall(value.strip())
    if not parts:
        return [value.strip('"')]
    return [re.sub(r"\\(\d{3}|.)", _unescape_txt_char, p) for p in parts]


# --- Route53 dicts ---------------------------------------------------------------------------------------

_MODELLED = frozenset(
    {
        "Name",
        "Type",
        "TTL",
        "ResourceRecords",
        "SetIdentifier",
        "Weight",
        "Region",
        "GeoLocation",
        "Failover",
        "MultiValueAnswer",
        "HealthCheckId",
        "AliasTarget",
        "GeoProximityLocation",
        "CidrRoutingConfig",
    }
)


def _opt_int(item: Mapping[str, Any], field: str, where: str) -> int | None:
    v = item.get(field)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int | str):
        raise ValueError(f"{where}: `{field}` must be an integer, got {v!r}")
    try:
        return int(v)
    except ValueError:
        raise ValueError(f"{where}: `{field}` must be an integer, got {v!r}") from None


def recordset_from_route53(item: Mapping[str, Any]) -> RecordSet:
    """Parse one `ResourceRecordSets[]` dict (as boto3 returns it or the AWS CLI prints it).

    The name is normalised (`\\052` → `*`, lower case, trailing dot). Raises ValueError naming the record and
    the field when the dict is not a record set.
    """
    if not isinstance(item, Mapping):
        raise ValueError(f"record set must be an object, got {type(item).__name__}")
    raw_name = item.get("Name")
    if not isinstance(raw_name, str) or not raw_name.strip():
        raise ValueError("record set: `Name` is missing or not a string")
    rtype = item.get("Type")
    if not isinstance(rtype, str) or not rtype:
        raise ValueError(f"record set {raw_name}: `Type` is missing or not a string")
    name = normalize_name(raw_name)
    rtype = rtype.upper()
    where = f"record set {name} {rtype}"

    rrs = item.get("ResourceRecords") or []
    if not isinstance(rrs, list):
        raise ValueError(f"{where}: `ResourceRecords` must be a list of {{Value}}")
    values: list[str] = []
    for rr in rrs:
        if not isinstance(rr, Mapping) or not isinstance(rr.get("Value"), str):
            raise ValueError(f"{where}: each `ResourceRecords` item needs a string `Value`")
        values.append(rr["Value"])

    alias: AliasTarget | None = None
    at = item.get("AliasTarget")
    if at is not None:
        if not isinstance(at, Mapping) or not isinstance(at.get("DNSName"), str):
            raise ValueError(f"{where}: `AliasTarget` needs a string `DNSName`")
        alias = AliasTarget(
            dns_name=at["DNSName"],
            hosted_zone_id=str(at.get("HostedZoneId", "") or ""),
            evaluate_target_health=bool(at.get("EvaluateTargetHealth", False)),
        )

    geo = item.get("GeoLocation") or {}
    if not isinstance(geo, Mapping):
        raise ValueError(f"{where}: `GeoLocation` must be an object")
    gp = item.get("GeoProximityLocation") or {}
    if not isinstance(gp, Mapping):
        raise ValueError(f"{where}: `GeoProximityLocation` must be an object")
    coords = gp.get("Coordinates")
    coordinates: tuple[str, str] | None = None
    if coords is not None:
        if not isinstance(coords, Mapping) or "Latitude" not in coords or "Longitude" not in coords:
            raise ValueError(f"{where}: `GeoProximityLocation.Coordinates` needs Latitude and Longitude")
        coordinates = (str(coords["Latitude"]), str(coords["Longitude"]))
    cidr = item.get("CidrRoutingConfig") or {}
    if not isinstance(cidr, Mapping):
        raise ValueError(f"{where}: `CidrRoutingConfig` must be an object")

    routing = Routing(
        weight=_opt_int(item, "Weight", where),
        region=str(item.get("Region", "") or ""),
        failover=str(item.get("Failover", "") or ""),
        continent=str(geo.get("ContinentCode", "") or ""),
        country=str(geo.get("CountryCode", "") or ""),
        subdivision=str(geo.get("SubdivisionCode", "") or ""),
        geoproximity_region=str(gp.get("AWSRegion", "") or ""),
        geoproximity_local_zone_group=str(gp.get("LocalZoneGroup", "") or ""),
        geoproximity_coordinates=coordinates,
        geoproximity_bias=_opt_int(gp, "Bias", where),
        multi_value_answer=bool(item.get("MultiValueAnswer", False)),
        cidr_collection_id=str(cidr.get("CollectionId", "") or ""),
        cidr_location_name=str(cidr.get("LocationName", "") or ""),
    )
    extra = {k: v for k, v in item.items() if k not in _MODELLED}
    return RecordSet(
        name=name,
        type=rtype,
        set_identifier=str(item.get("SetIdentifier", "") or ""),
        ttl=_opt_int(item, "TTL", where),
        values=tuple(values),
        routing=NO_ROUTING if routing == NO_ROUTING else routing,
        health_check_id=str(item.get("HealthCheckId", "") or ""),
        alias=alias,
        extra=json.dumps(extra, sort_keys=True, default=str) if extra else "",
    )


def recordset_to_route53(rs: RecordSet, *, default_alias_zone_id: str = "") -> dict[str, Any]:
    """The `ResourceRecordSet` dict for a change (and the shape `list-resource-record-sets` prints).

    Only the fields that are set appear, in Route53's documented order. An alias without a target hosted zone
    id gets `default_alias_zone_id` (ExternalDNS uses the record's own zone for unknown alias targets); with
    neither, ValueError, because Route53 requires one.
    """
    out: dict[str, Any] = {"Name": rs.name, "Type": rs.type}
    r = rs.routing
    if rs.set_identifier:
        out["SetIdentifier"] = rs.set_identifier
    if r.weight is not None:
        out["Weight"] = r.weight
    if r.region:
        out["Region"] = r.region
    if r.continent or r.country or r.subdivision:
        geo: dict[str, str] = {}
        if r.continent:
            geo["ContinentCode"] = r.continent
        if r.country:
            geo["CountryCode"] = r.country
        if r.subdivision:
            geo["SubdivisionCode"] = r.subdivision
        out["GeoLocation"] = geo
    if r.failover:
        out["Failover"] = r.failover
    if r.multi_value_answer:
        out["MultiValueAnswer"] = True
    if rs.alias is None:
        out["TTL"] = DEFAULT_TTL if rs.ttl is None else rs.ttl
        out["ResourceRecords"] = [{"Value": v} for v in rs.values]
    else:
        zone_id = rs.alias.hosted_zone_id or default_alias_zone_id
        if not zone_id:
            raise ValueError(f"alias record {rs.key}: no hosted zone id for alias target {rs.alias.dns_name}")
        out["AliasTarget"] = {
            "HostedZoneId": zone_id,
            "DNSName": rs.alias.dns_name,
            "EvaluateTargetHealth": rs.alias.evaluate_target_health,
        }
    if rs.health_check_id:
        out["HealthCheckId"] = rs.health_check_id
    if r.cidr_collection_id or r.cidr_location_name:
        out["CidrRoutingConfig"] = {
            "CollectionId": r.cidr_collection_id,
            "LocationName": r.cidr_location_name,
        }
    if (
        r.geoproximity_region
        or r.geoproximity_local_zone_group
        or r.geoproximity_coordinates is not None
        or r.geoproximity_bias is not None
    ):
        gp: dict[str, Any] = {}
        if r.geoproximity_region:
            gp["AWSRegion"] = r.geoproximity_region
        if r.geoproximity_local_zone_group:
            gp["LocalZoneGroup"] = r.geoproximity_local_zone_group
        if r.geoproximity_coordinates is not None:
            gp["Coordinates"] = {
                "Latitude": r.geoproximity_coordinates[0],
                "Longitude": r.geoproximity_coordinates[1],
            }
        if r.geoproximity_bias is not None:
            gp["Bias"] = r.geoproximity_bias
        out["GeoProximityLocation"] = gp
    if rs.extra:
        out.update(json.loads(rs.extra))
    return out


def load_route53_records(data: Any) -> list[RecordSet]:
    """Record sets from `list-resource-record-sets` output: `{"ResourceRecordSets": [...]}` or a bare list.

    Raises ValueError naming the position of the first bad item.
    """
    if isinstance(data, Mapping):
        if "ResourceRecordSets" not in data:
            raise ValueError("expected a list of record sets or an object with `ResourceRecordSets`")
        data = data["ResourceRecordSets"]
    if not isinstance(data, list):
        raise ValueError("`ResourceRecordSets` must be a list")
    out: list[RecordSet] = []
    for i, item in enumerate(data):
        try:
            out.append(recordset_from_route53(item))
        except ValueError as exc:
            raise ValueError(f"ResourceRecordSets[{i}]: {exc}") from None
    return out


def zone_from_records(records: Iterable[RecordSet]) -> str | None:
    """The zone apex, from the SOA record set (every hosted zone has exactly one, at the apex)."""
    soas = {rs.name for rs in records if rs.type == "SOA"}
    return soas.pop() if len(soas) == 1 else None
