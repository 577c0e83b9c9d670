"""The "Unmatched mail" admin list: who sees it, filing an e-mail under a client (it opens a
ticket and the client gets the receipt), discarding one, and the page showing sender HTML as
text only."""

from email.message import EmailMessage

import pytest
from django.urls import reverse

from tests.factories import (
    ClientFactory,
    ClientUserFactory,
    FinanceFactory,
    OperatorFactory,
)
from tickets.intake import inbound_mail_receive, inbound_mail_refuse
from tickets.models import InboundMail, InboundStatus, NotificationEvent, TicketNotification

pytestmark = pytest.mark.django_db

LIST = "admin:tickets_unmatchedmail_changelist"


def raw_mail(*, sender: str, subject: str, text: str = "Hello.", html: str | None = None) -> bytes:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = sender, "support@desk.test", subject
    message["Message-ID"] = f"<{subject.replace(' ', '-')}@mail.test>"
    if html is None:
        message.set_content(text)
    else:
        message.set_content(html, subtype="html")
    return message.as_bytes()


def receive(raw: bytes) -> InboundMail:
    row = inbound_mail_receive(raw=raw, mailbox="desk@imap.test:993/INBOX")
    assert row is not None
    return row


@pytest.fixture
def operator_client(client):
    client.force_login(OperatorFactory())
    return client


def test_the_list_shows_what_waits_for_an_operator_only(
    operator_client, django_assert_max_num_queries
):
    # Given an unknown sender's mail, an auto-reply, a refused one and one filed as a ticket
    acme = ClientFactory(name="Acme")
    ClientUserFactory(client=acme, user__email="alice@acme.test")
    receive(raw_mail(sender="stranger@new.test", subject="Question"))
    auto = raw_mail(sender="alice@acme.test", subject="Out of office")
    receive(auto.replace(b"Subject:", b"Auto-Submitted: auto-replied\nSubject:", 1))
    inbound_mail_refuse(
        headers=raw_mail(sender="big@new.test", subject="Huge").split(b"\n\n")[0],
        size=30_000_000,
        mailbox="desk@imap.test:993/INBOX",
        uidvalidity=1,
        uid=9,
    )
    receive(raw_mail(sender="alice@acme.test", subject="Filed"))

    # When an operator opens the list
    with django_assert_max_num_queries(12):
        response = operator_client.get(reverse(LIST))

    # Then the three to review are listed, with their reasons; the filed one is not
    page = response.content.decode()
    assert response.status_code == 200
    assert "Question" in page and "Out of office" in page and "Huge" in page
    assert "Filed" not in page
    assert "Auto-Submitted: auto-replied" in page and "Too large" in page


def test_an_operator_files_an_unknown_senders_mail_under_a_client(
    operator_client, django_capture_on_commit_callbacks
):
    # Given a mail from an address no portal user has, and the client it belongs to
    acme = ClientFactory(name="Acme")
    alice = ClientUserFactory(client=acme, user__email="alice@acme.test").user
    row = receive(raw_mail(sender="alice.private@home.test", subject="VPN down", text="Help!"))

    # When the operator opens a ticket for Acme from it
    with django_capture_on_commit_callbacks(execute=True):
        response = operator_client.post(
            reverse(LIST),
            {"action": "assign_to_client", "_selected_action": [row.pk], "client": acme.pk},
        )

    # Then a ticket of Acme with the mail's subject and text; Acme's users get the receipt
    assert response.status_code == 302
    row.refresh_from_db()
    assert row.status == InboundStatus.PROCESSED and row.ticket is not None
    ticket = row.ticket
    assert (ticket.client, ticket.subject) == (acme, "VPN down")
    assert ticket.messages.get().body == "Help!"
    receipt = TicketNotification.objects.get(event=NotificationEvent.RECEIPT)
    assert receipt.user == alice


def test_filing_without_a_client_changes_nothing(operator_client):
    row = receive(raw_mail(sender="someone@new.test", subject="Hi"))

    response = operator_client.post(
        reverse(LIST), {"action": "assign_to_client", "_selected_action": [row.pk]}, follow=True
    )

    assert "Choose the client first." in response.content.decode()
    row.refresh_from_db()
    assert row.status == InboundStatus.UNMATCHED and row.ticket is None


def test_an_operator_discards_a_mail_and_it_leaves_the_list(operator_client):
    row = receive(raw_mail(sender="spam@new.test", subject="Buy now"))

    operator_client.post(reverse(LIST), {"action": "discard", "_selected_action": [row.pk]})

    row.refresh_from_db()
    assert row.status == InboundStatus.DISCARDED and row.handled_by is not None
    assert "Buy now" not in operator_client.get(reverse(LIST)).content.decode()


def test_the_mail_page_shows_sender_html_as_text(operator_client):
    row = receive(
        raw_mail(
            sender="x@new.test",
            subject="Html",
            html="<p>Hi</p><script>alert('x')</script><img src=x onerror=alert(1)>",
        )
    )

    page = operator_client.get(
        reverse("admin:tickets_unmatchedmail_change", args=[row.pk])
    ).content.decode()

    assert "Hi" in page
    assert "<script>alert" not in page and "onerror" not in page


@pytest.mark.parametrize(
    "make, status", [(FinanceFactory, 403), (lambda: ClientUserFactory().user, 302)]
)
def test_finance_and_client_users_cannot_see_the_mail(client, make, status):
    row = receive(raw_mail(sender="someone@new.test", subject="Private"))
    client.force_login(make())

    for url in (reverse(LIST), reverse("admin:tickets_inboundmail_change", args=[row.pk])):
        assert client.get(url).status_code == status
