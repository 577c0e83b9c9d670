"""Celery tasks of webhooks: thin wrappers around webhooks.services."""

from celery import shared_task

from supportbilling.queue import task_enqueue
from webhooks import services


@shared_task(name="webhooks.deliveries_send")
def deliveries_send() -> int:
    """After a change that recorded deliveries, and periodically (beat) for the retries."""
    delivered, more = services.deliveries_send()
    if more:
        task_enqueue("webhooks.deliveries_send")
    return delivered
