"""The one template filter that shows hours, for the operator's pages and the client portal."""

from decimal import Decimal

from django import template

from tickets.hours import hours_display
from tickets.selectors import ZERO_HOURS, hours_short

register = template.Library()


@register.filter
def hours(value: Decimal | None, style: str = "") -> str:
    """``1.25 h``; ``hours:"short"`` gives the bare short number the operator's pages write
    their own unit after: ``10``, ``6.5``."""
    value = value or ZERO_HOURS
    return hours_short(value) if style == "short" else hours_display(value)
