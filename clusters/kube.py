"""One Kubernetes `ApiClient` per cluster, built in memory from its stored credentials.

Never the process-wide default configuration (`kubernetes.config.load_*` would make every cluster share one
global), never a temporary file on disk: the CA, client certificate and key go into memfd files (anonymous
memory, gone when closed) that the client's TLS layer reads through /proc/self/fd. Every request has a connect
and a read timeout, and connection errors are not retried behind the caller's back, so an unreachable cluster
is reported within the timeout.
"""

from __future__ import annotations

import contextlib
import os
import ssl
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

import urllib3
from kubernetes import client as k8s

from clusters.kubeconfig import ClusterAccess
from dnsportal.logging import register_secret

CONNECT_TIMEOUT_S = 5.0
READ_TIMEOUT_S = 15.0


class _MemFiles:
    """PEM blobs as memfd files: a path for libraries that only take paths, no bytes on disk."""

    def __init__(self) -> None:
        self._fds: list[int] = []

    def path(self, name: str, data: bytes) -> str:
        fd = os.memfd_create(name, os.MFD_CLOEXEC)
        os.write(fd, data)
        self._fds.append(fd)
        return f"/proc/self/fd/{fd}"

    def close(self) -> None:
        for fd in self._fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        self._fds.clear()


@dataclass
class EksCredentials:
    cluster_name: str
    region: str
    access_key_id: str
    secret_access_key: str
    session_token: str | None = None
    sts_endpoint_url: str | None = None
    _token: str = field(default="", repr=False)
    _expires: datetime | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def bearer(self) -> str:
        """A current EKS token, made again shortly before the old one expires."""
        from clusters.eks import eks_token

        with self._lock:
            if not self._token or self._expires is None or datetime.now(UTC) >= self._expires:
                self._token, self._expires = eks_token(
                    cluster_name=self.cluster_name,
                    region=self.region,
                    access_key_id=self.access_key_id,
                    secret_access_key=self.secret_access_key,
                    session_token=self.session_token,
                    sts_endpoint_url=self.sts_endpoint_url,
                )
                register_secret(self._token)
            return self._token


class ClusterClient:
    """An ApiClient for one cluster plus what must be released with it (use as a context manager)."""

    def __init__(
        self,
        access: ClusterAccess,
        *,
        eks: EksCredentials | None = None,
        connect_timeout: float = CONNECT_TIMEOUT_S,
        read_timeout: float = READ_TIMEOUT_S,
    ) -> None:
        self.access = access
        self._files = _MemFiles()
        cfg = k8s.Configuration()
        cfg.host = access.server
        cfg.verify_ssl = not access.insecure_skip_tls_verify
        if access.ca_data:
            cfg.ssl_ca_cert = self._files.path("ca.crt", access.ca_data)
        if access.client_cert_data and access.client_key_data:
            cfg.cert_file = self._files.path("client.crt", access.client_cert_data)
            cfg.key_file = self._files.path("client.key", access.client_key_data)
        if access.tls_server_name:
            cfg.tls_server_name = access.tls_server_name
        # Client 36 reads the bearer token and its prefix under "BearerToken" (older ones: "authorization").
        cfg.api_key_prefix = {"BearerToken": "Bearer"}
        if access.token:
            register_secret(access.token)
            cfg.api_key = {"BearerToken": access.token}
        if eks is not None:
            cfg.api_key = {"BearerToken": eks.bearer()}

            def refresh(conf: k8s.Configuration) -> None:
                conf.api_key = {"BearerToken": eks.bearer()}

            cfg.refresh_api_key_hook = refresh
        # Connection errors come back at once, within the timeout, instead of three silent retries.
        cfg.retries = False
        self.api = k8s.ApiClient(configuration=cfg)
        # Default timeouts for every request that does not pass `_request_timeout` itself (watches do).
        self.api.rest_client.pool_manager.connection_pool_kw["timeout"] = urllib3.Timeout(
            connect=connect_timeout, read=read_timeout
        )
        self.timeout = (connect_timeout, read_timeout)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.api.close()
        self._files.close()

    def __enter__(self) -> ClusterClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def describe_error(exc: BaseException, server: str) -> str:
    """One sentence saying why the cluster did not answer, distinct per cause (CA, port, token...)."""
    from kubernetes.client.exceptions import ApiException

    chain = _chain(exc)
    api_error = next((e for e in chain if isinstance(e, ApiException) and e.status), None)
    if api_error is not None:
        if api_error.status == 401:
            return (
                f"The API server at {server} rejected the credentials (401 Unauthorized): "
                "the token or client certificate is invalid or expired."
            )
        if api_error.status == 403:
            return f"The API server at {server} refused the request (403 Forbidden): {api_error.reason}."
        return f"The API server at {server} answered {api_error.status} {api_error.reason}."
    # The client turns transport errors into ApiException(status=0, reason=<the error>) and then, for want of
    # a body, sometimes fails with an AttributeError on top: read the whole chain, not the last exception.
    text = " ".join(f"{e!r} {e} {getattr(e, 'reason', '')}" for e in chain)
    if any(isinstance(e, ssl.SSLCertVerificationError) for e in chain) or "CERTIFICATE_VERIFY_FAILED" in text:
        detail = "certificate verify failed"
        if "hostname" in text.lower() or "IP address mismatch" in text:
            detail = "the certificate does not match the server's name"
        return (
            f"TLS error talking to {server}: the server's certificate is not trusted by the CA in the "
            f"kubeconfig ({detail})."
        )
    if "Connection refused" in text or "ConnectionRefusedError" in text:
        return f"Cannot connect to {server}: connection refused (nothing listens on that port)."
    if "timed out" in text.lower() or "Timeout" in text:
        return f"No answer from {server} within the timeout."
    if "Name or service not known" in text or "nodename nor servname" in text or "NameResolution" in text:
        return f"Cannot resolve the host name of {server}."
    if any(isinstance(e, ssl.SSLError) for e in chain) or "SSLError" in text:
        return f"TLS error talking to {server}: the TLS handshake failed."
    return f"Cannot reach {server}: {chain[-1].__class__.__name__}."


def _chain(exc: BaseException) -> list[BaseException]:
    """The exception and everything it was raised from or during, outermost first."""
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def elapsed_ms(start: float) -> int:
    return int((time.monotonic() - start) * 1000)
