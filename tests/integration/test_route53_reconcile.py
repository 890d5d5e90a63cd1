"""Clusters to Route53 end to end: real kube-apiservers, real jobs, moto in server mode through real HTTP."""

from __future__ import annotations

import pytest
import yaml
from kubernetes import client as k8s

from clusters import discovery
from clusters.models import Cluster
from clusters.services import Credentials, cluster_register
from clusters.watch import endpoints_changed
from dnsportal.queue import enqueue
from records.models import ChangeSet, Zone, ZoneRecord
from tests.fixtures.kube import kube_client, set_service_load_balancer
from tests.fixtures.zones import import_zone

pytestmark = pytest.mark.django_db(transaction=True)
PREFIX = "external-dns.alpha.kubernetes.io/"


@pytest.fixture(autouse=True)
def _no_debounce(settings):
    settings.RECONCILE_DEBOUNCE_MS = 0


def _rrsets(route53, zone_id: str) -> dict[tuple[str, str, str], dict]:
    out = {}
    for page in route53.get_paginator("list_resource_record_sets").paginate(HostedZoneId=zone_id):
        for rs in page["ResourceRecordSets"]:
            out[(rs["Name"], rs["Type"], rs.get("SetIdentifier", ""))] = rs
    return out


@pytest.fixture
def zone(root, route53, moto_service) -> Zone:
    return import_zone(root, route53, moto_service.url, "example.com", approval_mode="flagged")


def _cluster(name: str, sandbox, root, namespace: str) -> Cluster:
    kubeconfig = yaml.safe_dump(sandbox.kubeconfig("restricted"))
    cluster = cluster_register(actor=root, name=name, creds=Credentials(kubeconfig=kubeconfig, context=""))
    Cluster.objects.filter(id=cluster.id).update(source_options={"namespace": namespace})
    return cluster


def _service(api, ns: str, name: str, annotations: dict, ip: str) -> None:
    k8s.CoreV1Api(api).create_namespaced_service(
        ns,
        {
            "metadata": {"name": name, "annotations": annotations},
            "spec": {"type": "LoadBalancer", "selector": {"app": name}, "ports": [{"port": 80}]},
        },
    )
    set_service_load_balancer(api, ns, name, ips=[ip])


def _sync(*clusters: Cluster) -> None:
    """What the watch process does on a change: store the endpoints and signal the changed names."""
    for cluster in clusters:
        _state, changed = discovery.sync_cluster(cluster.id)
        if changed:
            endpoints_changed(cluster.id, changed)


