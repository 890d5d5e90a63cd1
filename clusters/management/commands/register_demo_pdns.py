"""Register the demo's PowerDNS (an account `demo-powerdns`) and import its zone `dc.internal`, for `make up`.

`make up` runs a real PowerDNS for the demo (tools/up.py: durable, in DNSPORTAL_DATA_DIR/pdns) and creates
the zone there; this command makes the portal's side of it. Idempotent: started again, the account follows
the server if its API port, DNS port or API key changed (a port taken meanwhile), and the zone row stays the
same row. The zone is imported as internal (`private`: the on-prem clusters' loopback and RFC 1918 addresses
belong there; an admin may say otherwise later, and a restart leaves that as it is), every change set waits
for a second person, and verification asks the account's DNS servers (the server's DNS port). The API key is
read from a file (never from the command line, where `ps` shows it).
"""

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from dnsportal.audit import audit_record
from dnsportal.embedded import DEMO_REMOVED_FILE, demo_removed, pdns_api_key_path
from records.models import ProviderAccount, Zone
from records.providers.base import ProviderError
from records.services import account_create, provider_for, zone_upsert_imported

ACCOUNT_NAME = "demo-powerdns"


class Command(BaseCommand):
    help = "Register the demo PowerDNS at API_URL and import its zone (idempotent)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("api_url", help="the API's URL, e.g. http://127.0.0.1:8081")
        parser.add_argument("--dns", required=True, help="host:port where the server answers DNS")
        parser.add_argument("--zone", default="dc.internal")
        parser.add_argument(
            "--api-key-file",
            type=Path,
            default=None,
            help="file holding the API key (default: the one make up keeps in DNSPORTAL_DATA_DIR)",
        )

    def handle(self, *args, api_url: str, dns: str, zone: str, api_key_file: Path | None, **options) -> None:
        data_dir = Path(settings.DATA_DIR)
        if demo_removed(data_dir):
            self.stdout.write(
                f"Not registering the demo PowerDNS: an admin removed the demo "
                f"({data_dir / DEMO_REMOVED_FILE} says who)."
            )
            return
        key_file = api_key_file or pdns_api_key_path(data_dir)
        try:
            api_key = key_file.read_text().strip()
        except OSError as exc:
            raise CommandError(f"The PowerDNS API key cannot be read from {key_file} ({exc}).") from None
        if not api_key:
            raise CommandError(f"{key_file} holds no PowerDNS API key.")
        account = self._account(api_url, dns, api_key)
        fqdn = zone.rstrip(".") + "."
        try:
            listed = provider_for(account).list_zones(domain_filter=[fqdn])
        except ProviderError as exc:
            raise CommandError(exc.user_message) from None
        info = next((z for z in listed if z.name == fqdn), None)
        if info is None:
            raise CommandError(f"The PowerDNS at {api_url} has no zone {zone}: make up creates it first.")
        # PowerDNS cannot say whether a zone is internal (its import says public): this one is.
        row, created = zone_upsert_imported(
            account_id=account.id, provider_zone_id=info.id, name=info.name, private=True
        )
        if not created:
            # The server's database may have been replaced (its data directory deleted) under the same zone
            # id: read the zone again rather than trust the stored state. One read per make up start.
            Zone.objects.filter(id=row.id).update(state_valid=False)
        # Imported with the defaults: every change set waits for a second person, as for example.com.
        self.stdout.write(
            f"Demo zone {zone} in PowerDNS (DNS {dns}, API {api_url}): "
            + ("imported." if created else "registered already.")
        )

    @transaction.atomic
    def _account(self, api_url: str, dns: str, api_key: str) -> ProviderAccount:
        account = ProviderAccount.objects.select_for_update().filter(name=ACCOUNT_NAME).first()
        if account is None:
            return account_create(
                actor=None,
                name=ACCOUNT_NAME,
                kind=ProviderAccount.Kind.POWERDNS,
                credential_kind=ProviderAccount.CredentialKind.STATIC,
                secret=api_key,
                endpoint_url=api_url,
                dns_servers=dns,
                is_demo=True,
            )
        if account.kind != ProviderAccount.Kind.POWERDNS:
            raise CommandError(
                f"The provider account {ACCOUNT_NAME} is a {account.get_kind_display()} account, not the "
                "demo's PowerDNS: rename or remove it."
            )
        if (account.endpoint_url, account.dns_servers, account.secret, account.is_demo) != (
            api_url,
            dns,
            api_key,
            True,
        ):
            # make up found a recorded port taken and the server moved: the account follows it.
            before = account.audit_view()
            account.endpoint_url, account.dns_servers, account.is_demo = api_url, dns, True
            account.secret = api_key
            account.save(update_fields=["endpoint_url", "dns_servers", "is_demo", "secret_encrypted"])
            audit_record(
                actor=None, action="account.update", obj=account, before=before, after=account.audit_view()
            )
            Zone.objects.filter(account=account).update(is_demo=True)
            self.stdout.write(f"Demo PowerDNS account {ACCOUNT_NAME} now points at {api_url} (DNS {dns}).")
        return account
