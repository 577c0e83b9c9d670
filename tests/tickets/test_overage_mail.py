"""The e-mail that asks a client to approve extra hours, and the reply that approves them
(tickets/notifications.py, tickets/intake.py; docs/email.md): through a real SMTP server and
the intake's own parsing of the reply."""

import datetime as dt
from decimal import Decimal
from email.message import EmailMessage, Message

import pytest

from packages.models import ApprovalChannel, OverageApproval, OveragePolicy
from tests.factories import (
    ClientFactory,
    ClientUserFactory,
    OperatorFactory,
    SubscriptionFactory,
    TicketFactory,
    package_with_prices,
)
from tickets.intake import inbound_mail_receive
from tickets.models import AuditAction, AuditEvent, InboundStatus, MessageKind
from tickets.services import time_entry_log
from tickets.services_overage import subscription_client_cap_set, subscription_overage_set

pytestmark = pytest.mark.django_db

ALICE = "alice@acme.test"
HOST = "support.example.test"
OCTOBER = dt.date(2026, 10, 1)
_counter = iter(range(1, 1000))


@pytest.fixture(autouse=True)
def _setup(celery_eager, settings, time_machine):
    settings.SITE_URL = f"https://{HOST}"
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    time_machine.move_to(dt.datetime(2026, 10, 20, 9, 0, tzinfo=dt.UTC), tick=False)


@pytest.fixture
def asked(smtp_server, django_capture_on_commit_callbacks):
    """Acme's 10 h subscription under ``approve``; an operator logged 10.5 h on a ticket, the
    last half hour pending approval, so Alice was asked by e-mail."""
    client = ClientFactory(name="Acme", currency="EUR")
    alice = ClientUserFactory(client=client, user__email=ALICE).user
    subscription = SubscriptionFactory(
        client=client,
        package=package_with_prices({"EUR": ("500.00", "60.00")}),
        start_date=dt.date(2026, 9, 1),
    )
    subscription_overage_set(
        subscription=subscription, policy=OveragePolicy.APPROVE, cap_hours=None, actor=None
    )
    ticket = TicketFactory(client=client, subscription=subscription, subject="Mail server")
    operator = OperatorFactory(email="op@desk.test")
    with django_capture_on_commit_callbacks(execute=True):
        time_entry_log(ticket=ticket, operator=operator, hours="10", work_date=OCTOBER)
        time_entry_log(
            ticket=ticket, operator=operator, hours="0.5", work_date=OCTOBER, pending_ok=True
        )
    [request] = requests_to_alice(smtp_server)
    return subscription, ticket, alice, request


def requests_to_alice(smtp_server) -> list[Message]:
    """Alice's ticket e-mails (she also gets the usage alert at 100 %)."""
    return [m for m in smtp_server.to(ALICE) if m["Subject"].startswith("[#")]


def text_of(message: Message) -> str:
    for part in message.walk():
        if part.get_content_type() == "text/plain":
            return part.get_payload(decode=True).decode()
    return ""


def reply(request: Message, body: str, sender: str = ALICE):
    message = EmailMessage()
    message["From"], message["To"] = sender, "support@desk.test"
    message["Subject"] = "Re: " + " ".join(str(request["Subject"]).split())
    message["Message-ID"] = f"<r{next(_counter)}@mail.test>"
    message["In-Reply-To"] = "".join(str(request["Message-ID"]).split())
    message["References"] = " ".join(f"{request['References']} {request['Message-ID']}".split())
    message.set_content(body + "\n\nOn Tuesday you wrote:\n> " + text_of(request)[:60])
    return inbound_mail_receive(raw=message.as_bytes(), mailbox="desk@imap.test:993/INBOX")


def test_the_request_says_how_to_approve_and_goes_once_a_month(
    asked, smtp_server, django_capture_on_commit_callbacks
):
    subscription, ticket, alice, request = asked
    assert request["Subject"] == f"[#{ticket.pk}] Mail server"
    text = text_of(request)
    assert "beyond the hours included in your support package for 2026-10" in text
    assert "APPROVE 3" in text
    # more pending time the same month asks nobody again
    with django_capture_on_commit_callbacks(execute=True):
        time_entry_log(
            ticket=ticket,
            operator=OperatorFactory(),
            hours="0.25",
            work_date=OCTOBER,
            pending_ok=True,
        )
    assert len(requests_to_alice(smtp_server)) == 1


def test_a_clear_approval_in_the_reply_is_recorded(asked):
    subscription, ticket, alice, request = asked
    row = reply(request, "APPROVE 3")
    assert row.status == InboundStatus.PROCESSED
    approval = OverageApproval.objects.get()
    assert (approval.hours, approval.month) == (Decimal("3.00"), OCTOBER)
    assert (approval.approved_by, approval.channel) == (alice, ApprovalChannel.EMAIL)
    event = AuditEvent.objects.get(action=AuditAction.OVERAGE_APPROVED)
    assert event.detail["channel"] == "email"
    note = ticket.messages.filter(kind=MessageKind.INTERNAL_NOTE).get()
    assert note.body == "Recorded from the reply: 3.00 extra hours approved for 2026-10."
    # the reply itself is on the ticket, as any reply
    assert ticket.messages.filter(kind=MessageKind.CLIENT_REPLY).count() == 1


@pytest.mark.parametrize("body", ["Yes, approve it", "approve 3 or 4", "Can we talk first?"])
def test_anything_unclear_is_left_to_a_person(asked, body):
    subscription, ticket, alice, request = asked
    row = reply(request, body)
    assert row.status == InboundStatus.PROCESSED
    assert not OverageApproval.objects.exists()
    assert ticket.messages.filter(kind=MessageKind.CLIENT_REPLY).count() == 1
    assert not ticket.messages.filter(kind=MessageKind.INTERNAL_NOTE).exists()


def test_a_refused_approval_is_explained_to_the_helpdesk(asked):
    subscription, ticket, alice, request = asked
    subscription_client_cap_set(subscription=subscription, cap_hours="2", user=alice)
    reply(request, "approve 3h")
    assert not OverageApproval.objects.exists()
    note = ticket.messages.filter(kind=MessageKind.INTERNAL_NOTE).get()
    assert "approval of 3 extra hours for 2026-10, which was not recorded" in note.body
    assert "approve at most 2.00 h more" in note.body


def test_someone_outside_the_client_cannot_approve_by_forwarding(asked):
    subscription, ticket, alice, request = asked
    ClientUserFactory(client=ClientFactory(), user__email="mallory@other.test")
    row = reply(request, "APPROVE 40", sender="mallory@other.test")
    assert row.status == InboundStatus.UNMATCHED
    assert not OverageApproval.objects.exists()
