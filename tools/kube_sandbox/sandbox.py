"""Start and stop real Kubernetes API servers (kube-apiserver + etcd, built from the official Go modules).

A `Sandbox` is N independent clusters under one directory. Each `Cluster` has its own etcd (data dir,
client and peer ports), its own CA, serving certificate and service-account keys, and static bearer tokens
for two identities: `admin` (system:masters) and `restricted` (RBAC: read what discovery reads, patch
services and ingresses). Kubeconfigs carry the CA and the token inline, as the portal requires of every
kubeconfig.

    with Sandbox(tmp_path, 2) as sb:          # builds the binaries first if they are missing
        sb.clusters[0].kubeconfig("admin")    # -> dict for kubernetes.config.new_client_from_config_dict
        sb.clusters[1].stop_apiserver()       # the cluster is now unreachable; etcd keeps its data
        sb.clusters[1].start_apiserver()      # back on the same port with the same objects

Processes run in their own process groups and are stopped with SIGTERM, then SIGKILL after a deadline. As
a safety net for a parent killed with SIGKILL (a hung CI job), each child is started through
`setpriv --pdeathsig` so the kernel terminates it when the thread that started it exits: start and stop
clusters from a thread that lives as long as they should (the main thread, in pytest and the CLI).
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

import yaml

from tools.kube_sandbox.pki import ClusterPki, create_pki

PACKAGE_DIR = Path(__file__).resolve().parent
BIN_DIR = PACKAGE_DIR / "bin"
BUILD_SCRIPT = PACKAGE_DIR / "build.sh"
KUBE_APISERVER = BIN_DIR / "kube-apiserver"
ETCD = BIN_DIR / "etcd"

Identity = Literal["admin", "restricted"]
IDENTITIES: tuple[Identity, ...] = ("admin", "restricted")

# The restricted identity is what the portal is told to ask cluster owners for: read what discovery needs,
# patch only what annotation write-back changes. Secrets are deliberately absent (tests check the 403).
RESTRICTED_USER = "dnsportal"
RESTRICTED_ROLE = "dnsportal-restricted"
RESTRICTED_RULES: list[dict[str, Any]] = [
    {
        "apiGroups": [""],
        "resources": ["services", "pods", "nodes", "namespaces"],
        "verbs": ["get", "list", "watch"],
    },
    {"apiGroups": ["networking.k8s.io"], "resources": ["ingresses"], "verbs": ["get", "list", "watch"]},
    {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": ["get", "list", "watch"]},
    {"apiGroups": [""], "resources": ["services"], "verbs": ["patch"]},
    {"apiGroups": ["networking.k8s.io"], "resources": ["ingresses"], "verbs": ["patch"]},
    # The Gateway API and DNSEndpoint sources (deploy/cluster-access.yaml grants the same).
    {
        "apiGroups": ["gateway.networking.k8s.io"],
        "resources": ["gateways", "httproutes", "grpcroutes", "tlsroutes", "tcproutes", "udproutes"],
        "verbs": ["get", "list", "watch"],
    },
    {"apiGroups": ["externaldns.k8s.io"], "resources": ["dnsendpoints"], "verbs": ["get", "list", "watch"]},
    {"apiGroups": ["externaldns.k8s.io"], "resources": ["dnsendpoints/status"], "verbs": ["update"]},
    {
        "apiGroups": ["networking.istio.io"],
        "resources": ["gateways", "virtualservices"],
        "verbs": ["get", "list", "watch"],
    },
]

SERVICE_CIDR = "10.96.0.0/16"
SERVICE_IP = "10.96.0.1"  # the `kubernetes` Service's ClusterIP: the first address of SERVICE_CIDR
SA_ISSUER = "https://kubernetes.default.svc.cluster.local"

# How long a process gets to exit after SIGTERM before SIGKILL. The apiserver drains in about a second.
STOP_GRACE_S = 15.0


class SandboxError(RuntimeError):
    """A build or start failed; the message carries the output needed to see why."""


def _run_build(*, force: bool = False, capture: bool = True) -> None:
    argv = [str(BUILD_SCRIPT), *(["--force"] if force else [])]
    proc = subprocess.run(
        argv,
        stdout=subprocess.PIPE if capture else None,
        stderr=subprocess.STDOUT if capture else None,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        output = proc.stdout or "(output went to the terminal)"
        raise SandboxError(
            f"{BUILD_SCRIPT} failed with exit code {proc.returncode}; its output "
            f"(last 200 lines):\n" + "\n".join(output.splitlines()[-200:])
        )


def ensure_built(*, force: bool = False, capture: bool = True) -> tuple[Path, Path]:
    """Build kube-apiserver and etcd if missing or out of date (a no-op taking milliseconds otherwise).

    `capture=False` streams the (minutes-long) first build to the terminal instead of collecting it for the
    error message.
    """
    _run_build(force=force, capture=capture)
    return KUBE_APISERVER, ETCD


# Ports handed out in this process; a port just released by bind(0) could otherwise be handed out twice before
# either server has bound it.
_ports_taken: set[int] = set()


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        # SO_REUSEADDR as the Go servers set it: a port whose old connections linger in TIME_WAIT (a server
        # just stopped) is free for them, while a port someone listens on is not.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_port() -> int:
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port not in _ports_taken:
            _ports_taken.add(port)
            return port
    raise SandboxError("could not find a free loopback port")


def _tail(path: Path, lines: int = 60) -> str:
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return f"({path} does not exist)"
    return "\n".join(text.splitlines()[-lines:])


def _pid_alive(pid: int) -> bool:
    """True while `pid` exists and is not a zombie (a zombie has exited; it only awaits its parent's wait)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    # The state letter follows the parenthesised command name, which may itself contain spaces.
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


class _Process:
    """One child process in its own process group, with its output in a log file."""

    def __init__(self, name: str, argv: Sequence[str], log_path: Path, *, die_with_parent: bool) -> None:
        self.name = name
        self.log_path = log_path
        prefix: list[str] = []
        setpriv = shutil.which("setpriv")
        if die_with_parent and setpriv:
            # setpriv execs the server, so the pid we hold is the server's own, not a wrapper's. KILL, not
            # TERM: when the parent dies, etcd and its apiserver get the signal at once, and an apiserver
            # shutting down with its etcd gone retries forever (seen: still running minutes later).
            prefix = [setpriv, "--pdeathsig", "KILL", "--"]
        with log_path.open("ab") as log:
            log.write(f"\n==== {time.strftime('%Y-%m-%d %H:%M:%S')} starting {' '.join(argv)}\n".encode())
            log.flush()
            self.popen = subprocess.Popen(
                [*prefix, *argv],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # own process group: one killpg reaches anything it might spawn
                close_fds=True,
            )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def running(self) -> bool:
        return self.popen.poll() is None

    def request_stop(self) -> None:
        """Send SIGTERM without waiting, so several servers can drain at the same time."""
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGTERM)

    def stop(self, grace: float = STOP_GRACE_S) -> None:
        if self.popen.poll() is None:
            self.request_stop()
            try:
                self.popen.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(timeout=grace)
        # Anything left in the group (the servers do not fork, but be certain) goes too.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, signal.SIGKILL)

    def describe_exit(self) -> str:
        head = f"{self.name} (pid {self.pid}) exited with code {self.popen.returncode}; log {self.log_path}"
        return f"{head}:\n{_tail(self.log_path)}"


