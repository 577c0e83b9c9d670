"""Celery tasks of tickets: thin wrappers that pass ids, never model instances."""

from celery import shared_task


# No automatic retry: the service records each recipient's failure and its back-off, and the
# periodic run sends a notification again once it is due. Retrying the whole task would mail
# again everyone it had already reached.
@shared_task(name="tickets.notifications_send")
def notifications_send(notification_ids: list[int] | None = None) -> int:
    """Right after an event commits (its notifications' ids), and every few minutes from beat
    (None: every notification due, such as those whose task was lost with Redis down)."""
    from tickets import notifications

    return notifications.notifications_send(notification_ids=notification_ids)


# No retry: the next run (MAIL_INTAKE_EVERY) reads whatever this one left in the mailbox.
@shared_task(name="tickets.mail_fetch")
def mail_fetch() -> int:
    """Every minute from beat: turn the new mail of the helpdesk's mailbox into tickets and
    replies (nothing while MAIL_INTAKE_HOST is unset)."""
    from tickets import intake

    return intake.mail_intake_run().read
