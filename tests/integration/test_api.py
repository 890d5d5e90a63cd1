"""The REST API: tokens act as their owner with the owner's role, refusals have one JSON shape with the
pages' sentences, writes go through the same services (four eyes, the audit log, which token), 429 per token
in Redis, documentation without a CDN, and reads in a fixed number of queries per page."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from api.models import ApiToken
from api.tokens import hash_key
from dnsportal.models import AuditEntry, JobRun
from records.models import ChangeSet, ProviderAccount, Zone
from tests.fixtures.api import ApiClient, token_for
from tests.fixtures.people import make_user
from tests.fixtures.zones import publish

pytestmark = pytest.mark.django_db

API = "/api/v1"


@pytest.fixture
def zone(db) -> Zone:
    account = ProviderAccount.objects.create(name="aws-prod", credential_kind="default")
    return Zone.objects.create(account=account, provider_zone_id="Z1", name="example.com.")


def _shape(response) -> dict:
    body = response.json()
    assert set(body) == {"error", "fields"}, body
    return body


def test_without_a_token_the_api_answers_401_in_its_error_shape(client, db):
    response = client.get(f"{API}/clusters/")
    assert response.status_code == 401
    assert "Bearer" in response["WWW-Authenticate"]
    assert "personal API token" in _shape(response)["error"]


def test_a_token_acts_as_its_owner_with_the_owners_role(carol, zone):
    api = ApiClient(token_for(carol))
    assert api.get(f"{API}/zones/").status_code == 200
    response = api.post(f"{API}/zones/{zone.id}/reconcile/")
    assert response.status_code == 403
    assert _shape(response)["error"] == "This needs the operator role."
    assert not JobRun.objects.exists()


def test_a_token_is_stored_hashed_and_shown_once_on_its_owners_page(client, carol):
    client.force_login(carol)
    response = client.post("/account/tokens/", {"name": "laptop", "expires_in_days": "30"})
    assert response.status_code == 200
    key = re.search(rb'id="new-token">(dnsp_[^<]+)<', response.content).group(1).decode()
    token = ApiToken.objects.get(user=carol)
    assert token.key_hash == hash_key(key) and key not in str(token.__dict__)
    assert response["Cache-Control"] == "no-store"
    page = client.get("/account/tokens/")
    assert key.encode() not in page.content and b"laptop" in page.content
    assert ApiClient(key).get(f"{API}/clusters/").status_code == 200
    token.refresh_from_db()
    assert token.last_used_at is not None
    entry = AuditEntry.objects.get(action="api_token.create")
    assert entry.actor == carol and key not in str(entry.after)


def test_revoked_and_expired_tokens_are_refused(carol):
    revoked, expired = token_for(carol, "revoked"), token_for(carol, "expired")
    from api.tokens import token_revoke

    token_revoke(actor=carol, token_id=ApiToken.objects.get(name="revoked").id)
    ApiToken.objects.filter(name="expired").update(expires_at=timezone.now() - timedelta(seconds=1))
    for key, word in ((revoked, "revoked"), (expired, "expired")):
        response = ApiClient(key).get(f"{API}/clusters/")
        assert response.status_code == 401
        assert word in _shape(response)["error"]
    response = ApiClient("dnsp_not-a-real-token").get(f"{API}/clusters/")
    assert response.status_code == 401 and "not known" in _shape(response)["error"]


def test_an_admin_revokes_any_token_an_owner_only_their_own(carol, alice, root):
    mine = token_for(carol, "mine")
    token_id = ApiToken.objects.get(name="mine").id
    response = ApiClient(token_for(alice, "other")).post(f"{API}/tokens/{token_id}/revoke/")
    assert response.status_code == 404  # another person's token is not even listed
    response = ApiClient(token_for(root, "admin")).post(f"{API}/tokens/{token_id}/revoke/")
    assert response.status_code == 200 and response.json()["state"] == "revoked"
    assert ApiClient(mine).get(f"{API}/clusters/").status_code == 401
    again = ApiClient(token_for(root, "admin2")).post(f"{API}/tokens/{token_id}/revoke/")
    assert again.status_code == 409 and "already revoked" in _shape(again)["error"]


def test_a_write_over_the_api_is_audited_as_coming_through_the_api_with_its_token(alice, zone):
    key = token_for(alice, "ci-deploy")
    response = ApiClient(key).post(f"{API}/zones/{zone.id}/reconcile/")
    assert response.status_code == 202
    assert response.json()["job_id"] == JobRun.objects.get(name="zone_reconcile").id
    entry = AuditEntry.objects.get(action="zone.reconcile_now")
    token = ApiToken.objects.get(name="ci-deploy")
    assert (entry.actor, entry.via, entry.api_token_id, entry.api_token_name) == (
        alice,
        "api",
        token.id,
        "ci-deploy",
    )
    # The pages' writes are not marked.
    from django.test import Client

    browser = Client()
    browser.force_login(alice)
    browser.post(f"/zones/{zone.id}/reconcile/")
    assert AuditEntry.objects.filter(action="zone.reconcile_now", via="").count() == 1


def test_the_author_of_a_change_set_cannot_approve_it_over_the_api(bob, zone):
    dave = make_user("dave", "approver")
    cs = ChangeSet.objects.create(zone=zone, fingerprint="f" * 64, requested_by=dave)
    response = ApiClient(token_for(dave)).post(f"{API}/changesets/{cs.id}/approve/", {})
    assert response.status_code == 403
    assert _shape(response)["error"] == "A second person must approve this change set: you requested it."
    response = ApiClient(token_for(bob)).post(f"{API}/changesets/{cs.id}/approve/", {"comment": "ok"})
    assert response.status_code == 200 and response.json()["status"] == "approved"
    assert JobRun.objects.filter(name="changeset_apply").count() == 1
    again = ApiClient(token_for(bob, "second")).post(f"{API}/changesets/{cs.id}/approve/", {})
    assert again.status_code == 409
    assert _shape(again)["error"] == f"Change set #{cs.id} is already approved."
    assert JobRun.objects.filter(name="changeset_apply").count() == 1


def test_bad_input_is_400_with_the_register_pages_sentences_on_the_fields(root):
    exec_kubeconfig = """
apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:6443"}}]
users: [{name: u, user: {exec: {command: aws, apiVersion: client.authentication.k8s.io/v1beta1}}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
"""
    api = ApiClient(token_for(root))
    response = api.post(f"{API}/clusters/", {"name": "eks-eu1", "kubeconfig": exec_kubeconfig})
    assert response.status_code == 400
    body = _shape(response)
    assert "exec" in " ".join(body["fields"]["kubeconfig"])
    response = api.post(f"{API}/clusters/", {"name": "Not A Name", "kubeconfig": "x"})
    assert response.status_code == 400 and "name" in _shape(response)["fields"]
    response = api.post(f"{API}/clusters/", ["not", "an", "object"])
    assert response.status_code == 400


def test_a_rejection_needs_a_reason_and_an_unknown_object_is_404(bob, zone):
    cs = ChangeSet.objects.create(zone=zone, fingerprint="f" * 64)
    api = ApiClient(token_for(bob))
    response = api.post(f"{API}/changesets/{cs.id}/reject/", {})
    assert response.status_code == 400 and "comment" in _shape(response)["fields"]
    assert api.post(f"{API}/changesets/999999/reject/", {"comment": "no"}).status_code == 404
    assert _shape(api.get(f"{API}/zones/999999/"))["error"] == "Not found."


def test_a_token_over_its_rate_gets_429(carol, settings):
    import time

    from api.throttle import WINDOW_S

    settings.API_TOKEN_RATE = 3
    for attempt in range(3):  # the count is per one-minute window: a run across its end starts again
        api = ApiClient(token_for(carol, f"try-{attempt}"))
        window = time.time() // WINDOW_S
        statuses = [api.get(f"{API}/clusters/").status_code for _ in range(5)]
        response = api.get(f"{API}/clusters/")
        if time.time() // WINDOW_S == window:
            break
    assert statuses[:3] == [200, 200, 200] and statuses[3:] == [429, 429]
    assert "over its rate" in _shape(response)["error"] and int(response["Retry-After"]) >= 1
    # Another token of the same person has its own count; the browser's session is not limited.
    assert ApiClient(token_for(carol, "other")).get(f"{API}/clusters/").status_code == 200


def test_the_browser_session_works_and_its_writes_need_the_csrf_token(alice, zone):
    from django.test import Client

    browser = Client(enforce_csrf_checks=True)
    browser.force_login(alice)
    assert browser.get(f"{API}/zones/").status_code == 200
    response = browser.post(f"{API}/zones/{zone.id}/reconcile/")
    assert response.status_code == 403 and "CSRF" in _shape(response)["error"]


def test_the_schema_and_the_docs_are_served_without_a_cdn(client, carol):
    client.force_login(carol)
    schema = client.get(f"{API}/schema/", headers={"Accept": "application/json"})
    assert schema.status_code == 200
    assert schema.json()["openapi"].startswith("3.1")
    for page in ("docs", "redoc"):
        html = client.get(f"{API}/{page}/").content.decode()
        for cdn in ("jsdelivr", "unpkg", "cdnjs", "googleapis"):
            assert cdn not in html, cdn
        external = re.findall(r'(?:src|href)="(https?://[^"]+)"', html)
        assert not external, external
        for asset in re.findall(r'src="(/static/[^"]+)"', html):
            assert client.get(asset).status_code == 200, asset
        if page == "docs":
            # Swagger UI's start script is a file of its own (no inline script under the CSP), from the view.
            script = client.get(f"{API}/docs/?script=")
            assert script["Content-Type"].startswith("application/javascript")
            assert f'src="{API}/docs/?script="' in html
            assert '"validatorUrl": null' in script.content.decode()  # no call home to validator.swagger.io
        assert "<script>" not in html and "<style>" not in html


def _endpoints(n: int) -> None:
    for c in range(3):
        publish({f"app{i}.example.com": f"192.0.2.{i % 250 + 1}" for i in range(n)}, f"cluster-{c}")


def test_listing_endpoints_costs_the_same_queries_for_any_page_size(carol):
    _endpoints(20)
    api = ApiClient(token_for(carol))
    api.get(f"{API}/endpoints/", page_size=1)  # the token's last use is written once a minute
    counts = []
    for size in (5, 50):
        with CaptureQueriesContext(connection) as queries:
            response = api.get(f"{API}/endpoints/", page_size=size)
        assert response.status_code == 200 and len(response.json()["results"]) == size
        counts.append(len(queries))
    assert counts[0] == counts[1], counts
    page = api.get(f"{API}/endpoints/", page_size=50).json()
    rest = api.client.get(page["next"], headers=api.headers).json()
    assert len(rest["results"]) == 10 and rest["next"] is None
    only = api.get(f"{API}/endpoints/", name="app3.example.com", cluster="cluster-1").json()["results"]
    assert [(e["dns_name"], e["cluster"]) for e in only] == [("app3.example.com", "cluster-1")]


def test_a_change_set_long_poll_answers_with_the_current_state_when_time_is_up(carol, zone, settings):
    settings.API_MAX_WAIT_S = 1
    cs = ChangeSet.objects.create(zone=zone, fingerprint="f" * 64)
    response = ApiClient(token_for(carol)).get(f"{API}/changesets/{cs.id}/status/", wait=30)
    assert response.status_code == 200
    assert (response.json()["status"], response.json()["final"]) == ("pending", False)
    bad = ApiClient(token_for(carol, "b")).get(f"{API}/changesets/{cs.id}/status/", wait="soon")
    assert bad.status_code == 400 and "wait" in _shape(bad)["fields"]


def test_a_hostname_is_the_aggregate_across_clusters(carol, zone):
    publish({"app.example.com": "192.0.2.10"}, "rke2-dc1")
    publish({"app.example.com": "192.0.2.20"}, "k3s-edge")
    api = ApiClient(token_for(carol))
    listed = api.get(f"{API}/hostnames/").json()
    assert listed["count"] == 1 and listed["results"][0]["name"] == "app.example.com"
    detail = api.get(f"{API}/hostnames/app.example.com/").json()
    assert sorted(c["cluster"] for c in detail["clusters"]) == ["k3s-edge", "rke2-dc1"]
    assert detail["policy"]["kind"] == "round-robin" and len(detail["endpoints"]) == 2
    assert api.get(f"{API}/hostnames/nothing.example.com/").status_code == 404


def _many(root, n: int = 6) -> None:
    """`n` rows of every listed kind, each with the related rows a page shows (zone, cluster, people)."""
    from dnsportal.audit import audit_record
    from records.models import PolicyProposal, Verification, ZoneRecord

    for i in range(n):
        account = ProviderAccount.objects.create(name=f"aws-{i}", credential_kind="default")
        zone = Zone.objects.create(account=account, provider_zone_id=f"Z{i}", name=f"z{i}.example.com.")
        data = {"Name": f"a.{zone.name}", "Type": "A", "TTL": 60, "ResourceRecords": [{"Value": "192.0.2.1"}]}
        ZoneRecord.objects.create(zone=zone, name=f"a.{zone.name}", type="A", data=data, ownership="owned")
        ChangeSet.objects.create(zone=zone, fingerprint=f"{i}" * 64, requested_by=root, approved_by=root)
        PolicyProposal.objects.create(
            zone=zone, hostname=f"a.z{i}.example.com", policy={}, proposed_by=root, approved_by=root
        )
        Verification.objects.create(zone=zone, kind=Verification.Kind.RESOLUTION, requested_by=root)
        publish({f"a.z{i}.example.com": "192.0.2.1"}, f"cluster-{i}")
        JobRun.objects.create(name="zone_reconcile", queue="dns", actor=root)
        audit_record(actor=root, action="zone.update", obj=zone)
        token_for(root, f"t{i}")


@pytest.mark.parametrize(
    "resource",
    [
        "clusters",
        "endpoints",
        "accounts",
        "zones",
        "records",
        "changesets",
        "proposals",
        "verifications",
        "audit",
        "jobs",
        "tokens",
    ],
)
def test_every_list_costs_the_same_queries_for_a_page_of_one_or_of_many(root, resource):
    _many(root)
    api = ApiClient(token_for(root))
    api.get(f"{API}/{resource}/", page_size=1)  # the token's last use is written once a minute
    counts = []
    for size in (1, 5):
        with CaptureQueriesContext(connection) as queries:
            response = api.get(f"{API}/{resource}/", page_size=size)
        assert response.status_code == 200 and len(response.json()["results"]) == size
        counts.append(len(queries))
    assert counts[0] == counts[1], (resource, counts, [q["sql"][:120] for q in queries.captured_queries])


def test_the_audit_pages_say_an_entry_came_through_the_api_and_by_which_token(client, alice, zone):
    ApiClient(token_for(alice, "ci-deploy")).post(f"{API}/zones/{zone.id}/reconcile/")
    entry = AuditEntry.objects.get(action="zone.reconcile_now")
    client.force_login(alice)
    detail = client.get(f"/audit/{entry.id}/").content.decode()
    assert f"alice through the API, token ci-deploy (#{entry.api_token_id})" in detail
    assert ">API</span>" in client.get("/audit/").content.decode()


def test_an_admin_sees_and_revokes_everyones_tokens_on_a_page_and_others_cannot(client, carol, alice, root):
    token_for(carol, "carols-laptop")
    carols = ApiToken.objects.get(name="carols-laptop")
    client.force_login(alice)
    assert client.get("/account/tokens/all/").status_code == 403
    response = client.post(f"/account/tokens/{carols.id}/revoke/")
    carols.refresh_from_db()
    assert response["Location"] == "/account/tokens/" and carols.revoked_at is None
    client.force_login(root)
    page = client.get("/account/tokens/all/").content.decode()
    assert "carols-laptop" in page and "carol" in page
    client.post(f"/account/tokens/{carols.id}/revoke/")
    carols.refresh_from_db()
    assert carols.revoked_by == root
    client.force_login(carol)
    assert "revoked" in client.get("/account/tokens/").content.decode()


def test_a_policy_preview_shows_the_annotation_changes_and_proposes_nothing(alice, zone):
    from records.models import PolicyProposal

    alpha = "external-dns.alpha.kubernetes.io/"
    for cluster, ip in (("rke2-dc1", "198.51.100.10"), ("k3s-edge", "198.51.100.40")):
        publish({"app.example.com": ip}, cluster, annotations={f"{alpha}hostname": "app.example.com"})
    api = ApiClient(token_for(alice))
    shares = [{"cluster": "rke2-dc1", "weight": 80}, {"cluster": "k3s-edge", "weight": 20}]
    body = {
        "zone_id": zone.id,
        "hostname": "app.example.com",
        "policy": {"kind": "weighted", "shares": shares},
    }
    shown = api.post(f"{API}/proposals/preview/", body).json()
    assert shown["ok"] and not shown["errors"]
    changes = {p["cluster"]: p["changes"] for p in shown["patches"]}
    assert changes["rke2-dc1"][f"{alpha}aws-weight"] == "80"
    assert changes["k3s-edge"][f"{alpha}set-identifier"] == "k3s-edge"
    shares[0]["weight"] = 300
    refused = api.post(f"{API}/proposals/preview/", body).json()
    assert not refused["ok"] and any("rke2-dc1" in k for k in refused["errors"]), refused
    assert not PolicyProposal.objects.exists()


def test_objects_with_problems_and_a_connection_test_over_the_api(root):
    from clusters.models import ConnectionTest, DiscoveredObject

    cluster = publish({"ok.example.com": "192.0.2.1"}, "rke2-dc1")
    DiscoveredObject.objects.create(
        cluster=cluster,
        kind="Service",
        namespace="shop",
        name="bad",
        errors=["`aws-weight`: 300 is not 0-255"],
    )
    api = ApiClient(token_for(root))
    bad = api.get(f"{API}/objects/", problems="true").json()["results"]
    assert [(o["name"], o["errors"]) for o in bad] == [("bad", ["`aws-weight`: 300 is not 0-255"])]
    kubeconfig = """
apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1", certificate-authority-data: ""}}]
users: [{name: u, user: {token: abc}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
"""
    queued = api.post(f"{API}/clusters/test-connection/", {"kubeconfig": kubeconfig})
    assert queued.status_code == 202, queued.json()
    test = ConnectionTest.objects.get(id=queued.json()["id"])
    assert test.created_by == root and JobRun.objects.filter(name="connection_test_run").count() == 1
    assert api.get(f"{API}/clusters/test-connection/{test.id}/").json()["status"] == "pending"
    other = ApiClient(token_for(make_user("root2", "admin")))
    assert other.get(f"{API}/clusters/test-connection/{test.id}/").status_code == 404
    refused = api.post(f"{API}/clusters/test-connection/", {"kubeconfig": "not: [a kubeconfig"})
    assert refused.status_code == 400 and "kubeconfig" in refused.json()["fields"]
