"""The Route53 provider: boto3, one shared rate limit per AWS account, our own retries, exactly-once applies.

Built from plain configuration (`Route53Provider(credentials, endpoint_url=..., redis=...)`), never from a
Django model, so jobs, the bench and the tests build it the same way.

Every request goes through `_request`: it takes a token from the account's shared bucket (ratelimit.py) and
sends exactly one HTTP request, because botocore's own retries are off. Our retry (`_call`, `_send`) then
handles what Route53 documents as transient (route53.md, "API limits"): `Throttling` ("Rate exceeded") and
`PriorRequestNotComplete` are refusals (nothing happened; resend as is), HTTP 5xx and broken connections are
*ambiguous* (a ChangeResourceRecordSets may have been applied). Backoff is exponential with full jitter.

Exactly once (DESIGN rule 4): before a change request that failed ambiguously is resent, the affected record
sets are read back and every change already in effect is dropped (a CREATE whose record set exists exactly, a
DELETE whose record set is gone, an UPSERT whose record set already matches). Resending blindly would fail on
AWS (a repeated CREATE or DELETE is `InvalidChangeBatch`) and, on moto, create duplicates.

Errors reach callers as `ProviderError` naming the operation, the zone and AWS's code and message; never a
credential, never a request body. Log lines carry the same and nothing more.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import random
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import boto3
import botocore.exceptions as bexc
from botocore.config import Config
from botocore.credentials import DeferredRefreshableCredentials
from botocore.session import get_session

from dnsportal import metrics
from records.plan import ACTION_DELETE, Change
from records.providers.base import (
    ApplyResult,
    ChangeGroupInput,
    Provider,
    ProviderError,
    ZoneInfo,
    ZoneSummary,
)
from records.providers.batching import (
    LIST_PAGE_SIZE,
    Batch,
    PaginationStalled,
    bisect,
    describe_group,
    make_batches,
    next_page_start,
)
from records.providers.ratelimit import (
    DEFAULT_BURST,
    DEFAULT_MAX_WAIT,
    DEFAULT_RATE,
    RateLimiter,
    RedisTokenBucket,
    local_bucket,
)
from records.providers.route53_health import HEALTH_METHODS, Route53HealthChecks
from records.recordset import (
    RecordSet,
    canonical_value,
    in_zone,
    normalize_name,
    recordset_from_route53,
    recordset_to_route53,
)

__all__ = ["APPLY_OPERATIONS", "Route53Provider", "default_account_key"]

log = logging.getLogger(__name__)

LIST_HOSTED_ZONES = "ListHostedZones"
GET_HOSTED_ZONE = "GetHostedZone"
LIST_RECORD_SETS = "ListResourceRecordSets"
CHANGE_RECORD_SETS = "ChangeResourceRecordSets"
GET_CHANGE = "GetChange"
ASSUME_ROLE = "sts:AssumeRole"
# What ApplyResult.calls counts (base.py): the requests an apply makes to change a zone and wait for it.
APPLY_OPERATIONS = (CHANGE_RECORD_SETS, GET_CHANGE)

_METHODS = {
    LIST_HOSTED_ZONES: "list_hosted_zones",
    GET_HOSTED_ZONE: "get_hosted_zone",
    LIST_RECORD_SETS: "list_resource_record_sets",
    CHANGE_RECORD_SETS: "change_resource_record_sets",
    GET_CHANGE: "get_change",
    **HEALTH_METHODS,  # health checks: route53_health.py
}

# Route53 refuses these before doing anything (HTTP 400): resending the same request is safe.
_REFUSED_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "PriorRequestNotComplete",
        "RequestLimitExceeded",
        "TooManyRequests",
    }
)
# Server-side failures (HTTP 5xx): the request may or may not have taken effect.
_SERVER_CODES = frozenset({"InternalError", "InternalFailure", "ServiceUnavailable", "ServiceFailure"})
# Route53 rejects the whole request because of its content: nothing applied (a request is all or nothing).
# moto answers InvalidInput for a DELETE that matches nothing, where AWS says InvalidChangeBatch.
_REJECTED_CODES = frozenset({"InvalidChangeBatch", "InvalidInput"})

_HOSTED_ZONE_PREFIX = "/hostedzone/"
_CHANGE_PREFIX = "/change/"
# ListHostedZones returns at most 100 zones per page.
_ZONES_PAGE_SIZE = 100
# Above this many names, reading back after an ambiguous failure may cost fewer calls as one full zone read.
_FULL_READ_MIN_NAMES = 8
ROLE_SESSION_NAME = "dnsportal"
# STS AssumeRole default; botocore refreshes the credentials 15 minutes before they expire.
ROLE_DURATION_SECONDS = 3600


class _Transient(Exception):
    """A request that may succeed when sent again; `ambiguous` = it may already have taken effect."""

    def __init__(self, code: str, message: str, *, ambiguous: bool) -> None:
        super().__init__(code)
        self.code, self.message, self.ambiguous = code, message, ambiguous


class _Rejected(Exception):
    """Route53 rejected a change request for its content (nothing of it applied on AWS)."""

    def __init__(self, code: str, message: str, batch: Batch | None = None) -> None:
        super().__init__(code)
        self.code, self.message, self.batch = code, message, batch


def _bare_zone_id(zone_id: str) -> str:
    return zone_id.strip().removeprefix(_HOSTED_ZONE_PREFIX)


def _bare_change_id(change_id: str) -> str:
    return change_id.strip().removeprefix(_CHANGE_PREFIX)


def default_account_key(credentials: Mapping[str, Any]) -> str:
    """The rate-limit bucket name when the caller does not know the AWS account id.

    A role's ARN names its account; static keys are identified by a digest of the access key id (two keys of
    one account then get two buckets: pass `account_key` with the account id to share one); the process
    chain is "default".
    """
    kind = credentials.get("kind")
    if kind == "role":
        parts = str(credentials.get("role_arn", "")).split(":")
        if len(parts) >= 5 and parts[4].isdigit():
            return f"aws:{parts[4]}"
    if kind == "static":
        digest = hashlib.sha256(str(credentials.get("access_key_id", "")).encode()).hexdigest()
        return f"key:{digest[:16]}"
    return "default"


def _required(credentials: Mapping[str, Any], field: str, kind: str) -> str:
    value = credentials.get(field)
    if not isinstance(value, str) or not value.strip():
        raise ProviderError(f"{kind} AWS credentials need `{field}`")
    return value.strip()


def _session(
    credentials: Mapping[str, Any], *, region: str, sts_endpoint_url: str | None, cached: _CachedClient
) -> boto3.Session:
    """A boto3 session for the credentials: static keys, an assumed role, or the process's default chain."""
    if not isinstance(credentials, Mapping):
        raise ProviderError("AWS credentials must be a mapping with a `kind`")
    kind = credentials.get("kind")
    if kind == "static":
        token = credentials.get("session_token") or None
        return boto3.Session(
            aws_access_key_id=_required(credentials, "access_key_id", "static"),
            aws_secret_access_key=_required(credentials, "secret_access_key", "static"),
            aws_session_token=str(token) if token else None,
            region_name=region,
        )
    if kind == "default":
        return boto3.Session(region_name=region)
    if kind == "role":
        role_arn = _required(credentials, "role_arn", "role")
        external_id = str(credentials.get("external_id") or "")
        # the role is assumed with whatever the process's default chain holds (instance role, IRSA, env)
        sts = boto3.Session(region_name=region).client(
            "sts", region_name=region, endpoint_url=sts_endpoint_url
        )

        def refresh() -> dict[str, str]:
            cached.calls[ASSUME_ROLE] += 1
            params: dict[str, Any] = {
                "RoleArn": role_arn,
                "RoleSessionName": ROLE_SESSION_NAME,
                "DurationSeconds": ROLE_DURATION_SECONDS,
            }
            if external_id:
                params["ExternalId"] = external_id
            c = sts.assume_role(**params)["Credentials"]
            log.info("assumed role %s until %s", role_arn, c["Expiration"])
            return {
                "access_key": c["AccessKeyId"],
                "secret_key": c["SecretAccessKey"],
                "token": c["SessionToken"],
                "expiry_time": c["Expiration"].isoformat(),
            }

        # Deferred: the first request assumes the role; botocore then reuses the credentials and assumes it
        # again only when they near expiry.
        bs = get_session()
        bs._credentials = DeferredRefreshableCredentials(refresh_using=refresh, method="assume-role")
        return boto3.Session(botocore_session=bs, region_name=region)
    raise ProviderError(f"AWS credentials kind {kind!r} is not one of static, role, default")


