"""Verification core: ask the authoritative nameservers what they answer, and measure how answers split.

Pure-ish: plain data in and out, no Django, no boto3. The only I/O is DNS (dnspython) sent straight to the
given authoritative servers, never through a recursive resolver, whose cache would hide what the servers
answer now and lump a weighted split into TTL-sized chunks (route53.md, "Routing policies"). The system
resolver is used for one thing only: turning a nameserver's host name (an NS target) into its addresses.
(Which cluster serves the addresses the DNS answers, the HTTP probe, is records.probe.)

The pieces:

- `Nameserver`, `resolve_nameservers`: where to ask (`host:port`, `[v6]:port`, NS host names).
- `query`: one question to one server: UDP with EDNS (and optionally an EDNS Client Subnet option), TCP
  when the UDP answer is truncated, a timeout and retries. Returns an `Answer`.
- `check_resolution`, `wait_consistent`: every nameserver answers every expected rrset with the expected
  values and TTL, and the same as every other nameserver.
- `sample_size`, `measure_distribution`, `distribution_verdict`: N concurrent queries (asyncio), counted per
  answer set or per first value, and a chi-square goodness-of-fit test against the intended shares.
- `sample_locations`: the answer each sample client subnet gets (geolocation/latency routing, via ECS).

Synchronous entry points run their own event loop (in a helper thread when the caller already runs one, as
Playwright's sync API does), so jobs and tests call them like any function.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import ipaddress
import itertools
import math
import re
import socket
import statistics
import time
from collections import Counter
from collections.abc import Callable, Coroutine, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

import dns.asyncbackend
import dns.asyncquery
import dns.edns
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from records.recordset import normalize_name, txt_decode

T = TypeVar("T")

# 1232 bytes is the EDNS buffer size agreed at DNS Flag Day 2020: it avoids IP fragmentation on any path, and
# an answer that does not fit comes back truncated (TC bit) and is asked again over TCP.
EDNS_PAYLOAD = 1232
DEFAULT_TIMEOUT = 2.0
DEFAULT_RETRIES = 2

# Answer.status values besides the rcode names dnspython gives ("SERVFAIL", "REFUSED", "NOTIMP", ...).
ANSWER = "ANSWER"  # an rrset of the asked name and type
NXDOMAIN = "NXDOMAIN"  # the name does not exist
NODATA = "NODATA"  # the name exists, without a record of this type (NOERROR, empty answer, AA set)
CNAME = "CNAME"  # the name is an alias: the asked type lives at the target
REFERRAL = "REFERRAL"  # the server delegates the name elsewhere (no AA flag, NS in the authority section)
TIMEOUT = "TIMEOUT"  # no response within the timeout, after every retry
ERROR = "ERROR"  # no usable response: a network error or a malformed message
_NO_RESPONSE = frozenset({TIMEOUT, ERROR})

# Record types whose rdata holds domain names: DNS compares names case-insensitively (RFC 4343), so their
# values are compared lower-cased.
_NAME_TYPES = frozenset({"CNAME", "NS", "PTR", "DNAME", "MX", "SRV", "SOA", "NAPTR", "SVCB", "HTTPS"})


# --- where to ask ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Nameserver:
    """An authoritative server to query: an IP address (v4 or v6), a port, and a display name.

    `name` is how messages call it ("ns2", or the NS host name it was resolved from); the address is always
    shown too, because one NS name can stand for several addresses that answer differently.
    """

    host: str
    port: int = 53
    name: str = ""

    def __post_init__(self) -> None:
        try:
            canonical = str(ipaddress.ip_address(self.host))
        except ValueError:
            raise ValueError(
                f"nameserver {self.host!r} is not an IP address; use resolve_nameservers() for host names"
            ) from None
        if not 0 < self.port < 65536:
            raise ValueError(f"nameserver {self.host}: port {self.port} is not between 1 and 65535")
        object.__setattr__(self, "host", canonical)

    @property
    def address(self) -> str:
        """`127.0.0.1:5300` or `[::1]:5300`."""
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def __str__(self) -> str:
        return f"{self.name} {self.address}" if self.name and self.name != self.host else self.address


_BRACKETED = re.compile(r"^\[(?P<host>[^\]]+)\](?::(?P<port>\d+))?$")


def _system_lookup(host: str) -> list[str]:
    # getaddrinfo is the system resolver (/etc/hosts, then the configured DNS): used only for NS host names.
    infos = socket.getaddrinfo(host, None, type=socket.SOCK_DGRAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _parse_port(text: str, entry: str) -> int:
    port = int(text)
    if not 0 < port < 65536:
        raise ValueError(f"nameserver {entry!r}: port {port} is not between 1 and 65535")
    return port


def resolve_nameservers(
    names_or_hostports: Iterable[str],
    *,
    default_port: int = 53,
    lookup: Callable[[str], Sequence[str]] | None = None,
) -> list[Nameserver]:
    """Nameservers from `host:port` entries: IPv4 (`192.0.2.1`, `192.0.2.1:5300`), IPv6 (`2001:db8::1`,
    `[2001:db8::1]:5300`) or host names (`ns-1.awsdns-01.org`, `ns1.example.com:5300`).

    A host name becomes one `Nameserver` per address (IPv4 and IPv6) the system resolver gives for it, named
    after the host. Duplicates (same address and port) are dropped, order is kept. A malformed entry or a
    host name without addresses raises `ValueError` naming it. `lookup` replaces the system resolver (tests).
    """
    lookup = lookup or _system_lookup
    out: dict[tuple[str, int], Nameserver] = {}
    for raw in names_or_hostports:
        entry = raw.strip()
        if not entry:
            continue
        host, port = _host_port(entry, default_port)
        if _is_ip(host):
            found = [Nameserver(host, port)]
        else:
            found = _lookup_nameserver(host.rstrip(".").lower(), port, lookup)
        for ns in found:
            out.setdefault((ns.host, ns.port), ns)
    return list(out.values())


def nameserver_entry_problems(text: str) -> list[str]:
    """What is wrong with each comma-separated `host:port` entry (see `resolve_nameservers`), one sentence
    naming the entry per bad one; nothing is looked up, so a host name that does not resolve passes."""
    problems = []
    for raw in text.split(","):
        entry = raw.strip()
        if entry:
            try:
                _host_port(entry, 53)
            except ValueError as exc:
                problems.append(str(exc))
    return problems


def _host_port(entry: str, default_port: int) -> tuple[str, int]:
    """The host (an IP address or a host name) and port of one entry; ValueError naming the entry."""
    port = default_port
    if m := _BRACKETED.match(entry):
        host = m["host"]
        if ":" not in host or not _is_ip(host):  # brackets hold an IPv6 literal (RFC 3986), nothing else
            raise ValueError(f"nameserver {entry!r} is neither an IP address nor a host name")
        if m["port"]:
            port = _parse_port(m["port"], entry)
    elif entry.count(":") > 1:  # a bare IPv6 address: its colons are not a port separator
        host = entry
    elif ":" in entry:
        host, _, port_text = entry.partition(":")
        if not port_text.isdigit():
            raise ValueError(f"nameserver {entry!r}: {port_text!r} is not a port number")
        port = _parse_port(port_text, entry)
    else:
        host = entry
    if not _is_ip(host) and (":" in host or not _looks_like_hostname(host)):
        raise ValueError(f"nameserver {entry!r} is neither an IP address nor a host name")
    return host, port


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _lookup_nameserver(host: str, port: int, lookup: Callable[[str], Sequence[str]]) -> list[Nameserver]:
    try:
        addresses = list(lookup(host))
    except OSError as exc:
        raise ValueError(f"nameserver {host!r} does not resolve: {exc}") from None
    if not addresses:
        raise ValueError(f"nameserver {host!r} does not resolve to any address")
    # a link-local IPv6 address may come with a %zone suffix, which an address literal cannot carry
    return [Nameserver(addr.split("%")[0], port, name=host) for addr in addresses]


_LABEL = re.compile(r"^(?!-)[A-Za-z0-9_-]{1,63}(?<!-)$")


def _looks_like_hostname(host: str) -> bool:
    labels = host.rstrip(".").split(".")
    return len(host) <= 254 and all(_LABEL.match(label) for label in labels) and not labels[-1].isdigit()


# --- values ----------------------------------------------------------------------------------------------


def rdata_value(rd: dns.rdata.Rdata) -> str:
    """The comparable text of one record: IPs canonical, names lower-case FQDN, TXT strings joined."""
    rdtype = dns.rdatatype.to_text(rd.rdtype)
    if rdtype == "A":
        return str(ipaddress.IPv4Address(rd.address))  # type: ignore[attr-defined]
    if rdtype == "AAAA":
        return str(ipaddress.IPv6Address(rd.address))  # type: ignore[attr-defined]
    if rdtype in ("TXT", "SPF"):
        # A TXT record is a sequence of <=255-byte character-strings; clients read them concatenated.
        return b"".join(rd.strings).decode("utf-8", "backslashreplace")  # type: ignore[attr-defined]
    text = rd.to_text(origin=dns.name.root, relativize=False)
    return text.lower() if rdtype in _NAME_TYPES else text


def normalize_value(rdtype: str, value: str) -> str:
    """The comparable text of an expected value of type `rdtype`, as `rdata_value` gives for an answer.

    A/AAAA must be addresses (`2001:DB8:0::1` → `2001:db8::1`); names become lower-case FQDNs
    (`Target.Example.com` → `target.example.com.`); a TXT value may be given as text (`hello world`) or in
    Route53's quoted form (`"hello " "world"`), and compares as its joined text. Raises `ValueError`.
    """
    rdtype = rdtype.upper()
    if rdtype in ("TXT", "SPF"):
        return txt_decode(value)
    try:
        rd = dns.rdata.from_text(
            dns.rdataclass.IN, dns.rdatatype.from_text(rdtype), value.strip(), origin=dns.name.root
        )
    except (dns.exception.DNSException, ValueError) as exc:
        raise ValueError(f"{value!r} is not a valid {rdtype} value: {exc}") from None
    return rdata_value(rd)


def _display_name(name: str) -> str:
    return name[:-1] if name.endswith(".") and name != "." else name


def _show(rdtype: str, values: Iterable[str]) -> str:
    vals = sorted(values)
    if rdtype in ("TXT", "SPF"):
        vals = [f'"{v}"' for v in vals]
    return ", ".join(vals) if vals else "nothing"


@dataclass(frozen=True, slots=True)
class ExpectedRRset:
    """What the nameservers should answer for (name, type): the values and, when set, the TTL.

    `values` empty means the rrset must not exist (NXDOMAIN or NODATA), which is how a deleted record is
    verified. For a name answered by one of several record sets (weighted, or any routing policy with set
    identifiers), build it with `ExpectedRRset.one_of`: an answer passes when it is exactly one of the sets.
    Values are normalised on construction (`normalize_value`); a bad value raises `ValueError`.
    """

    name: str
    type: str
    values: frozenset[str] = frozenset()
    ttl: int | None = None
    answer_sets: tuple[frozenset[str], ...] = ()

    def __post_init__(self) -> None:
        rdtype = self.type.upper()
        object.__setattr__(self, "name", normalize_name(self.name))
        object.__setattr__(self, "type", rdtype)
        object.__setattr__(self, "values", frozenset(normalize_value(rdtype, v) for v in self.values))
        sets = tuple(frozenset(normalize_value(rdtype, v) for v in s) for s in self.answer_sets)
        object.__setattr__(self, "answer_sets", sets)
        if sets:
            object.__setattr__(self, "values", frozenset().union(*sets))
        if self.ttl is not None and not 0 <= self.ttl <= 2_147_483_647:
            raise ValueError(f"{self.name} {rdtype}: TTL {self.ttl} is not between 0 and 2147483647")

    @classmethod
    def one_of(
        cls, name: str, rdtype: str, sets: Iterable[Iterable[str]], ttl: int | None = None
    ) -> ExpectedRRset:
        """A name served by several record sets (weighted and other routed policies): each query is
        answered with one whole set, so an answer is right when it equals one of `sets`."""
        return cls(name, rdtype, ttl=ttl, answer_sets=tuple(frozenset(s) for s in sets))

    @property
    def key(self) -> tuple[str, str]:
        return (self.name, self.type)

    def describe(self) -> str:
        """`A 203.0.113.10`, `one of A {192.0.2.1} / {192.0.2.2}`, or `no A record`."""
        if self.answer_sets:
            return f"one of {self.type} " + " / ".join(
                "{" + _show(self.type, s) + "}" for s in self.answer_sets
            )
        if not self.values:
            return f"no {self.type} record"
        return f"{self.type} {_show(self.type, self.values)}"

    def accepts(self, values: frozenset[str]) -> bool:
        """Whether an answer with these values is right."""
        if self.answer_sets:
            return values in self.answer_sets
        return values == self.values


# --- one question to one server --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Answer:
    """What one nameserver answered to one question, reduced to what verification compares.

    `status` is `ANSWER`, `NXDOMAIN`, `NODATA`, `CNAME` (target in `detail`), `REFERRAL`, another rcode
    (`SERVFAIL`, `REFUSED`, ...), `TIMEOUT` or `ERROR` (text in `detail`). `first` is the first value in the
    order the server sent them: the address most clients connect to.
    """

    status: str
    values: frozenset[str] = frozenset()
    first: str = ""
    ttl: int | None = None
    authoritative: bool = True
    detail: str = ""
    seconds: float = 0.0
    tcp: bool = False
    ecs_scope: int | None = None  # the scope prefix length a server returns for an ECS query (RFC 7871)

    @property
    def responded(self) -> bool:
        return self.status not in _NO_RESPONSE

    def signature(self, with_values: bool = True) -> tuple[Hashable, ...]:
        """What two servers must share to count as answering the same."""
        return (self.status, self.values if with_values else None, self.ttl, self.detail)

    def describe(self, rdtype: str) -> str:
        """`192.0.2.9 (TTL 60)`, `NXDOMAIN`, `no A record (NODATA)`, `CNAME x.example.com.`, `TIMEOUT (…)`."""
        if self.status == ANSWER:
            return f"{_show(rdtype, self.values)} (TTL {self.ttl})"
        if self.status == NODATA:
            return f"no {rdtype} record (NODATA)"
        if self.status == CNAME:
            return f"CNAME {self.detail}"
        if self.detail:
            return f"{self.status} ({self.detail})"
        return self.status

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "values": sorted(self.values),
            "first": self.first,
            "ttl": self.ttl,
            "authoritative": self.authoritative,
            "detail": self.detail,
            "seconds": round(self.seconds, 6),
            "tcp": self.tcp,
            "ecs_scope": self.ecs_scope,
        }


def _ecs_option(subnet: str) -> dns.edns.ECSOption:
    try:
        net = ipaddress.ip_network(subnet, strict=False)
    except ValueError:
        raise ValueError(f"{subnet!r} is not a client subnet (e.g. 198.51.100.0/24)") from None
    # RFC 7871: the source prefix length says how much of the address the server may use; scope 0 in queries.
    return dns.edns.ECSOption(str(net.network_address), net.prefixlen)


def make_query(name: str, rdtype: str, ecs: str | None = None) -> dns.message.Message:
    """An EDNS query for (name, type) with recursion desired off, and an optional ECS option."""
    options = [_ecs_option(ecs)] if ecs else []
    q = dns.message.make_query(
        normalize_name(name), rdtype.upper(), use_edns=0, payload=EDNS_PAYLOAD, options=options
    )
    # RD off: we want what this server holds; one that also recursed would otherwise fetch names it is not
    # authoritative for from elsewhere, and the answer would prove nothing about the zone
    q.flags &= ~dns.flags.RD
    return q


def interpret(response: dns.message.Message, name: str, rdtype: str) -> Answer:
    """Reduce a response to an `Answer` for (name, type)."""
    qname = dns.name.from_text(normalize_name(name))
    qtype = dns.rdatatype.from_text(rdtype.upper())
    aa = bool(response.flags & dns.flags.AA)
    scope = next((o.scopelen for o in response.options if isinstance(o, dns.edns.ECSOption)), None)
    rcode = response.rcode()
    if rcode == dns.rcode.NXDOMAIN:
        return Answer(NXDOMAIN, authoritative=aa, ecs_scope=scope)
    if rcode != dns.rcode.NOERROR:
        return Answer(dns.rcode.to_text(rcode), authoritative=aa, ecs_scope=scope)
    rrset = _find(response.answer, qname, qtype)
    if rrset is not None:
        values = [rdata_value(rd) for rd in rrset]
        return Answer(
            ANSWER,
            frozenset(values),
            first=values[0] if values else "",
            ttl=rrset.ttl,
            authoritative=aa,
            ecs_scope=scope,
        )
    alias = _find(response.answer, qname, dns.rdatatype.CNAME)
    if alias is not None:
        target = rdata_value(next(iter(alias)))
        return Answer(CNAME, detail=target, ttl=alias.ttl, authoritative=aa, ecs_scope=scope)
    if not aa and any(rr.rdtype == dns.rdatatype.NS for rr in response.authority):
        return Answer(REFERRAL, authoritative=False, ecs_scope=scope)
    return Answer(NODATA, authoritative=aa, ecs_scope=scope)


def _find(section: list[dns.rrset.RRset], qname: dns.name.Name, qtype: int) -> dns.rrset.RRset | None:
    return next((rr for rr in section if rr.name == qname and rr.rdtype == qtype), None)


class _Sockets:
    """One UDP socket per address family, reused for a worker's sequential queries (no bind per query)."""

    def __init__(self) -> None:
        self._by_af: dict[int, Any] = {}

    async def get(self, af: int) -> Any:
        if af not in self._by_af:
            backend = dns.asyncbackend.get_default_backend()
            self._by_af[af] = await backend.make_socket(af, socket.SOCK_DGRAM)
        return self._by_af[af]

    async def close(self) -> None:
        for sock in self._by_af.values():
            await sock.close()
        self._by_af.clear()


