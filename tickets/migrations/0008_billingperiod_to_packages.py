"""BillingPeriod now lives in packages (packages/migrations/0004_billingperiod_from_tickets
renamed the table); only tickets' model state forgets it here."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("tickets", "0007_ticketattachment"),
        ("packages", "0004_billingperiod_from_tickets"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name="BillingPeriod")],
            database_operations=[],
        ),
    ]
