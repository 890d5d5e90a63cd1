"""None (never verified) is a valid value of Zone.last_verification_ok for every full validation of a zone."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("records", "0009_demo_marker")]
    operations = [
        migrations.AlterField(
            model_name="zone",
            name="last_verification_ok",
            field=models.BooleanField(blank=True, null=True),
        ),
    ]
