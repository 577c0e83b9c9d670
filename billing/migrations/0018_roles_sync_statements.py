"""Finance sees the monthly statement PDFs (supportbilling.roles)."""

from django.db import migrations

from supportbilling.roles import roles_sync_operation



class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0017_statement"),
        ("customers", "0004_notificationpreference_monthly_statements"),
    ]

    operations = [roles_sync_operation(missing_ok=False)]