# --- clients kept per process ------------------------------------------------------------------------------
# Building a boto3 session and client loads and parses botocore's service model and endpoint data (a tenth
# to a quarter of a second), and a role's credentials cost an STS request: a provider takes a client built
# before for the same configuration instead. RQ's worker forks a horse per job, so this cache lives for one
# job in a horse; dnsportal/worker.py fills it in the worker's parent before each fork, so every horse is
# born with the clients (and a role's credentials, refreshed by botocore near their expiry) already built.
_CLIENTS_MAX = 64
_CLIENTS: OrderedDict[str, _CachedClient] = OrderedDict()
_CLIENTS_LOCK = threading.Lock()


class _CachedClient:
    """A Route53 client and the counter in which its role's AssumeRole requests are counted (the provider
    that took it last: the one on whose behalf botocore refreshes)."""

    def __init__(self) -> None:
        self.client: Any = None
        self.session: boto3.Session | None = None
        self.calls: Counter[str] = Counter()


def _client_key(credentials: Mapping[str, Any], *parts: Any) -> str:
    """A digest (the cache's keys hold no secret) of what the client is built from: a rotated key or a changed
    role builds a new one, and so does a changed default chain (the AWS_* environment) for a role or the
    default kind."""
    creds = dict(credentials) if isinstance(credentials, Mapping) else None
    chain = sorted((k, v) for k, v in os.environ.items() if k.startswith("AWS_"))
    raw = json.dumps([creds, chain, *parts], sort_keys=True, default=str)
    return hashlib.sha256(raw.encode()).hexdigest()


