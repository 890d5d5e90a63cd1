"""EKS tokens: the presigned STS URL inside, checked field by field, against an independent SigV4
computation, and byte for byte against what aws-cli's `eks get-token` makes with a boto3 client.

Presigning is local computation: no socket is opened (a test proves it); nothing from the environment leaks
in.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import socket
import threading
from urllib.parse import parse_qsl, quote, urlsplit

import boto3
import pytest

from clusters.eks import TOKEN_LIFETIME, TOKEN_PREFIX, EksTokenSource, eks_token

KEY_ID = "AKIAIOSFODNN7EXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
SESSION = "IQoJb3JpZ2luX2VjEXAMPLESESSIONTOKEN/+="
NOW = dt.datetime(2025, 3, 4, 5, 6, 7, tzinfo=dt.UTC)
CREDS = {"access_key_id": KEY_ID, "secret_access_key": SECRET}


def decode(token: str) -> str:
    assert token.startswith(TOKEN_PREFIX)
    body = token.removeprefix(TOKEN_PREFIX)
    assert "=" not in body  # base64url without padding, as aws-cli strips it
    assert set(body) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    return base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode()


def query(url: str) -> dict[str, str]:
    pairs = parse_qsl(urlsplit(url).query, keep_blank_values=True, strict_parsing=True)
    assert len(pairs) == len(dict(pairs))  # no parameter twice
    return dict(pairs)


def sigv4_signature(url: str, headers: dict[str, str], secret: str) -> str:
    """SigV4 for a presigned GET, written from AWS's specification, independent of botocore."""
    parts = urlsplit(url)
    params = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "X-Amz-Signature"]
    canonical_query = "&".join(f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in sorted(params))
    given = {"host": parts.netloc, **{k.lower(): v.strip() for k, v in headers.items()}}
    signed = dict(params)["X-Amz-SignedHeaders"].split(";")
    canonical_request = "\n".join(
        [
            "GET",
            parts.path or "/",
            canonical_query,
            "".join(f"{name}:{given[name]}\n" for name in signed),
            ";".join(signed),
            hashlib.sha256(b"").hexdigest(),  # no body
        ]
    )
    date, scope = dict(params)["X-Amz-Date"], dict(params)["X-Amz-Credential"].split("/", 1)[1]
    string_to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", date, scope, hashlib.sha256(canonical_request.encode()).hexdigest()]
    )
    key = f"AWS4{secret}".encode()
    for part in scope.split("/"):  # date, region, service, "aws4_request"
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()


# --- the URL inside the token -------------------------------------------------------------------------------


def test_token_is_a_presigned_get_caller_identity_url_on_the_regional_endpoint():
    token, _ = eks_token(cluster_name="prod", region="eu-west-1", now=NOW, **CREDS)
    url = decode(token)
    parts, params = urlsplit(url), query(url)
    assert (parts.scheme, parts.hostname, parts.port, parts.path) == (
        "https",
        "sts.eu-west-1.amazonaws.com",
        None,
        "/",
    )
    assert params["Action"] == "GetCallerIdentity"
    assert params["Version"] == "2011-06-15"
    assert params["X-Amz-Algorithm"] == "AWS4-HMAC-SHA256"
    assert params["X-Amz-Expires"] == "60"
    assert params["X-Amz-Date"] == "20250304T050607Z"
    assert params["X-Amz-Credential"] == f"{KEY_ID}/20250304/eu-west-1/sts/aws4_request"
    assert params["X-Amz-SignedHeaders"].split(";") == ["host", "x-k8s-aws-id"]
    assert "X-Amz-Security-Token" not in params
    assert SECRET not in url and quote(SECRET, safe="") not in url


def test_the_signature_covers_the_cluster_name_header():
    token, _ = eks_token(cluster_name="prod", region="eu-west-1", now=NOW, **CREDS)
    url = decode(token)
    signature = query(url)["X-Amz-Signature"]
    assert signature == sigv4_signature(url, {"x-k8s-aws-id": "prod"}, SECRET)
    assert signature != sigv4_signature(url, {"x-k8s-aws-id": "staging"}, SECRET)  # bound to one cluster
    assert signature != sigv4_signature(url, {"x-k8s-aws-id": "prod"}, SECRET + "x")


