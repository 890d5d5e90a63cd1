"""Ownership summaries of a zone for its page: the owner id of every managed record set, and counts of owned,
other-owner and unowned records and of ownership TXTs.

Pure: no Django, boto3 or Kubernetes import.
"""

from __future__ import annotations

from collections.abc import Iterable

from records.plan_model import ZoneConfig
from records.plan_state import _Ctx
from records.recordset import RecordKey, RecordSet


def record_owners(current: Iterable[RecordSet], config: ZoneConfig) -> dict[RecordKey, str | None]:
    """Owner id of every managed record set of the zone (None when unowned), sorted by key, for the zone page.

    Ownership TXTs are not listed (they are registry data); records outside the zone or of unmanaged types
    neither.
    """
    ctx = _Ctx(current, config)
    out: dict[RecordKey, str | None] = {}
    for k, rs in ctx.cur.items():
        if ctx.is_managed(k):
            o = ctx.ownership(rs)
            out[RecordKey(*k)] = o.owner if o is not None else None
    return dict(sorted(out.items()))


def summarize_ownership(current: Iterable[RecordSet], config: ZoneConfig) -> dict[str, int]:
    """Counts of owned / other-owner / unowned managed records and of ownership TXTs, for the zone page."""
    records = current if isinstance(current, list) else list(current)
    owners = record_owners(records, config)
    me = config.owner_id
    ctx = _Ctx(records, config)
    return {
        "owned": sum(1 for o in owners.values() if o == me),
        "other_owner": sum(1 for o in owners.values() if o is not None and o != me),
        "unowned": sum(1 for o in owners.values() if o is None),
        "ownership_records": sum(1 for k in ctx.cur if k[1] == "TXT" and ctx.txt_owner(k) is not None),
    }
