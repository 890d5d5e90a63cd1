"""Planning a few names of a large zone: which stored record sets such a plan must see.

A discovery event names the host names it changed. Planning the whole zone for one of them reads and compares
every record of the zone (10,000 endpoints and 20,000 record sets: most of a second); planning only the names
that changed gives the same changes for those names when the plan sees everything that decides them:

- every record set at those names (any type, any owner: what is there decides create, update, conflict), and
- every record set at each name where an ownership TXT of those names can live, under the zone's naming and
  every naming it also reads, in every format ExternalDNS has written (typed, legacy untyped, `cname-` for
  alias A), wildcards with and without their replacement. Those names' other record sets come along too, so
  the projection checks (a CNAME beside another record) see what the whole-zone plan would see.

`compute_plan(..., scope=...)` then plans deletes only at the scoped names: a record set at a TXT's name that
is there only as context is never taken for one nobody wants any more. tests/unit/test_plan_scope.py holds the
property this rests on: for random zones, namings and desired states, the scoped plan is the whole-zone plan
restricted to the scoped names.
"""

from __future__ import annotations

from collections.abc import Iterable

from records.ownership import MAPPER_TYPES, RECORD_TYPE_TEMPLATE, TxtNaming
from records.recordset import RecordSet, normalize_name

# every "<type>-" marker a TXT name may carry, and none (legacy); lower case as ExternalDNS writes them
_MARKERS = ("", *(t.lower() + "-" for t in MAPPER_TYPES))


def scope_names(names: Iterable[str]) -> frozenset[str]:
    """Host names as the plan keys them: lower case, one trailing dot."""
    return frozenset(normalize_name(n) for n in names if n.strip(". "))


def txt_candidates(name: str, namings: Iterable[TxtNaming]) -> set[str]:
    """Every name at which an ownership TXT of record `name` (FQDN) may live under these namings.

    A superset of what `read_registry` maps back to `name`: extra names only bring context into a scoped plan.
    """
    name = normalize_name(name)
    dns = name[:-1]
    first, dot, rest = dns.partition(".")
    out: set[str] = set()
    for nm in namings:
        firsts = {first}
        if first == "*" and nm.wildcard_replacement:
            firsts.add(nm.wildcard_replacement)
        if nm.wildcard_replacement and first == nm.wildcard_replacement:
            firsts.add("*")  # ExternalDNS looks "*.x" up under the replacement: the same TXT name
        affixes = set()
        for t in MAPPER_TYPES:
            rt = t.lower()
            resolved = (
                nm.prefix.replace(RECORD_TYPE_TEMPLATE, rt),
                nm.suffix.replace(RECORD_TYPE_TEMPLATE, rt),
            )
            affixes.update((resolved[0], m, resolved[1]) for m in _MARKERS)
        # TXTs written before a type template was configured: the affix without it
        bare = (nm.prefix.replace(RECORD_TYPE_TEMPLATE, ""), nm.suffix.replace(RECORD_TYPE_TEMPLATE, ""))
        affixes.update((bare[0], m, bare[1]) for m in _MARKERS)
        for f in firsts:
            for prefix, marker, suffix in affixes:
                label = prefix + marker + f + suffix
                out.add(f"{label}.{rest}." if dot else f"{label}.")
    return out


def scoped_lookup_names(scope: Iterable[str], namings: Iterable[TxtNaming]) -> set[str]:
    """The names whose record sets a plan scoped to `scope` must see (see the module docstring)."""
    namings = tuple(namings)
    out: set[str] = set()
    for name in scope:
        out.add(normalize_name(name))
        out |= txt_candidates(name, namings)
    return out


def scoped_current(current: Iterable[RecordSet], lookup: set[str]) -> list[RecordSet]:
    """The record sets of `current` a scoped plan sees (what the database query selects, in memory)."""
    return [rs for rs in current if rs.name in lookup]
