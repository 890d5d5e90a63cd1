"""Schemathesis against the live API (a real HTTP server: pytest-django's live_server), every operation of
the schema, generated inputs: no 5xx, and every response as the schema documents it (status, content type,
body). Valid inputs first, then inputs the schema forbids (which must be refused, never crash)."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from dnsportal.audit import audit_record
from dnsportal.models import JobRun
from records.models import ChangeSet, ProviderAccount, Verification, Zone, ZoneRecord
from tests.fixtures.api import token_for
from tests.fixtures.people import make_user
from tests.fixtures.zones import publish

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
EXAMPLES = {schemathesis.GenerationMode.POSITIVE: 20, schemathesis.GenerationMode.NEGATIVE: 10}


def _seed():
    """One of each object, so that generated ids and names sometimes hit real rows."""
    root = make_user("root", "admin", superuser=True)
    account = ProviderAccount.objects.create(name="aws-prod", credential_kind="default")
    zone = Zone.objects.create(account=account, provider_zone_id="Z1", name="example.com.")
    data = {"Name": "app.example.com.", "Type": "A", "TTL": 60, "ResourceRecords": [{"Value": "192.0.2.1"}]}
    ZoneRecord.objects.create(zone=zone, name="app.example.com.", type="A", data=data, ownership="owned")
    ChangeSet.objects.create(zone=zone, fingerprint="f" * 64, summary={"create": 1})
    publish({"app.example.com": "192.0.2.1"}, "rke2-dc1")
    publish({"app.example.com": "192.0.2.2"}, "k3s-edge")
    Verification.objects.create(zone=zone, kind=Verification.Kind.DISTRIBUTION, hostname="app.example.com")
    JobRun.objects.create(name="zone_reconcile", queue="dns", kwargs={"zone_id": zone.id})
    audit_record(actor=root, action="zone.update", obj=zone, before={"policy": "sync"}, after={})
    return root


@pytest.mark.django_db(transaction=True)
def test_every_operation_answers_as_its_schema_says_and_never_with_a_5xx(live_server, settings_api):
    root = _seed()
    auth = {"Authorization": f"Bearer {token_for(root)}"}
    schema = schemathesis.openapi.from_url(f"{live_server.url}/api/v1/schema/", headers=auth)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 52, [op.label for op in operations]
    failures: list[str] = []
    for op in operations:
        for mode, examples in EXAMPLES.items():

            @given(case=op.as_strategy(generation_mode=mode))
            @settings(
                max_examples=examples,
                deadline=None,
                derandomize=True,
                database=None,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            def run(case: schemathesis.Case) -> None:
                case.call_and_validate(base_url=f"{live_server.url}", headers=auth, checks=CHECKS)

            try:
                run()
            except (Exception, BaseExceptionGroup) as exc:  # every operation's failures, reported together
                failures.append(f"{op.label} [{mode.value}]: {exc}")
    assert not failures, "\n\n".join(failures)


@pytest.fixture
def settings_api(settings):
    # The live server runs in this process: no rate limit to trip over, no long poll to sit through.
    settings.API_TOKEN_RATE = 1_000_000
    settings.API_MAX_WAIT_S = 0
    return settings
