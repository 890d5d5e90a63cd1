"""EKS bearer tokens made by the portal itself, as `aws eks get-token` makes them: the one substitute rule 6
allows for an exec plugin.

A token is "k8s-aws-v1." + base64url (no padding) of a presigned STS GetCallerIdentity URL whose SigV4
signature covers the header `x-k8s-aws-id: <cluster name>`. The EKS authenticator replays that URL against STS
to learn who signed it, and the header binds the token to one cluster. X-Amz-Expires is 60 as aws-cli writes
it; EKS accepts the token for 15 minutes after X-Amz-Date, and aws-cli reports it expiring after 14, the
margin kept here.

Signing is local computation with botocore's SigV4 query signer: no network, and no botocore session, so
neither environment variables (AWS_ENDPOINT_URL_STS, AWS_STS_REGIONAL_ENDPOINTS, AWS_PROFILE) nor ~/.aws files
can change the endpoint or the credentials used.
"""

from __future__ import annotations

import base64
import datetime as dt
import re
import threading
from functools import cache
from urllib.parse import urlsplit

from botocore.auth import SIGV4_TIMESTAMP, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.loaders import Loader

TOKEN_PREFIX = "k8s-aws-v1."  # noqa: S105 - the format marker, not a credential
CLUSTER_ID_HEADER = "x-k8s-aws-id"
URL_EXPIRES_SECONDS = 60
TOKEN_LIFETIME = dt.timedelta(minutes=14)  # EKS accepts 15 minutes; renew one minute before

_CLUSTER_NAME = re.compile(r"[0-9A-Za-z][0-9A-Za-z_-]{0,99}")  # EKS names, and Outposts cluster ids
_REGION = re.compile(r"[a-z]{2,4}(-[a-z]+)+-\d{1,2}")  # eu-west-1, us-gov-west-1, eusc-de-east-1
_ACCESS_KEY_ID = re.compile(r"[A-Za-z0-9]{1,128}")


def eks_token(
    *,
    cluster_name: str,
    region: str,
    access_key_id: str,
    secret_access_key: str,
    session_token: str | None = None,
    sts_endpoint_url: str | None = None,
    now: dt.datetime | None = None,
) -> tuple[str, dt.datetime]:
    """The bearer token `aws eks get-token` makes: a presigned STS GetCallerIdentity URL (signed with header
    x-k8s-aws-id=<cluster>, valid 60 s to present, accepted by EKS for 15 min), base64url without padding,
    prefixed. Returns (token, expires_at) where expires_at is when the portal must make a new one (14 min
    after signing).

    The URL goes to the regional STS endpoint (`sts.<region>.amazonaws.com`, `.amazonaws.com.cn` in China)
    unless `sts_endpoint_url` names another (a VPC endpoint, FIPS, a test server). `now` is the signing time
    (default: the clock; a naive datetime is taken as UTC). Raises ValueError for a malformed input; the
    message never contains a credential.
    """
    if not isinstance(cluster_name, str) or not _CLUSTER_NAME.fullmatch(cluster_name):
        raise ValueError(
            "an EKS cluster name is 1 to 100 letters, digits, '-' or '_', starting with a letter or digit"
        )
    if not isinstance(region, str) or not _REGION.fullmatch(region):
        raise ValueError(f"{region!r:.40} is not an AWS region name such as eu-west-1")
    if not isinstance(access_key_id, str) or not _ACCESS_KEY_ID.fullmatch(access_key_id):
        raise ValueError("the AWS access key id must be letters and digits only")
    if not isinstance(secret_access_key, str) or not _is_clean(secret_access_key):
        raise ValueError("the AWS secret access key is empty or contains spaces or control characters")
    if session_token is not None and (not isinstance(session_token, str) or not _is_clean(session_token)):
        raise ValueError("the AWS session token is empty or contains spaces or control characters")
    endpoint = _endpoint(sts_endpoint_url, region)

    signed_at = dt.datetime.now(dt.UTC) if now is None else now
    signed_at = (signed_at.replace(tzinfo=dt.UTC) if signed_at.tzinfo is None else signed_at).astimezone(
        dt.UTC
    )
    signed_at = signed_at.replace(microsecond=0)  # X-Amz-Date has whole seconds; expires_at says the same

    request = AWSRequest(
        method="GET",
        url=endpoint + "/",
        params={"Action": "GetCallerIdentity", "Version": "2011-06-15"},
        headers={CLUSTER_ID_HEADER: cluster_name},
    )
    signer = _SigV4QueryAuthAt(
        Credentials(access_key_id, secret_access_key, session_token),
        "sts",
        region,
        expires=URL_EXPIRES_SECONDS,
        signed_at=signed_at,
    )
    signer.add_auth(request)
    url = request.prepare().url
    token = TOKEN_PREFIX + base64.urlsafe_b64encode(url.encode()).decode().rstrip("=")
    return token, signed_at + TOKEN_LIFETIME


