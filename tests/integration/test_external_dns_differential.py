"""The generated differential test: the real ExternalDNS (v0.21.0, run `--once`) against the portal.

Hundreds of generated Services and Ingresses (tests/fixtures/external_dns_objects.py: every Service type,
Ingress rules, TLS and status, every ExternalDNS annotation with valid, edge and malformed values) are loaded
into a sandbox cluster. ExternalDNS publishes them into an empty zone in the Route53 stand-in, the portal into
a second empty zone of the same name with the same owner id and TXT prefix; the zones must be equal record for
record, TXT ownership records included. One run per annotation prefix (ExternalDNS reads one per run; the
portal both at once). Then small runs with ExternalDNS's source flags, given to the portal as the cluster's
source options.

Where the portal deliberately differs (README "Differences from ExternalDNS"), the objects exercising that
case are excluded by name (`EXCLUDED`, each pointing at its README bullet). The seed comes from
DNSPORTAL_ORACLE_SEED (a fixed default otherwise) and is printed with every failure.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from typing import Any

import pytest
import yaml

from clusters import discovery
from clusters.models import Cluster
from clusters.services import Credentials, cluster_register
from dnsportal.queue import enqueue
from records.models import Endpoint
from tests.fixtures import external_dns_objects as gen
from tests.fixtures.external_dns import run_external_dns
from tests.fixtures.kube import kube_client
from tests.fixtures.zones import import_zone

pytestmark = pytest.mark.django_db(transaction=True)

SEED = int(os.environ.get("DNSPORTAL_ORACLE_SEED", "16"))
# About a quarter of the objects exercise a deliberate difference and are left out: 400 generated leave at
# least 300 compared.
COUNT = int(os.environ.get("DNSPORTAL_ORACLE_COUNT", "400"))
OWNER = "dnsportal"
TXT_PREFIX = "_dnsportal-%{record_type}."

# Deliberate differences, excluded by name: tag -> the README bullet that gives the reason.
EXCLUDED = {
    gen.ROUTE53_REFUSES: 'README "Differences from ExternalDNS": values Route53 refuses',
    gen.ROUTING_WITHOUT_SET_ID: 'README "Differences from ExternalDNS": routing without a set identifier',
    gen.SET_ID_WITHOUT_ROUTING: 'README "Differences from ExternalDNS": a set identifier without routing',
    gen.UPPER_CASE_NAME: 'README "Differences from ExternalDNS": upper-case host names',
    gen.SHARED_NAME_DIFFERENT_TTLS: 'README "Differences from ExternalDNS": one name, several objects',
    gen.FOREIGN_PROVIDER_ANNOTATION: 'README "Differences from ExternalDNS": another provider\'s annotation',
}
TXT_HEAD = "_dnsportal-"


@pytest.fixture(autouse=True)
def _no_debounce(settings):
    settings.RECONCILE_DEBOUNCE_MS = 0


def _publish_both(
    *,
    root: Any,
    sandbox: Any,
    route53: Any,
    moto_url: str,
    tmp_path: Any,
    zone: str,
    namespace: str,
    flags: Sequence[str] = (),
    options: dict[str, Any] | None = None,
    cluster_name: str = "diff",
) -> tuple[dict, dict, str]:
    """ExternalDNS's zone and the portal's zone after each published the namespace's objects once."""
    portal_zone = import_zone(root, route53, moto_url, zone, approval_mode="none", private=True)
    oracle_id = route53.create_hosted_zone(Name=zone, CallerReference=f"oracle-{zone}")["HostedZone"]["Id"]
    oracle_id = oracle_id.split("/")[-1]
    kubeconfig = tmp_path / "kubeconfig.yaml"
    kubeconfig.write_text(yaml.safe_dump(sandbox.kubeconfig("admin")))
    log = run_external_dns(
        kubeconfig=kubeconfig,
        endpoint_url=moto_url,
        zone_id=oracle_id,
        owner_id=OWNER,
        txt_prefix=TXT_PREFIX,
        flags=[f"--namespace={namespace}", *flags],
    )
    (tmp_path / "external-dns.log").write_text(log)
    cluster = cluster_register(
        actor=root,
        name=cluster_name,
        creds=Credentials(kubeconfig=yaml.safe_dump(sandbox.kubeconfig("restricted")), context=""),
    )
    Cluster.objects.filter(id=cluster.id).update(source_options={"namespace": namespace, **(options or {})})
    discovery.sync_cluster(cluster.id)
    enqueue("zone_reconcile", zone_id=portal_zone.id, full_read=True)
    from tests.fixtures.jobs import drain_queues

    drain_queues()
    oracle = gen.zone_records(route53, oracle_id)
    portal = gen.zone_records(route53, portal_zone.provider_zone_id)
    return oracle, portal, log