async def query_async(
    ns: Nameserver,
    name: str,
    rdtype: str,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    retries: int = DEFAULT_RETRIES,
    ecs: str | None = None,
    sockets: _Sockets | None = None,
) -> Answer:
    """`query` for code already in an event loop."""
    q = make_query(name, rdtype, ecs)
    af = socket.AF_INET6 if ":" in ns.host else socket.AF_INET
    error = ""
    for _attempt in range(retries + 1):
        started = time.perf_counter()
        try:
            udp_sock = await sockets.get(af) if sockets else None
            response, tcp = await dns.asyncquery.udp_with_fallback(
                q,
                ns.host,
                timeout=timeout,
                port=ns.port,
                udp_sock=udp_sock,
                # a reused socket may still receive a late answer to an earlier, timed-out query: skip it
                ignore_unexpected=True,
                ignore_errors=True,
            )
        except dns.exception.Timeout:
            error = f"no response within {timeout:g} s, {retries + 1} tries"
            continue
        except (OSError, dns.exception.DNSException, EOFError) as exc:
            error = f"{type(exc).__name__}: {exc}".rstrip(": ")
            continue
        answer = interpret(response, name, rdtype)
        return dataclasses.replace(answer, seconds=time.perf_counter() - started, tcp=tcp)
    return Answer(TIMEOUT if error.startswith("no response") else ERROR, detail=error)


