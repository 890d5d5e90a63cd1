"""The traffic-policy editor and the proposal pages, through the Django test client: what each person sees,
what the preview shows while a person types, and the review of a proposal (its write-back is tested with real
clusters in test_traffic_policy.py and tests/e2e/test_policy_editor.py)."""

from __future__ import annotations

import re
from html import unescape

import pytest
import yaml

from clusters.models import Cluster
from dnsportal.models import JobRun
from records.models import Endpoint, PolicyObjectWrite, PolicyProposal, ProviderAccount, Zone
from tests.fixtures.people import make_user
from tests.fixtures.zones import publish

pytestmark = pytest.mark.django_db

NAME = "app.example.com"
ALPHA = "external-dns.alpha.kubernetes.io/"
IPS = {"rke2-dc1": "198.51.100.10", "k3s-edge": "198.51.100.40"}
EDIT = f"/endpoints/host/{NAME}/policy/"
PREVIEW = EDIT + "preview/"
PROPOSE = EDIT + "propose/"
ARGO = {
    "tool": "Argo CD",
    "evidence": "annotation argocd.argoproj.io/tracking-id=shop",
    "source": "Application shop",
}


@pytest.fixture
def zone(db) -> Zone:
    account = ProviderAccount.objects.create(name="aws-prod", credential_kind="default")
    return Zone.objects.create(account=account, provider_zone_id="Z1", name="example.com.")


def serve(cluster: str, *, gitops: dict | None = None, **routing: str) -> Cluster:
    """`cluster` publishes app.example.com from Service default/app, with these routing annotations (weight=
    "80", failover="PRIMARY", region=...), stored as discovery stores them."""
    keys = {"weight": "aws-weight", "failover": "aws-failover", "region": "aws-region"}
    annotations = {f"{ALPHA}hostname": NAME}
    properties = {}
    for short, value in routing.items():
        annotations[f"{ALPHA}{keys[short]}"] = value
        properties[f"aws/{keys[short].removeprefix('aws-')}"] = value
    if routing:
        annotations[f"{ALPHA}set-identifier"] = cluster
    return publish(
        {NAME: IPS[cluster]},
        cluster,
        set_identifier=cluster if routing else "",
        properties=properties,
        annotations=annotations,
        gitops=gitops,
    )


@pytest.fixture
def weighted(zone) -> Zone:
    """app.example.com weighted 50/50 across rke2-dc1 and k3s-edge; Argo CD applies k3s-edge's Service."""
    serve("rke2-dc1", weight="50")
    serve("k3s-edge", weight="50", gitops=ARGO)
    return zone


def form(zone: Zone, kind: str = "weighted", **fields: str) -> dict[str, str]:
    """The editor's POST: both clusters take part; `fields` as the form names them ("rke2-dc1-weight")."""
    data = {
        "kind": kind,
        "zone": str(zone.id),
        "clusters": "k3s-edge,rke2-dc1",
        "ttl": "",
        "k3s-edge-enabled": "on",
        "rke2-dc1-enabled": "on",
        "k3s-edge-weight": "50",
        "rke2-dc1-weight": "50",
        "hc-protocol": "HTTP",
        "hc-port": "80",
        "hc-request_interval": "30",
        "hc-failure_threshold": "3",
    }
    data.update(fields)
    return {k: v for k, v in data.items() if v is not None}


def htmx(client, url: str, data: dict, target: str = "policy-preview"):
    return client.post(url, data, HTTP_HX_REQUEST="true", HTTP_HX_TARGET=target)


def slot(html: str, slot_id: str) -> str:
    """The text of the error slot (or any element) with this id."""
    match = re.search(rf'<(\w+)[^>]* id="{re.escape(slot_id)}"[^>]*>(.*?)</\1>', html, re.S)
    assert match, f"no element #{slot_id}"
    return _text(match.group(2))


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", html))).strip()


def value_of(html: str, name: str) -> str | None:
    match = re.search(rf'<input[^>]*name="{re.escape(name)}"[^>]*>', html)
    assert match, f"no input {name}"
    found = re.search(r'value="([^"]*)"', match.group(0))
    return found.group(1) if found else None


