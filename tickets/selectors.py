"""Reads of tickets and time: hours used per subscription, logged per ticket, period state."""

import datetime as dt
from decimal import Decimal

from django.db.models import Sum

from packages.models import BillingMode, Subscription
from supportbilling.periods import period_last_day
from tickets.models import BillingPeriod, PeriodStatus, TimeEntry

ZERO_HOURS = Decimal("0.00")


def subscription_hours_used(*, subscription: Subscription, month: dt.date) -> Decimal:
    """Recurring: hours of entries in ``month``. One-time: every entry ever (the bucket)."""
    entries = TimeEntry.objects.filter(subscription_id=subscription.pk)
    if subscription.package.billing_mode == BillingMode.RECURRING:
        entries = entries.filter(work_date__range=(month, period_last_day(month)))
    return entries.aggregate(total=Sum("hours"))["total"] or ZERO_HOURS


def ticket_hours_logged(*, ticket_id: int, month: dt.date | None = None) -> Decimal:
    entries = TimeEntry.objects.filter(ticket_id=ticket_id)
    if month is not None:
        entries = entries.filter(work_date__range=(month, period_last_day(month)))
    return entries.aggregate(total=Sum("hours"))["total"] or ZERO_HOURS


def period_is_closed(*, month: dt.date) -> bool:
    """Closed or being closed: no time entry of the month may change."""
    return BillingPeriod.objects.filter(month=month).exclude(status=PeriodStatus.OPEN).exists()


def closed_months(*, months: list[dt.date]) -> set[dt.date]:
    return set(
        BillingPeriod.objects.filter(month__in=months)
        .exclude(status=PeriodStatus.OPEN)
        .values_list("month", flat=True)
    )
