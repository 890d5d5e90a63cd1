"""The deployment files: the compose file is checked for what a deployment needs, the Dockerfile too.

No Docker engine exists here; `docker compose config` is used where the client has the compose plugin, and the
YAML is checked by loading it in every case.
"""

from __future__ import annotations

import fnmatch
import os
import shutil
import subprocess
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
ENV = {"SECRET_KEY": "s" * 50, "DNSPORTAL_ENCRYPTION_KEYS": "k", "POSTGRES_PASSWORD": "p"}


def _compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def _has_compose_plugin() -> bool:
    if not shutil.which("docker"):
        return False
    return subprocess.run(["docker", "compose", "version"], capture_output=True, check=False).returncode == 0


def test_compose_file_validates():
    if _has_compose_plugin():
        out = subprocess.run(
            ["docker", "compose", "-f", str(ROOT / "docker-compose.yml"), "config", "-q"],
            env={**os.environ, **ENV},
            capture_output=True,
            text=True,
            check=False,
        )
        assert out.returncode == 0, out.stderr
    compose = _compose()
    services = compose["services"]
    assert set(services) >= {"postgres", "redis", "migrate", "web", "worker", "scheduler", "watch"}
    assert services["postgres"]["image"].startswith("postgres:")
    assert services["redis"]["image"].startswith("redis:")
    for name in ("postgres", "redis", "web"):
        assert services[name]["healthcheck"]["test"], f"{name} has no health check"
    assert set(compose["volumes"]) == {"postgres-data", "redis-data", "metrics"}


def test_compose_portal_services_share_image_and_environment():
    services = _compose()["services"]
    commands = {
        "migrate": ["python", "manage.py", "migrate", "--no-input"],
        "worker": [
            "python",
            "manage.py",
            "rqworker",
            "default",
            "discovery",
            "dns",
            "verify",
            "--with-scheduler",
        ],
        "scheduler": ["python", "manage.py", "scheduler"],
        "watch": ["python", "manage.py", "watch"],
    }
    for name in ("migrate", "web", "worker", "scheduler", "watch"):
        svc = services[name]
        assert svc["build"] == "." and svc["image"] == "dnsportal:latest"
        env = svc["environment"]
        assert env["DNSPORTAL_MODE"] == "production"
        assert env["REDIS_URL"] == "redis://redis:6379/0"
        assert env["DATABASE_URL"].startswith("postgres://dnsportal:")
        # Secrets are required from the environment (.env), never written into the file.
        assert env["SECRET_KEY"].startswith("${SECRET_KEY:?")
        assert env["DNSPORTAL_ENCRYPTION_KEYS"].startswith("${DNSPORTAL_ENCRYPTION_KEYS:?")
        if name in commands:
            assert svc["command"] == commands[name]
    assert services["web"]["command"][0] == "gunicorn"
    assert services["web"]["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
    # Every command names a management command that exists.
    for name in ("migrate", "worker", "scheduler", "watch"):
        command = services[name]["command"][2]
        out = subprocess.run(
            [str(ROOT / ".venv/bin/python"), "manage.py", "help", command],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        assert out.returncode == 0, f"{command}: {out.stderr}"


def test_dockerfile_is_multi_stage_and_runs_as_a_non_root_user():
    text = (ROOT / "Dockerfile").read_text()
    stages = [line for line in text.splitlines() if line.startswith("FROM ")]
    assert len(stages) == 2 and " AS build" in stages[0]
    user_lines = [line for line in text.splitlines() if line.startswith("USER ")]
    assert user_lines and user_lines[-1] != "USER root"
    assert "collectstatic" in text and "HEALTHCHECK" in text


def test_the_image_leaves_out_the_test_tools_make_test_builds():
    """kube-apiserver, ExternalDNS and Helm binaries (hundreds of MB) and the OpenID provider's node_modules
    are test tools: the build context must not carry them into the image."""
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    built = [f"tools/{d.name}/bin" for d in (ROOT / "tools").iterdir() if (d / "build.sh").exists()]
    built += ["tools/oidc_provider/node_modules"]
    assert len(built) >= 4
    for path in built:
        assert any(fnmatch.fnmatch(path, p) for p in patterns), f"{path} is not in .dockerignore"
