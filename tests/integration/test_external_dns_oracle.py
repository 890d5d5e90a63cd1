"""The real ExternalDNS as the oracle: from the same Kubernetes objects, ExternalDNS (built from its Go
module, run `--once`) and the portal publish into two hosted zones of the same name in the Route53
stand-in, with the same owner id and TXT settings; the two zones must be equal record for record, TXT
ownership records included.

This is the first, hand-written slice of the differential test: the common object shapes, and malformed TTLs
(ExternalDNS publishes them with the TTL not configured, and so must the portal). The generated one
(hundreds of objects, every annotation with valid, edge and malformed values, the source flags) is
tests/integration/test_external_dns_differential.py; both use tests/fixtures/external_dns_objects.py.
"""

from __future__ import annotations

import pytest
import yaml
from kubernetes import client as k8s

from clusters import discovery
from clusters.models import Cluster
from clusters.services import Credentials, cluster_register
from dnsportal.queue import enqueue
from tests.fixtures.external_dns import run_external_dns
from tests.fixtures.external_dns_objects import compare_zones, zone_records
from tests.fixtures.kube import kube_client
from tests.fixtures.zones import import_zone
from tools.kube_sandbox.objects import set_ingress_load_balancer, set_service_load_balancer

pytestmark = pytest.mark.django_db(transaction=True)
ZONE = "oracle.test"
ALPHA = "external-dns.alpha.kubernetes.io/"
OWNER = "dnsportal"
TXT_PREFIX = "_dnsportal-%{record_type}."


@pytest.fixture(autouse=True)
def _no_debounce(settings):
    settings.RECONCILE_DEBOUNCE_MS = 0


def _service(api, ns: str, name: str, annotations: dict[str, str], *, ips=(), hostnames=()) -> None:
    k8s.CoreV1Api(api).create_namespaced_service(
        ns,
        {
            "metadata": {"name": name, "annotations": annotations},
            "spec": {"type": "LoadBalancer", "selector": {"app": name}, "ports": [{"port": 80}]},
        },
    )
    set_service_load_balancer(api, ns, name, ips=list(ips), hostnames=list(hostnames))


def _ingress(api, ns: str, name: str, hosts: list[str], annotations: dict[str, str], *, ips=()) -> None:
    rule = {
        "http": {
            "paths": [
                {
                    "path": "/",
                    "pathType": "Prefix",
                    "backend": {"service": {"name": "x", "port": {"number": 80}}},
                }
            ]
        }
    }
    k8s.NetworkingV1Api(api).create_namespaced_ingress(
        ns,
        {
            "metadata": {"name": name, "annotations": annotations},
            "spec": {"rules": [{"host": h, **rule} for h in hosts]},
        },
    )
    set_ingress_load_balancer(api, ns, name, ips=list(ips))


def test_the_portal_publishes_what_external_dns_publishes_from_the_same_objects(
    root, kube_clusters, kube_namespace, route53, moto_service, run_jobs, tmp_path
):
    sandbox, _ = kube_clusters
    api = kube_client(sandbox)
    ns = kube_namespace
    _service(api, ns, "web", {f"{ALPHA}hostname": f"web.{ZONE}", f"{ALPHA}ttl": "60"}, ips=["203.0.113.10"])
    _service(
        api, ns, "multi", {f"{ALPHA}hostname": f"a.{ZONE},b.{ZONE}"}, ips=["203.0.113.11", "203.0.113.12"]
    )
    weighted = {f"{ALPHA}hostname": f"w.{ZONE}", f"{ALPHA}set-identifier": "blue", f"{ALPHA}aws-weight": "80"}
    _service(api, ns, "weighted", weighted, ips=["203.0.113.13"])
    _service(api, ns, "cname", {f"{ALPHA}hostname": f"c.{ZONE}"}, hostnames=["lb-1.example.net"])
    # Malformed TTLs: ExternalDNS warns and publishes with the TTL unset; the portal must not drop them.
    for name, ttl in (("badttl", "abc"), ("negttl", "-5"), ("minute", "1m")):
        _service(
            api, ns, name, {f"{ALPHA}hostname": f"{name}.{ZONE}", f"{ALPHA}ttl": ttl}, ips=["203.0.113.30"]
        )
    _ingress(
        api, ns, "shop", [f"shop.{ZONE}", f"www.shop.{ZONE}"], {f"{ALPHA}ttl": "x"}, ips=["203.0.113.20"]
    )
    _ingress(
        api, ns, "annotated", [f"rule.{ZONE}"], {f"{ALPHA}hostname": f"extra.{ZONE}"}, ips=["203.0.113.21"]
    )

    # The portal's zone, imported through its account; then ExternalDNS's own zone of the same name.
    portal_zone = import_zone(root, route53, moto_service.url, ZONE, approval_mode="none")
    oracle_id = route53.create_hosted_zone(Name=ZONE, CallerReference="oracle")["HostedZone"]["Id"].split(
        "/"
    )[-1]

    kubeconfig = tmp_path / "kubeconfig.yaml"
    kubeconfig.write_text(yaml.safe_dump(sandbox.kubeconfig("admin")))
    run_external_dns(
        kubeconfig=kubeconfig,
        endpoint_url=moto_service.url,
        zone_id=oracle_id,
        owner_id=OWNER,
        txt_prefix=TXT_PREFIX,
        flags=[f"--namespace={ns}"],
    )

    cluster = cluster_register(
        actor=root,
        name="rke2-dc1",
        creds=Credentials(kubeconfig=yaml.safe_dump(sandbox.kubeconfig("restricted")), context=""),
    )
    Cluster.objects.filter(id=cluster.id).update(source_options={"namespace": ns})
    discovery.sync_cluster(cluster.id)
    enqueue("zone_reconcile", zone_id=portal_zone.id, full_read=True)
    run_jobs()

    oracle = zone_records(route53, oracle_id)
    portal = zone_records(route53, portal_zone.provider_zone_id)
    assert oracle, "ExternalDNS published nothing"
    only_oracle, only_portal, differ = compare_zones(oracle, portal)
    assert not (only_oracle or only_portal or differ), (
        f"only ExternalDNS: {only_oracle}\nonly the portal: {only_portal}\ndifferent: {differ}"
    )
