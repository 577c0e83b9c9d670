"""Mail intake against a real IMAP server (Dovecot, tests/imap.py) and a real SMTP server
for the receipts (tests/mail.py): which mail becomes a ticket, a reply or a row to review,
and that nothing is lost or doubled (docs/email.md)."""

import threading
import time
from email.message import EmailMessage
from email.utils import make_msgid

import pytest
from django.core.management import call_command
from django.utils import timezone
from imap_tools import MailBoxUnencrypted

from conftest import need_service
from tests.factories import (
    ClientFactory,
    ClientUserFactory,
    OperatorFactory,
    SubscriptionFactory,
    TicketFactory,
)
from tests.imap import dovecot_available, dovecot_running
from tickets.intake import inbound_mail_receive, mail_intake_run, mailbox_name
from tickets.models import (
    InboundMail,
    InboundStatus,
    MessageKind,
    NotificationEvent,
    Ticket,
    TicketMessage,
    TicketNotification,
    TicketStatus,
)
from tickets.notifications import notification_message_id

pytestmark = pytest.mark.django_db(transaction=True)

ALICE = "alice@client.test"
OPERATOR = "op@desk.test"
HOST = "support.example.test"
DONE = "Processed"


@pytest.fixture
def imap():
    """Dovecot on a free port (its own configuration and mail in a temporary directory)."""
    if not dovecot_available():
        need_service("Dovecot (apt-get install dovecot-imapd)")
    yield from dovecot_running()


@pytest.fixture
def mailbox(imap, settings, celery_eager, smtp_server):
    """The intake settings pointing at Dovecot's INBOX; receipts go to the SMTP server."""
    settings.SITE_URL = f"https://{HOST}"
    settings.MAIL_INTAKE_HOST, settings.MAIL_INTAKE_PORT = imap.host, imap.port
    settings.MAIL_INTAKE_SSL = settings.MAIL_INTAKE_STARTTLS = False
    settings.MAIL_INTAKE_USER, settings.MAIL_INTAKE_PASSWORD = imap.user, imap.password
    settings.MAIL_INTAKE_FOLDER, settings.MAIL_INTAKE_DONE_FOLDER = "INBOX", DONE
    settings.MAIL_INTAKE_MAX_BYTES = 100_000
    return imap


@pytest.fixture
def acme():
    """A client with one portal user (Alice) and one active subscription; an operator."""
    client = ClientFactory(name="Acme")
    alice = ClientUserFactory(client=client, user__email=ALICE).user
    subscription = SubscriptionFactory(client=client)
    operator = OperatorFactory(email=OPERATOR)
    return client, alice, subscription, operator


def deliver(server, *messages: EmailMessage | bytes, folder: str = "INBOX") -> None:
    with MailBoxUnencrypted(server.host, server.port).login(server.user, server.password) as box:
        for message in messages:
            raw = message if isinstance(message, bytes) else message.as_bytes()
            box.append(raw, folder)


def folder_count(server, folder: str) -> int:
    with MailBoxUnencrypted(server.host, server.port).login(
        server.user, server.password, initial_folder=None
    ) as box:
        if not box.folder.exists(folder):
            return 0
        return int(box.folder.status(folder, ["MESSAGES"])["MESSAGES"])


def mail(
    *,
    sender: str = ALICE,
    subject: str = "Printer on fire",
    text: str | None = "The printer in room 4 is on fire.",
    html: str | None = None,
    headers: dict[str, str] | None = None,
    message_id: str | None = "auto",
) -> EmailMessage:
    message = EmailMessage()
    message["From"] = f"Alice <{sender}>"
    message["To"] = "support@desk.test"
    message["Subject"] = subject
    if message_id == "auto":
        message["Message-ID"] = make_msgid(domain="client.test")
    elif message_id:
        message["Message-ID"] = message_id
    for name, value in (headers or {}).items():
        message[name] = value
    if text is not None:
        message.set_content(text)
    if html is not None:
        if text is None:
            message.set_content(html, subtype="html")
        else:
            message.add_alternative(html, subtype="html")
    return message


def receipts(smtp_server) -> list[str]:
    return [
        message["Subject"]
        for _, message in smtp_server.received
        if message["Auto-Submitted"] == "auto-replied"
    ]


