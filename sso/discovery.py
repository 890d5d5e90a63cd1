"""The provider's endpoints, read from its discovery document (`<issuer>/.well-known/openid-configuration`).

Read when a login starts or comes back, never at start-up: a provider that is down stops single sign-on only,
not the portal (local accounts still log in). Kept for an hour per issuer; a failure is not kept.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import requests

CACHE_SECONDS = 3600
_cache: dict[str, tuple[float, ProviderMetadata]] = {}
_lock = threading.Lock()


class DiscoveryError(Exception):
    """The discovery document could not be read or is not one; the message says which, for a person."""


@dataclass(frozen=True, slots=True)
class ProviderMetadata:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    userinfo_endpoint: str
    jwks_uri: str


def provider_metadata(issuer: str, *, timeout: float) -> ProviderMetadata:
    now = time.monotonic()
    with _lock:
        hit = _cache.get(issuer)
    if hit and now - hit[0] < CACHE_SECONDS:
        return hit[1]
    url = f"{issuer}/.well-known/openid-configuration"
    try:
        response = requests.get(url, timeout=timeout, headers={"Accept": "application/json"})
    except requests.RequestException as exc:
        raise DiscoveryError(f"{url} could not be reached ({type(exc).__name__}).") from None
    if response.status_code != 200:
        raise DiscoveryError(f"{url} answered HTTP {response.status_code}.")
    try:
        doc = response.json()
    except ValueError:
        raise DiscoveryError(f"{url} did not answer JSON.") from None
    if not isinstance(doc, dict):
        raise DiscoveryError(f"{url} did not answer a JSON object.")
    # OpenID Connect Discovery 1.0, 4.3: the document's issuer must be exactly the one configured.
    if doc.get("issuer") != issuer:
        raise DiscoveryError(
            f"{url} names the issuer {doc.get('issuer')!r}, not {issuer!r}; set DNSPORTAL_OIDC_ISSUER to "
            "the provider's issuer exactly."
        )
    fields = ("authorization_endpoint", "token_endpoint", "userinfo_endpoint", "jwks_uri")
    missing = [f for f in fields if not isinstance(doc.get(f), str) or not doc[f]]
    if missing:
        raise DiscoveryError(f"{url} names no {', '.join(missing)}.")
    meta = ProviderMetadata(issuer=issuer, **{f: doc[f] for f in fields})
    with _lock:
        _cache[issuer] = (now, meta)
    return meta


def forget(issuer: str | None = None) -> None:
    """Drop the kept documents (one issuer's, or all): tests start providers on new ports."""
    with _lock:
        if issuer is None:
            _cache.clear()
        else:
            _cache.pop(issuer, None)
