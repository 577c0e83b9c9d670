"""Create the Operators and Finance groups with their permissions (supportbilling.roles), and
the monthly schedule of the rollup (first day of each month, 00:05 in TIME_ZONE), so a fresh
install has both."""

from django.conf import settings
from django.contrib.auth.management import create_permissions
from django.db import migrations

from supportbilling.roles import roles_sync

SCHEDULE_NAME = "Close ended billing periods"


def create_roles(apps, schema_editor):
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    # The lists are supportbilling.roles'; a later change of them is applied by a new data
    # migration that calls roles_sync again (as 0006_roles_sync does). Permissions of models
    # that do not exist yet at this point are granted by that later migration.
    roles_sync(apps, missing_ok=True)


def create_schedule(apps, schema_editor):
    CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    crontab, _ = CrontabSchedule.objects.get_or_create(
        minute="5",
        hour="0",
        day_of_month="1",
        month_of_year="*",
        day_of_week="*",
        timezone=settings.TIME_ZONE,
    )
    PeriodicTask.objects.update_or_create(
        name=SCHEDULE_NAME,
        defaults={"task": "billing.close_ended_periods", "crontab": crontab, "enabled": True},
    )


def remove_schedule(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(
        name=SCHEDULE_NAME
    ).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("customers", "0001_initial"),
        ("packages", "0001_initial"),
        ("tickets", "0001_initial"),
        ("billing", "0001_initial"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [
        migrations.RunPython(create_roles, migrations.RunPython.noop),
        migrations.RunPython(create_schedule, remove_schedule),
    ]
