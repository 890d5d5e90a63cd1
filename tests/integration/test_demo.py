"""The demo `make up` runs: the dashboard while it comes and once it is here, its badges, and its removal.

The demo objects are registered by the real management commands (clusters on the real kube-apiserver sandbox,
the zone in moto), the progress file is written with dnsportal.embedded as `make up` writes it.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from django.core.management import call_command

from clusters.models import Cluster
from dnsportal.embedded import DEMO_REMOVED_FILE, demo_removed, write_demo_status
from dnsportal.models import AuditEntry
from records.models import ChangeSet, Endpoint, ProviderAccount, Zone
from tests.fixtures.zones import import_zone, publish

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
