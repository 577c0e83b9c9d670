"""Reads of the catalogue, subscriptions and the billing calendar: prices, where billing
starts, which months are closed, where a new subscription may start."""

import datetime as dt

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db.models import Max, Min

from packages.models import BillingPeriod, PackagePrice, PeriodStatus
from supportbilling.periods import period_add, period_current, period_parse


class MissingPrice(ValidationError, LookupError):
    """The package has no price in the client's currency. A ValidationError, so that every
    interface shows the message instead of failing."""

    def __init__(self, message: str) -> None:
        super().__init__(message, code="missing_price")


def package_price_for(*, package_id: int, currency: str) -> PackagePrice:
    price = PackagePrice.objects.filter(package_id=package_id, currency=currency).first()
    if price is None:
        raise MissingPrice(f"The package has no price in {currency}.")
    return price


def billing_start() -> dt.date | None:
    """The first month billed: ``BILLING_START`` when set, else the month of the first
    BillingPeriod row (``packages.services.subscription_create`` writes the row of its start
    month); None before anything was sold. Earlier months are never closed or billed."""
    if settings.BILLING_START:
        return period_parse(settings.BILLING_START)
    return BillingPeriod.objects.aggregate(first=Min("month"))["first"]


def period_is_closed(*, month: dt.date) -> bool:
    """Closed or being closed: no time entry of the month may change."""
    return BillingPeriod.objects.filter(month=month).exclude(status=PeriodStatus.OPEN).exists()


def period_closed_from(*, month: dt.date) -> dt.date | None:
    """The last month, from ``month`` on, that is closed or being closed; None when none is.
    Months may close out of order (one held back by a missing price), so a month can be open
    while a later one is closed."""
    return (
        BillingPeriod.objects.filter(month__gte=month)
        .exclude(status=PeriodStatus.OPEN)
        .aggregate(last=Max("month"))["last"]
    )


def closed_months(*, months: list[dt.date]) -> set[dt.date]:
    return set(
        BillingPeriod.objects.filter(month__in=months)
        .exclude(status=PeriodStatus.OPEN)
        .values_list("month", flat=True)
    )


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