class Cluster:
    """One cluster: an etcd and a kube-apiserver with their own ports, keys and data under `directory`.

    The directory is reusable: keys, tokens, ports (when still free) and etcd data survive a stop, so a
    restarted sandbox serves the same objects at the same addresses and stored kubeconfigs stay valid.
    """

    def __init__(self, name: str, directory: Path, *, die_with_parent: bool = True) -> None:
        self.name = name
        self.directory = directory
        self.die_with_parent = die_with_parent
        self.pki = ClusterPki.in_dir(directory / "pki")
        self.etcd_data_dir = directory / "etcd-data"
        self.token_file = directory / "tokens.csv"
        self.tokens: dict[Identity, str] = {}
        self.apiserver_port = 0
        self.etcd_client_port = 0
        self.etcd_peer_port = 0
        self._etcd: _Process | None = None
        self._apiserver: _Process | None = None
        self._ssl: ssl.SSLContext | None = None
        self._rbac_done = False

    # ----- addresses and credentials ---------------------------------------------------------------------

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.apiserver_port}"

    @property
    def etcd_url(self) -> str:
        return f"http://127.0.0.1:{self.etcd_client_port}"

    def kubeconfig(self, identity: Identity = "admin") -> dict[str, Any]:
        """A kubeconfig with the CA and the bearer token inline (no file references, no exec plugins)."""
        ca_data = base64.b64encode(self.pki.ca_cert.read_bytes()).decode()
        user = f"{self.name}-{identity}"
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {"name": self.name, "cluster": {"server": self.server, "certificate-authority-data": ca_data}}
            ],
            "users": [{"name": user, "user": {"token": self.tokens[identity]}}],
            "contexts": [{"name": user, "context": {"cluster": self.name, "user": user}}],
            "current-context": user,
            "preferences": {},
        }

    def kubeconfig_path(self, identity: Identity = "admin") -> Path:
        return self.directory / f"kubeconfig-{identity}.yaml"

    def pids(self) -> list[int]:
        """Pids of this cluster's processes that are still alive."""
        procs = [p for p in (self._etcd, self._apiserver) if p is not None]
        return [p.pid for p in procs if p.running()]

    @property
    def apiserver_pid(self) -> int | None:
        return self._apiserver.pid if self._apiserver and self._apiserver.running() else None

    @property
    def etcd_pid(self) -> int | None:
        return self._etcd.pid if self._etcd and self._etcd.running() else None

    # ----- preparation -----------------------------------------------------------------------------------

    def prepare(self) -> None:
        """Create (or reload) keys, tokens, ports and kubeconfigs. Idempotent."""
        self.directory.mkdir(parents=True, exist_ok=True)
        if not self.pki.exists():
            create_pki(self.pki.ca_cert.parent, self.name, SERVICE_IP)
        self._load_or_create_tokens()
        self._load_or_pick_ports()
        self._ssl = ssl.create_default_context(cafile=str(self.pki.ca_cert))
        self._write_kubeconfigs()

    def _load_or_create_tokens(self) -> None:
        if self.token_file.exists():
            for line in self.token_file.read_text().splitlines():
                token, user = line.split(",")[:2]
                self.tokens["admin" if user == "admin" else "restricted"] = token
            if set(self.tokens) == set(IDENTITIES):
                return
        self.tokens = {"admin": secrets.token_urlsafe(32), "restricted": secrets.token_urlsafe(32)}
        # --token-auth-file format: token,user,uid[,"group1,group2"]. system:masters bypasses RBAC, as a
        # cluster admin's credentials do in every distribution.
        lines = [
            f'{self.tokens["admin"]},admin,uid-admin,"system:masters"',
            f"{self.tokens['restricted']},{RESTRICTED_USER},uid-{RESTRICTED_USER}",
        ]
        self.token_file.touch(mode=0o600, exist_ok=True)
        self.token_file.write_text("\n".join(lines) + "\n")

    def _load_or_pick_ports(self) -> None:
        ports_file = self.directory / "ports.json"
        saved: dict[str, int] = {}
        if ports_file.exists():
            saved = json.loads(ports_file.read_text())
        chosen: dict[str, int] = {}
        for key in ("apiserver", "etcd_client", "etcd_peer"):
            port = saved.get(key, 0)
            if port and port not in _ports_taken and _port_is_free(port):
                _ports_taken.add(port)
                chosen[key] = port
            else:
                chosen[key] = _free_port()
        self.apiserver_port = chosen["apiserver"]
        self.etcd_client_port = chosen["etcd_client"]
        self.etcd_peer_port = chosen["etcd_peer"]
        ports_file.write_text(json.dumps(chosen, indent=2) + "\n")

    def _write_kubeconfigs(self) -> None:
        for identity in IDENTITIES:
            path = self.kubeconfig_path(identity)
            path.touch(mode=0o600, exist_ok=True)  # it holds a bearer token
            path.write_text(yaml.safe_dump(self.kubeconfig(identity), sort_keys=False))

    # ----- processes -------------------------------------------------------------------------------------

    def start_etcd(self) -> None:
        if self._etcd is not None and self._etcd.running():
            return
        peer = f"http://127.0.0.1:{self.etcd_peer_port}"
        argv = [
            str(ETCD),
            f"--name={self.name}",
            f"--data-dir={self.etcd_data_dir}",
            f"--listen-client-urls={self.etcd_url}",
            f"--advertise-client-urls={self.etcd_url}",
            f"--listen-peer-urls={peer}",
            f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster={self.name}={peer}",
            "--initial-cluster-state=new",  # ignored by etcd once the data dir holds a member
            # Test and demo data are disposable; skipping fsync makes every write (and startup) much faster.
            # A clean stop still leaves the data on disk, so restarts keep it.
            "--unsafe-no-fsync",
            "--log-level=warn",
        ]
        self._etcd = _Process(
            f"{self.name}/etcd", argv, self.directory / "etcd.log", die_with_parent=self.die_with_parent
        )

    def start_apiserver(self, *, wait: bool = True, timeout: float = 60.0) -> None:
        """Start kube-apiserver (and etcd, if it is not running); with `wait`, block until /readyz is ok."""
        if self._etcd is None or not self._etcd.running():
            self.start_etcd()
        if self._apiserver is not None and self._apiserver.running():
            if wait:
                self.wait_ready(timeout=timeout)
            return
        if not _port_is_free(self.apiserver_port):
            raise SandboxError(f"{self.name}: port {self.apiserver_port} is taken by another process")
        argv = [
            str(KUBE_APISERVER),
            f"--etcd-servers={self.etcd_url}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={self.apiserver_port}",
            f"--tls-cert-file={self.pki.serving_cert}",
            f"--tls-private-key-file={self.pki.serving_key}",
            f"--client-ca-file={self.pki.ca_cert}",
            f"--token-auth-file={self.token_file}",
            "--authorization-mode=RBAC",
            f"--service-account-issuer={SA_ISSUER}",
            f"--service-account-key-file={self.pki.sa_public_key}",
            f"--service-account-signing-key-file={self.pki.sa_private_key}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            f"--cert-dir={self.directory / 'pki'}",
            "--profiling=false",
            # The lease reconciler publishes the advertise address as the `kubernetes` Service's endpoint
            # and refuses loopback addresses; nothing runs in-cluster here, so there is nothing to publish.
            "--endpoint-reconciler-type=none",
        ]
        self._apiserver = _Process(
            f"{self.name}/kube-apiserver",
            argv,
            self.directory / "apiserver.log",
            die_with_parent=self.die_with_parent,
        )
        if wait:
            self.wait_ready(timeout=timeout)

    def check_alive(self) -> None:
        """Raise with the log tail if a process of this cluster has exited."""
        for proc in (self._etcd, self._apiserver):
            if proc is not None and not proc.running():
                raise SandboxError(f"{self.name}: " + proc.describe_exit())

    def probe_ready(self) -> bool:
        """One GET /readyz; True when the apiserver answers ok."""
        try:
            status, _ = self.request("GET", "/readyz", timeout=2.0)
        except (OSError, urllib.error.URLError):
            return False
        return status == 200

    def wait_ready(self, *, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            self.check_alive()
            if self.probe_ready():
                self.bootstrap_rbac()
                return
            if time.monotonic() > deadline:
                raise SandboxError(
                    f"{self.name}: /readyz not ok after {timeout:.0f} s; apiserver log:\n"
                    + _tail(self.directory / "apiserver.log")
                    + "\netcd log:\n"
                    + _tail(self.directory / "etcd.log")
                )
            time.sleep(0.1)  # poll interval of a deadline-bounded wait, not a fixed delay

    def stop_apiserver(self, grace: float = STOP_GRACE_S) -> None:
        """Make the cluster unreachable; etcd (and so every object) stays."""
        if self._apiserver is not None:
            self._apiserver.stop(grace)
            self._apiserver = None

    def request_stop(self, *, etcd: bool) -> None:
        """SIGTERM the apiserver (and with `etcd`, etcd too) without waiting; `stop()` then waits."""
        for proc in (self._apiserver, self._etcd if etcd else None):
            if proc is not None:
                proc.request_stop()

    def stop(self, grace: float = STOP_GRACE_S) -> None:
        self.stop_apiserver(grace)
        if self._etcd is not None:
            self._etcd.stop(grace)
            self._etcd = None
        # Fully stopped: this process may hand the ports to this cluster again (a restarted sandbox on the
        # same directory keeps its addresses).
        _ports_taken.difference_update({self.apiserver_port, self.etcd_client_port, self.etcd_peer_port})

    def forget_ports(self) -> None:
        """Drop the saved ports so the next `prepare()` picks fresh ones from the kernel."""
        with contextlib.suppress(FileNotFoundError):
            (self.directory / "ports.json").unlink()

    # ----- API -------------------------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        *,
        identity: Identity = "admin",
        timeout: float = 10.0,
    ) -> tuple[int, dict[str, Any] | str]:
        """A plain HTTPS request with the identity's token; returns (status, decoded JSON or text).

        The launcher uses this instead of the `kubernetes` client to stay light (the benchmark times startup).
        """
        if self._ssl is None:
            raise SandboxError(f"{self.name}: prepare() first")
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.server + path, data=data, method=method)  # noqa: S310 (https only)
        req.add_header("Authorization", f"Bearer {self.tokens[identity]}")
        req.add_header("Accept", "application/json")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, context=self._ssl, timeout=timeout) as resp:  # noqa: S310
                status, raw = resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            status, raw = exc.code, exc.read()
        text = raw.decode(errors="replace")
        try:
            return status, json.loads(text)
        except ValueError:
            return status, text

    def bootstrap_rbac(self) -> None:
        """Create the restricted identity's ClusterRole and binding through the API (idempotent)."""
        if self._rbac_done:
            return
        role = {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": RESTRICTED_ROLE},
            "rules": RESTRICTED_RULES,
        }
        binding = {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": RESTRICTED_ROLE},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": RESTRICTED_ROLE,
            },
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": RESTRICTED_USER}],
        }
        base = "/apis/rbac.authorization.k8s.io/v1"
        for collection, obj in (("clusterroles", role), ("clusterrolebindings", binding)):
            status, reply = self.request("POST", f"{base}/{collection}", obj)
            if status == 409:  # a reused directory already has it; make it match this code's rules
                status, reply = self.request(
                    "PUT",
                    f"{base}/{collection}/{RESTRICTED_ROLE}",
                    self._with_resource_version(f"{base}/{collection}", obj),
                )
            if status not in (200, 201):
                raise SandboxError(
                    f"{self.name}: creating {collection}/{RESTRICTED_ROLE}: HTTP {status}: {reply}"
                )
        self._rbac_done = True

    def _with_resource_version(self, collection_path: str, obj: dict[str, Any]) -> dict[str, Any]:
        status, current = self.request("GET", f"{collection_path}/{obj['metadata']['name']}")
        if status != 200 or not isinstance(current, dict):
            raise SandboxError(f"{self.name}: GET {collection_path}: HTTP {status}: {current}")
        rv = current["metadata"]["resourceVersion"]
        return {**obj, "metadata": {**obj["metadata"], "resourceVersion": rv}}

    def info(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "server": self.server,
            "kubeconfig_admin": str(self.kubeconfig_path("admin")),
            "kubeconfig_restricted": str(self.kubeconfig_path("restricted")),
            "apiserver_pid": self.apiserver_pid,
            "etcd_pid": self.etcd_pid,
            "etcd": self.etcd_url,
        }


