"""The demo `make up` runs: the dashboard while it comes and once it is here, its badges, and its removal.

The demo objects are registered by the real management commands (clusters on the real kube-apiserver sandbox,
the zone in moto, dc.internal in a real PowerDNS started as `make up` starts it), the progress file is written
with dnsportal.embedded as `make up` writes it.
"""

from __future__ import annotations

import contextlib
import io
import json
import socket
import stat
from collections.abc import Iterator
from pathlib import Path

import dns.message
import dns.query
import dns.rdatatype
import pytest
import requests
from django.core.management import call_command
from django.core.management.base import CommandError

from clusters.models import Cluster
from dnsportal import embedded
from dnsportal.embedded import DEMO_REMOVED_FILE, demo_removed, write_demo_status
from dnsportal.models import AuditEntry
from records.models import ChangeSet, Endpoint, ProviderAccount, Verification, Zone
from records.services import zone_update
from tests.fixtures.zones import import_zone, publish
from tools.kube_sandbox.demo import internal_pages
from tools.pdns import PdnsServer
from tools.up import DEMO_HTTP_PORT, start_demo_pages, start_demo_pdns

pytestmark = pytest.mark.django_db(transaction=True)

DEMO_NAMES = ("eks-us-east-1", "rke2-dc1", "k3s-edge")


@pytest.fixture
def data_dir(settings, tmp_path: Path) -> Path:
    """A data directory of its own, with the demo on (as in embedded mode)."""
    settings.DATA_DIR = tmp_path / "data"
    settings.DEMO = True
    return settings.DATA_DIR


def _register_demo_clusters(kube_clusters, tmp_path: Path) -> str:
    """sandbox.json as `python -m tools.kube_sandbox demo` writes it, naming the test sandbox's clusters."""
    entries = [
        {
            "name": name,
            "server": cluster.server,
            "kubeconfig_restricted": str(cluster.kubeconfig_path("restricted")),
        }
        for name, cluster in zip(DEMO_NAMES, (*kube_clusters, kube_clusters[0]), strict=True)
    ]
    state = tmp_path / "sandbox.json"
    state.write_text(json.dumps({"clusters": entries}))
    out = io.StringIO()
    call_command("register_demo_clusters", str(state), stdout=out)
    return out.getvalue()


def _register_demo_zone(moto_url: str) -> str:
    out = io.StringIO()
    call_command("register_demo_zone", moto_url, stdout=out)
    return out.getvalue()


@pytest.fixture
def demo_pdns(data_dir: Path) -> Iterator[PdnsServer]:
    """The demo's PowerDNS as `make up` starts it: durable, in the data directory, with dc.internal."""
    server, created = start_demo_pdns(data_dir)
    assert created
    yield server
    server.stop()


def _register_demo_pdns(server: PdnsServer) -> str:
    out = io.StringIO()
    call_command(
        "register_demo_pdns",
        f"http://127.0.0.1:{server.api_port}",
        "--dns",
        f"127.0.0.1:{server.dns_port}",
        stdout=out,
    )
    return out.getvalue()


def _pdns_zone() -> Zone:
    return Zone.objects.get(account__name="demo-powerdns", name="dc.internal.")


def _dig(server: PdnsServer, name: str) -> list[str]:
    query = dns.message.make_query(name, "A")
    answer = dns.query.udp(query, "127.0.0.1", port=server.dns_port, timeout=2)
    return sorted(rr.address for rrset in answer.answer if rrset.rdtype == dns.rdatatype.A for rr in rrset)


def _demo_zone() -> Zone:
    # Not by name alone: an account of the operator's own on the same moto lists example.com too.
    return Zone.objects.get(account__name="demo-route53", name="example.com.")


def _rrsets(route53, zone_id: str) -> dict[tuple[str, str], list[str]]:
    sets = route53.list_resource_record_sets(HostedZoneId=zone_id)["ResourceRecordSets"]
    return {
        (rs["Name"], rs["Type"]): sorted(r["Value"] for r in rs.get("ResourceRecords", [])) for rs in sets
    }


