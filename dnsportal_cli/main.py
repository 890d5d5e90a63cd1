"""The `dnsportal` command: argument parsing and one function per subcommand."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from dnsportal_cli.client import (
    FAILED,
    OK,
    TIMEOUT,
    USAGE,
    Api,
    CliError,
    load_config,
)
from dnsportal_cli.output import emit_json, facts, table

FINAL_OK = {"applied"}
JOB_FINAL = {"done", "failed"}


class Ctx:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.api = Api(load_config(args.url, args.token))
        self.json = args.output == "json"

    def show(self, data: Any, render) -> None:
        if self.json:
            emit_json(data)
        else:
            render(data)


def _deadline(seconds: float) -> float:
    return time.monotonic() + seconds


def wait_job(ctx: Ctx, job_id: int | None, seconds: float) -> dict | None:
    """Poll a job run until it is done or failed (None when there is no job to wait for)."""
    if job_id is None:
        return None
    end = _deadline(seconds)
    while True:
        job = ctx.api.get(f"jobs/{job_id}/")
        if job["status"] in JOB_FINAL:
            return job
        if time.monotonic() >= end:
            raise CliError(
                f"Job #{job_id} ({job['name']}) is still {job['status']} after {seconds:.0f} s.", TIMEOUT
            )
        time.sleep(0.5)


def _job_outcome(job: dict | None) -> int:
    if job is not None and job["status"] == "failed":
        print(f"dnsportal: job #{job['id']} {job['name']} failed: {job['error']}", file=sys.stderr)
        return FAILED
    return OK


def _zone(ctx: Ctx, ref: str) -> dict:
    """A zone by id, or by name (with or without the trailing dot)."""
    if ref.isdigit():
        return ctx.api.get(f"zones/{ref}/")
    name = ref.rstrip(".").lower() + "."
    matches = [z for z in ctx.api.pages("zones/", q=ref.rstrip(".")) if z["name"].lower() == name]
    if len(matches) != 1:
        found = "no zone" if not matches else f"{len(matches)} zones (give the id)"
        raise CliError(f"{ref}: {found} called {name}.", 4)
    return matches[0]


# --- clusters ---------------------------------------------------------------------------------------------

CLUSTER_COLUMNS = [
    "name",
    "health",
    "distribution",
    "enabled",
    ("is_stale", "STALE"),
    ("endpoint_count", "ENDPOINTS"),
    "server",
]


def clusters_list(ctx: Ctx) -> int:
    rows = ctx.api.pages("clusters/", q=ctx.args.q)
    ctx.show(rows, lambda r: table(r, CLUSTER_COLUMNS))
    return OK


def clusters_register(ctx: Ctx) -> int:
    a = ctx.args
    try:
        text = sys.stdin.read() if a.kubeconfig == "-" else open(a.kubeconfig, encoding="utf-8").read()  # noqa: SIM115
    except OSError as exc:
        raise CliError(f"Cannot read the kubeconfig {a.kubeconfig}: {exc.strerror}.", USAGE) from None
    labels = {}
    for item in a.label or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise CliError(f"--label {item!r}: write key=value.", USAGE)
        labels[key] = value
    body = {
        "name": a.name,
        "kubeconfig": text,
        "context": a.context or "",
        "display_name": a.display_name or "",
        "description": a.description or "",
        "labels": labels,
        "allow_insecure": a.allow_insecure,
    }
    cluster = ctx.api.post("clusters/", body)
    ctx.show(cluster, lambda c: facts(c, ["name", "server", "context", "fingerprint", "health"]))
    return OK


def clusters_check(ctx: Ctx) -> int:
    queued = ctx.api.post(f"clusters/{ctx.args.name}/check/")
    job = wait_job(ctx, queued["job_id"], ctx.args.wait) if ctx.args.wait else None
    cluster = ctx.api.get(f"clusters/{ctx.args.name}/")
    keys = [
        "name",
        "health",
        "distribution",
        "server_version",
        "node_count",
        "missing_permissions",
        "last_error",
    ]
    ctx.show({"job": job or queued, "cluster": cluster}, lambda d: facts(d["cluster"], keys))
    return _job_outcome(job)


# --- endpoints --------------------------------------------------------------------------------------------


def endpoints(ctx: Ctx) -> int:
    a = ctx.args
    params = {
        "name": a.name,
        "q": a.q,
        "cluster": a.cluster,
        "type": a.type,
        "private": "true" if a.private else "",
    }
    end = _deadline(a.wait)
    while True:
        rows = ctx.api.pages("endpoints/", limit=a.limit, **params)
        if rows or not a.wait:
            break
        if time.monotonic() >= end:
            raise CliError(f"No endpoint matches after {a.wait:.0f} s.", TIMEOUT)
        time.sleep(1)
    columns = [
        "dns_name",
        ("record_type", "TYPE"),
        "targets",
        "cluster",
        "routing",
        ("has_private_target", "PRIVATE"),
        "resource",
    ]
    ctx.show(rows, lambda r: table(r, columns))
    return OK


# --- change sets ------------------------------------------------------------------------------------------

CHANGESET_COLUMNS = [
    "id",
    ("zone_name", "ZONE"),
    "status",
    "cause",
    "requested_by",
    "approved_by",
    "summary",
    "created_at",
]


def changes_list(ctx: Ctx) -> int:
    a = ctx.args
    zone = _zone(ctx, a.zone)["id"] if a.zone else None
    rows = ctx.api.pages("changesets/", limit=a.limit, status=a.status, zone=zone, name=a.name)
    ctx.show(rows, lambda r: table(r, CHANGESET_COLUMNS))
    return OK


def _values(rs: dict | None) -> str:
    if not rs:
        return "-"
    values = [r.get("Value", "") for r in rs.get("ResourceRecords", [])]
    return " ".join(values) or str(rs.get("AliasTarget", {}).get("DNSName", "-"))


def _show_changeset(cs: dict) -> None:
    keys = [
        "id",
        "zone_name",
        "status",
        "cause",
        "requested_by",
        "approved_by",
        "approval_reasons",
        "summary",
        "error",
    ]
    facts(cs, keys)
    if cs.get("changes"):
        print()
        rows = [
            {**c, "before_values": _values(c.get("before")), "after_values": _values(c.get("after"))}
            for c in cs["changes"]
        ]
        columns = [
            "kind",
            "name",
            "type",
            "set_identifier",
            ("before_values", "BEFORE"),
            ("after_values", "AFTER"),
            "status",
        ]
        table(rows, columns)


def changes_show(ctx: Ctx) -> int:
    ctx.show(ctx.api.get(f"changesets/{ctx.args.id}/"), _show_changeset)
    return OK


def changes_approve(ctx: Ctx) -> int:
    body = {"comment": ctx.args.comment or "", "confirm_deletes": ctx.args.confirm_deletes}
    cs = ctx.api.post(f"changesets/{ctx.args.id}/approve/", body)
    ctx.show(cs, lambda c: facts(c, ["id", "status", "approved_by"]))
    return OK


def changes_reject(ctx: Ctx) -> int:
    cs = ctx.api.post(f"changesets/{ctx.args.id}/reject/", {"comment": ctx.args.comment})
    ctx.show(cs, lambda c: facts(c, ["id", "status", "review_comment"]))
    return OK


def changes_wait(ctx: Ctx) -> int:
    """Wait until the change set is final: exit 0 when applied, 1 when it ended otherwise, 8 on timeout."""
    end = _deadline(ctx.args.timeout)
    while True:
        left = max(0.0, end - time.monotonic())
        cs = ctx.api.get(f"changesets/{ctx.args.id}/status/", wait=int(min(left, 60)) or None)
        if cs["final"]:
            ctx.show(
                cs, lambda c: facts(c, ["id", "zone_name", "status", "approved_by", "finished_at", "error"])
            )
            return OK if cs["status"] in FINAL_OK else FAILED
        if time.monotonic() >= end:
            raise CliError(
                f"Change set #{cs['id']} is still {cs['status']} after {ctx.args.timeout:.0f} s.", TIMEOUT
            )
        if left < 1:
            time.sleep(0.5)


# --- zones ------------------------------------------------------------------------------------------------


def zones_list(ctx: Ctx) -> int:
    rows = ctx.api.pages("zones/")
    columns = [
        "id",
        "name",
        ("account_name", "ACCOUNT"),
        "private",
        "enabled",
        "approval_mode",
        "last_verification_ok",
        "last_reconcile_error",
    ]
    ctx.show(rows, lambda r: table(r, columns))
    return OK


def zones_reconcile(ctx: Ctx) -> int:
    zone = _zone(ctx, ctx.args.zone)
    queued = ctx.api.post(f"zones/{zone['id']}/reconcile/")
    job = wait_job(ctx, queued["job_id"], ctx.args.wait) if ctx.args.wait else None
    pending = (
        ctx.api.get("changesets/", zone=zone["id"], status="pending", page_size=1)["results"] if job else []
    )
    data = {"job": job or queued, "changeset": pending[0] if pending else None}

    def render(d: dict) -> None:
        if d["changeset"]:
            print(f"Change set #{d['changeset']['id']} waits for review: {d['changeset']['summary']}")
        elif job:
            print(f"{zone['name']}: nothing to change.")
        else:
            print(f"Reconciling {zone['name']} (job #{queued['job_id']}).")

    ctx.show(data, render)
    return _job_outcome(job)


def zones_verify(ctx: Ctx) -> int:
    zone = _zone(ctx, ctx.args.zone)
    queued = ctx.api.post(f"zones/{zone['id']}/verify/")
    job = wait_job(ctx, queued["job_id"], ctx.args.wait) if ctx.args.wait else None
    latest = None
    if job:
        rows = ctx.api.get("verifications/", zone=zone["id"], kind="resolution", page_size=1)["results"]
        latest = rows[0] if rows else None
    data = {"job": job or queued, "verification": latest}
    ctx.show(data, lambda d: facts(d["verification"] or d["job"], ["id", "status", "message"]))
    if latest is not None and latest["status"] != "ok":
        return FAILED
    return _job_outcome(job)


# --- policy -----------------------------------------------------------------------------------------------


def policy_show(ctx: Ctx) -> int:
    host = ctx.api.get(f"hostnames/{ctx.args.hostname}/")

    def render(h: dict) -> None:
        print(
            f"{h['name']}: {h['policy']['kind']}"
            + (f", TTL {h['policy']['ttl']}" if h["policy"]["ttl"] else "")
        )
        table(h["clusters"], ["cluster", "routing", "notes"])
        if h["served"]:
            print()
            table(h["served"], ["zone", "type", "routing", "values", "ownership"])
        for c in h["conflicts"]:
            print(f"conflict: {c['message']}")
        if h["verification"]:
            v = h["verification"]
            print(f"last verification ({v['scope']}): {v['label']}: {v['message']}")

    ctx.show(host, render)
    return OK


SHARE_FIELD = {"weighted": "weight", "failover": "role", "latency": "region", "geolocation": "country"}


def policy_propose(ctx: Ctx) -> int:
    a = ctx.args
    host = ctx.api.get(f"hostnames/{a.hostname}/")
    zone_id = _zone(ctx, a.zone)["id"] if a.zone else (host["zones"][0]["id"] if host["zones"] else None)
    if zone_id is None:
        raise CliError(f"No zone holds {a.hostname}; give --zone.", USAGE)
    given = {}
    for item in a.share or []:
        cluster, _, value = item.partition("=")
        given[cluster] = value
    shares = []
    for s in host["policy"]["shares"]:
        cluster = s["cluster"]
        share = {"cluster": cluster, "enabled": cluster not in (a.leave_out or [])}
        field = SHARE_FIELD.get(a.kind)
        if field and cluster in given:
            value = given[cluster]
            share[field] = int(value) if field == "weight" and value.isdigit() else value
        shares.append(share)
    unknown = sorted(set(given) - {s["cluster"] for s in shares})
    if unknown:
        raise CliError(f"{', '.join(unknown)} does not serve {a.hostname}.", USAGE)
    body = {
        "zone_id": zone_id,
        "hostname": a.hostname,
        "policy": {"kind": a.kind, "ttl": a.ttl, "shares": shares},
    }
    if a.dry_run:
        shown = ctx.api.post("proposals/preview/", body)

        def render(d: dict) -> None:
            for field, messages in d["errors"].items():
                print(f"{field}: {' '.join(messages)}")
            for patch in d["patches"]:
                changes = ", ".join(f"{k.rsplit('/', 1)[-1]}={v}" for k, v in patch["changes"].items()) or "-"
                print(f"{patch['cluster']} {patch['kind']} {patch['namespace']}/{patch['name']}: {changes}")

        ctx.show(shown, render)
        return OK if shown["ok"] else USAGE
    p = ctx.api.post("proposals/", body)
    ctx.show(p, lambda d: facts(d, ["id", "hostname", "status", "summary", "proposed_by"]))
    return OK


# --- audit ------------------------------------------------------------------------------------------------


def audit(ctx: Ctx) -> int:
    a = ctx.args
    params = {
        "actor": a.actor,
        "action": a.action,
        "object_type": a.object_type,
        "object_id": a.object_id,
        "since": a.since,
        "until": a.until,
        "via": a.via,
    }
    rows = ctx.api.pages("audit/", limit=a.limit, **params)
    columns = [
        "at",
        "actor",
        "action",
        "object_type",
        "object_id",
        "object_repr",
        "via",
        ("api_token_name", "TOKEN"),
    ]
    ctx.show(rows, lambda r: table(r, columns))
    return OK


# --- the parser -------------------------------------------------------------------------------------------


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="dnsportal", description="The dnsportal API from a shell.")
    p.add_argument("--url", help="the portal's URL (default: DNSPORTAL_URL or the config file)")
    p.add_argument("--token", help="a personal API token (default: DNSPORTAL_TOKEN or the config file)")
    p.add_argument("--output", "-o", choices=["table", "json"], default="table")
    sub = p.add_subparsers(dest="command", required=True)

    clusters = sub.add_parser("clusters", help="registered clusters").add_subparsers(
        dest="sub", required=True
    )
    c = clusters.add_parser("list")
    c.add_argument("--q", help="part of the name, display name or server")
    c.set_defaults(func=clusters_list)
    c = clusters.add_parser("register", help="register a cluster from a kubeconfig (inline credentials)")
    c.add_argument("name")
    c.add_argument("--kubeconfig", required=True, help="a file, or - for stdin")
    c.add_argument("--context")
    c.add_argument("--display-name")
    c.add_argument("--description")
    c.add_argument("--label", action="append", help="key=value, repeatable")
    c.add_argument("--allow-insecure", action="store_true")
    c.set_defaults(func=clusters_register)
    c = clusters.add_parser("check", help="check a cluster now")
    c.add_argument("name")
    c.add_argument("--wait", type=float, default=0, metavar="SECONDS", help="wait for the check's result")
    c.set_defaults(func=clusters_check)

    e = sub.add_parser("endpoints", help="what the clusters want published")
    e.add_argument("--name", help="exact DNS name")
    e.add_argument("--q", help="part of the name or of the object")
    e.add_argument("--cluster")
    e.add_argument("--type")
    e.add_argument("--private", action="store_true", help="only endpoints with a private target")
    e.add_argument("--limit", type=int)
    e.add_argument("--wait", type=float, default=0, metavar="SECONDS", help="wait until one matches")
    e.set_defaults(func=endpoints)

    changes = sub.add_parser("changes", help="change sets").add_subparsers(dest="sub", required=True)
    c = changes.add_parser("list")
    c.add_argument("--status")
    c.add_argument("--zone", help="id or name")
    c.add_argument("--name", help="change sets that touched this DNS name")
    c.add_argument("--limit", type=int, default=50)
    c.set_defaults(func=changes_list)
    c = changes.add_parser("show")
    c.add_argument("id", type=int)
    c.set_defaults(func=changes_show)
    c = changes.add_parser("approve", help="approve (you must not be its author)")
    c.add_argument("id", type=int)
    c.add_argument("--comment")
    c.add_argument("--confirm-deletes", action="store_true")
    c.set_defaults(func=changes_approve)
    c = changes.add_parser("reject")
    c.add_argument("id", type=int)
    c.add_argument("--comment", required=True)
    c.set_defaults(func=changes_reject)
    c = changes.add_parser("wait", help="wait until final: exit 0 applied, 1 otherwise, 8 timeout")
    c.add_argument("id", type=int)
    c.add_argument("--timeout", type=float, default=600)
    c.set_defaults(func=changes_wait)

    zones = sub.add_parser("zones", help="zones").add_subparsers(dest="sub", required=True)
    z = zones.add_parser("list")
    z.set_defaults(func=zones_list)
    for name, func, what in (
        ("reconcile", zones_reconcile, "read the zone and plan (a change set for review)"),
        ("verify", zones_verify, "ask the zone's nameservers"),
    ):
        z = zones.add_parser(name, help=what)
        z.add_argument("zone", help="id or name")
        z.add_argument("--wait", type=float, default=0, metavar="SECONDS", help="wait for the job's result")
        z.set_defaults(func=func)

    policy = sub.add_parser("policy", help="traffic policies").add_subparsers(dest="sub", required=True)
    c = policy.add_parser("show")
    c.add_argument("hostname")
    c.set_defaults(func=policy_show)
    c = policy.add_parser("propose", help="propose a policy for review")
    c.add_argument("hostname")
    c.add_argument(
        "--kind", required=True, choices=["round-robin", "weighted", "failover", "latency", "geolocation"]
    )
    c.add_argument(
        "--share",
        action="append",
        metavar="CLUSTER=VALUE",
        help="weight, PRIMARY/SECONDARY, region or country",
    )
    c.add_argument("--leave-out", action="append", metavar="CLUSTER")
    c.add_argument("--ttl", type=int, default=0)
    c.add_argument("--zone", help="id or name (default: the zone holding the name)")
    c.add_argument("--dry-run", action="store_true", help="show the annotation changes; propose nothing")
    c.set_defaults(func=policy_propose)

    a = sub.add_parser("audit", help="the audit log")
    for flag in ("--actor", "--action", "--object-type", "--object-id", "--since", "--until", "--via"):
        a.add_argument(flag)
    a.add_argument("--limit", type=int, default=50)
    a.set_defaults(func=audit)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.func(Ctx(args))
    except CliError as exc:
        print(f"dnsportal: {exc}", file=sys.stderr)
        for field, messages in exc.fields.items():
            print(f"  {field}: {' '.join(messages)}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        return 130
