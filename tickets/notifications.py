"""Ticket e-mails: who is told what happened on a ticket, and their delivery.

The ticket services send domain events (tickets.signals) on commit; the receivers
(tickets.receivers) call ``notifications_record`` here, which writes one TicketNotification
per recipient and queues their sending. ``notifications_send`` claims each row before its
e-mail goes out and marks it sent right after; the periodic ``notifications_send`` run (beat)
sends what a lost task or a failure left pending. Guarantee, recipients and headers:
docs/decisions.md, "Ticket e-mail notifications".
"""

import datetime as dt
import hmac
import logging
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.crypto import salted_hmac

from customers.models import MailKind
from customers.selectors import unsubscribe_token, user_wants
from supportbilling.mail import deliveries_send
from supportbilling.queue import task_enqueue
from tickets.models import (
    MessageKind,
    NotificationEvent,
    NotificationStatus,
    Ticket,
    TicketMessage,
    TicketNotification,
)
from tickets.selectors import operators_active

logger = logging.getLogger(__name__)

# At most this many e-mails per periodic run; the next run sends the rest.
SEND_BATCH = 500

# Replies of a person carry no List-Unsubscribe (mail providers treat them as conversation,
# not subscription mail); the other notifications do.
_PERSONAL = {NotificationEvent.OPERATOR_REPLY, NotificationEvent.RECEIPT}


# --- Recipients --------------------------------------------------------------------------------


def _users() -> Any:
    return (
        get_user_model()
        .objects.filter(is_active=True)
        .exclude(email="")
        .select_related("notification_preference")
        .order_by("pk")
    )


def ticket_operator_recipients(ticket: Ticket) -> list[Any]:
    """Who on the helpdesk hears of a new ticket or a client's reply: the ticket's assignee
    when it has one who can be mailed (active, with an address), otherwise the operators
    (``operators_active``: active staff of the Operators group) with an address."""
    operators = _users().filter(pk__in=operators_active().values("pk"))
    if ticket.assignee_id is not None:
        assignee = list(operators.filter(pk=ticket.assignee_id))
        if assignee:
            return assignee
    return list(operators)


def ticket_client_recipients(ticket: Ticket) -> list[Any]:
    """Who at the client hears of replies, closing and reopening: the client's active users
    with an address."""
    return list(_users().filter(client_membership__client_id=ticket.client_id))


# --- Threading headers -------------------------------------------------------------------------

_MESSAGE_ID_SALT = "tickets.notifications.message-id"
_MESSAGE_ID = re.compile(r"<?ticket-(\d+)\.mail-(\d+)\.user-(\d+)\.([0-9a-f]+)@([^>\s]+)>?")


def mail_host() -> str:
    """The domain of our Message-IDs: the host of SITE_URL, never the machine's name."""
    return urlsplit(settings.SITE_URL).hostname or "localhost"


def ticket_root_id(ticket_id: int) -> str:
    """The id every e-mail of the ticket refers to (In-Reply-To, References), so mail clients
    group them in one thread."""
    return f"<ticket-{ticket_id}@{mail_host()}>"


def _signature(ticket_id: int, mail_id: int, user_id: int) -> str:
    value = f"ticket-{ticket_id}.mail-{mail_id}.user-{user_id}"
    return salted_hmac(_MESSAGE_ID_SALT, value).hexdigest()[:20]


def notification_message_id(*, ticket_id: int, mail_id: int, user_id: int) -> str:
    """The Message-ID of one notification: which ticket, which e-mail, which recipient, signed
    with SECRET_KEY so that a reply's In-Reply-To can be trusted by the e-mail intake."""
    signature = _signature(ticket_id, mail_id, user_id)
    return f"<ticket-{ticket_id}.mail-{mail_id}.user-{user_id}.{signature}@{mail_host()}>"


