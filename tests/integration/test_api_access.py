"""The role matrix of the API, operation by operation, like test_access.py's of the pages: every operation of
the schema for every role (viewer, operator, approver, admin) with a personal token and with the browser's
session; no credentials, a revoked token and an expired token are refused everywhere."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from drf_spectacular.generators import SchemaGenerator

from api.models import ApiToken
from api.tokens import token_revoke
from tests.fixtures.api import ApiClient, token_for
from tests.fixtures.people import make_user

# The role each operation needs, as the pages need it for the same action (dnsportal.roles).
NEEDED = {
    "accounts_list": "viewer",
    "accounts_create": "admin",
    "accounts_retrieve": "viewer",
    "accounts_check_create": "admin",
    "accounts_import_create": "admin",
    "audit_list": "viewer",
    "audit_retrieve": "viewer",
    "changesets_list": "viewer",
    "changesets_retrieve": "viewer",
    "changesets_status_retrieve": "viewer",
    "changesets_approve_create": "approver",
    "changesets_reject_create": "approver",
    "clusters_list": "viewer",
    "clusters_retrieve": "viewer",
    "clusters_create": "admin",
    "clusters_partial_update": "admin",
    "clusters_destroy": "admin",
    "clusters_check_create": "operator",
    "clusters_enabled_create": "admin",
    "clusters_source_options_update": "admin",
    "clusters_test_connection_create": "admin",
    "clusters_test_connection_retrieve": "admin",
    "endpoints_list": "viewer",
    "endpoints_retrieve": "viewer",
    "objects_list": "viewer",
    "hostnames_list": "viewer",
    "hostnames_retrieve": "viewer",
    "jobs_list": "viewer",
    "jobs_retrieve": "viewer",
    "jobs_run_create": "operator",
    "proposals_list": "viewer",
    "proposals_retrieve": "viewer",
    "proposals_create": "operator",
    "proposals_preview_create": "operator",
    "proposals_approve_create": "approver",
    "proposals_reject_create": "approver",
    "proposals_retry_create": "operator",
    "proposals_abandon_create": "operator",
    "records_list": "viewer",
    "records_retrieve": "viewer",
    "tokens_list": "viewer",
    "tokens_revoke_create": "viewer",  # the service then allows one's own token, or an admin any
    "verifications_list": "viewer",
    "verifications_retrieve": "viewer",
    "verifications_measure_create": "operator",
    "verifications_probe_create": "operator",
    "zones_list": "viewer",
    "zones_retrieve": "viewer",
    "zones_partial_update": "admin",
    "zones_adopt_create": "operator",
    "zones_reconcile_create": "operator",
    "zones_verify_create": "operator",
}
# Who holds which role's permissions (an approver is not an operator; an admin is everything).
HOLDS = {
    "viewer": {"viewer"},
    "operator": {"viewer", "operator"},
    "approver": {"viewer", "approver"},
    "admin": {"viewer", "operator", "approver", "admin"},
}


def _operations() -> list[tuple[str, str, str]]:
    schema = SchemaGenerator().get_schema(request=None, public=True)
    return sorted(
        (op["operationId"], method.upper(), path)
        for path, item in schema["paths"].items()
        for method, op in item.items()
    )


OPERATIONS = _operations()


def _url(path: str) -> str:
    # Placeholders that reach the view (no such object): the role is checked before the object is looked up.
    return re.sub(r"\{(id|test_id)\}", "999999", re.sub(r"\{name\}", "nothing", path))


def _call(api: ApiClient, method: str, path: str):
    return api.call(method, _url(path), None if method in ("GET", "DELETE") else {})


def test_the_matrix_names_every_operation_of_the_schema():
    assert {op for op, _, _ in OPERATIONS} == set(NEEDED)
    assert len(OPERATIONS) >= 52


@pytest.fixture
def people(db, settings) -> dict:
    # Nobody logs in with a password here (tokens, force_login): skip the deliberately slow hashing.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    return {role: make_user(f"{role}-person", role) for role in HOLDS}


@pytest.mark.parametrize(("operation", "method", "path"), OPERATIONS, ids=[o[0] for o in OPERATIONS])
def test_each_role_may_call_an_operation_exactly_when_the_page_allows_it(people, operation, method, path):
    needed = NEEDED[operation]
    for role, user in people.items():
        browser = Client()
        browser.force_login(user)
        for how, api in (
            ("token", ApiClient(token_for(user, operation))),
            ("session", ApiClient(client=browser)),
        ):
            response = _call(api, method, path)
            body = response.json() if response.content else {}
            if needed in HOLDS[role]:
                assert response.status_code not in (401, 403), (role, how, response.status_code, body)
            else:
                assert response.status_code == 403, (role, how, response.status_code, body)
                assert body == {"error": f"This needs the {needed} role.", "fields": {}}


@pytest.mark.parametrize(("operation", "method", "path"), OPERATIONS, ids=[o[0] for o in OPERATIONS])
def test_no_credentials_a_revoked_or_an_expired_token_are_refused(people, operation, method, path):
    admin = people["admin"]
    revoked, expired = token_for(admin, "revoked"), token_for(admin, "expired")
    token_revoke(actor=admin, token_id=ApiToken.objects.get(name="revoked").id)
    ApiToken.objects.filter(name="expired").update(expires_at=timezone.now() - timedelta(minutes=1))
    for api in (ApiClient(), ApiClient(revoked), ApiClient(expired), ApiClient("dnsp_forged")):
        response = _call(api, method, path)
        assert response.status_code == 401, (api.headers, response.status_code, response.content)
        assert set(response.json()) == {"error", "fields"}


def test_the_schema_and_the_docs_need_a_login_or_a_token_but_no_role(db):
    nobody = make_user("nobody")
    for page in ("schema/", "docs/", "redoc/"):
        assert ApiClient().get(f"/api/v1/{page}").status_code == 401
        assert ApiClient(token_for(nobody, page)).get(f"/api/v1/{page}").status_code == 200


def test_a_person_without_any_role_is_told_which_role_is_missing(db):
    nobody = make_user("nobody")
    response = ApiClient(token_for(nobody)).get("/api/v1/clusters/")
    assert response.status_code == 403
    assert response.json() == {"error": "This needs the viewer role.", "fields": {}}
