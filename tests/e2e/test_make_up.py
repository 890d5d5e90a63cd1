"""`make up` on the embedded defaults: log in through Chromium with the printed password, stop with Ctrl-C."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from tests.fixtures.browser import snap
from tools.services import free_port

ROOT = Path(__file__).resolve().parents[2]


def _session_pids(sid: int) -> set[int]:
    """Every live process of a session (what Ctrl-C in that terminal would have to stop)."""
    pids = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # After the command name: state, ppid, pgrp, session ...; a zombie (Z) has already exited.
        if int(fields[3]) == sid and fields[0] != "Z":
            pids.add(int(entry.name))
    return pids


def _descendants(root_pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = set(), [root_pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


@pytest.fixture
def portal(tmp_path):
    port, redis_port = free_port(), free_port()
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "REDIS_URL", "DNSPORTAL_"))
    }
    env.update(
        {
            "DNSPORTAL_PORT": str(port),
            "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
            "DNSPORTAL_DATA_DIR": str(tmp_path / "data"),
            "DJANGO_ALLOW_ASYNC_UNSAFE": "",
        }
    )
    proc = subprocess.Popen(
        ["make", "up"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")), daemon=True)
    reader.start()
    deadline = time.monotonic() + 180
    while not any("dnsportal is up at" in line for line in lines):
        assert proc.poll() is None, "make up exited early:\n" + "".join(lines)
        assert time.monotonic() < deadline, "make up was not up in 180 s:\n" + "".join(lines)
        time.sleep(0.2)
    yield {"url": f"http://127.0.0.1:{port}", "proc": proc, "lines": lines, "data": tmp_path / "data"}
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)


def test_make_up_serves_the_portal_and_ctrl_c_stops_everything(portal, page):
    output = "".join(portal["lines"])
    match = re.search(r"Username: (\S+)\s+Password: (\S+)", output)
    assert match, output
    username, password = match.groups()
    assert (portal["data"] / "dnsportal.sqlite3").exists()  # the embedded default database

    page.goto(portal["url"] + "/")
    assert page.url.startswith(portal["url"] + "/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.keyboard.press("Enter")  # keyboard only
    page.wait_for_url(portal["url"] + "/")
    assert page.locator("h1").inner_text() == "Dashboard"
    assert "No clusters yet" in page.content()
    # Readable on a phone: nothing sticks out sideways at 390 px.
    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    snap(page, "dashboard-390")

    proc = portal["proc"]
    pids = _session_pids(proc.pid) | _descendants(proc.pid)
    assert len(pids) >= 6, pids  # make, supervisor, redis, web, worker, scheduler, watch
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in the terminal sends
    proc.wait(30)  # make itself reports the interrupt (exit 2); what matters is that everything stopped
    deadline = time.monotonic() + 15
    while (
        alive := {p for p in pids if Path(f"/proc/{p}").exists() and _is_live(p)}
    ) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not alive, f"processes left behind: {alive}"
    assert "[up] stopped" in "".join(portal["lines"])


def _is_live(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
