"""Route53-shaped record sets as PowerDNS rrsets, and back: the part of the PowerDNS provider that is pure.

The plan engine speaks Route53's model: one record set per (name, type, set identifier), routing on each set,
an ownership TXT per set. PowerDNS holds one rrset per (name, type) and answers routed names with LUA records
that it evaluates for every query. This module maps one onto the other:

- a simple record set (no set identifier, no routing) is a plain rrset of its type, as ExternalDNS's own
  PowerDNS provider writes it (so the two share a zone with the same TXT ownership format);
- the routed record sets of a name (weighted, failover, geolocation) become one LUA rrset at that name, one
  LUA record per answered type: weighted → `pickwrandom`, failover → `ifurlup` with the primary's and the
  secondary's addresses as two sets (the first set with an address up answers), geolocation → `country()`
  and `continent()` tests, most specific first, as Route53 chooses (this needs PowerDNS's GeoIP backend);
- the ownership TXTs of routed record sets (one per set identifier) become one TXT rrset at their name.

PowerDNS loses the set identifiers in that mapping, so the record sets an rrset was rendered from are kept
beside it, in an rrset comment of the account `dnsportal` (comments are stored, never served). Reading the
zone back, an rrset whose comment renders to exactly its content lists as those record sets; one edited by
hand since lists as what it is (a LUA rrset is then a type the plan does not manage: shown, never touched).

`record_problem()` says, in a sentence, what PowerDNS cannot answer as the record set asks (latency routing,
a state in geolocation, a weighted set with a health check, ...); the plan engine refuses those names rather
than simplifying them.

Pure: no Django, no HTTP.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from records.providers.base import PENDING_HEALTH_CHECK_ID
from records.recordset import (
    DEFAULT_TTL,
    RecordSet,
    recordset_from_route53,
    recordset_to_route53,
)

COMMENT_ACCOUNT = "dnsportal"
COMMENT_PREFIX = "dnsportal record sets v1: "
LUA = "LUA"
# Answered types a LUA record can stand for here (ifurlup answers addresses only: A and AAAA).
LUA_TYPES = ("A", "AAAA", "CNAME")
LATENCY_REFUSED = "PowerDNS has no latency-based routing (an AWS region measure); use weighted or failover."
# Types whose content PowerDNS requires as absolute names (trailing dot).
_NAME_VALUE_TYPES = frozenset({"CNAME", "NS", "PTR", "DNAME"})


@dataclass(frozen=True)
class PdnsRRset:
    """One PowerDNS rrset as the API holds it: contents in presentation format, the members in a comment."""

    name: str
    type: str
    ttl: int
    contents: tuple[str, ...]
    members: tuple[RecordSet, ...] = ()  # the Route53-shaped record sets it was rendered from (routed only)

    @property
    def key(self) -> tuple[str, str]:
        return (self.name, self.type)


def pdns_key(rs: RecordSet) -> tuple[str, str]:
    """The PowerDNS rrset a Route53-shaped record set lives in."""
    if rs.set_identifier and rs.type in LUA_TYPES:
        return (rs.name, LUA)
    return (rs.name, rs.type)


def is_routed(rs: RecordSet) -> bool:
    return bool(rs.set_identifier)


# --- what PowerDNS can answer ----------------------------------------------------------------------------


def health_check_url(check_id: str) -> str:
    """The URL a PowerDNS "health check" id stands for ("" when it is not one): PowerDNS has no health
    check objects; `ifurlup` probes a URL on each address itself, so the id is that URL."""
    parts = urlsplit(check_id)
    if parts.scheme in ("http", "https") and parts.hostname:
        return check_id
    return ""


def record_problem(rs: RecordSet) -> str:
    """Why PowerDNS cannot serve `rs` as asked, in a sentence; "" when it can."""
    r = rs.routing
    if rs.alias is not None:
        return (
            "PowerDNS has no alias records (a Route53 feature); publish the target as a CNAME "
            "(drop the alias annotation)."
        )
    if not rs.set_identifier:
        if r.policies:
            return f"a {r.policy} routing policy needs a set identifier."
        return ""
    if rs.type not in LUA_TYPES:
        if rs.type == "TXT":
            return ""  # the ownership TXT of a routed record set: one TXT rrset holds every set's value
        return f"PowerDNS answers routed names with LUA records, for A, AAAA and CNAME only, not {rs.type}."
    policies = r.policies
    if len(policies) != 1:
        return (
            "a record set with a set identifier needs exactly one routing policy (weighted, failover or "
            "geolocation) in a PowerDNS zone."
        )
    policy = policies[0]
    if policy == "weighted":
        if rs.health_check_id:
            return (
                "PowerDNS's weighted answers (LUA pickwrandom) do not consult a health check; remove the "
                "health check or use failover."
            )
        return ""
    if policy == "failover":
        if rs.type == "CNAME":
            return (
                "PowerDNS's failover (LUA ifurlup) answers addresses: publish A or AAAA targets, not a CNAME."
            )
        pending = rs.health_check_id == PENDING_HEALTH_CHECK_ID  # a preview: created once approved
        if r.failover == "PRIMARY" and not pending and not health_check_url(rs.health_check_id):
            return (
                "failover in PowerDNS needs an HTTP or HTTPS health check on the primary (LUA ifurlup probes "
                "its URL on every address); a TCP check cannot choose between primary and secondary there."
            )
        return ""
    if policy == "geolocation":
        if r.subdivision:
            return (
                "PowerDNS's GeoIP country database has no subdivisions (states); use the country or the "
                "continent in a PowerDNS zone."
            )
        if rs.health_check_id:
            return "PowerDNS's geolocation answers (LUA country/continent) do not consult a health check."
        return ""
    if policy == "latency":
        return LATENCY_REFUSED
    names = {
        "geoproximity": "geoproximity routing",
        "multivalue": "multivalue answer routing",
        "ip-based": "IP-based (CIDR) routing",
    }
    return f"PowerDNS cannot answer {names.get(policy, policy)}; use weighted or failover, or a Route53 zone."


# --- rendering ------------------------------------------------------------------------------------------


def _lua_string(text: str) -> str:
    if "'" in text or "\\" in text or '"' in text:
        raise ValueError(f"{text!r} cannot be written into a LUA record")
    return f"'{text}'"


def _absolute(rtype: str, value: str) -> str:
    if rtype in _NAME_VALUE_TYPES and not value.endswith("."):
        return value + "."
    return value


def _weighted(rtype: str, members: Sequence[RecordSet]) -> str:
    # Route53: a set is chosen by weight/total and answers all its values; weight 0 never, unless all are 0.
    weights = [m.routing.weight or 0 for m in members]
    if not any(weights):
        weights = [1] * len(members)
    # pickwrandom answers one value: a set with n values gives each value weight/n, scaled to whole numbers
    # by the least common multiple of the value counts, so each set's share is exactly its weight's.
    scale = math.lcm(*(len(m.values) for m in members if m.values)) if any(m.values for m in members) else 1
    entries = []
    for m, w in zip(members, weights, strict=True):
        if not w or not m.values:
            continue
        share = w * scale // len(m.values)
        entries += [f"{{{share},{_lua_string(_absolute(rtype, v))}}}" for v in sorted(m.values)]
    return f'{rtype} "pickwrandom({{{",".join(entries)}}})"'


def _failover(rtype: str, members: Sequence[RecordSet]) -> str:
    primary = [m for m in members if m.routing.failover == "PRIMARY"]
    secondary = [m for m in members if m.routing.failover == "SECONDARY"]
    url = next((health_check_url(m.health_check_id) for m in primary if m.health_check_id), "")
    if not url:
        url = next((health_check_url(m.health_check_id) for m in secondary if m.health_check_id), "")
    sets = []
    for group in (primary, secondary):
        values = sorted({v for m in group for v in m.values})
        if values:
            sets.append("{" + ",".join(_lua_string(v) for v in values) + "}")
    return f'{rtype} "ifurlup({_lua_string(url)}, {{{",".join(sets)}}})"'


def _lua_list(values: Iterable[str], rtype: str) -> str:
    return "{" + ",".join(_lua_string(_absolute(rtype, v)) for v in sorted(values)) + "}"


def _geolocation(rtype: str, members: Sequence[RecordSet]) -> str:
    # Route53 answers the most specific location that matches the resolver (or its ECS subnet): a country
    # before its continent, and the default location ("*") for the rest; without a default, no answer.
    countries = sorted(
        (m for m in members if m.routing.country and m.routing.country != "*"), key=_member_order
    )
    continents = sorted((m for m in members if m.routing.continent), key=_member_order)
    default = [m for m in members if m.routing.country == "*"]
    tests = [
        f"if country({_lua_string(m.routing.country)}) then return {_lua_list(m.values, rtype)} end"
        for m in countries
    ]
    tests += [
        f"if continent({_lua_string(m.routing.continent)}) then return {_lua_list(m.values, rtype)} end"
        for m in continents
    ]
    fallback = _lua_list(default[0].values, rtype) if default else "{}"
    return f'{rtype} ";{" ".join(tests)} return {fallback}"'


def _member_order(rs: RecordSet) -> tuple[str, str]:
    return (rs.type, rs.set_identifier)


def _comment(members: Sequence[RecordSet]) -> str:
    dicts = [recordset_to_route53(m) for m in sorted(members, key=_member_order)]
    return COMMENT_PREFIX + json.dumps(dicts, separators=(",", ":"), sort_keys=True)


def render(key: tuple[str, str], members: Sequence[RecordSet]) -> PdnsRRset | None:
    """The rrset at `key` that serves `members` (record sets that all map to it); None when there are none.

    Raises ValueError for members PowerDNS cannot serve (`record_problem`), or that cannot share the rrset.
    """
    if not members:
        return None
    name, ptype = key
    for m in members:
        if pdns_key(m) != key:
            raise ValueError(f"{m.key} does not belong in the PowerDNS rrset {name} {ptype}")
        problem = record_problem(m)
        if problem:
            raise ValueError(f"{m.key}: {problem}")
    ttl = min(DEFAULT_TTL if m.ttl is None else m.ttl for m in members)
    routed = [m for m in members if is_routed(m)]
    if routed and len(routed) != len(members):
        raise ValueError(
            f"{name} {ptype} holds a plain record set; routed record sets (with set identifiers) cannot "
            "share it"
        )
    if not routed:
        if len(members) != 1:
            raise ValueError(f"{name} {ptype} is listed twice")
        m = members[0]
        return PdnsRRset(name, ptype, ttl, tuple(_absolute(ptype, v) for v in m.values))
    if ptype == "TXT":
        values = tuple(sorted({v for m in members for v in m.values}))
        return PdnsRRset(name, ptype, ttl, values, tuple(sorted(members, key=_member_order)))
    contents = []
    for rtype in LUA_TYPES:
        typed = sorted((m for m in members if m.type == rtype), key=_member_order)
        if not typed:
            continue
        policies = {m.routing.policy for m in typed}
        if len(policies) != 1:
            raise ValueError(f"{name} {rtype} mixes routing policies: {', '.join(sorted(policies))}")
        policy = policies.pop()
        render_policy = {"weighted": _weighted, "failover": _failover, "geolocation": _geolocation}[policy]
        contents.append(render_policy(rtype, typed))
    return PdnsRRset(name, LUA, ttl, tuple(contents), tuple(sorted(members, key=_member_order)))


# --- reading ---------------------------------------------------------------------------------------------


def _members_of(comments: Iterable[Mapping[str, Any]]) -> tuple[RecordSet, ...] | None:
    for c in comments:
        content = str(c.get("content") or "")
        if c.get("account") == COMMENT_ACCOUNT and content.startswith(COMMENT_PREFIX):
            try:
                items = json.loads(content[len(COMMENT_PREFIX) :])
                return tuple(recordset_from_route53(i) for i in items)
            except (ValueError, TypeError):
                return None
    return None


def _same(rendered: PdnsRRset | None, ttl: int, contents: Sequence[str]) -> bool:
    return rendered is not None and rendered.ttl == ttl and sorted(rendered.contents) == sorted(contents)


def from_api(rrset: Mapping[str, Any]) -> PdnsRRset:
    """One rrset of `GET /zones/{zone}` (name, type, ttl, records, comments) as a PdnsRRset.

    `members` are set only when the portal's comment renders to exactly what the rrset holds now.
    """
    name = str(rrset["name"]).lower()
    ptype = str(rrset["type"]).upper()
    ttl = int(rrset.get("ttl") or 0)
    contents = tuple(str(r["content"]) for r in rrset.get("records") or [] if not r.get("disabled"))
    members = _members_of(rrset.get("comments") or [])
    if members:
        try:
            rendered = render((name, ptype), members)
        except ValueError:
            rendered = None
        if _same(rendered, ttl, contents):
            return PdnsRRset(name, ptype, ttl, contents, members)
    return PdnsRRset(name, ptype, ttl, contents)


def to_route53(rrset: PdnsRRset) -> list[dict[str, Any]]:
    """The Route53-shaped record set dicts an rrset stands for (its members, or itself as one plain set)."""
    if rrset.members:
        return [recordset_to_route53(m) for m in rrset.members]
    return [
        {
            "Name": rrset.name,
            "Type": rrset.type,
            "TTL": rrset.ttl,
            "ResourceRecords": [{"Value": c} for c in rrset.contents],
        }
    ]


def to_api(rrset: PdnsRRset, *, changetype: str = "REPLACE", modified_at: int = 0) -> dict[str, Any]:
    """The PATCH entry that makes the server hold `rrset` (its comment replaced, or removed when plain)."""
    comments = []
    if rrset.members:
        comments = [
            {"content": _comment(rrset.members), "account": COMMENT_ACCOUNT, "modified_at": modified_at}
        ]
    return {
        "name": rrset.name,
        "type": rrset.type,
        "ttl": rrset.ttl,
        "changetype": changetype,
        "records": [{"content": c, "disabled": False} for c in rrset.contents],
        "comments": comments,
    }


def delete_api(key: tuple[str, str]) -> dict[str, Any]:
    return {"name": key[0], "type": key[1], "changetype": "DELETE"}
