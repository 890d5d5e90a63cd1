"""Route53's rules for record sets and routing policies, checked before anything reaches a provider.

Two levels: `validate_record_set` checks one record set's fields (weight 0-255, set identifier 1-128
characters, TTL range, continent/country codes, AWS regions, TXT strings ≤255...), `validate_name` checks the
record sets that share a name (CNAME alone and not at the apex, one routing policy per name and type, one
PRIMARY and at most one SECONDARY...). Every problem names the record and the field.

Also the safety helper `is_private_address`, shared with discovery and the review pages.

Pure: no Django, boto3 or Kubernetes import. Facts: shared/reference/route53.md.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from records.recordset import MAX_TTL, RecordSet, txt_strings

MAX_WEIGHT = 255  # Route53 Weight is 0..255
MAX_SET_IDENTIFIER = 128  # Route53 SetIdentifier is 1..128 characters
MAX_WEIGHTED_SETS = 100  # "a maximum of 100 weighted resource record sets that have the same name and type"
MIN_BIAS, MAX_BIAS = -99, 99  # GeoProximityLocation.Bias
MAX_LABEL = 63  # RFC 1035 2.3.4
MAX_NAME = 255  # RFC 1035 2.3.4, wire length incl. length octets; the text form with dots stays under 254

CONTINENT_CODES = frozenset({"AF", "AN", "AS", "EU", "OC", "NA", "SA"})

# ISO 3166-1 alpha-2 (Debian iso-codes 3166-1, 249 codes). Route53's CountryCode also accepts "*", the default
# location for resolvers no other geolocation record matches.
COUNTRY_CODES = frozenset(
    {
        "AD",
        "AE",
        "AF",
        "AG",
        "AI",
        "AL",
        "AM",
        "AO",
        "AQ",
        "AR",
        "AS",
        "AT",
        "AU",
        "AW",
        "AX",
        "AZ",
        "BA",
        "BB",
        "BD",
        "BE",
        "BF",
        "BG",
        "BH",
        "BI",
        "BJ",
        "BL",
        "BM",
        "BN",
        "BO",
        "BQ",
        "BR",
        "BS",
        "BT",
        "BV",
        "BW",
        "BY",
        "BZ",
        "CA",
        "CC",
        "CD",
        "CF",
        "CG",
        "CH",
        "CI",
        "CK",
        "CL",
        "CM",
        "CN",
        "CO",
        "CR",
        "CU",
        "CV",
        "CW",
        "CX",
        "CY",
        "CZ",
        "DE",
        "DJ",
        "DK",
        "DM",
        "DO",
        "DZ",
        "EC",
        "EE",
        "EG",
        "EH",
        "ER",
        "ES",
        "ET",
        "FI",
        "FJ",
        "FK",
        "FM",
        "FO",
        "FR",
        "GA",
        "GB",
        "GD",
        "GE",
        "GF",
        "GG",
        "GH",
        "GI",
        "GL",
        "GM",
        "GN",
        "GP",
        "GQ",
        "GR",
        "GS",
        "GT",
        "GU",
        "GW",
        "GY",
        "HK",
        "HM",
        "HN",
        "HR",
        "HT",
        "HU",
        "ID",
        "IE",
        "IL",
        "IM",
        "IN",
        "IO",
        "IQ",
        "IR",
        "IS",
        "IT",
        "JE",
        "JM",
        "JO",
        "JP",
        "KE",
        "KG",
        "KH",
        "KI",
        "KM",
        "KN",
        "KP",
        "KR",
        "KW",
        "KY",
        "KZ",
        "LA",
        "LB",
        "LC",
        "LI",
        "LK",
        "LR",
        "LS",
        "LT",
        "LU",
        "LV",
        "LY",
        "MA",
        "MC",
        "MD",
        "ME",
        "MF",
        "MG",
        "MH",
        "MK",
        "ML",
        "MM",
        "MN",
        "MO",
        "MP",
        "MQ",
        "MR",
        "MS",
        "MT",
        "MU",
        "MV",
        "MW",
        "MX",
        "MY",
        "MZ",
        "NA",
        "NC",
        "NE",
        "NF",
        "NG",
        "NI",
        "NL",
        "NO",
        "NP",
        "NR",
        "NU",
        "NZ",
        "OM",
        "PA",
        "PE",
        "PF",
        "PG",
        "PH",
        "PK",
        "PL",
        "PM",
        "PN",
        "PR",
        "PS",
        "PT",
        "PW",
        "PY",
        "QA",
        "RE",
        "RO",
        "RS",
        "RU",
        "RW",
        "SA",
        "SB",
        "SC",
        "SD",
        "SE",
        "SG",
        "SH",
        "SI",
        "SJ",
        "SK",
        "SL",
        "SM",
        "SN",
        "SO",
        "SR",
        "SS",
        "ST",
        "SV",
        "SX",
        "SY",
        "SZ",
        "TC",
        "TD",
        "TF",
        "TG",
        "TH",
        "TJ",
        "TK",
        "TL",
        "TM",
        "TN",
        "TO",
        "TR",
        "TT",
        "TV",
        "TW",
        "TZ",
        "UA",
        "UG",
        "UM",
        "US",
        "UY",
        "UZ",
        "VA",
        "VC",
        "VE",
        "VG",
        "VI",
        "VN",
        "VU",
        "WF",
        "WS",
        "YE",
        "YT",
        "ZA",
        "ZM",
        "ZW",
    }
) | {"*"}

# The `ResourceRecordSetRegion` enum of Route53's API model (botocore 1.44, route53 2013-04-01): the regions a
# latency record set may name. A static list on purpose: validation must not call AWS.
AWS_REGIONS = frozenset(
    {
        "af-south-1",
        "ap-east-1",
        "ap-east-2",
        "ap-northeast-1",
        "ap-northeast-2",
        "ap-northeast-3",
        "ap-south-1",
        "ap-south-2",
        "ap-southeast-1",
        "ap-southeast-2",
        "ap-southeast-3",
        "ap-southeast-4",
        "ap-southeast-5",
        "ap-southeast-6",
        "ap-southeast-7",
        "ca-central-1",
        "ca-west-1",
        "cn-north-1",
        "cn-northwest-1",
        "eu-central-1",
        "eu-central-2",
        "eu-north-1",
        "eu-south-1",
        "eu-south-2",
        "eu-west-1",
        "eu-west-2",
        "eu-west-3",
        "eusc-de-east-1",
        "il-central-1",
        "me-central-1",
        "me-south-1",
        "mx-central-1",
        "sa-east-1",
        "us-east-1",
        "us-east-2",
        "us-gov-east-1",
        "us-gov-west-1",
        "us-west-1",
        "us-west-2",
    }
)

FAILOVER_VALUES = frozenset({"PRIMARY", "SECONDARY"})

# Route53's API patterns for GeoProximityLocation.Coordinates
_LATITUDE = re.compile(r"[-+]?[0-9]{1,2}(\.[0-9]{0,2})?")
_LONGITUDE = re.compile(r"[-+]?[0-9]{1,3}(\.[0-9]{0,2})?")
_SUBDIVISION = re.compile(r"[A-Z0-9]{1,3}")

# Addresses that must never be published in a public zone by accident (DESIGN rule 3, the seed article).
_PRIVATE_NETWORKS = tuple(
    ipaddress.ip_network(n)
    for n in (
        "10.0.0.0/8",  # RFC 1918
        "172.16.0.0/12",  # RFC 1918
        "192.168.0.0/16",  # RFC 1918
        "127.0.0.0/8",  # loopback
        "169.254.0.0/16",  # IPv4 link-local
        "100.64.0.0/10",  # CGNAT shared address space, RFC 6598
        "::1/128",  # IPv6 loopback
        "fe80::/10",  # IPv6 link-local
        "fc00::/7",  # IPv6 unique local addresses, RFC 4193
    )
)


def is_private_address(ip: str) -> bool:
    """Whether `ip` is an address that must not be published in a public zone.

    RFC 1918, loopback (127/8, ::1), link-local (169.254/16, fe80::/10), CGNAT 100.64/10 and IPv6 ULA
    fc00::/7; IPv4-mapped IPv6 addresses (::ffff:10.0.0.1) count as their IPv4 address. A string that is not
    an IP address (a host name) is not private: False.
    """
    try:
        addr = ipaddress.ip_address(ip.strip())
    except ValueError:
        return False
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return any(addr in net for net in _PRIVATE_NETWORKS if net.version == addr.version)


def private_addresses(rs: RecordSet) -> list[str]:
    """The private addresses among an A/AAAA record set's values (sorted, as written)."""
    if rs.type not in ("A", "AAAA"):
        return []
    return sorted(v for v in rs.values if is_private_address(v))