def selected(html: str, name: str) -> str:
    select = re.search(rf'<select name="{re.escape(name)}".*?</select>', html, re.S)
    assert select, f"no select {name}"
    option = re.search(r'<option value="([^"]*)"[^>]*selected', select.group(0))
    return option.group(1) if option else ""


# --- the form --------------------------------------------------------------------------------------------


def test_the_form_is_prefilled_from_the_clusters_endpoints(client, alice, weighted):
    Endpoint.objects.filter(dns_name=NAME).update(ttl=60)
    client.force_login(alice)
    html = client.get(EDIT).content.decode()
    assert re.search(r'<input type="radio" name="kind" value="weighted"[^>]*checked', html)
    assert value_of(html, "rke2-dc1-weight") == "50" and value_of(html, "k3s-edge-weight") == "50"
    assert value_of(html, "ttl") == "60"
    assert value_of(html, "clusters") == "k3s-edge,rke2-dc1"
    assert slot(html, "pct-rke2-dc1") == "50.0 %"
    assert "weighted: k3s-edge 50, rke2-dc1 50" in _text(html)  # the policy now, in words
    assert '<figure class="chart for-kind for-weighted" id="policy-chart"><svg' in html


def test_failover_and_latency_fields_are_prefilled_from_what_the_portal_knows(client, alice, zone):
    serve("rke2-dc1", failover="PRIMARY")
    serve("k3s-edge", failover="SECONDARY")
    # A region label given at registration, and a region in the name of the demo's EKS cluster.
    Cluster.objects.filter(name="rke2-dc1").update(labels={"topology.kubernetes.io/region": "eu-central-1"})
    publish({NAME: "203.0.113.7"}, "eks-us-east-1", annotations={f"{ALPHA}hostname": NAME})
    client.force_login(alice)
    html = client.get(EDIT).content.decode()
    # The clusters disagree (two fail over, one has no routing): that reads as round robin, each cluster's
    # own fields kept for the policy a person picks.
    assert re.search(r'<input type="radio" name="kind" value="round-robin"[^>]*checked', html)
    assert selected(html, "rke2-dc1-role") == "PRIMARY" and selected(html, "k3s-edge-role") == "SECONDARY"
    # The health check probes the primary: its address is the target to start from.
    assert value_of(html, "hc-target") == IPS["rke2-dc1"]
    assert selected(html, "rke2-dc1-region") == "eu-central-1"
    assert selected(html, "eks-us-east-1-region") == "us-east-1"
    assert selected(html, "k3s-edge-region") == ""


def test_a_viewer_and_an_approver_see_the_policy_but_no_form(client, carol, bob, weighted):
    for person in (carol, bob):
        client.force_login(person)
        response = client.get(EDIT)
        html = response.content.decode()
        assert response.status_code == 200
        assert 'id="policy-form"' not in html and "<form" not in html.split("<main", 1)[1].split("Log out")[0]
        assert "weight 50 (50.0 %)" in _text(html)
        assert "needs the operator role" in _text(html)
        assert client.post(PREVIEW, form(weighted)).status_code == 403
        assert client.post(PROPOSE, form(weighted)).status_code == 403
    assert not PolicyProposal.objects.exists()


def test_a_name_in_no_imported_zone_says_what_to_do_before_proposing(client, alice, db):
    serve("rke2-dc1", weight="50")
    client.force_login(alice)
    assert "no imported zone holds this name" in _text(client.get(EDIT).content.decode())
    data = {**form(Zone(id=0), **{"clusters": "rke2-dc1", "rke2-dc1-weight": "80"}), "zone": ""}
    response = client.post(PROPOSE, data)
    assert response.status_code == 422
    assert "No imported zone holds this name: import its zone (Zones)" in slot(
        response.content.decode(), "err-zone"
    )
    assert not PolicyProposal.objects.exists()


def test_a_name_no_cluster_serves_has_no_editor(client, alice, zone):
    client.force_login(alice)
    response = client.get("/endpoints/host/nothing.example.com/policy/")
    assert response.status_code == 404
    assert "No cluster publishes nothing.example.com" in _text(response.content.decode())