def test_a_plain_mail_from_a_portal_user_opens_a_ticket_and_sends_the_receipt(
    mailbox, acme, smtp_server
):
    # Given Alice's e-mail in the inbox (her address in other case)
    client, alice, subscription, operator = acme
    deliver(mailbox, mail(sender="Alice@Client.TEST"))

    # When the intake runs
    run = mail_intake_run()

    # Then a ticket of Acme on its active subscription, her text as the first message
    assert run.read == 1
    ticket = Ticket.objects.get()
    assert (ticket.client, ticket.subscription, ticket.subject) == (
        client,
        subscription,
        "Printer on fire",
    )
    message = ticket.messages.get()
    assert (message.author, message.kind) == (alice, MessageKind.CLIENT_REPLY)
    assert message.body == "The printer in room 4 is on fire."
    row = InboundMail.objects.get()
    assert (row.status, row.ticket) == (InboundStatus.PROCESSED, ticket)
    assert row.ticket_message == message
    assert row.sender == ALICE and b"room 4" in bytes(row.raw) and row.uidvalidity and row.uid
    # And Alice got the receipt, the operator the news; the mail left the inbox
    assert receipts(smtp_server) == [f"[#{ticket.pk}] Printer on fire"]
    assert [r for r, _ in smtp_server.received] == [[ALICE], [OPERATOR]]
    assert (folder_count(mailbox, "INBOX"), folder_count(mailbox, DONE)) == (0, 1)


def test_a_mail_in_a_client_users_name_is_not_relayed_to_the_other_users(
    mailbox, acme, smtp_server
):
    # Given a second user at Acme, and a mail that claims to come from Alice (a From header
    # proves nothing) with a phishing text
    client, alice, _, _ = acme
    ClientUserFactory(client=client, user__email="bob@acme.test")
    deliver(mailbox, mail(subject="Invoice", text="Pay here: http://evil.test/login"))

    # When the intake runs
    mail_intake_run()

    # Then the receipt goes to Alice's address only and does not carry the text
    assert [r for r, m in smtp_server.received if m["Auto-Submitted"] == "auto-replied"] == [
        [ALICE]
    ]
    to_alice = [message for rcpts, message in smtp_server.received if ALICE in rcpts]
    assert to_alice and all(b"evil.test" not in message.as_bytes() for message in to_alice)


def test_polling_again_creates_nothing_more_and_a_copy_of_a_mail_is_not_a_second_ticket(
    mailbox, acme
):
    # Given one mail delivered twice with the same Message-ID
    first = mail()
    deliver(mailbox, first, first)

    # When the intake runs twice
    mail_intake_run()
    again = mail_intake_run()

    # Then one ticket, one message, one stored mail; both copies left the inbox
    assert again.read == 0
    assert (Ticket.objects.count(), TicketMessage.objects.count()) == (1, 1)
    assert InboundMail.objects.count() == 1
    assert (folder_count(mailbox, "INBOX"), folder_count(mailbox, DONE)) == (0, 2)


def test_a_mail_stored_before_a_crash_is_only_moved_on_the_next_run(mailbox, acme):
    # Given a mail stored and filed by a run that died before moving it
    message = mail()
    deliver(mailbox, message)
    inbound_mail_receive(raw=message.as_bytes(), mailbox="another run")

    # When the intake runs
    run = mail_intake_run()

    # Then no second ticket; the mail is moved out of the inbox
    assert run.read == 1
    assert Ticket.objects.count() == 1 and TicketMessage.objects.count() == 1
    assert folder_count(mailbox, "INBOX") == 0


def test_two_pollers_at_once_open_one_ticket(postgres, mailbox, acme):
    # Given three mails waiting
    deliver(mailbox, mail(subject="One"), mail(subject="Two"), mail(subject="Three"))

    # When two pollers run at the same moment
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def poll() -> None:
        from django.db import connection

        try:
            barrier.wait()
            mail_intake_run()
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=poll) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    # Then each mail became exactly one ticket
    assert errors == []
    mail_intake_run()  # whatever the skipped poller left
    assert sorted(Ticket.objects.values_list("subject", flat=True)) == ["One", "Three", "Two"]
    assert InboundMail.objects.count() == 3


def test_html_only_and_iso_8859_1_mail_become_readable_text(mailbox, acme):
    # Given an HTML-only mail and a Latin-1 one
    html = mail(
        subject="HTML",
        text=None,
        html="<html><head><style>p{}</style></head><body><p>Bonjour&nbsp;!</p>"
        "<p>Le <b>serveur</b> est en panne.</p><script>alert(1)</script></body></html>",
    )
    latin = (
        b"From: Alice <alice@client.test>\r\nTo: support@desk.test\r\n"
        b"Subject: =?iso-8859-1?q?Gr=FC=DFe?=\r\nMessage-ID: <latin@client.test>\r\n"
        b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=iso-8859-1\r\n"
        b"Content-Transfer-Encoding: 8bit\r\n\r\nDie Stra\xdfe ist gesperrt. \xc4rger!\r\n"
    )
    deliver(mailbox, html, latin)

    # When the intake runs
    mail_intake_run()

    # Then the HTML is text without markup or script, the Latin-1 text decoded
    bodies = dict(TicketMessage.objects.values_list("ticket__subject", "body"))
    assert bodies["HTML"] == "Bonjour !\n\nLe serveur est en panne."
    assert bodies["Grüße"] == "Die Straße ist gesperrt. Ärger!"


