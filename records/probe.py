"""HTTP probe: which cluster serves a hostname, counted over many requests (the seed article's `curl` loop).

Pure-ish, like records.verify: plain data in and out, no Django. The I/O is HTTP(S) GETs to the addresses
of a hostname and, for `probe_resolving`, DNS queries sent straight to the zone's authoritative
nameservers (records.verify's `query_async`), never through a recursive resolver whose cache would pin
every request to one answer for a TTL.

- `probe_http`: GETs spread round-robin over fixed addresses.
- `probe_resolving`: a client that resolves before every request: one DNS query per request (rotating over
  the nameservers), the answer's first address (what most clients connect to), then the GET. A weighted
  LUA `pickwrandom` name, answering one address per query, really splits the requests.
- Both count which cluster served each response by a marker string in the body (`ProbeCounts`).
- `cluster_shares`, `probe_observed`, `probe_outcome`: the intended share per cluster and the verdict.
- `requests_problem`, `port_problem`, `path_problem`: the limits of a probe, one sentence each.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import http.client
import itertools
import math
import re
import ssl
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from records.verify import (
    ANSWER,
    DEFAULT_TIMEOUT,
    Nameserver,
    Verdict,
    _run,
    _Sockets,
    query_async,
)

MAX_REQUESTS = 10_000
DEFAULT_REQUESTS = 200
UNMATCHED = "(unmatched)"  # the verdict's key for pages naming no known cluster; no cluster name has "("
UNMATCHED_LABEL = "no cluster named"
_MAX_BODY = 1 << 20


# --- limits ----------------------------------------------------------------------------------------------


def requests_problem(n: int) -> str:
    """What is wrong with `n` requests ("" when nothing)."""
    return "" if 1 <= n <= MAX_REQUESTS else f"n must be 1–{MAX_REQUESTS}"  # noqa: RUF001 (a range: en dash)


def port_problem(port: int) -> str:
    return "" if 0 < port < 65536 else "port must be 1–65535"  # noqa: RUF001


_PATH = re.compile(r"^/[\x21-\x7e]*$")  # printable ASCII, no space: what a request line can carry as is


def path_problem(path: str) -> str:
    if _PATH.match(path) and len(path) <= 2000:
        return ""
    return "path must start with / and hold no spaces, control or non-ASCII characters (at most 2000)"


# --- counting --------------------------------------------------------------------------------------------


@dataclass
class ProbeCounts:
    """Served responses counted by marker: which cluster answered (`probe_http`, `probe_resolving`)."""

    n: int
    counts: dict[str, int]  # marker label -> responses whose body holds that marker
    unmatched: int  # responses with no marker in the body
    errors: int  # requests without a response (refused, timeout, TLS failure; no DNS answer)
    per_address: dict[str, dict[str, int]]
    statuses: dict[int, int]
    error_samples: list[str]
    elapsed: float
    dns_errors: int = 0  # of `errors`: requests whose name did not resolve (`probe_resolving`)
    # per marker label (and UNMATCHED), the response times in ms: {"n", "p50", "p95", "max"}
    latency_ms: dict[str, dict[str, float]] = field(default_factory=dict)

    def shares(self) -> dict[str, float]:
        total = sum(self.counts.values()) + self.unmatched
        return {k: c / total for k, c in self.counts.items()} if total else {}

    @property
    def requests_per_second(self) -> float:
        return self.n / self.elapsed if self.elapsed > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "counts": self.counts,
            "unmatched": self.unmatched,
            "errors": self.errors,
            "dns_errors": self.dns_errors,
            "per_address": self.per_address,
            "statuses": {str(k): v for k, v in self.statuses.items()},
            "error_samples": self.error_samples,
            "elapsed": round(self.elapsed, 6),
            "latency_ms": self.latency_ms,
        }


def latency_summary(seconds: Sequence[float]) -> dict[str, float]:
    """Response times (seconds) as ms figures: n, p50, p95 (nearest rank) and max."""
    ms = sorted(s * 1000 for s in seconds)
    if not ms:
        return {"n": 0}

    def rank(q: float) -> float:
        return round(ms[max(0, math.ceil(q * len(ms)) - 1)], 1)

    return {"n": len(ms), "p50": rank(0.5), "p95": rank(0.95), "max": round(ms[-1], 1)}


def latency_problem(latency_ms: Mapping[str, Mapping[str, float]], bound_ms: float) -> str:
    """ "" when every cluster's p95 response time is within `bound_ms`; else which are over it, slowest first:
    "k3s-edge p95 812.0 ms; rke2-dc1 p95 640.2 ms, over the bound of 500 ms"."""
    over = sorted(
        ((label, f["p95"]) for label, f in latency_ms.items() if f.get("n") and f["p95"] > bound_ms),
        key=lambda kv: -kv[1],
    )
    if not over:
        return ""
    names = {UNMATCHED: UNMATCHED_LABEL}
    named = "; ".join(f"{names.get(label, label)} p95 {p95} ms" for label, p95 in over)
    return f"{named}, over the bound of {bound_ms:g} ms"


def match_marker(body: str, markers: Mapping[str, str]) -> str | None:
    """The label whose marker the body holds; when several do, the longest marker wins, so a page naming
    `eks-us-east-1` counts for that cluster, not for a cluster called `eks`."""
    found = [(len(marker), label) for label, marker in markers.items() if marker and marker in body]
    return max(found)[1] if found else None


@dataclass
class _Tally:
    markers: Mapping[str, str]
    addresses: Iterable[str] = ()
    counts: Counter[str] = field(init=False)
    per_address: dict[str, Counter[str]] = field(init=False)
    statuses: Counter[int] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    dns_errors: int = 0
    unmatched: int = 0
    seconds: dict[str, list[float]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.counts = Counter({label: 0 for label in self.markers})
        self.per_address = {a: Counter() for a in self.addresses}

    def add(
        self, address: str, label: str | None, status: int | None, error: str, seconds: float | None = None
    ) -> None:
        per = self.per_address.setdefault(address, Counter())
        if error:
            self.errors.append(error)
            per["error"] += 1
            return
        self.statuses[status or 0] += 1
        if seconds is not None:
            self.seconds.setdefault(label or UNMATCHED, []).append(seconds)
        if label is None:
            self.unmatched += 1
            per["unmatched"] += 1
        else:
            self.counts[label] += 1
            per[label] += 1

    def unresolved(self, error: str) -> None:
        self.errors.append(error)
        self.dns_errors += 1

    def result(self, n: int, started: float) -> ProbeCounts:
        return ProbeCounts(
            n=n,
            counts=dict(self.counts),
            unmatched=self.unmatched,
            errors=len(self.errors),
            per_address={a: dict(c) for a, c in self.per_address.items()},
            statuses=dict(self.statuses),
            error_samples=self.errors[:5],
            elapsed=time.perf_counter() - started,
            dns_errors=self.dns_errors,
            latency_ms={label: latency_summary(times) for label, times in sorted(self.seconds.items())},
        )


# --- one request -----------------------------------------------------------------------------------------


class _SNIHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to an address, with SNI and certificate check for the host name (as a browser would send)."""

    def __init__(self, address: str, port: int, *, server_name: str, **kw: Any) -> None:
        super().__init__(address, port, **kw)
        self._server_name = server_name

    def connect(self) -> None:
        http.client.HTTPConnection.connect(self)
        # Ingress controllers pick the certificate and the backend by SNI, not by the address dialled.
        self.sock = self._context.wrap_socket(self.sock, server_hostname=self._server_name)  # type: ignore[attr-defined]


