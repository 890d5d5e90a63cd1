"""The people browsing the portal during bench/soak.py: a locust file (locust runs it headless, in a process
of its own, so gevent's monkey-patching never reaches the soak).

Each simulated person logs in as the soak's viewer and opens, with a pause of 1 to 3 s between pages, the
pages operators use most: the dashboard, a zone, a hostname, a change set and the endpoints list. The soak
hands over what to open in SOAK_WEB_PAGES (JSON: zone ids, hostnames, change set ids) and the login in
SOAK_WEB_USER and SOAK_WEB_PASSWORD. A page that answers with the login form (the session was lost) logs the
person in again. Every page's response time goes to the JSON file SOAK_WEB_TIMES at the end.
"""

from __future__ import annotations

import json
import os
import random
import re

from locust import HttpUser, between, events, task

PAGES = json.loads(os.environ.get("SOAK_WEB_PAGES", '{"zones": [], "hosts": [], "changesets": []}'))
CSRF = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
TIMES: list[float] = []  # every page's response time (ms), logins left out: what browsing people wait


@events.request.add_listener
def _timed(name: str, response_time: float, **kwargs) -> None:
    if name != "login":
        TIMES.append(response_time)


@events.quitting.add_listener
def _write_times(**kwargs) -> None:
    if path := os.environ.get("SOAK_WEB_TIMES"):
        with open(path, "w") as f:
            json.dump(TIMES, f)


class Operator(HttpUser):
    wait_time = between(1, 3)

    def on_start(self) -> None:
        self.login()

    def login(self) -> None:
        form = self.client.get("/login/", name="login")
        token = CSRF.search(form.text or "")
        self.client.post(
            "/login/",
            {
                "username": os.environ.get("SOAK_WEB_USER", ""),
                "password": os.environ.get("SOAK_WEB_PASSWORD", ""),
                "csrfmiddlewaretoken": token.group(1) if token else "",
            },
            headers={"Referer": f"{self.host}/login/"},
            name="login",
        )

    def page(self, path: str, name: str) -> None:
        with self.client.get(path, name=name, catch_response=True) as response:
            if response.status_code == 404 and name == "hostname":
                response.success()  # a name the workload deleted since: the page says so
        if "/login/" in (response.url or ""):
            self.login()

    @task(3)
    def dashboard(self) -> None:
        self.page("/", "dashboard")

    @task(2)
    def zone(self) -> None:
        if PAGES["zones"]:
            self.page(f"/zones/{random.choice(PAGES['zones'])}/", "zone")

    @task(3)
    def hostname(self) -> None:
        if PAGES["hosts"]:
            self.page(f"/endpoints/host/{random.choice(PAGES['hosts'])}/", "hostname")

    @task(2)
    def changeset(self) -> None:
        if PAGES["changesets"]:
            self.page(f"/changes/{random.choice(PAGES['changesets'])}/", "changeset")

    @task(2)
    def endpoints(self) -> None:
        self.page("/endpoints/", "endpoints")