def test_a_multipart_mail_keeps_its_text_and_its_attachment(mailbox, acme):
    # Given a mail with text and a PDF attached
    message = mail(subject="Invoice question", text="See the attached invoice.")
    message.add_attachment(
        b"%PDF-1.4 fake", maintype="application", subtype="pdf", filename="a.pdf"
    )
    deliver(mailbox, message)

    # When the intake runs
    mail_intake_run()

    # Then the ticket's message is the text, the PDF is kept with it; the whole mail is stored
    message = TicketMessage.objects.get()
    assert message.body == "See the attached invoice."
    pdf = message.attachments.get()
    assert (pdf.filename, pdf.content_type, pdf.size) == ("a.pdf", "application/pdf", 13)
    assert b"a.pdf" in bytes(InboundMail.objects.get().raw)


def test_a_reply_to_our_notification_lands_on_its_ticket_without_the_quote(
    mailbox, acme, smtp_server
):
    # Given Alice's closed ticket and the Message-ID of the e-mail we sent her about it
    client, alice, subscription, operator = acme
    ticket = TicketFactory(client=client, subscription=subscription, status=TicketStatus.CLOSED)
    ours = notification_message_id(ticket_id=ticket.pk, mail_id=7, user_id=alice.pk)
    reply = mail(
        subject="Re: a subject she changed",
        text="Thanks, it works again.\n\nOn Mon, Support wrote:\n> It is fixed.\n> Regards",
        headers={"In-Reply-To": ours, "References": f"<ticket-{ticket.pk}@{HOST}> {ours}"},
    )
    deliver(mailbox, reply)

    # When the intake runs
    mail_intake_run()

    # Then her reply (without the quote) is on the ticket, which is reopened
    message = ticket.messages.get()
    assert (message.author, message.kind, message.body) == (
        alice,
        MessageKind.CLIENT_REPLY,
        "Thanks, it works again.",
    )
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.CUSTOMER_REPLY
    assert Ticket.objects.count() == 1
    # And the helpdesk hears of it; Alice gets no receipt
    assert receipts(smtp_server) == []
    assert TicketNotification.objects.filter(event=NotificationEvent.CLIENT_REPLY).count() == 1
    # And the full mail, quote included, is kept
    assert b"It is fixed" in bytes(InboundMail.objects.get().raw)


def test_a_forged_signature_or_a_subject_tag_from_a_stranger_opens_no_reply(mailbox, acme):
    # Given Acme's ticket; a reply whose Message-ID signature is wrong, from a stranger
    client, alice, subscription, operator = acme
    ticket = TicketFactory(client=client, subscription=subscription)
    forged = f"<ticket-{ticket.pk}.mail-1.user-{alice.pk}.00000000000000000000@{HOST}>"
    stranger = "mallory@evil.test"
    deliver(
        mailbox,
        mail(sender=stranger, subject="Re: hi", headers={"In-Reply-To": forged}),
        mail(sender=stranger, subject=f"[#{ticket.pk}] let me in"),
    )

    # When the intake runs
    mail_intake_run()

    # Then nothing was added to the ticket: both wait in the unmatched list
    assert ticket.messages.count() == 0 and Ticket.objects.count() == 1
    assert (
        list(InboundMail.objects.values_list("status", flat=True)) == [InboundStatus.UNMATCHED] * 2
    )


def test_the_subject_tag_of_a_client_user_adds_to_the_ticket(mailbox, acme):
    # Given Alice's ticket and her new mail with its tag in a German reply subject
    client, alice, subscription, operator = acme
    ticket = TicketFactory(client=client, subscription=subscription, subject="VPN")
    deliver(mailbox, mail(subject=f"AW: [#{ticket.pk}] VPN", text="Still broken."))

    # When the intake runs
    mail_intake_run()

    # Then it is a reply on that ticket
    assert ticket.messages.get().body == "Still broken."
    assert Ticket.objects.count() == 1


