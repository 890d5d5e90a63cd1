"""Settings come from the environment; production refuses to start without its secrets, in one sentence."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parents[2]


def _manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(
            ("DNSPORTAL_", "SECRET_KEY", "DATABASE_URL", "REDIS_URL", "ALLOWED_HOSTS", "DJANGO_")
        )
    }
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _production(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {
        "DNSPORTAL_MODE": "production",
        "SECRET_KEY": "k" * 20 + Fernet.generate_key().decode(),
        "DNSPORTAL_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "ALLOWED_HOSTS": "dns.example.com",
        "DATABASE_URL": "postgres://dnsportal:pw-not-used@db.example.com:5432/dnsportal",
        "REDIS_URL": "redis://redis.example.com:6379/0",
        "DNSPORTAL_DATA_DIR": str(tmp_path),
    }
    env.update(extra)
    return {k: v for k, v in env.items() if v != ""}


def test_check_deploy_with_production_settings_prints_nothing_to_fix(tmp_path):
    out = _manage(_production(tmp_path), "check", "--deploy")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "System check identified no issues (0 silenced)."
    assert out.stderr.strip() == ""


def test_production_without_secret_key_stops_with_one_sentence(tmp_path):
    out = _manage(_production(tmp_path, SECRET_KEY=""), "check")
    assert out.returncode != 0
    assert out.stderr.strip() == (
        "dnsportal: SECRET_KEY is not set; production mode needs a long random secret key."
    )


def test_production_without_encryption_key_stops_with_one_sentence(tmp_path):
    out = _manage(_production(tmp_path, DNSPORTAL_ENCRYPTION_KEYS=""), "check")
    assert out.returncode != 0
    assert out.stderr.strip().startswith("dnsportal: DNSPORTAL_ENCRYPTION_KEYS is not set;")
    assert out.stderr.strip().count("\n") == 0


def test_a_bad_value_names_its_variable(tmp_path):
    out = _manage({"DNSPORTAL_DATA_DIR": str(tmp_path), "DNSPORTAL_DEBUG": "maybe"}, "check")
    assert out.returncode != 0
    assert out.stderr.strip() == "dnsportal: DNSPORTAL_DEBUG must be true or false, not 'maybe'."


def test_secrets_can_come_from_files(tmp_path):
    key_file = tmp_path / "secret_key"
    key_file.write_text(Fernet.generate_key().decode() + Fernet.generate_key().decode())
    out = _manage(_production(tmp_path, SECRET_KEY="", SECRET_KEY_FILE=str(key_file)), "check", "--deploy")
    assert out.returncode == 0, out.stderr


def test_embedded_mode_needs_nothing_and_keeps_its_generated_keys(tmp_path):
    env = {"DNSPORTAL_DATA_DIR": str(tmp_path)}
    show = "from django.conf import settings as s; print(s.SECRET_KEY, s.ENCRYPTION_KEYS[0], s.DEBUG)"
    first = _manage(env, "shell", "-v", "0", "-c", show)
    second = _manage(env, "shell", "-v", "0", "-c", show)
    assert first.returncode == 0, first.stderr
    assert first.stdout == second.stdout  # generated once, then reused: encrypted data stays readable
    assert first.stdout.split()[2] == "False"  # DEBUG only when asked
    assert oct((tmp_path / "embedded-secrets.json").stat().st_mode & 0o777) == "0o600"


def test_a_database_other_than_postgresql_is_refused_in_one_sentence(tmp_path):
    for url in (f"sqlite:///{tmp_path}/db.sqlite3", "mysql://u:p@db.example.com/dnsportal"):
        out = _manage({"DNSPORTAL_DATA_DIR": str(tmp_path), "DATABASE_URL": url}, "check")
        assert out.returncode != 0
        scheme = url.split(":", 1)[0]
        assert out.stderr.strip() == (
            "dnsportal: DATABASE_URL must point at PostgreSQL (postgres://...), the only database dnsportal "
            f"runs on, not {scheme}."
        )
    assert not list(tmp_path.glob("*.sqlite3"))


def test_production_needs_a_database_url_and_a_redis_url(tmp_path):
    out = _manage(_production(tmp_path, DATABASE_URL=""), "check")
    assert out.stderr.strip() == "dnsportal: DATABASE_URL is not set; production mode needs a PostgreSQL URL."
    out = _manage(_production(tmp_path, REDIS_URL=""), "check")
    assert (
        out.stderr.strip() == "dnsportal: REDIS_URL is not set; production mode needs the URL of its Redis."
    )


def test_embedded_mode_uses_the_services_make_up_recorded_in_its_data_dir(tmp_path):
    show = (
        "from django.conf import settings as s; d = s.DATABASES['default']; "
        "print(d['ENGINE'], d['HOST'], d['PORT'] or '-', s.REDIS_URL)"
    )
    # Before `make up` ever ran here: the socket directory it would use, and a Redis URL nothing answers on
    # (never somebody else's Redis on 6379).
    out = _manage({"DNSPORTAL_DATA_DIR": str(tmp_path)}, "shell", "-v", "0", "-c", show)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [
        "django.db.backends.postgresql",
        str(tmp_path / "postgres"),
        "-",
        "redis://127.0.0.1:0/0",
    ]
    (tmp_path / "services.json").write_text('{"postgres": 15999, "redis": 16999}')
    out = _manage({"DNSPORTAL_DATA_DIR": str(tmp_path)}, "shell", "-v", "0", "-c", show)
    assert out.stdout.split() == [
        "django.db.backends.postgresql",
        "127.0.0.1",
        "15999",
        "redis://127.0.0.1:16999/0",
    ]
