"""PowerDNS Authoritative behind the provider interface, through its HTTP API (`/api/v1/servers/<id>`).

Built from plain configuration (`PowerDNSProvider(api_url, api_key, server_id=..., dns_servers=...)`). Zones
and rrsets are read with `GET /zones` and `GET /zones/<zone>`; a change set is applied as rrset `PATCH`es,
which PowerDNS applies atomically per request. Record sets are Route53-shaped above this module: the mapping
to plain and LUA rrsets is `powerdns_codec` (pure).

Apply keeps Route53's rules, so the plan engine's guarantees hold unchanged: a CREATE of a record set that
exists fails, a DELETE must match the record set exactly, a group is applied whole or not at all, and a group
that cannot be applied is reported with the reason while the others are applied. An rrset the portal did not
render (no portal comment, or edited since) is never rewritten by a routed change.

PowerDNS has no health check objects. `ifurlup` probes a URL on every address of a failover record itself,
so a "health check" here is that URL: `health_check_create` returns it as the id, nothing is stored, and
`health_check_status` asks the URL from the worker (one observer, the portal).

Every error is a `ProviderError` whose message names the server and the zone; the API key is sent only in the
`X-API-Key` header and never appears in a message or a log line.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlsplit

import requests

from dnsportal import metrics
from records.plan import ACTION_CREATE, ACTION_DELETE, ACTION_UPSERT
from records.providers import powerdns_codec as codec
from records.providers.base import (
    ApplyResult,
    ChangeGroupInput,
    CheckerObservation,
    HealthCheckInfo,
    HealthCheckSpec,
    HealthCheckStatus,
    Provider,
    ProviderError,
    SpecProblem,
    ZoneInfo,
)
from records.recordset import RecordSet, in_zone, normalize_name, recordset_to_route53

log = logging.getLogger(__name__)

__all__ = ["PowerDNSProvider", "health_check_url_for"]


_TCP_REFUSED = (
    "PowerDNS checks failover with LUA ifurlup, which asks a URL: use an HTTP or HTTPS health check, not TCP."
)


def health_check_url_for(spec: HealthCheckSpec) -> str:
    """The URL `ifurlup` asks on each address for this health check (HTTP and HTTPS only)."""
    spec = spec.normalized()
    if spec.protocol not in ("HTTP", "HTTPS"):
        raise ProviderError(_TCP_REFUSED)
    host = spec.host_header or spec.fully_qualified_domain_name or spec.ip_address
    default = 443 if spec.protocol == "HTTPS" else 80
    port = "" if spec.port == default else f":{spec.port}"
    return f"{spec.protocol.lower()}://{host}{port}{spec.resource_path or '/'}"


class _State:
    """The zone's rrsets during an apply: PowerDNS key -> the Route53-shaped record sets it holds."""

    def __init__(self, rrsets: Sequence[codec.PdnsRRset]) -> None:
        self.members: dict[tuple[str, str], list[RecordSet]] = {}
        self.foreign: set[tuple[str, str]] = set()  # LUA rrsets the portal did not render: never rewritten
        for r in rrsets:
            if r.members:
                self.members[r.key] = list(r.members)
            elif r.type == codec.LUA:
                self.foreign.add(r.key)
            else:
                self.members[r.key] = [_plain_member(r)]

    def copy_keys(self, keys: set[tuple[str, str]]) -> dict[tuple[str, str], list[RecordSet]]:
        return {k: list(self.members.get(k, [])) for k in keys}


def _plain_member(r: codec.PdnsRRset) -> RecordSet:
    from records.recordset import recordset_from_route53

    return recordset_from_route53(codec.to_route53(r)[0])


def _same_record(a: RecordSet, b: RecordSet) -> bool:
    """Route53's DELETE rule: the record set must match exactly (values compared as a set)."""
    da, db = recordset_to_route53(a), recordset_to_route53(b)
    for d in (da, db):
        d["ResourceRecords"] = sorted(
            codec._absolute(d["Type"], rr["Value"]).lower() for rr in d.get("ResourceRecords", [])
        )
    return da == db


