"""Values read the way ExternalDNS's Go code reads them: time.ParseDuration, strconv.ParseInt, and its TTL
annotation (a duration first, then an integer). Differences here would make the portal read an annotation
otherwise than ExternalDNS does (tests/integration/test_external_dns_differential.py).

Pure: no Django, boto3 or Kubernetes import.
"""

from __future__ import annotations

import re
from fractions import Fraction

_SIGNED_INT = re.compile(r"[-+]?[0-9]+")

# Go's time.ParseDuration units, in nanoseconds ("us", "µs" U+00B5 and "μs" U+03BC all mean microseconds).
_UNIT_NS = {
    "ns": 1,
    "us": 10**3,
    "\u00b5s": 10**3,
    "\u03bcs": 10**3,
    "ms": 10**6,
    "s": 10**9,
    "m": 60 * 10**9,
    "h": 3600 * 10**9,
}
_NUMBER = re.compile(r"([0-9]*)(?:\.([0-9]*))?")
_UNIT = re.compile(r"[^0-9.]*")
_MAX_DURATION_NS = 2**63 - 1


def parse_go_duration(text: str) -> int:
    """Nanoseconds in a Go duration such as "10m", "1h30m", "1.5s" or "-2s", read as time.ParseDuration does.

    Raises ValueError with Go's reason ("missing unit in duration", "unknown unit ...", "invalid duration").
    """
    s = text
    negative = False
    if s[:1] in ("+", "-"):
        negative = s[0] == "-"
        s = s[1:]
    if s == "0":  # the one unitless duration Go accepts
        return 0
    if not s:
        raise ValueError("invalid duration")
    total = Fraction(0)
    while s:
        number = _NUMBER.match(s)
        if number is None:  # unreachable: the pattern matches the empty string
            raise ValueError("invalid duration")
        whole, frac = number.group(1), number.group(2)
        if not whole and not frac:
            raise ValueError("invalid duration")
        s = s[number.end() :]
        unit_match = _UNIT.match(s)
        if unit_match is None:  # unreachable, as above
            raise ValueError("invalid duration")
        unit = unit_match.group(0)
        if not unit:
            raise ValueError("missing unit in duration")
        if unit not in _UNIT_NS:
            raise ValueError(f"unknown unit {unit!r} in duration")
        s = s[unit_match.end() :]
        value = Fraction(int(whole or "0"))
        if frac:
            value += Fraction(int(frac), 10 ** len(frac))
        total += value * _UNIT_NS[unit]
        if total > _MAX_DURATION_NS:
            raise ValueError("invalid duration (overflow)")
    ns = int(total)  # Go truncates the fraction of a nanosecond
    return -ns if negative else ns


def parse_ttl_seconds(text: str) -> int:
    """Seconds in a TTL annotation value, as ExternalDNS's parseTTL reads it (no range check).

    A Go duration first ("10m", "1h30m"; "1.5s" truncates to 1), then a plain integer ("600"). Raises
    ValueError when neither reads.
    """
    try:
        ns = parse_go_duration(text)
    except ValueError:
        if not _SIGNED_INT.fullmatch(text):
            raise ValueError(f"`{text}` is not a TTL: use seconds (600) or a duration (10m, 1h30m)") from None
        value = int(text)
        if not -(2**63) <= value < 2**63:  # strconv.ParseInt(s, 10, 64)
            raise ValueError(f"`{text}` is not a TTL: the number is too large") from None
        return value
    # time.Duration.Seconds() is a float; int64() truncates toward zero.
    return int(ns / 10**9) if ns >= 0 else -int(-ns / 10**9)


def go_parse_int(text: str) -> int:
    """An integer as Go's strconv.ParseInt(text, 10, 64) reads it ("+5" and "007" too); ValueError if not."""
    if not _SIGNED_INT.fullmatch(text):
        raise ValueError(f"`{text}` is not an integer")
    value = int(text)
    if not -(2**63) <= value < 2**63:
        raise ValueError(f"`{text}` is out of range")
    return value
