"""The real ExternalDNS and the portal share one hosted zone (issue 16).

ExternalDNS v0.21.0 (built from its Go module) runs as a controller with owner id `extdns`, syncing every
second from sandbox cluster 1; the portal, owner id `dnsportal`, publishes from cluster 2. Each talks to the
Route53 stand-in through its own counting proxy, so every ChangeResourceRecordSets either of them sends is
checked on the wire: neither creates, changes or deletes a record of the other, through several ExternalDNS
loops, annotation edits on both sides, and names both clusters publish. The TXT settings vary: the same
prefix (`_dnsportal-%{record_type}.`) on both sides, none on both, and each side's default.

Then "Adopt" moves a name from ExternalDNS to the portal while a poller lists it every 100 ms: it never
stops resolving, and ExternalDNS, still publishing it and then no longer publishing it, leaves the
portal-owned record alone. With each side's default TXT naming this needs the adoption to delete
ExternalDNS's own claim (`a-b`), which it reads instead of the portal's TXT (records/plan.py
`_foreign_claims`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
import yaml
from kubernetes import client as k8s

from clusters.models import Cluster
from clusters.services import Credentials, cluster_register
from dnsportal.queue import enqueue
from records import changesets
from records.models import ChangeSet, Zone, ZoneRecord
from records.ownership import ownership_in_value
from records.selectors import unpublished_reasons
from records.services import zone_adopt_request
from tests.fixtures.external_dns import ExternalDNSProcess, external_dns_process
from tests.fixtures.faultproxy import FaultProxy, changes_in
from tests.fixtures.kube import kube_client
from tests.fixtures.zones import import_zone
from tools.kube_sandbox.objects import set_service_load_balancer

pytestmark = pytest.mark.django_db(transaction=True)

ZONE = "shared.test"
ALPHA = "external-dns.alpha.kubernetes.io/"
TEMPLATE = "_dnsportal-%{record_type}."  # the portal's default TXT prefix
EXTDNS, PORTAL = "extdns", "dnsportal"

# cluster 1 (ExternalDNS) publishes a and b; cluster 2 (the portal) publishes b, c and d
EXTDNS_IPS = {"a": "203.0.113.1", "b": "203.0.113.2"}
PORTAL_IPS = {"b": "198.51.100.2", "c": "198.51.100.3", "d": "198.51.100.4"}


def fqdn(short: str) -> str:
    return f"{short}.{ZONE}."


def txt_name(short: str, prefix: str) -> str:
    """The ownership TXT name of `short`'s A record under `--txt-prefix=prefix` (ExternalDNS's mapper)."""
    if prefix:
        return f"{prefix.replace('%{record_type}', 'a')}{short}.{ZONE}."
    return f"a-{short}.{ZONE}."


@dataclass(frozen=True)
class Txt:
    """The TXT settings of each side: the same prefix, or each its own default."""

    extdns: str  # ExternalDNS's --txt-prefix
    portal: str  # the zone's TXT prefix in the portal

    def of_extdns(self, short: str) -> str:
        return txt_name(short, self.extdns)

    def of_portal(self, short: str) -> str:
        return txt_name(short, self.portal)

    @property
    def same(self) -> bool:
        return self.extdns == self.portal

    def extdns_skips(self, change: str) -> str:
        """How ExternalDNS's log says why it drops a planned `change` ("update" or "delete") of a portal
        record: the owner it read, or none (it reads no TXT of another naming; an update carries the owner
        label over from the record, empty)."""
        if self.same:
            return 'because owner id does not match (found: "dnsportal", required: "extdns")'
        if change == "update":
            return 'because owner id does not match (found: "", required: "extdns")'
        return 'because of missing owner label (required: "extdns")'

    def adoption(self, short: str) -> list[tuple[str, str, str, str]]:
        """The changes an adoption of `short` from ExternalDNS sends, in one batch, sorted."""
        if self.same:  # one TXT, rewritten in place to name the portal
            txt = [("UPSERT", self.of_portal(short), "TXT", "")]
        else:  # the portal's TXT, and ExternalDNS's claim under its own naming goes
            txt = [("CREATE", self.of_portal(short), "TXT", ""), ("DELETE", self.of_extdns(short), "TXT", "")]
        return sorted([("UPSERT", fqdn(short), "A", ""), *txt])


SAME_PREFIX = pytest.param(Txt(TEMPLATE, TEMPLATE), id="same-prefix")
# Each side's default: the portal also reads ExternalDNS's default naming, so it sees whose records are whose;
# ExternalDNS reads only its own, so the portal's records look unowned to it.
EACH_DEFAULT = pytest.param(Txt("", TEMPLATE), id="each-default")
TXT_SETTINGS = [SAME_PREFIX, pytest.param(Txt("", ""), id="no-prefix"), EACH_DEFAULT]


@pytest.fixture(autouse=True)
def _no_debounce(settings):
    settings.RECONCILE_DEBOUNCE_MS = 0


def _service(api, ns: str, name: str, ip: str, ttl: str) -> None:
    annotations = {f"{ALPHA}hostname": f"{name}.{ZONE}", f"{ALPHA}ttl": ttl}
    k8s.CoreV1Api(api).create_namespaced_service(
        ns,
        {
            "metadata": {"name": name, "annotations": annotations},
            "spec": {"type": "LoadBalancer", "selector": {"app": name}, "ports": [{"port": 80}]},
        },
    )
    set_service_load_balancer(api, ns, name, ips=[ip])


def _set_ttl(api, ns: str, name: str, ttl: int) -> None:
    k8s.CoreV1Api(api).patch_namespaced_service(
        name, ns, {"metadata": {"annotations": {f"{ALPHA}ttl": str(ttl)}}}
    )


def _zone(route53, zone_id: str) -> dict[tuple[str, str], dict[str, Any]]:
    out = {}
    for page in route53.get_paginator("list_resource_record_sets").paginate(HostedZoneId=zone_id):
        for item in page["ResourceRecordSets"]:
            out[(item["Name"], item["Type"])] = item
    return out


def _values(item: dict[str, Any]) -> list[str]:
    return sorted(r["Value"] for r in item.get("ResourceRecords", []))


def _owner(records: dict[tuple[str, str], dict[str, Any]], txt: str) -> str | None:
    item = records.get((txt, "TXT"))
    return ownership_in_value(item["ResourceRecords"][0]["Value"])[1] if item else None


def _wait(what: str, pred: Callable[[], bool], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}", pytrace=False)
        time.sleep(0.2)


def _sent(proxy: FaultProxy) -> list[tuple[str, str, str, str]]:
    """Every change of every ChangeResourceRecordSets request the client sent (accepted or not)."""
    return [c for body in proxy.bodies("ChangeResourceRecordSets") for c in changes_in(body)]


def _names(changes: list[tuple[str, str, str, str]]) -> set[str]:
    return {name for _action, name, _type, _sid in changes}


@dataclass
class Shared:
    """One zone, two owners: what the tests need to drive and watch both sides."""

    txt: Txt
    zone: Zone
    cluster: Cluster  # cluster 2, registered in the portal
    ns: str
    api1: Any  # cluster 1: ExternalDNS's
    api2: Any  # cluster 2: the portal's
    extdns: ExternalDNSProcess
    extdns_proxy: FaultProxy  # every request ExternalDNS makes goes through this one
    portal_proxy: FaultProxy  # and every request the portal makes through this one
    run_jobs: Callable[[], None]

    def portal_resync(self, *, full_read: bool = False) -> None:
        """What the portal's watch does on a change (relist, reconcile, auto-apply); with `full_read`, also
        what "Reconcile now" does (read the whole zone first)."""
        enqueue("cluster_resync", cluster_id=self.cluster.id)
        self.run_jobs()
        if full_read:
            enqueue("zone_reconcile", zone_id=self.zone.id, full_read=True)
            self.run_jobs()


@pytest.fixture
def shared(
    request, root, kube_clusters, kube_namespace, route53, moto_service, fault_proxy, run_jobs, tmp_path
):
    txt: Txt = request.param
    cluster1, cluster2 = kube_clusters
    api1, api2 = kube_client(cluster1), kube_client(cluster2)
    ns = kube_namespace
    for name, ip in EXTDNS_IPS.items():
        _service(api1, ns, name, ip, "60")
    for name, ip in PORTAL_IPS.items():
        _service(api2, ns, name, ip, "60")

    # The portal's zone, reached through `fault_proxy`; auto-applied unless a plan needs a person. Both
    # proxies refuse a CREATE of a record set that exists, as Route53 does (moto would add a duplicate).
    fault_proxy.route53_create_rule = True
    zone = import_zone(
        root, route53, fault_proxy.url, ZONE, approval_mode="none", owner_id=PORTAL, txt_prefix=txt.portal
    )
    extdns_proxy = FaultProxy(moto_service.url, route53_create_rule=True).start()
    kubeconfig = tmp_path / "kubeconfig-cluster1.yaml"
    kubeconfig.write_text(yaml.safe_dump(cluster1.kubeconfig("admin")))
    try:
        with external_dns_process(
            kubeconfig=kubeconfig,
            endpoint_url=extdns_proxy.url,
            zone_id=zone.provider_zone_id,
            owner_id=EXTDNS,
            txt_prefix=txt.extdns,
            sources=["service"],
            flags=[f"--namespace={ns}", f"--domain-filter={ZONE}"],
        ) as extdns:
            _wait(
                "ExternalDNS to publish a and b",
                lambda: (
                    {fqdn("a"), fqdn("b")}
                    <= {n for n, t in _zone(route53, zone.provider_zone_id) if t == "A"}
                ),
            )
            cluster = cluster_register(
                actor=root,
                name="rke2-dc2",
                creds=Credentials(kubeconfig=yaml.safe_dump(cluster2.kubeconfig("restricted")), context=""),
            )
            Cluster.objects.filter(id=cluster.id).update(source_options={"namespace": ns})
            s = Shared(txt, zone, cluster, ns, api1, api2, extdns, extdns_proxy, fault_proxy, run_jobs)
            s.portal_resync(full_read=True)
            yield s
    finally:
        extdns_proxy.stop()
        api1.close()
        api2.close()


@pytest.mark.parametrize("shared", TXT_SETTINGS, indirect=True)
def test_external_dns_and_the_portal_share_a_zone_and_neither_touches_the_others_records(shared, route53):
    s = shared
    zone_id = s.zone.provider_zone_id
    # Several ExternalDNS loops, each after an annotation edit on each side and a portal reconcile (from its
    # watch; every other one also reads the whole zone, as "Reconcile now" does).
    for round_ in range(1, 4):
        ttl = 60 + 60 * round_
        _set_ttl(s.api1, s.ns, "a", ttl)
        _set_ttl(s.api2, s.ns, "c", ttl)
        if round_ == 2:
            # The contest the other way round: cluster 1 now also publishes d, which the portal owns.
            _service(s.api1, s.ns, "d", "203.0.113.4", "60")
        s.portal_resync(full_read=round_ % 2 == 0)
        _wait(
            f"both TTL edits of round {round_} in the zone",
            lambda ttl=ttl: (
                (r := _zone(route53, zone_id))[(fqdn("a"), "A")]["TTL"] == ttl
                and r[(fqdn("c"), "A")]["TTL"] == ttl
            ),
        )
        s.extdns.wait_for_loop()
    s.portal_resync(full_read=True)

    # A name ExternalDNS publishes after the portal last read the zone, then cluster 2 publishes it too: the
    # portal plans from its stored copy of the zone, where e is missing. Route53 refuses its CREATE (a CREATE
    # is the guard against a copy that is out of date), the change set fails saying so, and nothing of
    # ExternalDNS's changes; "Reconcile now" reads the zone and shows e as ExternalDNS's.
    _service(s.api1, s.ns, "e", "203.0.113.5", "60")
    _wait("ExternalDNS to publish e", lambda: (fqdn("e"), "A") in _zone(route53, zone_id))
    _service(s.api2, s.ns, "e", "198.51.100.5", "60")
    s.portal_resync()
    e_names = {fqdn("e"), s.txt.of_portal("e")}
    if _names(_sent(s.portal_proxy)) & e_names:  # the apply had not read the zone again before sending
        assert {name for name, _t, _sid in s.portal_proxy.refused_creates} >= {fqdn("e")}
        failed = ChangeSet.objects.filter(zone=s.zone).latest("id")
        assert failed.status == ChangeSet.Status.FAILED and "already exists" in failed.error, failed.error
    s.portal_resync(full_read=True)
    e_reasons = unpublished_reasons([f"e.{ZONE}"])[f"e.{ZONE}"]
    assert [r.kind for r in e_reasons] == ["not-owned"] and "owned by 'extdns'" in e_reasons[0].message
    s.extdns.wait_for_loop()

    # On the wire: each sent changes (it did: the TTL edits) and only ever to its own records and their TXTs,
    # counting every batch sent, not only those Route53 accepted (but the CREATE it refused).
    extdns_sent, portal_sent = _sent(s.extdns_proxy), _sent(s.portal_proxy)
    # the batch Route53 refused: e and its TXT, created together
    refused = e_names if (fqdn("e"), "A", "") in s.portal_proxy.refused_creates else set()
    extdns_names = {fqdn(n) for n in "abe"} | {s.txt.of_extdns(n) for n in "abe"}
    portal_names = {fqdn("c"), fqdn("d"), s.txt.of_portal("c"), s.txt.of_portal("d")}
    assert _names(extdns_sent) <= extdns_names, extdns_sent
    assert not s.extdns_proxy.refused_creates
    assert _names([c for c in portal_sent if not (c[0] == "CREATE" and c[1] in refused)]) <= portal_names
    assert _names(s.portal_proxy.accepted_changes()) <= portal_names
    # several ExternalDNS loops, each of which reads the zone
    assert s.extdns_proxy.requests["ListResourceRecordSets"] >= 5
    assert {("UPSERT", fqdn("a"), "A", "")} <= set(s.extdns_proxy.accepted_changes())
    assert {("UPSERT", fqdn("c"), "A", "")} <= set(s.portal_proxy.accepted_changes())
    assert _names(s.portal_proxy.accepted_changes()) == portal_names  # created, then updated

    # The zone: each side's records with its own values and owner; b is ExternalDNS's, as it was first.
    records = _zone(route53, zone_id)
    for short, ip in {**EXTDNS_IPS, "e": "203.0.113.5"}.items():
        assert _values(records[(fqdn(short), "A")]) == [ip]
        assert _owner(records, s.txt.of_extdns(short)) == EXTDNS
    for short in ("c", "d"):
        assert _values(records[(fqdn(short), "A")]) == [PORTAL_IPS[short]]
        assert _owner(records, s.txt.of_portal(short)) == PORTAL
    assert records[(fqdn("a"), "A")]["TTL"] == records[(fqdn("c"), "A")]["TTL"] == 240

    # The portal's view: ExternalDNS's records are another owner's, shown and left alone, and the name both
    # clusters publish says why the portal does not publish it.
    rows = {r.name: (r.ownership, r.owner_id) for r in ZoneRecord.objects.filter(zone=s.zone, type="A")}
    assert rows[fqdn("a")] == rows[fqdn("b")] == (ZoneRecord.Ownership.OTHER, EXTDNS)
    assert rows[fqdn("c")] == rows[fqdn("d")] == (ZoneRecord.Ownership.OWNED, PORTAL)
    reasons = unpublished_reasons([f"b.{ZONE}"])[f"b.{ZONE}"]
    assert [r.kind for r in reasons] == ["not-owned"]
    assert "owned by 'extdns'" in reasons[0].message

    # ExternalDNS's view: it saw the portal's records and skipped them for their owner (its own log; logrus
    # escapes the quotes inside a message).
    log = s.extdns.log().replace('\\"', '"')
    for short in ("c", "d"):
        assert f"Skipping endpoint {short}.{ZONE}" in log
    assert s.txt.extdns_skips("delete") in log
    # d, which it wanted too: it planned to change it to cluster 1's address, and dropped that for the owner
    assert f"Skipping endpoint d.{ZONE} 60 IN A  203.0.113.4 [] {s.txt.extdns_skips('update')}" in log


# An adoption with no prefix on both sides is the same-prefix case: one TXT rewritten in place.
@pytest.mark.parametrize("shared", [SAME_PREFIX, EACH_DEFAULT], indirect=True)
def test_adopting_a_name_from_external_dns_never_stops_it_resolving(shared, route53, root, bob, moto_service):
    s = shared
    zone_id = s.zone.provider_zone_id
    name = fqdn("b")
    old, new = (EXTDNS_IPS["b"],), (PORTAL_IPS["b"],)
    polls: list[tuple[float, tuple[str, ...]]] = []
    errors: list[str] = []
    stop = threading.Event()
    # Straight to the stand-in, not through either proxy: what a resolver asking Route53 would be answered.
    reader = boto3.client(
        "route53",
        endpoint_url=moto_service.url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )

    def poll() -> None:
        while not stop.is_set():
            try:
                found = _zone(reader, zone_id).get((name, "A"))
                polls.append((time.monotonic(), tuple(_values(found)) if found else ()))
            except Exception as exc:  # a failed read is reported, never counted as an answer
                errors.append(repr(exc))
            stop.wait(0.1)

    poller = threading.Thread(target=poll, name="poll-b", daemon=True)
    s.extdns_proxy.reset_counters()
    s.portal_proxy.reset_counters()
    poller.start()
    try:
        _wait("the first polls", lambda: len(polls) >= 3)
        # Request (an admin, on the zone page), then a second person approves; the apply follows.
        record = ZoneRecord.objects.get(zone=s.zone, name=name, type="A")
        assert (record.ownership, record.owner_id) == (ZoneRecord.Ownership.OTHER, EXTDNS)
        zone_adopt_request(actor=root, zone_id=s.zone.id, record_id=record.id)
        s.run_jobs()
        cs = ChangeSet.objects.get(zone=s.zone, cause="adopt")
        assert cs.status == ChangeSet.Status.PENDING and cs.needs_approval
        # The record changes in place (UPSERT, never DELETE + CREATE) with its ownership, in one batch: no
        # moment without the name.
        actions = [a for group in cs.changes.all() for a in group.actions]
        assert sorted(
            (
                a["Action"],
                a["ResourceRecordSet"]["Name"].rstrip(".") + ".",
                a["ResourceRecordSet"]["Type"],
                "",
            )
            for a in actions
        ) == s.txt.adoption("b")
        s.extdns.wait_for_loop()  # ExternalDNS still owns it and keeps syncing meanwhile
        changesets.changeset_approve(changeset_id=cs.id, approver=bob)
        s.run_jobs()
        cs.refresh_from_db()
        assert cs.status == ChangeSet.Status.APPLIED, cs.error
        _wait("a poll of the adopted record", lambda: polls[-1][1] == new)

        # Cluster 1 still publishes b: ExternalDNS finds it not its own (the portal's owner id, or none under
        # its naming) and leaves it.
        s.extdns.wait_for_loop()
        s.extdns.wait_for_loop()
        # Then cluster 1 stops publishing it: not its own, so ExternalDNS deletes nothing.
        k8s.CoreV1Api(s.api1).delete_namespaced_service("b", s.ns)
        _wait(
            "ExternalDNS to see b gone from cluster 1",
            lambda: s.extdns.metric("external_dns_source_endpoints_total") == 1,
        )
        s.extdns.wait_for_loop()
        s.extdns.wait_for_loop()
        after_loops = len(polls)
        _wait("a poll after ExternalDNS's last loop", lambda: len(polls) > after_loops + 1)
    finally:
        stop.set()
        poller.join(10)

    assert not errors, errors[:3]
    answers = [values for _at, values in polls]
    assert all(answers), f"b had no A record at poll {answers.index(())} of {len(answers)}"
    # Exactly one switch, old to new, and never back: ExternalDNS did not take it again.
    assert set(answers) == {old, new}
    first_new = answers.index(new)
    assert all(a == old for a in answers[:first_new]) and all(a == new for a in answers[first_new:])

    # On the wire, since the adoption began: ExternalDNS sent nothing for b or a TXT of it; the portal only
    # the adoption, once.
    b_names = {name, s.txt.of_portal("b"), s.txt.of_extdns("b")}
    assert not _names(_sent(s.extdns_proxy)) & b_names, _sent(s.extdns_proxy)
    assert sorted(_sent(s.portal_proxy)) == s.txt.adoption("b")

    records = _zone(route53, zone_id)
    assert _values(records[(name, "A")]) == list(new) and _owner(records, s.txt.of_portal("b")) == PORTAL
    if not s.txt.same:
        assert (s.txt.of_extdns("b"), "TXT") not in records
    assert _owner(records, s.txt.of_extdns("a")) == EXTDNS  # the name it did not hand over is still its own
    # ExternalDNS's own account of it: once cluster 1 no longer published b, it planned to delete the record
    # and dropped that delete for its owner (its log; logrus escapes the quotes in a message).
    lines = s.extdns.log().replace('\\"', '"').splitlines()
    last_published = max(i for i, line in enumerate(lines) if f"from service: {s.ns}/b:" in line)
    skipped = [
        line
        for line in lines[last_published:]
        if f"Skipping endpoint b.{ZONE} 60 IN A  {PORTAL_IPS['b']} " in line
        and s.txt.extdns_skips("delete") in line
    ]
    assert skipped, "\n".join(lines[last_published:])

    # The portal reads the zone and finds b its own, with nothing left to do.
    s.portal_resync(full_read=True)
    row = ZoneRecord.objects.get(zone=s.zone, name=name, type="A")
    assert (row.ownership, row.owner_id) == (ZoneRecord.Ownership.OWNED, PORTAL)
    assert not ChangeSet.objects.filter(zone=s.zone, status=ChangeSet.Status.PENDING).exists()
    assert f"b.{ZONE}" not in unpublished_reasons([f"b.{ZONE}"])
