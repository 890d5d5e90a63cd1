"""Kubernetes manifests from files: multi-document YAML or JSON, `kind: List` (and `*List`) items expanded.

Used by `manage.py preview_endpoints`; pure apart from reading the files it is given (no Django, no cluster).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")


class ManifestError(ValueError):
    """A file cannot be read or is not Kubernetes objects; the message names the file (and document)."""


def _expand(doc: Any, where: str, default_kind: str = "") -> list[dict[str, Any]]:
    if doc is None:  # an empty document between `---` separators
        return []
    if not isinstance(doc, Mapping):
        raise ManifestError(f"{where}: expected a Kubernetes object (a mapping), found {type(doc).__name__}")
    kind = doc.get("kind")
    if isinstance(kind, str) and kind.endswith("List") and isinstance(doc.get("items"), list):
        # `kubectl get -o yaml` writes `kind: List`; typed lists (ServiceList) from the API omit the items'
        # kind
        item_kind = kind[: -len("List")] if kind != "List" else ""
        out: list[dict[str, Any]] = []
        for i, item in enumerate(doc["items"]):
            out.extend(_expand(item, f"{where} items[{i}]", item_kind))
        return out
    if not kind and default_kind:
        return [{**doc, "kind": default_kind}]
    if not isinstance(kind, str) or not kind:
        raise ManifestError(f"{where}: the object has no `kind`")
    return [dict(doc)]


def load_text(text: str, *, source: str = "<input>") -> list[dict[str, Any]]:
    """The Kubernetes objects in a YAML or JSON text, in order; raises ManifestError naming the document."""
    try:
        docs = list(yaml.safe_load_all(text))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ManifestError(f"{source}{at}: not valid YAML ({problem})") from None
    out: list[dict[str, Any]] = []
    for n, doc in enumerate(docs, start=1):
        out.extend(_expand(doc, f"{source} document {n}"))
    return out


def _files(path: Path) -> list[Path]:
    if path.is_dir():
        # like `kubectl apply -f <dir>`: the manifest files directly inside, in name order
        return sorted(p for p in path.iterdir() if p.is_file() and p.suffix in MANIFEST_SUFFIXES)
    return [path]


def load_files(paths: Iterable[str]) -> list[dict[str, Any]]:
    """The objects of every file (`-` is standard input; a directory contributes its manifest files)."""
    out: list[dict[str, Any]] = []
    for raw in paths:
        if raw == "-":
            out.extend(load_text(sys.stdin.read(), source="<stdin>"))
            continue
        for path in _files(Path(raw)):
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
                raise ManifestError(f"{path}: cannot read the file ({reason})") from None
            out.extend(load_text(text, source=str(path)))
    return out
