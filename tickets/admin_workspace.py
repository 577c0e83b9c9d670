"""The ticket page's long lists (conversation, entries, audit trail, mail log) and its side
panel's choices (operators, the client's subscriptions, packages offered), written once and
served from the fragment cache while nothing they show has changed.

The key is a digest of the ticket's stamp (``selectors.workspace_stamp``: per list the number
of rows and the newest id or change, one query on indexes), of the
client's name the conversation signs with, of whether the entries carry "Edit" links, and of
the time zone and language: a cached list is only ever served for the very same rows, so there
is nothing to invalidate (docs/decisions.md, "The ticket page outside the admin's change form").
"""

import hashlib
from typing import Any

from django.core.cache import caches
from django.template.loader import render_to_string
from django.utils import timezone, translation
from django.utils.safestring import SafeString

from supportbilling.snapshot import one_snapshot
from tickets import selectors
from tickets.models import Ticket
from tickets.templatetags.operator_workspace import conversation_articles

FRAGMENTS_CACHE = "fragments"  # settings.CACHES: in each process's memory
LISTS_SECONDS = 3600
ENTRY_ROWS_TEMPLATE = "admin/tickets/ticket/_entry_rows.html"


def _key(kind: str, *shown: Any) -> str:
    shown = (*shown, timezone.get_current_timezone_name(), translation.get_language())
    digest = hashlib.blake2b(repr(shown).encode(), digest_size=20).hexdigest()
    return f"ticket-page-{kind}:{digest}"


def entry_table_rows(
    entries: selectors.TicketEntries,
    *,
    can_edit: bool,
    edit_entry: Any = None,
    month_entries: selectors.MonthEntriesPage | None = None,
) -> SafeString:
    """The rows of the entries table: the open months' entries, one summary row per closed
    month, and the closed month listed on demand (``?month=``)."""
    return render_to_string(
        ENTRY_ROWS_TEMPLATE,
        {
            "entries": entries.entries,
            "closed_months": entries.closed_months,
            "edit_entry": edit_entry,
            "can_edit": can_edit,
            "month_entries": month_entries,
        },
    )


def _lists_written(ticket: Ticket, *, can_edit: bool) -> dict[str, Any]:
    conversation = selectors.ticket_conversation(ticket_id=ticket.pk)
    entries = selectors.ticket_entries(ticket_id=ticket.pk)
    return {
        "conversation": conversation_articles(conversation, ticket.client.name),
        "has_messages": bool(conversation),
        "entry_rows": entry_table_rows(entries, can_edit=can_edit),
        "has_entries": bool(entries.entries or entries.closed_months),
        "entries_total": entries.total,
        "audit_trail": render_to_string(
            "admin/tickets/audit_trail.html",
            {"audit_trail": selectors.ticket_audit_trail(ticket_id=ticket.pk)},
        ),
        "mail_log": render_to_string(
            "admin/tickets/ticket/_mail_log_rows.html",
            {"mail_log": selectors.ticket_mail_log(ticket_id=ticket.pk)},
        ),
    }


def _choices_written(ticket: Ticket, *, selected: dict[str, str]) -> dict[str, Any]:
    operators = list(selectors.operators_active())
    subscriptions = selectors.client_subscriptions(client_id=ticket.client_id)
    return {
        "operator_ids": [operator.pk for operator in operators],
        "operators": render_to_string(
            "admin/tickets/ticket/_operator_options.html",
            {"operators": operators, "assign_form": {"assignee": {"value": selected["assignee"]}}},
        ),
        "subscriptions": render_to_string(
            "admin/tickets/ticket/_subscription_choices.html",
            {"subscriptions": subscriptions, "ticket": ticket},
        ),
        "packages": render_to_string(
            "admin/tickets/ticket/_package_options.html",
            {
                "packages_offered": selectors.packages_offered(),
                "service_form": {"package": {"value": selected["package"]}},
            },
        ),
    }


def workspace_parts(
    ticket: Ticket, *, can_edit: bool, selected: dict[str, str]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The written lists of the ticket's page (HTML, whether it has messages and entries, the
    entries' total) and the side panel's choices (HTML of the operators, the client's
    subscriptions and the packages offered, with ``selected``'s assignee and package chosen;
    the operators' ids). One query for the stamp; on a miss also the reads of what is
    written, and its writing. Only text and numbers are kept, so a hit rebuilds no model."""
    stamp = selectors.workspace_stamp(ticket=ticket)
    fragments = caches[FRAGMENTS_CACHE]

    def keys(stamp: selectors.WorkspaceStamp) -> tuple[str, str]:
        return (
            _key("lists", ticket.pk, ticket.client.name, stamp.lists, can_edit),
            _key("choices", ticket.client_id, ticket.subscription_id, stamp.choices, selected),
        )

    lists_key, choices_key = keys(stamp)
    found = fragments.get_many([lists_key, choices_key])
    lists, choices = found.get(lists_key), found.get(choices_key)
    if lists is not None and choices is not None:
        return lists, choices
    # Written in the snapshot of the stamp they are kept under: a row added meanwhile and
    # deleted later would bring the earlier stamp back with the row in its lists.
    with one_snapshot():
        stamp = selectors.workspace_stamp(ticket=ticket)
        lists_key, choices_key = keys(stamp)
        if lists is None:
            lists = _lists_written(ticket, can_edit=can_edit)
            fragments.set(lists_key, lists, LISTS_SECONDS)
        if choices is None:
            choices = _choices_written(ticket, selected=selected)
            fragments.set(choices_key, choices, LISTS_SECONDS)
    return lists, choices