def test_a_service_becomes_a_and_txt_records_and_its_deletion_removes_them(
    root, kube_clusters, kube_namespace, zone, route53, run_jobs
):
    sandbox_a, _ = kube_clusters
    api = kube_client(sandbox_a)
    cluster = _cluster("rke2-dc1", sandbox_a, root, kube_namespace)
    # Records that are not ours: one nobody owns, one another ExternalDNS instance owns.
    route53.change_resource_record_sets(
        HostedZoneId=zone.provider_zone_id,
        ChangeBatch={
            "Changes": [
                {
                    "Action": "CREATE",
                    "ResourceRecordSet": {
                        "Name": "legacy.example.com",
                        "Type": "A",
                        "TTL": 60,
                        "ResourceRecords": [{"Value": "192.0.2.99"}],
                    },
                },
                {
                    "Action": "CREATE",
                    "ResourceRecordSet": {
                        "Name": "other.example.com",
                        "Type": "A",
                        "TTL": 60,
                        "ResourceRecords": [{"Value": "192.0.2.98"}],
                    },
                },
                {
                    "Action": "CREATE",
                    "ResourceRecordSet": {
                        "Name": "a-other.example.com",
                        "Type": "TXT",
                        "TTL": 300,
                        "ResourceRecords": [
                            {
                                "Value": '"heritage=external-dns,external-dns/owner=team-b,'
                                'external-dns/resource=service/x/y"'
                            }
                        ],
                    },
                },
            ]
        },
    )
    _service(api, kube_namespace, "nginx", {f"{PREFIX}hostname": "app.example.com"}, "203.0.113.10")
    _sync(cluster)
    run_jobs()
    rrsets = _rrsets(route53, zone.provider_zone_id)
    assert rrsets[("app.example.com.", "A", "")]["ResourceRecords"] == [{"Value": "203.0.113.10"}]
    txt = rrsets[("_dnsportal-a.app.example.com.", "TXT", "")]["ResourceRecords"][0]["Value"]
    assert txt == (
        f'"heritage=external-dns,external-dns/owner=dnsportal,'
        f'external-dns/resource=service/{kube_namespace}/nginx"'
    )
    # The stored state an apply leaves (updated row by row) is what a full read of the zone gives.
    after_apply = sorted(
        ZoneRecord.objects.filter(zone=zone).values_list("name", "type", "ownership", "data")
    )
    enqueue("zone_reconcile", zone_id=zone.id, full_read=True)
    run_jobs()
    assert (
        sorted(ZoneRecord.objects.filter(zone=zone).values_list("name", "type", "ownership", "data"))
        == after_apply
    )
    cs = ChangeSet.objects.get(zone=zone)
    assert cs.status == ChangeSet.Status.APPLIED and cs.cause == "discovery"
    assert {c.status for c in cs.changes.all()} == {"applied"}

    k8s.CoreV1Api(api).delete_namespaced_service("nginx", kube_namespace)
    _sync(cluster)
    run_jobs()
    after = _rrsets(route53, zone.provider_zone_id)
    assert ("app.example.com.", "A", "") not in after
    assert ("_dnsportal-a.app.example.com.", "TXT", "") not in after
    # Foreign records survive: never updated, never deleted.
    for key in (
        ("legacy.example.com.", "A", ""),
        ("other.example.com.", "A", ""),
        ("a-other.example.com.", "TXT", ""),
    ):
        assert after[key] == rrsets[key]
    stored = {(r.name, r.type): r.ownership for r in ZoneRecord.objects.filter(zone=zone)}
    assert stored[("legacy.example.com.", "A")] == "unowned"
    assert stored[("other.example.com.", "A")] == "other"


def test_routing_policies_become_route53_record_sets_with_their_fields(
    root, kube_clusters, kube_namespace, zone, route53, run_jobs
):
    sandbox_a, sandbox_b = kube_clusters
    a, b = kube_client(sandbox_a), kube_client(sandbox_b)
    eks = _cluster("eks-us-east-1", sandbox_a, root, kube_namespace)
    rke2 = _cluster("rke2-dc1", sandbox_b, root, kube_namespace)
    health = route53.create_health_check(
        CallerReference="hc-1",
        HealthCheckConfig={
            "IPAddress": "203.0.113.20",
            "Port": 80,
            "Type": "HTTP",
            "ResourcePath": "/healthz",
        },
    )["HealthCheck"]["Id"]

    def ann(host: str, set_id: str, **aws: str) -> dict:
        out = {f"{PREFIX}hostname": host, f"{PREFIX}set-identifier": set_id}
        out.update({f"{PREFIX}aws-{k.replace('_', '-')}": v for k, v in aws.items()})
        return out

    _service(a, kube_namespace, "w", ann("w.example.com", "w-eks", weight="80"), "203.0.113.11")
    _service(b, kube_namespace, "w", ann("w.example.com", "w-rke2", weight="20"), "198.51.100.11")
    _service(
        a,
        kube_namespace,
        "f",
        ann("f.example.com", "f-eks", failover="PRIMARY", health_check_id=health),
        "203.0.113.20",
    )
    _service(b, kube_namespace, "f", ann("f.example.com", "f-rke2", failover="SECONDARY"), "198.51.100.20")
    _service(a, kube_namespace, "l", ann("l.example.com", "l-eks", region="us-east-1"), "203.0.113.30")
    _service(b, kube_namespace, "l", ann("l.example.com", "l-rke2", region="eu-west-1"), "198.51.100.30")
    _service(
        a, kube_namespace, "g", ann("g.example.com", "g-eks", geolocation_continent_code="NA"), "203.0.113.40"
    )
    _service(
        b, kube_namespace, "g", ann("g.example.com", "g-rke2", geolocation_country_code="*"), "198.51.100.40"
    )
    _sync(eks, rke2)
    run_jobs()
    rr = _rrsets(route53, zone.provider_zone_id)
    assert rr[("w.example.com.", "A", "w-eks")]["Weight"] == 80
    assert rr[("w.example.com.", "A", "w-rke2")]["Weight"] == 20
    assert rr[("f.example.com.", "A", "f-eks")]["Failover"] == "PRIMARY"
    assert rr[("f.example.com.", "A", "f-eks")]["HealthCheckId"] == health
    assert rr[("f.example.com.", "A", "f-rke2")]["Failover"] == "SECONDARY"
    assert rr[("l.example.com.", "A", "l-eks")]["Region"] == "us-east-1"
    assert rr[("l.example.com.", "A", "l-rke2")]["Region"] == "eu-west-1"
    assert rr[("g.example.com.", "A", "g-eks")]["GeoLocation"] == {"ContinentCode": "NA"}
    assert rr[("g.example.com.", "A", "g-rke2")]["GeoLocation"] == {"CountryCode": "*"}
    # Each routed record's TXT carries the same set identifier, as ExternalDNS writes it.
    assert rr[("_dnsportal-a.w.example.com.", "TXT", "w-eks")]["Weight"] == 80
    # Converged: planning again changes nothing.
    zone_id = zone.id
    enqueue("zone_reconcile", zone_id=zone_id, full_read=True)
    run_jobs()
    extra = [
        (c.kind, c.name, c.type, c.set_identifier, c.reasons)
        for cs in ChangeSet.objects.filter(zone_id=zone_id).order_by("id")[1:]
        for c in cs.changes.all()
    ]
    assert extra == []
    assert ChangeSet.objects.filter(zone_id=zone_id).count() == 1


