from django.apps import AppConfig
from django.utils.module_loading import autodiscover_modules


class PortalConfig(AppConfig):
    name = "dnsportal"
    label = "dnsportal"
    verbose_name = "Portal"

    def ready(self) -> None:
        # Job functions register themselves by name; importing every app's jobs.py fills the registry, so
        # the web process (enqueue) and the worker (execute) agree on what a name means.
        autodiscover_modules("jobs")
