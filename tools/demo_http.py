"""Tiny web servers standing in for each cluster's Service: every GET answers a page naming its cluster.

The seed article checks which cluster served a request with nginx pages reading "RKE2" or "K3s"; the
portal's HTTP probe (records.probe) does the same by cluster name. The bench, the tests and the `make up`
demo give each cluster a loopback address (127.0.0.2, 127.0.0.3, …: Linux routes all of 127.0.0.0/8 to
`lo`) and serve its page there, on one port shared by all, as the clusters' load balancers would listen.

    server = start_page_server("127.0.0.2", 0, "rke2-dc")   # port 0: a free port
    server.port; server.url; server.stop()
    servers = start_page_servers({"127.0.0.2": "rke2-dc", "127.0.0.3": "k3s-edge"})  # one port for all
    child = spawn_page_servers({...})   # the same in a child process: a tools.services.Service

A child process keeps the servers off the caller's GIL: a benchmark then measures its client, not the
servers' share of one interpreter (the clusters' servers are never in the prober's process either).

The health switch (the portal's demo hook for failover drills): `POST /-/health` with the body `down` makes
the server answer every GET and HEAD with 503, as a cluster whose service failed would, so PowerDNS's LUA
`ifurlup` check on that address fails; the body `slow 300` makes every page take 300 ms more (a slow
cluster, for the probe's latency bound); the body `up` restores both. Each server (address) has its own
switch.

CLI: `python -m tools.demo_http 127.0.0.2=rke2-dc 127.0.0.3=k3s-edge [--port N]` serves until Ctrl-C.
"""

from __future__ import annotations

import argparse
import html
import signal
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from tools.services import Service, _popen, _wait, port_open


def page(cluster: str) -> bytes:
    """The page a cluster serves: its name in the title and in a heading, which the probe looks for."""
    name = html.escape(cluster)
    return (
        f'<!doctype html><html><head><meta charset="utf-8"><title>{name}</title></head>'
        f"<body><h1>Served by cluster {name}</h1></body></html>\n"
    ).encode()


HEALTH_PATH = "/-/health"  # POST "down", "slow <ms>" or "up": the demo hook a failover drill uses


def _slow(state: str) -> int | None:
    """The milliseconds of "slow <ms>" (0 to 10000), or None for any other body."""
    word, _, value = state.partition(" ")
    if word != "slow" or not value.strip().isdigit() or int(value) > 10_000:
        return None
    return int(value)


class _Handler(BaseHTTPRequestHandler):
    body = b""
    server_version = "dnsportal-demo"

    def do_GET(self) -> None:
        self._answer(send_body=True)

    def do_HEAD(self) -> None:
        self._answer(send_body=False)

    def do_POST(self) -> None:
        length = min(int(self.headers.get("Content-Length") or 0), 64)
        state = self.rfile.read(length).decode(errors="replace").strip().lower()
        delay_ms = _slow(state)
        if self.path.split("?")[0] != HEALTH_PATH or (state not in ("up", "down") and delay_ms is None):
            self.send_error(404 if self.path.split("?")[0] != HEALTH_PATH else 400)
            return
        self.server.healthy = state != "down"  # type: ignore[attr-defined]
        self.server.delay_s = (delay_ms or 0) / 1000  # type: ignore[attr-defined]
        reply = f"{state}\n".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def _answer(self, *, send_body: bool) -> None:
        if not getattr(self.server, "healthy", True):
            self.send_error(503, "marked down through the health switch")
            return
        if delay := getattr(self.server, "delay_s", 0.0):
            time.sleep(delay)  # a slow cluster: each page takes this long
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(self.body)))
        self.send_header("Cache-Control", "no-store")  # each request must reach a cluster
        self.end_headers()
        if send_body:
            self.wfile.write(self.body)

    def log_message(self, format: str, *args: object) -> None:
        pass  # hundreds of requests a second would drown every other log line


class _Server(ThreadingHTTPServer):
    # socketserver's listen backlog of 5 drops the SYNs of a concurrent probe (the client retries only after
    # 1 s); a load balancer in front of a cluster listens with a long backlog
    request_queue_size = 512
    daemon_threads = True
    healthy = True  # the health switch (HEALTH_PATH)
    delay_s = 0.0  # "slow <ms>" through the same switch


class _Server6(_Server):
    address_family = socket.AF_INET6


