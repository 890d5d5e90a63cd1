"""Create the first admin: `manage.py createadmin --username admin [--email a@b] [--if-missing]`.

The password is generated and printed once (or read from DNSPORTAL_ADMIN_PASSWORD); it is never logged.
"""

from __future__ import annotations

import os
import secrets

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from dnsportal.audit import audit_record
from dnsportal.roles import ensure_roles


class Command(BaseCommand):
    help = "Create an admin user (superuser in the admin group) with a generated password, printed once."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--username", default="admin")
        parser.add_argument("--email", default="")
        parser.add_argument(
            "--if-missing",
            action="store_true",
            help="Do nothing (and succeed) when any admin already exists, as `make up` does on every start.",
        )

    def handle(self, *args, username: str, email: str, if_missing: bool, **options) -> None:
        User = get_user_model()
        ensure_roles()
        admin_group = Group.objects.get(name="admin")
        if if_missing and (User.objects.filter(is_superuser=True).exists() or admin_group.user_set.exists()):
            self.stdout.write("An admin already exists; no new account was created.")
            return
        if User.objects.filter(username=username).exists():
            raise CommandError(f"A user called {username!r} already exists; choose another --username.")
        password = os.environ.get("DNSPORTAL_ADMIN_PASSWORD") or secrets.token_urlsafe(15)
        with transaction.atomic():
            user = User.objects.create_superuser(username=username, email=email, password=password)
            user.groups.add(admin_group)
            audit_record(actor=None, action="user.create_admin", obj=user, after={"username": username})
        self.stdout.write(f"Admin created. Username: {username}  Password: {password}")
        self.stdout.write("This password is shown once; change it after your first login.")