def _run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion from synchronous code, even under a running event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    # asyncio.run refuses to nest; Playwright's sync API (e2e tests) keeps a loop in the main thread
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


def query(
    ns: Nameserver,
    name: str,
    rdtype: str,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    retries: int = DEFAULT_RETRIES,
    ecs: str | None = None,
) -> Answer:
    """Ask one authoritative server for (name, type) over UDP with EDNS, TCP if the answer is truncated.

    `timeout` is per try; a try that times out or fails on the network is repeated `retries` times. `ecs`
    (`198.51.100.0/24`) adds an EDNS Client Subnet option, as a resolver serving that subnet would send.
    Never raises for DNS or network trouble: that is an `Answer` with status TIMEOUT or ERROR.
    """
    return _run(query_async(ns, name, rdtype, timeout=timeout, retries=retries, ecs=ecs))


# --- resolution check ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Difference:
    """One thing a nameserver answers differently from the plan or from its peers.

    `kind`: `values`, `ttl`, `missing` (NXDOMAIN/NODATA/CNAME where records were expected), `unexpected`
    (records where none were expected), `error` (no response, REFUSED, SERVFAIL, not authoritative),
    `inconsistent` (answers differently from the other nameservers).
    """

    nameserver: str
    name: str
    type: str
    kind: str
    message: str

    def to_dict(self) -> dict[str, str]:
        return {
            "nameserver": self.nameserver,
            "name": self.name,
            "type": self.type,
            "kind": self.kind,
            "message": self.message,
        }


