"""Jobs that exist only for the tests of the job machinery (registered on import)."""

import logging

from django.conf import settings

from dnsportal.queue import register_job

log = logging.getLogger(__name__)
CALLS: list[dict] = []


@register_job(queue="default")
def test_echo(*, value: int) -> None:
    CALLS.append({"value": value})
    log.info("echo %s", value)


@register_job(queue="dns")
def test_explode(*, value: int) -> None:
    # A careless exception message carrying a secret: the stored error and log must not show it.
    raise RuntimeError(f"boom {value} with key {settings.SECRET_KEY}")
