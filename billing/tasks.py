"""Celery tasks of billing: thin wrappers that pass ids and periods, never model instances.
Services queue them by name (``supportbilling.queue.task_enqueue``) and never import this
module, so it imports them at the top."""

import logging

from celery import chord, shared_task
from django.conf import settings
from django.core.exceptions import ValidationError

from billing.selectors.periods import periods_to_close
from billing.selectors.rollup import rollup_batches
from billing.services import alerts, exports, monthly_statements, rollup, statement_mail
from supportbilling.periods import period_label, period_parse

logger = logging.getLogger(__name__)


@shared_task(name="billing.close_ended_periods")
def close_ended_periods() -> list[str]:
    """The monthly schedule: close every ended month that is still open, one sub-task per
    batch of subscriptions, then mark each month closed when all its batches are done."""
    started = []
    for month in periods_to_close():
        try:
            if not rollup.period_close_begin(month=month):
                continue
        except ValidationError as exc:
            # One month that cannot close (a missing price) must not hold back the others;
            # it stays open and the next run tries again.
            logger.error("Cannot close %s: %s", period_label(month), " ".join(exc.messages))
            continue
        period = period_label(month)
        batches = rollup_batches(month=month, batch_size=settings.ROLLUP_BATCH_SIZE)
        if batches:
            chord(rollup_batch.s(period, first_id, last_id) for first_id, last_id in batches)(
                period_close_finish.s(period)
            )
        else:
            period_close_finish.delay([], period)
        started.append(period)
    return started


@shared_task(name="billing.rollup_batch", acks_late=True)
def rollup_batch(period: str, first_id: int, last_id: int) -> int:
    return rollup.period_rollup_batch(
        month=period_parse(period), first_id=first_id, last_id=last_id
    )


@shared_task(name="billing.period_close_finish")
def period_close_finish(items_created: list[int], period: str) -> int:
    rollup.period_close_finish(month=period_parse(period))
    return sum(items_created)


@shared_task(name="billing.usage_alerts_check")
def usage_alerts_check(subscription_ids: list[int] | None = None) -> int:
    """Every few minutes (beat) and after time is logged through billing's interfaces."""
    return len(alerts.usage_alerts_check(subscription_ids=subscription_ids))


# No automatic retry: the service records each recipient's failure and its back-off, and the
# periodic check queues the alert again when a delivery is due. Retrying the whole task would
# mail again everyone it had already reached.
@shared_task(name="billing.usage_alert_send")
def usage_alert_send(alert_id: int) -> int:
    return alerts.usage_alert_send(alert_id=alert_id)


# Redelivered after a worker died mid-way (acks_late): the service writes the file again from
# the start; a job already done or failed is left as it is.
@shared_task(name="billing.export_job_run", acks_late=True)
def export_job_run(job_id: int) -> str:
    return exports.export_job_run(job_id=job_id)


@shared_task(name="billing.export_jobs_expire")
def export_jobs_expire() -> int:
    return exports.export_jobs_expire()


# Monthly statements (docs/statements.md). Rendering twice is harmless (the service renders a
# revision only when the figures changed), so a redelivered task changes nothing.
@shared_task(name="billing.statements_issue_month")
def statements_issue_month(period: str) -> int:
    return len(monthly_statements.statements_issue_month(month=period_parse(period)))


@shared_task(name="billing.statement_issue", acks_late=True)
def statement_issue(subscription_id: int, period: str) -> int | None:
    statement = monthly_statements.statement_issue(
        subscription_id=subscription_id, month=period_parse(period)
    )
    return statement.pk if statement else None


# No automatic retry, as for usage alerts: the catch-up queues it again when a delivery is due.
@shared_task(name="billing.statement_mail_send")
def statement_mail_send(statement_id: int) -> int:
    return statement_mail.statement_mail_send(statement_id=statement_id)


@shared_task(name="billing.statements_catch_up")
def statements_catch_up() -> int:
    return monthly_statements.statements_catch_up() + statement_mail.statement_mails_catch_up()
