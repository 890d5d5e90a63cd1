"""Preview the plan for a zone, offline: what the portal would change, in the order it would apply it.

    manage.py preview_plan --desired [CLUSTER=]endpoints.json [--desired ...] --current records.json
                           --owner-id ID [--zone example.com.] [--policy sync|upsert-only|create-only]
                           [--txt-prefix P | --txt-suffix S] [--txt-wildcard-replacement W]
                           [--adopt NAME ...] [--previous [CLUSTER=]FILE ...] [--private-zone]
                           [--subzone sub.example.com. ...]
                           [--max-change-share 0.3] [--managed-record-types A,AAAA,CNAME]
                           [--output json|table]

`--desired`: what the clusters want, in ExternalDNS's DNSEndpoint schema: a list of `spec.endpoints[]` items
(what `preview_endpoints --output json` prints), a DNSEndpoint object, a list of them, or a `kind: List`;
JSON or YAML. `CLUSTER=` names the cluster the file comes from, for the explanations. `--current`: the zone as
`aws route53 list-resource-record-sets` prints it (`{"ResourceRecordSets": [...]}` or a bare list). The zone
is the SOA's name unless `--zone` says otherwise. Without `--txt-prefix`/`--txt-suffix` the portal's default
naming is used (`_dnsportal-%{record_type}.`); `--txt-prefix ""` is ExternalDNS's default (no affix).

No database and no provider are touched. Output: the change groups in apply order with their reasons, the
conflicts (names left unchanged), what the policy holds back, and whether the plan needs approval and why.
Exit status: 0 when the plan was computed (conflicts and approvals included); 2 on a bad input file or
option (one line on standard error naming the file and what is wrong).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import yaml
from django.core.management.base import BaseCommand, CommandError, CommandParser

from records.aggregate import DEFAULT_MANAGED_TYPES, endpoints_from_document
from records.endpoint import Endpoint
from records.ownership import DEFAULT_TXT_NAMING, TxtNaming
from records.plan import DEFAULT_MAX_CHANGE_SHARE, POLICIES, ChangeGroup, Plan, ZoneConfig, compute_plan
from records.recordset import RecordSet, load_route53_records, zone_from_records

EXIT_BAD_INPUT = 2


def _read(path: str, stdin_used: list[bool]) -> Any:
    """JSON or YAML from a file (`-` = standard input, once)."""
    if path == "-":
        if stdin_used:
            raise ValueError("only one input can be read from standard input (-)")
        stdin_used.append(True)
        text, source = sys.stdin.read(), "<stdin>"
    else:
        try:
            text, source = Path(path).read_text(encoding="utf-8"), path
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise ValueError(f"{path}: cannot read the file ({reason})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as json_error:
        try:
            docs = [d for d in yaml.safe_load_all(text) if d is not None]
        except yaml.YAMLError:
            raise ValueError(
                f"{source}: not JSON ({json_error.msg} at line {json_error.lineno}) nor YAML"
            ) from None
        if not docs:
            raise ValueError(f"{source}: the file is empty") from None
        return docs[0] if len(docs) == 1 else docs


def _cluster_and_path(arg: str) -> tuple[str, str]:
    # "rke2-dc1=endpoints.json" names the cluster; a plain path (even one containing "=") does not
    cluster, eq, path = arg.partition("=")
    if eq and cluster and "/" not in cluster and not Path(arg).exists():
        return cluster, path
    return "", arg


def load_desired(args: list[str], stdin_used: list[bool]) -> list[Endpoint]:
    """Endpoints from every `--desired [CLUSTER=]FILE`; ValueError names the file and the item."""
    out: list[Endpoint] = []
    for arg in args:
        cluster, path = _cluster_and_path(arg)
        data = _read(path, stdin_used)
        try:
            out.extend(endpoints_from_document(data, cluster=cluster))
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from None
    return out


def load_current(path: str, stdin_used: list[bool]) -> list[RecordSet]:
    """Record sets from a `list-resource-record-sets` file; ValueError names the file and the item."""
    data = _read(path, stdin_used)
    try:
        return load_route53_records(data)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None


def _values(rs: RecordSet | None) -> str:
    if rs is None:
        return "-"
    ttl = "" if rs.alias is not None else f" (ttl {rs.ttl})"
    routing = "" if rs.routing.policy == "simple" else f" [{rs.routing.describe()}]"
    hc = f" [health check {rs.health_check_id}]" if rs.health_check_id else ""
    return f"{rs.describe_values()}{ttl}{routing}{hc}"


def _group_lines(n: int, g: ChangeGroup) -> list[str]:
    how = " (DELETE + CREATE)" if g.replace else ""
    flags = "".join(f"  [{f}]" for f, on in (("needs approval", g.needs_approval), ("drift", g.drift)) if on)
    lines = [f"{n}. {g.kind} {g.key}{how}{flags}"]
    lines.extend(f"     why: {r}" for r in g.reasons)
    if g.kind in ("update", "adopt") and g.before != g.after:
        lines.append(f"     before: {_values(g.before)}")
        lines.append(f"     after:  {_values(g.after)}")
    for c in g.changes:
        lines.append(f"     {c.action:<6} {c.record.name} {c.record.type}  {_values(c.record)}")
    return lines


def render_table(plan: Plan) -> list[str]:
    """The plan for a person: summary, approval, groups in apply order, conflicts, skipped, notes."""
    c = plan.counts()
    lines = [
        f"Plan for zone {plan.zone} (owner id {plan.owner_id}, policy {plan.policy}, "
        f"{plan.owned_count} records owned): {c['create']} create, {c['update']} update, "
        f"{c['delete']} delete, {c['adopt']} adopt, {c['ownership']} ownership; "
        f"{c['conflicts']} conflicts, {c['skipped']} held back"
    ]
    if plan.needs_approval:
        lines.append("NEEDS APPROVAL:")
        lines.extend(f"  - {r}" for r in plan.approval_reasons)
    if plan.is_empty:
        lines.append("Nothing to change.")
    else:
        lines.append("Changes, in apply order:")
        for n, g in enumerate(plan.groups, 1):
            lines.extend(_group_lines(n, g))
    if plan.conflicts:
        lines.append("Conflicts (these names are left as they are):")
        for cf in plan.conflicts:
            lines.append(f"  {cf.name} [{cf.kind}] {cf.message}")
            lines.extend(f"      - {o}" for o in cf.objects)
    if plan.skipped:
        lines.append(f"Held back by the zone policy ({plan.policy}):")
        lines.extend(f"  {s.kind} {s.key}: {s.reason}" for s in plan.skipped)
    if plan.notes:
        lines.append("Notes:")
        lines.extend(f"  - {note}" for note in plan.notes)
    return lines


class Command(BaseCommand):
    help = (
        "Print the plan for one zone from desired endpoints (DNSEndpoint schema) and the zone's records "
        "(list-resource-record-sets), in apply order, with conflicts and approval reasons; offline."
    )
    # Nothing here needs the database: no system checks (they may inspect it), no migration check.
    requires_system_checks: list[str] = []
    requires_migrations_checks = False

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--desired",
            action="append",
            required=True,
            metavar="[CLUSTER=]FILE",
            help="Desired endpoints (JSON or YAML, DNSEndpoint schema); `-` for stdin. Repeatable, one per "
            "cluster; CLUSTER= names the cluster in explanations.",
        )
        parser.add_argument(
            "--current",
            required=True,
            metavar="FILE",
            help="The zone's record sets as list-resource-record-sets prints them.",
        )
        parser.add_argument("--owner-id", required=True, help="The TXT owner id of the portal in this zone.")
        parser.add_argument("--zone", default="", help="The zone apex (default: the name of the SOA record).")
        parser.add_argument("--policy", choices=POLICIES, default="sync")
        affix = parser.add_mutually_exclusive_group()
        affix.add_argument("--txt-prefix", default=None, help="ExternalDNS's --txt-prefix ('' = none).")
        affix.add_argument("--txt-suffix", default=None, help="ExternalDNS's --txt-suffix.")
        parser.add_argument("--txt-wildcard-replacement", default="", help="ExternalDNS's flag of that name.")
        parser.add_argument(
            "--adopt",
            action="append",
            default=[],
            metavar="NAME",
            help="Take over the records at NAME from another owner id or from nobody (needs approval).",
        )
        parser.add_argument(
            "--previous",
            action="append",
            default=[],
            metavar="[CLUSTER=]FILE",
            help="The endpoints of the last applied plan, for 'source deleted in <cluster>' and drift "
            "reasons.",
        )
        parser.add_argument(
            "--private-zone", action="store_true", help="A private hosted zone: private addresses are fine."
        )
        parser.add_argument(
            "--subzone",
            action="append",
            default=[],
            metavar="ZONE",
            help="A hosted zone below this one; its names are left to it. Repeatable.",
        )
        parser.add_argument(
            "--max-change-share",
            type=float,
            default=DEFAULT_MAX_CHANGE_SHARE,
            help="Share of owned records an automatic plan may update or delete (default 0.3).",
        )
        parser.add_argument(
            "--managed-record-types",
            default=",".join(sorted(DEFAULT_MANAGED_TYPES)),
            help="Comma-separated record types the portal manages (ExternalDNS's default A,AAAA,CNAME).",
        )
        parser.add_argument("--output", choices=("json", "table"), default="table")

    def handle(self, *args: Any, **opts: Any) -> None:
        stdin_used: list[bool] = []
        try:
            desired = load_desired(opts["desired"], stdin_used)
            current = load_current(opts["current"], stdin_used)
            previous = load_desired(opts["previous"], stdin_used) if opts["previous"] else None
            zone = opts["zone"] or zone_from_records(current)
            if not zone:
                raise ValueError(
                    f"{opts['current']}: no single SOA record to take the zone from; pass --zone example.com."
                )
            if opts["txt_prefix"] is not None:
                naming = TxtNaming(
                    prefix=opts["txt_prefix"], wildcard_replacement=opts["txt_wildcard_replacement"]
                )
            elif opts["txt_suffix"] is not None:
                naming = TxtNaming(
                    suffix=opts["txt_suffix"], wildcard_replacement=opts["txt_wildcard_replacement"]
                )
            else:
                naming = TxtNaming(
                    prefix=DEFAULT_TXT_NAMING.prefix, wildcard_replacement=opts["txt_wildcard_replacement"]
                )
            types = frozenset(t.strip().upper() for t in opts["managed_record_types"].split(",") if t.strip())
            config = ZoneConfig(
                zone=zone,
                owner_id=opts["owner_id"],
                policy=opts["policy"],
                naming=naming,
                public=not opts["private_zone"],
                managed_types=types,
                max_change_share=opts["max_change_share"],
                subzones=tuple(opts["subzone"]),
            )
            plan = compute_plan(desired, current, config, adopt=opts["adopt"], previous=previous)
        except ValueError as exc:
            raise CommandError(str(exc), returncode=EXIT_BAD_INPUT) from None

        if opts["output"] == "json":
            self.stdout.write(json.dumps(plan.to_dict(), indent=2, ensure_ascii=False))
        else:
            for line in render_table(plan):
                self.stdout.write(line)
