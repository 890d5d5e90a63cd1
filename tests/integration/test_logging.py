"""Logs are JSON lines with the request or job id, and no secret from the settings ever appears in them."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from dnsportal.logging import ContextFilter, JsonFormatter

ROOT = Path(__file__).resolve().parents[2]

SECRET = "sk-" + "Zq8v" * 12
ENC_KEY = Fernet.generate_key().decode()
DB_PASSWORD = "pg-pass-Xy7Lm2Qa"


def test_a_secret_placed_in_a_setting_never_appears_in_the_logs(tmp_path):
    script = """
import logging
from django.conf import settings
log = logging.getLogger("dnsportal.test")
log.warning("secret key is %s", settings.SECRET_KEY)
log.warning("keys: " + ",".join(settings.ENCRYPTION_KEYS))
log.warning("db: %s", settings.DATABASES["default"])
try:
    raise ValueError("connect failed for " + settings.DATABASE_URL)
except ValueError:
    log.exception("oops")
"""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("DNSPORTAL_", "DATABASE_URL", "SECRET_KEY"))
    }
    env.update(
        {
            "SECRET_KEY": SECRET,
            "DNSPORTAL_ENCRYPTION_KEYS": ENC_KEY,
            "DATABASE_URL": f"postgres://portal:{DB_PASSWORD}@127.0.0.1:1/x",
            "DNSPORTAL_DATA_DIR": str(tmp_path),
        }
    )
    out = subprocess.run(
        [sys.executable, "manage.py", "shell", "-v", "0", "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    lines = [json.loads(line) for line in out.stderr.splitlines() if line.startswith("{")]
    assert len(lines) == 4
    text = out.stderr
    for secret in (SECRET, ENC_KEY, DB_PASSWORD):
        assert secret not in text
    assert lines[0]["msg"] == "secret key is [redacted]"
    assert "[redacted]" in lines[3]["exc"]


@pytest.fixture
def captured() -> io.StringIO:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(ContextFilter())
    root = logging.getLogger()
    root.addHandler(handler)
    yield stream
    root.removeHandler(handler)


def test_request_log_lines_carry_the_request_id(client, db, captured):
    client.get("/no-such-page/", HTTP_X_REQUEST_ID="req-abcdef123")
    lines = [json.loads(line) for line in captured.getvalue().splitlines()]
    assert any(line.get("request_id") == "req-abcdef123" and "Not Found" in line["msg"] for line in lines)


@pytest.mark.django_db(transaction=True)
def test_job_log_lines_carry_the_job_id(captured):
    from dnsportal import queue
    from tests import jobs_for_tests  # noqa: F401  (registers test_echo)

    run = queue.enqueue("test_echo", value=9)
    queue.execute(run.id)
    lines = [json.loads(line) for line in captured.getvalue().splitlines()]
    echo = [line for line in lines if line["msg"] == "echo 9"]
    assert echo and echo[0]["job_id"] == str(run.id)