def test_same_name_from_two_clusters_is_one_round_robin_record_set(
    root, kube_clusters, kube_namespace, zone, route53, run_jobs
):
    sandbox_a, sandbox_b = kube_clusters
    eks = _cluster("eks-us-east-1", sandbox_a, root, kube_namespace)
    k3s = _cluster("k3s-edge", sandbox_b, root, kube_namespace)
    _service(
        kube_client(sandbox_a), kube_namespace, "web", {f"{PREFIX}hostname": "rr.example.com"}, "203.0.113.50"
    )
    _service(
        kube_client(sandbox_b),
        kube_namespace,
        "web",
        {f"{PREFIX}hostname": "rr.example.com"},
        "198.51.100.50",
    )
    _sync(eks, k3s)
    run_jobs()
    values = {
        v["Value"]
        for v in _rrsets(route53, zone.provider_zone_id)[("rr.example.com.", "A", "")]["ResourceRecords"]
    }
    assert values == {"203.0.113.50", "198.51.100.50"}


def test_a_plan_equal_to_the_pending_one_makes_no_second_change_set(
    root, kube_clusters, kube_namespace, zone, run_jobs
):
    Zone.objects.filter(id=zone.id).update(approval_mode="all")
    sandbox_a, _ = kube_clusters
    cluster = _cluster("rke2-dc1", sandbox_a, root, kube_namespace)
    _service(
        kube_client(sandbox_a), kube_namespace, "web", {f"{PREFIX}hostname": "p.example.com"}, "203.0.113.60"
    )
    _sync(cluster)
    run_jobs()
    enqueue("zone_reconcile", zone_id=zone.id)
    enqueue("zone_reconcile", zone_id=zone.id, full_read=True)
    run_jobs()
    pending = ChangeSet.objects.filter(zone=zone)
    assert pending.count() == 1 and pending.get().status == "pending"


def test_drift_on_an_owned_record_is_restored_with_reason_drift(
    root, kube_clusters, kube_namespace, zone, route53, run_jobs
):
    sandbox_a, _ = kube_clusters
    cluster = _cluster("rke2-dc1", sandbox_a, root, kube_namespace)
    _service(
        kube_client(sandbox_a), kube_namespace, "web", {f"{PREFIX}hostname": "d.example.com"}, "203.0.113.70"
    )
    _sync(cluster)
    run_jobs()
    # Someone changes the owned record behind the portal's back.
    route53.change_resource_record_sets(
        HostedZoneId=zone.provider_zone_id,
        ChangeBatch={
            "Changes": [
                {
                    "Action": "UPSERT",
                    "ResourceRecordSet": {
                        "Name": "d.example.com",
                        "Type": "A",
                        "TTL": 300,
                        "ResourceRecords": [{"Value": "192.0.2.1"}],
                    },
                }
            ]
        },
    )
    Zone.objects.filter(id=zone.id).update(last_drift_check_at=None, approval_mode="all")
    enqueue("zones_drift_check")
    run_jobs()
    drift = ChangeSet.objects.filter(zone=zone).order_by("-id").first()
    assert drift.cause == "drift" and drift.status == "pending"
    change = drift.changes.get()
    assert change.drift and any("drift" in r for r in change.reasons), change.reasons
    assert change.after["ResourceRecords"] == [{"Value": "203.0.113.70"}]