def _client_for(
    credentials: Mapping[str, Any],
    *,
    endpoint_url: str | None,
    region: str,
    sts_endpoint_url: str | None,
    timeouts: tuple[float, float],
) -> _CachedClient:
    """The process's client for this configuration, built on first use (boto3 clients are thread-safe)."""
    key = _client_key(credentials, endpoint_url, region, sts_endpoint_url, timeouts)
    with _CLIENTS_LOCK:
        cached = _CLIENTS.get(key)
        if cached is not None:
            _CLIENTS.move_to_end(key)
            return cached
        cached = _CachedClient()
        session = cached.session = _session(
            credentials, region=region, sts_endpoint_url=sts_endpoint_url, cached=cached
        )
        # botocore's retries off: every request passes the shared limiter and our own retry. In botocore's
        # `retries` config `max_attempts` counts *retries* after the first request (max_attempts=1 would
        # still send a failed request twice); `total_max_attempts` counts requests, so 1 means no retry.
        config = Config(
            retries={"total_max_attempts": 1, "mode": "standard"},
            connect_timeout=timeouts[0],
            read_timeout=timeouts[1],
            user_agent_extra="dnsportal",
        )
        cached.client = session.client(
            "route53", endpoint_url=endpoint_url, region_name=region, config=config
        )
        _CLIENTS[key] = cached
        while len(_CLIENTS) > _CLIENTS_MAX:
            _CLIENTS.popitem(last=False)
        return cached


def _error_of(exc: bexc.ClientError) -> tuple[str, str]:
    """AWS's error code and message, from either of Route53's error shapes."""
    err = exc.response.get("Error") or {}
    code = str(err.get("Code") or "")
    message = str(err.get("Message") or "")
    # <InvalidChangeBatch><Messages><Message>…</Message>…</Messages></InvalidChangeBatch>
    msgs = err.get("Messages")
    if isinstance(msgs, Mapping):
        m = msgs.get("Message")
        parts = [str(x) for x in m] if isinstance(m, list) else [str(m)] if m else []
        message = "; ".join(parts) or message
        code = code or "InvalidChangeBatch"
    return code, message


def _fingerprint(rs: RecordSet) -> tuple[Any, ...]:
    """A record set as Route53 compares it: values as a set (IPs canonical), alias names without the dot."""
    if rs.alias is not None:
        body: tuple[Any, ...] = (
            "alias",
            canonical_value("CNAME", rs.alias.dns_name),
            _bare_zone_id(rs.alias.hosted_zone_id),
            rs.alias.evaluate_target_health,
        )
    else:
        body = ("values", rs.ttl, tuple(sorted(canonical_value(rs.type, v) for v in rs.values)))
    return (rs.name, rs.type, rs.set_identifier, body, rs.routing, rs.health_check_id)


