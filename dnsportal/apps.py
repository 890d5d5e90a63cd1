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
        self._serve_metrics()

    @staticmethod
    def _serve_metrics() -> None:
        """A worker, watch or scheduler process answers its own /metrics on DNSPORTAL_METRICS_PORT when that
        is set: for deployments whose processes share no PROMETHEUS_MULTIPROC_DIR with the web (Kubernetes
        pods). README, "Metrics"."""
        import sys

        from django.conf import settings

        if settings.METRICS_PORT and len(sys.argv) > 1 and sys.argv[1] in ("rqworker", "watch", "scheduler"):
            from dnsportal.metrics_export import serve_process_metrics

            serve_process_metrics(settings.METRICS_PORT, settings.METRICS_BIND)
