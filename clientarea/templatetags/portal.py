"""Template filters of the portal: money in the client's currency and locale, hours as a clock,
the usage bar and the usage chart (hours themselves: tickets' ``hours`` library)."""

from decimal import Decimal

from babel.numbers import format_currency
from django import template
from django.utils import translation
from djmoney.money import Money

from billing.models import UsageThreshold
from clientarea.charts import usage_chart_svg
from tickets.hours import hours_clock

register = template.Library()


def current_locale() -> str:
    return translation.to_locale(translation.get_language() or "en")


@register.filter
def money(value: Money | None) -> str:
    """``Money(500, "EUR")`` -> ``€500.00`` (English) or ``500,00 €`` (German)."""
    if value is None:
        return ""
    return format_currency(value.amount, str(value.currency), locale=current_locale())


@register.filter
def clock(value: Decimal | None) -> str:
    """``1:15``"""
    return hours_clock(value or Decimal("0"))


@register.filter
def usage_level(used_percent: int) -> str:
    """The bar's colour: ``ok``, ``warning`` (amber) from 80 %, ``exhausted`` (red) at 100 %."""
    if used_percent >= UsageThreshold.EXHAUSTED:
        return "exhausted"
    if used_percent >= UsageThreshold.WARNING:
        return "warning"
    return "ok"


@register.filter
def bar_width(used_percent: int) -> int:
    return max(0, min(int(used_percent), 100))


@register.simple_tag
def usage_chart(points, title: str, subscription_id: int):
    return usage_chart_svg(points, title=title, chart_id=f"chart-{subscription_id}")
