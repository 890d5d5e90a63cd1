"""The embedded portal's own services: where `make up` records the ports of the PostgreSQL and Redis it runs.

`make up` starts a PostgreSQL (data in `DNSPORTAL_DATA_DIR/postgres`) and a Redis of its own on free loopback
ports and writes them to `DNSPORTAL_DATA_DIR/services.json`, so a second checkout with its own data directory
never shares them, and `manage.py` run by hand beside it finds them. No Django import: settings read this.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

SERVICES_FILE = "services.json"
DATABASE_NAME = "dnsportal"


def recorded_ports(data_dir: Path) -> dict[str, int]:
    """{"postgres": port, "redis": port, "moto": port, "pdns_dns": port, "pdns_api": port, "demo_http": port}
    as `make up` last recorded them (the last four with the demo only); {} before."""
    try:
        data = json.loads((data_dir / SERVICES_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return {k: int(v) for k, v in data.items() if str(v).isdigit()}


def record_ports(data_dir: Path, **ports: int) -> None:
    """Write the ports atomically (a reader never sees half a file)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    tmp = data_dir / f".{SERVICES_FILE}.tmp"
    tmp.write_text(json.dumps(ports, indent=2) + "\n")
    os.replace(tmp, data_dir / SERVICES_FILE)


def database_url(data_dir: Path) -> str:
    """The embedded PostgreSQL: TCP on loopback at the recorded port, else its socket directory.

    Without a recorded port (make up never ran with this data directory) the URL names the socket directory,
    so the connection error says where the portal looked.
    """
    port = recorded_ports(data_dir).get("postgres")
    if port:
        return f"postgres://postgres@127.0.0.1:{port}/{DATABASE_NAME}"
    from urllib.parse import quote

    return f"postgres://postgres@{quote(str(data_dir / 'postgres'), safe='')}/{DATABASE_NAME}"


def redis_url(data_dir: Path) -> str:
    port = recorded_ports(data_dir).get("redis")
    # Port 0 cannot be connected to: an unrecorded Redis fails loudly instead of reaching someone else's 6379.
    return f"redis://127.0.0.1:{port or 0}/0"


def demo_http_port(data_dir: Path) -> int | None:
    """The port the demo's on-prem clusters serve their pages on (127.0.0.2, 127.0.0.3, ...: tools/demo_http),
    as `make up` last recorded it; None when it never ran the demo with this data directory."""
    return recorded_ports(data_dir).get("demo_http")


# The API key of the demo's PowerDNS (make up, tools/up.py): kept across restarts like its database, so the
# portal's account for it stays valid. A secret: readable by its owner only, never printed.
PDNS_API_KEY_FILE = "pdns-api-key"


def pdns_api_key_path(data_dir: Path) -> Path:
    return data_dir / PDNS_API_KEY_FILE


def pdns_api_key(data_dir: Path, *, create: bool = False) -> str | None:
    """The demo PowerDNS's API key; with `create`, a new one is made and stored (0600) when there is none."""
    path = pdns_api_key_path(data_dir)
    try:
        key = path.read_text().strip()
    except FileNotFoundError:
        key = ""
    if key or not create:
        return key or None
    import secrets

    key = secrets.token_hex(24)
    data_dir.mkdir(parents=True, exist_ok=True)
    tmp = data_dir / f".{PDNS_API_KEY_FILE}.tmp"
    tmp.unlink(missing_ok=True)
    # Created 0600 whatever the umask: the key never exists readable by others, not even for a moment.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(key + "\n")
    os.replace(tmp, path)
    return key


# The demo's progress, written by `make up` (tools/up.py) while it builds and starts the demo clusters, read
# by the dashboard: {"state": "building"|"starting"|"ready"|"failed"|"stopped", "step": "...", "at": epoch}.
DEMO_STATUS_FILE = "demo-status.json"
# Written when an admin removes the demo objects: `make up` then no longer starts or registers the demo.
DEMO_REMOVED_FILE = "demo-removed.json"


def write_demo_status(data_dir: Path, state: str, step: str) -> None:
    import time

    data_dir.mkdir(parents=True, exist_ok=True)
    tmp = data_dir / f".{DEMO_STATUS_FILE}.tmp"
    tmp.write_text(json.dumps({"state": state, "step": step, "at": time.time()}) + "\n")
    os.replace(tmp, data_dir / DEMO_STATUS_FILE)


def read_demo_status(data_dir: Path) -> dict:
    """The last status `make up` wrote, or {} when it wrote none (demo off, or not started by make up)."""
    try:
        return json.loads((data_dir / DEMO_STATUS_FILE).read_text())
    except (OSError, ValueError):
        return {}


def demo_removed(data_dir: Path) -> bool:
    return (data_dir / DEMO_REMOVED_FILE).exists()
