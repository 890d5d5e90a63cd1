"""Reads of the clusters app for other apps' pages."""


def cluster_count() -> int:
    # The Cluster model arrives with the cluster registry; until then there is none.
    from django.apps import apps

    try:
        model = apps.get_model("clusters", "Cluster")
    except LookupError:
        return 0
    return model.objects.count()