@dataclass
class ResolutionReport:
    """The result of `check_resolution`: every answer, every difference, and how long the queries took."""

    nameservers: list[Nameserver]
    expected: list[ExpectedRRset]
    # str(nameserver) -> (name, type) -> Answer
    answers: dict[str, dict[tuple[str, str], Answer]]
    differences: list[Difference]
    elapsed: float

    @property
    def ok(self) -> bool:
        """Every nameserver answers every expected rrset as planned, and they all agree."""
        return not self.differences

    @property
    def timings(self) -> dict[str, dict[str, float]]:
        """Per nameserver: queries answered, mean and slowest query time in milliseconds."""
        out: dict[str, dict[str, float]] = {}
        for ns, by_key in self.answers.items():
            times = [a.seconds * 1000 for a in by_key.values() if a.responded]
            out[ns] = {
                "queries": float(len(times)),
                "mean_ms": round(statistics.fmean(times), 3) if times else 0.0,
                "max_ms": round(max(times), 3) if times else 0.0,
            }
        return out

    def summary(self) -> str:
        """One line: `3 record sets on 2 nameservers: all as planned and consistent`, or the differences."""
        head = f"{len(self.expected)} record sets on {len(self.nameservers)} nameservers"
        if self.ok:
            return f"{head}: all as planned and consistent"
        bad = len({d.nameserver for d in self.differences})
        return f"{head}: {len(self.differences)} differences on {bad} nameservers"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: for a Verification row."""
        return {
            "ok": self.ok,
            "summary": self.summary(),
            "elapsed": round(self.elapsed, 6),
            "nameservers": [str(ns) for ns in self.nameservers],
            "differences": [d.to_dict() for d in self.differences],
            "answers": {
                ns: {f"{name} {rdtype}": a.to_dict() for (name, rdtype), a in by_key.items()}
                for ns, by_key in self.answers.items()
            },
            "timings": self.timings,
        }


def _compare(ns: str, exp: ExpectedRRset, got: Answer) -> list[Difference]:
    """The differences between one nameserver's answer and the plan."""
    where = f"{ns}: {_display_name(exp.name)} {exp.type}"

    def diff(kind: str, text: str) -> Difference:
        return Difference(ns, exp.name, exp.type, kind, f"{where} {text}")

    if not got.responded:
        return [diff("error", f"got no answer: {got.detail}")]
    if got.status == REFERRAL:
        return [diff("error", "is referred elsewhere (no AA flag): the server is not authoritative for it")]
    if got.status not in (ANSWER, NXDOMAIN, NODATA, CNAME):
        hint = " (the server does not serve this zone)" if got.status == "REFUSED" else ""
        return [diff("error", f"answers {got.status}{hint}, expected {exp.describe()}")]
    out: list[Difference] = []
    if not got.authoritative:
        out.append(diff("error", "answer has no AA flag: the server is not authoritative for it"))
    if not exp.values:
        if got.status == ANSWER:
            out.append(diff("unexpected", f"answers {_show(exp.type, got.values)}, expected no record"))
        elif got.status == CNAME:
            out.append(diff("unexpected", f"answers CNAME {got.detail}, expected no record"))
        return out
    if got.status == NXDOMAIN:
        out.append(diff("missing", f"NXDOMAIN, expected {exp.describe()}"))
    elif got.status == NODATA:
        out.append(diff("missing", f"answers no {exp.type} record (NODATA), expected {exp.describe()}"))
    elif got.status == CNAME:
        out.append(diff("missing", f"answers CNAME {got.detail}, expected {exp.describe()}"))
    else:
        if not exp.accepts(got.values):
            expected = exp.describe() if exp.answer_sets else _show(exp.type, exp.values)
            out.append(diff("values", f"answers {_show(exp.type, got.values)}, expected {expected}"))
        # An authoritative server hands out the TTL as configured; only caches count it down.
        if exp.ttl is not None and got.ttl != exp.ttl:
            out.append(diff("ttl", f"TTL {got.ttl}, expected {exp.ttl}"))
    return out


