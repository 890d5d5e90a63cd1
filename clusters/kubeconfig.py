"""Kubeconfig validation: a pasted kubeconfig in, what it takes to reach one cluster out, or every problem.

Rule 6 of the design, "kubeconfigs run nothing": `exec` and `auth-provider` users are refused, and so are file
paths; credentials must be inline (`*-data`, `token`). The one exception is an `aws eks get-token` (or
`aws-iam-authenticator token`) exec when the caller allows it: it is never run, it only tells the portal to
make the EKS token itself (`clusters/eks.py`). Only the chosen context's cluster and user are checked; the
other entries of the file may be anything, since nothing else is read from them.

The YAML is read with PyYAML's safe loader (no Python tags), bounded in size before parsing and in depth and
alias expansion while composing, so a "billion laughs" document is refused before it is built.

Pure: no Django, boto3 or Kubernetes import.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import yaml
import yaml.composer
import yaml.constructor
import yaml.parser
import yaml.reader
import yaml.resolver
import yaml.scanner
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization

MAX_BYTES = 1024 * 1024
# A kubeconfig nests about eight levels deep (users[].user.exec.env[].value); 64 is far beyond any real one
# and keeps PyYAML's recursive composer well inside Python's recursion limit.
MAX_DEPTH = 64
# Values after alias expansion. A 1 MiB document without aliases holds at most ~520,000 values
# ("[1,1,1,...]"), so only alias expansion ("billion laughs") reaches this.
MAX_NODES = 1_000_000

FILE = "(file)"
_LISTS = ("clusters", "contexts", "users")
_RUNS_NOTHING = "a kubeconfig registered here runs nothing"
_PUT_INLINE = "put a token or client-certificate-data inline"
_READS_NO_FILE = "file paths are refused: the portal reads no file on its host"
# EKS cluster names (and the ids of EKS clusters on Outposts): what the `x-k8s-aws-id` header may carry.
_EKS_CLUSTER_NAME = re.compile(r"[0-9A-Za-z][0-9A-Za-z_-]{0,99}")
_EKS_REGION = re.compile(r"[a-z]{2,4}(-[a-z]+)+-\d{1,2}")


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a kubeconfig: where (in kubeconfig terms) and what the operator should do."""

    field: str  # "users[alice].user.exec", "clusters[prod].cluster.server", "contexts", "(file)"
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


class KubeconfigError(ValueError):
    """A kubeconfig that cannot be registered; `problems` lists every problem found, not only the first."""

    problems: list[Problem]

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(str(p) for p in self.problems))

    def __reduce__(self) -> tuple[Any, ...]:
        # RQ and the test harness pickle exceptions; the default would call __init__ with the joined text
        return (type(self), (self.problems,))


@dataclass(frozen=True, slots=True)
class ClusterAccess:
    """Everything needed to talk to one cluster, credentials inline."""

    context: str
    cluster_name: str
    user_name: str
    server: str  # https URL, as written
    ca_data: bytes | None  # PEM from certificate-authority-data; None: the system trust store
    token: str | None
    client_cert_data: bytes | None  # PEM
    client_key_data: bytes | None  # PEM
    insecure_skip_tls_verify: bool
    tls_server_name: str | None
    needs_eks_token: bool  # the user was an `aws eks get-token` exec, accepted with allow_eks_exec=True
    # What that exec said (never run, only read): prefills the EKS registration form.
    eks_cluster_name: str | None = None
    eks_region: str | None = None  # None when the exec names none; the operator gives it
    eks_role_arn: str | None = None  # a role the exec assumed before signing; the portal does not assume it

    def __repr__(self) -> str:
        # the default repr would print the token and the private key into tracebacks and logs
        return f"ClusterAccess({redacted_summary(self)!r})"

    @property
    def auth_kind(self) -> str:
        """How it authenticates: "token", "client certificate", "EKS token", "token + client certificate"."""
        if self.needs_eks_token:
            return "EKS token"
        kinds = []
        if self.token:
            kinds.append("token")
        if self.client_cert_data:
            kinds.append("client certificate")
        return " + ".join(kinds) or "none"


def list_contexts(text: str | bytes) -> tuple[list[str], str | None]:
    """(context names in file order, current-context or None); KubeconfigError if not a readable Config.

    Entries without a string name are left out (they cannot be chosen); a name written twice is listed once.
    """
    config = _read_config(text)
    names = list(dict.fromkeys(name for name, _ in _entries(config, "contexts")))
    current = config.get("current-context")
    return names, (current if isinstance(current, str) and current else None)


