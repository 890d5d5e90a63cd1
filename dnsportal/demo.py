"""The demo `make up` runs in embedded mode: what the dashboard says about it, and its removal.

The demo is three sandbox clusters (`is_demo`, set by `register_demo_clusters`), a Route53 stand-in account
and a PowerDNS account with their zones (`is_demo`, set by `register_demo_zone` and `register_demo_pdns`,
inherited at import). `make up` reports its progress in the data directory (dnsportal.embedded); removing the
demo leaves a marker there so that `make up` neither starts nor registers it again.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from clusters.models import Cluster
from dnsportal import embedded
from dnsportal.audit import audit_record
from dnsportal.errors import PortalError
from records.models import ChangeSet, ProviderAccount, Zone

# The hostname every demo cluster publishes (tools/kube_sandbox/demo.py): the first page to open.
DEMO_HOSTNAME = "app.example.com"
# The hostname the on-prem demo clusters publish in the zone the demo's PowerDNS serves.
DEMO_INTERNAL_HOSTNAME = "app.dc.internal"
# What `make up` writes while it builds and starts the demo.
IN_PROGRESS = frozenset({"building", "starting"})


@dataclass(frozen=True)
class DemoObjects:
    clusters: list[Cluster] = field(default_factory=list)
    zones: list[Zone] = field(default_factory=list)
    accounts: list[ProviderAccount] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.clusters or self.zones or self.accounts)


@dataclass(frozen=True)
class DemoBanner:
    """What the dashboard shows about the demo. `phase`: "" (nothing), "coming", "failed" or "present"."""

    phase: str
    step: str = ""
    updated_at: datetime | None = None
    objects: DemoObjects = field(default_factory=DemoObjects)
    hostname: str = DEMO_HOSTNAME
    http_port: int | None = None  # where the on-prem clusters' pages answer (make up's demo_http)

    @property
    def hostname_zone(self) -> Zone | None:
        """The demo zone holding `hostname` (example.com in the Route53 stand-in), the second step."""
        return next((z for z in self.objects.zones if _holds(z, self.hostname)), None)

    @property
    def standin_zones(self) -> list[Zone]:
        return [z for z in self.objects.zones if not z.account.is_powerdns]

    @property
    def powerdns_zones(self) -> list[DemoDnsZone]:
        """The demo's PowerDNS zones with the address their server answers on and a `dig` to try."""
        out = []
        for zone in self.objects.zones:
            if not zone.account.is_powerdns:
                continue
            server = (zone.nameserver_override or zone.account.dns_servers).split(",")[0].strip()
            host, _, port = server.rpartition(":") if server.count(":") == 1 else (server, "", "")
            name = DEMO_INTERNAL_HOSTNAME if _holds(zone, DEMO_INTERNAL_HOSTNAME) else zone.display_name
            dig = f"dig @{host} -p {port} {name}" if port else f"dig @{host} {name}" if host else ""
            out.append(DemoDnsZone(zone=zone, server=server, dig=dig, hostname=name))
        return out


@dataclass(frozen=True)
class DemoDnsZone:
    zone: Zone
    server: str  # host:port
    dig: str
    hostname: str


def _holds(zone: Zone, hostname: str) -> bool:
    apex = zone.name.rstrip(".")
    return hostname == apex or hostname.endswith("." + apex)


def _data_dir() -> Path:
    return Path(settings.DATA_DIR)


def demo_clusters():
    return Cluster.objects.filter(is_demo=True)


def demo_objects() -> DemoObjects:
    """The demo's rows: its clusters, its zones (those of a demo account too) and its provider accounts."""
    return DemoObjects(
        clusters=list(demo_clusters().order_by("name")),
        zones=list(
            Zone.objects.filter(Q(is_demo=True) | Q(account__is_demo=True))
            .select_related("account")
            .order_by("name")
        ),
        accounts=list(ProviderAccount.objects.filter(is_demo=True).order_by("name")),
    )


def demo_phase(*, demo_on: bool, removed: bool, state: str, any_demo_object: bool) -> str:
    """Which block the dashboard shows. While `make up` says it builds or starts the demo: "coming"; if it
    failed: "failed"; once demo objects exist: "present"; otherwise nothing. Only make up's word counts: a
    portal started some other way (no status, or make up said it "stopped") never waits for a demo."""
    if demo_on and not removed:
        if state == "failed":
            return "failed"
        if state in IN_PROGRESS:
            return "coming"
    return "present" if any_demo_object else ""