# --- the dashboard while the demo comes ------------------------------------------------------------------


def test_while_the_demo_is_built_the_dashboard_says_so_with_the_step_and_polls(client, carol, data_dir):
    write_demo_status(data_dir, "building", "Building kube-apiserver (first start only)")
    client.force_login(carol)
    page = client.get("/").content.decode()
    assert "The demo clusters are coming" in page
    assert "Building kube-apiserver (first start only)" in page
    assert 'hx-get="/demo/status/"' in page and 'hx-trigger="every 3s"' in page
    assert "No clusters yet" not in page  # the clusters are coming; nothing to register by hand

    write_demo_status(data_dir, "starting", "Starting eks-us-east-1, rke2-dc1, k3s-edge")
    fragment = client.get("/demo/status/", headers={"HX-Request": "true"})
    assert fragment.status_code == 200
    assert "Starting eks-us-east-1, rke2-dc1, k3s-edge" in fragment.content.decode()
    assert "HX-Refresh" not in fragment  # still coming: the block keeps polling itself


def test_a_portal_make_up_does_not_run_never_waits_for_the_demo(client, carol, data_dir):
    # `manage.py runserver` by hand: no word from make up, so no demo on its way, only the usual empty state.
    client.force_login(carol)
    page = client.get("/").content.decode()
    assert 'id="demo-banner"' not in page and "No clusters yet" in page
    # make up stopped (while it still built, say): the next portal started by hand does not wait either.
    write_demo_status(data_dir, "stopped", "make up stopped")
    page = client.get("/").content.decode()
    assert 'id="demo-banner"' not in page and "No clusters yet" in page


def test_once_the_demo_is_ready_the_polled_fragment_reloads_the_dashboard(
    client, carol, data_dir, kube_clusters, tmp_path, run_jobs
):
    write_demo_status(data_dir, "starting", "Registering the demo clusters")
    client.force_login(carol)
    assert "HX-Refresh" not in client.get("/demo/status/", headers={"HX-Request": "true"})
    _register_demo_clusters(kube_clusters, tmp_path)
    write_demo_status(data_dir, "ready", "The demo is ready")
    fragment = client.get("/demo/status/", headers={"HX-Request": "true"})
    assert fragment["HX-Refresh"] == "true"
    assert "This portal is running the demo" in fragment.content.decode()


def test_a_failed_demo_start_is_shown_with_its_step(client, carol, data_dir):
    write_demo_status(data_dir, "failed", "kube-apiserver for rke2-dc1 did not become ready in 120 s")
    client.force_login(carol)
    page = client.get("/").content.decode()
    assert "The demo is not running" in page
    assert "kube-apiserver for rke2-dc1 did not become ready in 120 s" in page
    assert "The demo clusters are coming" not in page and "every 3s" not in page


def test_with_the_demo_off_the_dashboard_says_nothing_about_it(client, carol, data_dir, settings):
    settings.DEMO = False
    write_demo_status(data_dir, "building", "left over from an earlier make up")
    client.force_login(carol)
    page = client.get("/").content.decode()
    assert 'id="demo-banner"' not in page
    assert "No clusters yet" in page


# --- the demo is here: banner and badges -------------------------------------------------------------