def parse_kubeconfig(
    text: str | bytes,
    *,
    context: str | None = None,
    allow_insecure: bool = False,
    allow_eks_exec: bool = False,
) -> ClusterAccess:
    """Validate and extract; raises KubeconfigError listing EVERY problem found (not only the first).

    `context` picks a context (default: current-context, or the only one); `allow_insecure` is the admin's
    explicit override for `insecure-skip-tls-verify: true`; `allow_eks_exec` accepts an EKS token exec, which
    the portal then replaces with tokens it makes itself (`needs_eks_token`).
    """
    config = _read_config(text)
    problems: list[Problem] = []
    context_name, ctx = _choose_context(config, context, problems)
    if problems:
        raise KubeconfigError(problems)

    ctx_field = f"contexts[{_label(context_name)}].context"
    if not isinstance(ctx, dict):
        raise KubeconfigError([Problem(ctx_field, "the context must be a mapping with a cluster and a user")])
    cluster_name, cluster = _referenced(config, ctx, "cluster", ctx_field, problems)
    user_name, user = _referenced(config, ctx, "user", ctx_field, problems)

    endpoint = _check_cluster(cluster_name, cluster, allow_insecure, problems) if cluster_name else None
    creds = _check_user(user_name, user, allow_eks_exec, problems) if user_name else None
    if problems or endpoint is None or creds is None or cluster_name is None or user_name is None:
        raise KubeconfigError(problems)
    return ClusterAccess(
        context=context_name,
        cluster_name=cluster_name,
        user_name=user_name,
        server=endpoint.server,
        ca_data=endpoint.ca_data,
        token=creds.token,
        client_cert_data=creds.cert,
        client_key_data=creds.key,
        insecure_skip_tls_verify=endpoint.insecure,
        tls_server_name=endpoint.tls_server_name,
        needs_eks_token=creds.eks is not None,
        eks_cluster_name=creds.eks.cluster_name if creds.eks else None,
        eks_region=creds.eks.region if creds.eks else None,
        eks_role_arn=creds.eks.role_arn if creds.eks else None,
    )


def fingerprint(access: ClusterAccess) -> str:
    """SHA-256 hex of server URL + CA + user identity (token or client cert), stable, never reversible.

    Certificates count by their DER encoding, so re-wrapping the same PEM keeps the fingerprint; the private
    key is not part of the identity. An EKS user's identity is its cluster name, region and role.
    """
    parts: list[bytes] = [b"dnsportal-kubeconfig-v1", access.server.encode(), _der_of(access.ca_data)]
    if access.needs_eks_token:
        eks = (access.eks_cluster_name or "", access.eks_region or "", access.eks_role_arn or "")
        parts += [b"eks", "\n".join(eks).encode()]
    if access.token:
        parts += [b"token", access.token.encode()]
    if access.client_cert_data:
        parts += [b"client certificate", _der_of(access.client_cert_data)]
    digest = hashlib.sha256()
    for part in parts:  # length-prefixed, so no two different inputs concatenate to the same bytes
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


def redacted_summary(access: ClusterAccess) -> dict:
    """What can be shown and logged about a ClusterAccess: names, server, kind of auth, flags; no secret."""
    return {
        "context": access.context,
        "cluster": access.cluster_name,
        "user": access.user_name,
        "server": access.server,
        "tls_server_name": access.tls_server_name,
        "auth": access.auth_kind,
        "ca_present": access.ca_data is not None,
        "insecure_skip_tls_verify": access.insecure_skip_tls_verify,
        "client_certificate_expires": _not_after(access.client_cert_data),
        "eks_cluster_name": access.eks_cluster_name,
        "eks_region": access.eks_region,
        "fingerprint": fingerprint(access),
    }


