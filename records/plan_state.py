"""The planning state: the zone's current record sets indexed for planning, with ownership looked up on
demand (`_Ctx`), and the builder that collects a plan's candidate change groups and conflicts (`_Builder`).

Pure: no Django, boto3 or Kubernetes import.
"""

from __future__ import annotations

from collections.abc import Iterable
from operator import attrgetter

from records import policy
from records.aggregate import Conflict, DesiredRecord, describe_endpoint
from records.ownership import (
    Ownership,
    Registry,
    explain_apex,
    ownership_in_value,
    ownership_record,
    read_registry,
)
from records.plan_diff import _needs_replace, _txt_equivalent
from records.plan_model import ACTION_CREATE, ACTION_DELETE, ACTION_UPSERT, Change, ChangeGroup, ZoneConfig
from records.recordset import RecordKey, RecordSet, in_zone

_KEY = attrgetter("name", "type", "set_identifier")  # a record set's key, computed in C


class _Ctx:
    """The current state, indexed for planning, with ownership looked up on demand.

    ExternalDNS's registry reads every TXT of the zone into a reverse index first. The plan needs ownership
    only for the records it looks at, and ExternalDNS prefers the typed TXT, whose name the zone's naming
    computes from the record (forward); so that one is looked up directly, and the full reverse index
    (legacy and `cname-` TXTs, other namings) is built only when a record is not owned through it.
    """

    __slots__ = (
        "_by_name",
        "_registry",
        "_txt_owner",
        "below",
        "config",
        "cur",
        "dot_zone",
        "managed",
        "zone",
    )

    def __init__(self, current: Iterable[RecordSet], config: ZoneConfig) -> None:
        self.config = config
        self.zone = config.zone
        self.dot_zone = "." + config.zone
        self.managed = config.managed_types
        self.below = tuple("." + z for z in config.subzones)
        records = current if isinstance(current, list) else list(current)
        # one index of the zone by key, built without a Python-level loop (a large zone: 200,000 record sets)
        self.cur: dict[tuple[str, str, str], RecordSet] = dict(zip(map(_KEY, records), records, strict=True))
        if len(self.cur) != len(records):
            seen: set[tuple[str, str, str]] = set()
            for rs in records:
                k = (rs.name, rs.type, rs.set_identifier)
                if k in seen:
                    raise ValueError(f"the current state lists {RecordKey(*k)} twice")
                seen.add(k)
        self._txt_owner: dict[tuple[str, str, str], str | None] = {}
        self._registry: Registry | None = None
        self._by_name: dict[str, list[tuple[str, str, str]]] = {}

    def get(self, k: tuple[str, str, str]) -> RecordSet | None:
        """The current record set at key `k`, or None."""
        return self.cur.get(k)

    @property
    def registry(self) -> Registry:
        if self._registry is None:
            cfg = self.config
            txts = [rs for rs in self.cur.values() if rs.type == "TXT"]
            self._registry = read_registry(txts, cfg.naming, also_read=cfg.also_read)
        return self._registry

    def txt_owner(self, tk: tuple[str, str, str]) -> str | None:
        """The owner id the TXT at `tk` names; None when there is no TXT there, or no ownership record."""
        if tk in self._txt_owner:
            return self._txt_owner[tk]
        t = self.cur.get(tk) if tk[1] == "TXT" else None
        owner = ownership_in_value(t.values[0])[1] if t is not None and t.values else None
        self._txt_owner[tk] = owner
        return owner

    def ownership(self, rs: RecordSet) -> Ownership | None:
        """Who owns `rs` (ExternalDNS's lookup order: typed TXT, `cname-` for alias A, legacy untyped)."""
        cfg = self.config
        t = self.cur.get((cfg.naming.txt_name(rs.name, rs.type), "TXT", rs.set_identifier))
        if t is not None and t.values:
            text, owner = ownership_in_value(t.values[0])
            if owner is not None:
                return Ownership(owner, text, t, "typed")
        got = self.registry.owner_of(rs)
        if got is not None and got.form == "typed":
            # typed, but not under the name the zone's naming gives it (another naming or an old template)
            got = got._replace(form="renamed")
        return got

    def is_managed(self, k: tuple[str, str, str]) -> bool:
        """A record set the plan may manage: a managed type, in the zone, not an ownership TXT."""
        if k[1] not in self.managed:
            return False
        name = k[0]
        if name != self.zone and not name.endswith(self.dot_zone):
            return False
        if self.below and ("." + name).endswith(self.below):
            return False  # glue or leftovers under a delegated zone: that zone's business
        return not (k[1] == "TXT" and self.txt_owner(k) is not None)

    def keys_at(self, names: Iterable[str]) -> dict[str, list[tuple[str, str, str]]]:
        """The current record set keys at each of `names` (one pass over the zone for all missing names)."""
        missing = {n for n in names if n not in self._by_name}
        if missing:
            for n in missing:
                self._by_name[n] = []
            hits = [k for k in self.cur if k[0] in missing]
            for k in hits:
                self._by_name[k[0]].append(k)
        return self._by_name

    def describe_current(self, k: tuple[str, str, str]) -> str:
        rs = self.get(k)
        if rs is None:
            return f"{RecordKey(*k)} (not in the zone)"
        if k[1] == "TXT" and self.txt_owner(k) is not None:
            who = f"ownership record of {self.txt_owner(k) or '?'}"
        elif not self.is_managed(k):
            who = "not managed by the portal"
        else:
            o = self.ownership(rs)
            if o is None:
                who = "unowned"
            else:
                who = f"owned by {o.owner}" + (f" ({o.resource})" if o.resource else "")
        return f"existing {RecordKey(*k)} {rs.describe_values()} ({who})"


