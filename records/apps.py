from django.apps import AppConfig


class RecordsConfig(AppConfig):
    name = "records"
    label = "records"

    def ready(self) -> None:
        from clusters.signals import endpoints_changed
        from records.jobs import on_endpoints_changed

        # Discovery stored a change: the zones holding those names are reconciled (debounced).
        endpoints_changed.connect(on_endpoints_changed, dispatch_uid="records.reconcile_on_change")
