# The links' own indexes go (each leads a composite index that stays) and the ticket list's
# order gets one. On PostgreSQL both run CONCURRENTLY, outside a transaction, so the tables
# the helpdesk writes all day are never locked against writes while an index is built or
# dropped; the links' foreign keys are left as they are (the field change is the model's
# state only: Django's own AlterField would drop and re-add each foreign key, checking every
# row again).

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

# The names Django gave the links' indexes (the same on every database).
REPEATED_INDEXES = {
    "tickets_ticket_client_id_33a3e09e": ("tickets_ticket", "client_id"),
    "tickets_timeentry_operator_id_f94ae48d": ("tickets_timeentry", "operator_id"),
    "tickets_timeentry_subscription_id_c01511d0": ("tickets_timeentry", "subscription_id"),
    "tickets_timeentry_ticket_id_ea54e4ed": ("tickets_timeentry", "ticket_id"),
}
LIST_ORDER = "ticket_list_order"


def _concurrently(schema_editor) -> str:
    return "CONCURRENTLY " if schema_editor.connection.vendor == "postgresql" else ""


def repeated_indexes_drop(apps, schema_editor):
    for name in REPEATED_INDEXES:
        schema_editor.execute(
            f"DROP INDEX {_concurrently(schema_editor)}IF EXISTS {schema_editor.quote_name(name)}"
        )
    schema_editor.execute(
        f"CREATE INDEX {_concurrently(schema_editor)}IF NOT EXISTS {LIST_ORDER} "
        'ON "tickets_ticket" ("updated_at" DESC, "id" DESC)'
    )


def repeated_indexes_create(apps, schema_editor):
    schema_editor.execute(f"DROP INDEX IF EXISTS {LIST_ORDER}")
    for name, (table, column) in REPEATED_INDEXES.items():
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {schema_editor.quote_name(name)} "
            f"ON {schema_editor.quote_name(table)} ({schema_editor.quote_name(column)})"
        )


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ('customers', '0005_client_language'),
        ('packages', '0007_topup_blocks'),
        ('tickets', '0013_auditevent_indexes_not_repeated'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name='ticket',
                    name='client',
                    field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='tickets', to='customers.client'),
                ),
                migrations.AlterField(
                    model_name='timeentry',
                    name='operator',
                    field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='time_entries', to=settings.AUTH_USER_MODEL),
                ),
                migrations.AlterField(
                    model_name='timeentry',
                    name='subscription',
                    field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='time_entries', to='packages.subscription'),
                ),
                migrations.AlterField(
                    model_name='timeentry',
                    name='ticket',
                    field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='time_entries', to='tickets.ticket'),
                ),
                migrations.AddIndex(
                    model_name='ticket',
                    index=models.Index(fields=['-updated_at', '-id'], name='ticket_list_order'),
                ),
            ],
            database_operations=[
                migrations.RunPython(repeated_indexes_drop, repeated_indexes_create),
            ],
        ),
    ]