def _inconsistencies(
    exp: ExpectedRRset, answers: list[tuple[Nameserver, Answer]], nameservers: Sequence[Nameserver]
) -> list[Difference]:
    """Nameservers whose answer differs from the majority's (ties: the group answering as planned, else the
    group of the first nameserver)."""
    # Weighted names answer one set per query: the set may differ between servers, the rest may not.
    with_values = not exp.answer_sets
    responded = [(ns, a) for ns, a in answers if a.responded]
    groups: dict[tuple[Hashable, ...], list[Nameserver]] = {}
    for ns, a in responded:
        groups.setdefault(a.signature(with_values), []).append(ns)
    if len(groups) < 2:
        return []
    order = {ns: i for i, ns in enumerate(nameservers)}
    by_ns = dict(responded)

    def rank(sig: tuple[Hashable, ...]) -> tuple[int, bool, int]:
        members = groups[sig]
        # the majority; on a tie the group answering as planned, then the one of the first nameserver
        return (len(members), not _compare("", exp, by_ns[members[0]]), -min(order[n] for n in members))

    reference_sig = max(groups, key=rank)
    reference = groups[reference_sig][0]
    ref_answer = by_ns[reference]
    out = []
    for ns, a in responded:
        if a.signature(with_values) == reference_sig:
            continue
        out.append(
            Difference(
                str(ns),
                exp.name,
                exp.type,
                "inconsistent",
                f"{ns} differs from {reference}: {_display_name(exp.name)} {exp.type} answers "
                f"{a.describe(exp.type)}, {reference} answers {ref_answer.describe(exp.type)}",
            )
        )
    return out


async def _check_async(
    nameservers: Sequence[Nameserver],
    expected: Sequence[ExpectedRRset],
    timeout: float,
    retries: int,
    concurrency: int,
) -> dict[tuple[int, int], Answer]:
    limit = asyncio.Semaphore(concurrency)

    async def one(i: int, j: int) -> tuple[tuple[int, int], Answer]:
        async with limit:
            exp = expected[j]
            return (i, j), await query_async(
                nameservers[i], exp.name, exp.type, timeout=timeout, retries=retries
            )

    pairs = itertools.product(range(len(nameservers)), range(len(expected)))
    return dict(await asyncio.gather(*(one(i, j) for i, j in pairs)))


