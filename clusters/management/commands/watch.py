"""The watch process: keeps every cluster's endpoints current from Kubernetes watches (one leader at once)."""

from django.core.management.base import BaseCommand

from clusters import watch
from dnsportal.queue import rq_connection


class Command(BaseCommand):
    help = (
        "Watch Services and Ingresses of every enabled cluster; safe to run on several replicas (one leads)."
    )

    def handle(self, *args, **options) -> None:
        watch.run(rq_connection())
