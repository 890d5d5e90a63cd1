"""Discovery keeps each object's ExternalDNS annotations and GitOps tool, for the traffic-policy editor."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("clusters", "0003_cluster_is_demo")]
    operations = [
        migrations.AddField(
            model_name="discoveredobject",
            name="annotations",
            field=models.JSONField(blank=True, default=dict),
        ),
        migrations.AddField(
            model_name="discoveredobject",
            name="gitops",
            field=models.JSONField(blank=True, default=dict),
        ),
    ]
