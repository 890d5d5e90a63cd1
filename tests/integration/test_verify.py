"""Verification against real PowerDNS Authoritative servers on loopback (tests/fixtures/dns.py).

Two independent servers act as the two nameservers of each test's zone: nothing replicates between them,
so a test puts one out of step by changing only that one. Weighted answers come from PowerDNS LUA records
(`pickwrandom`), round robin from PowerDNS's own shuffling of an rrset's records, geolocation from a LUA
`view()` over the EDNS Client Subnet. Statistical assertions use alpha = 0.001, so a correct server fails a
"consistent" check once in a thousand runs; the "inconsistent" cases are off by p < 1e-30.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from records.probe import probe_http
from records.verify import (
    TIMEOUT,
    ExpectedRRset,
    Nameserver,
    check_resolution,
    distribution_verdict,
    measure_distribution,
    query,
    resolve_nameservers,
    sample_locations,
    sample_size,
    wait_consistent,
)
from tests.fixtures.dns import TestZone, new_zone_name
from tools.pdns import PdnsServer

pytestmark = pytest.mark.integration

EKS, K3S = "203.0.113.10", "198.51.100.10"
WEIGHTED_80_20 = f"A \"pickwrandom({{{{80,'{EKS}'}},{{20,'{K3S}'}}}})\""
WEIGHTED_50_50 = f"A \"pickwrandom({{{{50,'{EKS}'}},{{50,'{K3S}'}}}})\""
ALPHA = 0.001


# --- resolution check ------------------------------------------------------------------------------------


def test_matching_answers_pass(dns_zone: TestZone, pdns_nameservers: list[Nameserver]) -> None:
    dns_zone.replace(
        [
            ("app", "A", 60, ["203.0.113.10", "203.0.113.11"]),
            ("app", "AAAA", 300, ["2001:db8::10"]),
            ("www", "CNAME", 120, [f"app.{dns_zone.name}"]),
            ("owner", "TXT", 300, ['"heritage=external-dns,external-dns/owner=portal"']),
            ("@", "MX", 3600, [f"10 mail.{dns_zone.name}"]),
        ]
    )
    expected = [
        ExpectedRRset(dns_zone.fqdn("app"), "A", {"203.0.113.11", "203.0.113.10"}, 60),
        ExpectedRRset(dns_zone.fqdn("app"), "AAAA", {"2001:DB8:0::10"}, 300),
        ExpectedRRset(dns_zone.fqdn("www").upper(), "CNAME", {f"APP.{dns_zone.name}"}, 120),
        ExpectedRRset(
            dns_zone.fqdn("owner"), "TXT", {"heritage=external-dns,external-dns/owner=portal"}, 300
        ),
        ExpectedRRset(dns_zone.name, "MX", {f"10 mail.{dns_zone.name}"}, 3600),
        ExpectedRRset(dns_zone.fqdn("gone"), "A"),  # deleted records are verified absent
    ]
    report = check_resolution(pdns_nameservers, expected)
    assert report.differences == []
    assert report.ok
    assert report.summary() == "6 record sets on 2 nameservers: all as planned and consistent"
    for ns in pdns_nameservers:
        answers = report.answers[str(ns)]
        assert answers[(dns_zone.fqdn("app"), "A")].values == {"203.0.113.10", "203.0.113.11"}
        assert answers[(dns_zone.fqdn("app"), "A")].ttl == 60
        assert report.timings[str(ns)]["queries"] == 6
    assert json.loads(json.dumps(report.to_dict()))["ok"] is True  # JSON-ready for a Verification row


def test_wrong_value_fails_naming_each_nameserver(
    dns_zone: TestZone, pdns_nameservers: list[Nameserver]
) -> None:
    dns_zone.replace([("app", "A", 60, ["192.0.2.9"])])
    report = check_resolution(
        pdns_nameservers, [ExpectedRRset(dns_zone.fqdn("app"), "A", {"203.0.113.10"}, 60)]
    )
    assert not report.ok
    app = dns_zone.fqdn("app")[:-1]
    assert [(d.nameserver, d.kind, d.message) for d in report.differences] == [
        (str(ns), "values", f"{ns}: {app} A answers 192.0.2.9, expected 203.0.113.10")
        for ns in pdns_nameservers
    ]


def test_wrong_ttl_fails_naming_the_ttls(dns_zone: TestZone, pdns_nameservers: list[Nameserver]) -> None:
    dns_zone.replace([("app", "A", 300, ["203.0.113.10"])])
    report = check_resolution(
        pdns_nameservers, [ExpectedRRset(dns_zone.fqdn("app"), "A", {"203.0.113.10"}, 60)]
    )
    app = dns_zone.fqdn("app")[:-1]
    assert [d.message for d in report.differences] == [
        f"{ns}: {app} A TTL 300, expected 60" for ns in pdns_nameservers
    ]


def test_missing_record_fails_with_nxdomain_or_nodata(
    dns_zone: TestZone, pdns_nameservers: list[Nameserver]
) -> None:
    dns_zone.replace([("app", "AAAA", 60, ["2001:db8::10"])])
    expected = [
        ExpectedRRset(dns_zone.fqdn("api"), "A", {"203.0.113.10"}, 60),
        ExpectedRRset(dns_zone.fqdn("app"), "A", {"203.0.113.10"}, 60),
    ]
    report = check_resolution(pdns_nameservers, expected)
    api, app = dns_zone.fqdn("api")[:-1], dns_zone.fqdn("app")[:-1]
    assert [d.message for d in report.differences] == [
        *(f"{ns}: {api} A NXDOMAIN, expected A 203.0.113.10" for ns in pdns_nameservers),
        *(f"{ns}: {app} A answers no A record (NODATA), expected A 203.0.113.10" for ns in pdns_nameservers),
    ]
    assert {d.kind for d in report.differences} == {"missing"}


def test_one_nameserver_out_of_step(
    dns_zone: TestZone, pdns_nameservers: list[Nameserver], pdns_servers: tuple[PdnsServer, PdnsServer]
) -> None:
    dns_zone.replace([("app", "A", 60, ["203.0.113.10"])], on=[pdns_servers[0]])
    dns_zone.replace([("app", "A", 60, ["192.0.2.9"])], on=[pdns_servers[1]])  # ns2 missed the update
    report = check_resolution(
        pdns_nameservers, [ExpectedRRset(dns_zone.fqdn("app"), "A", {"203.0.113.10"}, 60)]
    )
    ns1, ns2 = pdns_nameservers
    app = dns_zone.fqdn("app")[:-1]
    assert [(d.nameserver, d.kind, d.message) for d in report.differences] == [
        (str(ns2), "values", f"{ns2}: {app} A answers 192.0.2.9, expected 203.0.113.10"),
        (
            str(ns2),
            "inconsistent",
            f"{ns2} differs from {ns1}: {app} A answers 192.0.2.9 (TTL 60), ns1 {ns1.address} answers "
            "203.0.113.10 (TTL 60)",
        ),
    ]


def test_nameserver_without_the_zone_answers_refused(
    pdns_nameservers: list[Nameserver], pdns_servers: tuple[PdnsServer, PdnsServer]
) -> None:
    zone = new_zone_name()
    pdns_servers[0].create_zone(zone, [("app", "A", 60, ["203.0.113.10"])])
    try:
        report = check_resolution(pdns_nameservers, [ExpectedRRset(f"app.{zone}", "A", {"203.0.113.10"}, 60)])
    finally:
        pdns_servers[0].delete_zone(zone)
    ns2 = pdns_nameservers[1]
    assert f"{ns2}: app.{zone[:-1]} A answers REFUSED (the server does not serve this zone)" in (
        report.differences[0].message
    )
    assert [d.nameserver for d in report.differences] == [str(ns2), str(ns2)]


def test_a_silent_nameserver_is_reported_not_waited_for(
    dns_zone: TestZone, pdns_nameservers: list[Nameserver]
) -> None:
    dns_zone.replace([("app", "A", 60, ["203.0.113.10"])])
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as black_hole:  # bound, never answers
        black_hole.bind(("127.0.0.1", 0))
        silent = Nameserver("127.0.0.1", black_hole.getsockname()[1], "ns3")
        started = time.monotonic()
        report = check_resolution(
            [*pdns_nameservers, silent],
            [ExpectedRRset(dns_zone.fqdn("app"), "A", {"203.0.113.10"}, 60)],
            timeout=0.2,
            retries=1,
        )
        assert time.monotonic() - started < 2
    assert [d.message for d in report.differences] == [
        f"{silent}: {dns_zone.fqdn('app')[:-1]} A got no answer: no response within 0.2 s, 2 tries"
    ]
    assert report.answers[str(silent)][(dns_zone.fqdn("app"), "A")].status == TIMEOUT


def test_truncated_udp_answer_is_asked_again_over_tcp(
    dns_zone: TestZone, pdns_nameservers: list[Nameserver]
) -> None:
    # 12 TXT strings of 200 bytes: about 2.5 kB, over the 1232-byte EDNS buffer, so UDP comes back with TC
    texts = [f"{i:02d}" + "x" * 198 for i in range(12)]
    dns_zone.replace([("big", "TXT", 60, [f'"{t}"' for t in texts])])
    answer = query(pdns_nameservers[0], dns_zone.fqdn("big"), "TXT")
    assert answer.tcp
    assert answer.values == set(texts)
    report = check_resolution(pdns_nameservers, [ExpectedRRset(dns_zone.fqdn("big"), "TXT", texts, 60)])
    assert report.ok, report.differences


def test_ipv6_and_host_name_nameservers(pdns_ipv6: PdnsServer) -> None:
    zone = new_zone_name()
    pdns_ipv6.create_zone(zone, [("app", "AAAA", 60, ["2001:db8::10"])])
    try:
        by_address = resolve_nameservers([f"[::1]:{pdns_ipv6.dns_port}", f"127.0.0.1:{pdns_ipv6.dns_port}"])
        by_name = resolve_nameservers([f"localhost:{pdns_ipv6.dns_port}"])  # the system resolver, /etc/hosts
        expected = [ExpectedRRset(f"app.{zone}", "AAAA", {"2001:db8::10"}, 60)]
        report = check_resolution(by_address, expected)
        named = check_resolution(by_name, expected)
    finally:
        pdns_ipv6.delete_zone(zone)
    assert [ns.host for ns in by_address] == ["::1", "127.0.0.1"]
    assert report.ok, report.differences
    assert by_name and all(ns.name == "localhost" for ns in by_name)
    assert named.ok, named.differences


def test_sync_calls_work_inside_a_running_event_loop(
    dns_zone: TestZone, pdns_nameservers: list[Nameserver]
) -> None:
    # Playwright's sync API keeps an event loop running in the main thread; a page test still verifies
    dns_zone.replace([("app", "A", 60, ["203.0.113.10"])])

    async def inside_a_loop() -> bool:
        expected = [ExpectedRRset(dns_zone.fqdn("app"), "A", {"203.0.113.10"}, 60)]
        return check_resolution(pdns_nameservers, expected).ok

    # In a thread of its own: after a browser test, Playwright's loop already runs in this one.
    result: list[bool] = []
    runner = threading.Thread(target=lambda: result.append(asyncio.run(inside_a_loop())))
    runner.start()
    runner.join(30)
    assert result == [True]


def test_wait_consistent_measures_propagation(
    dns_zone: TestZone, pdns_nameservers: list[Nameserver], pdns_servers: tuple[PdnsServer, PdnsServer]
) -> None:
    dns_zone.replace([("app", "A", 60, ["203.0.113.10"])], on=[pdns_servers[0]])
    dns_zone.replace([("app", "A", 60, ["192.0.2.9"])], on=[pdns_servers[1]])
    expected = [ExpectedRRset(dns_zone.fqdn("app"), "A", {"203.0.113.10"}, 60)]
    # the second nameserver catches up 0.4 s from now
    catch_up = threading.Timer(
        0.4, dns_zone.replace, args=([("app", "A", 60, ["203.0.113.10"])],), kwargs={"on": [pdns_servers[1]]}
    )
    reports = []
    catch_up.start()
    try:
        seconds = wait_consistent(
            pdns_nameservers, expected, timeout=10, interval=0.05, on_report=reports.append
        )
    finally:
        catch_up.join()
    assert seconds is not None
    assert 0.4 <= seconds < 2
    assert not reports[0].ok and reports[-1].ok


def test_wait_consistent_gives_up_at_the_deadline(
    dns_zone: TestZone, pdns_nameservers: list[Nameserver]
) -> None:
    dns_zone.replace([("app", "A", 60, ["192.0.2.9"])])
    expected = [ExpectedRRset(dns_zone.fqdn("app"), "A", {"203.0.113.10"}, 60)]
    started = time.monotonic()
    assert wait_consistent(pdns_nameservers, expected, timeout=0.3, interval=0.1) is None
    assert time.monotonic() - started < 2


# --- distribution ----------------------------------------------------------------------------------------


def test_weighted_80_20_is_reported_consistent(
    dns_zone: TestZone, pdns_nameservers: list[Nameserver]
) -> None:
    dns_zone.replace([("shop", "LUA", 60, [WEIGHTED_80_20])])
    intended = {"eks": 80, "k3s": 20}
    n = sample_size(intended)
    counts = measure_distribution(pdns_nameservers, dns_zone.fqdn("shop"), "A", n)
    assert counts.errors == 0
    assert counts.answered == n == 1537
    assert sorted(counts.per_nameserver.values()) == [768, 769]  # spread over both nameservers
    observed = counts.by_set({"eks": [EKS], "k3s": [K3S]})
    assert set(observed) == {"eks", "k3s"}  # every answer is exactly one of the record sets
    verdict = distribution_verdict(observed, intended, {"eks": "eks-eu1", "k3s": "k3s-edge"}, alpha=ALPHA)
    assert verdict.ok, verdict.message
    assert re.fullmatch(r"consistent with 80/20 \(p (= \d\.\d+|< 0\.001)\)", verdict.message)
    assert abs(verdict.rows[0].observed - 0.8) < 0.05
    assert json.loads(json.dumps(counts.to_dict()))["answered"] == n
    # the resolution check of a weighted name accepts either whole set, on every nameserver
    report = check_resolution(
        pdns_nameservers, [ExpectedRRset.one_of(dns_zone.fqdn("shop"), "A", [[EKS], [K3S]], 60)]
    )
    assert report.ok, report.differences


def test_50_50_served_when_80_20_was_intended_is_reported_inconsistent(
    dns_zone: TestZone, pdns_nameservers: list[Nameserver]
) -> None:
    dns_zone.replace([("shop", "LUA", 60, [WEIGHTED_50_50])])
    intended = {"eks": 80, "k3s": 20}
    counts = measure_distribution(pdns_nameservers, dns_zone.fqdn("shop"), "A", sample_size(intended))
    verdict = distribution_verdict(
        counts.by_set({"eks": [EKS], "k3s": [K3S]}), intended, {"eks": "eks-eu1", "k3s": "k3s-edge"}
    )
    assert not verdict.ok
    m = re.fullmatch(
        r"not as configured: (eks-eu1|k3s-edge) receives (\d+) %, expected (80|20) % \(p < 0\.001\); "
        r"observed (\d+)/(\d+), intended 80/20",
        verdict.message,
    )
    assert m, verdict.message
    eks_pct, k3s_pct = int(m[4]), int(m[5])
    assert 44 <= eks_pct <= 56 and 44 <= k3s_pct <= 56
    assert eks_pct + k3s_pct in (99, 100, 101)


def test_round_robin_first_position_share_per_value(
    dns_zone: TestZone, pdns_nameservers: list[Nameserver], pdns_fixed_order: PdnsServer
) -> None:
    values = ["192.0.2.1", "192.0.2.2", "192.0.2.3"]
    dns_zone.replace([("rr", "A", 60, values)])
    # every answer holds the whole rrset: one answer set, n times
    whole = measure_distribution(pdns_nameservers, dns_zone.fqdn("rr"), "A", 300, key="answer")
    assert dict(whole.counts) == {frozenset(values): 300}
    # PowerDNS shuffles the records of each answer: the first position is spread evenly
    first = measure_distribution(pdns_nameservers, dns_zone.fqdn("rr"), "A", 1200, key="first")
    assert set(first.counts) == set(values)
    assert first.answered == 1200
    even = distribution_verdict(dict(first.counts), {v: 1 for v in values}, alpha=ALPHA)
    assert even.ok, even.message
    assert even.message.startswith("consistent with 33/33/33 (p ")
    # a server that never shuffles: one value is always first, and the verdict says so
    zone = new_zone_name()
    pdns_fixed_order.create_zone(zone, [("rr", "A", 60, values)])
    try:
        fixed_ns = Nameserver(pdns_fixed_order.host, pdns_fixed_order.dns_port, "fixed")
        fixed = measure_distribution([fixed_ns], f"rr.{zone}", "A", 300, key="first")
    finally:
        pdns_fixed_order.delete_zone(zone)
    ((always_first, count),) = fixed.counts.items()
    assert always_first in values and count == 300
    skewed = distribution_verdict(dict(fixed.counts), {v: 1 for v in values})
    assert not skewed.ok
    assert skewed.message.startswith(
        f"not as configured: {always_first} receives 100 %, expected 33 % (p < 0.001)"
    )


# --- geolocation (EDNS Client Subnet) --------------------------------------------------------------------


def test_sample_locations_sends_each_subnet(dns_zone: TestZone, pdns_nameservers: list[Nameserver]) -> None:
    dns_zone.replace(
        [
            # PowerDNS's view() picks by `bestwho`: the ECS subnet when the query carries one
            (
                "geo",
                "LUA",
                60,
                [
                    "A \"view({{{'198.51.100.0/24'},{'192.0.2.1'}},"
                    "{{'203.0.113.0/24'},{'192.0.2.2'}},{{'0.0.0.0/0'},{'192.0.2.99'}}})\""
                ],
            ),
            ("whoami", "LUA", 60, ["TXT \"ecswho and ecswho:toString() or 'no ECS'\""]),
        ]
    )
    subnets = {"eu-west": "198.51.100.0/24", "us-east": "203.0.113.7/24", "elsewhere": "192.0.2.0/24"}
    got = sample_locations(pdns_nameservers, dns_zone.fqdn("geo"), "A", subnets)
    assert {loc: set(a.values) for loc, a in got.items()} == {
        "eu-west": {"192.0.2.1"},
        "us-east": {"192.0.2.2"},
        "elsewhere": {"192.0.2.99"},
    }
    assert all(a.consistent and len(a.per_nameserver) == 2 for a in got.values())
    assert got["eu-west"].answer.ecs_scope is not None  # the server echoed the option (RFC 7871)
    # the server saw exactly the subnet each location stands for
    echo = sample_locations(pdns_nameservers, dns_zone.fqdn("whoami"), "TXT", subnets)
    assert {loc: set(a.values) for loc, a in echo.items()} == {
        "eu-west": {"198.51.100.0/24"},
        "us-east": {"203.0.113.0/24"},
        "elsewhere": {"192.0.2.0/24"},
    }
    assert query(pdns_nameservers[0], dns_zone.fqdn("whoami"), "TXT").values == {"no ECS"}


def test_sample_locations_rejects_a_bad_subnet(pdns_nameservers: list[Nameserver]) -> None:
    with pytest.raises(ValueError, match="location 'mars'"):
        sample_locations(pdns_nameservers, "x.test", "A", {"mars": "not-a-subnet"})


# --- HTTP probe ------------------------------------------------------------------------------------------

HOST = "app.example.test"


class _Page(BaseHTTPRequestHandler):
    """An ingress in one cluster: its page for HOST, carrying the cluster's marker; 404 for other hosts."""

    marker = ""

    def do_GET(self) -> None:
        if self.headers.get("Host") == HOST:
            status, body = 200, f"<h1>nginx-distro-check: {self.marker}</h1>"
        else:
            status, body = 404, "default backend - 404"
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass


class _Server(ThreadingHTTPServer):
    # socketserver's listen backlog of 5 drops the SYNs of a 16-way concurrent probe (the client then
    # retries after 1 s); a web server in front of a cluster listens with a long backlog
    request_queue_size = 128


def _serve(
    address: str, port: int, marker: str, context: ssl.SSLContext | None = None
) -> ThreadingHTTPServer:
    handler = type(f"Page{marker}", (_Page,), {"marker": marker})
    server = _Server((address, port), handler)
    if context is not None:
        server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return server


@pytest.fixture
def two_clusters() -> Iterator[int]:
    """Two web servers on one port, at 127.0.0.1 (rke2-dc1) and 127.0.0.2 (k3s-edge), like two clusters'
    ingresses behind the two addresses of one name."""
    for _ in range(20):
        first = _serve("127.0.0.1", 0, "RKE2")
        port = first.server_address[1]
        try:
            second = _serve("127.0.0.2", port, "K3s")
        except OSError:
            first.shutdown()
            first.server_close()
            continue
        break
    else:
        pytest.fail("no port free on both 127.0.0.1 and 127.0.0.2")
    yield port
    for server in (first, second):
        server.shutdown()
        server.server_close()


MARKERS = {"rke2-dc1": "RKE2", "k3s-edge": "K3s"}


