"""Register the sandbox's demo clusters (`python -m tools.kube_sandbox demo`) with their restricted identity.

Used by `DNSPORTAL_DEMO=1 make up`; a cluster already registered under the same name is left as it is.
"""

import json
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from clusters.models import DEMO_LABELS, Cluster
from clusters.services import Credentials, cluster_register
from dnsportal.embedded import DEMO_REMOVED_FILE, demo_removed


class Command(BaseCommand):
    help = "Register the demo clusters written to STATE (the sandbox's sandbox.json)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("state", type=Path)

    def handle(self, *args, state: Path, **options) -> None:
        if demo_removed(Path(settings.DATA_DIR)):
            marker = Path(settings.DATA_DIR) / DEMO_REMOVED_FILE
            self.stdout.write(
                f"Not registering the demo clusters: an admin removed the demo ({marker} says who)."
            )
            return
        try:
            info = json.loads(state.read_text())
        except (OSError, ValueError) as exc:
            raise CommandError(f"{state} cannot be read as the sandbox's state file ({exc}).") from None
        for entry in info["clusters"]:
            if Cluster.objects.filter(name=entry["name"]).exists():
                continue
            kubeconfig = Path(entry["kubeconfig_restricted"]).read_text()
            cluster_register(
                actor=None,
                name=entry["name"],
                labels=dict(DEMO_LABELS),
                is_demo=True,
                creds=Credentials(kubeconfig=kubeconfig, context=""),
            )
            self.stdout.write(f"Registered demo cluster {entry['name']} ({entry['server']}).")
