"""The month lock (BillingPeriod) moved to packages: the groups' lists name its permissions
there (supportbilling.roles)."""

from django.db import migrations

from supportbilling.roles import roles_sync_operation



class Migration(migrations.Migration):
    dependencies = [
        ("packages", "0004_billingperiod_from_tickets"),
        ("tickets", "0008_billingperiod_to_packages"),
        ("billing", "0009_roles_sync_inbound_mail"),
    ]

    operations = [roles_sync_operation(missing_ok=True)]
