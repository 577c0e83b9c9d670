"""Files of ticket messages: kept from e-mails with the size and kind checks, listed on the
message in the portal and the admin, and downloadable only by who may see the message."""

from email.message import EmailMessage

import pytest
from django.urls import reverse

from tests.factories import (
    AdminFactory,
    ClientFactory,
    ClientUserFactory,
    FinanceFactory,
    OperatorFactory,
    TicketFactory,
    TicketMessageFactory,
    UserFactory,
)
from tickets.attachments import attachment_add
from tickets.intake import inbound_mail_receive
from tickets.models import MessageKind, TicketAttachment

pytestmark = pytest.mark.django_db

ALICE = "alice@acme.test"


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    settings.ATTACHMENT_MAX_BYTES = 1_000


def mail_with_files(*files: tuple[str, str, bytes]) -> bytes:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = ALICE, "support@desk.test", "Files"
    message["Message-ID"] = "<files@acme.test>"
    message.set_content("See the files.")
    for filename, content_type, data in files:
        maintype, subtype = content_type.split("/")
        message.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return message.as_bytes()


def test_an_emails_files_are_kept_with_its_message_and_refused_ones_named():
    # Given Alice's e-mail with a PDF, a program, a file too large, and a name that is a path
    acme = ClientFactory(name="Acme")
    ClientUserFactory(client=acme, user__email=ALICE)
    raw = mail_with_files(
        ("report.pdf", "application/pdf", b"%PDF-1.4 report"),
        ("setup.exe", "application/octet-stream", b"MZ program"),
        ("huge.log", "text/plain", b"x" * 2_000),
        ("../../etc/cron.d/x.txt", "text/plain", b"just text"),
    )

    # When it is received
    row = inbound_mail_receive(raw=raw, mailbox="desk@imap.test:993/INBOX")

    # Then the PDF and the text file are kept with the ticket's message, under random names
    message = row.ticket.messages.get()
    kept = {a.filename: a for a in message.attachments.all()}
    assert set(kept) == {"report.pdf", "x.txt"}
    assert kept["report.pdf"].size == len(b"%PDF-1.4 report")
    assert kept["report.pdf"].content_type == "application/pdf"
    assert all(".." not in a.file.name and a.filename not in a.file.name for a in kept.values())
    with kept["report.pdf"].file.open("rb") as stored:
        assert stored.read() == b"%PDF-1.4 report"
    # And the refused ones are named on the inbound e-mail (they stay in its raw bytes)
    assert "setup.exe" in row.reason and "huge.log" in row.reason


@pytest.fixture
def files():
    """Acme's ticket with a client reply and an internal note, a file on each."""
    acme = ClientFactory(name="Acme")
    alice = ClientUserFactory(client=acme, user__email=ALICE).user
    ticket = TicketFactory(client=acme, subscription=None)
    reply = TicketMessageFactory(ticket=ticket, author=alice, kind=MessageKind.CLIENT_REPLY)
    note = TicketMessageFactory(ticket=ticket, kind=MessageKind.INTERNAL_NOTE, body="Note")
    public = attachment_add(
        message=reply, filename="screen.png", content_type="image/png", data=b"\x89PNG..."
    )
    private = attachment_add(
        message=note, filename="notes.txt", content_type="text/plain", data=b"internal"
    )
    return {"alice": alice, "ticket": ticket, "public": public, "private": private}


ROLES = {
    "anonymous": lambda f: None,
    "client user": lambda f: f["alice"],
    "other client's user": lambda f: ClientUserFactory(client=ClientFactory()).user,
    "operator": lambda f: OperatorFactory(),
    "finance": lambda f: FinanceFactory(),
    "administrator": lambda f: AdminFactory(),
    "staff without rights": lambda f: UserFactory(is_staff=True),
}
# What each role gets for the reply's file and the internal note's file.
MATRIX = {
    "anonymous": ("login", "login"),
    "client user": (200, 404),
    "other client's user": (404, 404),
    "operator": (200, 200),
    "finance": (200, 200),
    "administrator": (200, 200),
    "staff without rights": (404, 404),
}


@pytest.mark.parametrize("role", MATRIX)
def test_who_may_download_which_file(client, files, role):
    user = ROLES[role](files)
    if user is not None:
        client.force_login(user)

    outcomes = []
    for attachment in (files["public"], files["private"]):
        response = client.get(reverse("clientarea:attachment", args=[attachment.pk]))
        if response.status_code == 302:
            assert "/login/" in response["Location"]
            outcomes.append("login")
        else:
            outcomes.append(response.status_code)
        if response.status_code == 200:
            assert response["Content-Disposition"].startswith("attachment;")
            assert response["X-Content-Type-Options"] == "nosniff"
            assert b"".join(response.streaming_content)
    assert tuple(outcomes) == MATRIX[role]


def test_a_file_of_an_unsafe_kind_is_served_as_bytes(client, files):
    message = files["public"].message
    page = attachment_add(message=message, filename="a.bin", content_type="text/x-c", data=b"x")
    client.force_login(OperatorFactory())

    response = client.get(reverse("clientarea:attachment", args=[page.pk]))

    assert response["Content-Type"] == "application/octet-stream"


def test_the_portal_lists_the_replys_file(client, files):
    client.force_login(files["alice"])

    page = client.get(reverse("clientarea:ticket", args=[files["ticket"].pk])).content.decode()

    assert "screen.png" in page
    assert reverse("clientarea:attachment", args=[files["public"].pk]) in page
    assert "notes.txt" not in page


def test_the_admin_ticket_page_lists_every_messages_file(client, files):
    client.force_login(OperatorFactory())

    page = client.get(
        reverse("admin:tickets_ticket_change", args=[files["ticket"].pk])
    ).content.decode()

    assert "screen.png" in page and "notes.txt" in page
    assert TicketAttachment.objects.count() == 2
