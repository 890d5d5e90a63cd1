"""Register the sandbox's demo clusters (`python -m tools.kube_sandbox demo`) with their restricted identity.

Used by `make up` (the demo is on by default in embedded mode). A demo cluster registered by an earlier run is
checked again, and its kubeconfig follows if the sandbox moved it to another port; a cluster of someone
else's that bears a demo name is left alone.
"""

import json
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from clusters.models import DEMO_LABELS, Cluster
from clusters.services import (
    Credentials,
    cluster_check_request,
    cluster_register,
    cluster_update,
)
from clusters.source_options import SourceOptions
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
            kubeconfig = Path(entry["kubeconfig_restricted"]).read_text()
            existing = Cluster.objects.filter(name=entry["name"]).first()
            if existing is not None:
                self._started_again(existing, kubeconfig, entry)
                continue
            # The demo's own module (make up only; the image need not carry tools/).
            from tools.kube_sandbox.demo import DEMO_CLUSTERS, GATEWAY_SOURCES

            options = None
            if any(spec.name == entry["name"] and spec.gateway for spec in DEMO_CLUSTERS):
                # this demo cluster publishes through an HTTPRoute: its sources say so from the start, so the
                # watch discovers the three clusters together (a resync of this one alone came first, and the
                # first plan of app.example.com held one cluster of three)
                options = SourceOptions.from_mapping({"source": list(GATEWAY_SOURCES)})
            cluster_register(
                actor=None,
                name=entry["name"],
                labels=dict(DEMO_LABELS),
                is_demo=True,
                creds=Credentials(kubeconfig=kubeconfig, context=""),
                source_options=options,
            )
            self.stdout.write(f"Registered demo cluster {entry['name']} ({entry['server']}).")

    def _started_again(self, cluster: Cluster, kubeconfig: str, entry: dict) -> None:
        """A demo cluster make up started again: its health is checked anew (the last check is from the
        previous run), and if the sandbox had to move it to another port, its kubeconfig follows."""
        if not cluster.is_demo:
            self.stdout.write(f"Not touching cluster {cluster.name}: it is not one of the demo's.")
        elif cluster.kubeconfig != kubeconfig:
            cluster_update(
                actor=None,
                cluster_id=cluster.id,
                display_name=cluster.display_name,
                description=cluster.description,
                labels=cluster.labels,
                creds=Credentials(kubeconfig=kubeconfig, context=""),
            )
            self.stdout.write(f"Demo cluster {cluster.name} moved to {entry['server']}; checking it.")
        else:
            cluster_check_request(actor=None, cluster_id=cluster.id)
