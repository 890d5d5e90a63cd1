"""Create a person with one role: `manage.py createuser --username NAME --role approver [--if-missing]`.

The password is generated and printed once; it is never logged. `make up`'s demo creates its second person,
`approver`, this way so four-eyes review can be tried at once.
"""

from __future__ import annotations

import secrets

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from dnsportal.audit import audit_record
from dnsportal.roles import ROLES, ensure_roles


class Command(BaseCommand):
    help = "Create a user with one role (viewer, operator, approver, admin) and a generated password."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--username", required=True)
        parser.add_argument("--role", required=True, choices=ROLES)
        parser.add_argument("--email", default="")
        parser.add_argument(
            "--if-missing", action="store_true", help="Do nothing (and succeed) when the user already exists."
        )

    def handle(self, *args, username: str, role: str, email: str, if_missing: bool, **options) -> None:
        User = get_user_model()
        ensure_roles()
        if User.objects.filter(username=username).exists():
            if if_missing:
                self.stdout.write(f"A user called {username!r} already exists; no new account was created.")
                return
            raise CommandError(f"A user called {username!r} already exists; choose another --username.")
        password = secrets.token_urlsafe(15)
        with transaction.atomic():
            user = User.objects.create_user(username=username, email=email, password=password)
            user.groups.add(Group.objects.get(name=role))
            audit_record(
                actor=None, action="user.create", obj=user, after={"username": username, "role": role}
            )
        self.stdout.write(f"User created ({role}). Username: {username}  Password: {password}")
        self.stdout.write("This password is shown once; change it after your first login.")