def notification_message_id_read(value: str) -> tuple[int, int, int] | None:
    """(ticket id, notification id, user id) of one of our Message-IDs; None when it is not
    ours or its signature does not match."""
    match = _MESSAGE_ID.fullmatch(value.strip())
    if match is None or match[5].lower() != mail_host().lower():
        return None
    ticket_id, mail_id, user_id = int(match[1]), int(match[2]), int(match[3])
    if not hmac.compare_digest(match[4], _signature(ticket_id, mail_id, user_id)):
        return None
    return ticket_id, mail_id, user_id


# --- Recording -----------------------------------------------------------------------------------


def _send_queue(notification_ids: list[int]) -> None:
    from tickets.tasks import notifications_send

    # With the broker down the rows stay pending in the database (the periodic run sends
    # them) and the caller's request does not fail after its commit.
    transaction.on_commit(lambda: task_enqueue(notifications_send, notification_ids), robust=True)


def notifications_record(
    *,
    ticket: Ticket,
    event: str,
    event_key: str,
    users: Iterable[Any],
    to_operator: bool,
    ticket_message: TicketMessage | None = None,
    exclude_user_id: int | None = None,
    now: dt.datetime | None = None,
) -> list[int]:
    """Record the e-mail of ``event`` to each of ``users`` who wants ticket e-mails (but
    ``exclude_user_id``, who caused it), one per address, and queue their sending once this
    commits. Recording the same event again adds nobody (the unique constraint). Returns the
    ids of the notifications still to send for this event."""
    now = now or timezone.now()
    rows: dict[str, TicketNotification] = {}
    for user in users:
        if user.pk == exclude_user_id or not user_wants(user, MailKind.TICKET_MAIL):
            continue
        address = user.email.strip()
        rows.setdefault(  # two users sharing an address get one e-mail
            address.lower(),
            TicketNotification(
                ticket=ticket,
                ticket_message=ticket_message,
                event=event,
                event_key=event_key,
                to_operator=to_operator,
                user=user,
                address=address,
                next_attempt_at=now,
            ),
        )
    if not rows:
        return []
    with transaction.atomic():
        TicketNotification.objects.bulk_create(rows.values(), ignore_conflicts=True)
        ids = list(
            TicketNotification.objects.filter(
                event_key=event_key, status=NotificationStatus.PENDING
            ).values_list("pk", flat=True)
        )
        if ids:
            _send_queue(ids)
    return ids


def ticket_opened_record(*, ticket_id: int, message_id: int | None, actor_id: int | None) -> None:
    """A new ticket. When it is the client's request (its first message is the client's, or
    it has none: the portal, the API, later e-mail), the client's users get a receipt; opened
    with an operator's message, they are told it was opened for them. The operators hear of
    it either way (but who opened it)."""
    ticket = Ticket.objects.select_related("client").get(pk=ticket_id)
    message = TicketMessage.objects.filter(pk=message_id).first() if message_id else None
    key = f"opened:{ticket.pk}"
    if message is None or message.kind == MessageKind.CLIENT_REPLY:
        # The receipt goes to whoever asked when that is one of the client's users (the
        # portal, an e-mail from their address), else to all of them (an integration, mail an
        # operator filed); it never repeats the request's text: a From address proves
        # nothing, and the helpdesk must not relay a stranger's words to a client's users.
        client_users = ticket_client_recipients(ticket)
        askers = [user for user in client_users if message and user.pk == message.author_id]
        notifications_record(
            ticket=ticket,
            event=NotificationEvent.RECEIPT,
            event_key=key,
            users=askers or client_users,
            to_operator=False,
            ticket_message=None,
        )
    else:
        notifications_record(
            ticket=ticket,
            event=NotificationEvent.TICKET_OPENED,
            event_key=key,
            users=ticket_client_recipients(ticket),
            to_operator=False,
            ticket_message=message,
            exclude_user_id=actor_id,
        )
    notifications_record(
        ticket=ticket,
        event=NotificationEvent.TICKET_OPENED,
        event_key=key,
        users=ticket_operator_recipients(ticket),
        to_operator=True,
        ticket_message=message,
        exclude_user_id=actor_id,
    )