@dataclass(frozen=True)
class _Get:
    """One GET of `path` to an address, as a browser sends it for the host name; the marker it finds."""

    host_header: str
    path: str
    markers: Mapping[str, str]
    scheme: Literal["http", "https"]
    port: int
    timeout: float
    context: ssl.SSLContext | None
    server_name: str

    @classmethod
    def make(
        cls,
        host_header: str,
        path: str,
        markers: Mapping[str, str],
        *,
        scheme: Literal["http", "https"],
        port: int | None,
        timeout: float,
        verify: bool | str,
    ) -> _Get:
        if not markers:
            raise ValueError("no markers: give each cluster a string its page holds")
        context: ssl.SSLContext | None = None
        if scheme == "https":
            context = ssl.create_default_context(cafile=verify if isinstance(verify, str) else None)
            if verify is False:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
        port = port or (443 if scheme == "https" else 80)
        server_name = host_header.split(":")[0] if not host_header.startswith("[") else host_header
        return cls(host_header, path, dict(markers), scheme, port, timeout, context, server_name)

    def __call__(self, address: str) -> tuple[str, str | None, int | None, str, float | None]:
        """(address, label or None, HTTP status, error text or "", seconds from request to whole body)."""
        host = address.strip("[]")
        conn: http.client.HTTPConnection
        if self.scheme == "https":
            conn = _SNIHTTPSConnection(
                host, self.port, server_name=self.server_name, timeout=self.timeout, context=self.context
            )
        else:
            conn = http.client.HTTPConnection(host, self.port, timeout=self.timeout)
        started = time.perf_counter()
        try:
            conn.request(
                "GET", self.path, headers={"Host": self.host_header, "User-Agent": "dnsportal-verify"}
            )
            resp = conn.getresponse()
            body = resp.read(_MAX_BODY).decode("utf-8", "replace")
        except (OSError, http.client.HTTPException) as exc:
            return address, None, None, f"{address}: {type(exc).__name__}: {exc}", None
        finally:
            conn.close()
        return address, match_marker(body, self.markers), resp.status, "", time.perf_counter() - started


