"""What a fresh install has besides its tables: the data migrations' groups and schedule."""

import importlib


def roles_and_schedule_restore() -> None:
    """The data migrations' groups and schedule, as a fresh install has them (a transactional
    test's flush removes them)."""
    from django.apps import apps
    from django_celery_beat.models import PeriodicTask

    from supportbilling.roles import roles_sync

    roles_sync()
    setup = importlib.import_module("billing.migrations.0002_roles_and_schedule")
    if not PeriodicTask.objects.filter(name=setup.SCHEDULE_NAME).exists():
        setup.create_schedule(apps, None)
