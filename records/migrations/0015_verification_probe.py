from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("records", "0014_provider_kind"),
    ]

    operations = [
        migrations.AlterField(
            model_name="verification",
            name="kind",
            field=models.CharField(
                choices=[
                    ("resolution", "Resolution check"),
                    ("distribution", "Traffic split"),
                    ("probe", "HTTP probe"),
                ],
                max_length=12,
            ),
        ),
    ]
