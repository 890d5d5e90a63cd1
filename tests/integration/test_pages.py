"""What the pages show: every action a person sees is one they may take, values in their own notation."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import urlsplit

import pytest
from django.urls import Resolver404, resolve

from dnsportal.audit import audit_record
from dnsportal.models import JobRun
from dnsportal.roles import has_role_perm
from records.models import ChangeSet, ProviderAccount, Verification, Zone, ZoneRecord
from tests.fixtures.zones import publish

pytestmark = pytest.mark.django_db

# moto (the demo's Route53 stand-in) returns the SOA value as the repr of a Python dict
MOTO_SOA = "{'Value': 'ns-2048.awsdns-64.com. hostmaster.example.com. 1 7200 900 1209600 86400'}"


def _record(zone: Zone, name: str, rtype: str, values: list[str], ownership: str, **routing) -> ZoneRecord:
    data = {"Name": name, "Type": rtype, "TTL": 300, "ResourceRecords": [{"Value": v} for v in values]}
    data.update(routing)
    return ZoneRecord.objects.create(
        zone=zone,
        name=name,
        type=rtype,
        set_identifier=routing.get("SetIdentifier", ""),
        data=data,
        ownership=ownership,
    )


@pytest.fixture
def portal(root) -> Zone:
    """A zone with records of every routing, a pending change set, a cluster, a job run, an audit entry."""
    account = ProviderAccount.objects.create(name="aws-prod", credential_kind="default")
    zone = Zone.objects.create(account=account, provider_zone_id="Z1", name="example.com.")
    _record(zone, "example.com.", "SOA", [MOTO_SOA], "unmanaged")
    _record(zone, "www.example.com.", "A", ["192.0.2.1", "192.0.2.2"], "owned")
    _record(zone, "shop.example.com.", "A", ["192.0.2.10"], "owned", SetIdentifier="eks-eu1", Weight=80)
    _record(zone, "shop.example.com.", "A", ["192.0.2.20"], "owned", SetIdentifier="rke2-dc1", Weight=20)
    _record(zone, "api.example.com.", "A", ["192.0.2.30"], "owned", SetIdentifier="main", Failover="PRIMARY")
    _record(zone, "api.example.com.", "A", ["192.0.2.31"], "owned", SetIdentifier="dr", Failover="SECONDARY")
    _record(zone, "eu.example.com.", "A", ["192.0.2.40"], "other", SetIdentifier="fra", Region="eu-central-1")
    _record(
        zone,
        "de.example.com.",
        "A",
        ["192.0.2.50"],
        "unowned",
        SetIdentifier="de",
        GeoLocation={"CountryCode": "DE"},
    )
    ChangeSet.objects.create(zone=zone, fingerprint="f" * 64)
    publish({"shop.example.com": "192.0.2.10"})
    JobRun.objects.create(name="zone_reconcile", queue="dns", kwargs={"zone_id": zone.id})
    Verification.objects.create(zone=zone, kind=Verification.Kind.DISTRIBUTION, hostname="shop.example.com")
    audit_record(
        actor=root, action="zone.update", obj=zone, before={"policy": "sync"}, after={"policy": "upsert-only"}
    )
    return zone


class _Actions(HTMLParser):
    """Links followed with GET, and where forms and htmx send POSTs."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []
        self.posts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "a" and a.get("href", "").startswith("/"):
            self.links.append(a["href"])
        if tag == "form" and a.get("method", "get").lower() == "post":
            self.posts.append(a.get("action") or "")
        for attr in ("hx-post", "formaction"):
            if a.get(attr):
                self.posts.append(a[attr])


def _perm(path: str) -> str | None:
    try:
        view = resolve(urlsplit(path).path).func
    except Resolver404:
        return None
    return getattr(view, "required_perm", None)


@pytest.mark.parametrize("persona", ["carol", "alice", "bob"])
def test_every_action_a_person_sees_is_one_their_role_allows(client, portal, persona, request):
    user = request.getfixturevalue(persona)
    client.force_login(user)
    seen, todo, refused = set(), ["/"], []
    while todo:
        page = todo.pop()
        path = urlsplit(page).path
        if path in seen or path.startswith(("/admin/", "/rq/", "/static/")) or path == "/logout/":
            continue
        seen.add(path)
        response = client.get(page)
        assert response.status_code == 200, f"{persona}: GET {page} answered {response.status_code}"
        parser = _Actions()
        parser.feed(response.content.decode())
        for link in parser.links:
            perm = _perm(link)
            if perm is not None and not has_role_perm(user, perm):
                refused.append(f"{page}: link {link} needs {perm}")
            elif perm is not None:
                todo.append(link)
        for action in parser.posts:
            target = action or page
            if urlsplit(target).path == "/logout/":
                continue
            perm = _perm(target)
            if perm is None or not has_role_perm(user, perm):
                refused.append(f"{page}: action {target} needs {perm}")
    assert len(seen) > 15, sorted(seen)
    assert not refused, "\n".join(refused)


