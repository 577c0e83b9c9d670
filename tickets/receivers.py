"""Receivers of domain events: the tickets' own ones only record the e-mails to send (and queue
their sending, tickets.notifications); the subscriptions' ones (packages.signals) write the
subscription's audit trail (tickets.services)."""

from typing import Any

from tickets import notifications, services
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


def mail_on_overage_approval_needed(
    sender: Any, *, subscription_id: int, ticket_id: int, month: Any, **kwargs: Any
) -> None:
    notifications.overage_request_record(
        subscription_id=subscription_id, ticket_id=ticket_id, month=month
    )


# --- Subscriptions (packages.signals, inside the transaction of the change) ---------------------


def audit_on_subscription_created(
    sender: Any, *, subscription: Any, actor: Any, ticket_id: int | None, **kwargs: Any
) -> None:
    """The sale joins the subscription's trail (and the ticket's, when sold from one)."""
    services.subscription_sold_record(subscription=subscription, actor=actor, ticket_id=ticket_id)


def audit_on_subscription_status_changed(
    sender: Any,
    *,
    subscription: Any,
    old_status: str,
    new_status: str,
    actor: Any,
    **kwargs: Any,
) -> None:
    services.subscription_status_record(
        subscription=subscription, old_status=old_status, new_status=new_status, actor=actor
    )
