"""A small, safe evaluator for the Go templates of ExternalDNS's `--fqdn-template`.

ExternalDNS executes the flag as a Go text/template over the Kubernetes object and splits the output on commas
(so `{{.Name}}.a.example.com,{{.Name}}.b.example.com` yields two names). The portal supports the subset these
templates use in practice, parsed once and evaluated without `eval`:

- text, and actions `{{ pipeline }}` (with `{{-`/`-}}` whitespace trimming and `{{/* comments */}}`);
- fields: `.Name`, `.Namespace`, `.Kind`, `.UID`, `.Labels`, `.Annotations`, `.Labels.team`, `.Spec.Type`…
  (Go field names read the object's camelCase JSON keys);
- string literals ("x" or `x`), parentheses and pipes (`{{.Name | toLower}}`);
- the functions ExternalDNS registers that return strings: `index`, `toLower`, `trimPrefix`, `trimSuffix`,
  `trim`, `replace` (sprig argument order: old, new, string).

Go prints "<no value>" for a missing map key reached as a field (`.Labels.team`), which can never be a DNS
name; the portal reports it as an error for that object instead. `index` of a missing key is "" as in Go.

Pure: no Django or Kubernetes import.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

# Go struct fields of ObjectMeta reachable directly on the object (ObjectMeta is embedded in every kind).
_META_FIELDS = {
    "Name": "name",
    "Namespace": "namespace",
    "Labels": "labels",
    "Annotations": "annotations",
    "UID": "uid",
    "GenerateName": "generateName",
    "ResourceVersion": "resourceVersion",
}
_TOP_FIELDS = {
    "Kind": "kind",
    "APIVersion": "apiVersion",
    "ObjectMeta": "metadata",
    "Spec": "spec",
    "Status": "status",
}
# Fields whose Go type is a map[string]string: a missing key there is Go's "<no value>", not a zero value.
_MAP_FIELDS = frozenset({"labels", "annotations", "selector", "nodeSelector"})


class TemplateError(ValueError):
    """The template cannot be parsed, or cannot be evaluated for one object."""


@dataclass(frozen=True, slots=True)
class _Text:
    text: str


@dataclass(frozen=True, slots=True)
class _Field:
    path: tuple[str, ...]  # () is the dot itself


@dataclass(frozen=True, slots=True)
class _Literal:
    value: str


@dataclass(frozen=True, slots=True)
class _Command:
    func: str  # "" when the command is a single operand
    args: tuple[Any, ...]  # _Field | _Literal | _Pipeline


@dataclass(frozen=True, slots=True)
class _Pipeline:
    commands: tuple[_Command, ...]


def _to_lower(s: str) -> str:
    return s.lower()


def _trim_prefix(prefix: str, s: str) -> str:
    return s[len(prefix) :] if prefix and s.startswith(prefix) else s


def _trim_suffix(suffix: str, s: str) -> str:
    return s[: -len(suffix)] if suffix and s.endswith(suffix) else s


def _trim(s: str) -> str:
    return s.strip()


def _replace(old: str, new: str, s: str) -> str:
    return s.replace(old, new)


# name -> (function, number of arguments); `index` is handled apart (it takes a map).
_FUNCS: dict[str, tuple[Callable[..., str], int]] = {
    "toLower": (_to_lower, 1),
    "trimPrefix": (_trim_prefix, 2),
    "trimSuffix": (_trim_suffix, 2),
    "trim": (_trim, 1),
    "replace": (_replace, 3),
}
_UNSUPPORTED = frozenset(
    {
        "if",
        "else",
        "end",
        "range",
        "with",
        "define",
        "template",
        "block",
        "contains",
        "hasKey",
        "isIPv4",
        "isIPv6",
    }
)

_ACTION = re.compile(r"\{\{(-\s)?(.*?)(\s-)?\}\}", re.DOTALL)
_LEX = re.compile(
    r"""\s*(?:
        (?P<str>"(?:[^"\\]|\\.)*")
      | (?P<raw>`[^`]*`)
      | (?P<field>(?:\.[A-Za-z_][A-Za-z0-9_]*)+|\.)
      | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
      | (?P<punct>[()|])
    )""",
    re.VERBOSE,
)
_ESCAPES = {"n": "\n", "t": "\t", '"': '"', "\\": "\\"}


def _unquote(s: str) -> str:
    out: list[str] = []
    i = 1
    while i < len(s) - 1:
        c = s[i]
        if c == "\\":
            nxt = s[i + 1]
            if nxt not in _ESCAPES:
                raise TemplateError(f"unsupported escape `\\{nxt}` in {s}")
            out.append(_ESCAPES[nxt])
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


class _Parser:
    def __init__(self, source: str) -> None:
        self.toks: list[tuple[str, str]] = []
        pos = 0
        src = source.strip()
        while pos < len(src):
            m = _LEX.match(src, pos)
            if m is None or m.end() == pos:
                raise TemplateError(f"cannot read `{src[pos:]}` in `{{{{{source}}}}}`")
            kind = m.lastgroup or ""
            self.toks.append((kind, m.group(kind)))
            pos = m.end()
        self.i = 0
        self.source = source

    def peek(self) -> tuple[str, str]:
        return self.toks[self.i] if self.i < len(self.toks) else ("", "")

    def pipeline(self) -> _Pipeline:
        commands = [self.command()]
        while self.peek() == ("punct", "|"):
            self.i += 1
            commands.append(self.command())
        return _Pipeline(tuple(commands))

    def operand(self) -> Any:
        kind, text = self.peek()
        if kind == "field":
            self.i += 1
            return _Field(tuple(p for p in text.split(".") if p))
        if kind == "str":
            self.i += 1
            return _Literal(_unquote(text))
        if kind == "raw":
            self.i += 1
            return _Literal(text[1:-1])
        if (kind, text) == ("punct", "("):
            self.i += 1
            inner = self.pipeline()
            if self.peek() != ("punct", ")"):
                raise TemplateError(f"unclosed `(` in `{{{{{self.source}}}}}`")
            self.i += 1
            return inner
        return None

    def command(self) -> _Command:
        kind, text = self.peek()
        if kind == "ident":
            if text in _UNSUPPORTED:
                raise TemplateError(
                    f"`{text}` is not supported in fqdn-template (only fields, index and string functions)"
                )
            if text != "index" and text not in _FUNCS:
                raise TemplateError(f'function "{text}" not defined')
            self.i += 1
            args = []
            while (arg := self.operand()) is not None:
                args.append(arg)
            return _Command(text, tuple(args))
        arg = self.operand()
        if arg is None:
            raise TemplateError(
                f"missing value in `{{{{{self.source}}}}}`" if not text else f"unexpected `{text}`"
            )
        nxt = self.operand()
        if nxt is not None:
            raise TemplateError(f"`{{{{{self.source}}}}}`: a value cannot be called with arguments")
        return _Command("", (arg,))


@dataclass(frozen=True, slots=True)
class FqdnTemplate:
    """A parsed `--fqdn-template`; `render` evaluates it for one object, `hostnames` splits the result."""

    source: str
    parts: tuple[Any, ...]  # _Text | _Pipeline

    @classmethod
    def parse(cls, source: str) -> FqdnTemplate:
        """Parse the template; raises TemplateError naming the construct that is wrong or unsupported."""
        parts: list[Any] = []
        pos = 0
        trim_next = False
        for m in _ACTION.finditer(source):
            text = source[pos : m.start()]
            if trim_next:
                text = text.lstrip()
            if m.group(1):
                text = text.rstrip()
            if text:
                parts.append(_Text(text))
            body = m.group(2)
            trim_next = bool(m.group(3))
            pos = m.end()
            stripped = body.strip()
            if stripped.startswith("/*"):
                if not stripped.endswith("*/"):
                    raise TemplateError("unclosed comment")
                continue
            if not stripped:
                raise TemplateError("missing value for command")
            p = _Parser(stripped)
            pipe = p.pipeline()
            if p.i != len(p.toks):
                raise TemplateError(f"unexpected `{p.toks[p.i][1]}` in `{{{{{stripped}}}}}`")
            parts.append(pipe)
        rest = source[pos:]
        if "{{" in rest:
            raise TemplateError("unclosed action (`{{` without `}}`)")
        if trim_next:
            rest = rest.lstrip()
        if rest:
            parts.append(_Text(rest))
        return cls(source=source, parts=tuple(parts))

    def render(self, obj: Mapping[str, Any], *, kind: str = "") -> str:
        """The template's output for one object (a Kubernetes dict); raises TemplateError on a missing key."""
        out: list[str] = []
        for part in self.parts:
            if isinstance(part, _Text):
                out.append(part.text)
            else:
                out.append(_print(_eval_pipeline(part, obj, kind)))
        return "".join(out)

    def hostnames(self, obj: Mapping[str, Any], *, kind: str = "") -> list[str]:
        """ExternalDNS's ExecTemplate: render, split on commas, trim spaces and trailing dots, drop empty."""
        out = []
        for name in self.render(obj, kind=kind).split(","):
            name = name.strip().rstrip(".")
            if name:
                out.append(name)
        return out


class _Missing:
    """Go's invalid reflect.Value: a map key reached as a field that is not there."""

    def __init__(self, what: str) -> None:
        self.what = what


def _print(value: Any) -> str:
    if isinstance(value, _Missing):
        raise TemplateError(f"{value.what} is not set")
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int, float)):
        return str(value)
    raise TemplateError("a field that is a map or a list cannot be printed")


def _lower_first(name: str) -> str:
    return name[:1].lower() + name[1:]


def _field(obj: Mapping[str, Any], path: tuple[str, ...], kind: str) -> Any:
    if not path:
        return obj
    head, rest = path[0], path[1:]
    meta = obj.get("metadata") or {}
    if head in _META_FIELDS:
        key = _META_FIELDS[head]
        value: Any = meta.get(key)
        if value is None and key in _MAP_FIELDS:
            value = {}
        where = key
    elif head in _TOP_FIELDS:
        key = _TOP_FIELDS[head]
        value = obj.get(key) if key != "kind" else (obj.get("kind") or kind)
        where = key
    else:
        raise TemplateError(f"can't evaluate field {head} of a Kubernetes object")
    for name in rest:
        if isinstance(value, _Missing):
            raise TemplateError(f"{value.what} is not set")
        if where in _MAP_FIELDS:
            # a map: the key is used as written (`.Labels.team`), missing -> Go's <no value>
            if name not in value:
                singular = {"labels": "label", "annotations": "annotation"}.get(where, f"{where} key")
                value = _Missing(f"{singular} `{name}`")
            else:
                value = value[name]
            where = ""
            continue
        if not isinstance(value, Mapping):
            raise TemplateError(f"can't evaluate field {name}: not an object")
        key = _lower_first(name)
        if key not in value:
            # Go field names map to camelCase JSON keys; acronyms (IPFamilies -> ipFamilies) need a looser
            # match
            key = next((k for k in value if k.lower() == name.lower()), key)
        value = value.get(key)
        if value is None and key in _MAP_FIELDS:
            value = {}
        where = key
    return value


def _eval_arg(arg: Any, obj: Mapping[str, Any], kind: str) -> Any:
    if isinstance(arg, _Literal):
        return arg.value
    if isinstance(arg, _Field):
        return _field(obj, arg.path, kind)
    return _eval_pipeline(arg, obj, kind)


def _eval_pipeline(pipe: _Pipeline, obj: Mapping[str, Any], kind: str) -> Any:
    value: Any = None
    for n, cmd in enumerate(pipe.commands):
        args = [_eval_arg(a, obj, kind) for a in cmd.args]
        if n > 0:
            args.append(value)  # Go passes the piped value as the last argument
        if not cmd.func:
            if n > 0:
                raise TemplateError("only a function can follow `|`")
            value = args[0]
            continue
        for a in args:
            if isinstance(a, _Missing):
                raise TemplateError(f"{a.what} is not set")
        if cmd.func == "index":
            if len(args) < 2:
                raise TemplateError("index needs a map and a key")
            value = args[0]
            for key in args[1:]:
                if not isinstance(value, Mapping):
                    raise TemplateError("index of a value that is not a map")
                value = value.get(str(key), "")  # Go's index yields the zero value for a missing key
            continue
        func, arity = _FUNCS[cmd.func]
        if len(args) != arity:
            raise TemplateError(f"wrong number of args for {cmd.func}: want {arity} got {len(args)}")
        value = func(*(_print(a) for a in args))
    return value


def parse_template(source: str) -> FqdnTemplate | None:
    """Parse an fqdn-template option value; None for the empty string (no template)."""
    if not source.strip():
        return None
    return FqdnTemplate.parse(source)