def _report(
    objects: Sequence[gen.Obj], zone: str, oracle: dict, portal: dict, log: str, *, seed: int = SEED
) -> str:
    """'' when the zones agree outside the excluded objects; else every difference, by object."""
    by_name = {o.name: o for o in objects}
    shared = {o.shared.split(".")[0]: o for o in objects if o.shared}
    excluded = {o.name for o in objects if o.tags & EXCLUDED.keys()}
    excluded |= {o.shared.split(".")[0] for o in objects if o.shared and o.tags & EXCLUDED.keys()}
    # Several Ingresses sharing a name: ExternalDNS's ingress source names in the TXT whichever its lister
    # returned first (an order it does not define), the portal the first by name (as ExternalDNS's service
    # source does). README "Differences from ExternalDNS": one name, several objects.
    ingress_groups = {o.shared.split(".")[0] for o in objects if o.shared and o.kind == "Ingress"}

    def normalize(records: dict) -> dict:
        out = {}
        for key, rs in records.items():
            if key[1] == "TXT" and gen.record_owner(key[0], zone) in ingress_groups:
                values = [
                    {"Value": re.sub(r"(resource=ingress/[^/]+/)x[0-9]+", r"\1<group>", v["Value"])}
                    for v in rs["ResourceRecords"]
                ]
                rs = {**rs, "ResourceRecords": values}
            out[key] = rs
        return out

    oracle = normalize(gen.alias_txt_as_typed(oracle, TXT_HEAD))
    portal = normalize(portal)

    def keep(key: tuple[str, str, str]) -> bool:
        return gen.record_owner(key[0], zone) not in excluded

    only_oracle, only_portal, differ = gen.compare_zones(
        {k: v for k, v in oracle.items() if keep(k)}, {k: v for k, v in portal.items() if keep(k)}
    )
    if not (only_oracle or only_portal or differ):
        return ""
    lines = [f"seed {seed} (DNSPORTAL_ORACLE_SEED={SEED} reproduces it), zone {zone}"]
    for title, items in (("only ExternalDNS", only_oracle), ("only the portal", only_portal)):
        for key, rs in items.items():
            owner = gen.record_owner(key[0], zone)
            obj = by_name.get(owner) or shared.get(owner)
            lines.append(f"{title}: {key} {rs}\n    from {obj.describe() if obj else owner}")
    for key, (o, p) in differ.items():
        owner = gen.record_owner(key[0], zone)
        obj = by_name.get(owner) or shared.get(owner)
        source = obj.describe() if obj else owner
        lines.append(f"different: {key}\n    ExternalDNS {o}\n    portal      {p}\n    from {source}")
    errors = [line for line in log.splitlines() if "level=error" in line or "level=warning" in line]
    lines.append(f"ExternalDNS's warnings and errors ({len(errors)}):\n" + "\n".join(errors[-40:]))
    return "\n".join(lines)