def check_resolution(
    nameservers: Sequence[Nameserver],
    expected: Sequence[ExpectedRRset],
    *,
    timeout: float = DEFAULT_TIMEOUT,
    retries: int = DEFAULT_RETRIES,
    concurrency: int = 32,
) -> ResolutionReport:
    """Ask every nameserver for every expected rrset and report each difference.

    Checked per nameserver and rrset: the answer has the expected type and values (or, for an rrset that
    must not exist, nothing), the TTL as set (when `ttl` is given), and it comes with the AA flag. Then
    across nameservers: every one answers the same as the majority; one that does not gets an
    `inconsistent` difference naming the nameserver it differs from. Queries run concurrently.
    """
    if not nameservers:
        raise ValueError("no nameservers to ask")
    started = time.perf_counter()
    raw = _run(_check_async(nameservers, expected, timeout, retries, concurrency))
    answers = {
        ns: {exp.key: raw[(i, j)] for j, exp in enumerate(expected)} for i, ns in enumerate(nameservers)
    }
    return ResolutionReport(
        list(nameservers),
        list(expected),
        {str(ns): by_key for ns, by_key in answers.items()},
        compare_answers(expected, answers),
        time.perf_counter() - started,
    )


def compare_answers(
    expected: Sequence[ExpectedRRset], answers: Mapping[Nameserver, Mapping[tuple[str, str], Answer]]
) -> list[Difference]:
    """The differences between what each nameserver answered and the plan, and between nameservers.

    `answers` holds, per nameserver (in the zone's order: on a tie the first one is the reference), the
    `Answer` for each expected rrset's `key`. Pure: `check_resolution` gathers the answers, this judges them.
    """
    nameservers = list(answers)
    differences: list[Difference] = []
    for exp in expected:
        per_ns = [(ns, answers[ns][exp.key]) for ns in nameservers]
        for ns, a in per_ns:
            differences.extend(_compare(str(ns), exp, a))
        differences.extend(_inconsistencies(exp, per_ns, nameservers))
    return differences


def wait_consistent(
    nameservers: Sequence[Nameserver],
    expected: Sequence[ExpectedRRset],
    timeout: float = 120.0,
    interval: float = 1.0,
    *,
    on_report: Callable[[ResolutionReport], None] | None = None,
    query_timeout: float = DEFAULT_TIMEOUT,
) -> float | None:
    """Repeat `check_resolution` until it passes: return the seconds from this call until every nameserver
    answered as expected (the propagation time), or None if `timeout` passed first.

    `on_report` sees every report (keep the last one to show what was still different at the deadline).
    """
    started = time.monotonic()
    deadline = started + timeout
    while True:
        report = check_resolution(nameservers, expected, timeout=query_timeout, retries=0)
        if on_report:
            on_report(report)
        now = time.monotonic()
        if report.ok:
            return now - started
        if now >= deadline:
            return None
        time.sleep(min(interval, max(0.0, deadline - now)))


# --- distribution ----------------------------------------------------------------------------------------


def _shares(weights: Mapping[str, float]) -> dict[str, float]:
    if any(w < 0 or math.isnan(w) for w in weights.values()):
        raise ValueError("weights must be 0 or more")
    total = sum(weights.values())
    if total == 0:
        # Route53: a weighted set of weight 0 is never chosen unless all are 0; then all are equally likely
        return {k: 1 / len(weights) for k in weights} if weights else {}
    return {k: w / total for k, w in weights.items()}


def sample_size(
    shares: Mapping[str, float],
    precision: float = 0.02,
    confidence: float = 0.95,
    cap: int = 5000,
    floor: int = 200,
) -> int:
    """Queries needed so every observed share lies within ±`precision` of its true value at `confidence`.

    Normal approximation of a binomial proportion, for the worst share (the one nearest 50 %):
    n = z² · p(1-p) / precision², z the two-sided quantile. 80/20 at ±2 points and 95 %: 1,537; 50/50: 2,401.
    `shares` may be weights (80, 20) or fractions; the result is clamped to [floor, cap].
    """
    if not 0 < precision < 1 or not 0 < confidence < 1:
        raise ValueError("precision and confidence must be between 0 and 1")
    ps = list(_shares(shares).values())
    worst = max((p * (1 - p) for p in ps), default=0.0)
    z = statistics.NormalDist().inv_cdf(1 - (1 - confidence) / 2)
    n = math.ceil(z * z * worst / (precision * precision))
    return max(floor, min(cap, n))


AnswerKey = frozenset[str] | str


@dataclass
class Counts:
    """Answers counted by `measure_distribution`.

    `counts` keys: with `key="answer"` the frozenset of values of each answer (one weighted record set per
    answer; the empty set for NXDOMAIN/NODATA), with `key="first"` the first value (the round-robin
    position most clients use; "" when there was no record).
    """

    name: str
    type: str
    key: str
    n: int
    counts: Counter[AnswerKey]
    errors: int
    error_samples: list[str]
    per_nameserver: dict[str, int]
    elapsed: float

    @property
    def answered(self) -> int:
        return sum(self.counts.values())

    def shares(self) -> dict[AnswerKey, float]:
        total = self.answered
        return {k: c / total for k, c in self.counts.items()} if total else {}

    def by_set(self, sets: Mapping[str, Iterable[str]]) -> dict[str, int]:
        """Counts per record set label: `sets` maps a label (set identifier, cluster) to its values.

        With `key="answer"` an answer belongs to the set with exactly its values; with `key="first"` to the
        set holding the first value. Answers matching no set are kept under `other: <values>`, so a
        verdict sees them (intended 0 %).
        """
        norm = {label: frozenset(normalize_value(self.type, v) for v in vals) for label, vals in sets.items()}
        out: Counter[str] = Counter({label: 0 for label in norm})
        for k, c in self.counts.items():
            if isinstance(k, frozenset):
                label = next((lb for lb, vals in norm.items() if vals == k), None)
                shown = _show(self.type, k) if k else "no record"
            else:
                label = next((lb for lb, vals in norm.items() if k in vals), None)
                shown = k or "no record"
            out[label if label is not None else f"other: {shown}"] += c
        return dict(out)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "key": self.key,
            "n": self.n,
            "answered": self.answered,
            "errors": self.errors,
            "error_samples": self.error_samples,
            "counts": [
                {"key": sorted(k) if isinstance(k, frozenset) else k, "count": c}
                for k, c in self.counts.most_common()
            ],
            "per_nameserver": self.per_nameserver,
            "elapsed": round(self.elapsed, 6),
        }


