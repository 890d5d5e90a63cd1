from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("dnsportal", "0004_audit_api_channel"),
    ]

    operations = [
        migrations.AddField(
            model_name="jobrun",
            name="heartbeat_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
    ]