@pytest.mark.parametrize("prefix", [gen.ALPHA, gen.GA], ids=["alpha-prefix", "ga-prefix"])
def test_generated_objects_publish_what_external_dns_publishes(
    prefix, root, kube_clusters, kube_namespace, kube_nodes, route53, moto_service, tmp_path
):
    sandbox, _ = kube_clusters
    zone = ("alpha" if prefix == gen.ALPHA else "ga") + ".diff.test"
    objects = gen.generate(SEED, prefix=prefix, zone=zone, count=COUNT)
    compared = [o for o in objects if not o.tags & EXCLUDED.keys()]
    assert len(compared) >= 300, f"seed {SEED}: only {len(compared)} of {len(objects)} objects are compared"
    assert not gen.uncovered(objects, prefix), (
        f"seed {SEED}: no object carries {gen.uncovered(objects, prefix)}"
    )
    for name, internal, external in gen.NODES:
        kube_nodes(sandbox, name, internal_ip=internal, external_ip=external)
    name, internal, external = gen.CORDONED
    kube_nodes(sandbox, name, internal_ip=internal, external_ip=external, unschedulable=True)
    with kube_client(sandbox) as api:
        gen.create_objects(api, kube_namespace, objects, pod_ips=(f"10.244.0.{n}" for n in range(1, 250)))
    flags = [] if prefix == gen.ALPHA else [f"--annotation-prefix={prefix}"]
    oracle, portal, log = _publish_both(
        root=root,
        sandbox=sandbox,
        route53=route53,
        moto_url=moto_service.url,
        tmp_path=tmp_path,
        zone=zone,
        namespace=kube_namespace,
        flags=flags,
    )
    assert len(oracle) > COUNT, f"seed {SEED}: ExternalDNS published only {len(oracle)} record sets"
    problems = _report(objects, zone, oracle, portal, log)
    assert not problems, problems


# Source flags: each run gives ExternalDNS the flags and the portal the same as the cluster's source options.
FLAG_CASES = [
    pytest.param(
        [
            "--label-filter=team=a",
            "--annotation-filter=dnsportal.test/publish notin (no)",
            "--service-type-filter=LoadBalancer",
            "--service-type-filter=ExternalName",
        ],
        {
            "label-filter": "team=a",
            "annotation-filter": "dnsportal.test/publish notin (no)",
            "service-type-filter": ["LoadBalancer", "ExternalName"],
        },
        id="label-annotation-and-service-type-filters",
    ),
    pytest.param(
        ["--fqdn-template={{.Name}}.tmpl.{zone}", "--combine-fqdn-annotation", "--ignore-ingress-tls-spec"],
        {
            "fqdn-template": "{{.Name}}.tmpl.{zone}",
            "combine-fqdn-annotation": True,
            "ignore-ingress-tls-spec": True,
        },
        id="fqdn-template-combined-ignore-tls",
    ),
    pytest.param(
        ["--fqdn-template={{.Name}}.{zone}", "--ignore-hostname-annotation", "--ignore-ingress-rules-spec"],
        {
            "fqdn-template": "{{.Name}}.{zone}",
            "ignore-hostname-annotation": True,
            "ignore-ingress-rules-spec": True,
        },
        id="fqdn-template-ignore-hostname-and-rules",
    ),
    pytest.param(
        ["--publish-internal-services", "--domain-filter={zone}"],
        {"publish-internal-services": True, "domain-filter": ["{zone}"]},
        id="publish-internal-services-domain-filter",
    ),
    pytest.param(
        ["--ingress-class=nginx", "--exclude-domains=x001.{zone}", "--min-ttl=2m", "--publish-host-ip"],
        {
            "ingress-class": ["nginx"],
            "exclude-domains": ["x001.{zone}"],
            "min-ttl": "2m",
            "publish-host-ip": True,
        },
        id="ingress-class-exclude-domains-min-ttl-host-ip",
    ),
    pytest.param(
        ["--no-exclude-unschedulable", "--always-publish-not-ready-addresses"],
        {"exclude-unschedulable": False, "always-publish-not-ready-addresses": True},
        id="cordoned-nodes-not-ready-addresses",
    ),
]