# --- the live preview ------------------------------------------------------------------------------------


def test_the_preview_shows_the_percentages_and_the_intended_split_as_you_type(client, alice, weighted):
    client.force_login(alice)
    response = htmx(client, PREVIEW, form(weighted, **{"rke2-dc1-weight": "80", "k3s-edge-weight": "20"}))
    html = response.content.decode()
    assert response.status_code == 200
    assert not html.lstrip().startswith("<!doctype")  # the fragment, not the page
    # The percentages and the chart are swapped out of band, next to the weights.
    assert re.search(r'<output id="pct-rke2-dc1"[^>]*hx-swap-oob="true">80.0 %</output>', html)
    assert re.search(r'<output id="pct-k3s-edge"[^>]*hx-swap-oob="true">20.0 %</output>', html)
    chart = re.search(r'<figure[^>]*id="policy-chart" hx-swap-oob="true"><svg.*?</svg>', html, re.S)
    assert chart
    assert '<desc id="split-desc">k3s-edge: intended 20 %; rke2-dc1: intended 80 %.</desc>' in chart.group(0)
    # Without htmx the same form posted to the preview gets the whole page, with the same numbers.
    page = client.post(PREVIEW, form(weighted, **{"rke2-dc1-weight": "80", "k3s-edge-weight": "20"}))
    assert page.content.decode().startswith("<!doctype html>")
    assert slot(page.content.decode(), "pct-rke2-dc1") == "80.0 %"


@pytest.mark.parametrize(
    ("fields", "slot_id", "message"),
    [
        ({"rke2-dc1-weight": "300"}, "err-rke2-dc1-weight", "A weight is a whole number from 0 to 255."),
        ({"rke2-dc1-weight": "eighty"}, "err-rke2-dc1-weight", "Enter a whole number."),
        ({"rke2-dc1-weight": "0", "k3s-edge-weight": "0"}, "err-all", "Every weight is 0"),
        ({"ttl": "2147483648"}, "err-ttl", "A TTL is from 1 to 2147483647 seconds"),
        (
            {"kind": "failover", "rke2-dc1-role": "PRIMARY", "k3s-edge-role": "SECONDARY", "hc-target": ""},
            "err-health-check",
            "A failover primary needs a health check",
        ),
        (
            {"kind": "failover", "rke2-dc1-role": "PRIMARY", "k3s-edge-role": "PRIMARY", "hc-target": ""},
            "err-all",
            "Failover needs exactly one primary cluster.",
        ),
        (
            {
                "kind": "failover",
                "rke2-dc1-role": "PRIMARY",
                "k3s-edge-role": "SECONDARY",
                "hc-target": "10.0.0.1",
            },
            "err-hc-target",
            "is not a public internet address",
        ),
        (
            {"kind": "latency", "rke2-dc1-region": "eu-central-1"},
            "err-k3s-edge-region",
            "Choose the AWS region",
        ),
        (
            {"kind": "geolocation", "rke2-dc1-continent": "EU", "rke2-dc1-country": "DE"},
            "err-rke2-dc1-location",
            "Choose a continent or a country, not both.",
        ),
    ],
)
def test_each_error_sits_next_to_its_field(client, alice, weighted, fields, slot_id, message):
    client.force_login(alice)
    html = htmx(client, PREVIEW, form(weighted, **fields)).content.decode()
    assert message in slot(html, slot_id), html
    # Every other slot is swapped too, empty: an error fixed since the last keystroke disappears.
    others = re.findall(r'id="(err-[\w-]+)" hx-swap-oob="true"></div>', html)
    assert slot_id not in others and "err-k3s-edge-weight" in [*others, slot_id]
    # The full page (no JavaScript) puts the message in the same place.
    page = client.post(PREVIEW, form(weighted, **fields)).content.decode()
    assert message in slot(page, slot_id)