def test_http_probe_counts_which_cluster_served(
    dns_zone: TestZone, pdns_nameservers: list[Nameserver], two_clusters: int
) -> None:
    dns_zone.replace([("app", "A", 60, ["127.0.0.1", "127.0.0.2"])])
    addresses = query(pdns_nameservers[0], dns_zone.fqdn("app"), "A").values
    probe = probe_http(addresses, HOST, "/", markers=MARKERS, n=40, port=two_clusters)
    assert probe.errors == 0 and probe.unmatched == 0, probe.error_samples
    assert probe.counts == {"rke2-dc1": 20, "k3s-edge": 20}
    assert probe.per_address == {"127.0.0.1": {"rke2-dc1": 20}, "127.0.0.2": {"k3s-edge": 20}}
    assert probe.statuses == {200: 40}
    assert distribution_verdict(probe.counts, {"rke2-dc1": 1, "k3s-edge": 1}).ok


def test_http_probe_without_the_right_host_header_matches_nothing(two_clusters: int) -> None:
    probe = probe_http(
        ["127.0.0.1", "127.0.0.2"], "other.example.test", markers=MARKERS, n=10, port=two_clusters
    )
    assert probe.counts == {"rke2-dc1": 0, "k3s-edge": 0}
    assert probe.unmatched == 10
    assert probe.statuses == {404: 10}