def to_kubeconfig(access: ClusterAccess) -> dict:
    """The one-context kubeconfig (a dict) holding exactly `access`: what the portal stores and hands to the
    Kubernetes client, instead of the pasted file with its other clusters' credentials.

    `parse_kubeconfig(yaml.safe_dump(to_kubeconfig(a)), allow_insecure=True, allow_eks_exec=True) == a`.
    """
    cluster: dict[str, Any] = {"server": access.server}
    if access.ca_data is not None:
        cluster["certificate-authority-data"] = base64.b64encode(access.ca_data).decode()
    if access.insecure_skip_tls_verify:
        cluster["insecure-skip-tls-verify"] = True
    if access.tls_server_name is not None:
        cluster["tls-server-name"] = access.tls_server_name
    user: dict[str, Any] = {}
    if access.token is not None:
        user["token"] = access.token
    if access.client_cert_data is not None:
        user["client-certificate-data"] = base64.b64encode(access.client_cert_data).decode()
    if access.client_key_data is not None:
        user["client-key-data"] = base64.b64encode(access.client_key_data).decode()
    if access.needs_eks_token:  # kept as written so it round-trips; the portal never runs it
        args = ["eks", "get-token", "--cluster-name", access.eks_cluster_name or ""]
        if access.eks_region:
            args += ["--region", access.eks_region]
        if access.eks_role_arn:
            args += ["--role-arn", access.eks_role_arn]
        user["exec"] = {"apiVersion": "client.authentication.k8s.io/v1beta1", "command": "aws", "args": args}
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": access.cluster_name, "cluster": cluster}],
        "users": [{"name": access.user_name, "user": user}],
        "contexts": [
            {"name": access.context, "context": {"cluster": access.cluster_name, "user": access.user_name}}
        ],
        "current-context": access.context,
    }


# --- reading the file ---------------------------------------------------------------------------------------


class _TooComplex(Exception):
    """Well-formed YAML that no kubeconfig looks like: too deep, or aliases expanding to too much."""


# libyaml scans a 1 MiB document of tiny values in a fraction of a second where PyYAML's Python scanner takes
# about eight; the composer stays PyYAML's Python one (below), so the limits hold with either scanner.
_PARSING: tuple[type, ...] = (
    (yaml.cyaml.CParser,)
    if yaml.__with_libyaml__
    else (yaml.reader.Reader, yaml.scanner.Scanner, yaml.parser.Parser)
)


class _BoundedSafeLoader(
    yaml.composer.Composer, *_PARSING, yaml.constructor.SafeConstructor, yaml.resolver.Resolver
):
    """PyYAML's SafeLoader (safe constructors: no Python tags) with a depth limit while composing and an
    expansion check on the composed graph.

    PyYAML shares aliased nodes instead of copying them, so a "billion laughs" document composes in little
    memory; it explodes in whatever walks it afterwards. Measuring the graph with sharing taken into account
    refuses it before anything is constructed.
    """

    def __init__(self, stream: bytes) -> None:
        if yaml.__with_libyaml__:
            yaml.cyaml.CParser.__init__(self, stream)
        else:
            yaml.reader.Reader.__init__(self, stream)
            yaml.scanner.Scanner.__init__(self)
            yaml.parser.Parser.__init__(self)
        yaml.composer.Composer.__init__(self)
        yaml.constructor.SafeConstructor.__init__(self)
        yaml.resolver.Resolver.__init__(self)
        self._depth = 0
        self._aliases = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            self._aliases += 1
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise _TooComplex(f"values nest more than {MAX_DEPTH} levels deep; a kubeconfig nests a few")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def compose_mapping_node(self, anchor: Any) -> Any:
        # kubectl's YAML reader refuses a key written twice; PyYAML would keep the last one silently, so the
        # portal could use another token than the one a reviewer sees first
        node = super().compose_mapping_node(anchor)
        seen: set[tuple[str, str]] = set()
        for key, _ in node.value:
            if isinstance(key, yaml.ScalarNode) and key.tag != "tag:yaml.org,2002:merge":
                if (key.tag, key.value) in seen:
                    raise yaml.composer.ComposerError(
                        "while reading a mapping", node.start_mark, f"found the key {_show(key.value)} twice",
                        key.start_mark,
                    )  # fmt: skip
                seen.add((key.tag, key.value))
        return node

    def compose_document(self) -> Any:
        node = super().compose_document()
        if self._aliases:  # without aliases, size and depth are bounded by the file and compose_node
            _check_expansion(node)
        return node

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        # PyYAML's scalar constructors fail with plain Python errors on values that look typed but are not
        # ("!!int ''", "!!bool maybe", "2001-13-45", an integer of 5,000 digits): make them YAML errors with
        # their position, like every other malformed value
        try:
            return super().construct_object(node, deep)
        except yaml.YAMLError:
            raise
        except (ValueError, TypeError, IndexError, KeyError, AttributeError, OverflowError):
            kind = _TAG_KINDS.get(str(node.tag).removeprefix("tag:yaml.org,2002:"))
            problem = (
                f"this value is not {kind}" if kind else f"this value does not fit its tag {_show(node.tag)}"
            )
            raise yaml.constructor.ConstructorError(problem=problem, problem_mark=node.start_mark) from None


_TAG_KINDS = {"int": "a number", "float": "a number", "bool": "true or false", "timestamp": "a date",
              "binary": "base64 binary data"}  # fmt: skip


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return []