@dataclass
class PageServer:
    """A running page server: where it listens, which cluster it names, and `stop()`."""

    address: str
    port: int
    cluster: str
    _server: _Server
    _thread: threading.Thread

    @property
    def url(self) -> str:
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"http://{host}:{self.port}/"

    def stop(self) -> None:
        """Stop serving and close the socket (idempotent)."""
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(5)
        self._server.server_close()


def start_page_server(address: str, port: int, cluster: str) -> PageServer:
    """Serve `cluster`'s page on (address, port) from a daemon thread; port 0 takes a free port.

    Raises OSError when the address and port cannot be bound (in use, or an address not on this machine).
    """
    handler = type(f"Page_{cluster}", (_Handler,), {"body": page(cluster)})
    server_class = _Server6 if ":" in address else _Server
    server = server_class((address, port), handler)
    thread = threading.Thread(
        target=server.serve_forever,
        kwargs={"poll_interval": 0.05},
        name=f"page-{cluster}",
        daemon=True,
    )
    thread.start()
    return PageServer(address, server.server_address[1], cluster, server, thread)


def start_page_servers(pages: Mapping[str, str], port: int = 0, *, attempts: int = 20) -> list[PageServer]:
    """One page server per `{address: cluster}`, all on one port: `port`, or with 0 the first free port
    that every address can bind (tried `attempts` times). Stops those it started if one cannot bind."""
    if not pages:
        raise ValueError("no addresses to serve")
    for _ in range(attempts if port == 0 else 1):
        started: list[PageServer] = []
        want = port
        try:
            for address, cluster in pages.items():
                started.append(start_page_server(address, want, cluster))
                want = started[0].port
        except OSError:
            for server in started:
                server.stop()
            if port:
                raise
            continue
        return started
    raise OSError(f"no port free on every one of {', '.join(pages)} after {attempts} tries")


def free_port_on(addresses: Iterable[str], attempts: int = 20) -> int:
    """A TCP port free on every one of `addresses` (tried `attempts` times)."""
    addresses = list(addresses)
    for _ in range(attempts):
        held: list[socket.socket] = []
        try:
            for address in addresses:
                s = socket.socket(socket.AF_INET6 if ":" in address else socket.AF_INET, socket.SOCK_STREAM)
                held.append(s)
                s.bind((address, held[0].getsockname()[1] if len(held) > 1 else 0))
            return held[0].getsockname()[1]
        except OSError:
            continue
        finally:
            for s in held:
                s.close()
    raise OSError(f"no port free on every one of {', '.join(addresses)} after {attempts} tries")


def spawn_page_servers(pages: Mapping[str, str], port: int = 0, *, deadline_s: float = 10.0) -> Service:
    """`start_page_servers` in a child process (this module's CLI) that dies with its parent; returns the
    running `Service` (its `port`, `stop()`, `log_tail()`) once every address accepts connections.
    Raises `ServiceError` with the child's output if it does not come up."""
    port = port or free_port_on(pages)
    workdir = Path(tempfile.mkdtemp(prefix="dnsportal-pages-"))
    log_path = workdir / "pages.log"
    cmd = [sys.executable, "-m", "tools.demo_http", *(f"{a}={c}" for a, c in pages.items()), f"--port={port}"]
    svc = Service(
        "page servers",
        f"http://{next(iter(pages))}:{port}/",
        port,
        _popen(cmd, log_path, Path(__file__).resolve().parent.parent),
        workdir,
        log_path,
        owns_workdir=True,
    )
    _wait(lambda: all(port_open(port, address) for address in pages), svc, deadline_s)
    return svc


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("pages", nargs="+", metavar="ADDRESS=CLUSTER")
    ap.add_argument("--port", type=int, default=0, help="port for every address (default: a free one)")
    args = ap.parse_args(argv)
    pages = {}
    for entry in args.pages:
        address, sep, cluster = entry.partition("=")
        if not sep or not address or not cluster:
            ap.error(f"{entry!r} is not ADDRESS=CLUSTER")
        pages[address] = cluster
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})  # sigwait needs them blocked
    servers = start_page_servers(pages, args.port)
    for server in servers:
        print(f"{server.url} serves the page of {server.cluster}", flush=True)
    try:
        signal.sigwait({signal.SIGINT, signal.SIGTERM})
    finally:
        for server in servers:
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
