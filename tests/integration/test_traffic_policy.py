"""The user's story, end to end on real sandbox clusters, moto and Redis: app.example.com on rke2-dc1 and
k3s-edge, round robin → weighted 80/20 → failover (rke2-dc1 primary, a health check the portal creates) →
latency by region → geolocation with a default. Each step is proposed by one person, approved by another,
written back to both clusters as annotations (read back from the API servers), discovered, and published to
Route53 by a change set its approval covers."""

from __future__ import annotations

import pytest

from dnsportal.models import AuditEntry
from dnsportal.queue import enqueue
from records.models import PolicyObjectWrite
from records.traffic import TrafficPolicy
from tests.fixtures.traffic import ALPHA, HEALTH_CHECK, IPS, NAME, annotations, rrsets, shares, step

pytestmark = pytest.mark.django_db(transaction=True)


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
    # Its live status is read every minute for the hostname page (moto's checkers always report success).
    enqueue("health_checks_status")
    run_jobs()
    p.refresh_from_db()
    assert (p.health_check_status, p.health_check_healthy) == ("healthy in 1 of 1 regions", True)
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

    # The failover primary's health check is unused now: the portal deleted the check it had created.
    with pytest.raises(route53.exceptions.NoSuchHealthCheck):
        route53.get_health_check(HealthCheckId=p.health_check_id)
    assert AuditEntry.objects.filter(action="healthcheck.delete", object_id=p.health_check_id).exists()
    # ...and no longer asks Route53 for the status of a check no record set names.
    p.refresh_from_db()
    last_read = p.health_check_checked_at
    enqueue("health_checks_status")
    run_jobs()
    p.refresh_from_db()
    assert p.health_check_checked_at == last_read

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
    writes = AuditEntry.objects.filter(action="cluster.annotations.write")
    assert writes.count() == 8  # four steps, two objects each
    assert all(w.before != w.after for w in writes)
    assert PolicyObjectWrite.objects.filter(status=PolicyObjectWrite.Status.WRITTEN).count() == 8
