"""BillingPeriod moves from tickets to packages (its rules are kept by packages' and tickets'
services, below billing). The rows stay: the table is renamed, its trigger and indexes go with
it, and the content type is relabelled so the permissions groups hold stay theirs."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

RENAME = """
ALTER TABLE tickets_billingperiod RENAME TO packages_billingperiod;
ALTER SEQUENCE IF EXISTS tickets_billingperiod_id_seq RENAME TO packages_billingperiod_id_seq;
"""
RENAME_BACK = """
ALTER TABLE packages_billingperiod RENAME TO tickets_billingperiod;
ALTER SEQUENCE IF EXISTS packages_billingperiod_id_seq RENAME TO tickets_billingperiod_id_seq;
"""
# The trigger function (tickets/migrations/0002_billingperiod_protect) names no table.
FUNCTION_RENAME = (
    "ALTER FUNCTION tickets_billingperiod_protect() RENAME TO packages_billingperiod_protect"
)
FUNCTION_RENAME_BACK = (
    "ALTER FUNCTION packages_billingperiod_protect() RENAME TO tickets_billingperiod_protect"
)


def rename_table(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(RENAME, params=None)
        schema_editor.execute(FUNCTION_RENAME, params=None)
    else:
        schema_editor.execute("ALTER TABLE tickets_billingperiod RENAME TO packages_billingperiod")


def rename_table_back(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FUNCTION_RENAME_BACK, params=None)
        schema_editor.execute(RENAME_BACK, params=None)
    else:
        schema_editor.execute("ALTER TABLE packages_billingperiod RENAME TO tickets_billingperiod")


def content_type_move(apps, schema_editor, old="tickets", new="packages"):
    ContentType = apps.get_model("contenttypes", "ContentType")
    moved = ContentType.objects.filter(app_label=old, model="billingperiod")
    if not ContentType.objects.filter(app_label=new, model="billingperiod").exists():
        moved.update(app_label=new)


def content_type_move_back(apps, schema_editor):
    content_type_move(apps, schema_editor, old="packages", new="tickets")


class Migration(migrations.Migration):
    dependencies = [
        ("contenttypes", "0002_remove_content_type_name"),
        ("packages", "0003_subscription_bucket_hours"),
        ("tickets", "0007_ticketattachment"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="BillingPeriod",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                            ),
                        ),
                        ("month", models.DateField(help_text="First day of the month.", unique=True)),
                        (
                            "status",
                            models.CharField(
                                choices=[("open", "Open"), ("closing", "Closing"), ("closed", "Closed")],
                                default="open",
                                max_length=8,
                            ),
                        ),
                        ("closed_at", models.DateTimeField(blank=True, null=True)),
                        (
                            "closed_by",
                            models.ForeignKey(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.SET_NULL,
                                related_name="+",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                    ],
                    options={
                        "ordering": ["-month"],
                        "constraints": [
                            models.CheckConstraint(
                                condition=models.Q(("month__day", 1)), name="period_first_of_month"
                            )
                        ],
                    },
                ),
            ],
            database_operations=[migrations.RunPython(rename_table, rename_table_back)],
        ),
        migrations.RunPython(content_type_move, content_type_move_back),
    ]