def test_http_probe_counts_unreachable_addresses_as_errors(two_clusters: int) -> None:
    probe = probe_http(["127.0.0.1", "127.0.0.3"], HOST, markers=MARKERS, n=10, port=two_clusters, timeout=2)
    assert probe.counts == {"rke2-dc1": 5, "k3s-edge": 0}
    assert probe.errors == 5
    assert probe.per_address["127.0.0.3"] == {"error": 5}
    assert "ConnectionRefusedError" in probe.error_samples[0]


def _self_signed(tmp_path: Path, name: str) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


def test_https_probe_sends_the_host_name_as_sni_and_checks_the_certificate(tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path, HOST)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    seen_sni: list[str | None] = []
    context.sni_callback = lambda sock, name, ctx: seen_sni.append(name)  # type: ignore[assignment]
    server = _serve("127.0.0.1", 0, "EKS", context)
    port = server.server_address[1]
    try:
        trusted = probe_http(
            ["127.0.0.1"], HOST, markers={"eks-eu1": "EKS"}, n=4, scheme="https", port=port, verify=str(cert)
        )
        untrusted = probe_http(
            ["127.0.0.1"], HOST, markers={"eks-eu1": "EKS"}, n=2, scheme="https", port=port
        )
    finally:
        server.shutdown()
        server.server_close()
    assert trusted.counts == {"eks-eu1": 4}, trusted.error_samples
    assert set(seen_sni) == {HOST}  # the name, not the address dialled: ingresses route by SNI
    assert untrusted.errors == 2
    assert "CERTIFICATE_VERIFY_FAILED" in untrusted.error_samples[0]