def test_a_health_check_problem_is_shown_once_next_to_its_field(client, alice, weighted):
    client.force_login(alice)
    fields = {"kind": "failover", "rke2-dc1-role": "PRIMARY", "k3s-edge-role": "SECONDARY"}
    html = htmx(client, PREVIEW, form(weighted, **fields, **{"hc-target": "10.0.0.1"})).content.decode()
    assert "public internet address" in slot(html, "err-hc-target")
    assert slot(html, "err-health-check") == ""
    good = {"hc-target": "rke2.app.example.com", "hc-resource_path": "/healthz"}
    html = htmx(client, PREVIEW, form(weighted, **fields, **good)).content.decode()
    assert slot(html, "err-hc-target") == "" and slot(html, "err-health-check") == ""
    assert "external-dns.alpha.kubernetes.io/aws-failover: PRIMARY" in _text(html)


def test_a_bad_health_check_does_not_hide_the_other_problems(client, alice, weighted):
    # Both at once: the secondary's missing role as well as the unreachable target, each on its field.
    client.force_login(alice)
    fields = {"kind": "failover", "rke2-dc1-role": "PRIMARY", "k3s-edge-role": "", "hc-target": "10.0.0.1"}
    html = htmx(client, PREVIEW, form(weighted, **fields)).content.decode()
    assert "public internet address" in slot(html, "err-hc-target")
    assert "Choose primary or secondary." in slot(html, "err-k3s-edge-role")
    assert slot(html, "err-health-check") == ""  # said once, next to the target
    page = client.post(PROPOSE, form(weighted, **fields))
    assert page.status_code == 422
    assert "Choose primary or secondary." in slot(page.content.decode(), "err-k3s-edge-role")


def test_warnings_are_shown_above_the_submit_button(client, alice, weighted):
    client.force_login(alice)
    page = client.post(PREVIEW, form(weighted, **{"rke2-dc1-weight": "0", "k3s-edge-weight": "10"})).content
    html = page.decode()
    warning = html.index("Only one cluster takes traffic; the others are drained (weight 0).")
    assert warning < html.index("Propose for review") and warning > html.index('id="policy-preview"')


def test_the_preview_shows_the_annotation_diff_per_object(client, alice, weighted):
    client.force_login(alice)
    fields = {"kind": "failover", "rke2-dc1-role": "PRIMARY", "k3s-edge-role": "SECONDARY"}
    fields |= {"hc-target": "rke2.app.example.com"}
    html = htmx(client, PREVIEW, form(weighted, **fields)).content.decode()
    card = re.search(
        r'<article class="card object" id="object-rke2-dc1-service-default-app">.*?</article>', html, re.S
    )
    assert card
    card_html = card.group(0)
    removed = [_text(m) for m in re.findall(r'<del class="line removed">(.*?)</del>', card_html)]
    added = [_text(m) for m in re.findall(r'<ins class="line added">(.*?)</ins>', card_html)]
    assert removed == [f"- {ALPHA}aws-weight: '50'"]
    assert f"+ {ALPHA}aws-failover: PRIMARY" in added
    assert f"+ {ALPHA}aws-health-check-id: 00000000-0000-4000-8000-000000000000" in added
    # Keys the patch leaves alone are shown on both sides, unmarked.
    assert card_html.count(f"{ALPHA}hostname: app.example.com") == 2
    assert "Predicted DNS change in example.com" in _text(html)
    predicted = _text(re.search(r'<table class="diff predicted">.*?</table>', html, re.S).group(0))
    assert "create app.example.com. A [rke2-dc1]" in predicted and "failover PRIMARY" in predicted