def _check_expansion(root: yaml.Node) -> None:
    """Refuse a node graph that is cyclic (an alias inside its own anchor), or that has more than MAX_NODES
    values or MAX_DEPTH levels once every alias is expanded. Iterative, memoised per shared node."""
    measured: dict[int, tuple[int, int]] = {}  # id(node) -> (values, depth) when expanded
    on_path: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, leaving = stack.pop()
        key = id(node)
        if leaving:
            kids = [measured[id(child)] for child in _children(node)]
            size = 1 + sum(k[0] for k in kids)
            depth = 1 + max((k[1] for k in kids), default=0)
            if size > MAX_NODES:
                raise _TooComplex(
                    f"YAML aliases expand to more than {MAX_NODES:,} values; a kubeconfig needs a few hundred"
                )
            if depth > MAX_DEPTH:
                raise _TooComplex(f"YAML aliases nest values more than {MAX_DEPTH} levels deep")
            measured[key] = (size, depth)
            on_path.discard(key)
        elif key in on_path:
            raise _TooComplex("a YAML alias refers to a value that contains it (a recursive anchor)")
        elif key not in measured:
            on_path.add(key)
            stack.append((node, True))
            stack.extend((child, False) for child in _children(node))


def _load(text: str | bytes) -> Any:
    if isinstance(text, str):
        if len(text) > MAX_BYTES:  # every character is at least one byte: no need to encode 100 MB to say so
            raise _too_big()
        try:
            data = text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise KubeconfigError(
                [Problem(FILE, f"not readable as text: an unpaired surrogate at character {exc.start}")]
            ) from None
    elif isinstance(text, bytes):
        data = text
    else:
        raise TypeError(f"a kubeconfig is str or bytes, not {type(text).__name__}")
    if len(data) > MAX_BYTES:
        raise _too_big()
    loader = None
    try:
        loader = _BoundedSafeLoader(data)  # the reader may refuse the bytes already here
        return loader.get_single_data()
    except yaml.MarkedYAMLError as exc:
        # what and where only: str(exc) quotes the offending line, which may hold a token
        mark = exc.problem_mark or exc.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        what = ", ".join(part for part in (exc.context, exc.problem) if part) or "unreadable"
        raise KubeconfigError([Problem(FILE, f"not valid YAML: {_clip(what, 200)}{where}")]) from None
    except yaml.reader.ReaderError as exc:
        raise KubeconfigError(
            [Problem(FILE, f"not readable as YAML text: {exc.reason} at byte {exc.position}")]
        ) from None
    except yaml.YAMLError:
        raise KubeconfigError([Problem(FILE, "not valid YAML")]) from None
    except _TooComplex as exc:
        raise KubeconfigError([Problem(FILE, f"not a kubeconfig: {exc}")]) from None
    finally:
        if loader is not None:
            loader.dispose()


def _too_big() -> KubeconfigError:
    return KubeconfigError(
        [Problem(FILE, f"the file is over 1 MiB: a kubeconfig may be at most {MAX_BYTES:,} bytes")]
    )


def _read_config(text: str | bytes) -> dict:
    data = _load(text)
    if data is None:
        raise KubeconfigError([Problem(FILE, "the file is empty: expected a kubeconfig (kind: Config)")])
    if not isinstance(data, dict):
        raise KubeconfigError(
            [
                Problem(
                    FILE,
                    f"not a kubeconfig: the document is {_kind_of(data)}, expected a mapping with "
                    "clusters, contexts and users",
                )
            ]
        )
    problems = []
    kind = data.get("kind")
    if kind is not None and kind != "Config":
        problems.append(Problem("kind", f"kind is {_show(kind)}, not Config: this is not a kubeconfig"))
    api_version = data.get("apiVersion")
    if api_version is not None and api_version != "v1":
        problems.append(Problem("apiVersion", f"apiVersion is {_show(api_version)}; a kubeconfig is v1"))
    if not any(key in data for key in _LISTS):
        problems.append(Problem(FILE, "not a kubeconfig: it has no clusters, contexts or users lists"))
    for key in _LISTS:
        value = data.get(key)
        if value is not None and not isinstance(value, list):
            problems.append(Problem(key, f"{key} must be a list of named entries, not {_kind_of(value)}"))
    current = data.get("current-context")
    if current is not None and not isinstance(current, str):
        problems.append(Problem("current-context", f"must be a context name, not {_kind_of(current)}"))
    if problems:
        raise KubeconfigError(problems)
    return data


