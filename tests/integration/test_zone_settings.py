"""The zone settings and provider account forms: they save what is valid and name what is not."""

from __future__ import annotations

import pytest
from django.utils import timezone

from dnsportal.models import AuditEntry
from records.models import ProviderAccount, Zone

pytestmark = pytest.mark.django_db


@pytest.fixture
def zone() -> Zone:
    account = ProviderAccount.objects.create(name="aws-prod", credential_kind="default")
    return Zone.objects.create(account=account, provider_zone_id="Z1", name="example.com.")


def _settings(zone: Zone, **changes: object) -> dict[str, object]:
    form = {
        "owner_id": zone.owner_id,
        "policy": zone.policy,
        "txt_prefix": zone.txt_prefix,
        "txt_suffix": zone.txt_suffix,
        "drift_interval": zone.drift_interval,
        "full_read_interval": zone.full_read_interval,
        "approval_mode": zone.approval_mode,
        "webhook_url": zone.webhook_url,
        "nameserver_override": zone.nameserver_override,
        "verify_interval": zone.verify_interval,
        "enabled": "on",
    }
    form.update(changes)
    return form


@pytest.mark.parametrize("verified_ok", [True, False, None])
def test_zone_settings_save_whatever_the_last_verification_said(client, root, zone, verified_ok):
    # The jobs write the verification fields; the settings form neither shows nor validates them.
    verified_at = timezone.now() if verified_ok is not None else None
    Zone.objects.filter(id=zone.id).update(last_verified_at=verified_at, last_verification_ok=verified_ok)
    client.force_login(root)
    response = client.post(f"/zones/{zone.id}/edit/", _settings(zone, verify_interval=900))
    assert response.status_code == 302, response.content.decode()[:2000]
    zone.refresh_from_db()
    assert (zone.verify_interval, zone.last_verification_ok) == (900, verified_ok)
    assert AuditEntry.objects.filter(action="zone.update", object_id=str(zone.id)).exists()


def test_reading_a_snapshot_column_keeps_the_unsaved_edits(zone):
    # The snapshot columns are deferred; loading one on first access must not reload (and undo) the rest.
    loaded = Zone.objects.get(id=zone.id)
    loaded.verify_interval = 900
    assert loaded.applied_desired == []
    assert loaded.verify_interval == 900


def test_a_valid_nameserver_override_is_saved(client, root, zone):
    client.force_login(root)
    override = "127.0.0.1:5300, [2001:db8::1]:53, ns1.example.net, 2001:db8::2"
    response = client.post(f"/zones/{zone.id}/edit/", _settings(zone, nameserver_override=override))
    assert response.status_code == 302, response.content.decode()[:2000]
    zone.refresh_from_db()
    assert zone.nameserver_override == override


def test_a_bad_nameserver_override_names_every_bad_entry(client, root, zone):
    client.force_login(root)
    response = client.post(
        f"/zones/{zone.id}/edit/", _settings(zone, nameserver_override="nohost:99999, ::::, 192.0.2.1:53")
    )
    assert response.status_code == 422
    errors = response.context["form"].errors["nameserver_override"]
    assert len(errors) == 2, errors
    assert "nohost:99999" in errors[0] and "65535" in errors[0]
    assert "::::" in errors[1]
    zone.refresh_from_db()
    assert zone.nameserver_override == ""


def _account(**changes: object) -> dict[str, object]:
    form = {
        "name": "aws-test",
        "credential_kind": "static",
        "access_key_id": "AKIAEXAMPLE",
        "secret": "secret-example",
        "region": "eu-west-1",
        "rate": "5",
        "burst": "5",
    }
    form.update(changes)
    return form


@pytest.mark.parametrize("region", ["mars-1", "eu-west-9", "EU-WEST-1", "us-east-1; drop"])
def test_an_account_in_a_region_aws_does_not_have_is_refused(client, root, region):
    client.force_login(root)
    response = client.post("/accounts/add/", _account(region=region))
    assert response.status_code == 422
    [error] = response.context["form"].errors["region"]
    assert region in error and "not an AWS region" in error
    assert not ProviderAccount.objects.exists()


@pytest.mark.parametrize("region", ["us-east-1", "eu-central-1", "cn-north-1", "us-gov-west-1"])
def test_an_account_in_a_real_region_is_accepted(root, region):
    from records.forms import AccountForm

    form = AccountForm(_account(region=region))
    assert form.is_valid(), form.errors
    assert form.cleaned_data["region"] == region


def test_a_zone_never_verified_passes_full_validation(zone):
    # Not only the settings form: the admin and any service that validates a whole zone accept "never".
    Zone.objects.filter(id=zone.id).update(last_verified_at=None, last_verification_ok=None)
    Zone.objects.get(id=zone.id).full_clean()


def test_route53_says_whether_a_zone_is_private_not_the_settings_form(client, root, zone):
    client.force_login(root)
    response = client.post(f"/zones/{zone.id}/edit/", _settings(zone, private="on"))
    assert response.status_code == 302, response.content.decode()[:2000]
    zone.refresh_from_db()
    assert zone.private is False
    assert "Read from Route53" in client.get(f"/zones/{zone.id}/edit/").content.decode()
