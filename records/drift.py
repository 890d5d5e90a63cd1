"""Drift detection from the nameservers' answers: pure core.

The authoritative nameservers answer for every record the portal owns, for free; a Route53 zone read costs
ceil(R/300) API calls. So between full reads, a drift check asks the nameservers for each owned record set
whose answer does not depend on who asks (`checkable`: simple A/AAAA/CNAME/TXT, and their ownership TXTs) and
compares each answer with the stored state; the provider's record count (one `GetHostedZone`) catches record
sets added or removed anywhere in the zone. `judge` turns the answers into a verdict:

- `UNCHANGED`: every answer is the stored record set and the count matches: nothing to read.
- `RESTORE`: only simple owned records answer other values or another TTL, consistently on every nameserver
  that answered, and each one's ownership TXT answers as stored: the records as answered (`observed`) replace
  the stored ones and the zone is planned from that, with no zone read. (A simple record set is name, type,
  TTL and values, which is all a DNS answer carries, so the answer is the record set.)
- `READ`: anything else found (a record gone, a type changed, an ownership TXT changed, nameservers that
  disagree, the count moved): the zone is read through the API, which alone tells the whole story.
- `UNCHECKED`: the check could not be made (no nameserver answered, an error): the zone is read too.

Weighted, latency, geo, failover, multivalue and IP-based record sets answer per resolver, and alias records
answer with their target's addresses: none of them can be compared with one answer, so they are left to the
full read on the safety interval (and to the record count, for additions and removals).

No Django, boto3 or dnspython here: answers arrive as `Seen` values (records.jobs_drift builds them from
records.verify's answers).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from records.ownership import Registry
from records.recordset import NO_ROUTING, RecordKey, RecordSet, normalize_name, txt_decode, txt_encode

UNCHANGED = "unchanged"
RESTORE = "restore"
READ = "read"
UNCHECKED = "unchecked"

# The types whose answer is the record set itself (one rrset, no routing), as verify compares them.
CHECKABLE_TYPES = frozenset({"A", "AAAA", "CNAME", "TXT"})

# Answer statuses, as records.verify names them.
ANSWER = "ANSWER"
_NO_RESPONSE = frozenset({"TIMEOUT", "ERROR"})
# At most this many names are spelled out in a verdict's summary; the rest are counted.
_SHOWN = 5


@dataclass(frozen=True, slots=True)
class Probe:
    """One question of a drift check: a stored record set and what its answer must be.

    `owner_txt` is the key of the ownership TXT that makes the record the portal's (None for an ownership TXT
    itself): a record's answer is only trusted to plan from when that TXT answered as stored too.
    """

    record: RecordSet
    expected: frozenset[str]
    owner_txt: RecordKey | None = None

    @property
    def key(self) -> RecordKey:
        return self.record.key


@dataclass(frozen=True, slots=True)
class Seen:
    """What one nameserver answered to one probe: status (`ANSWER`, `NXDOMAIN`, `NODATA`, `CNAME`,
    `SERVFAIL`, `REFUSED`, `TIMEOUT`, `ERROR`...), the values in `normalize_value`'s form, the TTL."""

    nameserver: str
    status: str
    values: frozenset[str] = frozenset()
    ttl: int | None = None
    authoritative: bool = True
    detail: str = ""

    @property
    def responded(self) -> bool:
        return self.status not in _NO_RESPONSE


@dataclass(frozen=True)
class Verdict:
    """What a drift check found: `outcome` (UNCHANGED, RESTORE, READ, UNCHECKED), one sentence for the zone
    page (`summary`), the names that differ, and for RESTORE the record sets as answered."""

    outcome: str
    summary: str
    names: tuple[str, ...] = ()
    observed: tuple[RecordSet, ...] = ()
    checked: int = 0
    differences: tuple[str, ...] = field(default=(), repr=False)

    @property
    def drift(self) -> bool:
        """Whether the zone was found to differ from the stored state (not merely unchecked)."""
        return self.outcome in (RESTORE, READ)


def checkable(rs: RecordSet) -> bool:
    """Whether one DNS answer shows this whole record set: a simple (unrouted, non-alias) A, AAAA, CNAME or
    TXT record set without a set identifier or health check."""
    return (
        rs.type in CHECKABLE_TYPES
        and not rs.set_identifier
        and rs.routing == NO_ROUTING
        and rs.alias is None
        and not rs.health_check_id
        and rs.ttl is not None
        and bool(rs.values)
    )


def normalize_stored(rtype: str, value: str) -> str:
    """A stored (Route53 form) value as the nameservers' answer gives it: IPs canonical, names lower-case
    FQDNs, TXT as its joined text. Raises ValueError for a value that is not of its type."""
    if rtype == "A":
        return str(ipaddress.IPv4Address(value.strip()))
    if rtype == "AAAA":
        return str(ipaddress.IPv6Address(value.strip()))
    if rtype == "TXT":
        return txt_decode(value)
    return normalize_name(value)


def probes(stored: Iterable[RecordSet], owned: Iterable[RecordKey], registry: Registry) -> list[Probe]:
    """What to ask: every checkable owned record set whose ownership TXT is checkable too, and that TXT.

    An owned record whose TXT is routed (a weighted record's TXT is weighted) is not checkable either.
    Sorted by key, so a check asks in a stable order.
    """
    by_key = {rs.key: rs for rs in stored}
    out: dict[RecordKey, Probe] = {}
    for key in owned:
        rs = by_key.get(key)
        if rs is None or not checkable(rs):
            continue
        ownership = registry.owner_of(rs)
        if ownership is None or not checkable(ownership.txt):
            continue
        txt = ownership.txt
        try:
            out[key] = Probe(rs, frozenset(normalize_stored(rs.type, v) for v in rs.values), txt.key)
            out.setdefault(txt.key, Probe(txt, frozenset(normalize_stored("TXT", v) for v in txt.values)))
        except ValueError:
            continue  # a value the provider holds but DNS cannot serve as stored: the full read shows it
    return [out[k] for k in sorted(out)]


