"""Template filters of the portal: money in the client's currency and locale, hours as a clock,
the usage bar and the usage chart (hours themselves: tickets' ``hours`` library)."""

from collections.abc import Callable, Iterable
from decimal import Decimal
from functools import lru_cache

from babel import Locale
from babel.numbers import format_currency
from django import template
from django.urls import reverse
from django.utils import translation
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from djmoney.money import Money

from billing.models import UsageThreshold
from billing.selectors.portal_tickets import EntryLine, TicketTime, TimeBadge
from clientarea.charts import usage_chart_svg
from tickets.hours import hours_clock, hours_display

register = template.Library()


def current_locale() -> str:
    return translation.to_locale(translation.get_language() or "en")


@lru_cache(maxsize=64)
def _babel_locale(name: str) -> Locale:
    # A parsed Locale keeps its loaded data; a locale name makes Babel find and check the
    # data again on every call, which was most of the dashboard's money formatting.
    return Locale.parse(name)


@register.filter
def money(value: Money | None) -> str:
    """``Money(500, "EUR")`` -> ``€500.00`` (English) or ``500,00 €`` (German)."""
    if value is None:
        return ""
    return format_currency(
        value.amount, str(value.currency), locale=_babel_locale(current_locale())
    )


@register.filter
def clock(value: Decimal | None) -> str:
    """``1:15``"""
    return hours_clock(value or Decimal("0"))


@register.filter
def get_item(mapping: dict | None, key: object) -> object:
    """``mapping|get_item:key``: a dict's value in a template (None when missing)."""
    return (mapping or {}).get(key)


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


def url_of_each(name: str) -> Callable[[int], str]:
    """``reverse(name, args=[pk])`` for many pks at the cost of one reversal: the URL of a
    placeholder pk, cut around it."""
    placeholder = "918273645"
    before, after = reverse(name, args=[int(placeholder)]).split(placeholder)
    return lambda pk: f"{before}{pk}{after}"


_BADGE_LABELS = {badge.value: badge.label for badge in TimeBadge}

_ENTRY_ROW = (
    '<tr data-entry="{}"><td data-label="Date">{}</td><td data-label="Time">{} '
    '<span class="clock">{}</span>{}</td>{}<td data-label="Billing">'
    '<span class="badge badge-{}">{}</span></td></tr>'
)
# Time worked at no charge: on the ticket and in the work log, never billed.
NO_CHARGE_TAG = format_html(
    ' <span class="badge badge-no-charge" data-figure="no-charge">{}</span>', "No charge"
)
_WORK_LOG_CELLS = '<td data-label="By">{}</td><td data-label="Note">{}</td>'
_TICKET_CELLS = (
    '<td data-label="Ticket">#{}</td>\n  <td data-label="Subject"><a href="{}">{}</a></td>'
)
_TICKET_ROW = """<tr data-ticket="{}">
  {}
  <td data-label="Entries">
    <details class="entries">
      <summary>{} {}</summary>
      <table class="stack">
        <thead><tr><th scope="col">Date</th><th scope="col">Time</th>{}\
<th scope="col">Billing</th></tr></thead>
        <tbody>
        {}
        </tbody>
      </table>
    </details>
  </td>
  <td data-label="Time"><span data-figure="ticket-time">{}</span> \
<span class="clock">{}</span></td>
  <td data-label="Last entry">{}</td>
  <td data-label="Billing"><span class="badge badge-{}" data-figure="badge">{}</span></td>
</tr>
"""
_LOG_HEADS = format_html('<th scope="col">{}</th><th scope="col">{}</th>', "By", "Note")


def _entry_row(entry: EntryLine, show_work_log: bool) -> SafeString:
    log = format_html(_WORK_LOG_CELLS, entry.operator_name, entry.note) if show_work_log else ""
    return format_html(
        _ENTRY_ROW,
        entry.entry_id,
        entry.work_date.isoformat(),
        hours_display(entry.hours),
        hours_clock(entry.hours),
        NO_CHARGE_TAG if entry.no_charge else "",
        log,
        entry.badge,
        _BADGE_LABELS[entry.badge],
    )


def _ticket_row(time: TicketTime, url: str, *, on_ticket: bool) -> SafeString:
    count = len(time.entries)
    show = time.show_work_log
    # On a ticket's own page its number and subject are the page's title: not repeated.
    ticket = "" if on_ticket else format_html(_TICKET_CELLS, time.ticket_id, url, time.subject)
    return format_html(
        _TICKET_ROW,
        time.ticket_id,
        ticket,
        count,
        "entry" if count == 1 else "entries",
        _LOG_HEADS if show else "",
        format_html_join("\n        ", "{}", ((_entry_row(e, show),) for e in time.entries)),
        hours_display(time.total_hours),
        hours_clock(time.total_hours),
        time.last_work_date.isoformat(),
        time.badge,
        _BADGE_LABELS[time.badge],
    )


@register.simple_tag
def ticket_time_rows(times: Iterable[TicketTime], on_ticket: bool = False) -> SafeString:
    """The rows of the "time" table (a ticket, its entries folded under it), built in Python
    with ``format_html`` (every value escaped): it is the part of the dashboard that grows with
    the month's entries, and a template loop costs several times as much per row
    (docs/decisions.md, "Dashboard speed")."""
    ticket_url = url_of_each("clientarea:ticket")
    return format_html_join(
        "",
        "{}",
        ((_ticket_row(time, ticket_url(time.ticket_id), on_ticket=on_ticket),) for time in times),
    )
