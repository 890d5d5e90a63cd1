"""`make up` exactly as the README says, in a fresh copy of the checkout: the demo's whole loop in Chromium.

No DATABASE_URL, no REDIS_URL, the demo on by default: `make up` installs what the copy lacks (its own .venv),
starts its own PostgreSQL and Redis, the three demo clusters, the Route53 stand-in and the demo's PowerDNS.
Through the browser the admin sees three healthy clusters with their distributions, follows app.example.com to
its zone and its change set; the approver approves it; the zone shows the records applied and owned. The
approver approves app.dc.internal in dc.internal too (the on-prem clusters' round robin): PowerDNS answers
both addresses, and each address answers HTTP with its cluster's page. No job failed. Ctrl-C stops every
process without a traceback.
"""

from __future__ import annotations

import json
import os
import pty
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import dns.message
import dns.query
import dns.rdatatype
import pytest
import requests
from playwright.sync_api import Page, expect

from tests.fixtures.browser import snap
from tools.services import free_port

ROOT = Path(__file__).resolve().parents[2]
KUBE_BIN = Path("tools/kube_sandbox/bin")
LOGIN = re.compile(r"\[up\]\s+(admin|approver)\s+username (\S+)\s+password (\S+)")
READY_LINE = "Ctrl-C stops everything."


def fresh_copy(into: Path, venv_from: Path | None = None) -> Path:
    """The checkout's files (tracked and new, not ignored ones) in `into`, as a fresh clone of this tree.

    The kube-apiserver and etcd binaries are linked from this checkout (the same sources, so build.sh finds
    them current, as it would with Go's warm build cache after a minute of linking). `venv_from` copies an
    installed .venv instead of letting `make up` install one (only where the test is not about installing).
    """
    files = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for name in filter(None, files):
        src = ROOT / os.fsdecode(name)
        if src.is_file():
            dst = into / os.fsdecode(name)
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst)
    (into / KUBE_BIN).mkdir(parents=True, exist_ok=True)
    for binary in (ROOT / KUBE_BIN).iterdir():
        os.link(binary, into / KUBE_BIN / binary.name)
    if venv_from is not None:
        shutil.copytree(venv_from / ".venv", into / ".venv", symlinks=True)
    return into


def new_dir(prefix: str) -> Path:
    # PostgreSQL runs as the `postgres` user and must reach the data directory inside (pytest's tmp is 0700).
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o755)
    return path