def test_steady_state_reads_the_zone_only_on_drift_checks(
    root, kube_clusters, kube_namespace, route53, run_jobs, fault_proxy
):
    # A zone reached through the counting proxy (no faults): how many calls does each step cost?
    import_zone(root, route53, fault_proxy.url, "econ.example.com", approval_mode="flagged")
    sandbox_a, _ = kube_clusters
    cluster = _cluster("rke2-dc1", sandbox_a, root, kube_namespace)
    _service(
        kube_client(sandbox_a),
        kube_namespace,
        "web",
        {f"{PREFIX}hostname": "s.econ.example.com"},
        "203.0.113.80",
    )
    fault_proxy.reset_counters()
    _sync(cluster)
    run_jobs()
    first = dict(fault_proxy.requests)
    assert first.get("ListResourceRecordSets", 0) == 1  # the first read
    assert first.get("ChangeResourceRecordSets", 0) == 1
    # A change after that: planned from the stored state, no read.
    fault_proxy.reset_counters()
    k8s.CoreV1Api(kube_client(sandbox_a)).patch_namespaced_service(
        "web", kube_namespace, {"metadata": {"annotations": {f"{PREFIX}ttl": "120"}}}
    )
    _sync(cluster)
    run_jobs()
    second = dict(fault_proxy.requests)
    assert second.get("ListResourceRecordSets", 0) == 0
    assert second.get("ChangeResourceRecordSets", 0) == 1
    # Nothing changing: no call at all until the drift interval is up.
    fault_proxy.reset_counters()
    enqueue("zones_drift_check")
    run_jobs()
    assert sum(fault_proxy.requests.values()) == 0


def test_throttling_and_server_errors_still_converge_exactly_once(
    root, kube_clusters, kube_namespace, route53, run_jobs, fault_proxy, settings
):
    settings.ROUTE53_BACKOFF_BASE_MS = 5
    zone = import_zone(root, route53, fault_proxy.url, "faulty.example.com", approval_mode="flagged")
    sandbox_a, _ = kube_clusters
    api = kube_client(sandbox_a)
    cluster = _cluster("rke2-dc1", sandbox_a, root, kube_namespace)
    for i in range(30):
        _service(
            api,
            kube_namespace,
            f"s{i}",
            {f"{PREFIX}hostname": f"s{i}.faulty.example.com"},
            f"203.0.113.{i + 1}",
        )
    # 30 % of calls answered Throttling, some 500s, and some 500s *after* moto applied the change.
    fault_proxy.throttle_share, fault_proxy.error_share, fault_proxy.error_after_forward_share = (
        0.3,
        0.05,
        0.05,
    )
    _sync(cluster)
    for _ in range(5):  # a failed apply is followed by a reconcile from the real state, as in production
        run_jobs()
        if not ChangeSet.objects.filter(zone=zone, status__in=["pending", "approved", "applying"]).exists():
            enqueue("zone_reconcile", zone_id=zone.id, full_read=True)
            run_jobs()
        if (
            ChangeSet.objects.filter(zone=zone).order_by("-id").first().status == "applied"
            and not ChangeSet.objects.filter(zone=zone, status="pending").exists()
        ):
            break
    assert sum(fault_proxy.faults.values()) > 0  # faults really happened
    fault_proxy.throttle_share = fault_proxy.error_share = fault_proxy.error_after_forward_share = 0
    rr = _rrsets(route53, zone.provider_zone_id)
    for i in range(30):
        assert rr[(f"s{i}.faulty.example.com.", "A", "")]["ResourceRecords"] == [
            {"Value": f"203.0.113.{i + 1}"}
        ]
        assert (f"_dnsportal-a.s{i}.faulty.example.com.", "TXT", "") in rr
    # Nothing applied twice: every change moto accepted is distinct (a re-sent CREATE would show up here).
    accepted = fault_proxy.accepted_changes()
    assert len(accepted) == len(set(accepted))
    # ... and nothing lost: a final plan from a fresh read is empty.
    enqueue("zone_reconcile", zone_id=zone.id, full_read=True)
    run_jobs()
    assert not ChangeSet.objects.filter(zone=zone, status="pending").exists()


