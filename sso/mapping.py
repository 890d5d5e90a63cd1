"""Pure core of single sign-on: the identity provider's groups to one of the portal's four roles.

No Django import: settings.py parses the environment with these functions, and unit tests call them directly.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

# Lowest to highest, as dnsportal.roles.ROLES lists them: a person in several mapped groups gets the highest.
ROLE_ORDER = ("viewer", "operator", "approver", "admin")
UNMAPPED_CHOICES = ("viewer", "refuse")


def parse_role_map(raw: str) -> dict[str, str]:
    """`dns-admins=admin,dns-approvers=approver` (or a JSON object, for group names holding `,` or `=` such as
    LDAP DNs) as {group: role}. Raises ValueError naming the entry that is wrong."""
    raw = raw.strip()
    if not raw:
        return {}
    if raw.startswith("{"):
        try:
            loaded = json.loads(raw)
        except ValueError as exc:
            raise ValueError(f"is not a JSON object ({exc.msg})") from None
        if not isinstance(loaded, dict) or not all(isinstance(v, str) for v in loaded.values()):
            raise ValueError('as JSON must be an object of group name to role, e.g. {"dns-admins": "admin"}')
        pairs = [(str(k), v) for k, v in loaded.items()]
    else:
        pairs = []
        for entry in raw.split(","):
            if not entry.strip():
                continue
            group, sep, role = entry.rpartition("=")
            if not sep or not group.strip():
                raise ValueError(f"entry {entry.strip()!r} is not GROUP=ROLE")
            pairs.append((group.strip(), role))
    mapping: dict[str, str] = {}
    for group, role in pairs:
        role = role.strip().lower()
        if role not in ROLE_ORDER:
            raise ValueError(f"maps {group!r} to {role!r}, which is not one of {', '.join(ROLE_ORDER)}")
        if group in mapping and mapping[group] != role:
            raise ValueError(f"maps {group!r} twice ({mapping[group]} and {role})")
        mapping[group] = role
    return mapping


def groups_from_claim(value: object) -> list[str]:
    """The groups claim as a list of names: providers send a list, some a single string when there is one
    group, and none when the person is in no group (or the scope was not granted)."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, Iterable) and not isinstance(value, Mapping | bytes):
        return [str(v) for v in value if isinstance(v, str | int)]
    return []


@dataclass(frozen=True, slots=True)
class RoleDecision:
    role: str | None  # None: no group is mapped
    matched: tuple[str, ...]  # the person's groups the map names, sorted


def role_for_groups(groups: Iterable[str], role_map: Mapping[str, str]) -> RoleDecision:
    """The highest role any of `groups` maps to (exact, case-sensitive names, as providers compare them)."""
    matched = sorted({g for g in groups if g in role_map})
    if not matched:
        return RoleDecision(role=None, matched=())
    role = max((role_map[g] for g in matched), key=ROLE_ORDER.index)
    return RoleDecision(role=role, matched=tuple(matched))
