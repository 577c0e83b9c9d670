"""Operators may mark time entries as no charge (supportbilling.roles)."""

from django.db import migrations

from supportbilling.roles import roles_sync_operation



class Migration(migrations.Migration):
    dependencies = [
        ("tickets", "0010_timeentry_no_charge"),
        ("billing", "0013_billedterms_policy"),
        ("billing", "0012_roles_sync_export_jobs"),
    ]

    operations = [roles_sync_operation(missing_ok=True)]
