"""The HTTP side of the command line: configuration, requests with the token, errors as exit codes."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

# Exit codes a script can rely on (README, "Command line").
OK, FAILED, USAGE, REFUSED, NOT_FOUND, CONFLICT, RATE_LIMITED, UNAVAILABLE, TIMEOUT = (
    0,
    1,
    2,
    3,
    4,
    5,
    6,
    7,
    8,
)
_STATUS_EXIT = {400: USAGE, 401: REFUSED, 403: REFUSED, 404: NOT_FOUND, 409: CONFLICT, 429: RATE_LIMITED}


class CliError(Exception):
    """A refusal or failure to print on stderr, with the exit code it maps to."""

    def __init__(self, message: str, code: int, fields: dict[str, list[str]] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.fields = fields or {}


@dataclass(frozen=True)
class Config:
    url: str
    token: str
    timeout: float = 90.0


def load_config(url: str | None = None, token: str | None = None) -> Config:
    """Flags first, then DNSPORTAL_URL / DNSPORTAL_TOKEN, then the config file's `url` and `token`."""
    path = Path(os.environ.get("DNSPORTAL_CONFIG") or Path.home() / ".config" / "dnsportal" / "config.toml")
    data: dict[str, Any] = {}
    if path.is_file():
        try:
            data = tomllib.loads(path.read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise CliError(f"{path} is not a readable TOML file ({exc}).", USAGE) from None
    url = url or os.environ.get("DNSPORTAL_URL") or data.get("url") or ""
    token = token or os.environ.get("DNSPORTAL_TOKEN") or data.get("token") or ""
    if not url:
        raise CliError(f"Set DNSPORTAL_URL (e.g. http://127.0.0.1:8000) or `url` in {path}.", USAGE)
    if not token:
        raise CliError(
            f"Set DNSPORTAL_TOKEN to a personal API token (Your account → API tokens) or `token` in {path}.",
            USAGE,
        )
    return Config(url=url.rstrip("/"), token=token)


class Api:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.session = requests.Session()
        self.session.headers.update(
            {
                "Authorization": f"Bearer {config.token}",
                "Accept": "application/json",
                "User-Agent": "dnsportal-cli",
            }
        )

    def request(self, method: str, path: str, *, params: dict | None = None, body: Any = None) -> Any:
        url = path if path.startswith("http") else f"{self.config.url}/api/v1/{path.lstrip('/')}"
        clean = {k: v for k, v in (params or {}).items() if v not in (None, "", False)}
        try:
            response = self.session.request(
                method, url, params=clean, json=body, timeout=self.config.timeout + 30
            )
        except requests.RequestException as exc:
            raise CliError(
                f"Cannot reach {self.config.url}: {exc.__class__.__name__}.", UNAVAILABLE
            ) from None
        if response.status_code == 204:
            return None
        try:
            data = response.json()
        except ValueError:
            data = None
        if response.ok:
            return data
        error = data.get("error") if isinstance(data, dict) else ""
        fields = data.get("fields") if isinstance(data, dict) else {}
        code = _STATUS_EXIT.get(response.status_code, UNAVAILABLE)
        raise CliError(error or f"HTTP {response.status_code} from {url}", code, fields)

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params=params)

    def post(self, path: str, body: Any = None) -> Any:
        return self.request("POST", path, body={} if body is None else body)

    def pages(self, path: str, limit: int | None = None, **params: Any) -> list[dict]:
        """Every row of a cursor-paginated list (or the first `limit`)."""
        rows: list[dict] = []
        page = self.get(path, **params)
        while True:
            rows.extend(page["results"])
            if not page.get("next") or (limit and len(rows) >= limit):
                return rows[:limit] if limit else rows
            page = self.request("GET", page["next"])
