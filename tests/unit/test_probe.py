"""The HTTP probe's pure part: which cluster a page names, the intended share per cluster, the verdict's
inputs and the probe's limits. No sockets: the probes themselves are tested in tests/integration."""

from __future__ import annotations

import pytest

from records.probe import (
    MAX_REQUESTS,
    UNMATCHED,
    UNMATCHED_LABEL,
    ProbeCounts,
    cluster_shares,
    latency_problem,
    latency_summary,
    match_marker,
    path_problem,
    port_problem,
    probe_observed,
    probe_outcome,
    requests_problem,
)
from records.verify import distribution_verdict


def _counts(
    counts: dict[str, int], *, unmatched: int = 0, errors: int = 0, dns_errors: int = 0
) -> ProbeCounts:
    n = sum(counts.values()) + unmatched + errors
    samples = [f"127.0.0.3: ConnectionRefusedError: #{i}" for i in range(min(errors, 5))]
    return ProbeCounts(n, counts, unmatched, errors, {}, {200: n - errors}, samples, 1.0, dns_errors)


# --- which cluster served --------------------------------------------------------------------------------


def test_the_page_names_its_cluster() -> None:
    markers = {"rke2-dc": "rke2-dc", "k3s-edge": "k3s-edge"}
    assert match_marker("<h1>Served by cluster k3s-edge</h1>", markers) == "k3s-edge"
    assert match_marker("default backend - 404", markers) is None


def test_the_longest_marker_wins_when_one_cluster_name_holds_another() -> None:
    markers = {"eks": "eks", "eks-us-east-1": "eks-us-east-1"}
    assert match_marker("Served by cluster eks-us-east-1", markers) == "eks-us-east-1"
    assert match_marker("Served by cluster eks", markers) == "eks"


def test_an_empty_marker_matches_nothing() -> None:
    assert match_marker("anything", {"a": ""}) is None


# --- intended share per cluster --------------------------------------------------------------------------


def test_weighted_sets_map_to_the_clusters_carrying_their_set_identifier() -> None:
    shares = {"k3s": 0.2, "rke2": 0.8}
    owners = {"rke2": ["rke2-dc"], "k3s": ["k3s-edge"]}
    assert cluster_shares(shares, owners) == {"rke2-dc": 0.8, "k3s-edge": 0.2}
    assert list(cluster_shares(shares, owners)) == ["rke2-dc", "k3s-edge"]  # largest first: "80/20"


def test_a_value_published_by_two_clusters_splits_its_share_between_them() -> None:
    shares = {"192.0.2.1": 0.5, "192.0.2.2": 0.5}
    owners = {"192.0.2.1": ["a", "b"], "192.0.2.2": ["b"]}
    assert cluster_shares(shares, owners) == pytest.approx({"b": 0.75, "a": 0.25})


def test_a_label_no_cluster_publishes_keeps_its_share_under_its_own_name() -> None:
    out = cluster_shares({"192.0.2.1": 0.5, "192.0.2.9": 0.5}, {"192.0.2.1": ["a"], "192.0.2.9": []})
    assert out == {"a": 0.5, "no cluster: 192.0.2.9": 0.5}
    assert list(out)[-1] == "no cluster: 192.0.2.9"


# --- verdict inputs --------------------------------------------------------------------------------------


def test_observed_keeps_intended_clusters_others_that_served_and_the_unmatched() -> None:
    counts = _counts({"rke2-dc": 70, "k3s-edge": 0, "idle": 0, "stray": 5}, unmatched=3)
    observed = probe_observed(counts, {"rke2-dc": 0.8, "k3s-edge": 0.2})
    assert observed == {"rke2-dc": 70, "k3s-edge": 0, "stray": 5, UNMATCHED: 3}


