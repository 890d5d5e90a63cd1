"""Structured logs: one JSON object per line, with the request id or job id, and secrets redacted.

The id comes from a context variable that RequestIdMiddleware sets for a request and `queue.execute` sets for
a job, so every line a request or job writes can be found by that id. Redaction runs on the final text
(message, arguments and traceback), so a secret that slips into an exception message is caught too.
"""

from __future__ import annotations

import contextvars
import json
import logging
from datetime import UTC, datetime

from dnsportal.env import SECRET_VALUES

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")
job_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("job_id", default="")

REDACTED = "[redacted]"
# Short values (a 4-character password) would redact ordinary words; such secrets are too weak to matter here.
_MIN_SECRET_LEN = 6


def register_secret(value: str | None) -> None:
    """Make sure `value` is redacted from every later log line (e.g. a token just decrypted)."""
    if value and len(value) >= _MIN_SECRET_LEN:
        SECRET_VALUES.add(value)


def redact(text: str) -> str:
    # Longest first, so a secret containing another secret is removed whole.
    for secret in sorted(SECRET_VALUES, key=len, reverse=True):
        if len(secret) >= _MIN_SECRET_LEN and secret in text:
            text = text.replace(secret, REDACTED)
    return text


class ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        record.job_id = job_id_var.get()
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key in ("request_id", "job_id"):
            value = getattr(record, key, "") or ""
            if value:
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return redact(json.dumps(entry, default=str))


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s [%(request_id)s%(job_id)s] %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        record.request_id = getattr(record, "request_id", "")
        record.job_id = getattr(record, "job_id", "")
        return redact(super().format(record))
