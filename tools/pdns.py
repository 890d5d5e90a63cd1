"""A real PowerDNS Authoritative server on loopback for tests, benches and demos.

`start_pdns()` runs Debian's `pdns_server` (packages `pdns-server`, `pdns-backend-sqlite3`, and
`pdns-backend-geoip` with `geoip-database` for LUA's country() and continent()) in the foreground with its own
config dir and a gsqlite3 database, on free ports for DNS (UDP and TCP) and the HTTP
API, with LUA records on and every cache off, so a change made through the API is what the next query sees
(testinfra.md, section 3). Readiness has a deadline: the API answers and the DNS port answers a query. A
server that does not come up raises `ServiceError` with its log tail (tests fail on it; they never skip).

The child gets PR_SET_PDEATHSIG (`tools.services._die_with_parent`), so no pdns_server outlives its parent.

By default every start is a new server: a fresh database, new ports, a new API key (tests and benches).
`keep=True` (make up's demo, tools/up.py) keeps the database of `workdir` (its schema is created only when the
file is new) and takes the ports and API key it is given, so the zones and the portal's account stay valid
across restarts; a port that is taken meanwhile is replaced by a free one (the caller records what it got).
The API key is in the config file only, which is readable by its owner alone.

CLI: `python -m tools.pdns` runs one in the foreground and prints its DNS port, API URL and the file
that holds its API key (the key itself is a secret and is not printed).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import sqlite3
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dns.message
import dns.query
import dns.rcode
import requests

from tools.services import Service, ServiceError, _popen, _require, _wait, free_port

SCHEMA = Path("/usr/share/pdns-backend-sqlite3/schema/schema.sqlite3.sql")
GEOIP_DATABASE = Path("/usr/share/GeoIP/GeoIP.dat")  # Debian's geoip-database: countries and continents
GEOIP_BACKEND_GLOB = "*/pdns/libgeoipbackend.so"  # under /usr/lib, in the architecture's directory
HOST = "127.0.0.1"
HOST6 = "::1"
# An rrset for the helpers: (name, type, ttl, contents). The name is a FQDN with a trailing dot, or relative
# to the zone ("@" is the apex); contents are in zone-file presentation format, as the API expects them
# (TXT quoted: '"hello world"'; LUA: 'A "pickrandom({...})"').
RRset = tuple[str, str, int, Sequence[str]]


class PdnsApiError(RuntimeError):
    """The PowerDNS HTTP API refused a call; the message holds its status and error text."""


@dataclass
class PdnsServer:
    """A running pdns_server: where it answers DNS, where its API is, and helpers over the API."""

    service: Service
    dns_port: int
    api_port: int
    api_key: str
    addresses: tuple[str, ...] = (HOST,)  # where DNS answers: 127.0.0.1, and ::1 when started with ipv6
    host: str = HOST  # where the API listens

    @property
    def api_url(self) -> str:
        """The API base for this server: `http://127.0.0.1:<port>/api/v1/servers/localhost`."""
        return f"http://{self.host}:{self.api_port}/api/v1/servers/localhost"

    @property
    def pid(self) -> int:
        return self.service.pid

    @property
    def workdir(self) -> Path:
        return self.service.workdir

    def running(self) -> bool:
        return self.service.running()

    def log_tail(self, lines: int = 30) -> str:
        return self.service.log_tail(lines)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, wait (pdns takes about 1 s to exit), SIGKILL after `timeout`; remove an owned workdir."""
        self.service.stop(timeout)

    def answers(self) -> bool:
        """The API answers with this key and every DNS address answers a query."""
        resp = requests.get(self.api_url, headers={"X-API-Key": self.api_key}, timeout=0.5)
        if resp.status_code != 200:
            return False
        # Any DNS response means the listener is up: for the root zone, which it does not serve, REFUSED.
        for address in self.addresses:
            query = dns.message.make_query(".", "SOA")
            answer = dns.query.udp(query, address, port=self.dns_port, timeout=0.3)
            if answer.rcode() not in (dns.rcode.REFUSED, dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
                return False
        return True

    def wait_ready(self, deadline_s: float = 20.0) -> None:
        """Wait until it `answers()`; if it does not, stop it and raise `ServiceError` with the log tail."""
        _wait(self.answers, self.service, deadline_s)

    # --- HTTP API helpers --------------------------------------------------------------------------------

    def _call(self, method: str, path: str, json: Any = None, ok: Iterable[int] = (200, 201, 204)) -> Any:
        resp = requests.request(
            method, f"{self.api_url}{path}", headers={"X-API-Key": self.api_key}, json=json, timeout=10
        )
        if resp.status_code not in set(ok):
            try:
                detail = resp.json().get("error", resp.text)
            except ValueError:
                detail = resp.text
            raise PdnsApiError(f"PowerDNS API {method} {path}: HTTP {resp.status_code}: {detail}")
        return resp.json() if resp.content else None

    def create_zone(self, name: str, rrsets: Iterable[RRset] = (), *, ttl: int = 60) -> str:
        """Create a Native zone `name` with an NS record and `rrsets`; return its FQDN.

        The zone's NS is `ns1.<zone>` with an A record 127.0.0.1; PowerDNS adds the SOA itself. Native zones
        are neither primary nor secondary: no NOTIFY or transfer, each server holds what it is given.
        """
        zone = _fqdn(name)
        ns_name = f"ns1.{zone}"
        payload = {
            "name": zone,
            "kind": "Native",
            "nameservers": [ns_name],
            "rrsets": [
                _rrset_json(zone, (ns_name, "A", ttl, [HOST]), changetype=None),
                *(_rrset_json(zone, rr, changetype=None) for rr in rrsets),
            ],
        }
        self._call("POST", "/zones", payload)
        return zone

    def zone_names(self) -> list[str]:
        """The FQDNs of the zones the server holds."""
        return sorted(z["name"] for z in self._call("GET", "/zones"))

    def ensure_zone(self, name: str, rrsets: Iterable[RRset] = (), *, ttl: int = 60) -> bool:
        """Create the zone as `create_zone` does unless the server holds it already (its records then stay as
        they are); True when it was created."""
        if _fqdn(name) in self.zone_names():
            return False
        self.create_zone(name, rrsets, ttl=ttl)
        return True

    def replace_rrsets(self, zone: str, rrsets: Iterable[RRset]) -> None:
        """Replace (create or overwrite) rrsets in one PATCH; PowerDNS applies a PATCH atomically."""
        body = {"rrsets": [_rrset_json(_fqdn(zone), rr, changetype="REPLACE") for rr in rrsets]}
        self._call("PATCH", f"/zones/{_fqdn(zone)}", body)

    def delete_rrset(self, zone: str, name: str, rdtype: str) -> None:
        """Delete the rrset (name, type); deleting one that does not exist succeeds (HTTP 204)."""
        z = _fqdn(zone)
        body = {"rrsets": [{"name": _qualify(name, z), "type": rdtype.upper(), "changetype": "DELETE"}]}
        self._call("PATCH", f"/zones/{z}", body)

    def delete_zone(self, zone: str) -> None:
        """Delete a zone and all its records; a zone that does not exist is not an error."""
        self._call("DELETE", f"/zones/{_fqdn(zone)}", ok=(204, 404))

    def rrsets(self, zone: str) -> list[dict[str, Any]]:
        """The zone's rrsets as the API lists them (name, type, ttl, records)."""
        return self._call("GET", f"/zones/{_fqdn(zone)}")["rrsets"]


def _fqdn(name: str) -> str:
    return name if name.endswith(".") else name + "."


def _qualify(name: str, zone: str) -> str:
    if name in ("@", ""):
        return zone
    return name if name.endswith(".") else f"{name}.{zone}"


def _rrset_json(zone: str, rr: RRset, changetype: str | None) -> dict[str, Any]:
    name, rdtype, ttl, contents = rr
    out: dict[str, Any] = {
        "name": _qualify(name, zone),
        "type": rdtype.upper(),
        "ttl": ttl,
        "records": [{"content": c, "disabled": False} for c in contents],
    }
    if changetype:
        out["changetype"] = changetype
    return out


def _port_free(family: int, kind: int, host: str, port: int) -> bool:
    with socket.socket(family, kind) as s:
        if kind == socket.SOCK_STREAM:
            # Only a listener makes a TCP port taken: the TIME_WAIT connections a server just stopped leaves
            # behind do not (and would otherwise move a restarted server to a new port for a minute).
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def _dns_port_free(port: int, ipv6: bool) -> bool:
    # DNS listens on UDP and TCP on the same port (and on ::1 too with ipv6).
    wanted = [(socket.AF_INET, kind, HOST) for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM)]
    if ipv6:
        wanted += [(socket.AF_INET6, kind, HOST6) for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM)]
    return all(_port_free(family, kind, host, port) for family, kind, host in wanted)