async def _distribution_async(
    nameservers: Sequence[Nameserver],
    name: str,
    rdtype: str,
    n: int,
    key: str,
    concurrency: int,
    timeout: float,
    retries: int,
    ecs: str | None,
) -> Counts:
    counts: Counter[AnswerKey] = Counter()
    per_ns: Counter[str] = Counter()
    errors: list[str] = []
    next_index = itertools.count()

    async def worker() -> None:
        # Each worker owns its sockets and sends one query at a time: `concurrency` queries in flight.
        sockets = _Sockets()
        try:
            while (i := next(next_index)) < n:
                ns = nameservers[i % len(nameservers)]
                a = await query_async(
                    ns, name, rdtype, timeout=timeout, retries=retries, ecs=ecs, sockets=sockets
                )
                if a.status == ANSWER:
                    counts[frozenset(a.values) if key == "answer" else a.first] += 1
                elif a.status in (NXDOMAIN, NODATA):
                    counts[frozenset() if key == "answer" else ""] += 1
                else:
                    errors.append(f"{ns}: {a.describe(rdtype)}")
                    continue
                per_ns[str(ns)] += 1
        finally:
            await sockets.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(max(1, min(concurrency, n)))))
    return Counts(
        name=normalize_name(name),
        type=rdtype.upper(),
        key=key,
        n=n,
        counts=counts,
        errors=len(errors),
        error_samples=errors[:5],
        per_nameserver={str(ns): per_ns[str(ns)] for ns in nameservers},
        elapsed=time.perf_counter() - started,
    )


def measure_distribution(
    nameservers: Sequence[Nameserver],
    name: str,
    rdtype: str,
    n: int,
    *,
    key: Literal["answer", "first"] = "answer",
    concurrency: int = 64,
    timeout: float = DEFAULT_TIMEOUT,
    retries: int = 1,
    ecs: str | None = None,
) -> Counts:
    """Send `n` queries for (name, type), spread round-robin over the nameservers, and count the answers.

    `key="answer"`: per answer set (a weighted name answers one record set per query; the caller maps sets
    to clusters with `Counts.by_set`). `key="first"`: per first value (round robin inside one record set:
    most clients connect to the first address). Queries run concurrently on dnspython's asyncio API, at
    most `concurrency` in flight. Answers without a value (errors, timeouts) are counted in `errors`.
    """
    if key not in ("answer", "first"):
        raise ValueError(f"key must be 'answer' or 'first', not {key!r}")
    if not nameservers:
        raise ValueError("no nameservers to ask")
    if n < 1:
        raise ValueError("n must be at least 1")
    return _run(_distribution_async(nameservers, name, rdtype, n, key, concurrency, timeout, retries, ecs))


@dataclass(frozen=True, slots=True)
class ShareRow:
    """One category of a distribution verdict: intended and observed share (fractions), and the count."""

    key: str
    label: str
    intended: float
    observed: float
    count: int


@dataclass(frozen=True)
class Verdict:
    """A chi-square goodness-of-fit verdict of observed answers against intended shares."""

    ok: bool
    message: str
    p_value: float | None
    statistic: float | None
    n: int
    rows: tuple[ShareRow, ...]
    alpha: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "message": self.message,
            "p_value": self.p_value,
            "statistic": self.statistic,
            "n": self.n,
            "alpha": self.alpha,
            "rows": [
                {
                    "key": r.key,
                    "label": r.label,
                    "intended": r.intended,
                    "observed": r.observed,
                    "count": r.count,
                }
                for r in self.rows
            ],
        }


def _pct(share: float) -> str:
    value = share * 100
    return f"{value:.1f}" if 0 < value < 1 else f"{value:.0f}"


def _fmt_p(p: float) -> str:
    if p < 0.001:
        return "p < 0.001"
    return f"p = {p:.3f}" if p < 0.01 else f"p = {p:.2f}"


