"""Benchmark: how long `make up` takes until the demo clusters show healthy, first and again.

`make up` runs in this checkout as the README says, with an empty data directory of its own (a temporary one,
so a developer's `var/` is untouched) and a free port. The clock runs from the command's start until the
dashboard, logged in as the printed admin, shows the three demo clusters healthy. Then Ctrl-C, and the
same again with the data directory kept: PostgreSQL's data, the demo clusters' etcd and keys are reused.

The kube-apiserver and etcd binaries are whatever this checkout has (`make test` or a first `make up` builds
them; with Go's build cache warm a rebuild is a relink). Prints `name: value unit` lines, headline last.

    .venv/bin/python bench/up.py            # both starts
    .venv/bin/python bench/up.py --quick    # the same (a start has no size to shrink); for CI
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tools.services import free_port  # noqa: E402

LOGIN = re.compile(r"\[up\]\s+admin\s+username (\S+)\s+password (\S+)")
HEALTHY = re.compile(r'class="health healthy"')


def _env(data_dir: Path, port: int) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DATABASE_URL", "REDIS_URL", "DNSPORTAL_", "DJANGO_", "LOG_"))
    }
    return {**env, "DNSPORTAL_DATA_DIR": str(data_dir), "DNSPORTAL_PORT": str(port)}


def _login(url: str, username: str, password: str) -> requests.Session | None:
    session = requests.Session()
    try:
        page = session.get(f"{url}/login/", timeout=5)
    except requests.RequestException:
        return None
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
    if not token:
        return None
    session.post(
        f"{url}/login/",
        data={"username": username, "password": password, "csrfmiddlewaretoken": token[1]},
        timeout=5,
    )
    return session if "sessionid" in session.cookies else None


def start(data_dir: Path, creds: list[str], timeout: float) -> tuple[float, subprocess.Popen, list[str]]:
    """Seconds from `make up` to three healthy demo clusters on the dashboard; the process, its output."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    began = time.monotonic()
    proc = subprocess.Popen(
        ["make", "up"],
        cwd=ROOT,
        env=_env(data_dir, port),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")), daemon=True).start()
    session = None
    while time.monotonic() - began < timeout:
        if proc.poll() is not None:
            raise SystemExit("make up exited:\n" + "".join(lines[-60:]))
        if not creds and (match := LOGIN.search("".join(lines))):
            creds += match.groups()
        if creds and session is None:
            session = _login(url, *creds)
        if session is not None:
            page = session.get(f"{url}/", timeout=5).text
            if len(HEALTHY.findall(page)) >= 3:
                return time.monotonic() - began, proc, lines
        time.sleep(0.25)
    stop(proc)
    raise SystemExit(f"the demo clusters were not healthy within {timeout:.0f} s:\n" + "".join(lines[-60:]))


def stop(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="the same run (kept for the benches' interface)")
    parser.add_argument("--timeout", type=float, default=900)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="dnsportal-bench-up-"))
    tmp.chmod(0o755)  # PostgreSQL runs as the postgres user and must reach its data directory
    creds: list[str] = []
    try:
        first, proc, _ = start(tmp / "data", creds, args.timeout)
        stop(proc)
        again, proc, _ = start(tmp / "data", creds, args.timeout)
        stop(proc)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"up_first_seconds: {first:.1f} s")
    print(f"up_again_seconds: {again:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