# --- probes ----------------------------------------------------------------------------------------------


def probe_http(
    addresses: Iterable[str],
    host_header: str,
    path: str = "/",
    *,
    markers: Mapping[str, str],
    n: int = 100,
    timeout: float = 5.0,
    scheme: Literal["http", "https"] = "http",
    port: int | None = None,
    verify: bool | str = True,
    concurrency: int = 16,
) -> ProbeCounts:
    """GET `path` `n` times, spread round-robin over `addresses`, with `Host: host_header`, and count which
    marker string each body contains (the seed article's "which nginx answered" check).

    `markers` maps a label (cluster) to a string only that cluster's page holds (`match_marker`). HTTPS
    sends `host_header` as SNI and checks the certificate against it; `verify` False skips the check, a
    string is a CA bundle path. Redirects are not followed (a 3xx is a response).
    """
    addrs = list(dict.fromkeys(a.strip() for a in addresses if a.strip()))
    if not addrs:
        raise ValueError("no addresses to probe")
    get = _Get.make(host_header, path, markers, scheme=scheme, port=port, timeout=timeout, verify=verify)
    started = time.perf_counter()
    tally = _Tally(markers, addrs)
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, min(concurrency, n))) as pool:
        for result in pool.map(get, (addrs[i % len(addrs)] for i in range(n))):
            tally.add(*result)
    return tally.result(n, started)


def probe_resolving(
    nameservers: Sequence[Nameserver],
    hostname: str,
    path: str = "/",
    *,
    markers: Mapping[str, str],
    n: int = DEFAULT_REQUESTS,
    port: int = 80,
    rdtype: Literal["A", "AAAA"] = "A",
    scheme: Literal["http", "https"] = "http",
    verify: bool | str = True,
    timeout: float = 5.0,
    dns_timeout: float = DEFAULT_TIMEOUT,
    retries: int = 1,
    concurrency: int = 32,
) -> ProbeCounts:
    """`n` requests as a client that resolves `hostname` before each one: a DNS query to the next
    nameserver (round robin), then `GET path` to the first address of the answer on `port`, with the
    host name in the Host header (and SNI), counting which cluster's marker each body holds.

    A query without an address (timeout, NXDOMAIN, a CNAME, which is not followed) counts as an error,
    as does a request without a response; `per_address` counts per address the DNS answered. At most
    `concurrency` requests are in flight: DNS on asyncio, HTTP on as many threads.
    """
    if not nameservers:
        raise ValueError("no nameservers to ask")
    for problem in (requests_problem(n), port_problem(port), path_problem(path)):
        if problem:
            raise ValueError(problem)
    name = hostname.rstrip(".")
    default_port = 443 if scheme == "https" else 80
    # what a browser or curl sends: the port is part of the Host header when it is not the scheme's default
    host_header = name if port == default_port else f"{name}:{port}"
    get = _Get.make(host_header, path, markers, scheme=scheme, port=port, timeout=timeout, verify=verify)
    return _run(
        _resolving_async(nameservers, name, rdtype, n, get, dns_timeout, retries, max(1, min(concurrency, n)))
    )


