"""Finance starts and downloads export jobs (supportbilling.roles)."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

from supportbilling.roles import roles_sync


def sync_roles(apps, schema_editor):
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    roles_sync(apps, missing_ok=True)  # the latest roles_sync migration checks the whole list


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0011_exportjob"),
        ("billing", "0010_roles_sync_periods"),
    ]

    operations = [migrations.RunPython(sync_roles, migrations.RunPython.noop)]
