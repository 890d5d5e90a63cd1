"""The one small interface every DNS provider implements (Route53 now; PowerDNS for on-prem later).

A provider is built from plain configuration (no Django model) and talks to one account. Everything it returns
is plain data; every error it raises is a `ProviderError` whose `user_message` an operator can read and which
never carries a credential or a request body.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from records.plan import Change


class ProviderError(Exception):
    """A provider call failed. `user_message` is safe to show and store; `applied` lists what got through.

    `code` is the provider's own error code when it gave one (Route53: "NoSuchHealthCheck"), so a caller can
    tell a refusal it expects from a failure without parsing the message.
    """

    def __init__(
        self, user_message: str, *, applied: Sequence[int] = (), retryable: bool = False, code: str = ""
    ) -> None:
        super().__init__(user_message)
        self.user_message = user_message
        self.applied = list(applied)
        self.retryable = retryable
        self.code = code


@dataclass(frozen=True)
class ZoneInfo:
    """A hosted zone as the provider lists it."""

    id: str  # Route53: "Z0123456789ABC" (without the "/hostedzone/" prefix)
    name: str  # FQDN with trailing dot, lower case
    private: bool
    record_count: int | None = None


@dataclass(frozen=True)
class ChangeGroupInput:
    """One unit that must be applied whole: a record change and its ownership TXT change(s).

    `index` is the caller's id for the group (the position in the plan, or a Change row's id), reported back
    in the result so the caller can mark each group applied or failed.
    """

    index: int
    changes: tuple[Change, ...]


@dataclass
class ApplyResult:
    """What an apply did, per group: applied ones, failed ones with the provider's message, change ids."""

    applied: list[int] = field(default_factory=list)
    failed: dict[int, str] = field(default_factory=dict)
    change_ids: list[str] = field(default_factory=list)
    calls: int = 0  # API requests made (ChangeResourceRecordSets + GetChange), for the economy figures

    @property
    def complete(self) -> bool:
        return not self.failed


class Provider(ABC):
    """List zones and record sets, apply grouped changes, wait for them to be in sync, health checks."""

    @abstractmethod
    def list_zones(self, *, domain_filter: Sequence[str] = ()) -> list[ZoneInfo]:
        """Every hosted zone of the account (public and private), optionally only names under the filters."""

    @abstractmethod
    def list_record_sets(self, zone_id: str) -> list[dict[str, Any]]:
        """Every record set of the zone as Route53 dicts (`ResourceRecordSets` items), all pages."""

    @abstractmethod
    def apply(self, zone_id: str, groups: Sequence[ChangeGroupInput], *, wait: bool = True) -> ApplyResult:
        """Apply the groups in the order given, in as few requests as the provider's limits allow.

        A group is never split across requests. When the provider rejects a request because of some of its
        changes, the good groups are still applied and the bad ones reported with the provider's message.
        With `wait`, returns once the provider reports the changes in sync.
        """

    @abstractmethod
    def nameservers(self, zone_id: str) -> list[str]:
        """The zone's authoritative nameservers (Route53: its delegation set)."""

    def check_access(self) -> str:
        """A cheap call proving the credentials work; returns a one-line description (account, zone count)."""
        zones = self.list_zones()
        return f"{len(zones)} hosted zone(s) visible"