def demo_banner() -> DemoBanner:
    status = embedded.read_demo_status(_data_dir())
    if not isinstance(status, dict):  # a hand-edited file: treat it as no report
        status = {}
    objects = demo_objects()
    phase = demo_phase(
        demo_on=bool(settings.DEMO),
        removed=embedded.demo_removed(_data_dir()),
        state=str(status.get("state") or ""),
        any_demo_object=bool(objects),
    )
    at = status.get("at")
    updated_at = datetime.fromtimestamp(at, tz=UTC) if isinstance(at, int | float) else None
    return DemoBanner(
        phase=phase,
        step=str(status.get("step") or ""),
        updated_at=updated_at,
        objects=objects,
        http_port=embedded.demo_http_port(_data_dir()),
    )


def _write_removed_marker(data_dir: Path, content: dict[str, Any]) -> None:
    """Atomically, like the other files `make up` reads from the data directory."""
    data_dir.mkdir(parents=True, exist_ok=True)
    tmp = data_dir / f".{embedded.DEMO_REMOVED_FILE}.tmp"
    tmp.write_text(json.dumps(content, indent=2) + "\n")
    os.replace(tmp, data_dir / embedded.DEMO_REMOVED_FILE)


@transaction.atomic(durable=True)
def demo_remove(*, actor: Any) -> DemoObjects:
    """Delete the demo's clusters (their endpoints go with them), zones (their change sets and stored records
    go with them) and provider accounts, and tell `make up` not to bring the demo back.

    Only the portal's rows go: nothing is planned or applied in the Route53 stand-in or the demo's PowerDNS,
    whose records stay as they are. The marker is written inside the transaction: if it cannot be written
    nothing is deleted, and the objects are still there to remove again.
    """
    clusters = list(demo_clusters().select_for_update().order_by("name"))
    zones = list(
        Zone.objects.select_for_update().filter(Q(is_demo=True) | Q(account__is_demo=True)).order_by("name")
    )
    accounts = list(ProviderAccount.objects.select_for_update().filter(is_demo=True).order_by("name"))
    removed = DemoObjects(clusters=clusters, zones=zones, accounts=accounts)
    if not removed and (embedded.demo_removed(_data_dir()) or not settings.DEMO):
        raise PortalError("There is no demo to remove: no demo cluster, zone or provider account is left.")
    # Locked: a worker about to claim an approved change set waits for this transaction, then finds nothing.
    changesets = list(ChangeSet.objects.select_for_update().filter(zone__in=zones).order_by("id"))
    applying = [cs for cs in changesets if cs.status == ChangeSet.Status.APPLYING]
    if applying:
        raise PortalError(
            f"Change set #{applying[0].id} of {applying[0].zone} is being applied right now; "
            "remove the demo once it has finished."
        )
    for zone in zones:
        ids = [cs.id for cs in changesets if cs.zone_id == zone.id]
        audit_record(
            actor=actor,
            action="demo.remove",
            obj=zone,
            before={**zone.audit_view(), "account": zone.account.name, "changesets": ids},
            after=None,
        )
        zone.delete()
    for account in accounts:
        audit_record(actor=actor, action="demo.remove", obj=account, before=account.audit_view(), after=None)
        account.delete()
    for cluster in clusters:
        before = {**cluster.audit_view(), "endpoints": cluster.endpoints.count()}
        audit_record(actor=actor, action="demo.remove", obj=cluster, before=before, after=None)
        cluster.delete()
    who = actor.get_username() if getattr(actor, "is_authenticated", False) else "system"
    summary = {
        "clusters": [c.name for c in clusters],
        "zones": [str(z) for z in zones],
        "accounts": [a.name for a in accounts],
        "changesets": len(changesets),
    }
    audit_record(actor=actor, action="demo.remove", object_type="demo", object_repr="the demo", after=summary)
    _write_removed_marker(
        _data_dir(),
        {"removed_by": who, "removed_at": timezone.now().isoformat(), **summary},
    )
    return removed
