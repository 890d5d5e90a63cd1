"""Create example.com in a local Route53 stand-in (moto) and import it, for `DNSPORTAL_DEMO=1 make up`.

With `--powerdns API_URL --powerdns-dns HOST:PORT` it registers the demo's PowerDNS and its zone as well
(`register_demo_pdns`), in the same process: make up registers both demo zones with one Django start.
"""

from pathlib import Path

import boto3
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser

from dnsportal.embedded import DEMO_REMOVED_FILE, demo_removed
from dnsportal.queue import enqueue
from records.models import ProviderAccount, Zone
from records.services import account_create

# moto accepts any key; this one only ever reaches the local stand-in.
DEMO_SECRET = "demo-secret"  # noqa: S105


class Command(BaseCommand):
    help = "Create the demo zone in moto at ENDPOINT and import it (idempotent)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("endpoint")
        parser.add_argument("--zone", default="example.com")
        parser.add_argument("--powerdns", metavar="API_URL", help="also register_demo_pdns API_URL")
        parser.add_argument("--powerdns-dns", metavar="HOST:PORT", help="its --dns")

    def handle(
        self, *args, endpoint: str, zone: str, powerdns: str | None, powerdns_dns: str | None, **options
    ) -> None:
        if bool(powerdns) != bool(powerdns_dns):
            raise CommandError("--powerdns and --powerdns-dns go together.")
        if demo_removed(Path(settings.DATA_DIR)):
            marker = Path(settings.DATA_DIR) / DEMO_REMOVED_FILE
            self.stdout.write(
                f"Not registering the demo zone: an admin removed the demo ({marker} says who)."
            )
            return
        r53 = boto3.client(
            "route53",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="demo",
            aws_secret_access_key=DEMO_SECRET,
        )
        ids = {z["Name"]: z["Id"].rsplit("/", 1)[-1] for z in r53.list_hosted_zones()["HostedZones"]}
        if f"{zone}." not in ids:
            created = r53.create_hosted_zone(Name=zone, CallerReference=f"dnsportal-demo-{zone}")
            ids[f"{zone}."] = created["HostedZone"]["Id"].rsplit("/", 1)[-1]
        account = ProviderAccount.objects.filter(name="demo-route53").first()
        if account is None:
            account = account_create(
                actor=None,
                name="demo-route53",
                credential_kind="static",
                access_key_id="demo",
                secret=DEMO_SECRET,
                endpoint_url=endpoint,
                is_demo=True,
            )
        else:
            # An account from before demo objects were marked gets the mark, and so do its imported zones.
            ProviderAccount.objects.filter(id=account.id).update(endpoint_url=endpoint, is_demo=True)
            Zone.objects.filter(account=account).update(is_demo=True)
        # moto forgets its zones when it stops; make up puts the records back into a zone created anew, whose
        # id is new. The zone row follows it, and its stored state is read again rather than trusted.
        Zone.objects.filter(account=account, name=f"{zone}.").exclude(
            provider_zone_id=ids[f"{zone}."]
        ).update(provider_zone_id=ids[f"{zone}."], state_valid=False)
        enqueue("account_import_zones", account_id=account.id)
        # Imported with the defaults: every change set waits for a second person, as a demo should show.
        self.stdout.write(f"Demo zone {zone} in the Route53 stand-in at {endpoint}; importing it.")
        if powerdns:
            call_command("register_demo_pdns", powerdns, "--dns", powerdns_dns, stdout=self.stdout)
