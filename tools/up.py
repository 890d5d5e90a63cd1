"""`make up`: the whole portal on the embedded defaults, in the foreground, until Ctrl-C.

Starts Redis (unless REDIS_URL already answers), migrates, creates a demo admin on first start (printing its
password once), then runs web + worker + scheduler + watch (and, with DNSPORTAL_DEMO=1, three real demo
clusters, registered). Ctrl-C or SIGTERM stops every one of them; if any of them
dies, the others are stopped too, so nothing is left half-running.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import requests

from tools.services import Service, ServiceError, _die_with_parent, port_open, start_moto, start_redis

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable


def _manage(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run([PY, str(ROOT / "manage.py"), *args], cwd=ROOT, check=check)


def _spawn(name: str, args: list[str]) -> subprocess.Popen:
    print(f"[up] starting {name}: {' '.join(args)}", flush=True)
    # Each child in its own process group: Ctrl-C reaches this supervisor, which stops them in order.
    return subprocess.Popen(
        [PY, str(ROOT / "manage.py"), *args], cwd=ROOT, start_new_session=True, preexec_fn=_die_with_parent
    )


def _start_demo(directory: Path) -> subprocess.Popen:
    """Three real demo clusters (kube-apiserver + etcd), seeded like the seed article, then registered."""
    subprocess.run([str(ROOT / "tools/kube_sandbox/build.sh")], check=True)
    state = directory / "sandbox.json"
    state.unlink(missing_ok=True)
    print("[up] starting the demo clusters eks-us-east-1, rke2-dc1, k3s-edge", flush=True)
    proc = subprocess.Popen(
        [PY, "-m", "tools.kube_sandbox", "demo", "--dir", str(directory)], cwd=ROOT, start_new_session=True
    )
    deadline = time.monotonic() + 120
    while not state.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise subprocess.CalledProcessError(proc.returncode or 1, ["tools.kube_sandbox", "demo"])
        time.sleep(0.2)
    _manage("register_demo_clusters", str(state))
    return proc


def _start_demo_route53(directory: Path) -> Service:
    """moto in server mode as the demo's Route53 (a local stand-in: nothing reaches AWS), with example.com."""
    moto = start_moto(directory, port=int(os.environ.get("DNSPORTAL_DEMO_ROUTE53_PORT", "5301")))
    print(f"[up] demo Route53 stand-in (moto) at {moto.url}", flush=True)
    _manage("register_demo_zone", moto.url)
    return moto


def _stop(procs: dict[str, subprocess.Popen], timeout: float = 10.0) -> None:
    for proc in procs.values():
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for name, proc in procs.items():
        try:
            proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            print(f"[up] {name} did not stop in {timeout:.0f} s; killing it", flush=True)
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


def main() -> int:
    bind = os.environ.get("DNSPORTAL_BIND", "127.0.0.1")
    port = int(os.environ.get("DNSPORTAL_PORT", "8000"))
    os.environ.setdefault("DNSPORTAL_DATA_DIR", str(ROOT / "var"))
    data_dir = Path(os.environ["DNSPORTAL_DATA_DIR"])
    redis_url = os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/0")
    stopping = False

    def on_signal(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    redis_svc = None
    parts = urlsplit(redis_url)
    redis_port = parts.port or 6379
    if not port_open(redis_port, parts.hostname or "127.0.0.1"):
        if parts.hostname not in {"127.0.0.1", "localhost"}:
            print(
                f"[up] Redis at {parts.hostname}:{redis_port} does not answer; check REDIS_URL.",
                file=sys.stderr,
            )
            return 1
        try:
            redis_svc = start_redis(data_dir / "redis", port=redis_port)
        except ServiceError as exc:
            print(f"[up] Redis could not start: {exc}", file=sys.stderr)
            return 1
        print(f"[up] Redis started on 127.0.0.1:{redis_port} (pid {redis_svc.pid})", flush=True)
    else:
        print(f"[up] using the Redis already answering at {parts.hostname}:{redis_port}", flush=True)

    procs: dict[str, subprocess.Popen] = {}
    demo_route53 = None
    try:
        _manage("migrate", "--no-input", "-v", "0")
        _manage("createadmin", "--if-missing")
        procs["web"] = _spawn("web", ["runserver", f"{bind}:{port}", "--noreload"])
        procs["worker"] = _spawn(
            "worker", ["rqworker", "default", "discovery", "dns", "verify", "--with-scheduler"]
        )
        procs["scheduler"] = _spawn("scheduler", ["scheduler"])
        procs["watch"] = _spawn("watch", ["watch"])
        if os.environ.get("DNSPORTAL_DEMO", "").lower() in {"1", "true", "yes"}:
            demo_route53 = _start_demo_route53(data_dir / "moto")
            procs["demo-clusters"] = _start_demo(data_dir / "kube")
        url = f"http://{'127.0.0.1' if bind in {'0.0.0.0', '::'} else bind}:{port}/"  # noqa: S104
        deadline = time.monotonic() + 60
        while not stopping and time.monotonic() < deadline:
            try:
                if requests.get(url + "healthz", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if procs["web"].poll() is not None:
                break
            time.sleep(0.2)
        if not stopping and procs["web"].poll() is None:
            print(f"[up] dnsportal is up at {url} (Ctrl-C stops everything)", flush=True)
        while not stopping:
            dead = [name for name, proc in procs.items() if proc.poll() is not None]
            if dead:
                print(
                    f"[up] {', '.join(dead)} stopped unexpectedly; stopping the rest",
                    file=sys.stderr,
                    flush=True,
                )
                return 1
            time.sleep(0.3)
        print("[up] stopping", flush=True)
        return 0
    except subprocess.CalledProcessError as exc:
        print(
            f"[up] {' '.join(map(str, exc.cmd[1:]))} failed with exit code {exc.returncode}", file=sys.stderr
        )
        return 1
    finally:
        _stop(procs)
        if demo_route53 is not None:
            demo_route53.stop()
        if redis_svc is not None:
            redis_svc.stop()
        print("[up] stopped", flush=True)


if __name__ == "__main__":
    sys.exit(main())