@pytest.mark.parametrize(
    "headers",
    [
        {"Auto-Submitted": "auto-replied"},
        {"Precedence": "bulk"},
        {"X-Autoreply": "yes"},
        {"List-Id": "<users.lists.test>"},
        {"Return-Path": "<>"},
    ],
    ids=["auto-submitted", "precedence", "x-autoreply", "list-id", "empty-return-path"],
)
def test_auto_replies_and_list_mail_open_nothing_and_get_no_receipt(
    mailbox, acme, smtp_server, headers
):
    # Given an out-of-office reply (or list mail) from Alice
    deliver(mailbox, mail(subject="Out of office", headers=headers))

    # When the intake runs
    mail_intake_run()

    # Then no ticket, no e-mail; it is stored as automatic for review
    assert Ticket.objects.count() == 0
    assert smtp_server.received == []
    row = InboundMail.objects.get()
    assert row.status == InboundStatus.AUTO and row.reason


def test_a_bounce_and_our_own_mail_coming_back_open_nothing(mailbox, acme, smtp_server):
    # Given a delivery report from the mailer daemon, and one of our own e-mails echoed back
    client, alice, subscription, operator = acme
    bounce = EmailMessage()
    bounce["From"] = "Mail Delivery System <MAILER-DAEMON@client.test>"
    bounce["Subject"] = "Undelivered Mail Returned to Sender"
    bounce["Message-ID"] = "<bounce-1@client.test>"
    bounce.set_content("Your message could not be delivered.")
    bounce.add_attachment("Reporting-MTA: dns; mx.client.test\n", subtype="delivery-status")
    bounce.replace_header("Content-Type", bounce["Content-Type"].replace("mixed", "report"))
    ticket = TicketFactory(client=client, subscription=subscription)
    echo = mail(
        message_id=notification_message_id(ticket_id=ticket.pk, mail_id=3, user_id=alice.pk)
    )
    deliver(mailbox, bounce, echo)

    # When the intake runs
    mail_intake_run()

    # Then neither opens a ticket or a reply, nor gets an answer
    assert Ticket.objects.count() == 1 and ticket.messages.count() == 0
    assert smtp_server.received == []
    assert set(InboundMail.objects.values_list("status", flat=True)) == {InboundStatus.AUTO}


def test_an_oversized_mail_is_refused_with_its_headers_kept_and_moved_out(mailbox, acme, settings):
    # Given a mail over the (low) size limit
    settings.MAIL_INTAKE_MAX_BYTES = 2_000
    deliver(mailbox, mail(subject="Huge log", text="x" * 5_000))

    # When the intake runs
    mail_intake_run()

    # Then no ticket; a refused row with the headers only, out of the inbox
    assert Ticket.objects.count() == 0
    row = InboundMail.objects.get()
    assert row.status == InboundStatus.REFUSED and "2,000" in row.reason
    assert row.subject == "Huge log" and row.size > 5_000
    assert b"xxxx" not in bytes(row.raw)
    assert (folder_count(mailbox, "INBOX"), folder_count(mailbox, DONE)) == (0, 1)


def test_a_30_mb_mail_is_refused_at_the_default_limit_without_being_downloaded(
    mailbox, acme, settings
):
    # Given the default size limit (25 MB) and a real 30 MB mail from a known client user
    settings.MAIL_INTAKE_MAX_BYTES = 25 * 1024 * 1024
    deliver(mailbox, mail(subject="Core dump", text="core " * (6 * 1024 * 1024)))

    # When the intake runs
    mail_intake_run()

    # Then it opens nothing, says why, keeps only its headers and leaves the inbox
    assert Ticket.objects.count() == 0
    row = InboundMail.objects.get()
    assert row.status == InboundStatus.REFUSED and "26,214,400" in row.reason
    assert row.size > 30_000_000 and len(bytes(row.raw)) < 10_000
    assert (folder_count(mailbox, "INBOX"), folder_count(mailbox, DONE)) == (0, 1)


def test_an_unknown_sender_and_a_mail_without_message_id_wait_for_review(mailbox, acme):
    # Given a stranger's mail without a Message-ID, delivered twice
    stranger = mail(sender="someone@new.test", message_id=None)
    deliver(mailbox, stranger, stranger)

    # When the intake runs
    mail_intake_run()

    # Then one unmatched row keyed by the hash of the mail, no ticket
    row = InboundMail.objects.get()
    assert row.status == InboundStatus.UNMATCHED and row.message_id.startswith("sha256:")
    assert "someone@new.test" in row.reason
    assert Ticket.objects.count() == 0


def test_intake_is_off_without_a_host(settings):
    # Given no mailbox configured (the embedded demo)
    settings.MAIL_INTAKE_HOST = ""

    # When the periodic run comes
    run = mail_intake_run()

    # Then nothing happens
    assert run.read == 0 and InboundMail.objects.count() == 0