def test_unmatched_responses_fail_the_check_by_name() -> None:
    counts = _counts({"rke2-dc": 80, "k3s-edge": 20}, unmatched=4)
    intended = {"rke2-dc": 0.8, "k3s-edge": 0.2}
    verdict = distribution_verdict(probe_observed(counts, intended), intended, {UNMATCHED: UNMATCHED_LABEL})
    ok, message = probe_outcome(verdict, counts)
    assert not ok and message.startswith(f"not as configured: {UNMATCHED_LABEL} receives 4 %")


def test_a_clean_probe_is_its_verdict() -> None:
    counts = _counts({"rke2-dc": 800, "k3s-edge": 200})
    intended = {"rke2-dc": 0.8, "k3s-edge": 0.2}
    verdict = distribution_verdict(probe_observed(counts, intended), intended)
    assert probe_outcome(verdict, counts) == (True, verdict.message)
    assert verdict.message.startswith("consistent with 80/20")


def test_failed_requests_fail_the_probe_and_are_named() -> None:
    counts = _counts({"rke2-dc": 800, "k3s-edge": 200}, errors=3, dns_errors=1)
    intended = {"rke2-dc": 0.8, "k3s-edge": 0.2}
    verdict = distribution_verdict(probe_observed(counts, intended), intended)
    ok, message = probe_outcome(verdict, counts)
    assert not ok
    assert message.startswith("consistent with 80/20")
    assert (
        "; 3 of 1003 requests failed (1 without a DNS answer); first: 127.0.0.3: ConnectionRefusedError"
        in message
    )


def test_no_response_at_all_says_so() -> None:
    counts = _counts({"rke2-dc": 0, "k3s-edge": 0}, errors=10)
    intended = {"rke2-dc": 0.8, "k3s-edge": 0.2}
    ok, message = probe_outcome(distribution_verdict(probe_observed(counts, intended), intended), counts)
    assert not ok and message.startswith("no response to compare: 10 of 10 requests failed")


# --- limits ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 200, MAX_REQUESTS])
def test_request_counts_within_the_limit_pass(n: int) -> None:
    assert requests_problem(n) == ""


@pytest.mark.parametrize("n", [0, -1, MAX_REQUESTS + 1])
def test_request_counts_outside_the_limit_say_the_limit(n: int) -> None:
    assert requests_problem(n) == "n must be 1–10000"  # noqa: RUF001


def test_ports_and_paths() -> None:
    assert port_problem(80) == port_problem(65535) == ""
    assert port_problem(0) == port_problem(65536) == "port must be 1–65535"  # noqa: RUF001
    assert path_problem("/") == path_problem("/healthz?probe=1") == ""
    for bad in ("", "healthz", "/a b", "/caf\u00e9", "/a\r\nHost: evil", "/" + "a" * 2000):
        assert path_problem(bad).startswith("path must start with /"), bad


def test_latency_figures_are_nearest_rank_percentiles_in_ms() -> None:
    seconds = [i / 1000 for i in range(1, 101)]  # 1 ms .. 100 ms
    assert latency_summary(seconds) == {"n": 100, "p50": 50.0, "p95": 95.0, "max": 100.0}
    assert latency_summary([0.2]) == {"n": 1, "p50": 200.0, "p95": 200.0, "max": 200.0}
    assert latency_summary([]) == {"n": 0}


def test_a_latency_bound_names_each_cluster_over_it_slowest_first() -> None:
    figures = {
        "rke2-dc1": {"n": 100, "p50": 80.0, "p95": 640.2, "max": 900.0},
        "k3s-edge": {"n": 100, "p50": 90.0, "p95": 812.0, "max": 1200.0},
        "eks-us-east-1": {"n": 100, "p50": 20.0, "p95": 40.0, "max": 60.0},
        UNMATCHED: {"n": 0},
    }
    assert latency_problem(figures, 500) == (
        "k3s-edge p95 812.0 ms; rke2-dc1 p95 640.2 ms, over the bound of 500 ms"
    )
    assert latency_problem(figures, 1000) == ""
