"""Billing months: where a new subscription may start, which ended months are still open."""

import datetime as dt

from django.conf import settings

from supportbilling.periods import (
    period_add,
    period_current,
    period_previous,
    periods_between,
)
from tickets.models import (
    BillingPeriod,
    PeriodStatus,
)
from tickets.selectors import billing_start


def subscription_start_earliest(*, now: dt.datetime | None = None) -> dt.date:
    """The first month a new subscription may start in: the billing start, or the current
    month when billing has not begun by then (a first sale makes it begin)."""
    current = period_current(now)
    start = billing_start()
    if start is None:
        return current
    return start if settings.BILLING_START else min(start, current)


def subscription_start_latest(*, now: dt.datetime | None = None) -> dt.date:
    """The last month a new subscription may start in."""
    return period_add(period_current(now), settings.SUBSCRIPTION_START_MAX_MONTHS_AHEAD)


def periods_to_close(*, now: dt.datetime | None = None) -> list[dt.date]:
    """Every ended month that is still open, from the billing start."""
    start = billing_start()
    if start is None:
        return []
    last_ended = period_previous(period_current(now))
    closed = set(
        BillingPeriod.objects.filter(status=PeriodStatus.CLOSED, month__gte=start).values_list(
            "month", flat=True
        )
    )
    return [month for month in periods_between(start, last_ended) if month not in closed]