def test_a_gitops_managed_object_is_flagged_with_its_kustomize_patch_to_download(
    client, alice, carol, weighted
):
    client.force_login(alice)
    html = htmx(client, PREVIEW, form(weighted, **{"rke2-dc1-weight": "80", "k3s-edge-weight": "20"})).content
    html = html.decode()
    card = re.search(r'id="object-k3s-edge-service-default-app">.*?</article>', html, re.S).group(0)
    assert "Argo CD manages this object: a sync will revert the change." in _text(card)
    assert "Application shop" in _text(card)
    assert "object-rke2-dc1" in html and "manages this object" not in html.split("object-rke2-dc1")[1]
    link = re.search(r'href="(/policies/patch/[^"]+/)" download="app-service-dns.yaml"', card)
    assert link
    client.force_login(carol)  # a link anyone who sees the page may follow
    response = client.get(unescape(link.group(1)))
    assert response.status_code == 200
    assert response["Content-Type"] == "text/yaml; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="app-service-dns.yaml"'
    patch = yaml.safe_load(response.content)
    assert patch["metadata"] == {
        "name": "app",
        "namespace": "default",
        "annotations": {f"{ALPHA}aws-weight": "20"},
    }
    assert client.get(unescape(link.group(1)).replace("/patch/.", "/patch/x")).status_code == 404


def test_a_read_only_cluster_is_flagged_with_a_yaml_export(client, alice, weighted):
    Cluster.objects.filter(name="rke2-dc1").update(missing_permissions=["patch services"])
    client.force_login(alice)
    html = htmx(client, PREVIEW, form(weighted, **{"rke2-dc1-weight": "80"})).content.decode()
    card = _text(re.search(r'id="object-rke2-dc1-service-default-app">.*?</article>', html, re.S).group(0))
    assert "read-only" in card
    assert "The portal's identity in rke2-dc1 may not patch services: export the change as YAML." in card
    assert "Export app-service-dns.yaml" in card


def test_an_object_publishing_other_names_says_they_follow(client, alice, weighted):
    source = Endpoint.objects.get(cluster__name="rke2-dc1", dns_name=NAME).source
    Endpoint.objects.create(
        cluster=source.cluster,
        source=source,
        dns_name="www.example.com",
        record_type="A",
        targets=[IPS["rke2-dc1"]],
        resource="service/default/app",
    )
    client.force_login(alice)
    html = htmx(client, PREVIEW, form(weighted, **{"rke2-dc1-weight": "80"})).content.decode()
    card = _text(re.search(r'id="object-rke2-dc1-service-default-app">.*?</article>', html, re.S).group(0))
    assert "Also affects www.example.com: this object publishes that name too" in card


@pytest.mark.parametrize(
    ("preset", "weights"),
    [
        ("main:rke2-dc1", {"rke2-dc1": "80", "k3s-edge": "20"}),
        ("canary:k3s-edge", {"rke2-dc1": "95", "k3s-edge": "5"}),
        ("drain:k3s-edge", {"rke2-dc1": "50", "k3s-edge": "0"}),
        ("equal", {"rke2-dc1": "50", "k3s-edge": "50"}),
    ],
)
def test_a_preset_sets_the_weights_and_shows_them(client, alice, weighted, preset, weights):
    client.force_login(alice)
    data = form(weighted, kind="round-robin", **{"rke2-dc1-weight": "50", "k3s-edge-weight": "50"})
    # htmx swaps the whole editor (the inputs change); a plain post gets the page.
    for response in (htmx(client, PREVIEW, {**data, "preset": preset}, "policy-editor"), None):
        if response is None:
            response = client.post(PREVIEW, {**data, "preset": preset})
        html = response.content.decode()
        assert re.search(r'<input type="radio" name="kind" value="weighted"[^>]*checked', html)
        for cluster, weight in weights.items():
            assert value_of(html, f"{cluster}-weight") == weight
    total = sum(int(w) for w in weights.values())
    assert slot(html, "pct-k3s-edge") == f"{100 * int(weights['k3s-edge']) / total:.1f} %"


# --- proposing and reviewing ------------------------------------------------------------------------------


def propose(client, zone, **fields) -> PolicyProposal:
    response = client.post(PROPOSE, form(zone, **fields))
    assert response.status_code == 302, _text(response.content.decode())[:2000]
    proposal = PolicyProposal.objects.get()
    assert response["Location"] == f"/policies/proposals/{proposal.id}/"
    return proposal


