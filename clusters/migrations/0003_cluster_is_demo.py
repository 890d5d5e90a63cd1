"""Mark the demo's clusters with a field no form sets, instead of the `demo=true` label anyone may give."""

from django.db import migrations, models

DEMO_NAMES = ("eks-us-east-1", "rke2-dc1", "k3s-edge")


def mark_demo_clusters(apps, schema_editor):
    # Registered by register_demo_clusters before the field existed: the demo's names with its label.
    Cluster = apps.get_model("clusters", "Cluster")
    Cluster.objects.filter(name__in=DEMO_NAMES, labels__contains={"demo": "true"}, created_by=None).update(
        is_demo=True
    )


class Migration(migrations.Migration):
    dependencies = [("clusters", "0002_discovery")]
    operations = [
        migrations.AddField(
            model_name="cluster",
            name="is_demo",
            field=models.BooleanField(default=False, editable=False),
        ),
        migrations.RunPython(mark_demo_clusters, migrations.RunPython.noop),
    ]
