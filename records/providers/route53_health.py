"""Route53 health checks the portal creates and owns, for failover policies (issue 14).

`Route53HealthChecks` is mixed into `Route53Provider`: every request goes through the provider's `_call`, so
it takes a token from the account's shared bucket and is retried on `Throttling`, 5xx and broken
connections like every other Route53 call. The pure helpers (spec <-> HealthCheckConfig, the caller
reference, the status summary) have unit tests.

Ownership works like records (DESIGN rule 1): a health check is ours when its tag `dnsportal-owner` names
the caller's owner id. Checks without it are never listed as ours, updated or deleted.

Idempotency: the `CallerReference` is a digest of the owner id and the caller's reference. AWS returns the
existing check for a repeated CreateHealthCheck with the same reference and settings, so a resend after a
lost answer creates nothing twice; the portal also looks the reference up before creating, which makes a
second call with other settings an update instead of AWS's `HealthCheckAlreadyExists`.

What moto (5.2, server mode) does not do, found against the server (the code still does what AWS needs):
CreateHealthCheck ignores CallerReference (a repeat creates a second check), ListHealthChecks ignores
MaxItems/Marker (one page), UpdateHealthCheck ignores ResetElements and HealthCheckVersion (never checked,
never incremented), DeleteHealthCheck of a missing check succeeds, GetHealthCheckStatus answers one canned
healthy observation in us-east-1, and no configuration is validated.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from records.providers.base import (
    CheckerObservation,
    HealthCheckInfo,
    HealthCheckSpec,
    HealthCheckStatus,
    ProviderError,
    ZoneInfo,
)
from records.recordset import normalize_name

__all__ = [
    "HEALTH_METHODS",
    "NAME_TAG",
    "OWNER_TAG",
    "REFERENCE_TAG",
    "Route53HealthChecks",
    "caller_reference",
    "health_check_config",
    "spec_from_route53",
    "status_from_route53",
    "update_params",
]

log = logging.getLogger(__name__)

CREATE_HEALTH_CHECK = "CreateHealthCheck"
GET_HEALTH_CHECK = "GetHealthCheck"
LIST_HEALTH_CHECKS = "ListHealthChecks"
UPDATE_HEALTH_CHECK = "UpdateHealthCheck"
DELETE_HEALTH_CHECK = "DeleteHealthCheck"
GET_HEALTH_CHECK_STATUS = "GetHealthCheckStatus"
CHANGE_TAGS = "ChangeTagsForResource"
LIST_TAGS = "ListTagsForResource"
LIST_TAGS_BATCH = "ListTagsForResources"
# operation -> boto3 method, merged into the provider's table (route53.py `_METHODS`)
HEALTH_METHODS = {
    CREATE_HEALTH_CHECK: "create_health_check",
    GET_HEALTH_CHECK: "get_health_check",
    LIST_HEALTH_CHECKS: "list_health_checks",
    UPDATE_HEALTH_CHECK: "update_health_check",
    DELETE_HEALTH_CHECK: "delete_health_check",
    GET_HEALTH_CHECK_STATUS: "get_health_check_status",
    CHANGE_TAGS: "change_tags_for_resource",
    LIST_TAGS: "list_tags_for_resource",
    LIST_TAGS_BATCH: "list_tags_for_resources",
}

OWNER_TAG = "dnsportal-owner"
REFERENCE_TAG = "dnsportal-reference"
NAME_TAG = "Name"  # the Route53 console lists health checks by this tag
RESOURCE_TYPE = "healthcheck"
# ListHealthChecks returns at most 1,000 checks a page; ListTagsForResources takes at most 10 ids.
LIST_PAGE_SIZE = 1000
TAGS_BATCH = 10
# CallerReference is 1 to 64 characters; tag values at most 256.
_TAG_VALUE_MAX = 256
_NO_SUCH = "NoSuchHealthCheck"


def caller_reference(owner_id: str, reference: str) -> str:
    """Route53's idempotency key for the check `reference` names under `owner_id` (42 characters).

    A digest: owner id and reference together can exceed the 64 characters Route53 allows, and a separator
    could be ambiguous ("a/b" + "c" vs "a" + "b/c"). The tags carry both in clear.
    """
    digest = hashlib.sha256(f"{owner_id}\n{reference}".encode()).hexdigest()
    return f"dnsportal-{digest[:32]}"


def health_check_config(spec: HealthCheckSpec) -> dict[str, Any]:
    """The `HealthCheckConfig` Route53 needs to create the check `spec` describes (normalised first)."""
    s = spec.normalized()
    config: dict[str, Any] = {
        "Type": s.protocol,
        "Port": s.port,
        "RequestInterval": s.request_interval,
        "FailureThreshold": s.failure_threshold,
    }
    if s.ip_address:
        config["IPAddress"] = s.ip_address
        if s.host_header:
            # with an IPAddress, Route53 sends FullyQualifiedDomainName as the Host header (and SNI)
            config["FullyQualifiedDomainName"] = s.host_header
    else:
        config["FullyQualifiedDomainName"] = s.fully_qualified_domain_name
    if s.protocol != "TCP":
        config["ResourcePath"] = s.resource_path
    return config


def spec_from_route53(config: Mapping[str, Any]) -> HealthCheckSpec:
    """The spec a Route53 `HealthCheckConfig` describes, normalised; ValueError for a kind the portal
    does not manage (string matching, calculated, CloudWatch alarm, recovery control)."""
    kind = str(config.get("Type") or "")
    if kind not in ("HTTP", "HTTPS", "TCP"):
        raise ValueError(f"type {kind or '(none)'} is not one the portal manages (HTTP, HTTPS or TCP)")
    ip = str(config.get("IPAddress") or "")
    fqdn = str(config.get("FullyQualifiedDomainName") or "")
    return HealthCheckSpec(
        protocol=kind,
        port=int(config.get("Port") or 0),
        ip_address=ip,
        fully_qualified_domain_name="" if ip else fqdn,
        host_header=fqdn if ip else "",
        resource_path=str(config.get("ResourcePath") or "") if kind != "TCP" else "",
        request_interval=int(config.get("RequestInterval") or 30),
        failure_threshold=int(config.get("FailureThreshold") or 3),
    ).normalized()


def _fixed_settings_problem(current: HealthCheckSpec, want: HealthCheckSpec) -> str:
    """What `want` changes that Route53 cannot change in place, or ""."""
    changes = []
    if current.protocol != want.protocol:
        changes.append(f"protocol {current.protocol} -> {want.protocol}")
    if current.request_interval != want.request_interval:
        changes.append(f"request interval {current.request_interval} s -> {want.request_interval} s")
    # UpdateHealthCheck can change an IPAddress but not add or remove one
    if bool(current.ip_address) != bool(want.ip_address):
        changes.append(f"target {current.target} -> {want.target} (IP address vs domain name)")
    return ", ".join(changes)


def update_params(current: HealthCheckSpec, want: HealthCheckSpec) -> dict[str, Any]:
    """UpdateHealthCheck parameters that turn `current` into `want` (both normalised, same fixed settings).

    UpdateHealthCheck leaves an omitted element as it is, so an element to clear is named in ResetElements
    (only FullyQualifiedDomainName can go: a path is always sent, "/" at least).
    """
    params: dict[str, Any] = {"Port": want.port, "FailureThreshold": want.failure_threshold}
    if want.ip_address:
        params["IPAddress"] = want.ip_address
        if want.host_header:
            params["FullyQualifiedDomainName"] = want.host_header
        elif current.host_header:
            params["ResetElements"] = ["FullyQualifiedDomainName"]
    else:
        params["FullyQualifiedDomainName"] = want.fully_qualified_domain_name
    if want.protocol != "TCP":
        params["ResourcePath"] = want.resource_path
    return params


def status_from_route53(check_id: str, observations: Sequence[Mapping[str, Any]]) -> HealthCheckStatus:
    """GetHealthCheckStatus's `HealthCheckObservations` as a HealthCheckStatus.

    A checker reports healthy when its StatusReport's Status starts with "Success" (AWS: "Success: HTTP
    Status Code 200, OK"; otherwise "Failure: …").
    """
    out = []
    for o in observations:
        report = o.get("StatusReport") or {}
        status = str(report.get("Status") or "")
        checked = report.get("CheckedTime")
        out.append(
            CheckerObservation(
                region=str(o.get("Region") or "unknown"),
                checker_ip=str(o.get("IPAddress") or ""),
                healthy=status.startswith("Success"),
                status=status,
                checked_at=checked if isinstance(checked, datetime) else None,
            )
        )
    out.sort(key=lambda c: (c.region, c.checker_ip))
    return HealthCheckStatus(check_id=check_id, observations=tuple(out))


def _tags_of(tag_list: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    return {str(t.get("Key")): str(t.get("Value") or "") for t in tag_list}


def _tag_value(what: str, value: str) -> str:
    value = value.strip()
    if not value or len(value) > _TAG_VALUE_MAX:
        raise ProviderError(
            f"A health check's {what} must be 1 to {_TAG_VALUE_MAX} characters, not {value!r}."
        )
    return value


class Route53HealthChecks:
    """The Provider's health-check methods for Route53 (see the module docstring).

    Mixed into Route53Provider, whose `_call`, `list_zones` and `list_record_sets` these methods use.
    """

    if TYPE_CHECKING:

        def _call(self, op: str, zone_id: str | None, **params: Any) -> dict[str, Any]: ...
        def list_zones(self, *, domain_filter: Sequence[str] = ()) -> list[ZoneInfo]: ...
        def list_record_sets(self, zone_id: str) -> list[dict[str, Any]]: ...

    # --- requests ---------------------------------------------------------------------------------------

    def _hc_call(self, op: str, doing: str, **params: Any) -> dict[str, Any]:
        """`_call` with the failure put as a sentence about the health check ("Could not update …: …")."""
        try:
            return self._call(op, None, **params)
        except ProviderError as exc:
            raise ProviderError(
                f"Could not {doing}: {exc.user_message}", retryable=exc.retryable, code=exc.code
            ) from None

    def _all_checks(self) -> Iterator[dict[str, Any]]:
        """Every health check of the account (ListHealthChecks, 1,000 a page)."""
        marker = ""
        while True:
            params: dict[str, Any] = {"MaxItems": str(LIST_PAGE_SIZE)}
            if marker:
                params["Marker"] = marker
            resp = self._hc_call(LIST_HEALTH_CHECKS, "list the health checks", **params)
            yield from resp.get("HealthChecks", [])
            nxt = str(resp.get("NextMarker") or "")
            if not resp.get("IsTruncated") or not nxt:
                return
            if nxt == marker:
                raise ProviderError("Could not list the health checks: Route53 returned the same page twice.")
            marker = nxt

    def _tags(self, check_ids: Sequence[str]) -> dict[str, dict[str, str]]:
        """The tags of each check, ten checks a request (ListTagsForResources)."""
        out: dict[str, dict[str, str]] = {}
        for i in range(0, len(check_ids), TAGS_BATCH):
            chunk = list(check_ids[i : i + TAGS_BATCH])
            resp = self._hc_call(
                LIST_TAGS_BATCH, "read the health checks' tags", ResourceType=RESOURCE_TYPE, ResourceIds=chunk
            )
            for tag_set in resp.get("ResourceTagSets", []):
                out[str(tag_set.get("ResourceId"))] = _tags_of(tag_set.get("Tags", []))
        return out

    def _tags_one(self, check_id: str) -> dict[str, str]:
        resp = self._hc_call(
            LIST_TAGS,
            f"read the tags of health check {check_id}",
            ResourceType=RESOURCE_TYPE,
            ResourceId=check_id,
        )
        return _tags_of((resp.get("ResourceTagSet") or {}).get("Tags", []))

    def _get(self, check_id: str, doing: str) -> dict[str, Any]:
        try:
            return self._hc_call(GET_HEALTH_CHECK, doing, HealthCheckId=check_id)["HealthCheck"]
        except ProviderError as exc:
            if exc.code == _NO_SUCH:
                raise ProviderError(
                    f"Could not {doing}: Route53 has no health check {check_id} in this account.",
                    code=exc.code,
                ) from None
            raise

    def _info(self, check: Mapping[str, Any], tags: Mapping[str, str]) -> HealthCheckInfo:
        check_id = str(check["Id"])
        try:
            spec = spec_from_route53(check.get("HealthCheckConfig") or {})
        except ValueError as exc:
            raise ProviderError(
                f"Health check {check_id} carries the portal's owner tag but not a check the portal "
                f"manages: {exc}."
            ) from None
        return HealthCheckInfo(
            id=check_id,
            spec=spec,
            owner_id=tags.get(OWNER_TAG, ""),
            caller_reference=str(check.get("CallerReference") or ""),
            reference=tags.get(REFERENCE_TAG, ""),
            name=tags.get(NAME_TAG, ""),
        )

    def _require_owned(self, check_id: str, owner_id: str, doing: str) -> dict[str, str]:
        tags = self._tags_one(check_id)
        owner = tags.get(OWNER_TAG)
        if owner != owner_id:
            whose = f"owner id `{owner}`" if owner else "no portal (it has no `dnsportal-owner` tag)"
            raise ProviderError(
                f"Could not {doing}: it belongs to {whose}, not to owner id `{owner_id}`; the portal only "
                "changes health checks it created."
            )
        return tags

    # --- the Provider interface -------------------------------------------------------------------------

    def health_checks_owned(self, owner_id: str) -> list[HealthCheckInfo]:
        """Every check tagged `dnsportal-owner=<owner_id>`: ceil(N/1000) list + ceil(N/10) tag requests."""
        checks = list(self._all_checks())
        tags = self._tags([str(c["Id"]) for c in checks])
        owned = [
            self._info(c, tags[c["Id"]]) for c in checks if tags.get(c["Id"], {}).get(OWNER_TAG) == owner_id
        ]
        return sorted(owned, key=lambda i: (i.reference, i.id))

    def health_check_create(
        self, spec: HealthCheckSpec, *, owner_id: str, reference: str, name: str = ""
    ) -> HealthCheckInfo:
        """Create the check `reference` names (or find it), tag it ours, bring it to `spec` (see base.py)."""
        owner_id, reference = _tag_value("owner id", owner_id), _tag_value("reference", reference)
        problems = spec.validate()
        if problems:
            raise ProviderError(
                f"Health check `{reference}` is not valid: " + " ".join(p.message for p in problems)
            )
        want = spec.normalized()
        ref = caller_reference(owner_id, reference)
        check = self._find(ref)
        tags: dict[str, str] = {}
        if check is None:
            try:
                resp = self._call(
                    CREATE_HEALTH_CHECK,
                    None,
                    CallerReference=ref,
                    HealthCheckConfig=health_check_config(want),
                )
                check = resp["HealthCheck"]
                log.info("created health check %s (%s) for %s", check["Id"], want.describe(), reference)
            except ProviderError as exc:
                if exc.code != "HealthCheckAlreadyExists":
                    raise ProviderError(
                        f"Could not create health check `{reference}`: {exc.user_message}",
                        retryable=exc.retryable,
                        code=exc.code,
                    ) from None
                check = self._find(ref)  # created meanwhile by another worker with other settings
                if check is None:
                    raise ProviderError(
                        f"Could not create health check `{reference}`: Route53 still remembers a deleted "
                        "health check with this reference (it keeps them for some days); create it under a "
                        "new reference.",
                        code=exc.code,
                    ) from None
                tags = self._tags_one(str(check["Id"]))
        else:
            tags = self._tags_one(str(check["Id"]))
        check_id = str(check["Id"])
        if tags.get(OWNER_TAG, owner_id) != owner_id:
            # the reference is derived from our owner id: another owner's tag means someone retagged it
            raise ProviderError(
                f"Health check {check_id} has this portal's reference `{reference}` but is tagged for "
                f"owner id `{tags[OWNER_TAG]}`; the portal leaves it alone. Remove the tag or use another "
                "reference."
            )
        wanted = {
            OWNER_TAG: owner_id,
            REFERENCE_TAG: reference,
            NAME_TAG: (name or f"dnsportal {reference}")[:_TAG_VALUE_MAX],
        }
        if any(tags.get(k) != v for k, v in wanted.items()):
            # A check whose create was answered but whose tagging failed has no tags yet: the next call finds
            # it by its reference and tags it here, so it is never left unowned.
            self._hc_call(
                CHANGE_TAGS,
                f"tag health check {check_id}",
                ResourceType=RESOURCE_TYPE,
                ResourceId=check_id,
                AddTags=[{"Key": k, "Value": v} for k, v in wanted.items()],
            )
            tags.update(wanted)
        return self._update_to(check, tags, want, f"health check `{reference}` ({check_id})")

    def _find(self, ref: str) -> dict[str, Any] | None:
        """The check created with this CallerReference, tagged or not (the reference is only ours)."""
        return next((c for c in self._all_checks() if c.get("CallerReference") == ref), None)

    def _update_to(
        self, check: Mapping[str, Any], tags: Mapping[str, str], want: HealthCheckSpec, what: str
    ) -> HealthCheckInfo:
        check_id = str(check["Id"])
        current = self._info(check, tags)
        if current.spec == want:
            return current
        fixed = _fixed_settings_problem(current.spec, want)
        if fixed:
            raise ProviderError(
                f"Could not update {what}: Route53 cannot change a health check's protocol, request interval "
                f"or kind of target once created ({fixed}); create a new check under a new reference and "
                "delete this one."
            )
        params = update_params(current.spec, want)
        version = check.get("HealthCheckVersion")
        if version is not None:
            # Route53 refuses the update if someone changed the check since we read it
            params["HealthCheckVersion"] = int(version)
        try:
            resp = self._call(UPDATE_HEALTH_CHECK, None, HealthCheckId=check_id, **params)
        except ProviderError as exc:
            if exc.code == "HealthCheckVersionMismatch":
                raise ProviderError(
                    f"Could not update {what}: it was changed by someone else since it was read; try again.",
                    retryable=True,
                    code=exc.code,
                ) from None
            raise ProviderError(
                f"Could not update {what}: {exc.user_message}", retryable=exc.retryable, code=exc.code
            ) from None
        log.info("updated health check %s: %s -> %s", check_id, current.spec.describe(), want.describe())
        return self._info(resp["HealthCheck"], tags)

    def health_check_update(self, check_id: str, spec: HealthCheckSpec, *, owner_id: str) -> HealthCheckInfo:
        """Bring an owned check to `spec`; refuses checks of other owners and settings fixed at creation."""
        problems = spec.validate()
        if problems:
            raise ProviderError(
                f"Health check {check_id} cannot be updated: " + " ".join(p.message for p in problems)
            )
        doing = f"update health check {check_id}"
        check = self._get(check_id, doing)
        tags = self._require_owned(check_id, owner_id, doing)
        return self._update_to(check, tags, spec.normalized(), f"health check {check_id}")

    def health_check_set_inverted(self, check_id: str, inverted: bool, *, owner_id: str) -> bool:
        """Invert an owned check (Route53 then reports the healthy primary unhealthy: a failover drill) or
        restore it; returns `Inverted` as Route53 holds it afterwards, read back."""
        doing = f"{'invert' if inverted else 'restore'} health check {check_id}"
        self._get(check_id, doing)
        self._require_owned(check_id, owner_id, doing)
        self._hc_call(UPDATE_HEALTH_CHECK, doing, HealthCheckId=check_id, Inverted=inverted)
        config = self._get(check_id, f"read back health check {check_id}").get("HealthCheckConfig") or {}
        log.info("health check %s: Inverted=%s", check_id, config.get("Inverted"))
        return bool(config.get("Inverted"))

    def _records_using(self, check_id: str, zone_ids: Sequence[str] | None) -> list[str]:
        """ "name type (set id) in zone Z" of each record set that refers to the check."""
        zones = list(zone_ids) if zone_ids is not None else [z.id for z in self.list_zones()]
        out = []
        for zone_id in zones:
            for item in self.list_record_sets(zone_id):
                if item.get("HealthCheckId") == check_id:
                    sid = item.get("SetIdentifier")
                    label = f"{normalize_name(str(item['Name']))} {item['Type']}" + (
                        f" ({sid})" if sid else ""
                    )
                    out.append(f"{label} in zone {zone_id.removeprefix('/hostedzone/')}")
        return out

    def health_check_delete(
        self, check_id: str, *, owner_id: str, zone_ids: Sequence[str] | None = None
    ) -> bool:
        """Delete an owned check no record set in `zone_ids` uses; False when it was already gone.

        Route53 itself does not refuse: "Route 53 does not prevent you from deleting a health check even if
        the health check is associated with one or more resource record sets" (DeleteHealthCheck; its
        HealthCheckInUse error is deprecated), and a failover record whose check is gone answers
        unpredictably. So the portal looks for record sets that still use the check first.
        """
        doing = f"delete health check {check_id}"
        try:
            self._get(check_id, doing)
        except ProviderError as exc:
            if exc.code == _NO_SUCH:
                return False
            raise
        self._require_owned(check_id, owner_id, doing)
        users = self._records_using(check_id, zone_ids)
        if users:
            raise ProviderError(self._in_use(doing, users), code="HealthCheckInUse")
        try:
            self._call(DELETE_HEALTH_CHECK, None, HealthCheckId=check_id)
        except ProviderError as exc:
            if exc.code == _NO_SUCH:
                return True  # a resend after a lost answer: the first request deleted it
            if exc.code == "HealthCheckInUse":
                raise ProviderError(self._in_use(doing, users), code=exc.code) from None
            raise ProviderError(
                f"Could not {doing}: {exc.user_message}", retryable=exc.retryable, code=exc.code
            ) from None
        log.info("deleted health check %s", check_id)
        return True

    @staticmethod
    def _in_use(doing: str, users: Sequence[str]) -> str:
        if not users:
            return f"Could not {doing}: Route53 says record sets still use it; remove it from them first."
        return (
            f"Could not {doing}: {len(users)} record set(s) still use it: {'; '.join(users)}. Remove it "
            "from them (apply the policy change) first."
        )

    def health_check_status(self, check_id: str) -> HealthCheckStatus:
        """GetHealthCheckStatus, summarised per checker region ("healthy in 8 of 8 regions")."""
        doing = f"read the status of health check {check_id}"
        try:
            resp = self._hc_call(GET_HEALTH_CHECK_STATUS, doing, HealthCheckId=check_id)
        except ProviderError as exc:
            if exc.code == _NO_SUCH:
                raise ProviderError(
                    f"Could not {doing}: Route53 has no health check {check_id} in this account.",
                    code=exc.code,
                ) from None
            raise
        return status_from_route53(check_id, resp.get("HealthCheckObservations", []))
