"""What the benches that run the portal share: PostgreSQL and Redis on loopback, Django set up on them."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

from tools.services import Service, start_postgres, start_redis

ROOT = Path(__file__).resolve().parent.parent


def start_portal(tmp: Path, *, as_deployed: bool = False) -> tuple[Service, Service]:
    """Start PostgreSQL and Redis under `tmp`, point Django at them and migrate; returns (pg, redis).
    `as_deployed`: crash-safe, as `make up` and docker-compose.yml run them (Redis keeps an append-only file,
    PostgreSQL syncs each commit); else fast, for benches that kill neither."""
    pg = start_postgres(tmp / "pg", durable=as_deployed)
    redis = start_redis(tmp / "redis", persistent=as_deployed)
    os.environ.update(
        DATABASE_URL=pg.url,
        REDIS_URL=redis.url,
        DNSPORTAL_DATA_DIR=str(tmp / "data"),
        DJANGO_SETTINGS_MODULE="dnsportal.settings",
        LOG_LEVEL="WARNING",
    )
    import django

    django.setup()
    # Benches send many requests at once; urllib3 says so at WARNING when its pool of 10 connections is full.
    logging.getLogger("urllib3.connectionpool").setLevel(logging.ERROR)
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    return pg, redis


def start_manage(tmp: Path, db_url: str, redis_url: str, *args: str, log_name: str = "") -> subprocess.Popen:
    """`manage.py ARGS` as its own process, as `make up` and docker-compose.yml run the portal's processes, on
    the bench's PostgreSQL and Redis; its output goes to `tmp/<log_name or first arg>.log`."""
    return start_program(tmp, db_url, redis_url, [sys.executable, "manage.py", *args], log_name or args[0])


def start_program(tmp: Path, db_url: str, redis_url: str, argv: list[str], log_name: str) -> subprocess.Popen:
    """A program of the portal (`manage.py …`, gunicorn) on the bench's PostgreSQL and Redis, from the
    checkout; its output goes to `tmp/<log_name>.log` (appended: a restarted process keeps one log)."""
    env = {**os.environ, "DATABASE_URL": db_url, "REDIS_URL": redis_url}
    log = open(tmp / f"{log_name}.log", "ab")  # noqa: SIM115 - the child keeps it open
    return subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
