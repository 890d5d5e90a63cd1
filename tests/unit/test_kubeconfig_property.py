"""Property: whatever is pasted, kubeconfig validation answers with a ClusterAccess or a KubeconfigError.

Random text and bytes, YAML soup, random structures, kubeconfig-shaped random documents, valid
kubeconfigs with random mutations (deleted keys, wrong types, huge strings, deep nesting) and garbled valid
files: no other exception type may escape, every problem has a field and a short message, and the token of the
valid file never shows up in a message, a summary or a repr.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clusters.kubeconfig import (
    ClusterAccess,
    KubeconfigError,
    Problem,
    fingerprint,
    list_contexts,
    parse_kubeconfig,
    redacted_summary,
    to_kubeconfig,
)
from tests.unit.test_kubeconfig import TOKEN, b64, cert_user, dump, eks_user, kubeconfig, pki

PROPERTY = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)


def _valid() -> dict:
    """Three contexts: token user (current), client-certificate user, EKS exec user."""
    config = kubeconfig()
    config["users"] += [{"name": "cert", "user": cert_user()}, {"name": "eks", "user": eks_user()}]
    config["contexts"] += [
        {"name": "cert", "context": {"cluster": "prod-cluster", "user": "cert"}},
        {"name": "eks", "context": {"cluster": "prod-cluster", "user": "eks"}},
    ]
    return config


CONTEXTS = ["prod", "cert", "eks", "missing"]


def check(
    text: str | bytes, *, context: str | None = None, insecure: bool = False, eks: bool = False
) -> None:
    """The property itself: success or KubeconfigError, well-formed problems, no secret in any output."""
    try:
        access = parse_kubeconfig(text, context=context, allow_insecure=insecure, allow_eks_exec=eks)
    except KubeconfigError as exc:
        assert exc.problems
        for problem in exc.problems:
            assert isinstance(problem, Problem)
            assert isinstance(problem.field, str) and problem.field
            assert isinstance(problem.message, str) and problem.message
            assert len(str(problem)) < 2000
        assert TOKEN not in str(exc)
    else:
        assert isinstance(access, ClusterAccess)
        assert access.server.lower().startswith("https://")
        assert access.needs_eks_token or access.token or (access.client_cert_data and access.client_key_data)
        summary = json.dumps(redacted_summary(access))
        assert TOKEN not in summary and TOKEN not in repr(access)
        assert len(fingerprint(access)) == 64
        assert (
            parse_kubeconfig(dump(to_kubeconfig(access)), allow_insecure=True, allow_eks_exec=True) == access
        )
    try:
        names, current = list_contexts(text)
    except KubeconfigError:
        return
    assert all(isinstance(name, str) and name for name in names)
    assert current is None or isinstance(current, str)


def mostly(usual: st.SearchStrategy, rarely: st.SearchStrategy) -> st.SearchStrategy:
    """`usual` four times in five: random values everywhere would stop nearly every example at the top."""
    return st.integers(0, 4).flatmap(lambda n: rarely if n == 0 else usual)


flags = {
    "context": mostly(
        st.sampled_from([None, "cert", "eks"]), st.sampled_from(CONTEXTS) | st.text(max_size=5)
    ),
    "insecure": st.booleans(),
    "eks": mostly(st.just(True), st.just(False)),
}


# --- raw input ----------------------------------------------------------------------------------------------


@PROPERTY
@given(text=st.text(max_size=300) | st.binary(max_size=300), **flags)
def test_random_text_and_bytes(text, context, insecure, eks):
    check(text, context=context, insecure=insecure, eks=eks)


@PROPERTY
@given(
    text=st.lists(st.integers(0xD800, 0xDFFF) | st.integers(0x20, 0x7E), min_size=1, max_size=20).map(
        lambda codepoints: "".join(map(chr, codepoints))
    )
)
def test_text_with_surrogates(text):
    check(text)


FRAGMENTS = [
    "\n", " ", "  ", "\t", "- ", ": ", ":", ",", "[", "]", "{", "}", "'", '"', "#", "\\", "\x00", "\ufeff",
    "&a ", "*a", "&b ", "*b", "<<: ", "? ", "|", ">", "---", "...", "%YAML 1.1\n", "%TAG ! tag:x,2000:\n",
    "!!binary ", "!!python/object/apply:os.system ", "!!set ", "!!str ", "!!int ", "!!float ",
    "!!timestamp ", "!local ", "apiVersion", "v1", "kind", "Config", "clusters", "contexts", "users",
    "current-context", "name", "cluster", "user", "context", "server", "https://h:6443", "http://h", "token",
    "tokenFile", "exec", "command", "aws", "args", "eks", "get-token", "--cluster-name",
    "certificate-authority-data", "client-key-data", "insecure-skip-tls-verify", "true", "yes", "null", "~",
    "0x1F", "0o17", "1e400", "-.inf", ".nan", "2001-13-45", "2001-12-14t21:59:43.10-05:00", "12:30:00",
    "LS0tLS1CRUdJTg==", "x", "1",
]  # fmt: skip


@PROPERTY
@given(text=st.lists(st.sampled_from(FRAGMENTS), max_size=80).map("".join), **flags)
def test_yaml_soup(text, context, insecure, eks):
    check(text, context=context, insecure=insecure, eks=eks)


@PROPERTY
@given(depth=st.integers(1, 3000), style=st.sampled_from(["flow-list", "flow-map", "block", "alias"]))
def test_deep_nesting(depth, style):
    if style == "flow-list":
        text = "[" * depth + "]" * depth
    elif style == "flow-map":
        text = "{a: " * depth + "1" + "}" * depth
    elif style == "block":
        text = "".join(f"{' ' * i}- \n" for i in range(min(depth, 400))) + " " * min(depth, 400) + "x\n"
    else:
        text = "a0: &a0 [x]\n" + "".join(
            f"a{i}: &a{i} [*a{i - 1}, *a{i - 1}]\n" for i in range(1, min(depth, 300))
        )
    check(text)


# --- random structures -------------------------------------------------------------------------------------

VOCAB = [
    "apiVersion", "kind", "clusters", "contexts", "users", "current-context", "name", "cluster", "user",
    "context", "server", "certificate-authority-data", "certificate-authority", "insecure-skip-tls-verify",
    "tls-server-name", "proxy-url", "token", "tokenFile", "client-certificate-data", "client-key-data",
    "client-certificate", "client-key", "exec", "auth-provider", "command", "args", "env", "username",
    "password", "as", "prod", "prod-cluster", "portal",
]  # fmt: skip
scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=20)
    | st.sampled_from([*VOCAB, "v1", "Config", "https://h:6443", "http://h", "", "!!", TOKEN])
    | st.binary(max_size=10)
    | st.dates()
)
keys = st.sampled_from(VOCAB) | st.text(max_size=8) | st.integers() | st.none() | st.booleans()
structures = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=5),
    max_leaves=30,
)
nested = st.integers(1, 100).map(lambda n: [[[]]] if n < 3 else _nest(n))
huge = st.sampled_from([300_000, 1_100_000]).map(lambda n: "x" * n)
nasty = structures | nested | huge


def _nest(depth: int) -> Any:
    value: Any = "leaf"
    for i in range(depth):
        value = [value] if i % 2 else {"k": value}
    return value


def _dump(value: Any) -> str:
    # libyaml's emitter: PyYAML's Python one takes seconds for the megabyte strings
    dumper = yaml.CSafeDumper if yaml.__with_libyaml__ else yaml.SafeDumper
    return yaml.dump(value, Dumper=dumper, sort_keys=False, allow_unicode=True)


@PROPERTY
@given(document=structures, **flags)
def test_random_structures(document, context, insecure, eks):
    check(_dump(document), context=context, insecure=insecure, eks=eks)


names = mostly(st.sampled_from(["prod", "prod-cluster", "portal", "cert", "eks"]), scalars)
data_values = st.sampled_from(
    [
        b64(pki().ca_pem),
        b64(pki().client_cert_pem),
        b64(pki().client_key_pem),
        b64(pki().other_key_pem),
        "!!",
        "",
    ]
)
exec_values = st.sampled_from([eks_user()["exec"], {"command": "sh", "args": ["-c", "id"]}]) | structures
cluster_bodies = (
    st.fixed_dictionaries(
        {},
        optional={
            "server": st.sampled_from(["https://h:6443", "http://h", "https://", "h:1"]) | scalars,
            "certificate-authority-data": data_values | scalars,
            "certificate-authority": scalars,
            "insecure-skip-tls-verify": scalars,
            "tls-server-name": scalars,
            "proxy-url": scalars,
        },
    )
    | structures
)
user_bodies = (
    st.fixed_dictionaries(
        {},
        optional={
            "token": st.just(TOKEN) | scalars,
            "client-certificate-data": data_values | scalars,
            "client-key-data": data_values | scalars,
            "exec": exec_values,
            "auth-provider": structures,
            "tokenFile": scalars,
            "username": scalars,
            "password": scalars,
            "as": scalars,
        },
    )
    | structures
)
context_bodies = st.fixed_dictionaries({}, optional={"cluster": names, "user": names}) | structures


def _entries(kind: str, bodies: st.SearchStrategy) -> st.SearchStrategy:
    entry = mostly(st.fixed_dictionaries({"name": names}, optional={kind: bodies}), structures)
    return mostly(st.lists(entry, max_size=3), structures)


shaped = st.fixed_dictionaries(
    {},
    optional={
        "apiVersion": mostly(st.just("v1"), scalars),
        "kind": mostly(st.just("Config"), scalars),
        "clusters": _entries("cluster", cluster_bodies),
        "users": _entries("user", user_bodies),
        "contexts": _entries("context", context_bodies),
        "current-context": names,
    },
)


@PROPERTY
@given(document=shaped, **flags)
def test_kubeconfig_shaped_random_documents(document, context, insecure, eks):
    check(_dump(document), context=context, insecure=insecure, eks=eks)


# --- valid files, damaged ----------------------------------------------------------------------------------


FIELD_KEYS = [
    "server", "certificate-authority-data", "certificate-authority", "insecure-skip-tls-verify",
    "tls-server-name", "proxy-url", "token", "tokenFile", "token-file", "client-certificate-data",
    "client-key-data", "client-certificate", "client-key", "exec", "auth-provider", "username", "password",
    "as", "cluster", "user", "namespace",
]  # fmt: skip
field_values = nasty | data_values | exec_values | st.sampled_from(["https://h", "http://h", "", True])


@st.composite
def mutated(draw: st.DrawFn) -> Any:
    """A valid kubeconfig with random changes: first inside the cluster, user and context bodies (a field
    deleted, or set to a wrong type, None, a huge string, deep nesting, other valid data), then anywhere (a
    key deleted, a value replaced or wrapped in a list)."""
    root: Any = copy.deepcopy(_valid())
    bodies = [
        *(entry["cluster"] for entry in root["clusters"]),
        *(entry["user"] for entry in root["users"]),
        *(entry["context"] for entry in root["contexts"]),
    ]
    for _ in range(draw(st.integers(0, 3))):
        body = bodies[draw(st.integers(0, len(bodies) - 1))]
        key = draw(st.sampled_from(FIELD_KEYS))
        if key in body and draw(st.booleans()):
            del body[key]
        else:
            # a copy: sampled_from hands out the same object each time, and later mutations edit in place
            body[key] = copy.deepcopy(draw(field_values))
    for _ in range(draw(st.integers(0, 2))):
        parent, key, node = None, None, root
        while isinstance(node, dict | list) and node:
            if isinstance(node, list):
                key = draw(st.integers(0, len(node) - 1))
            else:
                key = draw(st.sampled_from(list(node)))
            parent, node = node, node[key]
            if draw(st.integers(0, 3)) == 0:  # stop here; otherwise go deeper
                break
        if parent is None:
            root = copy.deepcopy(draw(nasty))
            continue
        action = draw(st.sampled_from(["delete", "replace", "wrap"]))
        if action == "delete":
            del parent[key]
        elif action == "replace":
            parent[key] = copy.deepcopy(draw(nasty))
        else:
            parent[key] = [node]
    return root


@settings(PROPERTY, max_examples=400)
@given(document=mutated(), **flags)
def test_mutated_valid_kubeconfigs(document, context, insecure, eks):
    check(_dump(document), context=context, insecure=insecure, eks=eks)


VALID_TEXTS = [_dump(_valid()), json.dumps(_valid(), indent=1)]


@st.composite
def garbled(draw: st.DrawFn) -> str | bytes:
    """A valid file (YAML or JSON) with a few random edits: slices deleted, duplicated, replaced; as text,
    UTF-8 or UTF-16 bytes."""
    text = draw(st.sampled_from(VALID_TEXTS))
    for _ in range(draw(st.integers(1, 5))):
        start = draw(st.integers(0, len(text)))
        end = draw(st.integers(start, min(len(text), start + 40)))
        action = draw(st.sampled_from(["delete", "insert", "replace", "duplicate"]))
        piece = draw(st.sampled_from(FRAGMENTS) | st.text(max_size=4))
        if action == "delete":
            text = text[:start] + text[end:]
        elif action == "insert":
            text = text[:start] + piece + text[start:]
        elif action == "replace":
            text = text[:start] + piece + text[end:]
        else:
            text = text[:end] + text[start:end] + text[end:]
    encoding = draw(st.sampled_from(["str", "utf-8", "utf-16"]))
    return text if encoding == "str" else text.encode(encoding, "surrogatepass")


@PROPERTY
@given(text=garbled(), **flags)
def test_garbled_valid_kubeconfigs(text, context, insecure, eks):
    check(text, context=context, insecure=insecure, eks=eks)


def test_the_undamaged_files_pass_the_property_as_successes():
    for text in VALID_TEXTS:
        for context in ("prod", "cert", "eks"):
            check(text, context=context, eks=True)
            assert parse_kubeconfig(text, context=context, allow_eks_exec=True).context == context