@pytest.mark.parametrize(("flags", "options"), FLAG_CASES)
def test_source_flags_pass_through_both(
    flags, options, request, root, kube_clusters, kube_namespace, kube_nodes, route53, moto_service, tmp_path
):
    sandbox, _ = kube_clusters
    case = request.node.callspec.id
    zone = f"{case[:20]}.flags.test"
    seed = SEED + sum(map(ord, case))
    objects = gen.generate(seed, prefix=gen.ALPHA, zone=zone, count=36, shared_groups=0, filter_labels=True)
    for name, internal, external in gen.NODES:
        kube_nodes(sandbox, name, internal_ip=internal, external_ip=external)
    name, internal, external = gen.CORDONED
    kube_nodes(sandbox, name, internal_ip=internal, external_ip=external, unschedulable=True)
    with kube_client(sandbox) as api:
        gen.create_objects(api, kube_namespace, objects, pod_ips=(f"10.244.1.{n}" for n in range(1, 250)))
    flags = [f.replace("{zone}", zone) for f in flags]
    options = {
        k: ([x.replace("{zone}", zone) for x in v] if isinstance(v, list) else v) for k, v in options.items()
    }
    options = {k: (v.replace("{zone}", zone) if isinstance(v, str) else v) for k, v in options.items()}
    oracle, portal, log = _publish_both(
        root=root,
        sandbox=sandbox,
        route53=route53,
        moto_url=moto_service.url,
        tmp_path=tmp_path,
        zone=zone,
        namespace=kube_namespace,
        flags=flags,
        options=options,
    )
    assert oracle, f"seed {seed}: ExternalDNS published nothing with {flags}"
    problems = _report(objects, zone, oracle, portal, log, seed=seed)
    assert not problems, f"flags {flags}\n{problems}"


# What ExternalDNS (k8s metav1.ParseToLabelSelector) refuses in --annotation-filter, the portal refuses too.
ANNOTATION_FILTERS = [
    "app=web",
    "app in (a, b)",
    "!legacy",
    "app,tier!=x",
    "app=",
    "app in (a b)",
    "app in (a,,b)",
    "app in (a,)",
    "tier in a",
    "=web",
    "app=web tier=x",
    "app>1",
    "app in ()",
    "app=a/b",
]
# ExternalDNS v0.21 accepts an empty set; the portal refuses it when the options are saved (nothing is
# published or deleted by a refused option). README "Differences from ExternalDNS": an empty set in a filter.
ANNOTATION_FILTERS_REFUSED_ONLY_BY_THE_PORTAL = {"app in ()"}


def test_an_annotation_filter_external_dns_refuses_is_refused_by_the_portal(
    kube_clusters, route53, moto_service, tmp_path
):
    from clusters.source_options import SourceOptions, SourceOptionsError

    sandbox, _ = kube_clusters
    zone_id = route53.create_hosted_zone(Name="filters.test", CallerReference="filters")["HostedZone"]["Id"]
    kubeconfig = tmp_path / "kubeconfig.yaml"
    kubeconfig.write_text(yaml.safe_dump(sandbox.kubeconfig("admin")))
    table = []
    for text in ANNOTATION_FILTERS:
        try:
            run_external_dns(
                kubeconfig=kubeconfig,
                endpoint_url=moto_service.url,
                zone_id=zone_id.split("/")[-1],
                owner_id=OWNER,
                flags=[f"--annotation-filter={text}", "--namespace=kube-system"],
                timeout=60,
            )
        except pytest.fail.Exception as exc:
            external_dns = f"refused: {str(exc).strip().splitlines()[-1][:150]}"
        else:
            external_dns = "accepted"
        try:
            SourceOptions.from_mapping({"annotation-filter": text})
        except SourceOptionsError as exc:
            portal = f"refused: {exc}"
        else:
            portal = "accepted"
        table.append((text, external_dns, portal))
    differ = [
        row
        for row in table
        if row[1].split(":")[0] != row[2].split(":")[0]
        and row[0] not in ANNOTATION_FILTERS_REFUSED_ONLY_BY_THE_PORTAL
    ]
    assert not differ, "\n".join(f"{t!r}: ExternalDNS {e}; portal {p}" for t, e, p in table)