class EksTokenSource:
    """One cluster's token, made on first use and made again once it is due: what the per-cluster ApiClient
    asks before each request (e.g. from `Configuration.refresh_api_key_hook`). Thread-safe."""

    __slots__ = ("_credentials", "_expires_at", "_lock", "_token")

    def __init__(
        self,
        *,
        cluster_name: str,
        region: str,
        access_key_id: str,
        secret_access_key: str,
        session_token: str | None = None,
        sts_endpoint_url: str | None = None,
    ) -> None:
        self._credentials = {
            "cluster_name": cluster_name,
            "region": region,
            "access_key_id": access_key_id,
            "secret_access_key": secret_access_key,
            "session_token": session_token,
            "sts_endpoint_url": sts_endpoint_url,
        }
        self._lock = threading.Lock()
        self._token: str | None = None
        self._expires_at: dt.datetime | None = None

    def __repr__(self) -> str:  # never the credentials or the token
        return f"EksTokenSource(cluster_name={self._credentials['cluster_name']!r})"

    def token(self, now: dt.datetime | None = None) -> str:
        """The current token; a new one when none was made yet or the last one is due (its expires_at)."""
        now = dt.datetime.now(dt.UTC) if now is None else now
        if now.tzinfo is None:
            now = now.replace(tzinfo=dt.UTC)
        with self._lock:
            if self._token is None or self._expires_at is None or now >= self._expires_at:
                self._token, self._expires_at = eks_token(**self._credentials, now=now)
            return self._token

    @property
    def expires_at(self) -> dt.datetime | None:
        """When the current token is due (None before the first)."""
        return self._expires_at


class _SigV4QueryAuthAt(SigV4QueryAuth):
    """botocore's SigV4 presigner (the one `generate_presigned_url` uses) with the signing time given instead
    of read from the clock, so a token and its expiry agree and tests can fix the time."""

    def __init__(
        self,
        credentials: Credentials,
        service_name: str,
        region_name: str,
        *,
        expires: int,
        signed_at: dt.datetime,
    ) -> None:
        super().__init__(credentials, service_name, region_name, expires=expires)
        self._signed_at = signed_at

    def add_auth(self, request: AWSRequest) -> None:
        # SigV4Auth.add_auth with the time fixed, and without its debug logging of the canonical request,
        # which holds the session token
        request.context["timestamp"] = self._signed_at.strftime(SIGV4_TIMESTAMP)
        self._modify_request_before_signing(request)
        canonical_request = self.canonical_request(request)
        string_to_sign = self.string_to_sign(request, canonical_request)
        self._inject_signature_to_request(request, self.signature(string_to_sign, request))


def _endpoint(sts_endpoint_url: str | None, region: str) -> str:
    if sts_endpoint_url is None:
        return f"https://sts.{region}.{_dns_suffix(region)}"
    if not isinstance(sts_endpoint_url, str) or not _is_clean(sts_endpoint_url):
        raise ValueError("the STS endpoint URL is empty or contains spaces or control characters")
    try:
        parts = urlsplit(sts_endpoint_url)
        host = parts.hostname
        _ = parts.port  # raises for a port that is not a number
    except ValueError:
        raise ValueError("the STS endpoint URL cannot be read as a URL") from None
    if parts.scheme not in ("https", "http") or not host or parts.query or parts.fragment or parts.username:
        raise ValueError("the STS endpoint URL must be http(s)://host[:port][/path], without query or user")
    return sts_endpoint_url.rstrip("/")


@cache
def _dns_suffix(region: str) -> str:
    """amazonaws.com, amazonaws.com.cn (China), …: from the partition data botocore ships (not ~/.aws)."""
    loader = Loader(extra_search_paths=[Loader.BUILTIN_DATA_PATH], include_default_search_paths=False)
    partitions = loader.load_data("partitions")["partitions"]
    for partition in partitions:
        if region in partition.get("regions", {}):
            return partition["outputs"]["dnsSuffix"]
    for partition in partitions:
        if re.fullmatch(partition["regionRegex"], region):
            return partition["outputs"]["dnsSuffix"]
    return "amazonaws.com"


def _is_clean(value: str) -> bool:
    return bool(value) and not any(c.isspace() or not c.isprintable() for c in value)
