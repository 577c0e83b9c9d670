"""Operators read disputes, finance resolves them (supportbilling.roles)."""

from django.db import migrations

from supportbilling.roles import roles_sync_operation



class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0015_dispute_periodrelease"),
    ]

    operations = [roles_sync_operation(missing_ok=True)]
