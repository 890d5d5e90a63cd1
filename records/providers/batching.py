"""Route53 request sizing, bisection and pagination, as pure functions (no boto3, no I/O).

`make_batches` packs change groups into `ChangeResourceRecordSets` requests under Route53's per-request limits
(shared/reference/route53.md, "API limits"; AWS Route53 Developer Guide, "Quotas", maximums on API requests):

- at most 1,000 `ResourceRecord` elements per request, and
- at most 32,000 characters in all `Value` elements of a request,
- where a change whose `Action` is UPSERT counts twice toward both.

An alias record set carries no `ResourceRecord` and no `Value` (`AliasTarget` instead): it is counted as one
element (as ExternalDNS counts it, so a request of aliases stays bounded) and no characters.

A group (a record change and its ownership TXT changes) is never split. Groups that touch a common DNS name
go into the same request whenever they fit together: a name's DELETE and its re-CREATE must reach Route53 in
one request, or the CREATE may arrive while the old record still blocks it. Inside a request the changes are
ordered DELETE → UPSERT → CREATE: Route53 applies a request's changes in order, so deleting first frees a
name (A → CNAME) before it is written again. A group larger than one request is reported, not sent
(ExternalDNS drops it with a warning).

`bisect` splits a request Route53 rejected (`InvalidChangeBatch`: a request is all or nothing) into two
halves, so the bad groups can be isolated in O(k log n) requests while the good ones are applied.

`next_page_start` computes the next `ListResourceRecordSets` request from the responses so far, including
`StartRecordIdentifier` when a page ends inside a name and type with several set identifiers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from records.plan import ACTION_CREATE, ACTION_DELETE, ACTION_UPSERT, Change
from records.providers.base import ChangeGroupInput

__all__ = [
    "DEFAULT_LIMITS",
    "LIST_PAGE_SIZE",
    "MAX_CHANGES_PER_REQUEST",
    "MAX_RECORDS_PER_REQUEST",
    "MAX_VALUE_CHARS_PER_REQUEST",
    "Batch",
    "Batching",
    "Cost",
    "Limits",
    "PaginationStalled",
    "bisect",
    "change_cost",
    "describe_group",
    "group_cost",
    "make_batches",
    "next_page_start",
]

# Route53: "A request cannot contain more than 1,000 ResourceRecord elements" (route53.md, API limits).
MAX_RECORDS_PER_REQUEST = 1_000
# Route53: "The sum of the number of characters (including spaces) in all Value elements in a request cannot
# exceed 32,000 characters" (route53.md, API limits).
MAX_VALUE_CHARS_PER_REQUEST = 32_000
# Route53 once capped a request at 100 Change elements; today it documents no separate cap. Every change
# counts at least one element toward the 1,000 above, so this only bounds malformed changes without values.
# ExternalDNS uses the same number (--aws-batch-change-size=1000).
MAX_CHANGES_PER_REQUEST = 1_000
# Route53 returns at most 300 record sets per ListResourceRecordSets page (route53.md, API limits).
LIST_PAGE_SIZE = 300

# Route53 applies the changes of one request in order: deletes first free names for the writes after them.
_ACTION_ORDER = {ACTION_DELETE: 0, ACTION_UPSERT: 1, ACTION_CREATE: 2}


@dataclass(frozen=True, slots=True)
class Limits:
    """Per-request limits; the defaults are Route53's."""

    records: int = MAX_RECORDS_PER_REQUEST
    chars: int = MAX_VALUE_CHARS_PER_REQUEST
    changes: int = MAX_CHANGES_PER_REQUEST


DEFAULT_LIMITS = Limits()


@dataclass(frozen=True, slots=True)
class Cost:
    """What some changes count toward a request's limits, the way Route53 counts (UPSERT twice)."""

    records: int = 0
    chars: int = 0
    changes: int = 0

    def __add__(self, other: Cost) -> Cost:
        return Cost(self.records + other.records, self.chars + other.chars, self.changes + other.changes)

    def fits(self, limits: Limits = DEFAULT_LIMITS) -> bool:
        """Whether one request may carry this much."""
        return (
            self.records <= limits.records and self.chars <= limits.chars and self.changes <= limits.changes
        )


def change_cost(change: Change) -> Cost:
    """What one change counts toward Route53's per-request limits."""
    rs = change.record
    if rs.alias is not None:
        # an alias has no ResourceRecord and no Value; counted as one element (as ExternalDNS does), 0 chars
        records, chars = 1, 0
    else:
        records, chars = len(rs.values), sum(len(v) for v in rs.values)
    if change.action == ACTION_UPSERT:
        # an UPSERT counts twice toward both the 1,000-record and the 32,000-character limit (route53.md)
        records, chars = 2 * records, 2 * chars
    return Cost(records=records, chars=chars, changes=1)