def test_propose_then_a_second_person_approves_it(client, alice, bob, weighted):
    client.force_login(alice)
    proposal = propose(client, weighted, **{"rke2-dc1-weight": "80", "k3s-edge-weight": "20"})
    assert proposal.proposed_by == alice and proposal.status == PolicyProposal.Status.PENDING
    page = client.get(f"/policies/proposals/{proposal.id}/").content.decode()
    text = _text(page)
    assert "Pending review" in text and "weighted: k3s-edge 20, rke2-dc1 80" in text
    assert "Before weighted: k3s-edge 50, rke2-dc1 50" in text
    assert "You proposed this policy, so a second person must approve it." in text
    assert "/approve/" not in page  # no approve button for the author
    assert f"+ {ALPHA}aws-weight: '80'" in text  # the annotation diff, per object
    assert "Argo CD manages this object" in text
    assert "create app.example.com. A [rke2-dc1]" in text  # the predicted change

    client.force_login(bob)
    page = client.get(f"/policies/proposals/{proposal.id}/").content.decode()
    assert f'action="/policies/proposals/{proposal.id}/approve/"' in page
    assert f'hx-confirm="Reject policy proposal #{proposal.id}?"' in page
    response = client.post(f"/policies/proposals/{proposal.id}/approve/", {"comment": "as planned"})
    assert response.status_code == 302 and response["Location"] == f"/policies/proposals/{proposal.id}/"
    proposal.refresh_from_db()
    assert (proposal.status, proposal.approved_by, proposal.review_comment) == ("approved", bob, "as planned")
    assert JobRun.objects.filter(name="policy_write_back", kwargs={"proposal_id": proposal.id}).exists()
    text = _text(client.get(f"/policies/proposals/{proposal.id}/").content.decode())
    assert "Approved by bob" in text and "Not written yet" in text
    assert f"Policy proposal #{proposal.id} approved" in text  # the message after the redirect


def test_the_author_cannot_approve_their_own_proposal(client, weighted):
    dave = make_user("dave", "operator", "approver")
    client.force_login(dave)
    proposal = propose(client, weighted, **{"rke2-dc1-weight": "80"})
    refused = client.post(f"/policies/proposals/{proposal.id}/approve/")
    assert refused.status_code == 422
    assert "A second person must approve this policy proposal: you proposed it." in _text(
        refused.content.decode()
    )
    refused = htmx(client, f"/policies/proposals/{proposal.id}/approve/", {}, "proposal-live")
    assert refused.status_code == 422 and refused.content.decode().startswith('<div id="proposal-live"')
    proposal.refresh_from_db()
    assert proposal.status == PolicyProposal.Status.PENDING and proposal.approved_by is None


def test_a_rejection_needs_a_reason_and_htmx_gets_the_fragment(client, alice, bob, weighted):
    client.force_login(alice)
    proposal = propose(client, weighted, **{"rke2-dc1-weight": "80"})
    client.force_login(bob)
    url = f"/policies/proposals/{proposal.id}/reject/"
    refused = client.post(url, {"comment": ""})
    assert refused.status_code == 422 and "Say why the proposal is rejected" in refused.content.decode()
    done = htmx(client, url, {"comment": "not during the sale"}, "proposal-live")
    assert done.status_code == 200
    assert 'id="proposal-state">Rejected</span>' in done.content.decode()
    proposal.refresh_from_db()
    assert proposal.status == PolicyProposal.Status.REJECTED


def test_a_refused_proposal_shows_the_form_again_with_the_errors(client, alice, weighted):
    client.force_login(alice)
    response = client.post(PROPOSE, form(weighted, **{"rke2-dc1-weight": "300"}))
    assert response.status_code == 422
    assert "A weight is a whole number from 0 to 255." in slot(
        response.content.decode(), "err-rke2-dc1-weight"
    )
    response = client.post(PROPOSE, form(weighted, **{"rke2-dc1-weight": "50", "k3s-edge-weight": "50"}))
    assert response.status_code == 422
    assert "The clusters already ask for this policy for app.example.com: nothing to propose." in _text(
        response.content.decode()
    )
    assert not PolicyProposal.objects.exists()