def test_the_demo_banner_says_what_the_objects_are_and_what_to_try(
    client, carol, root, data_dir, kube_clusters, route53, moto_service, tmp_path, run_jobs
):
    _register_demo_zone(moto_service.url)
    _register_demo_clusters(kube_clusters, tmp_path)
    run_jobs()
    write_demo_status(data_dir, "ready", "The demo is ready")
    zone = _demo_zone()

    client.force_login(carol)
    page = client.get("/").content.decode()
    assert "This portal is running the demo" in page
    for name in DEMO_NAMES:
        assert f'href="/clusters/{name}/"' in page
    # Each with its health, as the last check found it (the sandbox answers: healthy).
    assert page.count('<span class="health healthy"') == 3, page
    assert "Route53 stand-in" in page and "Nothing reaches AWS" in page
    assert 'href="/endpoints/host/app.example.com/"' in page  # try first: the hostname page
    assert f'href="/zones/{zone.id}/"' in page  # then its zone
    assert "approver" in page  # and approve as the second person
    assert "DNSPORTAL_DEMO=0 make up" in page
    assert "/demo/remove/confirm/" not in page  # a viewer is not offered the removal
    assert "every 3s" not in page

    client.force_login(root)
    assert 'href="/demo/remove/confirm/"' in client.get("/").content.decode()


def test_demo_objects_carry_a_demo_badge_and_others_do_not(
    client, carol, root, data_dir, kube_clusters, route53, moto_service, tmp_path, run_jobs
):
    _register_demo_zone(moto_service.url)
    _register_demo_clusters(kube_clusters, tmp_path)
    run_jobs()
    own_zone = import_zone(root, route53, moto_service.url, "example.org")
    publish({"shop.example.org": "203.0.113.50"}, "prod-a")  # a cluster of the operator's own

    account = ProviderAccount.objects.get(name="demo-route53")
    demo_zone = _demo_zone()
    assert account.is_demo and demo_zone.is_demo  # the zone inherited the mark at import
    assert not own_zone.is_demo and not own_zone.account.is_demo
    assert Cluster.objects.get(name="rke2-dc1").is_demo and not Cluster.objects.get(name="prod-a").is_demo

    badge = '<span class="badge demo"'
    client.force_login(carol)
    clusters = client.get("/clusters/").content.decode()
    assert clusters.count(badge) == 3
    assert badge in client.get("/clusters/rke2-dc1/").content.decode()
    assert badge not in client.get("/clusters/prod-a/").content.decode()
    zones = client.get("/zones/").content.decode()
    assert zones.count(badge) == 1
    assert badge in client.get(f"/zones/{demo_zone.id}/").content.decode()
    assert badge not in client.get(f"/zones/{own_zone.id}/").content.decode()
    assert client.get("/accounts/").content.decode().count(badge) == 1


def test_an_account_registered_before_the_mark_existed_gets_it_with_its_zones(
    data_dir, route53, moto_service, run_jobs
):
    _register_demo_zone(moto_service.url)
    run_jobs()
    ProviderAccount.objects.update(is_demo=False)  # as a data directory from before the mark holds it
    Zone.objects.update(is_demo=False)
    _register_demo_zone(moto_service.url)  # the next make up
    assert ProviderAccount.objects.get(name="demo-route53").is_demo
    assert _demo_zone().is_demo


# --- removing the demo ---------------------------------------------------------------------------------