def _entries(config: dict, list_key: str) -> list[tuple[str, Any]]:
    """(name, body) of the entries of `clusters`/`contexts`/`users` that have a string name, in file order."""
    singular = list_key[:-1]
    out = []
    for entry in config.get(list_key) or ():
        if isinstance(entry, dict) and isinstance(entry.get("name"), str) and entry["name"]:
            out.append((entry["name"], entry.get(singular)))
    return out


def _choose_context(config: dict, wanted: str | None, problems: list[Problem]) -> tuple[str, Any]:
    entries = _entries(config, "contexts")
    names = list(dict.fromkeys(name for name, _ in entries))
    if not names:
        problems.append(
            Problem(
                "contexts", "the file has no contexts: it needs one naming the cluster and the user to use"
            )
        )
        return "", None
    current = config.get("current-context") or None
    if wanted is not None:
        chosen, field = wanted, "contexts"
    elif current is not None:
        chosen, field = current, "current-context"
    elif len(names) == 1:
        chosen, field = names[0], "contexts"
    else:
        problems.append(
            Problem(
                "contexts",
                f"the file has {len(names)} contexts and no current-context; choose one of: {_names(names)}",
            )
        )
        return "", None
    matches = [body for name, body in entries if name == chosen]
    if not matches:
        if field == "current-context":
            message = f"current-context names {_show(chosen)}, which is not in contexts; choose one of: "
        else:
            message = f"no context named {_show(chosen)}; choose one of: "
        problems.append(Problem(field, message + _names(names)))
        return "", None
    if len(matches) > 1:
        problems.append(
            Problem(f"contexts[{_label(chosen)}]", "two contexts have this name; names must be unique")
        )
    return chosen, matches[0]


def _referenced(
    config: dict, ctx: dict, what: str, ctx_field: str, problems: list[Problem]
) -> tuple[str | None, Any]:
    """The cluster or user a context names: (name, body), or (None, None) with the problem recorded."""
    field = f"{ctx_field}.{what}"
    ref = ctx.get(what)
    if ref is None or ref == "":
        problems.append(Problem(field, f"the context names no {what}; it needs one"))
        return None, None
    if not isinstance(ref, str):
        problems.append(Problem(field, f"must be the name of a {what}, not {_kind_of(ref)}"))
        return None, None
    matches = [body for name, body in _entries(config, f"{what}s") if name == ref]
    if not matches:
        problems.append(Problem(field, f"names {what} {_show(ref)}, which is not in {what}s"))
        return None, None
    if len(matches) > 1:
        problems.append(
            Problem(f"{what}s[{_label(ref)}]", f"two {what}s have this name; names must be unique")
        )
    return ref, matches[0]


# --- the chosen cluster -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Endpoint:
    server: str
    ca_data: bytes | None
    insecure: bool
    tls_server_name: str | None


def _check_cluster(name: str, body: Any, allow_insecure: bool, problems: list[Problem]) -> _Endpoint | None:
    field = f"clusters[{_label(name)}].cluster"
    if not isinstance(body, dict):
        problems.append(Problem(field, "the cluster entry needs a cluster mapping with server and its CA"))
        return None
    before = len(problems)
    server = _check_server(body.get("server"), f"{field}.server", problems)
    if _given(body.get("certificate-authority")):
        problems.append(
            Problem(
                f"{field}.certificate-authority",
                f"{_READS_NO_FILE}; put the CA inline as certificate-authority-data (base64 of the PEM)",
            )
        )
    ca = _pem_certificates(
        body.get("certificate-authority-data"), f"{field}.certificate-authority-data", problems
    )

    insecure = body.get("insecure-skip-tls-verify")
    insecure_field = f"{field}.insecure-skip-tls-verify"
    if insecure is None:
        insecure = False
    elif not isinstance(insecure, bool):
        problems.append(Problem(insecure_field, f"must be true or false, not {_kind_of(insecure)}"))
        insecure = False
    elif insecure and not allow_insecure:
        problems.append(
            Problem(
                insecure_field,
                "TLS verification switched off is refused unless an admin ticks the insecure override; "
                "put the cluster's CA in certificate-authority-data instead",
            )
        )
    elif insecure and ca is not None:
        problems.append(
            Problem(
                insecure_field,
                "insecure-skip-tls-verify together with certificate-authority-data is contradictory "
                "(kubectl refuses it too); remove one of them",
            )
        )

    tls_server_name = body.get("tls-server-name")
    if tls_server_name == "":
        tls_server_name = None
    if tls_server_name is not None and not _is_clean_text(tls_server_name):
        problems.append(Problem(f"{field}.tls-server-name", "must be a host name (a string without spaces)"))
    if _given(body.get("proxy-url")):
        problems.append(
            Problem(
                f"{field}.proxy-url",
                "proxies are not supported: the portal connects to the server directly; remove proxy-url",
            )
        )
    if len(problems) > before or server is None:
        return None
    return _Endpoint(server=server, ca_data=ca, insecure=insecure, tls_server_name=tls_server_name)


