"""The scheduler process: enqueues periodic jobs when due (safe to run twice; see dnsportal.scheduler)."""

from django.core.management.base import BaseCommand, CommandParser

from dnsportal import queue, scheduler


class Command(BaseCommand):
    help = "Enqueue the portal's periodic jobs when they are due, until stopped."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--interval", type=float, default=1.0, help="Seconds between checks (default 1).")

    def handle(self, *args, interval: float, **options) -> None:
        scheduler.run_forever(queue.rq_connection(), interval=interval)
