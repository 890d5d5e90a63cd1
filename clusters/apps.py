from django.apps import AppConfig


class ClustersConfig(AppConfig):
    name = "clusters"
    label = "clusters"

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save

        from clusters.models import Cluster
        from clusters.watch import cluster_saved

        # A cluster registered, changed or removed: the watch reloads at once (clusters/watch.py).
        post_save.connect(cluster_saved, sender=Cluster, dispatch_uid="clusters.wake_watch")
        post_delete.connect(cluster_saved, sender=Cluster, dispatch_uid="clusters.wake_watch_delete")