def default_names(count: int) -> list[str]:
    return [f"kube-{i}" for i in range(1, count + 1)]


class Sandbox:
    """N independent clusters under one directory; a context manager that stops them all on exit."""

    def __init__(
        self,
        directory: Path | str | None = None,
        clusters: int | Sequence[str] = 2,
        *,
        die_with_parent: bool = True,
    ) -> None:
        self._owns_directory = directory is None
        if directory is None:
            directory = tempfile.mkdtemp(prefix="kube-sandbox-")
        self.directory = Path(directory)
        names = default_names(clusters) if isinstance(clusters, int) else list(clusters)
        if len(set(names)) != len(names) or not names:
            raise ValueError(f"cluster names must be unique and non-empty: {names}")
        self.clusters = [Cluster(n, self.directory / n, die_with_parent=die_with_parent) for n in names]
        self.startup_seconds: float | None = None
        self._started = False

    def __getitem__(self, name: str) -> Cluster:
        for cluster in self.clusters:
            if cluster.name == name:
                return cluster
        raise KeyError(name)

    @property
    def state_file(self) -> Path:
        return self.directory / "sandbox.json"

    def start(self, *, timeout: float = 90.0, build: bool = True, write_state: bool = True) -> Sandbox:
        """Build if needed, then start every cluster and wait until all are ready (or raise and clean up).

        With `write_state`, DIR/sandbox.json appears once everything is ready; a caller with more to do
        first (the CLI seeds the demo) passes False and calls `write_state()` itself.
        """
        if build:
            ensure_built()
        elif not (KUBE_APISERVER.exists() and ETCD.exists()):
            raise SandboxError(f"binaries missing in {BIN_DIR}; run {BUILD_SCRIPT}")
        if self._started:
            raise SandboxError("this sandbox is already started")
        atexit.register(self.stop)
        self._started = True
        began = time.monotonic()
        try:
            for attempt in (1, 2):
                try:
                    self._start_once(timeout)
                    break
                except SandboxError as exc:
                    # A port picked free can be taken (e.g. as some connection's source port) before the
                    # server binds it; that is worth one retry on fresh ports, nothing else is.
                    if attempt == 2 or "address already in use" not in str(exc):
                        raise
                    self._stop_processes()
                    for cluster in self.clusters:
                        cluster.forget_ports()
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - began
        if write_state:
            self.write_state()
        return self

    def _start_once(self, timeout: float) -> None:
        # Spawn everything from this thread first (see the module doc on pdeathsig), then wait for all at
        # once: the clusters start in parallel and the total is the slowest one, not the sum.
        for cluster in self.clusters:
            cluster.prepare()
            cluster.start_etcd()
        for cluster in self.clusters:
            cluster.start_apiserver(wait=False)
        self._wait_all_ready(time.monotonic() + timeout, timeout)

    def _wait_all_ready(self, deadline: float, timeout: float) -> None:
        pending = list(self.clusters)
        while pending:
            for cluster in list(pending):
                cluster.check_alive()
                if cluster.probe_ready():
                    cluster.bootstrap_rbac()
                    pending.remove(cluster)
            if not pending:
                return
            if time.monotonic() > deadline:
                c = pending[0]
                raise SandboxError(
                    f"{', '.join(p.name for p in pending)}: /readyz not ok after {timeout:.0f} s; "
                    f"{c.name} apiserver log:\n{_tail(c.directory / 'apiserver.log')}"
                    f"\n{c.name} etcd log:\n{_tail(c.directory / 'etcd.log')}"
                )
            time.sleep(0.1)  # poll interval of a deadline-bounded wait, not a fixed delay

    def write_state(self) -> None:
        """Write DIR/sandbox.json (servers, kubeconfig paths, pids) atomically."""
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps({"clusters": [c.info() for c in self.clusters]}, indent=2) + "\n")
        tmp.replace(self.state_file)  # atomic: a script waiting for the file never reads half of it

    def pids(self) -> list[int]:
        return [pid for cluster in self.clusters for pid in cluster.pids()]

    def stop(self) -> None:
        """Stop every process (SIGTERM, then SIGKILL after a deadline); idempotent."""
        if not self._started:
            return
        self._started = False
        atexit.unregister(self.stop)
        errors = self._stop_processes()
        with contextlib.suppress(FileNotFoundError):
            self.state_file.unlink()
        if self._owns_directory:
            shutil.rmtree(self.directory, ignore_errors=True)
        if errors:
            raise SandboxError(f"errors while stopping: {errors}")

    def _stop_processes(self) -> list[BaseException]:
        errors: list[BaseException] = []
        # Apiservers first (they would log etcd errors while draining otherwise), then etcd. All apiservers
        # get SIGTERM at once: each takes about a second to drain, and they drain in parallel.
        for cluster in self.clusters:
            cluster.request_stop(etcd=False)
        for cluster in self.clusters:
            try:
                cluster.stop_apiserver()
            except Exception as exc:  # keep stopping the others; report at the end
                errors.append(exc)
        for cluster in self.clusters:
            cluster.request_stop(etcd=True)
        for cluster in self.clusters:
            try:
                cluster.stop()
            except Exception as exc:
                errors.append(exc)
        return errors

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def assert_no_processes(pids: Iterable[int]) -> None:
    """Raise if any of `pids` still runs (used by tests and the fixture teardown)."""
    alive = [pid for pid in pids if _pid_alive(pid)]
    if alive:
        raise SandboxError(f"processes still running after stop: {alive}")