def distribution_verdict(
    observed: Mapping[str, int],
    intended: Mapping[str, float],
    labels: Mapping[str, str] | None = None,
    *,
    alpha: float = 0.001,
) -> Verdict:
    """Whether observed counts fit the intended shares: a chi-square goodness-of-fit test (scipy.stats).

    `observed` and `intended` are keyed alike (set identifier, cluster, value); intended may be weights.
    An observed key with no intended share counts as intended 0 %. Any answer in a 0 % category fails the
    check outright (p = 0: impossible under the configuration), without a division by its zero expectation.
    The message reads "consistent with 80/20 (p = 0.41)" or "not as configured: k3s-edge receives 31 %,
    expected 20 % (p < 0.001); ...". `alpha` is the p-value below which the split is not as configured:
    0.001 by default, so a correct split is reported as differing once in 1,000 measurements, while a weight
    off by ten points on ~1,500 answers still falls far below it (p < 1e-10).
    """
    labels = labels or {}
    shares = _shares(intended)
    keys = list(shares) + sorted((k for k in observed if k not in shares), key=lambda k: -observed[k])
    n = sum(observed.get(k, 0) for k in keys)
    if any(c < 0 for c in observed.values()):
        raise ValueError("observed counts must be 0 or more")
    rows = tuple(
        ShareRow(
            key=k,
            label=labels.get(k, k),
            intended=shares.get(k, 0.0),
            observed=observed.get(k, 0) / n if n else 0.0,
            count=observed.get(k, 0),
        )
        for k in keys
    )
    intended_split = "/".join(_pct(shares[k]) for k in shares) or "nothing"
    observed_split = "/".join(_pct(r.observed) for r in rows)
    if n == 0:
        return Verdict(False, "no answers to compare", None, None, 0, rows, alpha)
    positive = [r for r in rows if r.intended > 0]
    impossible = [r for r in rows if r.intended == 0 and r.count > 0]
    if not positive:
        return Verdict(False, "nothing is intended to be served, yet answers came", 0.0, None, n, rows, alpha)
    statistic: float | None = None
    if impossible:
        p_value = 0.0  # an answer from a category of probability 0 cannot happen under the configuration
    elif len(positive) == 1:
        p_value = 1.0  # one possible answer, and every answer was it
    else:
        from scipy.stats import chisquare  # scipy is heavy; only distribution checks need it

        f_obs = [r.count for r in positive]
        f_exp = [r.intended * n for r in positive]
        result = chisquare(f_obs, f_exp)
        statistic, p_value = float(result.statistic), float(result.pvalue)
    if p_value >= alpha:
        if len(positive) == 1:
            message = f"consistent: every answer is {positive[0].label} ({n} answers)"
        else:
            message = f"consistent with {intended_split} ({_fmt_p(p_value)})"
        return Verdict(True, message, p_value, statistic, n, rows, alpha)
    worst = max(impossible or rows, key=lambda r: abs(r.observed - r.intended))
    message = (
        f"not as configured: {worst.label} receives {_pct(worst.observed)} %, expected "
        f"{_pct(worst.intended)} % ({_fmt_p(p_value)}); observed {observed_split}, intended "
        + "/".join(_pct(r.intended) for r in rows)
    )
    return Verdict(False, message, p_value, statistic, n, rows, alpha)


# --- geolocation -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LocationAnswer:
    """What a client in one sample subnet is answered: the majority answer and each nameserver's."""

    subnet: str
    answer: Answer  # the majority's (ties: the first nameserver's)
    per_nameserver: dict[str, Answer] = field(default_factory=dict)

    @property
    def values(self) -> frozenset[str]:
        return self.answer.values

    @property
    def consistent(self) -> bool:
        sigs = {a.signature() for a in self.per_nameserver.values() if a.responded}
        return len(sigs) <= 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "subnet": self.subnet,
            "answer": self.answer.to_dict(),
            "consistent": self.consistent,
            "per_nameserver": {ns: a.to_dict() for ns, a in self.per_nameserver.items()},
        }


def sample_locations(
    nameservers: Sequence[Nameserver],
    name: str,
    rdtype: str,
    subnets: Mapping[str, str],
    *,
    timeout: float = DEFAULT_TIMEOUT,
    retries: int = DEFAULT_RETRIES,
) -> dict[str, LocationAnswer]:
    """The answer each location gets: every nameserver is asked with an EDNS Client Subnet option
    carrying the location's sample subnet (`{"eu-west": "81.2.69.0/24"}`), as a resolver there would.

    A server that ignores ECS answers every location alike, and returns ECS scope 0 (RFC 7871) or none.
    A bad subnet raises `ValueError` naming the location.
    """
    for location, subnet in subnets.items():
        try:
            _ecs_option(subnet)
        except ValueError as exc:
            raise ValueError(f"location {location!r}: {exc}") from None

    async def gather() -> list[Answer]:
        jobs = [
            query_async(ns, name, rdtype, timeout=timeout, retries=retries, ecs=subnet)
            for subnet in subnets.values()
            for ns in nameservers
        ]
        return list(await asyncio.gather(*jobs))

    flat = _run(gather())
    out: dict[str, LocationAnswer] = {}
    for i, (location, subnet) in enumerate(subnets.items()):
        answers = flat[i * len(nameservers) : (i + 1) * len(nameservers)]
        per_ns = {str(ns): a for ns, a in zip(nameservers, answers, strict=True)}
        tally = Counter(a.signature() for a in answers if a.responded)
        if tally:
            top = max(tally.values())
            majority = next(a for a in answers if a.responded and tally[a.signature()] == top)
        else:
            majority = answers[0]
        out[location] = LocationAnswer(subnet, majority, per_ns)
    return out


__all__ = [
    "ANSWER",
    "CNAME",
    "ERROR",
    "NODATA",
    "NXDOMAIN",
    "REFERRAL",
    "TIMEOUT",
    "Answer",
    "Counts",
    "Difference",
    "ExpectedRRset",
    "LocationAnswer",
    "Nameserver",
    "ResolutionReport",
    "ShareRow",
    "Verdict",
    "check_resolution",
    "compare_answers",
    "distribution_verdict",
    "interpret",
    "make_query",
    "measure_distribution",
    "normalize_value",
    "query",
    "query_async",
    "rdata_value",
    "resolve_nameservers",
    "sample_locations",
    "sample_size",
    "wait_consistent",
]