def test_removing_the_demo_deletes_its_rows_leaves_dns_alone_and_keeps_make_up_from_bringing_it_back(
    client, root, alice, bob, data_dir, kube_clusters, route53, moto_service, tmp_path, run_jobs
):
    _register_demo_zone(moto_service.url)
    _register_demo_clusters(kube_clusters, tmp_path)
    run_jobs()
    write_demo_status(data_dir, "ready", "The demo is ready")
    demo_zone = _demo_zone()
    for name, ip in zip(DEMO_NAMES, ("203.0.113.10", "198.51.100.10", "198.51.100.40"), strict=True):
        publish({"app.example.com": ip}, name)
    # The demo's walk-through: a reconcile plans app.example.com, a second person approves, it is applied.
    client.force_login(alice)
    assert client.post(f"/zones/{demo_zone.id}/reconcile/").status_code == 302
    run_jobs()
    cs = ChangeSet.objects.get(zone=demo_zone)
    client.force_login(bob)
    assert client.post(f"/changes/{cs.id}/approve/").status_code == 302
    run_jobs()
    cs.refresh_from_db()
    assert cs.status == "applied", cs.error
    in_dns = _rrsets(route53, demo_zone.provider_zone_id)
    assert in_dns[("app.example.com.", "A")] == ["198.51.100.10", "198.51.100.40", "203.0.113.10"]
    # Objects of the operator's own, which the removal must leave alone.
    own_zone = import_zone(root, route53, moto_service.url, "example.org")
    publish({"shop.example.org": "203.0.113.50"}, "prod-a")
    # A real cluster someone labelled like the demo's is still not the demo's to remove.
    Cluster.objects.filter(name="prod-a").update(labels={"demo": "true"})
    demo_cluster_ids = list(Cluster.objects.filter(name__in=DEMO_NAMES).values_list("id", flat=True))
    assert Endpoint.objects.filter(cluster_id__in=demo_cluster_ids).count() == 3

    client.force_login(root)
    confirm = client.get("/demo/remove/confirm/").content.decode()
    for name in (*DEMO_NAMES, "example.com", "demo-route53"):
        assert name in confirm
    assert "example.org" not in confirm and "prod-a" not in confirm
    response = client.post("/demo/remove/", {"confirm": "remove-demo"})
    assert response.status_code == 302 and response["Location"] == "/"

    assert not Cluster.objects.filter(name__in=DEMO_NAMES).exists()
    assert not Endpoint.objects.filter(cluster_id__in=demo_cluster_ids).exists()
    assert not Zone.objects.filter(id=demo_zone.id).exists()
    assert not ChangeSet.objects.filter(id=cs.id).exists()
    assert not ProviderAccount.objects.filter(name="demo-route53").exists()
    assert Zone.objects.filter(id=own_zone.id).exists() and Cluster.objects.filter(name="prod-a").exists()
    removed = set(
        AuditEntry.objects.filter(action="demo.remove", actor_name="root").values_list(
            "object_type", "object_repr"
        )
    )
    assert removed == {
        *(("clusters.cluster", name) for name in DEMO_NAMES),
        ("records.zone", "example.com"),
        ("records.provideraccount", "demo-route53"),
        ("demo", "the demo"),
    }
    marker = json.loads((data_dir / DEMO_REMOVED_FILE).read_text())
    assert marker["removed_by"] == "root" and marker["removed_at"]
    assert sorted(marker["clusters"]) == sorted(DEMO_NAMES)

    # Nothing was planned against the stand-in: whatever runs next, its records stay as they were.
    run_jobs()
    assert _rrsets(route53, demo_zone.provider_zone_id) == in_dns
    assert not ChangeSet.objects.exclude(zone=own_zone).exists()

    # The next `make up` registers nothing, and says why in one line.
    clusters_out = _register_demo_clusters(kube_clusters, tmp_path)
    zone_out = _register_demo_zone(moto_service.url)
    assert clusters_out.count("\n") == 1 and "an admin removed the demo" in clusters_out
    assert zone_out.count("\n") == 1 and "an admin removed the demo" in zone_out
    run_jobs()
    assert not Cluster.objects.filter(name__in=DEMO_NAMES).exists()
    assert not ProviderAccount.objects.filter(is_demo=True).exists() and not Zone.objects.filter(is_demo=True)

    page = client.get("/").content.decode()
    assert "The demo is removed" in page  # the message after the redirect
    assert 'id="demo-banner"' not in page


def test_removing_the_demo_while_it_is_built_leaves_the_normal_empty_dashboard(client, root, data_dir):
    write_demo_status(data_dir, "building", "Building kube-apiserver")
    client.force_login(root)
    assert "No demo object is registered yet" in client.get("/demo/remove/confirm/").content.decode()
    assert client.post("/demo/remove/", {"confirm": "remove-demo"}).status_code == 302
    assert demo_removed(data_dir)
    page = client.get("/").content.decode()
    assert 'id="demo-banner"' not in page
    assert "No clusters yet" in page


