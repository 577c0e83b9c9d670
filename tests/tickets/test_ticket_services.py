"""The helpdesk services: opening tickets, messages, statuses and their audit."""

import pytest
from django.core.exceptions import ValidationError

from packages.models import SubscriptionStatus
from tests.factories import ClientFactory, OperatorFactory, SubscriptionFactory, TicketFactory
from tickets.models import (
    MESSAGE_BODY_MAX_LENGTH,
    AuditAction,
    AuditEvent,
    MessageKind,
    Ticket,
    TicketStatus,
)
from tickets.services import ticket_create, ticket_message_add, ticket_status_set

pytestmark = pytest.mark.django_db


def test_a_ticket_opens_with_its_first_message():
    client = ClientFactory()
    subscription = SubscriptionFactory(client=client)
    ticket = ticket_create(
        client=client,
        subject="  Mail server down ",
        body="Nothing arrives since 9:00.",
        author=None,
        subscription=subscription,
    )
    assert ticket.subject == "Mail server down"
    assert ticket.status == TicketStatus.OPEN
    assert ticket.subscription == subscription
    assert ticket.track_time
    assert list(ticket.messages.values_list("kind", "body")) == [
        (MessageKind.CLIENT_REPLY, "Nothing arrives since 9:00.")
    ]


@pytest.mark.parametrize(
    ("fields", "field"),
    [({"subject": " "}, "subject"), ({"body": ""}, "body")],
)
def test_a_ticket_needs_a_subject_and_a_body(fields, field):
    with pytest.raises(ValidationError) as excinfo:
        ticket_create(
            client=ClientFactory(),
            author=None,
            **{"subject": "Help", "body": "Please", **fields},
        )
    assert field in excinfo.value.message_dict
    assert not Ticket.objects.exists()


@pytest.mark.parametrize("foreign", [True, False])
def test_a_ticket_only_takes_an_active_subscription_of_its_client(foreign):
    client = ClientFactory()
    subscription = (
        SubscriptionFactory()
        if foreign
        else SubscriptionFactory(client=client, status=SubscriptionStatus.TERMINATED)
    )
    with pytest.raises(ValidationError, match="active subscriptions"):
        ticket_create(
            client=client, subject="Help", body="Please", author=None, subscription=subscription
        )


def test_replies_move_the_status_and_a_client_reply_reopens_a_closed_ticket():
    ticket, operator = TicketFactory(), OperatorFactory()
    ticket_message_add(ticket=ticket, author=operator, body="Done.", kind="operator_reply")
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.ANSWERED
    ticket_status_set(ticket=ticket, status=TicketStatus.CLOSED, actor=operator)
    ticket_message_add(ticket=ticket, author=None, body="Broken again.", kind="client_reply")
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.CUSTOMER_REPLY
    actions = list(AuditEvent.objects.filter(ticket=ticket).values_list("action", flat=True))
    assert actions == [AuditAction.TICKET_CLOSED, AuditAction.TICKET_REOPENED]


def test_an_internal_note_keeps_the_status():
    ticket, operator = TicketFactory(), OperatorFactory()
    ticket_message_add(ticket=ticket, author=operator, body="Check logs", kind="internal_note")
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.OPEN


@pytest.mark.parametrize(
    ("body", "kind", "status"),
    [("", "operator_reply", None), ("Hi", "shout", None), ("Hi", "operator_reply", "gone")],
)
def test_bad_messages_are_refused(body, kind, status):
    ticket = TicketFactory()
    with pytest.raises(ValidationError):
        ticket_message_add(ticket=ticket, author=None, body=body, kind=kind, status_after=status)
    assert not ticket.messages.exists()


def test_a_message_longer_than_the_limit_is_refused_by_every_path():
    # given an open ticket; when a new ticket or a reply is 20,001 characters long
    too_long = "x" * (MESSAGE_BODY_MAX_LENGTH + 1)
    client = ClientFactory()
    with pytest.raises(ValidationError) as opened:
        ticket_create(client=client, subject="Help", body=too_long, author=None)
    ticket = TicketFactory(client=client, subscription=None)
    with pytest.raises(ValidationError) as replied:
        ticket_message_add(
            ticket=ticket, author=None, body=too_long, kind=MessageKind.OPERATOR_REPLY
        )
    # then both are refused with the limit named, and nothing is written
    for refusal in (opened, replied):
        assert refusal.value.message_dict == {
            "body": ["A message has at most 20000 characters; this one has 20001."]
        }
    assert Ticket.objects.get() == ticket and not ticket.messages.exists()
