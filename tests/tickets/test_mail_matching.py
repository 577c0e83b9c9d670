"""Which ticket and client an e-mail is filed under (tickets/intake.py), without a mailbox:
the signed Message-ID, the subject tag, the sender's address and the client's subscription."""

from email.message import EmailMessage

import pytest

from tests.factories import (
    ClientFactory,
    ClientUserFactory,
    OperatorFactory,
    SubscriptionFactory,
    TicketFactory,
)
from tickets.intake import inbound_mail_receive
from tickets.models import InboundStatus, Ticket
from tickets.notifications import notification_message_id

pytestmark = pytest.mark.django_db

ALICE = "alice@acme.test"
_counter = iter(range(1, 1000))


def receive(*, sender: str, subject: str = "Help", headers: dict[str, str] | None = None):
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = sender, "support@desk.test", subject
    message["Message-ID"] = f"<m{next(_counter)}@mail.test>"
    for name, value in (headers or {}).items():
        message[name] = value
    message.set_content("Please help.")
    row = inbound_mail_receive(raw=message.as_bytes(), mailbox="desk@imap.test:993/INBOX")
    assert row is not None
    return row


@pytest.fixture
def acme():
    client = ClientFactory(name="Acme")
    alice = ClientUserFactory(client=client, user__email=ALICE).user
    return client, alice


def test_a_signed_reply_from_outside_the_tickets_client_waits_for_an_operator(acme):
    # Given Acme's ticket and our genuine e-mail about it, forwarded to someone else
    client, alice = acme
    ticket = TicketFactory(client=client)
    ours = notification_message_id(ticket_id=ticket.pk, mail_id=1, user_id=alice.pk)

    # When that someone replies
    row = receive(sender="colleague@elsewhere.test", headers={"In-Reply-To": ours})

    # Then nothing is added to the ticket; the reason names it
    assert row.status == InboundStatus.UNMATCHED
    assert f"ticket #{ticket.pk}" in row.reason
    assert ticket.messages.count() == 0


def test_the_tag_of_another_clients_ticket_opens_a_ticket_for_the_senders_own_client(acme):
    # Given Acme's ticket, and Bob of another client who types its tag
    client, alice = acme
    ticket = TicketFactory(client=client)
    other = ClientFactory(name="Other")
    ClientUserFactory(client=other, user__email="bob@other.test")

    # When Bob's mail arrives
    row = receive(sender="bob@other.test", subject=f"[#{ticket.pk}] me too")

    # Then it is a new ticket of Bob's client; Acme's ticket is untouched
    assert row.status == InboundStatus.PROCESSED
    assert row.ticket.client == other and row.ticket != ticket
    assert ticket.messages.count() == 0


def test_an_address_of_users_of_two_clients_is_left_to_an_operator(acme):
    ClientUserFactory(client=ClientFactory(), user__email=ALICE.upper())

    row = receive(sender=ALICE)

    assert row.status == InboundStatus.UNMATCHED and "2 clients" in row.reason
    assert Ticket.objects.count() == 0


def test_an_operators_mail_opens_no_ticket(acme):
    OperatorFactory(email="op@desk.test")

    row = receive(sender="op@desk.test")

    assert row.status == InboundStatus.UNMATCHED and Ticket.objects.count() == 0


def test_a_client_with_two_active_subscriptions_gets_a_ticket_without_one(acme):
    client, alice = acme
    SubscriptionFactory(client=client)
    SubscriptionFactory(client=client)

    row = receive(sender=ALICE)

    assert row.ticket.client == client and row.ticket.subscription is None


def test_auto_submitted_no_is_a_person_writing(acme):
    row = receive(sender=ALICE, headers={"Auto-Submitted": "no"})

    assert row.status == InboundStatus.PROCESSED
