"""`make up`: the whole portal on the embedded defaults, in the foreground, until Ctrl-C.

In order: its own PostgreSQL (data in DNSPORTAL_DATA_DIR/postgres) and Redis on loopback ports recorded in
DNSPORTAL_DATA_DIR/services.json (an existing one only when DATABASE_URL / REDIS_URL name it), migrate, an
admin on the first start, then web + worker + scheduler + watch. In embedded mode the demo is on unless
DNSPORTAL_DEMO=0 or an admin removed it: three real sandbox clusters (kube-apiserver + etcd) registered
with the portal, a Route53 stand-in (moto) with example.com imported, a real PowerDNS (durable, in
DNSPORTAL_DATA_DIR/pdns) serving the on-prem clusters' internal zone dc.internal, a page server naming its
cluster on each on-prem cluster's load balancer address (127.0.0.2, 127.0.0.3), and a second person
(`approver`) for four-eyes. The portal answers while the demo clusters build; the dashboard shows their
progress (demo-status.json).

The last block printed is the URL and both logins. Ctrl-C or SIGTERM reaches only this supervisor (every
child runs in a session of its own): it stops the portal's processes first, then the demo (the clusters,
the page servers, PowerDNS, the stand-in), then Redis and PostgreSQL, so nothing prints a traceback about a
service that vanished under it. If a portal process dies, the rest are stopped too, so nothing is left
half-running.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from urllib.parse import urlsplit

import requests

from dnsportal import embedded
from tools import standin
from tools.demo_http import PageServer, start_page_servers
from tools.kube_sandbox.demo import INTERNAL_HOSTNAME, INTERNAL_ZONE, internal_pages
from tools.pdns import PdnsServer, start_pdns
from tools.services import (
    Service,
    ServiceError,
    _die_with_parent,
    free_port,
    port_open,
    start_moto,
    start_postgres,
    start_redis,
)

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
DEMO_CLUSTERS = ("eks-us-east-1", "rke2-dc1", "k3s-edge")
DEMO_START_TIMEOUT_S = 240
# The port of the on-prem demo clusters' load balancers (their pages): 8080 when it is free.
DEMO_HTTP_PORT = 8080
# A login line: `admin     username admin     password ...`; tests and the bench read it.
LOGIN = "  {role:<9} username {username:<10} password {password}"


class Stopped(Exception):
    """Ctrl-C or SIGTERM arrived while a step ran."""


def say(message: str, *, err: bool = False) -> None:
    print(f"[up] {message}", file=sys.stderr if err else sys.stdout, flush=True)


def _bool_env(name: str, default: bool) -> bool:
    raw = os.environ.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in {"1", "true", "yes", "on"}:
        return True
    if raw in {"0", "false", "no", "off"}:
        return False
    raise SystemExit(f"[up] {name} must be true or false, not {os.environ[name]!r}.")


class Up:
    def __init__(self) -> None:
        self.stopping = False
        self.data_dir = Path(os.environ.setdefault("DNSPORTAL_DATA_DIR", str(ROOT / "var"))).resolve()
        os.environ["DNSPORTAL_DATA_DIR"] = str(self.data_dir)
        self.bind = os.environ.get("DNSPORTAL_BIND", "127.0.0.1")
        self.port = int(os.environ.get("DNSPORTAL_PORT", "8000"))
        host = "127.0.0.1" if self.bind in {"0.0.0.0", "::"} else self.bind  # noqa: S104
        self.url = f"http://{host}:{self.port}/"
        self.services: list[Service] = []  # stopped last, in reverse order
        self.procs: dict[str, subprocess.Popen] = {}  # the portal's processes
        self.demo_procs: dict[str, subprocess.Popen] = {}
        self.moto: Service | None = None
        self.pdns: PdnsServer | None = None
        self.pages: list[PageServer] = []
        self.steps: dict[str, subprocess.Popen] = {}  # one-shot demo commands running side by side
        self.logins: list[str] = []
        production = os.environ.get("DNSPORTAL_MODE", "embedded") == "production"
        self.demo = not production and _bool_env("DNSPORTAL_DEMO", True)
        self.demo_removed = embedded.demo_removed(self.data_dir)
        self.demo_state = ""  # "", "ready", "failed"
        self.migrated = False
        if sys.stdout.isatty():
            os.environ.setdefault("LOG_FORMAT", "text")  # people read a terminal; JSON stays for collectors

    # --- one-shot steps and long-running children ------------------------------------------------------

    def run(self, *args: str, capture: bool = False, timeout: float = 600) -> str:
        """A manage.py command in its own session; Ctrl-C stops it and raises Stopped."""
        proc = subprocess.Popen(
            [PY, str(ROOT / "manage.py"), *args],
            cwd=ROOT,
            stdout=subprocess.PIPE if capture else None,
            text=True,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        return self._wait_step(proc, " ".join(args[:1]), timeout, capture)

    def _wait_step(self, proc: subprocess.Popen, name: str, timeout: float, capture: bool = False) -> str:
        deadline = time.monotonic() + timeout
        while proc.poll() is None:
            if self.stopping or time.monotonic() > deadline:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(10)
                if self.stopping:
                    raise Stopped
                raise RuntimeError(f"{name} did not finish within {timeout:.0f} s")
            time.sleep(0.1)
        out = proc.stdout.read() if capture and proc.stdout else ""
        if proc.returncode != 0:
            raise RuntimeError(f"{name} failed with exit code {proc.returncode}")
        return out

    def start_step(self, *args: str) -> None:
        """A manage.py command the demo waits for with `wait_steps`, running beside the others."""
        self.steps[args[0]] = subprocess.Popen(
            [PY, str(ROOT / "manage.py"), *args],
            cwd=ROOT,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )

    def wait_steps(self, timeout: float = 600) -> Iterator[None]:
        """Yield until every started step has finished; a failed one raises (after the others finished)."""
        deadline = time.monotonic() + timeout
        while any(proc.poll() is None for proc in self.steps.values()):
            if time.monotonic() > deadline:
                _stop_all(self.steps)
                raise RuntimeError(f"{', '.join(self.steps)} did not finish within {timeout:.0f} s")
            yield
        failed = [
            f"{name} (exit code {proc.returncode})" for name, proc in self.steps.items() if proc.returncode
        ]
        self.steps.clear()
        if failed:
            raise RuntimeError(f"{', '.join(failed)} failed")

    def spawn(self, name: str, args: list[str]) -> None:
        """One of the portal's long-running processes, in its own session (Ctrl-C reaches the supervisor)."""
        say(f"starting {name}")
        self.procs[name] = subprocess.Popen(
            [PY, str(ROOT / "manage.py"), *args],
            cwd=ROOT,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )

    # --- services --------------------------------------------------------------------------------------

    def _port(self, name: str) -> int:
        """The port recorded for this data directory if it is still free, else a new free one."""
        recorded = embedded.recorded_ports(self.data_dir).get(name)
        return recorded if recorded and not port_open(recorded) else free_port()

    def start_services(self) -> None:
        self._refuse_a_second_make_up()
        if os.environ.get("DATABASE_URL"):
            say("PostgreSQL: using DATABASE_URL")
        else:
            say(f"PostgreSQL: starting its own, data in {self.data_dir / 'postgres'}")
            self._own("postgres", "PostgreSQL", start_postgres, durable=True)
        if redis_url := os.environ.get("REDIS_URL"):
            parts = urlsplit(redis_url)
            if not port_open(parts.port or 6379, parts.hostname or "127.0.0.1"):
                raise RuntimeError(f"the Redis at REDIS_URL ({parts.hostname}:{parts.port}) does not answer")
            say("Redis: using REDIS_URL")
        else:
            self._own("redis", "Redis", start_redis, persistent=True)

    def _refuse_a_second_make_up(self) -> None:
        """One make up per data directory: a second would find PostgreSQL's data in use and fail obscurely."""
        pid_file = self.data_dir / "postgres" / "data" / "postmaster.pid"
        try:
            pid = int(pid_file.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return
        if Path(f"/proc/{pid}").exists():
            raise RuntimeError(
                f"another make up (PostgreSQL pid {pid}) already runs with the data directory "
                f"{self.data_dir}; stop it first, or give this one a DNSPORTAL_DATA_DIR (and DNSPORTAL_PORT) "
                "of its own"
            )

    def _own(self, name: str, title: str, start: Callable[..., Service], **options: bool) -> None:
        """Start a service of this data directory's own and record its port there (settings read it)."""
        svc = start(self.data_dir / name, port=self._port(name), detach=True, **options)
        self.services.append(svc)
        embedded.record_ports(self.data_dir, **{**embedded.recorded_ports(self.data_dir), name: svc.port})
        say(f"{title} ready on 127.0.0.1:{svc.port}")

    # --- the demo, one step per tick of the main loop ---------------------------------------------------

    def demo_steps(self) -> Iterator[None]:
        """The demo, a step per call: it begins before the database is migrated (the clusters start while
        it migrates) and registers with the portal once `self.migrated`."""
        status = self.data_dir
        try:
            embedded.write_demo_status(status, "building", "Building kube-apiserver and etcd")
            yield from self._build_sandbox()
            names = ", ".join(DEMO_CLUSTERS)
            embedded.write_demo_status(status, "starting", f"Starting the clusters {names}")
            say(f"demo: starting the clusters {names}")
            state = self._launch_clusters()
            # Not waited for here: it comes up while the database migrates.
            self.pdns = spawn_demo_pdns(self.data_dir)
            while not self.migrated:
                yield
            embedded.write_demo_status(
                status,
                "starting",
                f"Starting the Route53 stand-in with example.com and PowerDNS with {INTERNAL_ZONE}",
            )
            self._start_pdns()
            self._start_standin()
            # Both zones in one command (one Django start on the way to ready), before the clusters:
            # discovery then finds the zones that hold the names it reports and plans them at once.
            self.start_step(
                "register_demo_zone",
                self.moto.url,
                "--powerdns",
                f"http://127.0.0.1:{self.pdns.api_port}",
                "--powerdns-dns",
                f"127.0.0.1:{self.pdns.dns_port}",
            )
            self._start_pages()  # while it runs
            yield from self.wait_steps()
            yield from self._wait_clusters(state)
            embedded.write_demo_status(status, "starting", "Registering the demo clusters")
            self.run("register_demo_clusters", str(self.data_dir / "kube" / "sandbox.json"))
            embedded.write_demo_status(status, "ready", "The demo is running")
            self.demo_state = "ready"
        except Stopped:
            raise
        except Exception as exc:
            self.demo_state = "failed"
            embedded.write_demo_status(status, "failed", f"The demo could not start: {exc}")
            say(f"the demo could not start: {exc}; the portal keeps running without it", err=True)

    def _build_sandbox(self) -> Iterator[None]:
        began = time.monotonic()
        proc = subprocess.Popen([str(ROOT / "tools/kube_sandbox/build.sh")], cwd=ROOT, start_new_session=True)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(2)  # current binaries: the script says so at once, and the clusters start right away
        next_note = began + 20
        while proc.poll() is None:
            if self.stopping:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(10)
                raise Stopped
            now = time.monotonic()
            if now > next_note:
                minutes, seconds = divmod(int(now - began), 60)
                say(
                    f"demo: still building kube-apiserver and etcd ({minutes}m{seconds:02d}s; a first build "
                    "takes 4 to 9 minutes, later starts reuse it)"
                )
                embedded.write_demo_status(
                    self.data_dir,
                    "building",
                    f"Building kube-apiserver and etcd from the Go modules ({minutes}m{seconds:02d}s so far; "
                    "a first build takes 4 to 9 minutes)",
                )
                next_note = now + 30
            yield
        if proc.returncode != 0:
            raise RuntimeError(f"tools/kube_sandbox/build.sh failed with exit code {proc.returncode}")

    def _start_standin(self) -> None:
        workdir = self.data_dir / "moto"
        port = int(os.environ.get("DNSPORTAL_DEMO_ROUTE53_PORT") or 0) or self._port("moto")
        self.moto = start_moto(workdir, port=port, detach=True)
        ports = embedded.recorded_ports(self.data_dir)
        embedded.record_ports(self.data_dir, **{**ports, "moto": self.moto.port})
        restored = standin.restore(self.moto.url, workdir / standin.STATE_FILE)
        say(
            f"demo: Route53 stand-in (moto, nothing reaches AWS) at {self.moto.url}"
            + (f", {restored} record sets restored" if restored else "")
        )

    def _start_pdns(self) -> None:
        created = demo_pdns_zone(self.pdns)
        say(
            f"demo: PowerDNS with {INTERNAL_ZONE} ({'created' if created else 'kept from the last run'}) "
            f"answers DNS on 127.0.0.1:{self.pdns.dns_port}, API on 127.0.0.1:{self.pdns.api_port}"
        )

    def _start_pages(self) -> None:
        try:
            self.pages = start_demo_pages(self.data_dir, internal_pages())
        except OSError as exc:  # the demo goes on: only an HTTP probe of app.dc.internal misses them
            say(f"demo: the on-prem clusters' pages could not start ({exc}); the demo runs without", err=True)
            return
        say(
            "demo: the on-prem clusters' load balancers answer at "
            + ", ".join(f"{p.url} ({p.cluster})" for p in self.pages)
        )

    def _launch_clusters(self) -> Path:
        """Start the sandbox's demo clusters; returns the state file it writes once they are ready."""
        directory = self.data_dir / "kube"
        state = directory / "sandbox.json"
        state.unlink(missing_ok=True)
        self.demo_procs["demo clusters"] = subprocess.Popen(
            [PY, "-m", "tools.kube_sandbox", "demo", "--dir", str(directory)],
            cwd=ROOT,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        return state

    def _wait_clusters(self, state: Path) -> Iterator[None]:
        proc = self.demo_procs["demo clusters"]
        deadline = time.monotonic() + DEMO_START_TIMEOUT_S
        while not state.exists():
            if proc.poll() is not None:
                raise RuntimeError(f"the demo clusters exited with code {proc.returncode} while starting")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the demo clusters were not ready within {DEMO_START_TIMEOUT_S} s")
            yield

    # --- the whole run ---------------------------------------------------------------------------------

    def logins_block(self) -> list[str]:
        lines = ["─" * 72, f"dnsportal is up at {self.url}"]
        if self.logins:
            lines += [
                *self.logins,
                "  (passwords are shown once, now: keep them; "
                "`.venv/bin/python manage.py changepassword NAME` sets a new one)",
            ]
        else:
            lines.append(
                "  log in as admin (and approver, with the demo): passwords were shown on the first start"
            )
        if self.demo and not self.demo_removed:
            if self.demo_state == "ready":
                lines.append(
                    f"Demo: {', '.join(DEMO_CLUSTERS)} and example.com in a local Route53 stand-in; "
                    "open app.example.com first. DNSPORTAL_DEMO=0 make up starts without it."
                )
                if self.pdns is not None:
                    pages = " and ".join(p.url for p in self.pages)
                    lines.append(
                        f"  {INTERNAL_ZONE} is served by PowerDNS at 127.0.0.1:{self.pdns.dns_port}: "
                        f"dig @127.0.0.1 -p {self.pdns.dns_port} {INTERNAL_HOSTNAME}"
                        + (f" (its clusters' pages: {pages})" if pages else "")
                    )
            else:
                lines.append("Demo: it could not start (see above); the portal runs without it.")
        lines += ["Ctrl-C stops everything.", "─" * 72]
        return lines

    @staticmethod
    def _advance(steps: Iterator[None]) -> Iterator[None] | None:
        """One step of the demo; None once it is done (ready or failed)."""
        try:
            next(steps)
        except StopIteration:
            return None
        return steps

    def _healthy(self) -> bool:
        try:
            return requests.get(self.url + "healthz", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    def _collect_login(self, output: str, role: str) -> None:
        match = re.search(r"Username: (\S+)\s+Password: (\S+)", output)
        if match:
            self.logins.append(LOGIN.format(role=role, username=match[1], password=match[2]))

    def main(self) -> int:
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, self._on_signal)
        try:
            return self._main()
        except Stopped:
            return 0
        except (ServiceError, RuntimeError) as exc:
            say(str(exc), err=True)
            return 1
        finally:
            self.stop()

    def _on_signal(self, signum: int, frame: object) -> None:
        if not self.stopping:
            say("stopping (Ctrl-C)" if signum == signal.SIGINT else "stopping")
        self.stopping = True

    def _main(self) -> int:
        self.start_services()
        demo = self.demo and not self.demo_removed
        if self.demo and self.demo_removed:
            say("demo: an admin removed it; starting without (delete the data directory to get it back)")
        steps = self.demo_steps() if demo else None
        if steps is not None:
            # Its first step: the build (a first one goes on while the portal starts) or the clusters, which
            # start while the database migrates. It also tells the dashboard, before the web answers.
            steps = self._advance(steps)
        # Every portal process writes its counters here and /metrics sums them; they start at zero with the
        # processes. Scrapes from this machine are allowed unless a token or allow-list is set (README).
        metrics_dir = Path(os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", str(self.data_dir / "metrics")))
        shutil.rmtree(metrics_dir, ignore_errors=True)
        metrics_dir.mkdir(parents=True, exist_ok=True)
        if not (os.environ.get("DNSPORTAL_METRICS_TOKEN") or os.environ.get("DNSPORTAL_METRICS_TOKEN_FILE")):
            os.environ.setdefault("DNSPORTAL_METRICS_ALLOW", "127.0.0.0/8,::1")
        say("migrating the database")
        self.run("migrate", "--no-input", "-v", "0")
        self.migrated = True
        self._collect_login(self.run("createadmin", "--if-missing", capture=True), "admin")
        if demo:
            out = self.run(
                "createuser", "--username", "approver", "--role", "approver", "--if-missing", capture=True
            )
            self._collect_login(out, "approver")
        self.spawn("web", ["runserver", f"{self.bind}:{self.port}", "--noreload"])
        self.spawn(
            "worker", ["rqworker", "default", "discovery", "dns", "verify", "--with-scheduler", "-v", "0"]
        )
        self.spawn("scheduler", ["scheduler"])
        self.spawn("watch", ["watch"])
        answering = announced = False
        while not self.stopping:
            dead = [name for name, proc in self.procs.items() if proc.poll() is not None]
            if dead:
                say(f"{', '.join(dead)} stopped unexpectedly; stopping the rest", err=True)
                return 1
            for name, proc in self.demo_procs.items():
                if proc.poll() is not None and self.demo_state == "ready":
                    self.demo_state = "failed"
                    embedded.write_demo_status(self.data_dir, "failed", f"The {name} stopped")
                    say(
                        f"the {name} stopped (exit code {proc.returncode}); the portal keeps running",
                        err=True,
                    )
            if steps is not None:
                steps = self._advance(steps)
            if not answering and self._healthy():
                answering = True
                if steps is not None:
                    say(
                        f"the portal answers at {self.url}; the demo is still starting (the dashboard shows "
                        "its progress)"
                    )
            if answering and steps is None and not announced:
                announced = True
                for line in self.logins_block():
                    say(line)
            time.sleep(0.2)
        return 0

    def stop(self) -> None:
        """Portal processes first, then the demo, then Redis and PostgreSQL: nobody loses a service in use."""
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the cleanup short
        _stop_all(self.procs)
        _stop_all(self.steps)
        _stop_all(self.demo_procs)
        for page in self.pages:
            page.stop()
        if self.pdns is not None:  # its database is in the data directory: nothing to save
            self.pdns.stop()
        if self.moto is not None:
            with contextlib.suppress(Exception):  # the stand-in's memory is a convenience, not state
                standin.save(self.moto.url, self.moto.workdir / standin.STATE_FILE)
            self.moto.stop()
        for svc in reversed(self.services):
            svc.stop()
        if self.demo and not self.demo_removed:
            # A portal started by hand later must not wait for a demo nobody is starting.
            embedded.write_demo_status(self.data_dir, "stopped", "make up stopped")
        say("stopped")


def spawn_demo_pdns(data_dir: Path) -> PdnsServer:
    """Start the demo's PowerDNS, kept across restarts, without waiting for it: its database in
    `data_dir/pdns`, its API key in the data directory (0600, made on the first start), its ports those
    recorded in services.json while they are free (new ones are recorded)."""
    recorded = embedded.recorded_ports(data_dir)
    server = start_pdns(
        data_dir / "pdns",
        keep=True,
        dns_port=recorded.get("pdns_dns"),
        api_port=recorded.get("pdns_api"),
        api_key=embedded.pdns_api_key(data_dir, create=True),
        detach=True,
        wait=False,
    )
    ports = {**embedded.recorded_ports(data_dir), "pdns_dns": server.dns_port, "pdns_api": server.api_port}
    embedded.record_ports(data_dir, **ports)
    return server


def demo_pdns_zone(server: PdnsServer) -> bool:
    """Wait for the demo's PowerDNS and create dc.internal (its NS and SOA; the portal writes the rest) unless
    it holds it already; True when created. A server that does not answer is stopped (ServiceError)."""
    server.wait_ready()
    try:
        return server.ensure_zone(INTERNAL_ZONE)
    except BaseException:
        server.stop()
        raise


def start_demo_pdns(data_dir: Path) -> tuple[PdnsServer, bool]:
    """`spawn_demo_pdns` and `demo_pdns_zone` in one: the server, and whether dc.internal was created."""
    server = spawn_demo_pdns(data_dir)
    return server, demo_pdns_zone(server)


def start_demo_pages(data_dir: Path, pages: Mapping[str, str]) -> list[PageServer]:
    """A page server per `{address: cluster}` (tools.demo_http), all on one port: 8080 when every address
    has it free, else the one recorded for the data directory, else a free one; the port is recorded as
    `demo_http` (the probe page offers it for the demo's zones). Raises OSError when none can be bound."""
    recorded = embedded.demo_http_port(data_dir)
    error: OSError | None = None
    for port in dict.fromkeys(p for p in (DEMO_HTTP_PORT, recorded, 0) if p is not None):
        try:
            servers = start_page_servers(pages, port)
        except OSError as exc:
            error = exc
            continue
        embedded.record_ports(data_dir, **{**embedded.recorded_ports(data_dir), "demo_http": servers[0].port})
        return servers
    raise error or OSError("no port for the demo's pages")


def _stop_all(procs: dict[str, subprocess.Popen], timeout: float = 15.0) -> None:
    for proc in procs.values():
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for name, proc in procs.items():
        try:
            proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            say(f"{name} did not stop in {timeout:.0f} s; killing it", err=True)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


if __name__ == "__main__":
    sys.exit(Up().main())
