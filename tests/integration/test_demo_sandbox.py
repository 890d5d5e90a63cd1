"""The demo's sandbox clusters look like what they are named: the real cluster check tells EKS, RKE2 and K3s
apart from what the seed puts on their Nodes, also on Nodes a seed from before the labels left behind; and the
on-prem ones publish app.dc.internal, which discovery and the plan make one round-robin record set of in the
demo's PowerDNS zone."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest
from django.core.management import call_command
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from clusters.models import Cluster as ClusterRow
from dnsportal.queue import enqueue
from records.models import ChangeSet, Endpoint, Zone
from tests.fixtures.kube import create_node, kube_client, running_sandbox
from tools.kube_sandbox import Sandbox
from tools.kube_sandbox.demo import (
    DEMO_CLUSTER_NAMES,
    DEMO_CLUSTERS,
    INTERNAL_HOSTNAME,
    INTERNAL_SERVICE,
    seed_demo,
)
from tools.up import start_demo_pdns

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(scope="module")
def demo_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    """The three demo clusters, as `python -m tools.kube_sandbox demo` starts them (seeded by the tests)."""
    yield from running_sandbox(tmp_path_factory.mktemp("demo-sandbox"), list(DEMO_CLUSTER_NAMES), 180.0)


def register_demo(server, demo_sandbox: Sandbox, run_jobs) -> None:
    """make up's order: the zones first (dc.internal in the demo's PowerDNS `server`), then the clusters,
    checked and resynced (what the watch process does in make up)."""
    call_command(
        "register_demo_pdns",
        f"http://127.0.0.1:{server.api_port}",
        "--dns",
        f"127.0.0.1:{server.dns_port}",
        stdout=io.StringIO(),
    )
    call_command("register_demo_clusters", str(demo_sandbox.state_file), stdout=io.StringIO())
    run_jobs()
    for row in ClusterRow.objects.all():
        enqueue("cluster_resync", cluster_id=row.id)
    run_jobs()


def test_the_cluster_check_tells_the_demo_clusters_distributions_apart(
    demo_sandbox, settings, tmp_path, run_jobs
):
    settings.DATA_DIR = tmp_path
    assert seed_demo(demo_sandbox.clusters) == list(DEMO_CLUSTER_NAMES)
    call_command("register_demo_clusters", str(demo_sandbox.state_file), stdout=io.StringIO())
    run_jobs()  # the real cluster check, with the demo's restricted identity
    checked = {c.name: (c.health, c.distribution, c.node_count) for c in ClusterRow.objects.all()}
    assert checked == {
        "eks-us-east-1": ("healthy", "EKS", 2),
        "rke2-dc1": ("healthy", "RKE2", 2),
        "k3s-edge": ("healthy", "K3s", 2),
    }
    with kube_client(demo_sandbox["eks-us-east-1"]) as api:
        node = client.CoreV1Api(api).read_node("ip-10-0-1-10.ec2.internal")
    labels = node.metadata.labels
    assert labels["eks.amazonaws.com/nodegroup"] and labels["eks.amazonaws.com/capacityType"] == "ON_DEMAND"
    assert labels["node.kubernetes.io/instance-type"] == "m5.large"
    assert labels["topology.kubernetes.io/region"] == "us-east-1"
    assert "-eks-" in node.status.node_info.kubelet_version


def test_seeding_again_dresses_the_nodes_an_earlier_seed_left_behind(demo_sandbox):
    spec = next(s for s in DEMO_CLUSTERS if s.name == "rke2-dc1")
    name, internal_ip, external_ip = spec.nodes[1]
    seed_demo([demo_sandbox["rke2-dc1"]])
    with kube_client(demo_sandbox["rke2-dc1"]) as api:
        core = client.CoreV1Api(api)
        # The Node exactly as the seed made it before it knew about distributions (a data directory kept
        # across `make up` runs holds it).
        try:
            core.delete_node(name)
        except ApiException as exc:
            if exc.status != 404:
                raise
        create_node(
            api,
            name,
            internal_ip=internal_ip,
            external_ip=external_ip,
            labels={"topology.kubernetes.io/region": "rke2-dc1"},
        )
        services_before = len(core.list_namespaced_service("default").items)

        seed_demo([demo_sandbox["rke2-dc1"]])
        seed_demo([demo_sandbox["rke2-dc1"]])  # and once more: seeding is idempotent

        node = core.read_node(name)
        assert len(core.list_namespaced_service("default").items) == services_before
    labels = node.metadata.labels
    assert labels["node.kubernetes.io/instance-type"] == "rke2"
    assert labels["node-role.kubernetes.io/worker"] == "true"
    assert "topology.kubernetes.io/region" not in labels  # no cloud region in a data centre
    assert node.metadata.annotations["rke2.io/internal-ip"] == internal_ip
    assert node.status.node_info.kubelet_version.endswith("+rke2r1")
    assert [a.address for a in node.status.addresses if a.type == "ExternalIP"] == [external_ip]


def test_the_on_prem_clusters_publish_app_dc_internal_as_one_round_robin_record_set(
    demo_sandbox, settings, tmp_path, run_jobs
):
    settings.DATA_DIR = tmp_path / "data"
    settings.RECONCILE_DEBOUNCE_MS = 0  # discovery's reconcile runs in this run_jobs, not a second later
    seed_demo(demo_sandbox.clusters)
    by_name = {spec.name: spec for spec in DEMO_CLUSTERS}
    assert {n: s.internal_lb_ip for n, s in by_name.items()} == {
        "eks-us-east-1": "",
        "rke2-dc1": "127.0.0.2",
        "k3s-edge": "127.0.0.3",
    }
    for name, spec in by_name.items():
        with kube_client(demo_sandbox[name]) as api:
            core = client.CoreV1Api(api)
            if not spec.internal_lb_ip:  # EKS is in the cloud: no data-centre name
                with pytest.raises(ApiException) as missing:
                    core.read_namespaced_service(INTERNAL_SERVICE, "default")
                assert missing.value.status == 404
                continue
            svc = core.read_namespaced_service(INTERNAL_SERVICE, "default")
        assert svc.spec.type == "LoadBalancer"
        annotations = svc.metadata.annotations
        assert annotations["external-dns.alpha.kubernetes.io/hostname"] == INTERNAL_HOSTNAME
        assert annotations["external-dns.alpha.kubernetes.io/ttl"] == "60"
        assert [i.ip for i in svc.status.load_balancer.ingress] == [spec.internal_lb_ip]

    server, _created = start_demo_pdns(settings.DATA_DIR)
    try:
        register_demo(server, demo_sandbox, run_jobs)
        published = Endpoint.objects.filter(dns_name=INTERNAL_HOSTNAME)
        assert sorted((e.cluster.name, tuple(e.targets)) for e in published) == [
            ("k3s-edge", ("127.0.0.3",)),
            ("rke2-dc1", ("127.0.0.2",)),
        ]
        # Discovery planned the zone on its own: one record set, both clusters' addresses, waiting for review.
        zone = Zone.objects.get(name="dc.internal.", account__name="demo-powerdns")
        cs = ChangeSet.objects.get(zone=zone, status=ChangeSet.Status.PENDING)
        (change,) = [c for c in cs.changes.all() if c.type == "A"]
        assert change.name == f"{INTERNAL_HOSTNAME}." and not change.set_identifier
        assert sorted(r["Value"] for r in change.after["ResourceRecords"]) == ["127.0.0.2", "127.0.0.3"]
    finally:
        server.stop()


def test_k3s_edge_publishes_through_an_httproute(demo_sandbox, settings, tmp_path, run_jobs):
    from clusters import discovery

    settings.DATA_DIR = tmp_path
    seed_demo([demo_sandbox["k3s-edge"]])
    seed_demo([demo_sandbox["k3s-edge"]])  # idempotent, CRDs and statuses included
    call_command("register_demo_clusters", str(demo_sandbox.state_file), stdout=io.StringIO())
    run_jobs()  # the check (with the restricted identity) and the resync the source options asked for
    k3s = ClusterRow.objects.get(name="k3s-edge")
    assert k3s.source_options["source"] == ["service", "ingress", "gateway-httproute"]
    assert discovery.sync_cluster(k3s.id)[0] is not None
    k3s.refresh_from_db()
    assert (k3s.health, k3s.missing_permissions) == ("healthy", [])
    assert k3s.custom_kinds == {
        "Gateway": "gateway.networking.k8s.io/v1",
        "HTTPRoute": "gateway.networking.k8s.io/v1",
    }
    ep = Endpoint.objects.get(cluster=k3s, dns_name="gateway.app.example.com")
    assert (ep.record_type, ep.targets, ep.ttl) == ("A", ["198.51.100.42"], 60)
    assert ClusterRow.objects.get(name="eks-us-east-1").source_options == {}


def test_a_traffic_shift_moves_app_dc_internal_between_the_on_prem_clusters(
    demo_sandbox, settings, tmp_path, run_jobs, alice, bob
):
    """Issue 21 on the demo itself: app.dc.internal in the demo's PowerDNS, served by the demo's rke2-dc1 and
    k3s-edge, moved 50/50 -> 25/75 -> 75/25 with every gate passing (the page servers answer the probe)."""
    from records import changesets, shift, shifts
    from records.models import ShiftPlan
    from tests.integration.test_traffic_shift import run
    from tools.demo_http import start_page_servers

    settings.DATA_DIR = tmp_path / "data"
    settings.RECONCILE_DEBOUNCE_MS = 0
    settings.SHIFT_MIN_HOLD_S = 1
    settings.SHIFT_GATE_DNS_TIMEOUT_S = 10
    seed_demo(demo_sandbox.clusters)

    def set_ttl(ttl: str) -> None:
        for name in ("rke2-dc1", "k3s-edge"):
            with kube_client(demo_sandbox[name]) as api:
                client.CoreV1Api(api).patch_namespaced_service(
                    INTERNAL_SERVICE,
                    "default",
                    {"metadata": {"annotations": {"external-dns.alpha.kubernetes.io/ttl": ttl}}},
                )

    # What an operator does before moving traffic: lower the name's TTL, so that each step can be short.
    set_ttl("1")
    server, _created = start_demo_pdns(settings.DATA_DIR)
    pages = start_page_servers({"127.0.0.2": "rke2-dc1", "127.0.0.3": "k3s-edge"})
    try:
        register_demo(server, demo_sandbox, run_jobs)
        on_prem = {n: ClusterRow.objects.get(name=n) for n in ("rke2-dc1", "k3s-edge")}
        zone = Zone.objects.get(name="dc.internal.", account__name="demo-powerdns")
        for cs in ChangeSet.objects.filter(zone=zone, status=ChangeSet.Status.PENDING):
            changesets.changeset_approve(changeset_id=cs.id, approver=bob)
        run_jobs()
        assert ChangeSet.objects.filter(zone=zone, status=ChangeSet.Status.APPLIED).exists()

        clusters, start, _ = shifts.start_split(INTERNAL_HOSTNAME)
        assert (clusters, start) == (["k3s-edge", "rke2-dc1"], {"k3s-edge": 1, "rke2-dc1": 1})
        plan = shifts.shift_propose(
            actor=alice,
            zone_id=zone.id,
            hostname=INTERNAL_HOSTNAME,
            splits=shift.parse_steps("25/75, 75/25", clusters),
            hold_seconds=1,
            probe={"n": 200, "port": pages[0].port, "path": "/"},
        )
        shifts.shift_approve(plan_id=plan.id, approver=bob)
        plan = run({"clusters": on_prem}, plan.id)
    finally:
        for page in pages:
            page.stop()
        server.stop()
        set_ttl("60")  # the module's other tests see the demo as seeded
    assert plan.status == ShiftPlan.Status.DONE, plan.message
    for step in plan.steps.order_by("index"):
        assert [(g["gate"], g["ok"]) for g in step.gate_results] == [
            ("nameservers", True),
            ("split", True),
            ("probe", True),
        ], step.gate_results
    weights = {
        r.set_identifier: int(r.data["Weight"])
        for r in zone.records.filter(name=f"{INTERNAL_HOSTNAME}.", type="A")
    }
    assert weights == {"k3s-edge": 75, "rke2-dc1": 25}