def group_cost(group: ChangeGroupInput) -> Cost:
    """What a whole group counts toward the limits."""
    total = Cost()
    for c in group.changes:
        total = total + change_cost(c)
    return total


def describe_group(group: ChangeGroupInput) -> str:
    """A short name for a group in messages: its first record change ("shop.example.com. A [blue]")."""
    if not group.changes:
        return f"group {group.index} (no changes)"
    first = next((c for c in group.changes if c.role == "record"), group.changes[0])
    return f"{first.record.key}"


def _ordered(changes: Iterable[Change]) -> list[Change]:
    # stable: within an action, changes stay in group order
    return sorted(changes, key=lambda c: _ACTION_ORDER.get(c.action, len(_ACTION_ORDER)))


@dataclass(frozen=True, slots=True)
class Batch:
    """The groups of one ChangeResourceRecordSets request, in input order, and what they count."""

    groups: tuple[ChangeGroupInput, ...]
    cost: Cost

    @classmethod
    def of(cls, groups: Iterable[ChangeGroupInput]) -> Batch:
        """A batch of these groups (in the order given) with its cost computed."""
        gs = tuple(groups)
        total = Cost()
        for g in gs:
            total = total + group_cost(g)
        return cls(gs, total)

    @property
    def indexes(self) -> tuple[int, ...]:
        return tuple(g.index for g in self.groups)

    @property
    def names(self) -> frozenset[str]:
        """Every DNS name a change of this batch touches (lower case)."""
        return frozenset(c.record.name.lower() for g in self.groups for c in g.changes)

    def changes(self) -> list[Change]:
        """The request's changes: DELETE, then UPSERT, then CREATE; each action in group order."""
        return _ordered(c for g in self.groups for c in g.changes)


@dataclass(frozen=True, slots=True)
class Batching:
    """The requests to send, in order; groups too large for any request, with why; notes for the log."""

    batches: tuple[Batch, ...]
    oversize: Mapping[int, str] = field(default_factory=dict)
    notes: tuple[str, ...] = ()


