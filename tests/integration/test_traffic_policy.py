"""The user's story, end to end on real sandbox clusters, moto and Redis: app.example.com on rke2-dc1 and
k3s-edge, round robin → weighted 80/20 → failover (rke2-dc1 primary, a health check the portal creates) →
latency by region → geolocation with a default. Each step is proposed by one person, approved by another,
written back to both clusters as annotations (read back from the API servers), discovered, and published to
Route53 by a change set its approval covers."""

from __future__ import annotations

import pytest
import yaml
from kubernetes import client as k8s

from clusters import discovery
from clusters.models import Cluster
from clusters.services import Credentials, cluster_register
from clusters.watch import endpoints_changed
from records import proposals, services
from records.models import ChangeSet, PolicyObjectWrite, PolicyProposal
from records.traffic import ClusterShare, TrafficPolicy
from tests.fixtures.kube import kube_client, set_service_load_balancer
from tests.fixtures.zones import import_zone

pytestmark = pytest.mark.django_db(transaction=True)

NAME = "app.example.com"
ALPHA = "external-dns.alpha.kubernetes.io/"
IPS = {"rke2-dc1": "198.51.100.10", "k3s-edge": "198.51.100.40"}
HEALTH_CHECK = {
    "protocol": "HTTP",
    "port": 80,
    # Route53's checkers only reach public addresses: the sandbox's are documentation ones, so by name.
    "fully_qualified_domain_name": "rke2.app.example.com",
    "resource_path": "/healthz",
    "request_interval": 30,
    "failure_threshold": 3,
}


@pytest.fixture
def story(root, alice, bob, kube_clusters, kube_namespace, route53, moto_service, settings, run_jobs):
    """Both clusters publish app.example.com round robin, applied to the zone in moto."""
    settings.RECONCILE_DEBOUNCE_MS = 0
    zone = import_zone(root, route53, moto_service.url, "example.com")
    clusters = {}
    for name, sandbox in zip(IPS, kube_clusters, strict=True):
        api = kube_client(sandbox)
        k8s.CoreV1Api(api).create_namespaced_service(
            kube_namespace,
            {
                "metadata": {"name": "nginx", "annotations": {f"{ALPHA}hostname": NAME, f"{ALPHA}ttl": "60"}},
                "spec": {"type": "LoadBalancer", "selector": {"app": "nginx"}, "ports": [{"port": 80}]},
            },
        )
        set_service_load_balancer(api, kube_namespace, "nginx", ips=[IPS[name]])
        kubeconfig = yaml.safe_dump(sandbox.kubeconfig("restricted"))
        cluster = cluster_register(
            actor=root, name=name, creds=Credentials(kubeconfig=kubeconfig, context="")
        )
        Cluster.objects.filter(id=cluster.id).update(source_options={"namespace": kube_namespace})
        clusters[name] = (Cluster.objects.get(id=cluster.id), sandbox)
        discovery.sync_cluster(cluster.id)
    services.zone_reconcile_request(actor=alice, zone_id=zone.id)
    run_jobs()
    cs = ChangeSet.objects.get(zone=zone, status=ChangeSet.Status.PENDING)
    services.changeset_approve(changeset_id=cs.id, approver=bob)
    run_jobs()
    assert rrsets(route53, zone)[(f"{NAME}.", "")] == {"values": sorted(IPS.values())}
    return {"zone": zone, "clusters": clusters, "namespace": kube_namespace, "route53": route53}


def rrsets(route53, zone) -> dict[tuple[str, str], dict]:
    """app.example.com's A record sets in moto, by set identifier: values and routing."""
    out = {}
    for rs in route53.list_resource_record_sets(HostedZoneId=zone.provider_zone_id)["ResourceRecordSets"]:
        if rs["Name"] != f"{NAME}." or rs["Type"] != "A":
            continue
        routing = {
            k: rs[k] for k in ("Weight", "Failover", "Region", "GeoLocation", "HealthCheckId") if k in rs
        }
        out[(rs["Name"], rs.get("SetIdentifier", ""))] = {
            "values": sorted(r["Value"] for r in rs["ResourceRecords"]),
            **routing,
        }
    return out


def annotations(story, cluster: str) -> dict[str, str]:
    """The Service's ExternalDNS annotations, read back from its API server with the admin identity."""
    _, sandbox = story["clusters"][cluster]
    svc = k8s.CoreV1Api(kube_client(sandbox)).read_namespaced_service("nginx", story["namespace"])
    return {k: v for k, v in (svc.metadata.annotations or {}).items() if k.startswith(ALPHA)}


def step(story, alice, bob, run_jobs, policy: TrafficPolicy, health_check=None) -> PolicyProposal:
    """Propose, approve, write back, let discovery see it (as the watch does), reconcile and apply."""
    proposal = proposals.policy_propose(
        actor=alice, zone_id=story["zone"].id, hostname=NAME, policy=policy, health_check=health_check
    )
    proposals.policy_approve(proposal_id=proposal.id, approver=bob)
    run_jobs()  # the write-back
    proposal.refresh_from_db()
    assert proposal.status == PolicyProposal.Status.WRITTEN, proposal.message
    for cluster, _ in story["clusters"].values():
        _, changed = discovery.sync_cluster(cluster.id)
        endpoints_changed(cluster.id, changed)
    run_jobs()  # the reconcile, and the apply its approval covers
    proposal.refresh_from_db()
    assert proposal.changeset is not None, "the change set was not the one the proposal showed"
    assert proposal.changeset.status == ChangeSet.Status.APPLIED, proposal.changeset.error
    assert proposal.changeset.approved_by == bob
    return proposal