def ticket_message_record(
    *, ticket_id: int, message_id: int, kind: str, actor_id: int | None
) -> None:
    """An operator's reply goes to the client's users, a client's reply to the helpdesk; an
    internal note to nobody."""
    if kind not in (MessageKind.OPERATOR_REPLY, MessageKind.CLIENT_REPLY):
        return
    message = TicketMessage.objects.select_related("ticket__client").get(pk=message_id)
    ticket = message.ticket
    to_operator = kind == MessageKind.CLIENT_REPLY
    notifications_record(
        ticket=ticket,
        event=NotificationEvent.CLIENT_REPLY if to_operator else NotificationEvent.OPERATOR_REPLY,
        event_key=f"message:{message.pk}",
        users=(
            ticket_operator_recipients(ticket) if to_operator else ticket_client_recipients(ticket)
        ),
        to_operator=to_operator,
        ticket_message=message,
        exclude_user_id=actor_id,
    )


def ticket_status_record(
    *, ticket_id: int, closed: bool, actor_id: int | None, audit_event_id: int
) -> None:
    """The client's users hear that their ticket was closed or reopened (but who did it)."""
    ticket = Ticket.objects.select_related("client").get(pk=ticket_id)
    notifications_record(
        ticket=ticket,
        event=NotificationEvent.TICKET_CLOSED if closed else NotificationEvent.TICKET_REOPENED,
        event_key=f"status:{audit_event_id}",
        users=ticket_client_recipients(ticket),
        to_operator=False,
        exclude_user_id=actor_id,
    )


def overage_request_record(*, subscription_id: int, ticket_id: int, month: dt.date) -> None:
    """Time on the ticket needs the client's approval of extra hours for ``month``: their
    users get one e-mail asking for it, on the ticket's thread. A reply whose first line is
    ``APPROVE 3`` records the approval (tickets.intake); the month and subscription are in
    the event's key, which the intake reads back from the signed Message-ID."""
    ticket = Ticket.objects.select_related("client").get(pk=ticket_id)
    notifications_record(
        ticket=ticket,
        event=NotificationEvent.OVERAGE_REQUEST,
        event_key=overage_request_key(subscription_id=subscription_id, month=month),
        users=ticket_client_recipients(ticket),
        to_operator=False,
    )


def overage_request_key(*, subscription_id: int, month: dt.date) -> str:
    return f"overage:{subscription_id}:{month:%Y-%m}"


def overage_request_read(event_key: str) -> tuple[int, dt.date] | None:
    """(subscription id, month) of an ``overage_request_key``."""
    match = re.fullmatch(r"overage:([0-9]{1,18}):([0-9]{4})-([0-9]{2})", event_key)
    if match is None:
        return None
    return int(match[1]), dt.date(int(match[2]), int(match[3]), 1)


# --- Sending -------------------------------------------------------------------------------------


def _absolute(path: str) -> str:
    return settings.SITE_URL + path