class PowerDNSProvider(Provider):
    """One PowerDNS server (its API), with the zones it serves."""

    def __init__(
        self,
        api_url: str,
        api_key: str,
        *,
        server_id: str = "localhost",
        dns_servers: Sequence[str] = (),
        timeout: float = 15.0,
        session: requests.Session | None = None,
    ) -> None:
        if not api_url:
            raise ProviderError("The PowerDNS account has no API URL (e.g. http://pdns.internal:8081).")
        base = api_url.rstrip("/")
        if "/api/v1" not in base:
            base += "/api/v1"
        if "/servers/" not in base:
            base += f"/servers/{quote(server_id or 'localhost', safe='')}"
        self.base = base
        self.server_id = server_id
        self.dns_servers = [s.strip() for s in dns_servers if s.strip()]
        self._key = api_key
        self._timeout = timeout
        self._http = session or requests.Session()
        self.calls: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()
        self._geoip: bool | None = None

    def __repr__(self) -> str:  # never the key
        return f"PowerDNSProvider(base={self.base!r})"

    # --- one request ------------------------------------------------------------------------------------

    def _where(self, zone: str | None) -> str:
        host = urlsplit(self.base).netloc
        return f"PowerDNS at {host}" + (f", zone {zone.rstrip('.')}" if zone else "")

    def _request(self, method: str, path: str, zone: str | None = None, json: Any = None) -> Any:
        operation = f"{method} {(path.split('/')[1] if '/' in path else path) or 'server'}"
        self.calls[operation] += 1
        result = metrics.ERROR
        try:
            answer = self._send(method, path, zone, json)
            result = metrics.OK
            return answer
        except ProviderError as exc:
            if exc.code and exc.code.isdigit() and int(exc.code) >= 500:
                result = metrics.SERVER_ERROR
            elif exc.code == "422":
                result = metrics.REJECTED  # PowerDNS refused the PATCH's content: nothing applied
            elif exc.retryable:
                result = metrics.CONNECTION_ERROR
            raise
        finally:
            metrics.provider_call("powerdns", operation, result)

    def _send(self, method: str, path: str, zone: str | None, json: Any) -> Any:
        try:
            resp = self._http.request(
                method,
                self.base + path,
                headers={"X-API-Key": self._key, "Accept": "application/json"},
                json=json,
                timeout=self._timeout,
            )
        except requests.ConnectionError:
            self.errors["ConnectionError"] += 1
            raise ProviderError(
                f"{self._where(zone)}: the API does not answer (connection refused or unreachable); "
                "is pdns_server running with api=yes and webserver-address reachable from the workers?",
                retryable=True,
            ) from None
        except requests.Timeout:
            self.errors["Timeout"] += 1
            raise ProviderError(
                f"{self._where(zone)}: the API did not answer within {self._timeout:.0f} s", retryable=True
            ) from None
        if resp.status_code in (401, 403):
            raise ProviderError(f"{self._where(zone)}: the API key was refused (HTTP {resp.status_code}).")
        if resp.status_code == 404:
            what = f"zone {zone.rstrip('.')}" if zone else f"server {self.server_id!r}"
            raise ProviderError(
                f"{self._where(zone)}: {what} not found on the server (HTTP 404).", code="404"
            )
        if resp.status_code >= 400:
            try:
                detail = str(resp.json().get("error") or resp.text)
            except ValueError:
                detail = resp.text
            raise ProviderError(
                f"{self._where(zone)}: HTTP {resp.status_code}: {detail.strip()[:300]}",
                retryable=resp.status_code >= 500,
                code=str(resp.status_code),
            )
        if not resp.content:
            return None
        try:
            return resp.json()
        except ValueError:
            raise ProviderError(f"{self._where(zone)}: the API answered something that is not JSON") from None

    def _zone_path(self, zone_id: str) -> str:
        return f"/zones/{quote(zone_id, safe='.')}"

    # --- zones and record sets --------------------------------------------------------------------------

    def list_zones(self, *, domain_filter: Sequence[str] = ()) -> list[ZoneInfo]:
        zones = [
            ZoneInfo(id=str(z["id"]), name=normalize_name(z["name"]), private=False)
            for z in self._request("GET", "/zones") or []
        ]
        filters = [normalize_name(f) for f in domain_filter if f.strip(". ")]
        if filters:
            zones = [z for z in zones if any(in_zone(z.name, f) for f in filters)]
        return sorted(zones, key=lambda z: z.name)

    def _rrsets(self, zone_id: str) -> list[codec.PdnsRRset]:
        data = self._request("GET", self._zone_path(zone_id), zone_id) or {}
        return [codec.from_api(r) for r in data.get("rrsets", [])]

    def list_record_sets(self, zone_id: str) -> list[dict[str, Any]]:
        """Every rrset as Route53-shaped dicts: routed rrsets the portal wrote as their record sets."""
        out: list[dict[str, Any]] = []
        for r in sorted(self._rrsets(zone_id), key=lambda r: r.key):
            out.extend(codec.to_route53(r))
        return out

    def nameservers(self, zone_id: str) -> list[str]:
        """Where to verify: the account's DNS servers (host:port) when set, else the zone's NS names."""
        if self.dns_servers:
            return list(self.dns_servers)
        apex = normalize_name(zone_id)
        for r in self._rrsets(zone_id):
            if r.key == (apex, "NS"):
                return [c.rstrip(".") for c in r.contents]
        return []

    def check_access(self) -> str:
        info = self._request("GET", "") or {}
        zones = self.list_zones()
        version = info.get("version", "unknown version")
        return f"PowerDNS {version} (server {info.get('id', self.server_id)}): {len(zones)} zone(s) visible"

    # --- apply ------------------------------------------------------------------------------------------

    def _try_group(
        self, state: _State, group: ChangeGroupInput
    ) -> tuple[dict[tuple[str, str], list[RecordSet]], str]:
        """The members of the rrsets the group touches after it, or "" and the reason it cannot apply."""
        keys = {codec.pdns_key(c.record) for c in group.changes}
        trial = state.copy_keys(keys)
        for change in group.changes:
            rs = change.record
            key = codec.pdns_key(rs)
            if key in state.foreign:
                return {}, (
                    f"{rs.key}: the LUA rrset at {key[0]} was not written by the portal (or was edited "
                    "since); it is left alone"
                )
            problem = codec.record_problem(rs)
            if problem and change.action != ACTION_DELETE:
                return {}, f"{rs.key}: {problem}"
            members = trial[key]
            at = next((i for i, m in enumerate(members) if m.key == rs.key), None)
            if change.action == ACTION_CREATE:
                if at is not None:
                    return {}, f"{rs.key} already exists"
                members.append(rs)
            elif change.action == ACTION_DELETE:
                if at is None:
                    return {}, f"{rs.key} was not found (deleted already?)"
                if not _same_record(members[at], rs):
                    return {}, f"{rs.key} does not match the record set to delete (changed since it was read)"
                del members[at]
            elif change.action == ACTION_UPSERT:
                if at is None:
                    members.append(rs)
                else:
                    members[at] = rs
            else:
                return {}, f"unknown change action {change.action!r}"
        if problem := self._geo_problem(trial):
            return {}, problem
        after = {**state.members, **trial}
        for key, members in trial.items():
            try:
                codec.render(key, members)
            except ValueError as exc:
                return {}, str(exc)
            if key[1] == codec.LUA:
                for rtype in {m.type for m in members}:
                    if after.get((key[0], rtype)):
                        return {}, f"{key[0]} has a plain {rtype} rrset too; PowerDNS would answer both"
            elif after.get((key[0], codec.LUA)) and any(m.type == key[1] for m in after[(key[0], codec.LUA)]):
                return (
                    {},
                    f"{key[0]} has routed {key[1]} record sets (a LUA rrset); PowerDNS would answer both",
                )
        return trial, ""

    def _has_geoip(self) -> bool:
        """Whether the server runs the GeoIP backend, which LUA's country() and continent() need."""
        if self._geoip is None:
            config = self._request("GET", "/config") or []
            launch = next((str(c.get("value", "")) for c in config if c.get("name") == "launch"), "")
            self._geoip = "geoip" in {b.strip().split(":")[0] for b in launch.split(",")}
        return self._geoip

    def _geo_problem(self, trial: Mapping[tuple[str, str], list[RecordSet]]) -> str:
        geo = [m for members in trial.values() for m in members if m.routing.policy == "geolocation"]
        if geo and not self._has_geoip():
            return (
                f"{geo[0].key}: geolocation needs PowerDNS's GeoIP backend, which this server does not run "
                "(launch=...,geoip with geoip-database-files); the record is left as it was"
            )
        return ""

    def _patch(self, zone_id: str, rrsets: Mapping[tuple[str, str], list[RecordSet]]) -> None:
        now = int(time.time())
        body = []
        for key in sorted(rrsets):
            rendered = codec.render(key, rrsets[key])
            body.append(
                codec.delete_api(key) if rendered is None else codec.to_api(rendered, modified_at=now)
            )
        if body:
            self._request("PATCH", self._zone_path(zone_id), zone_id, {"rrsets": body})

    def apply(self, zone_id: str, groups: Sequence[ChangeGroupInput], *, wait: bool = True) -> ApplyResult:
        """Apply the groups in order: the good ones in one atomic PATCH; each bad one reported, not sent.

        If PowerDNS refuses the combined PATCH, the groups are sent one PATCH each, so one group it rejects
        does not hold back the others. PowerDNS serves a change from the next query on: `wait` has nothing to
        wait for.
        """
        result = ApplyResult()
        before = sum(self.calls.values())
        state = _State(self._rrsets(zone_id))
        touched: dict[tuple[str, str], list[RecordSet]] = {}
        good: list[ChangeGroupInput] = []
        for group in groups:
            trial, problem = self._try_group(state, group)
            if problem:
                result.failed[group.index] = problem
                continue
            for key, members in trial.items():
                state.members[key] = members
                touched[key] = members
            good.append(group)
        try:
            self._patch(zone_id, touched)
            result.applied = [g.index for g in good]
        except ProviderError as exc:
            if exc.retryable or len(good) == 1:
                for g in good:
                    result.failed[g.index] = exc.user_message
            else:
                self._apply_one_by_one(zone_id, good, result)
        result.calls = sum(self.calls.values()) - before
        return result

    def _apply_one_by_one(
        self, zone_id: str, groups: Sequence[ChangeGroupInput], result: ApplyResult
    ) -> None:
        state = _State(self._rrsets(zone_id))
        for group in groups:
            trial, problem = self._try_group(state, group)
            if problem:
                result.failed[group.index] = problem
                continue
            try:
                self._patch(zone_id, trial)
            except ProviderError as exc:
                result.failed[group.index] = exc.user_message
                continue
            state.members.update(trial)
            result.applied.append(group.index)

    # --- health checks: the URL ifurlup asks ------------------------------------------------------------

    @classmethod
    def routing_problem(cls, routing: str) -> str:
        return codec.LATENCY_REFUSED if routing == "latency" else ""

    @classmethod
    def health_check_problems(cls, spec: HealthCheckSpec) -> list[SpecProblem]:
        """Route53's rules, but PowerDNS checks from inside the network (private addresses are fine), and
        only over HTTP or HTTPS."""
        problems = spec.validate(public=False)
        if spec.protocol.strip().upper() == "TCP":
            problems.insert(0, SpecProblem("protocol", _TCP_REFUSED))
        return problems

    def health_check_create(
        self, spec: HealthCheckSpec, *, owner_id: str, reference: str, name: str = ""
    ) -> HealthCheckInfo:
        url = health_check_url_for(spec)
        return HealthCheckInfo(
            id=url, spec=spec.normalized(), owner_id=owner_id, caller_reference=reference, reference=reference
        )

    def health_check_update(self, check_id: str, spec: HealthCheckSpec, *, owner_id: str) -> HealthCheckInfo:
        url = health_check_url_for(spec)
        return HealthCheckInfo(id=url, spec=spec.normalized(), owner_id=owner_id, caller_reference=check_id)

    def health_check_delete(
        self, check_id: str, *, owner_id: str, zone_ids: Sequence[str] | None = None
    ) -> bool:
        for zone_id in zone_ids if zone_ids is not None else [z.id for z in self.list_zones()]:
            using = [d["Name"] for d in self.list_record_sets(zone_id) if d.get("HealthCheckId") == check_id]
            if using:
                raise ProviderError(
                    f"the health check {check_id} is still used by {', '.join(sorted(set(using)))}"
                )
        return False  # nothing is stored on the server: there was nothing to delete

    def health_checks_owned(self, owner_id: str) -> list[HealthCheckInfo]:
        return []

    def health_check_status(self, check_id: str) -> HealthCheckStatus:
        url = codec.health_check_url(check_id)
        if not url:
            raise ProviderError(f"{check_id!r} is not a PowerDNS health check (an http:// or https:// URL)")
        try:
            resp = requests.get(url, timeout=5, allow_redirects=False)
            healthy = 200 <= resp.status_code < 400
            status = f"{'Success' if healthy else 'Failure'}: HTTP Status Code {resp.status_code}"
        except requests.RequestException as exc:
            healthy, status = False, f"Failure: {type(exc).__name__}"
        observation = CheckerObservation(
            region="portal", checker_ip="", healthy=healthy, status=status, checked_at=datetime.now(UTC)
        )
        return HealthCheckStatus(check_id=check_id, observations=(observation,))