def test_a_partly_written_proposal_can_be_retried_or_given_up_by_an_operator(client, alice, bob, weighted):
    client.force_login(alice)
    proposal = propose(client, weighted, **{"rke2-dc1-weight": "80"})
    PolicyProposal.objects.filter(id=proposal.id).update(
        status=PolicyProposal.Status.PARTIALLY_WRITTEN, approved_by=bob, message="k3s-edge: unreachable"
    )
    PolicyObjectWrite.objects.filter(proposal=proposal, cluster__name="k3s-edge").update(
        status=PolicyObjectWrite.Status.UNREACHABLE, message="connection refused", attempts=3
    )
    PolicyObjectWrite.objects.filter(proposal=proposal, cluster__name="rke2-dc1").update(
        status=PolicyObjectWrite.Status.CONFLICT, changed_by="kubectl-edit at 2026-11-30T14:02:11Z"
    )
    url = f"/policies/proposals/{proposal.id}/"
    client.force_login(bob)  # an approver only: no operator actions
    assert "/retry/" not in client.get(url).content.decode()
    client.force_login(alice)
    page = client.get(url).content.decode()
    text = _text(page)
    assert "Conflict: changed by kubectl-edit at 2026-11-30T14:02:11Z" in text
    assert "Cluster unreachable (retried)" in text and "connection refused (3 attempts)" in text
    assert f'action="{url}retry/"' in page and 'hx-confirm="Give up policy proposal' in page
    assert client.post(url + "retry/").status_code == 302
    assert JobRun.objects.filter(name="policy_write_back").count() == 1
    response = client.post(url + "abandon/", {"comment": "edge is gone for good"})
    assert response.status_code == 302
    proposal.refresh_from_db()
    assert proposal.status == PolicyProposal.Status.ABANDONED
    refused = client.post(url + "retry/")
    assert refused.status_code == 422 and "nothing to retry" in refused.content.decode()


# --- lists and links ----------------------------------------------------------------------------------------


def test_the_proposal_list_filters_by_status_and_hostname(client, alice, carol, weighted):
    client.force_login(alice)
    proposal = propose(client, weighted, **{"rke2-dc1-weight": "80"})
    client.force_login(carol)
    assert (
        'href="/policies/proposals/"' in client.get("/policies/").content.decode()
    )  # from the Policies page
    text = _text(client.get("/policies/proposals/").content.decode())
    assert f"#{proposal.id} app.example.com Pending review weighted: k3s-edge 50, rke2-dc1 80 alice" in text
    assert f"#{proposal.id}" in _text(
        client.get("/policies/proposals/?status=pending&q=APP.example").content.decode()
    )
    assert "No policy proposal matches" in _text(
        client.get("/policies/proposals/?status=written").content.decode()
    )
    assert "No policy proposal matches" in _text(client.get("/policies/proposals/?q=www").content.decode())


def test_the_hostname_page_links_to_its_zone_records_change_sets_policy_and_proposals(
    client, alice, carol, weighted
):
    client.force_login(alice)
    proposal = propose(client, weighted, **{"rke2-dc1-weight": "80"})
    client.force_login(carol)
    html = client.get(f"/endpoints/host/{NAME}/").content.decode()
    for href in (
        f"/zones/{weighted.id}/",
        "/records/?q=app.example.com",
        "/changes/?name=app.example.com",
        f"/policies/proposals/{proposal.id}/",
        "/policies/proposals/?q=app.example.com",
        EDIT,
    ):
        assert f'href="{href}"' in html, href
    assert "See the traffic policy" in html  # a viewer sees it; an operator edits it
    client.force_login(alice)
    assert "Edit the traffic policy" in client.get(f"/endpoints/host/{NAME}/").content.decode()


def test_the_change_set_list_filters_by_name(client, carol, weighted):
    from records.models import Change, ChangeSet

    mine = ChangeSet.objects.create(zone=weighted, fingerprint="a" * 64)
    other = ChangeSet.objects.create(zone=weighted, fingerprint="b" * 64)
    for cs, name in ((mine, f"{NAME}."), (other, "www.example.com.")):
        Change.objects.create(changeset=cs, position=0, kind="create", name=name, type="A", actions=[])
    client.force_login(carol)
    html = client.get(f"/changes/?name={NAME}").content.decode()
    assert f"/changes/{mine.id}/" in html and f"/changes/{other.id}/" not in html


