"""Start real services on loopback for tests and the embedded portal: Redis, PostgreSQL, moto (Route53).

Each `start_*` returns a `Service` with its URL and a `stop()`; each binds a free port in a fresh directory
and waits for readiness with a deadline. A service that does not come up raises `ServiceError` with the tail
of its log, so a missing package or a bad flag is visible at once (tests fail on it; they never skip).

Children get PR_SET_PDEATHSIG, so a killed parent (pytest, `make up`) takes its services with it.

CLI: `python -m tools.services redis|postgres|moto` runs one in the foreground and prints its URL.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

PG_BIN = Path("/usr/lib/postgresql/15/bin")
_PR_SET_PDEATHSIG = 1


class ServiceError(RuntimeError):
    pass


def _die_with_parent() -> None:
    # Runs in the child between fork and exec: SIGTERM it when the process that started it dies.
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.2)
        return s.connect_ex((host, port)) == 0


@dataclass
class Service:
    name: str
    url: str
    port: int
    proc: subprocess.Popen
    workdir: Path
    log_path: Path
    stop_signal: int = signal.SIGTERM
    owns_workdir: bool = True
    extra: dict = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def running(self) -> bool:
        return self.proc.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self, timeout: float = 10.0) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(self.stop_signal)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self.owns_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)


def _wait(check: Callable[[], bool], svc: Service, deadline_s: float) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if svc.proc.poll() is not None:
            raise ServiceError(
                f"{svc.name} exited with code {svc.proc.returncode} while starting:\n{svc.log_tail()}"
            )
        try:
            if check():
                return
        except Exception:  # noqa: S110  (not ready yet; the deadline bounds the loop)
            pass
        time.sleep(0.05)
    svc.stop()
    raise ServiceError(f"{svc.name} was not ready within {deadline_s:.0f} s:\n{svc.log_tail()}")


def _require(path: str | Path, package: str) -> str:
    found = (
        shutil.which(str(path))
        if not Path(path).is_absolute()
        else (str(path) if Path(path).exists() else None)
    )
    if not found:
        raise ServiceError(
            f"{path} is missing: install the Debian package {package!r} (make test installs it)."
        )
    return found


def _popen(cmd: list[str], log_path: Path, cwd: Path, *, detach: bool = False) -> subprocess.Popen:
    """`detach`: a session of its own, so a Ctrl-C in `make up`'s terminal reaches only the supervisor, which
    stops the processes before the services they use (no traceback from a worker losing its database)."""
    log = open(log_path, "ab")  # noqa: SIM115  (the child keeps it open for its whole life)
    try:
        return subprocess.Popen(
            cmd,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=cwd,
            preexec_fn=_die_with_parent,
            start_new_session=detach,
        )
    finally:
        log.close()


def start_redis(
    workdir: Path | None = None, port: int | None = None, *, persistent: bool = False, detach: bool = False
) -> Service:
    """`persistent` (make up): an append-only file in `workdir`, so queued jobs survive a restart."""
    binary = _require("redis-server", "redis-server")
    owns = workdir is None
    workdir = Path(workdir or tempfile.mkdtemp(prefix="dnsportal-redis-"))
    workdir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    log_path = workdir / "redis.log"
    cmd = [
        binary,
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "yes" if persistent else "no",
        "--daemonize",
        "no",
        "--dir",
        str(workdir),
    ]
    svc = Service(
        "redis",
        f"redis://127.0.0.1:{port}/0",
        port,
        _popen(cmd, log_path, workdir, detach=detach),
        workdir,
        log_path,
        owns_workdir=owns,
    )

    def ready() -> bool:
        import redis

        client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=0.5, socket_connect_timeout=0.5)
        try:
            return bool(client.ping())
        finally:
            client.close()

    _wait(ready, svc, 15)
    return svc


def start_postgres(
    workdir: Path | None = None,
    port: int | None = None,
    dbname: str = "dnsportal",
    *,
    durable: bool = False,
    detach: bool = False,
) -> Service:
    """PostgreSQL as the `postgres` system user (it refuses root), trust auth on loopback only.

    Tests run it with fsync off (a test database needs no crash safety); `durable` (make up, whose data is
    kept between runs) leaves PostgreSQL's crash-safe defaults on.
    """
    initdb = _require(PG_BIN / "initdb", "postgresql")
    postgres = _require(PG_BIN / "postgres", "postgresql")
    owns = workdir is None
    workdir = Path(workdir or tempfile.mkdtemp(prefix="dnsportal-pg-"))
    workdir.mkdir(parents=True, exist_ok=True)
    pw = pwd.getpwnam("postgres")
    os.chown(workdir, pw.pw_uid, pw.pw_gid)
    port = port or free_port()
    data = workdir / "data"
    log_path = workdir / "postgres.log"
    as_postgres = (
        ["setpriv", f"--reuid={pw.pw_uid}", f"--regid={pw.pw_gid}", "--init-groups"]
        if os.getuid() == 0
        else []
    )
    if as_postgres:
        reach = subprocess.run([*as_postgres, "test", "-w", str(workdir)], check=False)
        if reach.returncode != 0:
            raise ServiceError(
                f"PostgreSQL runs as the system user 'postgres', which cannot write to {workdir} (a folder "
                "on the way is private to root); set DNSPORTAL_DATA_DIR to a directory it can reach, "
                "e.g. /var/lib/dnsportal."
            )
    if not data.exists():
        out = subprocess.run(
            [
                *as_postgres,
                initdb,
                "-D",
                str(data),
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
                "--no-sync",
                "--no-instructions",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if out.returncode != 0:
            raise ServiceError(f"initdb failed ({out.returncode}):\n{out.stdout}\n{out.stderr}")
    cmd = [
        *as_postgres,
        postgres,
        "-D",
        str(data),
        "-p",
        str(port),
        "-k",
        str(workdir),
        "-c",
        "listen_addresses=127.0.0.1",
        "-c",
        "max_connections=200",
    ]
    if not durable:
        cmd += ["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]
    # SIGINT is PostgreSQL's fast shutdown (SIGTERM waits for clients to leave).
    svc = Service(
        "postgres",
        f"postgres://postgres@127.0.0.1:{port}/{dbname}",
        port,
        _popen(cmd, log_path, workdir, detach=detach),
        workdir,
        log_path,
        stop_signal=signal.SIGINT,
        owns_workdir=owns,
    )

    def ready() -> bool:
        import psycopg

        with psycopg.connect(
            f"host=127.0.0.1 port={port} user=postgres dbname=postgres", connect_timeout=1, autocommit=True
        ) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [dbname]).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{dbname}"')
        return True

    _wait(ready, svc, 30)
    return svc


def start_moto(workdir: Path | None = None, port: int | None = None, *, detach: bool = False) -> Service:
    """moto in server mode: a real HTTP endpoint for boto3's `endpoint_url` (see testinfra.md)."""
    owns = workdir is None
    workdir = Path(workdir or tempfile.mkdtemp(prefix="dnsportal-moto-"))
    workdir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    log_path = workdir / "moto.log"
    moto = Path(sys.executable).with_name("moto_server")
    if not moto.exists():
        raise ServiceError(f"{moto} is missing: install the dev dependencies (make test does).")
    cmd = [str(moto), "-H", "127.0.0.1", "-p", str(port)]
    svc = Service(
        "moto",
        f"http://127.0.0.1:{port}",
        port,
        _popen(cmd, log_path, workdir, detach=detach),
        workdir,
        log_path,
        owns_workdir=owns,
    )

    def ready() -> bool:
        import requests

        return requests.get(f"{svc.url}/moto-api/", timeout=0.5).status_code == 200

    _wait(ready, svc, 20)
    return svc


STARTERS: dict[str, Callable[..., Service]] = {
    "redis": start_redis,
    "postgres": start_postgres,
    "moto": start_moto,
}


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] not in STARTERS:
        print(f"usage: python -m tools.services {{{','.join(STARTERS)}}}", file=sys.stderr)
        return 2
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})  # sigwait needs them blocked
    svc = STARTERS[argv[0]]()
    print(f"{svc.name} ready at {svc.url} (pid {svc.pid}); Ctrl-C stops it", flush=True)
    try:
        signal.sigwait({signal.SIGINT, signal.SIGTERM})
    finally:
        svc.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