def test_an_object_published_with_a_default_shows_its_warning(
    client, carol, root, kube_clusters, kube_namespace
):
    sandbox, _ = kube_clusters
    with kube_client(sandbox) as api:
        weighted = gen.Obj(
            "Service",
            "heavy",
            {f"{gen.ALPHA}hostname": "heavy.example.com", f"{gen.ALPHA}set-identifier": "blue"}
            | {f"{gen.ALPHA}aws-weight": "heavy"},
            {"type": "LoadBalancer", "selector": {"app": "heavy"}, "ports": [{"port": 80}]},
            lb_ips=["203.0.113.77"],
        )
        gen.create_objects(api, kube_namespace, [weighted], pod_ips=())
    cluster = cluster_register(
        actor=root,
        name="warned",
        creds=Credentials(kubeconfig=yaml.safe_dump(sandbox.kubeconfig("restricted")), context=""),
    )
    Cluster.objects.filter(id=cluster.id).update(source_options={"namespace": kube_namespace})
    discovery.sync_cluster(cluster.id)
    endpoint = Endpoint.objects.get(cluster=cluster, dns_name="heavy.example.com")
    assert endpoint.properties.get("aws/weight") == "0"  # published, with ExternalDNS's default
    client.force_login(carol)
    listing = client.get("/endpoints/").content.decode()
    assert "Objects with errors or warnings" in listing
    page = client.get("/endpoints/errors/?cluster=warned").content.decode()
    assert "<h1>Objects with errors or warnings</h1>" in page
    assert f"{kube_namespace}/heavy" in page
    assert "`heavy` is not an integer; published with weight 0, as ExternalDNS does" in page


def test_services_that_share_a_name_are_shown_merged_as_external_dns_publishes_them(
    client, carol, root, kube_clusters, kube_namespace
):
    # ExternalDNS merges Services of one cluster that publish one name into one record set with all their
    # targets, its TXT naming the first Service by name (the generated test's shared<N> names prove the
    # portal publishes the same); the hostname page shows that record set and where it comes from.
    sandbox, _ = kube_clusters
    objects = [
        gen.Obj(
            "Service",
            name,
            {f"{gen.GA}hostname": "together.example.com"},
            {"type": "LoadBalancer", "selector": {"app": name}, "ports": [{"port": 80}]},
            lb_ips=[ip],
        )
        for name, ip in (("web-b", "203.0.113.92"), ("web-a", "203.0.113.91"))
    ]
    with kube_client(sandbox) as api:
        gen.create_objects(api, kube_namespace, objects, pod_ips=())
    cluster = cluster_register(
        actor=root,
        name="merged",
        creds=Credentials(kubeconfig=yaml.safe_dump(sandbox.kubeconfig("restricted")), context=""),
    )
    Cluster.objects.filter(id=cluster.id).update(source_options={"namespace": kube_namespace})
    discovery.sync_cluster(cluster.id)
    client.force_login(carol)
    page = client.get("/endpoints/host/together.example.com/").content.decode()
    published = page[page.index("<h2>Published as</h2>") :]
    published = published[: published.index("</table>")]
    assert published.count("<tr><td>") == 1  # one record set
    assert "203.0.113.91, 203.0.113.92" in published
    assert f"Service merged/{kube_namespace}/web-a" in published
    assert f"Service merged/{kube_namespace}/web-b" in published
    assert f"service/{kube_namespace}/web-a" in published  # the TXT names the first Service by name