def _reconcile_with(zone: Zone, stored) -> None:
    """What the debounced reconcile job does once its window is over, given what it read during the window."""
    from records import jobs

    zone = Zone.objects.select_related("account").get(id=zone.id)
    with jobs.zone_lock(zone.id):
        jobs._reconcile(
            zone, cause="discovery", requested_by_id=None, full_read=False, adopt=[], stored=stored
        )


def test_the_state_read_during_the_debounce_window_is_not_used_once_the_zone_moved(zone, route53, run_jobs):
    from records.jobs import _read_stored_state
    from tests.fixtures.zones import publish

    publish({"w1.example.com": "203.0.113.1"})
    enqueue("zone_reconcile", zone_id=zone.id)
    run_jobs()
    # The window opens: the job reads the stored state while it waits ...
    stored = _read_stored_state(zone.id)
    assert stored is not None
    assert ("w1.example.com.", "A") in {(rs.name, rs.type) for rs in stored.current}
    # ... and meanwhile another reconcile's apply lands w2 in the zone.
    publish({"w2.example.com": "203.0.113.2"})
    enqueue("zone_reconcile", zone_id=zone.id)
    run_jobs()
    assert ChangeSet.objects.filter(zone=zone, status="applied").count() == 2
    # The window's own change: w3. Planned from the zone as it now is, not from the read of the window:
    # w2 is not created a second time.
    publish({"w3.example.com": "203.0.113.3"})
    _reconcile_with(zone, stored)
    cs = ChangeSet.objects.filter(zone=zone).order_by("-id").first()
    assert ChangeSet.objects.filter(zone=zone).count() == 3
    assert sorted(c.name for c in cs.changes.all()) == ["w3.example.com."]
    run_jobs()
    assert ChangeSet.objects.get(id=cs.id).status == "applied"
    assert ("w3.example.com.", "A", "") in _rrsets(route53, zone.provider_zone_id)


def test_the_state_read_during_the_debounce_window_is_used_while_the_zone_stands_still(zone, run_jobs):
    from dataclasses import replace

    from records.jobs import _read_stored_state
    from tests.fixtures.zones import publish

    publish({"s1.example.com": "203.0.113.1"})
    enqueue("zone_reconcile", zone_id=zone.id)
    run_jobs()
    stored = _read_stored_state(zone.id)
    # Nothing moved the zone since: the plan starts from the read of the window. (Marked so the test can tell
    # which state the plan used: s1 left out of it, so the plan creates s1 again.)
    marked = replace(stored, current=[rs for rs in stored.current if "s1." not in rs.name])
    _reconcile_with(zone, marked)
    first, cs = ChangeSet.objects.filter(zone=zone).order_by("id")
    assert first.status == "applied" and cs.status == "approved"
    assert [(c.kind, c.name) for c in cs.changes.all()] == [("create", "s1.example.com.")]
    # An apply or a re-read moves the state, and the read of the window is dropped.
    Zone.objects.filter(id=zone.id).update(state_valid=False)
    assert _read_stored_state(zone.id) is None


def test_the_snapshot_columns_are_read_only_when_used(zone, run_jobs):
    from tests.fixtures.zones import publish

    publish({"d1.example.com": "203.0.113.1"})
    enqueue("zone_reconcile", zone_id=zone.id)
    run_jobs()
    cs = ChangeSet.objects.get(zone=zone)
    # A change set's list, its zone, an audit line: none of them carries the megabyte snapshots along ...
    assert cs.get_deferred_fields() == {"desired"}
    assert "applied_desired" in cs.zone.get_deferred_fields()
    assert "applied_desired" in Zone.objects.get(id=zone.id).get_deferred_fields()
    # ... and reading one still gives it.
    assert [e["dnsName"] for e in cs.desired] == ["d1.example.com"]
    assert [e["dnsName"] for e in Zone.objects.get(id=zone.id).applied_desired] == ["d1.example.com"]
