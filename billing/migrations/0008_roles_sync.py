"""Make the role groups grant exactly the permissions supportbilling.roles lists. The lists now
live in that module; a change of them needs another migration like this one (the latest
migrations of the apps whose permissions they name as dependencies)."""

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
        ("auth", "0012_alter_user_first_name_max_length"),
        ("customers", "0002_passwordresetrequest"),
        ("packages", "0002_price_min_money_validators"),
        ("tickets", "0003_billingperiod_billing_start"),
        ("billing", "0007_billingevent_portal_login_removed"),
    ]

    operations = [migrations.RunPython(sync_roles, migrations.RunPython.noop)]
