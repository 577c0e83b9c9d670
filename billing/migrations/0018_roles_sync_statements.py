"""Finance sees the monthly statement PDFs (supportbilling.roles)."""

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
        ("billing", "0017_statement"),
        ("customers", "0004_notificationpreference_monthly_statements"),
    ]

    operations = [migrations.RunPython(sync_roles, migrations.RunPython.noop)]
