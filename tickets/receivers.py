"""Receivers of the tickets' own domain events: they only record the e-mails to send (and
queue their sending), in tickets.notifications."""

from typing import Any

from tickets import notifications
from tickets.models import TicketStatus


def mail_on_ticket_opened(
    sender: Any, *, ticket_id: int, message_id: int | None, actor_id: int | None, **kwargs: Any
) -> None:
    notifications.ticket_opened_record(
        ticket_id=ticket_id, message_id=message_id, actor_id=actor_id
    )


def mail_on_message_added(
    sender: Any, *, ticket_id: int, message_id: int, kind: str, actor_id: int | None, **kwargs: Any
) -> None:
    notifications.ticket_message_record(
        ticket_id=ticket_id, message_id=message_id, kind=kind, actor_id=actor_id
    )


def mail_on_status_changed(
    sender: Any,
    *,
    ticket_id: int,
    old_status: str,
    new_status: str,
    actor_id: int | None,
    audit_event_id: int | None,
    **kwargs: Any,
) -> None:
    closed = new_status == TicketStatus.CLOSED
    reopened = old_status == TicketStatus.CLOSED and not closed
    if audit_event_id is None or not (closed or reopened):
        return  # other changes of status are nobody's mail
    notifications.ticket_status_record(
        ticket_id=ticket_id, closed=closed, actor_id=actor_id, audit_event_id=audit_event_id
    )
