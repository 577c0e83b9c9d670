"""Billing periods: calendar months in the project's time zone, named ``YYYY-MM``.

A period is represented by the date of its first day; these helpers convert and compare.
"""

import datetime as dt
import re

from django.core.exceptions import ValidationError
from django.utils import timezone

_PERIOD_RE = re.compile(r"^(\d{4})-(\d{2})$")

# Every period any interface accepts (docs/decisions.md, "Billing start and periods"): other
# years are typing mistakes, and month arithmetic overflows after 9999-12.
PERIOD_YEAR_MIN, PERIOD_YEAR_MAX = 2000, 2999


def period_parse(value: str) -> dt.date:
    """``"2026-10"`` -> ``date(2026, 10, 1)``; anything else, or a year outside
    PERIOD_YEAR_MIN..PERIOD_YEAR_MAX, is a ValidationError."""
    match = _PERIOD_RE.match(str(value).strip())
    if not match:
        raise ValidationError("Enter the period as YYYY-MM, for example 2026-10.", code="period")
    year, month = int(match[1]), int(match[2])
    if not 1 <= month <= 12:
        raise ValidationError("Enter a real month as YYYY-MM, for example 2026-10.", code="period")
    if not PERIOD_YEAR_MIN <= year <= PERIOD_YEAR_MAX:
        raise ValidationError(
            f"Enter a month from {PERIOD_YEAR_MIN}-01 to {PERIOD_YEAR_MAX}-12.", code="period_range"
        )
    return dt.date(year, month, 1)


def period_label(month: dt.date) -> str:
    return f"{month.year:04d}-{month.month:02d}"


def period_of(day: dt.date) -> dt.date:
    return day.replace(day=1)


def period_next(month: dt.date) -> dt.date:
    return (month.replace(day=28) + dt.timedelta(days=4)).replace(day=1)


def period_add(month: dt.date, months: int) -> dt.date:
    """The month ``months`` after ``month`` (before it when negative)."""
    index = month.year * 12 + month.month - 1 + months
    return dt.date(index // 12, index % 12 + 1, 1)


def period_previous(month: dt.date) -> dt.date:
    return (month.replace(day=1) - dt.timedelta(days=1)).replace(day=1)


def period_last_day(month: dt.date) -> dt.date:
    return period_next(month) - dt.timedelta(days=1)


def local_today(now: dt.datetime | None = None) -> dt.date:
    """Today in TIME_ZONE; ``now`` lets callers replay a moment."""
    return timezone.localdate(now or timezone.now())


def period_current(now: dt.datetime | None = None) -> dt.date:
    return period_of(local_today(now))


def period_has_ended(month: dt.date, now: dt.datetime | None = None) -> bool:
    return local_today(now) >= period_next(month)


def periods_between(first: dt.date, last: dt.date) -> list[dt.date]:
    """Every month from ``first`` to ``last`` inclusive."""
    months, month = [], period_of(first)
    while month <= last:
        months.append(month)
        month = period_next(month)
    return months
