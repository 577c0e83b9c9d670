"""Operators see the inbound e-mails and handle the unmatched ones (supportbilling.roles)."""

from django.db import migrations

from supportbilling.roles import roles_sync_operation



class Migration(migrations.Migration):
    dependencies = [
        ("tickets", "0006_inboundmail"),
        ("billing", "0008_roles_sync"),
    ]

    operations = [roles_sync_operation(missing_ok=True)]