@dataclass(frozen=True, slots=True)
class Problem:
    """One broken rule: the record (or name) and the Route53 field, and a sentence saying what is wrong."""

    name: str
    field: str
    message: str


def _label_problems(name: str, what: str) -> list[str]:
    labels = name.rstrip(".").split(".")
    out = [
        f"{what}: label {label[:20]!r}… is longer than 63 characters"
        for label in labels
        if len(label) > MAX_LABEL
    ]
    if any(label == "" for label in labels):
        out.append(f"{what}: empty label in the name")
    if len(name) > MAX_NAME - 1:
        out.append(f"{what}: the name is longer than 253 characters")
    return out


def validate_record_set(rs: RecordSet, zone: str) -> list[Problem]:
    """Route53's rules for one record set, in the zone `zone` (FQDN with trailing dot)."""
    where = f"{rs.name} {rs.type}" + (f" [{rs.set_identifier}]" if rs.set_identifier else "")
    out: list[Problem] = []

    def bad(field: str, message: str) -> None:
        out.append(Problem(rs.name, field, f"{where}: {message}"))

    if rs.name != zone and not rs.name.endswith("." + zone):
        bad("Name", f"is not in zone {zone}")
    for msg in _label_problems(rs.name, "Name"):
        bad("Name", msg.removeprefix("Name: "))

    # TTL
    if rs.alias is None:
        if rs.ttl is not None and not 0 <= rs.ttl <= MAX_TTL:
            bad("TTL", f"TTL {rs.ttl} is outside 0..{MAX_TTL}")
        if not rs.values:
            bad("ResourceRecords", "has no values")
    else:
        if rs.values:
            bad("ResourceRecords", "an alias record carries no values")
        if rs.type not in ("A", "AAAA"):
            bad("AliasTarget", "the portal writes alias records only for A and AAAA")
        if rs.routing.multi_value_answer:
            bad("MultiValueAnswer", "Route53 does not allow multivalue answer alias records")
        if not rs.alias.dns_name:
            bad("AliasTarget.DNSName", "alias target is empty")

    # values by type
    if rs.type == "A":
        for v in rs.values:
            try:
                ipaddress.IPv4Address(v)
            except ValueError:
                bad("ResourceRecords", f"{v!r} is not an IPv4 address")
    elif rs.type == "AAAA":
        for v in rs.values:
            try:
                ipaddress.IPv6Address(v)
            except ValueError:
                bad("ResourceRecords", f"{v!r} is not an IPv6 address")
    elif rs.type == "CNAME":
        if rs.name == zone:
            bad("Type", "a CNAME cannot be at the zone apex (it would hide the SOA and NS records)")
        if len(rs.values) > 1:
            bad("ResourceRecords", "a CNAME has exactly one value")
    elif rs.type == "TXT":
        for v in rs.values:
            if any(len(s) > 255 for s in txt_strings(v)):
                bad(
                    "ResourceRecords",
                    "a TXT string is longer than 255 characters; split it into several strings",
                )

    # set identifier and routing
    r = rs.routing
    policies = r.policies
    if rs.set_identifier:
        if len(rs.set_identifier) > MAX_SET_IDENTIFIER:
            bad("SetIdentifier", f"set identifier is {len(rs.set_identifier)} characters; at most 128")
        if not policies:
            bad("SetIdentifier", "a set identifier needs a routing policy (weight, failover, region, geo...)")
        elif len(policies) > 1:
            bad("SetIdentifier", f"one record set can use one routing policy, not {' and '.join(policies)}")
    elif policies:
        bad("SetIdentifier", f"{' and '.join(policies)} routing needs a set identifier")
    if r.weight is not None and not 0 <= r.weight <= MAX_WEIGHT:
        bad("Weight", f"weight {r.weight} is outside 0..255")
    if r.failover and r.failover not in FAILOVER_VALUES:
        bad("Failover", f"failover {r.failover!r} must be PRIMARY or SECONDARY")
    if r.region and r.region not in AWS_REGIONS:
        bad("Region", f"{r.region!r} is not an AWS region")
    if r.continent:
        if r.continent not in CONTINENT_CODES:
            bad(
                "GeoLocation.ContinentCode", f"{r.continent!r} is not a continent code (AF AN AS EU NA OC SA)"
            )
        if r.country or r.subdivision:
            bad("GeoLocation", "a continent code excludes country and subdivision codes")
    if r.country and r.country not in COUNTRY_CODES:
        bad("GeoLocation.CountryCode", f"{r.country!r} is not an ISO 3166 country code or '*'")
    if r.subdivision:
        if not r.country or r.country == "*":
            bad("GeoLocation.SubdivisionCode", "a subdivision code needs a country code")
        if not _SUBDIVISION.fullmatch(r.subdivision):
            bad("GeoLocation.SubdivisionCode", f"{r.subdivision!r} is not a subdivision code")
    gp_kinds = [
        x
        for x, on in (
            ("AWSRegion", bool(r.geoproximity_region)),
            ("LocalZoneGroup", bool(r.geoproximity_local_zone_group)),
            ("Coordinates", r.geoproximity_coordinates is not None),
        )
        if on
    ]
    if len(gp_kinds) > 1:
        bad("GeoProximityLocation", f"only one of {', '.join(gp_kinds)} may be set")
    if r.geoproximity_bias is not None and not gp_kinds:
        bad("GeoProximityLocation", "a bias needs an AWS region, local zone group or coordinates")
    if r.geoproximity_region and r.geoproximity_region not in AWS_REGIONS:
        bad("GeoProximityLocation.AWSRegion", f"{r.geoproximity_region!r} is not an AWS region")
    if r.geoproximity_bias is not None and not MIN_BIAS <= r.geoproximity_bias <= MAX_BIAS:
        bad("GeoProximityLocation.Bias", f"bias {r.geoproximity_bias} is outside -99..99")
    if r.geoproximity_coordinates is not None:
        lat, lon = r.geoproximity_coordinates
        if not _LATITUDE.fullmatch(lat) or not -90 <= float(lat) <= 90:
            bad("GeoProximityLocation.Coordinates.Latitude", f"latitude {lat!r} must be -90..90, 2 decimals")
        if not _LONGITUDE.fullmatch(lon) or not -180 <= float(lon) <= 180:
            bad(
                "GeoProximityLocation.Coordinates.Longitude",
                f"longitude {lon!r} must be -180..180, 2 decimals",
            )
    return out


