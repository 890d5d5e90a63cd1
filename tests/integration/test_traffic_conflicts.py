"""What goes wrong between a proposal and its write-back: an edit in the cluster meanwhile is a conflict,
never overwritten; an unreachable cluster leaves the proposal partially written with DNS held, and a retry
completes it; an object a GitOps tool manages is flagged with its Kustomize patch."""

from __future__ import annotations

import pytest
from kubernetes import client as k8s

from clusters import discovery
from clusters.watch import endpoints_changed
from dnsportal.models import AuditEntry
from records import proposals
from records.models import Change, ChangeSet, PolicyObjectWrite, PolicyProposal
from records.selectors import unpublished_reasons
from records.traffic import TrafficPolicy
from tests.fixtures.kube import kube_client
from tests.fixtures.traffic import ALPHA, IPS, NAME, annotations, rrsets, shares

pytestmark = pytest.mark.django_db(transaction=True)

EIGHTY_TWENTY = TrafficPolicy(
    NAME, "weighted", shares(**{"rke2-dc1": {"weight": 80}, "k3s-edge": {"weight": 20}})
)
ROUND_ROBIN = {(f"{NAME}.", ""): {"values": sorted(IPS.values())}}


def sync_all(story) -> None:
    """What the watch does when it sees the objects change: store them and reconcile their names."""
    for cluster, _ in story["clusters"].values():
        _, changed = discovery.sync_cluster(cluster.id)
        endpoints_changed(cluster.id, changed)


def test_an_edit_in_the_cluster_after_the_proposal_is_a_conflict_and_is_not_overwritten(
    story, alice, bob, run_jobs, route53
):
    proposal = proposals.policy_propose(
        actor=alice, zone_id=story["zone"].id, hostname=NAME, policy=EIGHTY_TWENTY
    )
    # Someone edits the rke2-dc1 Service by hand before the write-back (kubectl edit, say).
    _, sandbox = story["clusters"]["rke2-dc1"]
    k8s.CoreV1Api(kube_client(sandbox)).patch_namespaced_service(
        "nginx",
        story["namespace"],
        {"metadata": {"annotations": {f"{ALPHA}ttl": "300"}}},
        field_manager="kubectl-edit",
    )
    proposals.policy_approve(proposal_id=proposal.id, approver=bob)
    run_jobs()

    proposal.refresh_from_db()
    assert proposal.status == PolicyProposal.Status.PARTIALLY_WRITTEN
    rke2 = proposal.writes.get(cluster__name="rke2-dc1")
    assert rke2.status == PolicyObjectWrite.Status.CONFLICT
    # managedFields times have whole seconds: a manager that wrote in the same second is named beside it.
    assert "kubectl-edit" in rke2.changed_by.split(" at ")[0] and " at " in rke2.changed_by
    assert "rke2-dc1" in proposal.message and "conflict" in proposal.message
    # The other person's edit stands; ours was not applied over it.
    assert annotations(story, "rke2-dc1") == {f"{ALPHA}hostname": NAME, f"{ALPHA}ttl": "300"}
    assert proposal.writes.get(cluster__name="k3s-edge").status == PolicyObjectWrite.Status.WRITTEN
    # Half of 80/20 is a split nobody approved: DNS keeps the name as it is.
    sync_all(story)
    run_jobs()
    assert rrsets(route53, story["zone"]) == ROUND_ROBIN
    assert not Change.objects.filter(
        changeset__zone=story["zone"], changeset__status="pending", name=f"{NAME}."
    )
    # A person gives up: the hold ends and DNS follows what the clusters say now. Here they disagree (k3s-edge
    # weighted, rke2-dc1 plain): a conflict, shown on the name, which keeps it as it is until resolved.
    proposals.policy_abandon(proposal_id=proposal.id, actor=alice, comment="someone edited rke2-dc1 by hand")
    run_jobs()
    proposal.refresh_from_db()
    assert proposal.status == PolicyProposal.Status.ABANDONED
    assert rrsets(route53, story["zone"]) == ROUND_ROBIN
    assert any(r.kind == "conflict" for r in unpublished_reasons([NAME])[NAME])


def test_an_unreachable_cluster_leaves_the_proposal_partially_written_and_a_retry_completes_it(
    story, alice, bob, run_jobs, route53
):
    proposal = proposals.policy_propose(
        actor=alice, zone_id=story["zone"].id, hostname=NAME, policy=EIGHTY_TWENTY
    )
    _, k3s = story["clusters"]["k3s-edge"]
    k3s.stop_apiserver()
    try:
        proposals.policy_approve(proposal_id=proposal.id, approver=bob)
        run_jobs()
        proposal.refresh_from_db()
        assert proposal.status == PolicyProposal.Status.PARTIALLY_WRITTEN
        write = proposal.writes.get(cluster__name="k3s-edge")
        assert write.status == PolicyObjectWrite.Status.UNREACHABLE and write.attempts == 1
        assert "k3s-edge" in proposal.message and "unreachable" in proposal.message
        assert annotations(story, "rke2-dc1")[f"{ALPHA}aws-weight"] == "80"
        # rke2-dc1 already says 80 while k3s-edge still says round robin: DNS holds the name meanwhile.
        rke2, _ = story["clusters"]["rke2-dc1"]
        _, changed = discovery.sync_cluster(rke2.id)
        endpoints_changed(rke2.id, changed)
        run_jobs()
        assert rrsets(route53, story["zone"]) == ROUND_ROBIN
    finally:
        k3s.start_apiserver()
    proposals.policy_retry(proposal_id=proposal.id, actor=alice)
    run_jobs()
    proposal.refresh_from_db()
    assert proposal.status == PolicyProposal.Status.WRITTEN, proposal.message
    assert annotations(story, "k3s-edge")[f"{ALPHA}aws-weight"] == "20"
    sync_all(story)
    run_jobs()
    proposal.refresh_from_db()
    assert proposal.changeset is not None and proposal.changeset.status == ChangeSet.Status.APPLIED
    assert rrsets(route53, story["zone"]) == {
        (f"{NAME}.", "rke2-dc1"): {"values": [IPS["rke2-dc1"]], "Weight": 80},
        (f"{NAME}.", "k3s-edge"): {"values": [IPS["k3s-edge"]], "Weight": 20},
    }
    assert AuditEntry.objects.filter(action="policy.retry", object_id=str(proposal.id)).exists()


