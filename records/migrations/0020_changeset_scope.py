from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("records", "0019_zone_drift_check"),
    ]

    operations = [
        migrations.AddField(
            model_name="changeset",
            name="scope",
            field=models.JSONField(
                blank=True,
                default=list,
                help_text="The names (FQDNs) this plan covers, when discovery changed only those; empty: the "
                "whole zone. `desired` then holds the endpoints at these names only.",
            ),
        ),
    ]
