"""Re-encrypt every stored secret with the first key of DNSPORTAL_ENCRYPTION_KEYS (a new key goes first)."""

from django.core.management.base import BaseCommand
from django.db import transaction

from dnsportal.audit import audit_record
from dnsportal.crypto import encrypted_fields, reencrypt


class Command(BaseCommand):
    help = "Re-encrypt all secrets with the first key; afterwards the other keys can be removed."

    def handle(self, *args, **options) -> None:
        total = 0
        with transaction.atomic():
            for model, attname in encrypted_fields():
                rows = model.objects.select_for_update().exclude(**{attname: ""}).values_list("pk", attname)
                for pk, token in rows:
                    model.objects.filter(pk=pk).update(**{attname: reencrypt(token)})
                    total += 1
            audit_record(
                actor=None,
                action="secrets.rotate",
                object_type="dnsportal.secrets",
                after={"reencrypted": total},
            )
        self.stdout.write(f"Re-encrypted {total} secret(s) with the first key.")
