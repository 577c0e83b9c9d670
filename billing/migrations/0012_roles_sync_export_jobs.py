"""Finance starts and downloads export jobs (supportbilling.roles)."""

from django.db import migrations

from supportbilling.roles import roles_sync_operation



class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0011_exportjob"),
        ("billing", "0010_roles_sync_periods"),
    ]

    operations = [roles_sync_operation(missing_ok=True)]
