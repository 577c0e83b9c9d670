"""Filters of the statement PDF: money in its currency and the active locale (as the portal
writes it), months and dates in words of that locale (Babel)."""

import datetime as dt

from babel.dates import format_date
from babel.numbers import format_currency
from django import template
from django.utils import timezone, translation
from djmoney.money import Money

register = template.Library()


def _locale() -> str:
    return translation.to_locale(translation.get_language() or "en")


@register.filter
def statement_money(value: Money | None) -> str:
    """``Money(500, "EUR")`` -> ``€500.00`` (English) or ``500,00 €`` (German)."""
    if value is None:
        return ""
    return format_currency(value.amount, str(value.currency), locale=_locale())


@register.filter
def statement_month(value: dt.date) -> str:
    """``October 2026`` (English), ``Oktober 2026`` (German)."""
    return format_date(value, "LLLL yyyy", locale=_locale())


@register.filter
def statement_date(value: dt.date | dt.datetime) -> str:
    """``Oct 14, 2026`` (English), ``14.10.2026`` (German)."""
    if isinstance(value, dt.datetime):
        # The day in TIME_ZONE: a statement of the close at 00:05 on the 1st is dated the 1st.
        value = timezone.localtime(value).date() if timezone.is_aware(value) else value.date()
    return format_date(value, "medium", locale=_locale())