def shares(**kw) -> tuple[ClusterShare, ...]:
    return tuple(ClusterShare(cluster=c, **v) for c, v in kw.items())


def test_the_users_story_round_robin_weighted_failover_latency_geolocation(
    story, alice, bob, run_jobs, route53
):
    zone = story["zone"]

    # 80/20
    step(
        story,
        alice,
        bob,
        run_jobs,
        TrafficPolicy(NAME, "weighted", shares(**{"rke2-dc1": {"weight": 80}, "k3s-edge": {"weight": 20}})),
    )
    assert annotations(story, "rke2-dc1") == {
        f"{ALPHA}hostname": NAME,
        f"{ALPHA}ttl": "60",
        f"{ALPHA}set-identifier": "rke2-dc1",
        f"{ALPHA}aws-weight": "80",
    }
    assert annotations(story, "k3s-edge")[f"{ALPHA}aws-weight"] == "20"
    assert rrsets(route53, zone) == {
        (f"{NAME}.", "rke2-dc1"): {"values": [IPS["rke2-dc1"]], "Weight": 80},
        (f"{NAME}.", "k3s-edge"): {"values": [IPS["k3s-edge"]], "Weight": 20},
    }

    # failover: rke2-dc1 primary with a health check the portal creates and owns
    p = step(
        story,
        alice,
        bob,
        run_jobs,
        TrafficPolicy(
            NAME, "failover", shares(**{"rke2-dc1": {"role": "PRIMARY"}, "k3s-edge": {"role": "SECONDARY"}})
        ),
        HEALTH_CHECK,
    )
    assert p.health_check_id
    rke2 = annotations(story, "rke2-dc1")
    assert f"{ALPHA}aws-weight" not in rke2
    assert (
        rke2[f"{ALPHA}aws-failover"] == "PRIMARY" and rke2[f"{ALPHA}aws-health-check-id"] == p.health_check_id
    )
    assert annotations(story, "k3s-edge")[f"{ALPHA}aws-failover"] == "SECONDARY"
    assert rrsets(route53, zone) == {
        (f"{NAME}.", "rke2-dc1"): {
            "values": [IPS["rke2-dc1"]],
            "Failover": "PRIMARY",
            "HealthCheckId": p.health_check_id,
        },
        (f"{NAME}.", "k3s-edge"): {"values": [IPS["k3s-edge"]], "Failover": "SECONDARY"},
    }
    check = route53.get_health_check(HealthCheckId=p.health_check_id)["HealthCheck"]["HealthCheckConfig"]
    assert (check["Type"], check["FullyQualifiedDomainName"], check["ResourcePath"]) == (
        "HTTP",
        "rke2.app.example.com",
        "/healthz",
    )

    # latency by region
    step(
        story,
        alice,
        bob,
        run_jobs,
        TrafficPolicy(
            NAME,
            "latency",
            shares(**{"rke2-dc1": {"region": "eu-central-1"}, "k3s-edge": {"region": "us-east-1"}}),
        ),
    )
    rke2 = annotations(story, "rke2-dc1")
    assert rke2[f"{ALPHA}aws-region"] == "eu-central-1"
    assert not {f"{ALPHA}aws-failover", f"{ALPHA}aws-health-check-id"} & rke2.keys()
    assert rrsets(route53, zone) == {
        (f"{NAME}.", "rke2-dc1"): {"values": [IPS["rke2-dc1"]], "Region": "eu-central-1"},
        (f"{NAME}.", "k3s-edge"): {"values": [IPS["k3s-edge"]], "Region": "us-east-1"},
    }

    # geolocation: Germany to rke2-dc1, everyone else (the default location) to k3s-edge
    step(
        story,
        alice,
        bob,
        run_jobs,
        TrafficPolicy(
            NAME, "geolocation", shares(**{"rke2-dc1": {"country": "DE"}, "k3s-edge": {"country": "*"}})
        ),
    )
    assert annotations(story, "k3s-edge")[f"{ALPHA}aws-geolocation-country-code"] == "*"
    assert f"{ALPHA}aws-region" not in annotations(story, "k3s-edge")
    assert rrsets(route53, zone) == {
        (f"{NAME}.", "rke2-dc1"): {"values": [IPS["rke2-dc1"]], "GeoLocation": {"CountryCode": "DE"}},
        (f"{NAME}.", "k3s-edge"): {"values": [IPS["k3s-edge"]], "GeoLocation": {"CountryCode": "*"}},
    }
    # Every write is in the audit log with the annotations before and after.
    from dnsportal.models import AuditEntry

    writes = AuditEntry.objects.filter(action="cluster.annotations.write")
    assert writes.count() == 8  # four steps, two objects each
    assert all(w.before != w.after for w in writes)
    assert PolicyObjectWrite.objects.filter(status=PolicyObjectWrite.Status.WRITTEN).count() == 8