@dataclass
class MakeUp:
    checkout: Path
    port: int
    proc: subprocess.Popen
    lines: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_for(self, text: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.output:
            assert self.proc.poll() is None, f"make up exited early:\n{self.output[-6000:]}"
            assert time.monotonic() < deadline, f"no {text!r} within {timeout:.0f} s:\n{self.output[-6000:]}"
            time.sleep(0.2)

    def logins(self) -> dict[str, tuple[str, str]]:
        return {role: (user, password) for role, user, password in LOGIN.findall(self.output)}

    def ctrl_c(self) -> None:
        """What Ctrl-C in a terminal does: SIGINT to the foreground process group (make, the supervisor)."""
        os.killpg(self.proc.pid, signal.SIGINT)
        self.proc.wait(60)


def make_up(checkout: Path, *, tty: bool = False, **env: str) -> MakeUp:
    """`make up` with only the variables given (DNSPORTAL_PORT, or none): what the README tells a newcomer.

    `tty`: its output goes to a pseudo-terminal, as when a person runs it in a terminal.
    """
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DATABASE_URL", "REDIS_URL", "DNSPORTAL_", "DJANGO_", "LOG_"))
    }
    port = free_port()
    if tty:
        reader, writer = pty.openpty()
        out = writer
    else:
        out = subprocess.PIPE
    proc = subprocess.Popen(
        ["make", "up"],
        cwd=checkout,
        env={**clean, "DNSPORTAL_PORT": str(port), **env},
        stdout=out,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    up = MakeUp(checkout, port, proc)
    if tty:
        os.close(writer)
        stream = open(reader, errors="replace")  # noqa: SIM115  (read until make up ends)
    else:
        stream = proc.stdout
    threading.Thread(target=lambda: _read_lines(stream, up.lines), daemon=True).start()
    return up


def _read_lines(stream, lines: list[str]) -> None:
    try:
        for line in iter(stream.readline, ""):
            lines.append(line.replace("\r", ""))
    except OSError:  # a pseudo-terminal reports EIO once the last writer has gone
        pass


def _kill(up: MakeUp) -> None:
    if up.proc.poll() is None:
        os.killpg(up.proc.pid, signal.SIGINT)
        try:
            up.proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(up.proc.pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def first_checkout() -> Iterator[Path]:
    checkout = fresh_copy(new_dir("dnsportal-checkout-"))
    yield checkout
    shutil.rmtree(checkout, ignore_errors=True)


def login(page: Page, up: MakeUp, role: str) -> None:
    username, password = up.logins()[role]
    page.goto(up.url + "/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.keyboard.press("Enter")  # keyboard only
    page.wait_for_url(up.url + "/")


def logout(page: Page) -> None:
    page.locator("form[action='/logout/'] button").click()
    page.wait_for_url(re.compile(r".*/login/.*"))


def reload_until(page: Page, url: str, ready, timeout: float = 90) -> None:
    """Open `url` until `ready(page)` holds: the workers get there on their own, the test only looks."""
    deadline = time.monotonic() + timeout
    while True:
        page.goto(url)
        if ready(page):
            return
        assert time.monotonic() < deadline, f"{url} never got there:\n{page.inner_text('main')}"
        page.wait_for_timeout(500)


def test_make_up_runs_the_whole_demo_loop_and_ctrl_c_stops_everything(first_checkout, page: Page):
    up = make_up(first_checkout)
    try:
        # A fresh checkout installs its .venv, then builds nothing (binaries current) and starts the demo.
        up.wait_for(READY_LINE, timeout=900)
        out = up.output
        for step in ("PostgreSQL ready", "Redis ready", "migrating", "demo: starting the clusters"):
            assert step in out, out
        logins = up.logins()
        assert set(logins) == {"admin", "approver"}, out
        services = (first_checkout / "var" / "services.json").read_text()
        assert '"postgres"' in services and '"redis"' in services
        assert (first_checkout / "var" / "postgres" / "data" / "PG_VERSION").exists()
        # The portal runs on PostgreSQL only; the demo's PowerDNS keeps its zones in SQLite (its gsqlite3
        # backend), a server of its own beside the portal.
        var = first_checkout / "var"
        assert [p.relative_to(var) for p in var.rglob("*.sqlite3")] == [Path("pdns/pdns.sqlite3")]

        login(page, up, "admin")
        expect(page.locator("h1")).to_have_text("Dashboard")
        expect(page.locator("main")).to_contain_text("app.example.com")  # what to try first

        # Three demo clusters, checked healthy, each told apart by its distribution.
        def three_healthy(p: Page) -> bool:
            return p.locator("span.health.healthy").count() == 3

        reload_until(page, up.url + "/", three_healthy)  # the dashboard's demo block shows their health
        snap(page, "make-up-dashboard")
        page.goto(up.url + "/clusters/")
        expect(page.locator("td span.health.healthy")).to_have_count(3)
        for name, distro in (("eks-us-east-1", "EKS"), ("rke2-dc1", "RKE2"), ("k3s-edge", "K3s")):
            row = page.locator("tr", has_text=name)
            expect(row).to_contain_text(distro)
        snap(page, "make-up-clusters")

        # app.example.com, served by all three, leads to its zone and the change set waiting for review.
        reload_until(
            page,
            up.url + "/endpoints/?q=app.example.com",
            lambda p: p.get_by_role("link", name="app.example.com", exact=True).count() > 0,
        )
        page.get_by_role("link", name="app.example.com", exact=True).first.click()
        expect(page.locator("h1")).to_have_text("app.example.com")
        # the clusters' watches report on their own time: the page is reloaded until every one has
        reload_until(page, page.url, lambda p: "Served by 3 clusters" in p.inner_text("main"))
        page.get_by_role("link", name="example.com", exact=True).first.click()
        expect(page.locator("h1")).to_contain_text("example.com")
        zone_url = page.url

        def pending(p: Page) -> bool:
            return p.locator("span.badge.pending").count() > 0

        reload_until(page, zone_url, pending)
        snap(page, "make-up-zone-pending")
        page.get_by_role("link", name=re.compile(r"Change set #\d+")).first.click()
        changeset_url = page.url
        expect(page.locator("table.diff")).to_contain_text("app.example.com.")
        logout(page)

        # The second person approves; the worker applies it to the stand-in.
        login(page, up, "approver")
        page.goto(changeset_url)
        page.get_by_role("button", name="Approve").click()
        reload_until(page, changeset_url, lambda p: p.locator("span.badge.applied").count() > 0)
        snap(page, "make-up-applied")

        page.goto(zone_url)
        records = page.locator("table", has_text="app.example.com.")
        expect(records).to_contain_text("owned")
        for target in ("203.0.113.10", "198.51.100.10", "198.51.100.40"):
            expect(records).to_contain_text(target)

        # dc.internal in the demo's PowerDNS: the on-prem clusters publish app.dc.internal, one round-robin
        # record set with both load balancers' addresses; the approver approves it (discovery proposed it).
        ports = json.loads((first_checkout / "var" / "services.json").read_text())
        assert f"dig @127.0.0.1 -p {ports['pdns_dns']} app.dc.internal" in out, out
        reload_until(
            page,
            up.url + "/zones/",
            lambda p: p.get_by_role("link", name="dc.internal", exact=True).count() > 0,
        )
        page.get_by_role("link", name="dc.internal", exact=True).click()
        expect(page.locator("h1")).to_contain_text("dc.internal")
        internal_url = page.url
        reload_until(page, internal_url, pending)
        page.get_by_role("link", name=re.compile(r"Change set #\d+")).first.click()
        internal_changeset = page.url
        diff = page.locator("table.diff")
        for text in ("app.dc.internal.", "127.0.0.2", "127.0.0.3"):
            expect(diff).to_contain_text(text)
        page.get_by_role("button", name="Approve").click()
        reload_until(page, internal_changeset, lambda p: p.locator("span.badge.applied").count() > 0)
        page.goto(internal_url)
        records = page.locator("table", has_text="app.dc.internal.")
        expect(records).to_contain_text("owned")
        for target in ("127.0.0.2", "127.0.0.3"):
            expect(records).to_contain_text(target)
        snap(page, "make-up-dc-internal-applied")
        query = dns.message.make_query("app.dc.internal.", "A")
        answer = dns.query.udp(query, "127.0.0.1", port=ports["pdns_dns"], timeout=3)
        addresses = sorted(
            rr.address for rrset in answer.answer if rrset.rdtype == dns.rdatatype.A for rr in rrset
        )
        assert addresses == ["127.0.0.2", "127.0.0.3"], answer
        pages = {"127.0.0.2": "rke2-dc1", "127.0.0.3": "k3s-edge"}
        for address, cluster in pages.items():
            body = requests.get(f"http://{address}:{ports['demo_http']}/", timeout=5).text
            assert cluster in body and all(c not in body for c in pages.values() if c != cluster), body

        page.goto(up.url + "/jobs/?status=failed")
        expect(page.locator("main")).to_contain_text("No job runs match these filters")
    finally:
        pids = _tree(up.proc.pid)
        _kill(up)
    output = up.output
    assert "[up] stopped" in output, output[-4000:]
    assert "Traceback" not in output, output[output.index("Traceback") - 2000 :][:6000]
    deadline = time.monotonic() + 20
    while (alive := {p for p in pids if _is_live(p)}) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not alive, f"processes left behind: {alive}"


def test_two_make_ups_side_by_side_each_run_their_own_redis_and_postgresql():
    # Two more checkouts, each with an empty var/ (this one's .venv copied: installing is tested above).
    checkouts = [fresh_copy(new_dir("dnsportal-checkout-"), venv_from=ROOT) for _ in range(2)]
    # The first in a terminal (a pseudo-terminal), the second with its output piped, as to a log collector.
    ups = [make_up(checkouts[0], tty=True, DNSPORTAL_DEMO="0"), make_up(checkouts[1], DNSPORTAL_DEMO="0")]
    try:
        for up in ups:
            up.wait_for(READY_LINE, timeout=300)
        recorded = [(up.checkout / "var" / "services.json").read_text() for up in ups]
        ports = [dict(re.findall(r'"(\w+)": (\d+)', text)) for text in recorded]
        assert ports[0]["postgres"] != ports[1]["postgres"]
        assert ports[0]["redis"] != ports[1]["redis"]

        import redis
        import requests

        for up, port in zip(ups, ports, strict=True):
            assert requests.get(f"{up.url}/readyz", timeout=5).status_code == 200
            # Exactly one worker on each Redis: its own, not the other checkout's. The worker registers
            # itself once it has started, which on a busy machine can be after the portal answers.
            client = redis.Redis(port=int(port["redis"]))
            deadline = time.monotonic() + 30
            while not client.smembers("rq:workers") and time.monotonic() < deadline:
                time.sleep(0.2)
            assert len(client.smembers("rq:workers")) == 1
            client.close()
        # Logs are readable text on a terminal, JSON lines otherwise.
        watch_line = re.compile(r"^\S+ \S+ INFO clusters\.watch \[\] watch \S+ started", re.M)
        # the watch process logs its start on its own time, which can be after the ready line
        ups[0].wait_for("INFO clusters.watch [] watch", timeout=60)
        ups[1].wait_for('"logger": "clusters.watch"', timeout=60)
        assert watch_line.search(ups[0].output), ups[0].output[-3000:]
        assert '{"ts": ' not in ups[0].output
        assert '"logger": "clusters.watch"' in ups[1].output and not watch_line.search(ups[1].output)
        # A third in the first checkout (its data directory in use) stops at once and says why.
        third = make_up(checkouts[0], DNSPORTAL_DEMO="0")
        assert third.proc.wait(120) != 0
        deadline = time.monotonic() + 10  # the reader thread drains what it printed last
        while "[up] stopped" not in third.output and time.monotonic() < deadline:
            time.sleep(0.1)
        assert "another make up (PostgreSQL pid" in third.output, third.output
        assert "Traceback" not in third.output
        # Each has its own database: an admin's password opens its own portal, not the other one.
        for up, other in ((ups[0], ups[1]), (ups[1], ups[0])):
            user, password = up.logins()["admin"]
            assert _logs_in(up.url, user, password)
            assert not _logs_in(other.url, user, password)
    finally:
        for up in ups:
            _kill(up)
        for checkout in checkouts:
            shutil.rmtree(checkout, ignore_errors=True)
    for up in ups:
        assert "[up] stopped" in up.output and "Traceback" not in up.output, up.output[-4000:]


def _logs_in(url: str, username: str, password: str) -> bool:
    import requests

    session = requests.Session()
    page = session.get(f"{url}/login/", timeout=5)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)[1]
    session.post(
        f"{url}/login/",
        data={"username": username, "password": password, "csrfmiddlewaretoken": token},
        timeout=5,
    )
    return "sessionid" in session.cookies


def _tree(root_pid: int) -> set[int]:
    """Every live process of the `make up` session and its descendants (what Ctrl-C has to stop)."""
    children: dict[int, list[int]] = {}
    sessions: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            children.setdefault(int(fields[1]), []).append(int(entry.name))
            sessions[int(entry.name)] = int(fields[3])
    found = {pid for pid, sid in sessions.items() if sid == root_pid}
    todo = list(found | {root_pid})
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def _is_live(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
