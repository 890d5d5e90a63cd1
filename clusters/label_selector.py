"""Kubernetes label-selector syntax, as ExternalDNS's `--label-filter` and `--annotation-filter` read it.

`k=v`, `k==v`, `k!=v`, `k in (a,b)`, `k notin (a,b)`, `k` (exists) and `!k` (does not exist), joined by commas
(all must hold). ExternalDNS checks `--label-filter` with labels.Parse and `--annotation-filter` with
metav1.ParseToLabelSelector, which also refuses `!=` (a LabelSelector has no NotEquals): ExternalDNS exits
with "--annotation-filter does not specify a valid label selector", so the portal refuses such a filter too
(`parse_selector(text, not_equals=False)`). Both refuse `>`/`<` and set values not separated by commas. The
real ExternalDNS checks this: tests/integration/test_external_dns_differential.py.

Pure: no Django or Kubernetes import.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

# Label keys: an optional DNS-subdomain prefix and "/", then a name of 1-63 characters (apimachinery
# validation).
_NAME = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?")
_PREFIX = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_TOKEN = re.compile(r"\s*(!=|==|=|!|\(|\)|,|<|>|[^\s!=(),<>]+)")

OPS_ONE_VALUE = ("=", "==", "!=")
OPS_SET = ("in", "notin")


@dataclass(frozen=True, slots=True)
class Requirement:
    """One requirement: `key op values`; op is =, ==, !=, in, notin, exists or !."""

    key: str
    op: str
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether `labels` satisfy this requirement (apimachinery's Requirement.Matches)."""
        present = self.key in labels
        if self.op == "exists":
            return present
        if self.op == "!":
            return not present
        if self.op in ("=", "==", "in"):
            return present and labels[self.key] in self.values
        # != and notin also hold when the key is absent
        return not present or labels[self.key] not in self.values

    def __str__(self) -> str:
        if self.op == "exists":
            return self.key
        if self.op == "!":
            return f"!{self.key}"
        if self.op in OPS_SET:
            return f"{self.key} {self.op} ({','.join(self.values)})"
        return f"{self.key}{self.op}{self.values[0]}"


@dataclass(frozen=True, slots=True)
class Selector:
    """A parsed selector; the empty selector matches everything."""

    requirements: tuple[Requirement, ...] = ()

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        """Whether every requirement holds for `labels` (a label or annotation map)."""
        labels = labels or {}
        return all(r.matches(labels) for r in self.requirements)

    @property
    def empty(self) -> bool:
        return not self.requirements

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)


def _check_key(key: str) -> None:
    prefix, slash, name = key.rpartition("/")
    if slash and (not prefix or len(prefix) > 253 or not _PREFIX.fullmatch(prefix)):
        raise ValueError(f"`{key}`: the prefix before `/` must be a DNS subdomain")
    if not _NAME.fullmatch(name):
        raise ValueError(
            f"`{key}` is not a label key (1-63 letters, digits, `-`, `_`, `.`, "
            "starting and ending alphanumeric)"
        )


def _check_value(value: str) -> None:
    if value and not _NAME.fullmatch(value):
        raise ValueError(
            f"`{value}` is not a label value (at most 63 letters, digits, `-`, `_`, `.`, "
            "starting and ending alphanumeric)"
        )


def _tokens(text: str) -> list[str]:
    out: list[str] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:  # only trailing whitespace, stripped above
            break
        out.append(m.group(1))
        pos = m.end()
    return out


def parse_selector(text: str, *, not_equals: bool = True) -> Selector:
    """Parse a selector such as `app=web,tier in (a,b),!legacy`; raises ValueError saying what is wrong.

    `not_equals=False` refuses `!=`, as metav1.ParseToLabelSelector (ExternalDNS's annotation filter) does.
    """
    toks = _tokens(text or "")
    reqs: list[Requirement] = []
    i = 0

    def peek() -> str:
        return toks[i] if i < len(toks) else ""

    while i < len(toks):
        if toks[i] == "!":
            i += 1
            key = peek()
            if not key or key in "!=(),<>":
                raise ValueError("`!` must be followed by a key")
            _check_key(key)
            reqs.append(Requirement(key, "!"))
            i += 1
        else:
            key = toks[i]
            if key in ("=", "==", "!=", "(", ")", ",", "<", ">"):
                raise ValueError(f"expected a key, found `{key}`")
            _check_key(key)
            i += 1
            op = peek()
            if op in ("", ","):
                reqs.append(Requirement(key, "exists"))
            elif op in OPS_ONE_VALUE:
                if op == "!=" and not not_equals:
                    raise ValueError(
                        f"`{key}!=…`: this filter has no `!=` (as ExternalDNS's annotation filter); "
                        f"use `{key} notin (…)`"
                    )
                i += 1
                value = peek()
                if value in ("", ","):
                    value = ""  # `k=` selects an empty value
                else:
                    if value in ("(", ")", "!", "=", "==", "!=", "<", ">"):
                        raise ValueError(f"expected a value after `{key}{op}`, found `{value}`")
                    i += 1
                _check_value(value)
                reqs.append(Requirement(key, op, (value,)))
            elif op in OPS_SET:
                i += 1
                if peek() != "(":
                    raise ValueError(f"`{key} {op}` must be followed by `(values)`")
                i += 1
                values: list[str] = []
                while True:
                    tok = peek()
                    if tok == ")":
                        i += 1
                        break
                    if tok == ",":
                        i += 1
                        continue
                    if not tok or tok in ("(", "!", "=", "==", "!=", "<", ">"):
                        raise ValueError(f"`{key} {op} (...)` is not closed with `)`")
                    _check_value(tok)
                    values.append(tok)
                    i += 1
                    if peek() not in ("", ",", ")"):  # k8s: "found 'b', expected: ',' or ')'"
                        found = peek()
                        raise ValueError(
                            f"`{key} {op} (...)`: values are separated by commas, found `{found}`"
                        )
                if not values:
                    raise ValueError(f"`{key} {op} ()` needs at least one value")
                reqs.append(Requirement(key, op, tuple(values)))
            elif op in ("<", ">"):
                # metav1.ParseToLabelSelector has no Gt/Lt: ExternalDNS refuses these filters at start-up
                raise ValueError(f"the `{op}` operator is not supported in this filter")
            else:
                raise ValueError(f"unexpected `{op}` after `{key}` (expected =, !=, in, notin or a comma)")
        if i < len(toks):
            if toks[i] != ",":
                raise ValueError(f"expected a comma, found `{toks[i]}`")
            i += 1
            if i == len(toks):
                raise ValueError("the selector ends with a comma")
    return Selector(tuple(reqs))


def selector_from_map(selector: Mapping[str, str] | None) -> Selector:
    """The equality selector of a Service's `spec.selector` (an empty map selects everything)."""
    return Selector(tuple(Requirement(k, "=", (v,)) for k, v in sorted((selector or {}).items())))
