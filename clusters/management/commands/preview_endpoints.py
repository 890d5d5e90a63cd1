"""Preview what the portal would publish from Kubernetes manifests, without a database or a cluster.

    manage.py preview_endpoints -f manifests.yaml [-f more.yaml] [--option NAME=VALUE ...]
                                [--cluster NAME] [--output json|table] [--merge] [--fail-on-error]

Reads Services and Ingresses (and the Nodes, Pods and EndpointSlices they need), Gateway API routes (with
their Gateways and Namespaces) and DNSEndpoints from multi-document YAML or JSON, `kind: List` included;
without `--option source=...` every one of those kinds in the files is read. `-f -` reads standard input and
`-f <dir>` its manifest files. Options are ExternalDNS's source flags (`--option domain-filter=example.com
--option publish-internal-services`).

Output: `--output json` prints a list of ExternalDNS `DNSEndpoint` endpoints (`spec.endpoints[]` items);
`--output table` (the default) a table. Per-object errors and warnings go to standard error as JSON lines
naming the object (kind, namespace, name) and the annotation or option; `-v 2` adds skipped objects.

Exit status: 0 when the preview ran, even if some objects have errors (each error is on standard error;
`--fail-on-error` makes that status 3); 2 when a file cannot be read or an option is wrong (one line on
standard error, no preview).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from clusters.annotations import Problem
from clusters.endpoints import ObjectResult, merge_endpoints, private_targets
from clusters.manifests import ManifestError, load_files
from clusters.source_options import BOOL_OPTIONS, LIST_OPTIONS, SOURCES, SourceOptions
from clusters.sources import compute_all
from records.endpoint import Endpoint

EXIT_BAD_INPUT = 2
EXIT_OBJECT_ERRORS = 3


def options_from_args(pairs: Sequence[str]) -> SourceOptions:
    """SourceOptions from `NAME=VALUE` strings (a bare boolean NAME means true; list values accumulate)."""
    data: dict[str, Any] = {}
    for pair in pairs:
        name, eq, value = pair.partition("=")
        name = name.strip().lstrip("-")
        if not name:
            raise ValueError(f"--option `{pair}` must be NAME=VALUE")
        if not eq:
            if name.replace("_", "-") not in BOOL_OPTIONS:
                raise ValueError(f"--option `{pair}` must be NAME=VALUE")
            value = "true"
        if name.replace("_", "-") in LIST_OPTIONS:
            data.setdefault(name, []).extend(v for v in value.split(",") if v.strip())
        else:
            data[name] = value
    # A preview reads whatever the files hold unless told which sources the cluster runs.
    data.setdefault("source", list(SOURCES))
    return SourceOptions.from_mapping(data)


def _problem_line(level: str, result: ObjectResult, problem: Problem | None, **extra: str) -> str:
    line: dict[str, Any] = {
        "level": level,
        "kind": result.kind,
        "namespace": result.namespace,
        "name": result.name,
        "resource": result.resource,
    }
    if problem is not None:
        if problem.annotation:
            line["annotation"] = problem.annotation
        if problem.option:
            line["option"] = problem.option
        if problem.value:
            line["value"] = problem.value
        line["message"] = problem.message
    line.update(extra)
    return json.dumps(line, ensure_ascii=False)


def _table(endpoints: Sequence[Endpoint]) -> list[str]:
    header = ("NAME", "TYPE", "TTL", "SET-ID", "TARGETS", "PROPERTIES", "RESOURCE")
    rows = [header]
    for ep in endpoints:
        private = set(private_targets(ep))
        targets = ", ".join(f"{t} (private)" if t in private else t for t in ep.targets)
        props = " ".join(f"{k}={v}" if v else k for k, v in ep.provider_specific)
        rows.append(
            (
                ep.dns_name,
                ep.record_type,
                str(ep.ttl) if ep.ttl else "-",
                ep.set_identifier or "-",
                targets or "-",
                props or "-",
                ep.resource or "-",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(header) - 1)]
    return ["  ".join([*(c.ljust(w) for c, w in zip(r[:-1], widths, strict=True)), r[-1]]) for r in rows]


class Command(BaseCommand):
    help = (
        "Print the DNS endpoints the portal would publish from Kubernetes manifests (Services, Ingresses and "
        "the Nodes/Pods/EndpointSlices they need), with ExternalDNS's semantics; no database, no cluster."
    )
    # Nothing here needs the database: no system checks (they may inspect it), no migration check.
    requires_system_checks: list[str] = []
    requires_migrations_checks = False

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "-f",
            "--filename",
            action="append",
            required=True,
            metavar="FILE",
            help="Manifest file (YAML or JSON, several documents, kind: List); `-` for stdin; a directory "
            "for its .yaml/.yml/.json files. Repeatable.",
        )
        parser.add_argument(
            "--option",
            action="append",
            default=[],
            metavar="NAME=VALUE",
            help="A source option named like ExternalDNS's flag (domain-filter=example.com, "
            "publish-internal-services, fqdn-template={{.Name}}.example.com, min-ttl=60s...). Repeatable; "
            "list options accumulate.",
        )
        parser.add_argument("--cluster", default="", help="Cluster name shown in messages.")
        parser.add_argument("--output", choices=("json", "table"), default="table")
        parser.add_argument(
            "--merge",
            action="store_true",
            help="Merge the endpoints of all objects as ExternalDNS's sources do (same name, type, set id "
            "and TTL: one record with the union of targets); by default each object's endpoints are listed.",
        )
        parser.add_argument(
            "--fail-on-error",
            action="store_true",
            help=f"Exit with status {EXIT_OBJECT_ERRORS} when any object has an error.",
        )

    def handle(
        self,
        *args: Any,
        filename: list[str],
        option: list[str],
        cluster: str,
        output: str,
        merge: bool,
        fail_on_error: bool,
        verbosity: int = 1,
        **kwargs: Any,
    ) -> None:
        try:
            options = options_from_args(option)
        except ValueError as exc:
            raise CommandError(str(exc), returncode=EXIT_BAD_INPUT) from None
        try:
            objects = load_files(filename)
        except ManifestError as exc:
            raise CommandError(str(exc), returncode=EXIT_BAD_INPUT) from None

        results = compute_all(objects, options, cluster=cluster)
        endpoints: list[Endpoint] = [ep for r in results for ep in r.endpoints]
        if merge:
            endpoints = merge_endpoints(endpoints)

        for r in results:
            for p in r.errors:
                self.stderr.write(_problem_line("error", r, p), style_func=str)
            for p in r.warnings:
                self.stderr.write(_problem_line("warning", r, p), style_func=str)
            if verbosity >= 2 and r.skipped_reason and not r.errors:
                self.stderr.write(
                    _problem_line("info", r, None, message=f"skipped: {r.skipped_reason}"), style_func=str
                )

        if output == "json":
            self.stdout.write(
                json.dumps([ep.to_dnsendpoint() for ep in endpoints], indent=2, ensure_ascii=False)
            )
        else:
            if endpoints:
                for line in _table(endpoints):
                    self.stdout.write(line)
            failed = sum(1 for r in results if r.errors)
            published = sum(1 for r in results if r.endpoints)
            skipped = len(results) - failed - published
            self.stdout.write(
                f"{len(results)} objects: {published} publish {len(endpoints)} endpoints, "
                f"{failed} with errors, {skipped} publish nothing"
            )
        failed = sum(1 for r in results if r.errors)
        if fail_on_error and failed:
            raise CommandError(
                f"{failed} object{'s' if failed > 1 else ''} with errors (see standard error)",
                returncode=EXIT_OBJECT_ERRORS,
            )
