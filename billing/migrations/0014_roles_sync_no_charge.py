"""Operators may mark time entries as no charge (supportbilling.roles)."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

from supportbilling.roles import roles_sync


def sync_roles(apps, schema_editor):
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    roles_sync(apps)


class Migration(migrations.Migration):
    dependencies = [
        ("tickets", "0010_timeentry_no_charge"),
        ("billing", "0013_billedterms_policy"),
        ("billing", "0012_roles_sync_export_jobs"),
    ]

    operations = [migrations.RunPython(sync_roles, migrations.RunPython.noop)]
