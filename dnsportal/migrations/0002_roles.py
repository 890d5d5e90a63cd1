"""Create the four role groups with their permissions (see dnsportal.roles)."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

ROLE_PERMISSIONS = {
    "viewer": ["view_portal"],
    "operator": ["view_portal", "operate"],
    "approver": ["view_portal", "approve"],
    "admin": ["view_portal", "operate", "approve", "administer"],
}


def create_roles(apps, schema_editor):
    # Permissions are normally created after all migrations (post_migrate); make them now so the groups get them.
    app_config = apps.get_app_config("dnsportal")
    app_config.models_module = True
    create_permissions(app_config, apps=apps, verbosity=0)
    app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for role, codenames in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=role)
        perms = Permission.objects.filter(content_type__app_label="dnsportal", codename__in=codenames)
        group.permissions.add(*perms)


def remove_roles(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=list(ROLE_PERMISSIONS)).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("dnsportal", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]
    operations = [migrations.RunPython(create_roles, remove_roles)]