def test_the_mail_fetch_command_runs_the_intake(mailbox, acme, capsys):
    deliver(mailbox, mail())

    call_command("mail_fetch")

    assert "1 e-mails read." in capsys.readouterr().out
    assert Ticket.objects.count() == 1


def test_a_message_id_reused_for_another_mail_is_kept_for_review_not_dropped(mailbox, acme):
    # Given two different mails of Alice's that carry the same Message-ID
    deliver(
        mailbox,
        mail(subject="First", message_id="<same@client.test>"),
        mail(subject="Second", text="Something else.", message_id="<same@client.test>"),
    )

    # When the intake runs
    mail_intake_run()

    # Then the first opened a ticket; the second is stored for an operator, not lost
    assert list(Ticket.objects.values_list("subject", flat=True)) == ["First"]
    second = InboundMail.objects.get(subject="Second")
    assert second.status == InboundStatus.UNMATCHED and "used before" in second.reason


def test_a_poller_finding_the_mailbox_locked_skips_its_run(postgres, mailbox, acme):
    # Given a mail waiting, and another poller holding the mailbox's lock
    from tickets.intake import _mailbox_lock, mailbox_name

    deliver(mailbox, mail())
    held, release = threading.Event(), threading.Event()

    def other_poller() -> None:
        from django.db import connection

        try:
            with _mailbox_lock(mailbox_name()) as locked:
                assert locked
                held.set()
                release.wait(30)
        finally:
            connection.close()

    thread = threading.Thread(target=other_poller)
    thread.start()
    assert held.wait(30)

    # When this poller runs
    try:
        run = mail_intake_run()
    finally:
        release.set()
        thread.join(30)

    # Then it does nothing: the mail waits for the lock's holder
    assert run.skipped and run.read == 0
    assert Ticket.objects.count() == 0 and folder_count(mailbox, "INBOX") == 1


def test_a_uid_the_server_reused_without_a_new_uidvalidity_is_not_taken_for_an_old_mail(
    mailbox, acme
):
    # Given a new mail whose position (UIDVALIDITY, UID) was already stored for an older mail:
    # the mailbox was restored from a backup and the server handed the same UID out again
    deliver(mailbox, mail(subject="After the restore"))
    with MailBoxUnencrypted(mailbox.host, mailbox.port).login(
        mailbox.user, mailbox.password
    ) as box:
        validity = box.folder.status("INBOX", ["UIDVALIDITY"])["UIDVALIDITY"]
        (uid,) = box.uids()
    InboundMail.objects.create(
        message_id="older@client.test",
        mailbox=mailbox_name(),
        uidvalidity=validity,
        uid=int(uid),
        raw=b"",
        raw_sha256="0" * 64,
        received_at=timezone.now(),
        status=InboundStatus.PROCESSED,
    )

    # When the intake runs
    mail_intake_run()

    # Then the new mail is read and becomes its ticket; nothing is moved away unread
    assert Ticket.objects.filter(subject="After the restore").exists()
    assert InboundMail.objects.get(subject="After the restore").uid is None
    assert (folder_count(mailbox, "INBOX"), folder_count(mailbox, DONE)) == (0, 1)


def test_a_recreated_folder_whose_uids_start_again_loses_no_mail(mailbox, acme, settings):
    # Given a folder read once (its mail has UID 1), then deleted and created again
    settings.MAIL_INTAKE_FOLDER = "Support"
    with MailBoxUnencrypted(mailbox.host, mailbox.port).login(
        mailbox.user, mailbox.password, initial_folder=None
    ) as box:
        box.folder.create("Support")
    deliver(mailbox, mail(subject="Before"), folder="Support")
    mail_intake_run()
    with MailBoxUnencrypted(mailbox.host, mailbox.port).login(
        mailbox.user, mailbox.password, initial_folder=None
    ) as box:
        old_validity = box.folder.status("Support", ["UIDVALIDITY"])["UIDVALIDITY"]
        box.folder.delete("Support")
        time.sleep(1.1)  # Dovecot derives UIDVALIDITY from the clock
        box.folder.create("Support")
        assert box.folder.status("Support", ["UIDVALIDITY"])["UIDVALIDITY"] != old_validity
    deliver(mailbox, mail(subject="After"), folder="Support")

    # When the intake runs again (the new mail has UID 1 too)
    mail_intake_run()

    # Then the new mail is read, not taken for the old one
    assert sorted(Ticket.objects.values_list("subject", flat=True)) == ["After", "Before"]
    assert set(InboundMail.objects.values_list("uid", flat=True)) == {1}