def test_only_an_admin_removes_the_demo_and_only_from_the_confirmation_page(
    client, alice, carol, root, data_dir, route53, moto_service, run_jobs
):
    _register_demo_zone(moto_service.url)
    run_jobs()
    for user in (carol, alice):
        client.force_login(user)
        assert client.get("/demo/remove/confirm/").status_code == 403
        assert client.post("/demo/remove/", {"confirm": "remove-demo"}).status_code == 403
    client.force_login(root)
    assert client.get("/demo/remove/").status_code == 405  # the removal itself is POST only
    bare = client.post("/demo/remove/")
    assert bare.status_code == 302 and bare["Location"] == "/demo/remove/confirm/"
    assert ProviderAccount.objects.filter(name="demo-route53", is_demo=True).exists()
    assert _demo_zone()
    assert not demo_removed(data_dir)


def test_the_demo_is_not_removed_while_one_of_its_change_sets_is_being_applied(
    client, root, data_dir, route53, moto_service, run_jobs
):
    _register_demo_zone(moto_service.url)
    run_jobs()
    zone = _demo_zone()
    cs = ChangeSet.objects.create(zone=zone, status=ChangeSet.Status.APPLYING, fingerprint="x")
    client.force_login(root)
    refused = client.post("/demo/remove/", {"confirm": "remove-demo"})
    assert refused.status_code == 422
    assert f"Change set #{cs.id} of example.com is being applied right now" in refused.content.decode()
    assert Zone.objects.filter(id=zone.id).exists() and not demo_removed(data_dir)


def test_with_the_demo_off_and_nothing_left_there_is_nothing_to_remove(client, root, data_dir, settings):
    settings.DEMO = False
    client.force_login(root)
    refused = client.post("/demo/remove/", {"confirm": "remove-demo"})
    assert refused.status_code == 422
    assert "There is no demo to remove" in refused.content.decode()
    assert not demo_removed(data_dir)


def test_make_up_again_checks_the_demo_clusters_anew_and_follows_a_moved_one(
    data_dir, kube_clusters, tmp_path, run_jobs
):
    from dnsportal.models import JobRun

    _register_demo_clusters(kube_clusters, tmp_path)
    run_jobs()
    eks = Cluster.objects.get(name="eks-us-east-1")
    assert eks.server == kube_clusters[0].server
    checks = JobRun.objects.filter(name="cluster_check").count()

    # Started again, one moved: the sandbox gave eks-us-east-1 the other server (as a new port would).
    state = tmp_path / "sandbox.json"
    entries = json.loads(state.read_text())["clusters"]
    entries[0]["server"] = kube_clusters[1].server
    entries[0]["kubeconfig_restricted"] = str(kube_clusters[1].kubeconfig_path("restricted"))
    state.write_text(json.dumps({"clusters": entries}))
    Cluster.objects.filter(name="k3s-edge").update(is_demo=False)  # as if someone else's bore a demo name
    out = io.StringIO()
    call_command("register_demo_clusters", str(state), stdout=out)
    assert "eks-us-east-1 moved to" in out.getvalue()
    assert "Not touching cluster k3s-edge" in out.getvalue()
    eks.refresh_from_db()
    assert eks.server == kube_clusters[1].server
    assert AuditEntry.objects.filter(action="cluster.update", object_id=str(eks.id)).exists()
    # Each demo cluster is checked anew (the health shown is this run's); the other one is not.
    new_checks = JobRun.objects.filter(name="cluster_check").order_by("id")[checks:]
    checked = {Cluster.objects.get(id=run.kwargs["cluster_id"]).name for run in new_checks}
    assert checked == {"eks-us-east-1", "rke2-dc1"}


# --- the demo's PowerDNS: dc.internal, served by the on-prem clusters ------------------------------------