class _Builder:
    """Collects candidate groups and conflicts while planning."""

    def __init__(self, ctx: _Ctx) -> None:
        self.ctx = ctx
        self.groups: list[ChangeGroup] = []
        self.conflicts: dict[str, list[Conflict]] = {}

    def conflict(self, name: str, kind: str, message: str, objects: Iterable[str]) -> None:
        self.conflicts.setdefault(name, []).append(Conflict(name, kind, message, tuple(sorted(set(objects)))))

    def txt_in_place(self, record: RecordSet, o: Ownership) -> bool:
        """Whether the TXT that makes `record` ours is the current-format one and carries its routing.

        The fast path for the unchanged records that make up almost all of a zone: no lookup, no TXT built.
        """
        t = o.txt
        # "typed" ownership was found under the name the zone's naming computes (see _Ctx.ownership)
        return (
            o.form == "typed"
            and (t.routing is record.routing or t.routing == record.routing)
            and t.health_check_id == record.health_check_id
        )

    def txt_changes(
        self, record: RecordSet, dr: DesiredRecord, *, adopting: bool, exact: bool
    ) -> tuple[list[Change], bool] | None:
        """The ownership TXT changes that make `record` ours (and whether they differ at all).

        `exact`: write the TXT as it should be now (creates, updates, adopts: the resource label of the
        current source, as ExternalDNS writes it); otherwise a TXT that names us and carries the routing is
        left alone.

        None after reporting a conflict: the TXT cannot be written (outside the zone, or its name is taken).
        """
        ctx = self.ctx
        cfg = ctx.config
        txt = ownership_record(record, cfg.owner_id, dr.labels, cfg.naming)
        if not in_zone(txt.name, cfg.zone) or txt.name == cfg.zone:
            self.conflict(
                record.name,
                "ownership",
                f"{record.key}: its ownership record would be {txt.name}, outside the zone. "
                + explain_apex(cfg.naming, cfg.zone),
                _dr_objects(dr),
            )
            return None
        if any(len(label) > policy.MAX_LABEL for label in txt.name[: -len(cfg.zone) - 1].split(".")):
            self.conflict(
                record.name,
                "ownership",
                f"{record.key}: its ownership record name {txt.name} has a label over 63 characters",
                _dr_objects(dr),
            )
            return None
        tk = (txt.name, "TXT", txt.set_identifier)
        existing = ctx.cur.get(tk)
        if existing is None:
            return [Change(ACTION_CREATE, txt, "ownership")], True
        owner = ctx.txt_owner(tk)
        if owner is None:
            self.conflict(
                record.name,
                "ownership",
                f"{record.key}: {txt.name} already holds a TXT record that is not an ownership record",
                (*_dr_objects(dr), ctx.describe_current(tk)),
            )
            return None
        if owner != cfg.owner_id and not adopting:
            self.conflict(
                record.name,
                "not-owned",
                f"{record.key}: ownership record {txt.name} names owner {owner!r}; adopt the record to take "
                "it over",
                (*_dr_objects(dr), ctx.describe_current(tk)),
            )
            return None
        if existing == txt:
            return [], False
        if not exact and owner == cfg.owner_id and _txt_equivalent(existing, txt, cfg.owner_id):
            return [], False
        if _needs_replace(existing, txt):
            return [
                Change(ACTION_DELETE, existing, "ownership"),
                Change(ACTION_CREATE, txt, "ownership"),
            ], True
        return [Change(ACTION_UPSERT, txt, "ownership")], True


def _dr_objects(dr: DesiredRecord) -> tuple[str, ...]:
    """The objects behind a desired record, with what they ask for (for conflict listings)."""
    return tuple(sorted({describe_endpoint(e) for e in dr.endpoints}))