def _check_server(server: Any, field: str, problems: list[Problem]) -> str | None:
    if server is None or server == "":
        problems.append(Problem(field, "the cluster has no server URL; expected https://host[:port]"))
        return None
    if not isinstance(server, str):
        problems.append(
            Problem(field, f"the server must be a URL such as https://host:6443, not {_kind_of(server)}")
        )
        return None
    if not _is_clean_text(server):
        problems.append(Problem(field, "the server URL contains spaces or control characters"))
        return None
    try:
        parts = urlsplit(server)
        host, _ = parts.hostname, parts.port  # .port raises on a port that is not a number from 0 to 65535
    except ValueError:
        problems.append(
            Problem(field, "the server URL cannot be read as a URL; expected https://host[:port]")
        )
        return None
    # the URL itself is not quoted back: a mistyped one may carry a password
    if parts.scheme.lower() != "https":
        scheme = _show(parts.scheme) if parts.scheme else "none"
        problems.append(
            Problem(
                field,
                f"the server URL must be https (scheme is {scheme}): the portal sends credentials to it",
            )
        )
    elif not host:
        problems.append(Problem(field, "the server URL has no host; expected https://host[:port]"))
    elif parts.username is not None or parts.password is not None:
        problems.append(
            Problem(field, "the server URL must not carry a user name or password; credentials go in users")
        )
    elif parts.query or parts.fragment:
        problems.append(Problem(field, "the server URL must not have a query or a fragment"))
    else:
        return server
    return None


# --- the chosen user ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _EksExec:
    cluster_name: str
    region: str | None
    role_arn: str | None


@dataclass(frozen=True, slots=True)
class _Credentials:
    token: str | None
    cert: bytes | None
    key: bytes | None
    eks: _EksExec | None


def _check_user(name: str, body: Any, allow_eks_exec: bool, problems: list[Problem]) -> _Credentials | None:
    field = f"users[{_label(name)}].user"
    no_credentials = Problem(
        field,
        "the user has no credentials: put a token, or client-certificate-data and client-key-data, inline",
    )
    if body is None:
        problems.append(no_credentials)
        return None
    if not isinstance(body, dict):
        problems.append(Problem(field, f"must be a mapping of credentials, not {_kind_of(body)}"))
        return None
    before = len(problems)

    eks = None
    if body.get("exec") is not None:
        eks = _eks_exec(body["exec"])
        if eks is None or not allow_eks_exec:
            hint = (
                "register it as an EKS cluster (name, region, AWS credential) so the portal makes the token "
                "itself, or put a token inline"
                if eks is not None
                else _PUT_INLINE
            )
            problems.append(Problem(f"{field}.exec", f"exec plugins are refused: {_RUNS_NOTHING}; {hint}"))
            eks = None
    provider = body.get("auth-provider")
    if provider is not None:
        named = f" ({_show(provider['name'])})" if isinstance(provider, dict) and "name" in provider else ""
        problems.append(
            Problem(
                f"{field}.auth-provider",
                f"auth-provider plugins{named} are refused: {_RUNS_NOTHING}; {_PUT_INLINE}",
            )
        )
    for path_key, inline in (
        ("client-certificate", "client-certificate-data"),
        ("client-key", "client-key-data"),
        ("tokenFile", "token"),
        ("token-file", "token"),
    ):
        if _given(body.get(path_key)):
            problems.append(Problem(f"{field}.{path_key}", f"{_READS_NO_FILE}; put it inline as {inline}"))
    basic = [key for key in ("username", "password") if _given(body.get(key))]
    if basic:
        problems.append(
            Problem(
                f"{field}.{basic[0]}",
                "username/password (basic auth) is refused: Kubernetes removed it in 1.19; use a token",
            )
        )
    for key in ("as", "as-uid", "as-groups", "as-user-extra"):
        if _given(body.get(key)):
            problems.append(
                Problem(
                    f"{field}.{key}",
                    "impersonation is not supported: give the portal's own identity the permissions it needs "
                    "(deploy/cluster-access.yaml)",
                )
            )

    token = body.get("token")
    if token == "":
        token = None
    if token is not None and not isinstance(token, str):
        problems.append(Problem(f"{field}.token", f"must be a string, not {_kind_of(token)}"))
        token = None
    elif token is not None and not _is_clean_text(token):
        problems.append(
            Problem(
                f"{field}.token",
                "the token contains spaces, line breaks or control characters; paste it alone",
            )
        )
        token = None

    cert_field, key_field = f"{field}.client-certificate-data", f"{field}.client-key-data"
    certs = _pem_certificates(body.get("client-certificate-data"), cert_field, problems, parsed=True)
    key = _pem_private_key(body.get("client-key-data"), key_field, problems)
    cert_given = _given(body.get("client-certificate-data")) or _given(body.get("client-certificate"))
    key_given = _given(body.get("client-key-data")) or _given(body.get("client-key"))
    if cert_given and not key_given:
        problems.append(Problem(cert_field, "a client certificate needs its key: add client-key-data"))
    if key_given and not cert_given:
        problems.append(Problem(key_field, "a client key needs its certificate: add client-certificate-data"))
    if certs is not None and key is not None and not _same_public_key(certs[1], key[1]):
        problems.append(
            Problem(
                key_field, "this key does not belong to client-certificate-data (their public keys differ)"
            )
        )

    if len(problems) > before:
        return None
    if token is None and certs is None and eks is None:
        problems.append(no_credentials)
        return None
    return _Credentials(
        token=token,
        cert=certs[0] if certs is not None else None,
        key=key[0] if key is not None else None,
        eks=eks,
    )