def test_an_object_a_gitops_tool_manages_is_flagged_with_its_kustomize_patch(story, alice):
    _, sandbox = story["clusters"]["k3s-edge"]
    k8s.CoreV1Api(kube_client(sandbox)).patch_namespaced_service(
        "nginx",
        story["namespace"],
        {
            "metadata": {
                "labels": {
                    "kustomize.toolkit.fluxcd.io/name": "apps",
                    "kustomize.toolkit.fluxcd.io/namespace": "flux-system",
                }
            }
        },
        field_manager="kustomize-controller",
    )
    cluster, _ = story["clusters"]["k3s-edge"]
    discovery.sync_cluster(cluster.id)
    shown = proposals.preview(zone=story["zone"], hostname=NAME, policy=EIGHTY_TWENTY)
    assert shown.ok
    [(key, info)] = shown.gitops.items()
    assert key == ("k3s-edge", "service/" + story["namespace"] + "/nginx")
    assert info["tool"] == "Flux"
    proposal = proposals.policy_propose(
        actor=alice, zone_id=story["zone"].id, hostname=NAME, policy=EIGHTY_TWENTY
    )
    write = proposal.writes.get(cluster__name="k3s-edge")
    assert write.gitops["tool"] == "Flux"
    from clusters.gitops import kustomize_patch

    patch = kustomize_patch(write.kind, write.namespace, write.name, write.changes)
    assert f"{ALPHA}aws-weight: '20'" in patch or f'{ALPHA}aws-weight: "20"' in patch
    assert "patches:" in patch


def test_a_written_policy_reverted_by_a_gitops_sync_says_so_and_by_which_manager(story, alice, bob, run_jobs):
    from tests.fixtures.traffic import step

    proposal = step(story, alice, bob, run_jobs, EIGHTY_TWENTY)
    # Flux applies the manifests from Git again: the weight it knows comes back.
    _, sandbox = story["clusters"]["k3s-edge"]
    k8s.CoreV1Api(kube_client(sandbox)).patch_namespaced_service(
        "nginx",
        story["namespace"],
        {"metadata": {"annotations": {f"{ALPHA}aws-weight": "50"}}},
        field_manager="kustomize-controller",
    )
    cluster, _ = story["clusters"]["k3s-edge"]
    discovery.sync_cluster(cluster.id)
    write = proposal.writes.get(cluster__name="k3s-edge")
    assert write.status == PolicyObjectWrite.Status.REVERTED
    assert write.changed_by == "kustomize-controller"
    assert f"`{ALPHA}aws-weight` is '50' again, not '20' as written, by kustomize-controller" in write.message
    proposal.refresh_from_db()
    assert proposal.message.startswith("Reverted: Service ")
    assert proposal.writes.get(cluster__name="rke2-dc1").status == PolicyObjectWrite.Status.WRITTEN
    assert AuditEntry.objects.filter(action="policy.reverted", object_id=str(proposal.id)).count() == 1
    discovery.sync_cluster(cluster.id)  # seen once: a second relist does not say it again
    assert AuditEntry.objects.filter(action="policy.reverted", object_id=str(proposal.id)).count() == 1


def test_an_object_without_external_dns_keys_gets_the_prefix_its_cluster_is_set_to(story, root, client):
    from clusters.models import Cluster

    cluster, _ = story["clusters"]["k3s-edge"]
    client.force_login(root)
    response = client.post(
        f"/clusters/{cluster.name}/edit/",
        {"display_name": "", "description": "", "labels": "", "write_back_prefix": Cluster.Prefix.GA},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert Cluster.objects.get(id=cluster.id).write_back_prefix == "external-dns.kubernetes.io/"
    assert (
        AuditEntry.objects.filter(action="cluster.update", object_id=str(cluster.id))
        .latest("id")
        .after["write_back_prefix"]
        == "external-dns.kubernetes.io/"
    )
    # Its Service has ExternalDNS keys (alpha): it keeps its prefix. One without any would get the GA one.
    from clusters.models import DiscoveredObject

    DiscoveredObject.objects.filter(cluster=cluster).update(annotations={}, annotation_prefix="")
    shown = proposals.preview(zone=story["zone"], hostname=NAME, policy=EIGHTY_TWENTY)
    k3s = next(p for p in shown.patches if p.obj.cluster == "k3s-edge")
    rke2 = next(p for p in shown.patches if p.obj.cluster == "rke2-dc1")
    assert set(k3s.changes) == {
        "external-dns.kubernetes.io/set-identifier",
        "external-dns.kubernetes.io/aws-weight",
    }
    assert f"{ALPHA}aws-weight" in rke2.changes


def test_a_proposal_names_a_zone_that_holds_the_name(story, alice, root, route53, moto_service):
    from dnsportal.errors import PortalError
    from tests.fixtures.zones import import_zone

    other = import_zone(root, route53, moto_service.url, "example.org")
    with pytest.raises(PortalError, match=r"app.example.com is not in zone example.org"):
        proposals.policy_propose(actor=alice, zone_id=other.id, hostname=NAME, policy=EIGHTY_TWENTY)