def test_the_demo_powerdns_zone_is_private_reviewed_and_served_by_a_real_nameserver(
    client, alice, bob, carol, data_dir, demo_pdns, run_jobs
):
    out = _register_demo_pdns(demo_pdns)
    assert "imported" in out
    assert demo_pdns.api_key not in out  # the key is read from the data directory, never shown
    account = ProviderAccount.objects.get(name="demo-powerdns")
    assert (account.kind, account.is_demo) == (ProviderAccount.Kind.POWERDNS, True)
    assert account.endpoint_url == f"http://127.0.0.1:{demo_pdns.api_port}"
    assert account.dns_servers == f"127.0.0.1:{demo_pdns.dns_port}"
    assert account.secret == demo_pdns.api_key
    zone = _pdns_zone()
    # Internal: the on-prem clusters' loopback and RFC 1918 addresses belong here. Reviewed like example.com.
    assert zone.private and zone.is_demo
    assert zone.approval_mode == Zone.Approval.ALL
    run_jobs()
    account.refresh_from_db()
    assert account.last_check_ok, account.last_check_message

    # make up again: the same account and zone, nothing new; what an admin said about the zone stays.
    zone_update(actor=None, zone_id=zone.id, private=False)
    assert "registered already" in _register_demo_pdns(demo_pdns)
    assert ProviderAccount.objects.filter(kind="powerdns").count() == 1
    assert Zone.objects.filter(name="dc.internal.").get().id == zone.id
    assert not _pdns_zone().private
    zone_update(actor=None, zone_id=zone.id, private=True)

    # The on-prem clusters publish app.dc.internal: one round-robin record set, applied once approved.
    publish({"app.dc.internal": "127.0.0.2"}, "rke2-dc1")
    publish({"app.dc.internal": "127.0.0.3"}, "k3s-edge")
    client.force_login(alice)
    assert client.post(f"/zones/{zone.id}/reconcile/").status_code == 302
    run_jobs()
    cs = ChangeSet.objects.get(zone=zone)
    assert cs.status == ChangeSet.Status.PENDING  # every change set waits for a second person
    assert not any("private address" in r for r in cs.approval_reasons), cs.approval_reasons
    change = cs.changes.get(name="app.dc.internal.", type="A")
    assert sorted(r["Value"] for r in change.after["ResourceRecords"]) == ["127.0.0.2", "127.0.0.3"]
    assert _dig(demo_pdns, "app.dc.internal.") == []
    client.force_login(bob)
    assert client.post(f"/changes/{cs.id}/approve/").status_code == 302
    run_jobs()
    cs.refresh_from_db()
    assert cs.status == ChangeSet.Status.APPLIED, cs.error
    assert _dig(demo_pdns, "app.dc.internal.") == ["127.0.0.2", "127.0.0.3"]
    # Verified by asking the server itself (the account's DNS servers).
    verification = Verification.objects.filter(zone=zone).latest("id")
    assert verification.status == Verification.Status.OK, verification.__dict__

    # The dashboard names the zone, where its server answers and what to ask it.
    write_demo_status(data_dir, "ready", "The demo is running")
    client.force_login(carol)
    page = client.get("/").content.decode()
    assert f'href="/zones/{zone.id}/"' in page
    assert f"<code>127.0.0.1:{demo_pdns.dns_port}</code>" in page
    assert f"dig @127.0.0.1 -p {demo_pdns.dns_port} app.dc.internal" in page
    assert 'href="/endpoints/host/app.dc.internal/"' in page