def test_a_reverted_write_and_the_health_checks_live_status_are_on_the_proposal(
    client, alice, carol, weighted
):
    from django.utils import timezone

    client.force_login(alice)
    fields = {"kind": "failover", "rke2-dc1-role": "PRIMARY", "k3s-edge-role": "SECONDARY"}
    proposal = propose(client, weighted, **fields, **{"hc-target": "rke2.app.example.com"})
    PolicyProposal.objects.filter(id=proposal.id).update(
        status=PolicyProposal.Status.WRITTEN,
        health_check_id="abcd-1234",
        health_check_status="healthy in 8 of 8 regions",
        health_check_healthy=True,
        health_check_checked_at=timezone.now(),
    )
    PolicyObjectWrite.objects.filter(proposal=proposal, cluster__name="k3s-edge").update(
        status=PolicyObjectWrite.Status.REVERTED,
        message="`external-dns.alpha.kubernetes.io/aws-failover` was removed again, by argocd-controller",
    )
    client.force_login(carol)
    text = _text(client.get(f"/policies/proposals/{proposal.id}/").content.decode())
    assert "HTTP rke2.app.example.com:80" in text and "(abcd-1234) healthy healthy in 8 of 8 regions" in text
    assert "Reverted in the cluster" in text and "removed again, by argocd-controller" in text
    # The hostname page shows the check's live status too.
    page = _text(client.get("/endpoints/host/app.example.com/").content.decode())
    assert (
        "Health check abcd-1234 (the primary's, created by the portal): healthy healthy in 8 of 8 regions"
        in page
    )


# --- a PowerDNS zone: the provider's rules, through the same editor -----------------------------------------


@pytest.fixture
def pdns_weighted(db) -> Zone:
    """app.example.com weighted 50/50, in a zone of an on-prem PowerDNS server instead of Route53."""
    account = ProviderAccount.objects.create(
        name="pdns-dc1", kind="powerdns", endpoint_url="http://127.0.0.1:1"
    )
    zone = Zone.objects.create(account=account, provider_zone_id="example.com.", name="example.com.")
    serve("rke2-dc1", weight="50")
    serve("k3s-edge", weight="50")
    return zone


def test_a_powerdns_failover_checks_a_private_address_over_http(client, alice, pdns_weighted):
    # PowerDNS's ifurlup probes from inside the network: a private address is what an on-prem check targets.
    client.force_login(alice)
    fields = {"kind": "failover", "rke2-dc1-role": "PRIMARY", "k3s-edge-role": "SECONDARY"}
    html = htmx(client, PREVIEW, form(pdns_weighted, **fields, **{"hc-target": "10.0.0.1"})).content.decode()
    assert slot(html, "err-hc-target") == "" and slot(html, "err-health-check") == ""
    predicted = _text(re.search(r'<table class="diff predicted">.*?</table>', html, re.S).group(0))
    assert "create app.example.com. A [rke2-dc1]" in predicted and "failover PRIMARY" in predicted


def test_a_powerdns_failover_refuses_a_tcp_check_and_latency_in_sentences(client, alice, pdns_weighted):
    client.force_login(alice)
    fields = {"kind": "failover", "rke2-dc1-role": "PRIMARY", "k3s-edge-role": "SECONDARY"}
    tcp = {"hc-target": "10.0.0.1", "hc-protocol": "TCP"}
    html = htmx(client, PREVIEW, form(pdns_weighted, **fields, **tcp)).content.decode()
    assert "use an HTTP or HTTPS health check, not TCP" in _text(html)
    page = client.post(PROPOSE, form(pdns_weighted, **fields, **tcp))
    assert page.status_code == 422 and not PolicyProposal.objects.exists()
    latency = {"kind": "latency", "rke2-dc1-region": "eu-west-1", "k3s-edge-region": "us-east-1"}
    html = htmx(client, PREVIEW, form(pdns_weighted, **latency)).content.decode()
    assert "PowerDNS has no latency-based routing" in _text(html)