def _free_dns_port(ipv6: bool) -> int:
    # free_port() is a free TCP port; take one that is free for UDP too.
    for _ in range(50):
        port = free_port()
        if _dns_port_free(port, ipv6):
            return port
    raise ServiceError("no free port for DNS on loopback (UDP and TCP)")


def _create_database(db: Path) -> None:
    """The gsqlite3 schema in a new file, renamed into place once complete: a start interrupted halfway
    leaves no database without tables for the next start to keep."""
    tmp = db.with_name(f".{db.name}.new")
    tmp.unlink(missing_ok=True)
    with contextlib.closing(sqlite3.connect(tmp)) as conn:
        conn.executescript(SCHEMA.read_text())
    os.replace(tmp, db)


def _write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read (it holds the API key), whatever the umask, atomically."""
    tmp = path.with_name(f".{path.name}.new")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def _config(
    workdir: Path,
    db: Path,
    dns_port: int,
    api_port: int,
    api_key: str,
    shuffle: bool,
    ipv6: bool,
    geoip: bool = True,
) -> str:
    geo = [
        # the GeoIP backend beside the records: LUA's country() and continent() look addresses up in it
        # (Debian's geoip-database); it serves no zone of its own (an empty zones file)
        f"geoip-database-files={GEOIP_DATABASE}",
        f"geoip-zones-file={workdir / 'geoip-zones.yaml'}",
    ]
    return "\n".join(
        [
            # PowerDNS shuffles the records of an answer by default (round robin); no-shuffle keeps one order
            f"no-shuffle={'off' if shuffle else 'on'}",
            "launch=gsqlite3,geoip" if geoip else "launch=gsqlite3",
            f"gsqlite3-database={db}",
            *(geo if geoip else []),
            f"local-address={HOST}, {HOST6}" if ipv6 else f"local-address={HOST}",
            f"local-port={dns_port}",
            f"socket-dir={workdir}",  # control socket; the default /run/pdns is not ours
            "daemon=no",
            "guardian=no",
            "disable-syslog=yes",
            "write-pid=no",
            "loglevel=4",
            "api=yes",
            f"api-key={api_key}",
            "webserver=yes",
            f"webserver-address={HOST}",
            f"webserver-port={api_port}",
            "webserver-allow-from=127.0.0.0/8",
            # LUA records on, with one Lua state per thread reused across queries rather than one built per
            # query: same answers, twice the queries per second for weighted (pickwrandom) names
            "enable-lua-records=shared",
            # ifurlup/ifportup availability checks every second (default 5 s), so a failover is seen quickly
            "lua-health-checks-interval=1",
            # LUA records see the client subnet of an EDNS Client Subnet option (bestwho/ecswho) only then
            "edns-subnet-processing=yes",
            "default-ttl=60",
            # no packet, query or negative cache: an API change is what the very next query sees
            "cache-ttl=0",
            "query-cache-ttl=0",
            "negquery-cache-ttl=0",
            "zone-cache-refresh-interval=0",
            "security-poll-suffix=",  # no secpoll lookup to powerdns.com at start
            "",
        ]
    )


def start_pdns(
    workdir: Path | None = None,
    *,
    shuffle: bool = True,
    ipv6: bool = False,
    deadline_s: float = 20.0,
    keep: bool = False,
    dns_port: int | None = None,
    api_port: int | None = None,
    api_key: str | None = None,
    detach: bool = False,
    wait: bool = True,
    geoip: bool = True,
) -> PdnsServer:
    """Start pdns_server on loopback and wait until its API and its DNS port answer.

    `workdir` holds the config, the sqlite database and the log; without one a temporary directory is
    created and removed by `stop()`. `shuffle=False` serves every answer's records in one fixed order;
    `ipv6=True` answers DNS on ::1 as well (same port).

    By default the database is new and the ports and API key too. `keep=True` (needs `workdir`) keeps the
    database an earlier start left there. `dns_port`, `api_port` and `api_key` are used when given, each
    port only while it is free (else a free one; the server's fields say which it got). `detach`: a session
    of its own, so a Ctrl-C in make up's terminal reaches only the supervisor, which stops it in order.
    `wait=False` returns once the process is started; `wait_ready()` waits for it later. `geoip=False`
    runs without the GeoIP backend (a server that cannot answer geolocation, for tests).
    Raises `ServiceError` with the log tail if the server does not come up.
    """
    binary = _require("pdns_server", "pdns-server")
    if not SCHEMA.exists():
        raise ServiceError(f"{SCHEMA} is missing: install the Debian package 'pdns-backend-sqlite3'.")
    if geoip and not GEOIP_DATABASE.exists():
        raise ServiceError(f"{GEOIP_DATABASE} is missing: install the Debian package 'geoip-database'.")
    if geoip and not any(Path("/usr/lib").glob(GEOIP_BACKEND_GLOB)):
        raise ServiceError(
            "PowerDNS's GeoIP backend is missing: install the Debian package 'pdns-backend-geoip'."
        )
    if keep and workdir is None:
        raise ValueError("keep=True keeps the database of a workdir: give one")
    owns = workdir is None
    workdir = Path(workdir or tempfile.mkdtemp(prefix="dnsportal-pdns-"))
    workdir.mkdir(parents=True, exist_ok=True)
    db = workdir / "pdns.sqlite3"
    if not keep:
        db.unlink(missing_ok=True)  # a fresh database: no zone from an earlier run comes back
    if not db.exists():
        _create_database(db)
    if not (dns_port and _dns_port_free(dns_port, ipv6)):
        dns_port = _free_dns_port(ipv6)
    if not (
        api_port and api_port != dns_port and _port_free(socket.AF_INET, socket.SOCK_STREAM, HOST, api_port)
    ):
        api_port = free_port()
        while api_port == dns_port:
            api_port = free_port()
    api_key = api_key or secrets.token_hex(16)
    (workdir / "geoip-zones.yaml").write_text("domains: []\n")
    _write_private(
        workdir / "pdns.conf", _config(workdir, db, dns_port, api_port, api_key, shuffle, ipv6, geoip)
    )
    log_path = workdir / "pdns.log"
    cmd = [binary, f"--config-dir={workdir}"]
    svc = Service(
        "pdns",
        f"dns://{HOST}:{dns_port}",
        dns_port,
        _popen(cmd, log_path, workdir, detach=detach),
        workdir,
        log_path,
        owns_workdir=owns,
        extra={"api_port": api_port},
    )
    server = PdnsServer(
        service=svc,
        dns_port=dns_port,
        api_port=api_port,
        api_key=api_key,
        addresses=(HOST, HOST6) if ipv6 else (HOST,),
    )
    if wait:
        server.wait_ready(deadline_s)
    return server


def main(argv: list[str]) -> int:
    if argv:
        print("usage: python -m tools.pdns", file=sys.stderr)
        return 2
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})  # sigwait needs them blocked
    started = time.monotonic()
    server = start_pdns()
    print(
        f"pdns ready in {time.monotonic() - started:.2f} s: DNS {HOST}:{server.dns_port} (UDP+TCP), "
        f"API {server.api_url} (X-API-Key: `api-key` in {server.workdir / 'pdns.conf'}), pid {server.pid}; "
        "Ctrl-C stops it",
        flush=True,
    )
    try:
        signal.sigwait({signal.SIGINT, signal.SIGTERM})
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