# aws-cli options that take a value (the others are flags): enough to find `eks get-token` among them
_AWS_VALUE_OPTIONS = frozenset(
    {
        "--region", "--cluster-name", "--cluster-id", "--role-arn", "--output", "--profile", "--endpoint-url",
        "--ca-bundle", "--query", "--color", "--cli-read-timeout", "--cli-connect-timeout",
    }
)  # fmt: skip
_AUTHENTICATOR_VALUE_OPTIONS = frozenset(
    {"-i", "--cluster-id", "-r", "--role", "--region", "-s", "--session-name", "--external-id", "--profile"}
)


def _eks_exec(spec: Any) -> _EksExec | None:
    """The EKS cluster an `aws eks get-token` / `aws-iam-authenticator token` exec asks a token for, or None
    if the exec is anything else. Read only: the command is never run."""
    if not isinstance(spec, dict):
        return None
    command, args = spec.get("command"), spec.get("args") or []
    if (
        not isinstance(command, str)
        or not isinstance(args, list)
        or not all(isinstance(a, str) for a in args)
    ):
        return None
    program = re.split(r"[\\/]", command)[-1].removesuffix(".exe")
    if program == "aws":
        positional, options = _split_args(args, _AWS_VALUE_OPTIONS)
        if positional != ["eks", "get-token"]:
            return None
        cluster = options.get("--cluster-name") or options.get("--cluster-id")
        role = options.get("--role-arn")
    elif program == "aws-iam-authenticator":
        positional, options = _split_args(args, _AUTHENTICATOR_VALUE_OPTIONS)
        if positional != ["token"]:
            return None
        cluster = options.get("-i") or options.get("--cluster-id")
        role = options.get("-r") or options.get("--role")
    else:
        return None
    if not cluster or not _EKS_CLUSTER_NAME.fullmatch(cluster):
        return None
    env = {}
    for item in spec["env"] if isinstance(spec.get("env"), list) else ():
        if (
            isinstance(item, dict)
            and isinstance(item.get("name"), str)
            and isinstance(item.get("value"), str)
        ):
            env[item["name"]] = item["value"]
    region = options.get("--region") or env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")
    return _EksExec(
        cluster_name=cluster,
        region=region if region and _EKS_REGION.fullmatch(region) else None,
        role_arn=role or None,
    )


def _split_args(args: list[str], value_options: frozenset[str]) -> tuple[list[str], dict[str, str]]:
    positional: list[str] = []
    options: dict[str, str] = {}
    it = iter(args)
    for arg in it:
        if arg.startswith("-"):
            name, eq, value = arg.partition("=")
            if eq:
                options[name] = value
            elif name in value_options:
                options[name] = next(it, "")
            else:
                options[name] = ""  # a flag
        else:
            positional.append(arg)
    return positional, options


# --- inline data --------------------------------------------------------------------------------------------