def test_a_session_token_travels_in_the_signed_url():
    token, _ = eks_token(cluster_name="prod", region="eu-west-1", session_token=SESSION, now=NOW, **CREDS)
    url = decode(token)
    assert query(url)["X-Amz-Security-Token"] == SESSION
    assert query(url)["X-Amz-Signature"] == sigv4_signature(url, {"x-k8s-aws-id": "prod"}, SECRET)


@pytest.mark.parametrize("session_token", [None, SESSION])
def test_the_token_is_what_aws_cli_eks_get_token_makes(session_token):
    # aws-cli's way (awscli/customizations/eks/get_token.py): an STS client whose GetCallerIdentity takes a
    # ClusterName parameter that a before-sign handler turns into the x-k8s-aws-id header
    session = boto3.session.Session(
        aws_access_key_id=KEY_ID,
        aws_secret_access_key=SECRET,
        aws_session_token=session_token,
        region_name="eu-west-1",
    )
    sts = session.client("sts", endpoint_url="https://sts.eu-west-1.amazonaws.com")

    def take_cluster_name(params, context, **_):
        if "ClusterName" in params:
            context["eks_cluster"] = params.pop("ClusterName")

    def add_header(request, **_):
        if "eks_cluster" in request.context:
            request.headers["x-k8s-aws-id"] = request.context["eks_cluster"]

    sts.meta.events.register("provide-client-params.sts.GetCallerIdentity", take_cluster_name)
    sts.meta.events.register("before-sign.sts.GetCallerIdentity", add_header)
    expected = sts.generate_presigned_url(
        "get_caller_identity", Params={"ClusterName": "prod"}, ExpiresIn=60, HttpMethod="GET"
    )
    signed_at = dt.datetime.strptime(query(expected)["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC)

    token, _ = eks_token(
        cluster_name="prod", region="eu-west-1", session_token=session_token, now=signed_at, **CREDS
    )
    assert decode(token) == expected


@pytest.mark.parametrize(
    ("region", "host"),
    [
        ("us-east-1", "sts.us-east-1.amazonaws.com"),
        ("ap-southeast-2", "sts.ap-southeast-2.amazonaws.com"),
        ("cn-north-1", "sts.cn-north-1.amazonaws.com.cn"),
        ("us-gov-west-1", "sts.us-gov-west-1.amazonaws.com"),
    ],
)
def test_the_endpoint_is_regional_in_the_right_partition(region, host):
    token, _ = eks_token(cluster_name="prod", region=region, now=NOW, **CREDS)
    url = decode(token)
    assert urlsplit(url).hostname == host
    assert f"/{region}/sts/aws4_request" in query(url)["X-Amz-Credential"]


def test_an_sts_endpoint_url_replaces_the_regional_one():
    token, _ = eks_token(
        cluster_name="prod", region="eu-west-1", sts_endpoint_url="http://127.0.0.1:5000/", now=NOW, **CREDS
    )
    url = decode(token)
    assert url.startswith("http://127.0.0.1:5000/?Action=GetCallerIdentity&")
    assert query(url)["X-Amz-Signature"] == sigv4_signature(url, {"x-k8s-aws-id": "prod"}, SECRET)


def test_the_environment_cannot_redirect_or_replace_anything(monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", "https://sts.evil.example")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "https://evil.example")
    monkeypatch.setenv("AWS_STS_REGIONAL_ENDPOINTS", "legacy")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAOTHERKEYFROMENV0")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/aws-config")
    token, _ = eks_token(cluster_name="prod", region="eu-west-1", now=NOW, **CREDS)
    url = decode(token)
    assert urlsplit(url).hostname == "sts.eu-west-1.amazonaws.com"
    assert query(url)["X-Amz-Credential"].startswith(f"{KEY_ID}/")


def test_presigning_opens_no_socket(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("eks_token tried to open a network connection")

    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    token, _ = eks_token(cluster_name="prod", region="sa-east-1", session_token=SESSION, now=NOW, **CREDS)
    assert decode(token).startswith("https://sts.sa-east-1.amazonaws.com/")


# --- expiry -------------------------------------------------------------------------------------------------


def test_expires_at_is_fourteen_minutes_after_signing():
    _, expires_at = eks_token(cluster_name="prod", region="eu-west-1", now=NOW, **CREDS)
    assert dt.timedelta(minutes=14) == TOKEN_LIFETIME
    assert expires_at == NOW + dt.timedelta(minutes=14)
    assert expires_at.tzinfo is not None


def test_now_defaults_to_the_clock_and_naive_or_other_zones_mean_utc_instants():
    before = dt.datetime.now(dt.UTC).replace(microsecond=0)
    _, expires_at = eks_token(cluster_name="prod", region="eu-west-1", **CREDS)
    assert before + TOKEN_LIFETIME <= expires_at <= dt.datetime.now(dt.UTC) + TOKEN_LIFETIME
    naive, _ = eks_token(cluster_name="prod", region="eu-west-1", now=NOW.replace(tzinfo=None), **CREDS)
    paris = NOW.astimezone(dt.timezone(dt.timedelta(hours=1)))
    zoned, zoned_expiry = eks_token(cluster_name="prod", region="eu-west-1", now=paris, **CREDS)
    utc, _ = eks_token(cluster_name="prod", region="eu-west-1", now=NOW, **CREDS)
    assert naive == zoned == utc
    assert zoned_expiry == NOW + TOKEN_LIFETIME


def test_the_same_inputs_make_the_same_token_and_another_second_another_one():
    first, _ = eks_token(cluster_name="prod", region="eu-west-1", now=NOW, **CREDS)
    again, _ = eks_token(cluster_name="prod", region="eu-west-1", now=NOW, **CREDS)
    later, _ = eks_token(cluster_name="prod", region="eu-west-1", now=NOW + dt.timedelta(seconds=1), **CREDS)
    assert first == again != later


def test_a_token_source_reuses_its_token_until_due_then_makes_a_fresh_one():
    source = EksTokenSource(cluster_name="prod", region="eu-west-1", **CREDS)
    assert source.expires_at is None
    first = source.token(now=NOW)
    assert source.expires_at == NOW + TOKEN_LIFETIME
    assert source.token(now=NOW + dt.timedelta(minutes=13, seconds=59)) == first
    fresh = source.token(now=NOW + TOKEN_LIFETIME)
    assert fresh != first
    assert query(decode(fresh))["X-Amz-Date"] == "20250304T052007Z"
    assert source.expires_at == NOW + 2 * TOKEN_LIFETIME
    assert source.token(now=NOW + TOKEN_LIFETIME + dt.timedelta(minutes=5)) == fresh


def test_a_token_source_makes_one_token_for_many_threads():
    source = EksTokenSource(cluster_name="prod", region="eu-west-1", **CREDS)
    tokens: list[str] = []
    threads = [threading.Thread(target=lambda: tokens.append(source.token(now=NOW))) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(tokens)) == 1 and len(tokens) == 8


def test_a_token_source_shows_no_secret():
    source = EksTokenSource(cluster_name="prod", region="eu-west-1", session_token=SESSION, **CREDS)
    source.token(now=NOW)
    assert SECRET not in repr(source) and SESSION not in repr(source) and "k8s-aws-v1" not in repr(source)


# --- refused inputs -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "phrase"),
    [
        ({"cluster_name": "prod\r\nx-amz-security-token: x"}, "EKS cluster name"),
        ({"cluster_name": ""}, "EKS cluster name"),
        ({"cluster_name": "-prod"}, "EKS cluster name"),
        ({"cluster_name": "p" * 101}, "EKS cluster name"),
        ({"region": "eu-west-1.evil.example/"}, "not an AWS region"),
        ({"region": "EU-WEST-1"}, "not an AWS region"),
        ({"access_key_id": "AKIA EXAMPLE"}, "access key id"),
        ({"secret_access_key": ""}, "secret access key"),
        ({"secret_access_key": SECRET + "\n"}, "secret access key"),
        ({"session_token": "tok en"}, "session token"),
        ({"sts_endpoint_url": "ftp://sts.example"}, "STS endpoint URL"),
        ({"sts_endpoint_url": "https://sts.example/?x=1"}, "STS endpoint URL"),
        ({"sts_endpoint_url": "https://user:pw@sts.example"}, "STS endpoint URL"),
        ({"sts_endpoint_url": "https://sts.example:99999"}, "STS endpoint URL"),
    ],
)
def test_malformed_inputs_are_refused_without_echoing_a_secret(changes, phrase):
    arguments = {"cluster_name": "prod", "region": "eu-west-1", **CREDS, **changes}
    with pytest.raises(ValueError, match=phrase) as info:
        eks_token(**arguments, now=NOW)
    assert SECRET not in str(info.value)
    assert "tok en" not in str(info.value)
