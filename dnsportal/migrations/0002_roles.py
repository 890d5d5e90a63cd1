"""Create the four role groups with their permissions (see dnsportal.roles)."""

from django.db import migrations


def create_roles(apps, schema_editor):
    from dnsportal.roles import ensure_roles

    ensure_roles(apps)


def remove_roles(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=["viewer", "operator", "approver", "admin"]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("dnsportal", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]
    operations = [migrations.RunPython(create_roles, remove_roles)]
