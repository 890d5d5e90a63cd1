"""Tables for people, JSON for scripts."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any


def cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ", ".join(cell(v) for v in value) or "-"
    if isinstance(value, dict):
        return ", ".join(f"{k}={cell(v)}" for k, v in value.items()) or "-"
    text = str(value)
    if len(text) >= 20 and text[4:5] == "-" and "T" in text[:11]:  # an ISO time: to the second
        return text[:19].replace("T", " ")
    return text


def table(rows: Sequence[dict], columns: Sequence[str | tuple[str, str]], out=None) -> None:
    out = out or sys.stdout
    spec = [(c, c.upper()) if isinstance(c, str) else c for c in columns]
    cells = [[cell(row.get(key)) for key, _ in spec] for row in rows]
    widths = [max([len(title)] + [len(r[i]) for r in cells]) for i, (_, title) in enumerate(spec)]
    print("  ".join(t.ljust(w) for (_, t), w in zip(spec, widths, strict=True)).rstrip(), file=out)
    for r in cells:
        print("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip(), file=out)


def facts(data: dict, keys: Sequence[str], out=None) -> None:
    out = out or sys.stdout
    width = max(len(k) for k in keys)
    for key in keys:
        print(f"{key.ljust(width)}  {cell(data.get(key))}", file=out)


def emit_json(data: Any, out=None) -> None:
    json.dump(data, out or sys.stdout, indent=2, sort_keys=True)
    print(file=out or sys.stdout)
