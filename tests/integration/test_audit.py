"""The audit log is append-only: not through the model, the queryset, the admin, nor raw SQL."""

from __future__ import annotations

import pytest
from django.db import DatabaseError, connection, transaction

from dnsportal.audit import audit_record
from dnsportal.models import AuditEntry, AuditImmutableError


@pytest.fixture
def entry(alice) -> AuditEntry:
    return audit_record(
        actor=alice,
        action="cluster.register",
        object_type="clusters.cluster",
        object_id=7,
        object_repr="rke2-dc1",
        before=None,
        after={"name": "rke2-dc1"},
    )


def test_audit_record_keeps_who_what_before_after(entry, alice):
    stored = AuditEntry.objects.get(id=entry.id)
    assert (stored.actor, stored.actor_name, stored.action) == (alice, "alice", "cluster.register")
    assert (stored.object_type, stored.object_id, stored.after) == (
        "clusters.cluster",
        "7",
        {"name": "rke2-dc1"},
    )


def test_audit_entry_cannot_be_saved_again(entry):
    entry.action = "something.else"
    with pytest.raises(AuditImmutableError):
        entry.save()
    assert AuditEntry.objects.get(id=entry.id).action == "cluster.register"


def test_audit_entry_cannot_be_deleted(entry):
    with pytest.raises(AuditImmutableError):
        entry.delete()
    with pytest.raises(AuditImmutableError):
        AuditEntry.objects.filter(id=entry.id).delete()
    with pytest.raises(AuditImmutableError):
        AuditEntry.objects.filter(id=entry.id).update(action="x")
    assert AuditEntry.objects.filter(id=entry.id).exists()


def test_the_database_refuses_update_and_delete(entry):
    for sql in (
        "UPDATE dnsportal_auditentry SET action = 'x' WHERE id = %s",
        "DELETE FROM dnsportal_auditentry WHERE id = %s",
    ):
        with (
            pytest.raises(DatabaseError, match="append-only"),
            transaction.atomic(),
            connection.cursor() as cur,
        ):
            cur.execute(sql, [entry.id])
    assert AuditEntry.objects.get(id=entry.id).action == "cluster.register"


def test_the_admin_cannot_change_or_delete_audit_entries(client, root, entry):
    client.force_login(root)
    base = f"/admin/dnsportal/auditentry/{entry.id}"
    # The admin shows the entry read-only ...
    page = client.get(f"{base}/change/")
    assert page.status_code == 200 and b'name="action"' not in page.content
    # ... and refuses a change, a delete, an add and the bulk delete action.
    assert client.post(f"{base}/change/", {"action": "tampered"}).status_code == 403
    assert client.post(f"{base}/delete/", {"post": "yes"}).status_code == 403
    assert client.post("/admin/dnsportal/auditentry/add/", {"action": "forged"}).status_code == 403
    client.post(
        "/admin/dnsportal/auditentry/",
        {"action": "delete_selected", "_selected_action": [entry.id], "post": "yes"},
    )
    stored = AuditEntry.objects.get(id=entry.id)
    assert stored.action == "cluster.register"
    assert AuditEntry.objects.count() == 1


def test_the_app_has_no_way_to_change_the_audit_log(client, root, entry):
    client.force_login(root)
    # The audit pages only read: any other method is refused.
    for method in (client.post, client.put, client.delete):
        assert method(f"/audit/{entry.id}/").status_code == 405
        assert method("/audit/").status_code == 405
    page = client.get("/audit/?q=rke2")
    assert b"rke2-dc1" in page.content and b"cluster.register" in page.content
    assert b"rke2-dc1" not in client.get("/audit/?q=nothing-like-this").content
