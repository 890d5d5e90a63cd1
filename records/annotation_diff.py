"""An object's annotations before and after a traffic-policy patch, as the YAML a person reads in a manifest.

The editor and the proposal page show each object's `metadata.annotations` twice, side by side: the lines the
patch removes or changes are marked on the left, the lines it adds or changes on the right. Values are
written as YAML writes them (`aws-weight: '80'`: an annotation value is a string, so a number is quoted).

Pure: no Django, boto3 or Kubernetes import.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import yaml

SAME, REMOVED, ADDED, CHANGED = "same", "removed", "added", "changed"


@dataclass(frozen=True, slots=True)
class DiffLine:
    """One `key: value` line of one side; `state` says what the patch does to it."""

    key: str
    text: str  # the YAML line, indented under `annotations:`
    state: str  # SAME, REMOVED (left only), ADDED (right only) or CHANGED (both sides, another value)

    @property
    def marked(self) -> bool:
        return self.state != SAME


@dataclass(frozen=True, slots=True)
class AnnotationDiff:
    before: tuple[DiffLine, ...]
    after: tuple[DiffLine, ...]

    @property
    def removed(self) -> tuple[str, ...]:
        return tuple(line.key for line in self.before if line.state == REMOVED)

    @property
    def added(self) -> tuple[str, ...]:
        return tuple(line.key for line in self.after if line.state == ADDED)

    @property
    def changed(self) -> tuple[str, ...]:
        return tuple(line.key for line in self.after if line.state == CHANGED)


def yaml_line(key: str, value: str, indent: int = 4) -> str:
    """`key: value` as YAML writes it in a manifest (quoted where YAML would read another type)."""
    text = yaml.safe_dump({key: value}, default_flow_style=False, allow_unicode=True, width=10_000)
    return " " * indent + text.rstrip("\n")


def annotation_diff(before: Mapping[str, str], after: Mapping[str, str]) -> AnnotationDiff:
    """Both sides of an annotation change, keys sorted as `kubectl get -o yaml` sorts them."""
    left = []
    for key in sorted(before):
        if key not in after:
            state = REMOVED
        elif after[key] != before[key]:
            state = CHANGED
        else:
            state = SAME
        left.append(DiffLine(key, yaml_line(key, before[key]), state))
    right = []
    for key in sorted(after):
        if key not in before:
            state = ADDED
        elif after[key] != before[key]:
            state = CHANGED
        else:
            state = SAME
        right.append(DiffLine(key, yaml_line(key, after[key]), state))
    return AnnotationDiff(tuple(left), tuple(right))