def _decode_base64(value: Any, field: str, what: str, problems: list[Problem]) -> bytes | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        problems.append(Problem(field, f"must be base64 text of a PEM {what}, not {_kind_of(value)}"))
        return None
    if value.lstrip().startswith("-----BEGIN"):
        problems.append(Problem(field, f"is PEM text, not base64 of it: encode the PEM {what} (base64 -w0)"))
        return None
    try:
        # Go's decoder (what kubectl uses) skips line breaks; YAML folding may leave spaces
        return base64.b64decode(re.sub(r"\s+", "", value), validate=True)
    except (binascii.Error, ValueError):
        problems.append(Problem(field, f"is not valid base64; it must be base64 of the PEM {what}"))
        return None


def _pem_certificates(value: Any, field: str, problems: list[Problem], *, parsed: bool = False) -> Any:
    """PEM bytes of one or more certificates (CA bundle, client certificate chain), or None.
    With parsed=True: (PEM bytes, the first certificate)."""
    raw = _decode_base64(value, field, "certificate", problems)
    if raw is None:
        return None
    if b"-----BEGIN CERTIFICATE-----" not in raw:
        problems.append(
            Problem(
                field,
                "decodes to something that is not PEM (-----BEGIN CERTIFICATE-----); give base64 of the PEM",
            )
        )
        return None
    try:
        certs = x509.load_pem_x509_certificates(raw)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        problems.append(Problem(field, "decodes to PEM that holds no readable certificate"))
        return None
    return (raw, certs[0]) if parsed else raw


def _pem_private_key(value: Any, field: str, problems: list[Problem]) -> tuple[bytes, Any] | None:
    raw = _decode_base64(value, field, "private key", problems)
    if raw is None:
        return None
    if not re.search(rb"-----BEGIN [A-Z ]*PRIVATE KEY-----", raw):
        problems.append(
            Problem(
                field,
                "decodes to something that is not a PEM private key; give base64 of the PEM key",
            )
        )
        return None
    try:
        key = serialization.load_pem_private_key(raw, password=None)
    except TypeError:
        problems.append(Problem(field, "the private key is encrypted with a passphrase; give it unencrypted"))
        return None
    except (ValueError, UnsupportedAlgorithm):
        problems.append(Problem(field, "decodes to PEM that holds no readable private key"))
        return None
    return raw, key


def _same_public_key(cert: x509.Certificate, key: Any) -> bool:
    spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    try:
        return cert.public_key().public_bytes(*spki) == key.public_key().public_bytes(*spki)
    except (ValueError, TypeError, UnsupportedAlgorithm, AttributeError):
        return False


def _der_of(pem: bytes | None) -> bytes:
    """The certificates' DER (stable across PEM re-wrapping); the bytes as they are if they do not parse."""
    if not pem:
        return b""
    try:
        certs = x509.load_pem_x509_certificates(pem)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        return pem
    return b"".join(c.public_bytes(serialization.Encoding.DER) for c in certs)


def _not_after(pem: bytes | None) -> str | None:
    if not pem:
        return None
    try:
        expires = x509.load_pem_x509_certificates(pem)[0].not_valid_after_utc
    except (ValueError, TypeError, UnsupportedAlgorithm):
        return None
    return expires.astimezone(dt.UTC).isoformat()


# --- small helpers ------------------------------------------------------------------------------------------


def _given(value: Any) -> bool:
    """kubectl treats an empty value as unset: only a real value counts as given."""
    return value is not None and value != "" and value != [] and value != {}


def _is_clean_text(value: Any) -> bool:
    return (
        isinstance(value, str) and bool(value) and not any(c.isspace() or not c.isprintable() for c in value)
    )


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _label(name: str) -> str:
    """A name as it appears inside a field path: clipped, so a 100,000-character name stays readable."""
    return _clip(name, 80)


def _show(value: Any) -> str:
    """A value quoted into a message: repr (control characters escaped) of at most 60 characters."""
    if isinstance(value, str):
        return repr(_clip(value, 60))
    return _kind_of(value)


def _names(names: list[str]) -> str:
    shown = ", ".join(_show(n) for n in names[:20])
    return shown + (f" and {len(names) - 20} more" if len(names) > 20 else "")


def _kind_of(value: Any) -> str:
    kinds: list[tuple[type | tuple[type, ...], str]] = [
        (type(None), "null"),
        (bool, "true/false"),
        ((int, float), "a number"),
        (str, "a string"),
        (bytes, "binary data"),
        (dict, "a mapping"),
        (list, "a list"),
        ((dt.date, dt.datetime), "a date"),
        ((set, frozenset), "a set"),
    ]
    for types, label in kinds:
        if isinstance(value, types):
            return label
    return type(value).__name__