def matches(probe: Probe, seen: Seen) -> bool:
    """Whether an answer is the stored record set: its values and its TTL (an authoritative server hands
    out the TTL as configured; only caches count it down)."""
    return (
        seen.status == ANSWER
        and seen.authoritative
        and seen.values == probe.expected
        and seen.ttl == probe.record.ttl
    )


def _show(values: Iterable[str]) -> str:
    return ", ".join(sorted(values)) or "nothing"


def _display(name: str) -> str:
    return name[:-1] if name.endswith(".") else name


def _describe(seen: Seen) -> str:
    if seen.status == ANSWER:
        return f"{_show(seen.values)} (TTL {seen.ttl})"
    if seen.status == "CNAME":
        return f"CNAME {seen.detail}"
    return seen.status + (f" ({seen.detail})" if seen.detail else "")


def observed_record(probe: Probe, seen: Seen) -> RecordSet:
    """The record set as the nameservers answer it, in Route53's form (TXT quoted)."""
    rs = probe.record
    values = sorted(txt_encode(v) if rs.type == "TXT" else v for v in seen.values)
    return RecordSet(rs.name, rs.type, ttl=seen.ttl, values=tuple(values))


def _names(keys: Iterable[RecordKey]) -> tuple[str, ...]:
    return tuple(sorted({k.name for k in keys}))


def _list(items: Sequence[str]) -> str:
    shown = ", ".join(items[:_SHOWN])
    return shown + (f" and {len(items) - _SHOWN} more" if len(items) > _SHOWN else "")


def judge(
    checks: Sequence[Probe],
    answers: Mapping[RecordKey, Sequence[Seen]],
    *,
    stored_count: int | None = None,
    provider_count: int | None = None,
    nameservers: int = 0,
) -> Verdict:
    """The verdict of a drift check from the nameservers' answers to `checks` and the record counts.

    `answers` holds, per probe key, what each nameserver asked answered (one or more; a probe missing from it
    counts as unanswered). `provider_count` is the provider's count of record sets (None: not known), compared
    with `stored_count`. See the module docstring for the outcomes; when in doubt the verdict is READ.
    """
    count = ""
    if provider_count is not None and stored_count is not None:
        if provider_count != stored_count:
            return Verdict(
                READ,
                f"record count: the zone holds {provider_count} record sets, the stored state {stored_count}",
            )
        count = f"; record count {provider_count} as stored"
    if not checks:
        return Verdict(UNCHANGED, "no owned record set answers the same to every resolver" + count)
    unanswered: list[RecordKey] = []
    errors: list[str] = []
    differ: dict[RecordKey, Seen] = {}
    lines: list[str] = []
    for probe in checks:
        got = [s for s in answers.get(probe.key, ()) if s.responded]
        if not got:
            unanswered.append(probe.key)
            continue
        name = f"{_display(probe.record.name)} {probe.record.type}"
        bad = [s for s in got if s.status != ANSWER and s.status not in ("NXDOMAIN", "NODATA", "CNAME")]
        bad += [s for s in got if not s.authoritative and s not in bad]
        if bad:
            errors.append(f"{name}: {bad[0].nameserver} answers {_describe(bad[0])}")
            continue
        signatures = {(s.status, s.values, s.ttl, s.detail) for s in got}
        if len(signatures) > 1:
            errors.append(
                f"{name}: the nameservers disagree ("
                + "; ".join(f"{s.nameserver}: {_describe(s)}" for s in got)
                + ")"
            )
            continue
        seen = got[0]
        if matches(probe, seen):
            continue
        differ[probe.key] = seen
        stored = f"{_show(probe.expected)} (TTL {probe.record.ttl})"
        lines.append(f"{name} answers {_describe(seen)}, stored {stored}")
    if unanswered and len(unanswered) == len(checks):
        return Verdict(
            UNCHECKED,
            f"no nameserver answered any of {len(checks)} questions: reading the zone instead",
            checked=len(checks),
        )
    asked = f"{len(checks)} record sets asked of {nameservers or 'the'} nameservers"
    if errors or unanswered:
        problems = errors + [f"{_display(k.name)} {k.type}: no answer" for k in unanswered]
        return Verdict(
            UNCHECKED,
            f"{asked}: {len(problems)} could not be compared ({_list(problems)}): reading the zone",
            names=_names(differ) + _names(unanswered),
            checked=len(checks),
            differences=tuple(problems),
        )
    if not differ:
        return Verdict(UNCHANGED, f"{asked}: every answer as stored{count}", checked=len(checks))
    by_key = {p.key: p for p in checks}
    restorable = all(
        seen.status == ANSWER
        and seen.values
        and seen.ttl is not None
        and by_key[key].owner_txt is not None
        and by_key[key].owner_txt not in differ
        and by_key[key].owner_txt in by_key
        for key, seen in differ.items()
    )
    names = _names(differ)
    if restorable:
        observed = tuple(observed_record(by_key[k], differ[k]) for k in sorted(differ))
        return Verdict(
            RESTORE,
            f"DNS answers: {_list(lines)}: planned from the answers, without reading the zone",
            names=names,
            observed=observed,
            checked=len(checks),
            differences=tuple(lines),
        )
    return Verdict(
        READ,
        f"DNS answers: {_list(lines)}: reading the zone",
        names=names,
        checked=len(checks),
        differences=tuple(lines),
    )
