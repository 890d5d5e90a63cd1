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