def test_the_dashboard_still_leads_from_app_example_com_to_example_com_beside_dc_internal(
    client, carol, data_dir, demo_pdns, route53, moto_service, run_jobs
):
    # As make up registers them: both demo zones in one command.
    out = io.StringIO()
    call_command(
        "register_demo_zone",
        moto_service.url,
        "--powerdns",
        f"http://127.0.0.1:{demo_pdns.api_port}",
        "--powerdns-dns",
        f"127.0.0.1:{demo_pdns.dns_port}",
        stdout=out,
    )
    assert "Demo zone example.com" in out.getvalue() and "Demo zone dc.internal" in out.getvalue()
    run_jobs()
    embedded.record_ports(data_dir, **{**embedded.recorded_ports(data_dir), "demo_http": 18080})
    write_demo_status(data_dir, "ready", "The demo is running")
    client.force_login(carol)
    page = client.get("/").content.decode()
    example = _demo_zone()
    # dc.internal sorts first; the second step still names the zone that holds app.example.com.
    assert f'its zone, <a href="/zones/{example.id}/">example.com</a>' in page
    assert "in a local Route53 stand-in (moto)" in page and "served by a real PowerDNS" in page
    assert "answers HTTP on port 18080" in page


def test_the_demo_powerdns_keeps_zone_key_and_ports_over_a_restart_and_moves_off_a_taken_port(
    data_dir, run_jobs
):
    first, created = start_demo_pdns(data_dir)
    try:
        assert created
        key_file = embedded.pdns_api_key_path(data_dir)
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600  # a secret: its owner only
        assert stat.S_IMODE((data_dir / "pdns" / "pdns.conf").stat().st_mode) == 0o600  # it holds the key
        assert key_file.read_text().strip() == first.api_key
        recorded = embedded.recorded_ports(data_dir)
        assert (recorded["pdns_dns"], recorded["pdns_api"]) == (first.dns_port, first.api_port)
        _register_demo_pdns(first)
        first.replace_rrsets("dc.internal.", [("app", "A", 60, ["127.0.0.2", "127.0.0.3"])])
    finally:
        first.stop()

    # make up again: the same database, ports and key; the zone and its records are still there.
    again, created = start_demo_pdns(data_dir)
    try:
        assert not created
        assert (again.dns_port, again.api_port, again.api_key) == (
            first.dns_port,
            first.api_port,
            first.api_key,
        )
        assert _dig(again, "app.dc.internal.") == ["127.0.0.2", "127.0.0.3"]
        assert again.zone_names() == ["dc.internal."]
    finally:
        again.stop()

    # Both ports taken meanwhile (by something else on this machine): new ones, recorded; the key stays.
    with _taken(first.dns_port, udp=True), _taken(first.api_port):
        moved, created = start_demo_pdns(data_dir)
    try:
        assert not created
        assert moved.dns_port != first.dns_port and moved.api_port != first.api_port
        assert moved.api_key == first.api_key
        recorded = embedded.recorded_ports(data_dir)
        assert (recorded["pdns_dns"], recorded["pdns_api"]) == (moved.dns_port, moved.api_port)
        assert _dig(moved, "app.dc.internal.") == ["127.0.0.2", "127.0.0.3"]
        # The portal's account follows the server; the zone row stays the same row.
        zone_id = _pdns_zone().id
        out = _register_demo_pdns(moved)
        assert "now points at" in out and moved.api_key not in out
        account = ProviderAccount.objects.get(name="demo-powerdns")
        assert account.endpoint_url == f"http://127.0.0.1:{moved.api_port}"
        assert account.dns_servers == f"127.0.0.1:{moved.dns_port}"
        assert _pdns_zone().id == zone_id
        assert AuditEntry.objects.filter(action="account.update", object_id=str(account.id)).exists()
        run_jobs()
        account.refresh_from_db()
        assert account.last_check_ok, account.last_check_message
        assert moved.api_key not in (data_dir / "pdns" / "pdns.log").read_text()
    finally:
        moved.stop()


