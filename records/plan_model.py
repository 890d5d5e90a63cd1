"""The plan's data model: policies, group kinds and Route53 actions, the zone's configuration, the changes and
change groups a plan is made of, the plan itself, and applying changes to a zone in memory.

Pure: no Django, boto3 or Kubernetes import.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from records.aggregate import DEFAULT_MANAGED_TYPES, Conflict
from records.ownership import DEFAULT_TXT_NAMING, TxtNaming
from records.recordset import RecordKey, RecordSet, normalize_name, recordset_to_route53

POLICY_SYNC = "sync"
POLICY_UPSERT_ONLY = "upsert-only"
POLICY_CREATE_ONLY = "create-only"
POLICIES = (POLICY_SYNC, POLICY_UPSERT_ONLY, POLICY_CREATE_ONLY)

# Group kinds. An update that Route53 cannot do in place is still an "update", with `replace=True`.
CREATE = "create"
UPDATE = "update"
DELETE = "delete"
ADOPT = "adopt"  # take a record over from another owner id, or from nobody; always needs approval
OWNERSHIP = "ownership"  # only the ownership TXT changes (format migration, repair); DNS answers unchanged

# Route53 change actions
ACTION_CREATE = "CREATE"
ACTION_UPSERT = "UPSERT"
ACTION_DELETE = "DELETE"

# DESIGN rule 3: more than this share of the owned records updated or deleted waits for a person...
DEFAULT_MAX_CHANGE_SHARE = 0.30
# ...once the zone owns enough records for a share to mean something (3 of 4 is not a mass change).
DEFAULT_MIN_OWNED_FOR_SHARE = 10

# Apply order: deletes free names (A → CNAME), replacements next, in-place updates, creates last.
_PHASE = {DELETE: 0, UPDATE: 2, ADOPT: 2, OWNERSHIP: 3, CREATE: 4}
_ACTION_ORDER = {ACTION_DELETE: 0, ACTION_UPSERT: 1, ACTION_CREATE: 2}


@dataclass(frozen=True, slots=True)
class ZoneConfig:
    """What the plan needs to know about a zone.

    `zone` is the apex FQDN; `owner_id` the TXT owner id the portal writes in this zone (one per zone, never
    shared with an ExternalDNS instance); `naming` the TXT prefix/suffix; `public` whether the zone is served
    on the internet (private addresses then need approval); `also_read` other namings whose ownership TXTs are
    recognised (ExternalDNS instances with another prefix, or this zone's previous naming).
    """

    zone: str
    owner_id: str
    policy: str = POLICY_SYNC
    naming: TxtNaming = DEFAULT_TXT_NAMING
    public: bool = True
    managed_types: frozenset[str] = DEFAULT_MANAGED_TYPES
    max_change_share: float = DEFAULT_MAX_CHANGE_SHARE
    min_owned_for_share: int = DEFAULT_MIN_OWNED_FOR_SHARE
    also_read: tuple[TxtNaming, ...] = ()
    subzones: tuple[str, ...] = ()  # hosted zones below this one: their names are theirs, not this zone's
    # Route53: a CNAME to a load balancer (any host name in a zone AWS serves aliases for) is written as alias
    # A and AAAA records, as ExternalDNS's AWS provider does; other providers keep the CNAME.
    alias_load_balancers: bool = True
    # What the zone's provider cannot serve as a record set asks, in a sentence ("" when it can): such names
    # are refused as conflicts and stay as they are, never simplified. None: every record set can be served.
    record_problem: Callable[[RecordSet], str] | None = None

    def __post_init__(self) -> None:
        if not self.zone.strip(". "):
            raise ValueError("zone must be a domain name such as example.com.")
        object.__setattr__(self, "zone", normalize_name(self.zone))
        if not self.owner_id:
            raise ValueError("owner id must not be empty (ExternalDNS refuses an empty --txt-owner-id)")
        if any(c in self.owner_id for c in ',="'):
            raise ValueError(
                f"owner id {self.owner_id!r} must not contain ',', '=' or '\"' (TXT label syntax)"
            )
        if self.policy not in POLICIES:
            raise ValueError(f"policy {self.policy!r} must be one of {', '.join(POLICIES)}")
        if not 0 < self.max_change_share <= 1:
            raise ValueError("max_change_share must be a fraction in (0, 1]")
        object.__setattr__(self, "managed_types", frozenset(t.upper() for t in self.managed_types))
        subs = {normalize_name(z) for z in self.subzones}
        object.__setattr__(self, "subzones", tuple(sorted(z for z in subs if z.endswith("." + self.zone))))


@dataclass(frozen=True, slots=True)
class Change:
    """One Route53 change: an action on a record set; `role` is "record" or "ownership" (its TXT)."""

    action: str
    record: RecordSet
    role: str = "record"

    def to_route53(self, *, default_alias_zone_id: str = "") -> dict[str, Any]:
        """The `Changes[]` entry of a ChangeResourceRecordSets request."""
        return {
            "Action": self.action,
            "ResourceRecordSet": recordset_to_route53(
                self.record, default_alias_zone_id=default_alias_zone_id
            ),
        }


@dataclass(frozen=True, slots=True)
class ChangeGroup:
    """The changes for one record, applied together: the record and its ownership TXT.

    `replace` says the update must be DELETE + CREATE (routing policy or alias-ness changes; Route53 cannot
    UPSERT across them). `drift` marks groups that restore a record changed outside the portal.
    """

    kind: str
    key: RecordKey
    changes: tuple[Change, ...]
    reasons: tuple[str, ...]
    before: RecordSet | None = None
    after: RecordSet | None = None
    sources: tuple[str, ...] = ()
    replace: bool = False
    drift: bool = False
    needs_approval: bool = False

    @property
    def name(self) -> str:
        return self.key.name

    def to_dict(self, *, default_alias_zone_id: str = "") -> dict[str, Any]:
        def rr(rs: RecordSet | None) -> dict[str, Any] | None:
            return None if rs is None else _route53_lenient(rs, default_alias_zone_id)

        return {
            "kind": self.kind,
            "name": self.key.name,
            "type": self.key.type,
            "set_identifier": self.key.set_identifier,
            "replace": self.replace,
            "drift": self.drift,
            "needs_approval": self.needs_approval,
            "reasons": list(self.reasons),
            "sources": list(self.sources),
            "before": rr(self.before),
            "after": rr(self.after),
            "changes": [
                {"Action": c.action, "Role": c.role, "ResourceRecordSet": rr(c.record)} for c in self.changes
            ],
        }


@dataclass(frozen=True, slots=True)
class Skipped:
    """A change the zone's policy holds back (e.g. a delete under upsert-only), shown so nothing is silent."""

    key: RecordKey
    kind: str
    reason: str

    def to_dict(self) -> dict[str, str]:
        return {"name": self.key.name, "type": self.key.type, "set_identifier": self.key.set_identifier,
                "kind": self.kind, "reason": self.reason}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Plan:
    """The result of planning one zone. Groups are in apply order; everything else is sorted."""

    zone: str
    owner_id: str
    policy: str
    groups: tuple[ChangeGroup, ...] = ()
    conflicts: tuple[Conflict, ...] = ()
    skipped: tuple[Skipped, ...] = ()
    notes: tuple[str, ...] = ()
    approval_reasons: tuple[str, ...] = ()
    owned_count: int = 0

    @property
    def needs_approval(self) -> bool:
        """Never applied automatically: a person must approve (DESIGN rule 3)."""
        return bool(self.approval_reasons)

    @property
    def is_empty(self) -> bool:
        """No change to make (conflicts and notes may still be worth showing)."""
        return not self.groups

    def counts(self) -> dict[str, int]:
        """Groups per kind, plus conflicts and skipped, for list pages and summaries."""
        out = {k: 0 for k in (CREATE, UPDATE, DELETE, ADOPT, OWNERSHIP)}
        for g in self.groups:
            out[g.kind] += 1
        out["conflicts"] = len(self.conflicts)
        out["skipped"] = len(self.skipped)
        return out

    def changes(self) -> list[Change]:
        """Every Route53 change in apply order: all DELETEs, then UPSERTs, then CREATEs, each in group order.

        Deleting first frees names (A → CNAME) and lets a routing policy change of several set identifiers of
        one name go through; a batching step must keep each group (record + TXT) and each name in one request.
        """
        flat = [c for g in self.groups for c in g.changes]
        return sorted(flat, key=lambda c: _ACTION_ORDER[c.action])  # stable: group order within an action

    def fingerprint(self) -> str:
        """A stable digest of the changes: equal plans (same changes) have equal fingerprints."""
        payload = [
            [g.kind, *g.key, [[c.action, _route53_lenient(c.record, "")] for c in g.changes]]
            for g in self.groups
        ]
        text = json.dumps([self.zone, payload], sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    def to_dict(self, *, default_alias_zone_id: str = "") -> dict[str, Any]:
        """JSON-ready form (preview_plan --output json, change set storage)."""
        return {
            "zone": self.zone,
            "owner_id": self.owner_id,
            "policy": self.policy,
            "needs_approval": self.needs_approval,
            "approval_reasons": list(self.approval_reasons),
            "summary": {**self.counts(), "owned": self.owned_count},
            "fingerprint": self.fingerprint(),
            "groups": [g.to_dict(default_alias_zone_id=default_alias_zone_id) for g in self.groups],
            # every Route53 change in the order it is applied (see changes())
            "apply_order": [
                {"Action": c.action, "ResourceRecordSet": _route53_lenient(c.record, default_alias_zone_id)}
                for c in self.changes()
            ],
            "conflicts": [c.to_dict() for c in self.conflicts],
            "skipped": [s.to_dict() for s in self.skipped],
            "notes": list(self.notes),
        }


def _route53_lenient(rs: RecordSet, default_alias_zone_id: str) -> dict[str, Any]:
    # For display and fingerprints an alias target whose hosted zone the provider has yet to resolve is fine
    if rs.alias is not None and not (rs.alias.hosted_zone_id or default_alias_zone_id):
        return recordset_to_route53(rs, default_alias_zone_id="(resolved by the provider)")
    return recordset_to_route53(rs, default_alias_zone_id=default_alias_zone_id)


# --- applying (in memory) --------------------------------------------------------------------------------


class ChangeRejected(ValueError):
    """A change Route53 would reject: CREATE of an existing record set, DELETE that does not match exactly."""


def apply_changes(records: Iterable[RecordSet], changes: Iterable[Change]) -> list[RecordSet]:
    """The zone after `changes`, with Route53's semantics (pure, in memory).

    CREATE fails when the record set exists, DELETE when it does not match exactly (name, type, set id, TTL,
    values, routing), UPSERT replaces or creates. Used by the tests, by dry runs, and to update a stored zone
    state after an apply instead of re-reading the zone. Returns the record sets sorted by key.
    """
    state: dict[tuple[str, str, str], RecordSet] = {}
    for rs in records:
        state[(rs.name, rs.type, rs.set_identifier)] = rs
    for c in changes:
        rs = c.record
        k = (rs.name, rs.type, rs.set_identifier)
        if c.action == ACTION_CREATE:
            if k in state:
                raise ChangeRejected(f"CREATE {RecordKey(*k)}: it already exists")
            state[k] = rs
        elif c.action == ACTION_DELETE:
            if state.get(k) != rs:
                raise ChangeRejected(f"DELETE {RecordKey(*k)}: no record set matches exactly")
            del state[k]
        elif c.action == ACTION_UPSERT:
            state[k] = rs
        else:
            raise ChangeRejected(f"unknown action {c.action!r}")
    return [state[k] for k in sorted(state)]


def apply_plan(records: Iterable[RecordSet], plan: Plan) -> list[RecordSet]:
    """The zone after applying every change of `plan` in apply order (see `apply_changes`)."""
    return apply_changes(records, plan.changes())