def _runs(items: Sequence[RecordSet]) -> list[tuple[str, list[RecordSet]]]:
    """Consecutive record sets of one name, in listing order (Route53 lists a name's record sets together)."""
    out: list[tuple[str, list[RecordSet]]] = []
    for rs in items:
        if out and out[-1][0] == rs.name:
            out[-1][1].append(rs)
        else:
            out.append((rs.name, [rs]))
    return out


class Route53Provider(Route53HealthChecks, Provider):
    """Route53 for one AWS account (see the module docstring).

    credentials: `{"kind": "static", "access_key_id", "secret_access_key", "session_token"?}`,
        `{"kind": "role", "role_arn", "external_id"?}` (assumed via STS with the process's default chain,
        cached until near expiry) or `{"kind": "default"}` (the process's default chain).
    endpoint_url: another Route53 endpoint (moto in tests); STS uses it too unless `sts_endpoint_url` is set.
    redis / account_key / rate / burst: the shared token bucket (without Redis, one bucket per process).
        `account_key` should be the AWS account id; by default it is derived from the credentials.
    max_attempts: requests per operation including the first; backoff_base / backoff_cap / sleep / rng:
        exponential backoff with full jitter (sleep and rng are injectable for tests).
    insync_timeout / insync_poll_interval: how long `apply(wait=True)` polls GetChange, and how often.

    Counters: `calls` (requests sent, by operation, retries included; "sts:AssumeRole" too) and `errors`
    (transient errors seen, by AWS code or "ConnectionError").
    """

    def __init__(
        self,
        credentials: Mapping[str, Any],
        *,
        endpoint_url: str | None = None,
        region: str = "us-east-1",
        redis: Any = None,
        account_key: str = "",
        rate: float = DEFAULT_RATE,
        burst: int = DEFAULT_BURST,
        max_attempts: int = 8,
        backoff_base: float = 0.2,
        backoff_cap: float = 10.0,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        max_rate_wait: float = DEFAULT_MAX_WAIT,
        insync_timeout: float = 300.0,
        insync_poll_interval: float = 5.0,
        sts_endpoint_url: str | None = None,
        connect_timeout: float = 10.0,
        read_timeout: float = 60.0,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.calls: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()
        self.account_key = account_key or default_account_key(credentials)
        self.endpoint_url = endpoint_url
        self.region = region
        self._max_attempts = max_attempts
        self._backoff_base, self._backoff_cap = backoff_base, backoff_cap
        self._sleep = sleep
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography
        self._insync_timeout, self._insync_poll = insync_timeout, insync_poll_interval
        self._limiter: RateLimiter = (
            RedisTokenBucket(redis, rate=rate, burst=burst, max_wait=max_rate_wait)
            if redis is not None
            else local_bucket(rate, burst, max_rate_wait)
        )
        self._cached = _client_for(
            credentials,
            endpoint_url=endpoint_url,
            region=region,
            sts_endpoint_url=sts_endpoint_url or endpoint_url,
            timeouts=(connect_timeout, read_timeout),
        )
        self._cached.calls = self.calls  # an AssumeRole from now on is this provider's request
        self._role = isinstance(credentials, Mapping) and credentials.get("kind") == "role"
        self._client = self._cached.client

    def __repr__(self) -> str:  # never the credentials
        return f"Route53Provider(account_key={self.account_key!r}, endpoint_url={self.endpoint_url!r})"

    def warm(self) -> None:
        """Have an assumed role's credentials now (or refreshed, when botocore finds them near expiry), so
        the requests that follow, here or in a process forked from this one, need no AssumeRole. Static keys
        need nothing; the default chain is left to resolve itself where it is used."""
        if self._role:
            credentials = self._cached.session.get_credentials() if self._cached.session else None
            if credentials is not None:
                credentials.get_frozen_credentials()

    # --- one request, and the retry around it ------------------------------------------------------------

    def _where(self, op: str, zone_id: str | None) -> str:
        return f"Route53 {op}" + (f" for zone {zone_id}" if zone_id else "")

    def _request(self, op: str, zone_id: str | None, params: Mapping[str, Any]) -> dict[str, Any]:
        """Send exactly one request (after a token from the shared bucket); classify what went wrong."""
        metrics.rate_limit_wait(self.account_key, self._limiter.acquire(self.account_key))
        self.calls[op] += 1
        result = metrics.ERROR
        try:
            response = getattr(self._client, _METHODS[op])(**params)
            result = metrics.OK
            return response
        except bexc.ClientError as exc:
            code, message = _error_of(exc)
            status = int((exc.response.get("ResponseMetadata") or {}).get("HTTPStatusCode") or 0)
            if exc.operation_name and exc.operation_name != op:
                # e.g. STS AssumeRole failing while botocore fetched credentials for this request
                raise ProviderError(
                    f"{self._where(op, zone_id)} failed: getting credentials ({exc.operation_name}) failed: "
                    f"{code}: {message}"
                ) from None
            if code in _REJECTED_CODES:
                result = metrics.REJECTED
                raise _Rejected(code, message) from None
            if code in _REFUSED_CODES:
                result = metrics.THROTTLED
                raise _Transient(code, message, ambiguous=False) from None
            if status >= 500 or code in _SERVER_CODES:
                result = metrics.SERVER_ERROR
                raise _Transient(code or f"HTTP {status}", message, ambiguous=True) from None
            raise ProviderError(
                f"{self._where(op, zone_id)} failed: {code or status}: {message}", code=code
            ) from None
        except (bexc.ConnectTimeoutError, bexc.EndpointConnectionError) as exc:
            # the connection was never made, so the request was never sent
            result = metrics.CONNECTION_ERROR
            raise _Transient("ConnectionError", type(exc).__name__, ambiguous=False) from None
        except (bexc.HTTPClientError, bexc.ConnectionError) as exc:
            # sent, but no answer: Route53 may have applied it
            result = metrics.CONNECTION_ERROR
            raise _Transient("ConnectionError", type(exc).__name__, ambiguous=True) from None
        except bexc.NoCredentialsError:
            raise ProviderError(
                f"{self._where(op, zone_id)} failed: no AWS credentials found in the worker's default chain"
            ) from None
        except bexc.BotoCoreError as exc:
            # the type only: some botocore messages quote request parameters
            raise ProviderError(f"{self._where(op, zone_id)} failed: {type(exc).__name__}") from None
        finally:
            metrics.provider_call("route53", op, result)

    def _backoff(self, attempt: int) -> float:
        # exponential backoff with full jitter: uniform(0, min(cap, base * 2^(attempt-1)))
        return self._rng.uniform(0, min(self._backoff_cap, self._backoff_base * 2 ** (attempt - 1)))

    def _retry_or_raise(self, op: str, zone_id: str | None, t: _Transient, attempt: int) -> None:
        """Count the transient error; sleep before the next attempt, or raise when attempts are used up."""
        self.errors[t.code] += 1
        if attempt >= self._max_attempts:
            raise ProviderError(
                f"{self._where(op, zone_id)} still failing after {attempt} attempts: {t.code}"
                + (f": {t.message}" if t.message else "")
                + "; try again later",
                retryable=True,
            )
        delay = self._backoff(attempt)
        metrics.provider_retry("route53", op)
        log.warning(
            "%s: %s (attempt %d of %d); retrying in %.2f s",
            self._where(op, zone_id),
            t.code,
            attempt,
            self._max_attempts,
            delay,
        )
        self._sleep(delay)

    def _call(self, op: str, zone_id: str | None, **params: Any) -> dict[str, Any]:
        """A read (or other idempotent) request, retried on throttling, 5xx and connection errors."""
        attempt = 0
        while True:
            attempt += 1
            try:
                return self._request(op, zone_id, params)
            except _Transient as t:
                self._retry_or_raise(op, zone_id, t, attempt)
            except _Rejected as r:
                raise ProviderError(
                    f"{self._where(op, zone_id)} failed: {r.code}: {r.message}", code=r.code
                ) from None

    # --- zones and record sets --------------------------------------------------------------------------

    def list_zones(self, *, domain_filter: Sequence[str] = ()) -> list[ZoneInfo]:
        """Every hosted zone of the account (public and private); with filters, zones at or under them."""
        zones: list[ZoneInfo] = []
        marker = ""
        while True:
            params: dict[str, Any] = {"MaxItems": str(_ZONES_PAGE_SIZE)}
            if marker:
                params["Marker"] = marker
            resp = self._call(LIST_HOSTED_ZONES, None, **params)
            for hz in resp.get("HostedZones", []):
                count = hz.get("ResourceRecordSetCount")
                zones.append(
                    ZoneInfo(
                        id=_bare_zone_id(hz["Id"]),
                        name=normalize_name(hz["Name"]),
                        private=bool((hz.get("Config") or {}).get("PrivateZone", False)),
                        record_count=int(count) if count is not None else None,
                    )
                )
            nxt = str(resp.get("NextMarker") or "")
            if not resp.get("IsTruncated") or not nxt:
                break
            if nxt == marker:
                raise ProviderError(f"{self._where(LIST_HOSTED_ZONES, None)} returned the same page twice")
            marker = nxt
        filters = [normalize_name(f) for f in domain_filter if f.strip(". ")]
        if filters:
            zones = [z for z in zones if any(in_zone(z.name, f) for f in filters)]
        return zones

    def _list_pages(self, zone_id: str, start: Mapping[str, str]) -> Iterable[dict[str, Any]]:
        """ListResourceRecordSets pages from `start` on, 300 record sets each, until the listing ends."""
        responses: list[Mapping[str, Any]] = []
        params = dict(start)
        while True:
            resp = self._call(
                LIST_RECORD_SETS, zone_id, HostedZoneId=zone_id, MaxItems=str(LIST_PAGE_SIZE), **params
            )
            yield resp
            responses = [*responses[-1:], resp]
            try:
                nxt = next_page_start(responses)
            except PaginationStalled as exc:
                raise ProviderError(f"{self._where(LIST_RECORD_SETS, zone_id)} failed: {exc}") from None
            if nxt is None:
                return
            params = nxt

    def list_record_sets(self, zone_id: str) -> list[dict[str, Any]]:
        """Every record set of the zone as Route53 dicts, in Route53's order; ceil(R/300) requests."""
        zid = _bare_zone_id(zone_id)
        out: list[dict[str, Any]] = []
        for resp in self._list_pages(zid, {}):
            out.extend(resp.get("ResourceRecordSets", []))
        return out

    def record_sets_at(self, zone_id: str, names: Iterable[str]) -> dict[str, list[RecordSet]]:
        """The record sets at these names: a list request or so per name (see _read_names)."""
        return self._read_names(_bare_zone_id(zone_id), names)

    def nameservers(self, zone_id: str) -> list[str]:
        """The zone's delegation set (a private zone has none: empty list)."""
        zid = _bare_zone_id(zone_id)
        resp = self._call(GET_HOSTED_ZONE, zid, Id=zid)
        return [str(ns) for ns in (resp.get("DelegationSet") or {}).get("NameServers", [])]

    def zone_summary(self, zone_id: str) -> ZoneSummary:
        """One GetHostedZone: the zone's ResourceRecordSetCount (SOA and NS included, as a full read lists
        them) and its delegation set."""
        zid = _bare_zone_id(zone_id)
        resp = self._call(GET_HOSTED_ZONE, zid, Id=zid)
        count = (resp.get("HostedZone") or {}).get("ResourceRecordSetCount")
        names = tuple(str(ns) for ns in (resp.get("DelegationSet") or {}).get("NameServers", []))
        return ZoneSummary(int(count) if count is not None else None, names)

    # --- reading back what is in effect -----------------------------------------------------------------

    def _parse(self, zone_id: str, item: Mapping[str, Any]) -> RecordSet:
        try:
            return recordset_from_route53(item)
        except ValueError as exc:
            raise ProviderError(
                f"{self._where(LIST_RECORD_SETS, zone_id)}: unreadable record set: {exc}"
            ) from None

    def _read_names(self, zone_id: str, names: Iterable[str]) -> dict[str, list[RecordSet]]:
        """The current record sets at these names (normalised), in as few list requests as practical.

        Each read starts at `StartRecordName=<name>` and uses the whole page: Route53 lists a name's record
        sets together, so every name whose run of record sets starts and ends inside a page is known
        completely, and a name is absent when the listing from it starts with another name. With many names,
        one full read of the zone is used when it costs fewer requests.
        """
        wanted = sorted({normalize_name(n) for n in names})
        if len(wanted) > _FULL_READ_MIN_NAMES:
            hz = self._call(GET_HOSTED_ZONE, zone_id, Id=zone_id).get("HostedZone") or {}
            count = hz.get("ResourceRecordSetCount")
            if count is not None and math.ceil(max(int(count), 1) / LIST_PAGE_SIZE) < len(wanted):
                by_name: dict[str, list[RecordSet]] = {}
                for resp in self._list_pages(zone_id, {}):
                    for item in resp.get("ResourceRecordSets", []):
                        rs = self._parse(zone_id, item)
                        by_name.setdefault(rs.name, []).append(rs)
                return {n: by_name.get(n, []) for n in wanted}
        found: dict[str, list[RecordSet]] = {}
        complete: set[str] = set()
        for name in wanted:
            if name in complete:
                continue
            found[name] = []
            for resp in self._list_pages(zone_id, {"StartRecordName": name}):
                items = [self._parse(zone_id, i) for i in resp.get("ResourceRecordSets", [])]
                truncated = bool(resp.get("IsTruncated"))
                runs = _runs(items)
                for i, (run_name, rss) in enumerate(runs):
                    if run_name == name:
                        found[name].extend(rss)
                    elif run_name not in complete:
                        # pages continue only while `name` runs on, so any other name's run starts with
                        # its first record set (and is complete unless the page cuts it off)
                        found[run_name] = list(rss)
                    if not (truncated and i == len(runs) - 1):
                        complete.add(run_name)
                if not truncated or not runs or runs[-1][0] != name:
                    complete.add(name)  # `name` ended inside this page, or was never there
                    break
        return {n: found.get(n, []) for n in wanted}

    @staticmethod
    def _in_effect(change: Change, current: Mapping[str, list[RecordSet]], zone_id: str) -> bool:
        """Whether the zone already shows this change's result (sending it again would apply it twice)."""
        want = recordset_from_route53(recordset_to_route53(change.record, default_alias_zone_id=zone_id))
        fp = _fingerprint(want)
        present = any(_fingerprint(rs) == fp for rs in current.get(want.name, []))
        # a DELETE is in effect once no record set matches it exactly (Route53 deletes only exact matches)
        return not present if change.action == ACTION_DELETE else present

    def _drop_in_effect(self, zone_id: str, batch: Batch) -> Batch:
        """The batch without the changes the zone already shows, after an ambiguous failure."""
        current = self._read_names(zone_id, batch.names)
        groups: list[ChangeGroupInput] = []
        dropped = 0
        for g in batch.groups:
            keep = tuple(c for c in g.changes if not self._in_effect(c, current, zone_id))
            dropped += len(g.changes) - len(keep)
            groups.append(g if len(keep) == len(g.changes) else ChangeGroupInput(g.index, keep))
        out = Batch.of(groups)
        log.info(
            "zone %s: after an ambiguous failure %d of %d changes are already in effect; %d left to send",
            zone_id,
            dropped,
            dropped + len(out.changes()),
            len(out.changes()),
        )
        return out

    # --- applying --------------------------------------------------------------------------------------

    def _send(self, zone_id: str, batch: Batch) -> tuple[str | None, Batch]:
        """One ChangeResourceRecordSets for the batch, retried; returns (change id, the batch as last sent).

        The change id is None when, after an ambiguous failure, every change turned out to be in effect
        already (the request that got no answer had been applied). Raises _Rejected with the batch as sent.
        """
        current = batch
        attempt = 0
        while True:
            attempt += 1
            changes = current.changes()
            if not changes:
                return None, current
            body = {"Changes": [c.to_route53(default_alias_zone_id=zone_id) for c in changes]}
            try:
                resp = self._request(
                    CHANGE_RECORD_SETS, zone_id, {"HostedZoneId": zone_id, "ChangeBatch": body}
                )
            except _Rejected as r:
                raise _Rejected(r.code, r.message, current) from None
            except _Transient as t:
                self._retry_or_raise(CHANGE_RECORD_SETS, zone_id, t, attempt)
                if t.ambiguous:
                    # a 5xx or a lost answer may hide an applied request: never send a change twice
                    current = self._drop_in_effect(zone_id, current)
                continue
            return _bare_change_id(str((resp.get("ChangeInfo") or {}).get("Id", ""))) or None, current

    def _group_in_effect(self, zone_id: str, group: ChangeGroupInput) -> bool:
        try:
            current = self._read_names(zone_id, {c.record.name for c in group.changes})
        except ProviderError:
            return False
        return all(self._in_effect(c, current, zone_id) for c in group.changes)

    def _apply_batch(self, zone_id: str, batch: Batch, result: ApplyResult) -> None:
        """Send a batch; on rejection bisect it until the bad groups stand alone, applying the rest."""
        try:
            change_id, _ = self._send(zone_id, batch)
        except _Rejected as rej:
            sent = rej.batch or batch
            if len(sent.groups) > 1:
                left, right = bisect(sent)
                log.info(
                    "zone %s: Route53 rejected a request of %d groups (%s); splitting it %d + %d",
                    zone_id,
                    len(sent.groups),
                    rej.code,
                    len(left.groups),
                    len(right.groups),
                )
                self._apply_batch(zone_id, left, result)
                self._apply_batch(zone_id, right, result)
                return
            group = sent.groups[0]
            # Already in effect (a request whose answer was lost, or a server that applied part of a
            # rejected request): applied, not failed. Otherwise the group is bad: report Route53's words.
            if self._group_in_effect(zone_id, group):
                result.applied.append(group.index)
                return
            result.failed[group.index] = (
                f"{describe_group(group)}: Route53 rejected it: {rej.code}: {rej.message}"
            )
            log.warning("zone %s: %s", zone_id, result.failed[group.index])
            return
        result.applied.extend(batch.indexes)
        if change_id:
            result.change_ids.append(change_id)

    def _wait_insync(self, zone_id: str, change_id: str) -> None:
        deadline = time.monotonic() + self._insync_timeout
        while True:
            resp = self._call(GET_CHANGE, zone_id, Id=change_id)
            if (resp.get("ChangeInfo") or {}).get("Status") == "INSYNC":
                return
            if time.monotonic() + self._insync_poll > deadline:
                raise ProviderError(
                    f"Route53 change {change_id} for zone {zone_id} is still PENDING after "
                    f"{self._insync_timeout:.0f} s (usually INSYNC within 60 s); the changes are applied",
                    retryable=True,
                )
            self._sleep(self._insync_poll)

    def _apply_calls(self) -> int:
        return sum(self.calls[op] for op in APPLY_OPERATIONS)

    def apply(self, zone_id: str, groups: Sequence[ChangeGroupInput], *, wait: bool = True) -> ApplyResult:
        """Apply the groups in as few ChangeResourceRecordSets requests as Route53's limits allow.

        Groups too large for one request and groups Route53 rejects (isolated by bisection) are in
        `failed` with the reason; everything else is in `applied`, in input order. With `wait`, GetChange is
        polled until the zone's last change is INSYNC. A ProviderError (access denied, retries used up)
        carries the groups applied before it in `applied`.
        """
        zid = _bare_zone_id(zone_id)
        result = ApplyResult()
        before = self._apply_calls()
        position = {g.index: pos for pos, g in enumerate(groups)}
        plan = make_batches(groups)
        for note in plan.notes:
            log.info("zone %s: %s", zid, note)
        for index, message in plan.oversize.items():
            log.warning("zone %s: %s", zid, message)
            result.failed[index] = message
        try:
            for batch in plan.batches:
                self._apply_batch(zid, batch, result)
            if wait and result.change_ids:
                # Route53 works through a zone's change requests one at a time, in order (a request sent
                # while an earlier one is in progress is refused with PriorRequestNotComplete), so the
                # last change reaching INSYNC is taken to mean the earlier ones have: one poll, not one a
                # batch. (An assumption from that documented behaviour; AWS does not state it outright.)
                self._wait_insync(zid, result.change_ids[-1])
        except ProviderError as exc:
            applied = sorted(result.applied, key=position.__getitem__)
            raise ProviderError(
                f"{exc.user_message} ({len(applied)} of {len(groups)} change groups applied before this)",
                applied=applied,
                retryable=exc.retryable,
            ) from exc
        finally:
            result.calls = self._apply_calls() - before
        result.applied.sort(key=position.__getitem__)
        return result
