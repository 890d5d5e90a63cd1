from io import StringIO

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command

from dnsportal.models import AuditEntry


def _run(*args: str) -> str:
    out = StringIO()
    call_command("createadmin", *args, stdout=out)
    return out.getvalue()


def test_createadmin_prints_the_generated_password_once_and_it_works(db, client):
    first = _run("--username", "ops", "--if-missing")
    password = first.split("Password: ")[1].split()[0]
    user = User.objects.get(username="ops")
    assert user.is_superuser and user.groups.filter(name="admin").exists()
    assert client.login(username="ops", password=password)
    assert AuditEntry.objects.filter(action="user.create_admin", object_id=str(user.id)).exists()
    again = _run("--username", "ops", "--if-missing")
    assert "Password" not in again and "already exists" in again


def test_createadmin_refuses_an_existing_username(db):
    User.objects.create_user("ops")
    with pytest.raises(CommandError, match="already exists"):
        _run("--username", "ops")


def test_createuser_makes_an_approver_whose_printed_password_works(db, client):
    out = StringIO()
    call_command("createuser", "--username", "approver", "--role", "approver", "--if-missing", stdout=out)
    password = out.getvalue().split("Password: ")[1].split()[0]
    user = User.objects.get(username="approver")
    assert not user.is_superuser
    assert list(user.groups.values_list("name", flat=True)) == ["approver"]
    assert user.has_perm("dnsportal.approve") and not user.has_perm("dnsportal.administer")
    assert client.login(username="approver", password=password)
    assert AuditEntry.objects.filter(action="user.create", object_id=str(user.id)).exists()
    again = StringIO()
    call_command("createuser", "--username", "approver", "--role", "approver", "--if-missing", stdout=again)
    assert "Password" not in again.getvalue() and "already exists" in again.getvalue()