async def _resolving_async(
    nameservers: Sequence[Nameserver],
    name: str,
    rdtype: str,
    n: int,
    get: _Get,
    dns_timeout: float,
    retries: int,
    concurrency: int,
) -> ProbeCounts:
    loop = asyncio.get_running_loop()
    tally = _Tally(get.markers)
    next_index = itertools.count()

    async def worker(pool: concurrent.futures.Executor) -> None:
        # One request at a time per worker, each with its own DNS socket: `concurrency` requests in flight.
        sockets = _Sockets()
        try:
            while (i := next(next_index)) < n:
                ns = nameservers[i % len(nameservers)]
                a = await query_async(ns, name, rdtype, timeout=dns_timeout, retries=retries, sockets=sockets)
                if a.status != ANSWER or not a.first:
                    tally.unresolved(f"{ns}: {name} {rdtype}: {a.describe(rdtype)}")
                    continue
                tally.add(*await loop.run_in_executor(pool, get, a.first))
        finally:
            await sockets.close()

    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(max_workers=concurrency) as pool:
        await asyncio.gather(*(worker(pool) for _ in range(concurrency)))
    return tally.result(n, started)


# --- intended and observed shares per cluster ------------------------------------------------------------


def cluster_shares(shares: Mapping[str, float], owners: Mapping[str, Iterable[str]]) -> dict[str, float]:
    """The intended share per cluster, from the share per label (a weighted record set's identifier, or a
    round-robin value) and the clusters publishing each label.

    A label published by several clusters splits its share evenly among them (which of them answers a
    request is theirs to decide); a label no cluster publishes keeps its share as `no cluster: <label>`,
    which no page can name, so its requests show as unmatched. The largest share comes first.
    """
    out: dict[str, float] = {}
    for label, share in shares.items():
        clusters = sorted(set(owners.get(label, ())))
        if not clusters:
            out[f"no cluster: {label}"] = out.get(f"no cluster: {label}", 0.0) + share
        for cluster in clusters:
            out[cluster] = out.get(cluster, 0.0) + share / len(clusters)
    # largest share first ("consistent with 80/20"), then by name; the labels no cluster publishes last
    return dict(sorted(out.items(), key=lambda kv: (kv[0].startswith("no cluster: "), -kv[1], kv[0])))


def probe_observed(counts: ProbeCounts, intended: Mapping[str, float]) -> dict[str, int]:
    """Responses per cluster for the verdict: the intended clusters, any other cluster that served, and the
    responses naming no known cluster under `UNMATCHED` (intended 0 %: each one fails the check)."""
    observed = {k: c for k, c in counts.counts.items() if c or k in intended}
    if counts.unmatched:
        observed[UNMATCHED] = counts.unmatched
    return observed


def probe_outcome(verdict: Verdict, counts: ProbeCounts) -> tuple[bool, str]:
    """(as planned?, one line): the verdict on the served responses, and the failed requests, which a
    user would have seen too: any failed request fails the probe."""
    if not counts.errors:
        return verdict.ok, verdict.message
    failed = f"{counts.errors} of {counts.n} requests failed"
    if counts.dns_errors:
        failed += f" ({counts.dns_errors} without a DNS answer)"
    first = f"; first: {counts.error_samples[0]}" if counts.error_samples else ""
    if verdict.n == 0:
        return False, f"no response to compare: {failed}{first}"
    return False, f"{verdict.message}; {failed}{first}"


__all__ = [
    "DEFAULT_REQUESTS",
    "MAX_REQUESTS",
    "UNMATCHED",
    "UNMATCHED_LABEL",
    "ProbeCounts",
    "cluster_shares",
    "latency_problem",
    "latency_summary",
    "match_marker",
    "path_problem",
    "port_problem",
    "probe_http",
    "probe_observed",
    "probe_outcome",
    "probe_resolving",
    "requests_problem",
]