@contextlib.contextmanager
def _taken(port: int, *, udp: bool = False) -> Iterator[None]:
    """Something else listening on 127.0.0.1:port (TCP, and UDP too with `udp`)."""
    socks = [socket.socket(socket.AF_INET, socket.SOCK_STREAM)]
    if udp:
        socks.append(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
    # The server just stopped left TIME_WAIT connections on its API port: a listener may bind beside them.
    socks[0].setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        for sock in socks:
            sock.bind(("127.0.0.1", port))
        socks[0].listen()
        yield
    finally:
        for sock in socks:
            sock.close()


def test_register_demo_pdns_says_what_is_missing(data_dir, demo_pdns):
    demo_pdns.delete_zone("dc.internal.")
    with pytest.raises(CommandError, match=r"has no zone dc\.internal: make up creates it first"):
        _register_demo_pdns(demo_pdns)
    embedded.pdns_api_key_path(data_dir).unlink()
    with pytest.raises(CommandError, match="The PowerDNS API key cannot be read from"):
        _register_demo_pdns(demo_pdns)


def test_the_demo_pages_name_their_cluster_on_one_port_8080_or_another(data_dir):
    pages = internal_pages()
    assert pages == {"127.0.0.2": "rke2-dc1", "127.0.0.3": "k3s-edge"}
    # 8080 taken on one of the addresses (by this test, or by whatever else uses it here): another port,
    # the same for both, recorded for the probe page.
    with _8080_taken():
        servers = start_demo_pages(data_dir, pages)
    try:
        port = embedded.demo_http_port(data_dir)
        assert port and port != DEMO_HTTP_PORT
        assert {s.port for s in servers} == {port}
        for address, cluster in pages.items():
            body = requests.get(f"http://{address}:{port}/", timeout=5).text
            assert cluster in body and all(other not in body for other in pages.values() if other != cluster)
    finally:
        for server in servers:
            server.stop()
    # The next start, 8080 still taken: the recorded port again, so the probe page's default holds.
    with _8080_taken():
        servers = start_demo_pages(data_dir, pages)
    for server in servers:
        server.stop()
    assert {s.port for s in servers} == {port}


@contextlib.contextmanager
def _8080_taken() -> Iterator[None]:
    with socket.socket() as blocker:
        # as a server binds (SO_REUSEADDR): connections of earlier tests to that port may linger in TIME_WAIT,
        # which would refuse a plain bind and leave the port to the page servers, which bind like this
        blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            blocker.bind(("127.0.0.3", DEMO_HTTP_PORT))
            blocker.listen()
        except OSError:
            pass  # taken already, by something else on this machine
        yield


def test_removing_the_demo_removes_the_powerdns_account_and_zone_and_leaves_its_records(
    client, root, data_dir, demo_pdns, route53, moto_service, run_jobs
):
    _register_demo_zone(moto_service.url)
    _register_demo_pdns(demo_pdns)
    run_jobs()
    pdns_zone = _pdns_zone()
    demo_pdns.replace_rrsets("dc.internal.", [("app", "A", 60, ["127.0.0.2", "127.0.0.3"])])
    client.force_login(root)
    confirm = client.get("/demo/remove/confirm/").content.decode()
    assert "dc.internal" in confirm and "demo-powerdns" in confirm and "the demo's PowerDNS" in confirm
    assert client.post("/demo/remove/", {"confirm": "remove-demo"}).status_code == 302

    assert not ProviderAccount.objects.filter(name__in=["demo-powerdns", "demo-route53"]).exists()
    assert not Zone.objects.filter(id=pdns_zone.id).exists()
    removed = set(AuditEntry.objects.filter(action="demo.remove").values_list("object_type", "object_repr"))
    assert {("records.zone", "dc.internal"), ("records.provideraccount", "demo-powerdns")} <= removed
    marker = json.loads((data_dir / DEMO_REMOVED_FILE).read_text())
    assert "demo-powerdns" in marker["accounts"] and "dc.internal" in marker["zones"]
    # Nothing was deleted in PowerDNS.
    assert _dig(demo_pdns, "app.dc.internal.") == ["127.0.0.2", "127.0.0.3"]
    # The next make up registers nothing, in one line.
    out = _register_demo_pdns(demo_pdns)
    assert out.count("\n") == 1 and "an admin removed the demo" in out
    assert not ProviderAccount.objects.filter(is_demo=True).exists()