def _text(html: bytes) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html.decode()))


def test_the_soa_is_shown_as_a_zone_file_writes_it(client, carol, portal):
    client.force_login(carol)
    soa = "ns-2048.awsdns-64.com. hostmaster.example.com. 1 7200 900 1209600 86400"
    for url in (f"/zones/{portal.id}/", "/records/?q=example.com"):
        html = client.get(url).content.decode()
        assert soa in html, url
        assert "{&#x27;Value&#x27;" not in html and "{'Value'" not in html, url


def test_the_audit_entry_shows_before_and_after_as_json(client, carol, portal):
    from dnsportal.models import AuditEntry

    entry = AuditEntry.objects.get(action="zone.update")
    client.force_login(carol)
    html = client.get(f"/audit/{entry.id}/").content.decode()
    assert "{\n  &quot;policy&quot;: &quot;sync&quot;\n}" in html
    assert "{\n  &quot;policy&quot;: &quot;upsert-only&quot;\n}" in html
    assert "&#x27;policy&#x27;" not in html


def test_the_schedules_show_dates_and_how_far_off_they_are(client, carol):
    from datetime import timedelta

    from django.utils import timezone

    from dnsportal import queue, scheduler

    last = JobRun.objects.create(name="jobruns_prune", queue="default", status=JobRun.Status.DONE)
    JobRun.objects.filter(id=last.id).update(created_at=timezone.now() - timedelta(seconds=150))
    redis = queue.rq_connection()
    key = scheduler.KEY_PREFIX + "jobruns_prune"
    due = timezone.now() + timedelta(seconds=200)
    redis.set(key, due.timestamp())
    try:
        client.force_login(carol)
        text = _text(client.get("/jobs/").content)
    finally:
        redis.delete(key)
    row = text[text.index("jobruns_prune", text.index("Schedules")) :][:300]
    assert "(epoch)" not in text
    assert f"{due:%Y-%m-%d %H:%M:%S} UTC (in 3 minutes)" in row, row
    assert "2 minutes ago Done" in row, row
    assert row.startswith("jobruns_prune 1 day "), row  # every 86,400 s, said as people say it


def test_an_unknown_hostname_is_404_with_a_page_that_helps(client, carol, portal):
    client.force_login(carol)
    response = client.get("/endpoints/host/shpo.example.com/")
    assert response.status_code == 404
    text = _text(response.content)
    assert "shpo.example.com is not known here" in text
    assert "It belongs in example.com" in text  # the zone it would be in
    assert 'href="/endpoints/host/shop.example.com/"' in response.content.decode()  # what was meant
    assert client.get("/endpoints/host/nothing.invalid/").status_code == 404


@pytest.mark.parametrize("name", ["shop.example.com", "SHOP.example.com.", "eu.example.com"])
def test_a_hostname_published_or_in_a_zone_has_its_page(client, carol, portal, name):
    # shop is published by a cluster; eu is only in the zone (another owner's record)
    client.force_login(carol)
    assert client.get(f"/endpoints/host/{name}/").status_code == 200


@pytest.mark.parametrize("url", ["/zones/{id}/", "/records/"])
def test_the_records_tables_show_each_record_sets_routing(client, carol, portal, url):
    client.force_login(carol)
    text = _text(client.get(url.format(id=portal.id)).content)
    assert "Routing" in text and "Set id" not in text
    for row in (
        "shop.example.com. A eks-eu1 : weight 80 192.0.2.10",
        "shop.example.com. A rke2-dc1 : weight 20 192.0.2.20",
        "api.example.com. A main : failover PRIMARY 192.0.2.30",
        "api.example.com. A dr : failover SECONDARY 192.0.2.31",
        "eu.example.com. A fra : latency region eu-central-1 192.0.2.40",
        "de.example.com. A de : geo country=DE 192.0.2.50",
        "www.example.com. A simple 192.0.2.1, 192.0.2.2",
    ):
        assert row in text, row


def test_the_favicon_is_linked_from_every_page_and_served_for_favicon_ico(client, carol):
    import xml.etree.ElementTree as ET

    from django.contrib.staticfiles import finders

    login = client.get("/login/").content.decode()  # before logging in too: browsers ask on every page
    client.force_login(carol)
    for html in (login, client.get("/").content.decode()):
        assert re.search(r'<link rel="icon" href="/static/img/favicon\.svg" type="image/svg\+xml">', html)
    client.logout()
    response = client.get("/favicon.ico")
    assert response.status_code == 302 and response["Location"] == "/static/img/favicon.svg"
    assert "max-age=86400" in response["Cache-Control"]
    path = finders.find("img/favicon.svg")
    assert path, "static/img/favicon.svg is not found by the static files finders"
    svg = ET.parse(path).getroot()  # noqa: S314 (our own file)
    assert svg.tag == "{http://www.w3.org/2000/svg}svg" and svg.get("viewBox") == "0 0 32 32"