def _name_units(groups: Sequence[ChangeGroupInput]) -> list[list[int]]:
    """Positions of the groups, joined into units of groups that touch a common DNS name.

    Units are ordered by their first position; positions inside a unit ascend (union-find over names).
    """
    parent = list(range(len(groups)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first_at: dict[str, int] = {}
    for pos, g in enumerate(groups):
        for c in g.changes:
            name = c.record.name.lower()
            other = first_at.setdefault(name, pos)
            if other != pos:
                ra, rb = find(other), find(pos)
                if ra != rb:
                    # the smaller root wins, so a unit's root is its first position
                    parent[max(ra, rb)] = min(ra, rb)
    units: dict[int, list[int]] = {}
    for pos in range(len(groups)):
        units.setdefault(find(pos), []).append(pos)
    return [units[root] for root in sorted(units)]


def _oversize_message(group: ChangeGroupInput, cost: Cost, limits: Limits) -> str:
    over: list[str] = []
    if cost.records > limits.records:
        over.append(f"{cost.records:,} resource records (limit {limits.records:,})")
    if cost.chars > limits.chars:
        over.append(f"{cost.chars:,} value characters (limit {limits.chars:,})")
    if cost.changes > limits.changes:
        over.append(f"{cost.changes:,} changes (limit {limits.changes:,})")
    return (
        f"{describe_group(group)}: too large for one Route53 request: {' and '.join(over)}, counting each "
        "UPSERT twice as Route53 does; not sent. Publish fewer targets or shorter values for this record."
    )


def make_batches(groups: Sequence[ChangeGroupInput], *, limits: Limits = DEFAULT_LIMITS) -> Batching:
    """Pack `groups` (in apply order) into as few requests as Route53's limits allow.

    Guarantees: every group that fits a request appears in exactly one batch, whole; each batch's groups are
    in input order and batches are ordered by their first group; groups that share a DNS name share a batch
    whenever they fit in one request together (otherwise they are split in order and a note says so); a group
    that exceeds the limits on its own is in `oversize` with a message instead. With no two groups sharing a
    name, the batches concatenated are exactly the input minus the oversize groups.
    """
    oversize: dict[int, str] = {}
    kept: list[ChangeGroupInput] = []
    costs: list[Cost] = []
    for g in groups:
        cost = group_cost(g)
        if cost.fits(limits):
            kept.append(g)
            costs.append(cost)
        else:
            oversize[g.index] = _oversize_message(g, cost, limits)

    batches: list[Batch] = []
    notes: list[str] = []
    current: list[int] = []
    current_cost = Cost()

    def flush() -> None:
        nonlocal current, current_cost
        if current:
            batches.append(Batch(tuple(kept[p] for p in sorted(current)), current_cost))
        current, current_cost = [], Cost()

    # A unit of names that fits one request is placed whole at its first group's position; one that does not
    # is sent group by group at each group's own position (still in order for its names), with a note.
    items: list[tuple[int, list[int], Cost]] = []
    for unit in _name_units(kept):
        unit_cost = Cost()
        for p in unit:
            unit_cost = unit_cost + costs[p]
        if unit_cost.fits(limits):
            items.append((unit[0], unit, unit_cost))
            continue
        names = sorted({c.record.name.lower() for p in unit for c in kept[p].changes})
        shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
        notes.append(
            f"the changes of {shown} exceed one Route53 request together; they are sent in order over "
            "several requests"
        )
        items.extend((p, [p], costs[p]) for p in unit)
    items.sort(key=lambda item: item[0])

    for _, positions, cost in items:
        if not (current_cost + cost).fits(limits):
            flush()
        current.extend(positions)
        current_cost = current_cost + cost
    flush()
    return Batching(batches=tuple(batches), oversize=oversize, notes=tuple(notes))


def bisect(batch: Batch) -> tuple[Batch, Batch]:
    """Split a rejected request's groups in two halves to send separately, left first.

    Route53 rejects a whole request for one bad change (all or nothing), so halving isolates k bad groups
    in about 2·k·log2(n) requests while the good halves get applied. The split falls between groups that
    share no DNS name when it can (a name's DELETE and re-CREATE stay together); a batch of one name is split
    between its groups. Each half keeps input order. ValueError for a batch of fewer than two groups.
    """
    n = len(batch.groups)
    if n < 2:
        raise ValueError("a batch of one group cannot be split; report the group instead")
    units = _name_units(batch.groups)
    if len(units) >= 2:
        left_pos: list[int] = []
        k = 0
        # take whole units until about half of the groups are on the left; never all of them
        while k < len(units) - 1 and (not left_pos or len(left_pos) + len(units[k]) <= n // 2):
            left_pos.extend(units[k])
            k += 1
        left_set = set(left_pos)
        left = [g for p, g in enumerate(batch.groups) if p in left_set]
        right = [g for p, g in enumerate(batch.groups) if p not in left_set]
    else:
        left, right = list(batch.groups[: n // 2]), list(batch.groups[n // 2 :])
    return Batch.of(left), Batch.of(right)


class PaginationStalled(ValueError):
    """The server answered two pages with the same continuation: paging would never end.

    moto does this when more record sets than a page holds share one name and type: it neither returns
    `NextRecordIdentifier` nor honours `StartRecordIdentifier` (testinfra.md §1.5).
    """


_NEXT_TO_START = (
    ("NextRecordName", "StartRecordName"),
    ("NextRecordType", "StartRecordType"),
    ("NextRecordIdentifier", "StartRecordIdentifier"),
)


def _continuation(response: Mapping[str, Any]) -> dict[str, str] | None:
    if not response.get("IsTruncated"):
        return None
    out = {start: str(response[nxt]) for nxt, start in _NEXT_TO_START if response.get(nxt)}
    if "StartRecordName" not in out:
        raise ValueError("a truncated ListResourceRecordSets response carries no NextRecordName")
    return out


def next_page_start(responses: Sequence[Mapping[str, Any]]) -> dict[str, str] | None:
    """The `Start*` parameters of the next ListResourceRecordSets request, or None when the listing is done.

    `responses` are the pages received so far, in order ({} is returned for none: start at the beginning).
    A truncated page continues at `NextRecordName` + `NextRecordType`, plus `NextRecordIdentifier` when
    Route53 ended the page inside a name and type with several set identifiers (weighted, latency, ...).
    Raises PaginationStalled when the last two pages name the same continuation.
    """
    if not responses:
        return {}
    nxt = _continuation(responses[-1])
    if nxt is not None and len(responses) >= 2 and _continuation(responses[-2]) == nxt:
        where = " ".join(nxt.values())
        raise PaginationStalled(
            f"ListResourceRecordSets returned the same continuation ({where}) twice; more record sets than "
            f"one page ({LIST_PAGE_SIZE}) share a name and type and the server does not page inside them"
        )
    return nxt