def _notification_mail(
    *, notification: TicketNotification, message_id: str
) -> EmailMultiAlternatives:
    """The e-mail of one notification: plain text and HTML, the ticket's number in the
    subject, an absolute link, the threading headers and a one-click unsubscribe link."""
    ticket = notification.ticket
    if notification.to_operator:
        ticket_url = _absolute(reverse("admin:tickets_ticket_change", args=[ticket.pk]))
        preferences_url = _absolute(reverse("admin:tickets_mail_preferences"))
    else:
        ticket_url = _absolute(reverse("clientarea:ticket", args=[ticket.pk]))
        preferences_url = _absolute(reverse("clientarea:notifications"))
    user_id = notification.user_id or 0
    token = unsubscribe_token(user_id=user_id, kind=MailKind.TICKET_MAIL)
    unsubscribe_url = _absolute(reverse("clientarea:unsubscribe", args=[token]))
    message = notification.ticket_message
    overage = None
    if notification.event == NotificationEvent.OVERAGE_REQUEST:
        overage = overage_request_read(notification.event_key)
    context = {
        "overage_month": f"{overage[1]:%Y-%m}" if overage else "",
        "portal_url": _absolute(reverse("clientarea:home")),
        "notification": notification,
        "event": notification.event,
        "ticket": ticket,
        "client": ticket.client,
        "user": notification.user,
        "message": message,
        "author": message.author if message else None,
        "ticket_url": ticket_url,
        "preferences_url": preferences_url,
        "unsubscribe_url": unsubscribe_url,
    }
    root = ticket_root_id(ticket.pk)
    headers = {
        "Message-ID": message_id,
        "In-Reply-To": root,
        "References": root,
        "Auto-Submitted": (
            "auto-replied" if notification.event == NotificationEvent.RECEIPT else "auto-generated"
        ),
        # Out-of-office and other auto-replies to our notifications only make noise.
        "X-Auto-Response-Suppress": "OOF, AutoReply",
    }
    if notification.event not in _PERSONAL:
        headers["List-Unsubscribe"] = f"<{unsubscribe_url}>"
        headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    mail = EmailMultiAlternatives(
        # The tag first and the subject as it is, always: changing it breaks threading.
        subject=f"[#{ticket.pk}] {' '.join(ticket.subject.split())}",
        body=render_to_string("tickets/email/notification.txt", context),
        from_email=settings.TICKET_MAIL_FROM_EMAIL,
        to=[notification.address],
        headers=headers,
    )
    mail.attach_alternative(
        render_to_string("tickets/email/notification.html", context), "text/html"
    )
    return mail


def notifications_send(
    *, notification_ids: list[int] | None = None, now: dt.datetime | None = None
) -> int:
    """Send the due notifications among ``notification_ids`` (None: every due one, the
    periodic run), each at most once: a notification is claimed (a conditional UPDATE,
    committed) before its e-mail goes out and marked sent right after, so a task delivered
    twice, two workers or the periodic run never send it again. A failure is retried with
    back-off by the periodic run, a refused address given up after
    TICKET_MAIL_REFUSED_MAX_ATTEMPTS; one whose recipient turned ticket e-mails off meanwhile
    is skipped. The loop is the one usage alerts and statements use
    (``supportbilling.mail.deliveries_send``). Call it outside a transaction. Returns the
    e-mails sent."""
    due = TicketNotification.objects.all()
    if notification_ids is not None:
        due = due.filter(pk__in=notification_ids)
    return deliveries_send(
        deliveries=due.select_related(
            "ticket__client", "ticket_message__author", "user__notification_preference"
        ).order_by("pk"),
        message=lambda notification: _notification_mail(
            notification=notification, message_id=_message_id_of(notification)
        ),
        max_attempts=settings.TICKET_MAIL_MAX_ATTEMPTS,
        refused_max_attempts=settings.TICKET_MAIL_REFUSED_MAX_ATTEMPTS,
        label="Ticket e-mail",
        logger=logger,
        now=now,
        limit=SEND_BATCH,
        skip_reason=_skip_reason,
        # The Message-ID is recorded before the e-mail goes out, so that replies to it find
        # their ticket even if the worker dies before it reports.
        claim_fields=lambda notification: {"message_id": _message_id_of(notification)},
    )


def _skip_reason(notification: TicketNotification) -> str:
    """Why a notification is no longer sent: its recipient turned ticket e-mails off (or the
    account was removed or deactivated) after the event was recorded."""
    user = notification.user
    if user is None or not user.is_active or not user_wants(user, MailKind.TICKET_MAIL):
        return "The recipient no longer receives ticket e-mails."
    return ""


def _message_id_of(notification: TicketNotification) -> str:
    """The notification's Message-ID: the one recorded at its first claim, else a new one."""
    return notification.message_id or notification_message_id(
        ticket_id=notification.ticket_id,
        mail_id=notification.pk,
        user_id=notification.user_id or 0,
    )
