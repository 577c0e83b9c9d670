"""Billing months: where a new subscription may start, which ended months are still open."""

import datetime as dt

from packages.models import BillingPeriod, PeriodStatus
from packages.selectors import billing_start
from supportbilling.periods import (
    period_current,
    period_previous,
    periods_between,
)


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
