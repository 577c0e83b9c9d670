"""Template tags of the operator's workspace: running timers on every admin page, and how an
audit event's details read."""

import datetime as dt
from decimal import Decimal, InvalidOperation
from typing import Any

from django import template
from django.template.defaultfilters import linebreaksbr
from django.template.loader import get_template
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from supportbilling.roles import is_staff_member
from tickets import selectors
from tickets.models import AuditEvent, MessageKind, TicketMessage, TimeEntry

register = template.Library()


def _detail_value(key: str, value: Any) -> str:
    """One stored value as the rest of the page writes it: hours as ``1.25 h``, moments in
    local time (``2026-11-26 02:07``), a timer's minutes as a duration."""
    if value in (None, ""):
        return "(empty)"
    text = str(value)
    if key == "hours" or key.endswith("_hours"):
        try:
            return f"{selectors.hours_short(Decimal(text))} h"
        except InvalidOperation:
            return text
    if key == "minutes":
        try:
            seconds = int(Decimal(text) * 60)
        except InvalidOperation:
            return text
        if seconds < 60:
            return "under a minute"
        hours, minutes = divmod(seconds // 60, 60)
        return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min"
    if key.endswith("_at"):
        try:
            moment = dt.datetime.fromisoformat(text)
        except ValueError:
            return text
        if timezone.is_naive(moment):
            moment = timezone.make_aware(moment, dt.UTC)
        return f"{timezone.localtime(moment):%Y-%m-%d %H:%M}"
    return text


DETAIL_LABELS = {"minutes": "ran", "started_at": "started"}


@register.filter
def audit_detail(event: AuditEvent) -> str:
    """``{"hours": ["1.00", "1.25"], "entry": 7}`` -> ``entry 7, hours 1 h -> 1.25 h``."""
    parts = []
    for key, value in (event.detail or {}).items():
        label = DETAIL_LABELS.get(key, key.replace("_", " "))
        if isinstance(value, list) and len(value) == 2:
            before, after = (_detail_value(key, item) for item in value)
            parts.append(f"{label} {before} \u2192 {after}")
        elif isinstance(value, list):
            parts.append(f"{label}: {'; '.join(_detail_value(key, v) for v in value)}")
        else:
            parts.append(f"{label} {_detail_value(key, value)}")
    return ", ".join(parts)


@register.filter
def author_label(message: TicketMessage, client_name: str) -> str:
    return selectors.message_author_label(message=message, client_name=client_name)


# The two long lists of the workspace (its conversation and the open months' entries) are
# written here rather than in template loops: a template costs about 0.3 ms a row in variable
# lookups and filters, which made the page's time grow with every message and entry
# (docs/performance.md, "Operator ticket page").


MESSAGE_HTML = (
    '<article class="sbt-message sbt-{}"><header><strong>{}</strong> &middot; {} &middot; '
    '<time datetime="{}">{}</time></header><div class="sbt-body">{}</div>{}</article>\n'
)
ENTRY_ROW_HTML = (
    '<tr id="entry-{}" class="sbt-entry{}"><td class="sbt-date">{}</td><td class="sbt-num">{}'
    '</td><td>{}</td><td class="sbt-note">{}</td><td>{}</td><td>{}</td></tr>\n'
)


@register.simple_tag
def conversation_articles(messages: list[TicketMessage], client_name: str) -> str:
    attachments = get_template("tickets/_attachments.html")
    internal = format_html('<span class="{}">Internal note</span>', "sbt-badge sbt-internal")

    def fields(message: TicketMessage) -> tuple[Any, ...]:
        return (
            message.kind,
            selectors.message_author_label(message=message, client_name=client_name),
            internal if message.kind == MessageKind.INTERNAL_NOTE else message.get_kind_display(),
            message.created_at.isoformat(),
            f"{timezone.localtime(message.created_at):%Y-%m-%d %H:%M}",
            linebreaksbr(message.body, autoescape=True),
            attachments.render({"message": message}) if message.attachments.all() else "",
        )

    return format_html_join("", MESSAGE_HTML, (fields(message) for message in messages))


def _billing_cell(entry: selectors.EntryRow) -> str:
    """Billed or not, and "no charge (reason)" for time worked at no charge."""
    billed = "billed" if entry["billed_at"] else "not billed"
    if entry["no_charge"]:
        return format_html(
            '{} <span class="sbt-badge sbt-no-charge" title="{}">no charge</span>',
            billed,
            entry["no_charge_reason"],
        )
    return billed


@register.simple_tag
def entry_rows(
    entries: list[selectors.EntryRow], edit_entry: TimeEntry | None, can_edit: bool
) -> str:
    """The open months' entries, each with an "Edit" link that loads it into the page's one
    edit form (``?edit=<id>``)."""
    editing = edit_entry.pk if edit_entry is not None else None

    def fields(entry: selectors.EntryRow) -> tuple[Any, ...]:
        edit = ""
        if can_edit:
            edit = format_html(
                '<a href="?edit={}#entry-edit" class="sbt-edit-link">Edit</a>', entry["id"]
            )
        return (
            entry["id"],
            " sbt-editing" if entry["id"] == editing else "",
            f"{entry['work_date']:%Y-%m-%d}",
            selectors.hours_short(entry["hours"]),
            entry["operator_name"],
            entry["note"],
            _billing_cell(entry),
            edit,
        )

    return format_html_join("", ENTRY_ROW_HTML, (fields(entry) for entry in entries))


@register.inclusion_tag("admin/tickets/running_timers.html", takes_context=True)
def running_timers(context: template.Context) -> dict[str, Any]:
    """The signed-in operator's running timers (one query, none when the page has read them
    as ``operator_timers``), for staff only."""
    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None or not is_staff_member(user):
        return {"timers": []}
    timers = context.get("operator_timers")  # read by the page already (the ticket page)
    if timers is None:
        timers = selectors.operator_timers(operator_id=user.pk)
    return {"timers": timers, "now": timezone.now()}