def validate_name(record_sets: Sequence[RecordSet], zone: str) -> list[Problem]:
    """Route53's rules between the record sets that share one name (all of them: owned, foreign, planned).

    A CNAME shares its name with nothing but other CNAMEs of the same routing group; the record sets of one
    (name, type) are either one plain record set or set-identifier record sets of one routing policy, with at
    most one PRIMARY and one SECONDARY, distinct geolocations and latency regions, at most 100 weighted.
    """
    if not record_sets:
        return []
    name = record_sets[0].name
    out: list[Problem] = []
    types = {rs.type for rs in record_sets}
    if "CNAME" in types and len(types) > 1:
        others = ", ".join(sorted(types - {"CNAME"}))
        out.append(
            Problem(name, "Type", f"{name}: a CNAME cannot share its name with other records ({others})")
        )
    by_type: dict[str, list[RecordSet]] = {}
    for rs in record_sets:
        by_type.setdefault(rs.type, []).append(rs)
    for rtype, sets in sorted(by_type.items()):
        where = f"{name} {rtype}"
        if len(sets) < 2:
            continue
        plain = [rs for rs in sets if not rs.set_identifier]
        if plain:
            ids = ", ".join(sorted(rs.set_identifier for rs in sets if rs.set_identifier))
            out.append(
                Problem(
                    name,
                    "SetIdentifier",
                    f"{where}: a plain record set cannot coexist with set-identifier record sets ({ids})",
                )
            )
            continue
        pols = {rs.routing.policy for rs in sets}
        if len(pols) > 1:
            detail = ", ".join(f"{rs.set_identifier}={rs.routing.policy}" for rs in sorted(sets, key=_sid))
            out.append(Problem(name, "SetIdentifier", f"{where}: mixed routing policies ({detail})"))
            continue
        policy = pols.pop()
        if policy == "failover":
            for role in ("PRIMARY", "SECONDARY"):
                ids = sorted(rs.set_identifier for rs in sets if rs.routing.failover == role)
                if len(ids) > 1:
                    out.append(
                        Problem(
                            name,
                            "Failover",
                            f"{where}: {len(ids)} {role} record sets ({', '.join(ids)}); one allowed",
                        )
                    )
        elif policy == "geolocation":
            _duplicates(
                out,
                name,
                "GeoLocation",
                where,
                "location",
                [(rs, (rs.routing.continent, rs.routing.country, rs.routing.subdivision)) for rs in sets],
            )
        elif policy == "latency":
            _duplicates(out, name, "Region", where, "region", [(rs, rs.routing.region) for rs in sets])
        elif policy == "weighted" and len(sets) > MAX_WEIGHTED_SETS:
            out.append(
                Problem(name, "Weight", f"{where}: {len(sets)} weighted record sets; Route53 allows 100")
            )
    return out


def _sid(rs: RecordSet) -> str:
    return rs.set_identifier


def _duplicates(
    out: list[Problem],
    name: str,
    field: str,
    where: str,
    what: str,
    items: Iterable[tuple[RecordSet, object]],
) -> None:
    seen: dict[object, list[str]] = {}
    for rs, v in items:
        seen.setdefault(v, []).append(rs.set_identifier)
    for v, ids in seen.items():
        if len(ids) > 1:
            shown = "/".join(x for x in v if x) if isinstance(v, tuple) else v
            out.append(
                Problem(
                    name,
                    field,
                    f"{where}: {what} {shown} is used by {len(ids)} record sets ({', '.join(sorted(ids))})",
                )
            )
