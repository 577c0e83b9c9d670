"""Sending Celery tasks without letting a broker outage break the caller.

A request or task that queues follow-up work must not fail, nor hang, because Redis is
unreachable: the work it queues is always also found again by a periodic check (usage alerts
unsent after 10 minutes, ended months still open), so a lost message is re-sent later.
The broker and result-store timeouts that keep the attempt short are in settings.
"""

import logging
from typing import Any

from celery import Task
from kombu.exceptions import OperationalError
from redis.exceptions import RedisError

from supportbilling.celery import app as celery_app

logger = logging.getLogger(__name__)

# What sending raises with the broker or the result store down: kombu's OperationalError,
# redis-py's errors, a bare socket error, and the RuntimeError of Celery's Redis result
# backend when its reconnection attempts run out.
BROKER_ERRORS = (OperationalError, RedisError, OSError, RuntimeError)


def task_enqueue(task: Task | str, *args: Any, **kwargs: Any) -> bool:
    """Queue ``task`` (a task or its registered name) with these arguments. Returns False, and
    logs, when the broker cannot be reached; the caller carries on. (With eager Celery the task
    runs here, and its own errors are raised as usual.)

    By name, services queue their app's tasks without importing the tasks module, which
    imports the services (``BillingConfig.ready`` imports billing's tasks, so their names are
    registered in every process)."""
    if isinstance(task, str):
        task = celery_app.tasks[task]
    if task.app.conf.task_always_eager:
        task.apply_async(args=args, kwargs=kwargs)
        return True
    try:
        task.apply_async(args=args, kwargs=kwargs)
    except BROKER_ERRORS as exc:
        logger.warning(
            "Could not queue %s%r (the broker is unreachable): %s: %s",
            *(task.name, args, type(exc).__name__, " ".join(str(exc).split())),
        )
        return False
    return True
