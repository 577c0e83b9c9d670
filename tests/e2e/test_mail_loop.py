"""The whole e-mail loop in real Chromium, with a real SMTP server (aiosmtpd), a real IMAP
server (Dovecot) and Celery run in the test process: a client opens a ticket in the portal with
a file, the operator hears of it by e-mail and replies with time in one submit, the client's
e-mail answer to our notification is fetched and shows on the operator's page."""

import time
from decimal import Decimal
from email.message import EmailMessage, Message
from email.utils import make_msgid

import pytest
from django.urls import reverse
from imap_tools import MailBoxUnencrypted
from playwright.sync_api import Page, expect

from conftest import need_service
from supportbilling.periods import local_today
from tests.factories import (
    PASSWORD,
    ClientUserFactory,
    OperatorFactory,
    SubscriptionFactory,
    package_with_prices,
)
from tests.imap import dovecot_available, dovecot_running
from tickets.intake import mail_intake_run
from tickets.models import InboundMail, InboundStatus, MessageKind, Ticket, TimeEntry

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

JANE = "jane@acme.test"
OLGA = "olga@desk.test"


@pytest.fixture
def imap():
    if not dovecot_available():
        need_service("Dovecot (apt-get install dovecot-imapd)")
    yield from dovecot_running()


@pytest.fixture
def mailbox(imap, settings, celery_eager, smtp_server, live_server):
    """Links and Message-IDs name the live server; the intake reads Dovecot's INBOX."""
    settings.SITE_URL = live_server.url
    settings.MAIL_INTAKE_HOST, settings.MAIL_INTAKE_PORT = imap.host, imap.port
    settings.MAIL_INTAKE_SSL = settings.MAIL_INTAKE_STARTTLS = False
    settings.MAIL_INTAKE_USER, settings.MAIL_INTAKE_PASSWORD = imap.user, imap.password
    settings.MAIL_INTAKE_FOLDER, settings.MAIL_INTAKE_DONE_FOLDER = "INBOX", "Processed"
    return imap


@pytest.fixture
def subscription():
    """Jane of ACME with Gold (10 h); Olga, the only operator."""
    jane = ClientUserFactory(
        user__username="jane", user__email=JANE, client__name="ACME Ltd", client__currency="EUR"
    )
    OperatorFactory(username="olga", email=OLGA)
    return SubscriptionFactory(
        client=jane.client,
        start_date=local_today().replace(day=1),
        package=package_with_prices({"EUR": ("500.00", "60.00")}, name="Gold"),
    )


def mail_to(smtp_server, address: str, containing: str) -> Message:
    """The e-mail to ``address`` whose text has ``containing``; sent by the request that just
    returned, so it is there (a short grace for the SMTP thread)."""
    deadline = time.monotonic() + 10
    while True:
        for message in reversed(smtp_server.to(address)):
            if containing in text_of(message):
                return message
        assert time.monotonic() < deadline, f"no e-mail to {address} with {containing!r}"
        time.sleep(0.1)


def text_of(message: Message) -> str:
    parts = message.walk() if message.is_multipart() else [message]
    texts = []
    for part in parts:
        if part.get_content_type() == "text/plain":
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                texts.append(payload.decode(part.get_content_charset() or "utf-8"))
    return "\n".join(texts)


def sign_in_portal(page: Page, url: str) -> None:
    page.goto(f"{url}/login/")
    page.get_by_label("Username").fill("jane")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def sign_in_admin(page: Page, url: str) -> None:
    page.goto(f"{url}{reverse('admin:login')}")
    page.fill("#id_username", "olga")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    expect(page.locator("#user-tools")).to_contain_text("olga")


@pytest.fixture
def two_pages(browser):
    """Jane's and Olga's browser windows, each with its own cookies; closed after the test,
    so no kept-alive connection holds a database session."""
    contexts = [browser.new_context(), browser.new_context()]
    yield [context.new_page() for context in contexts]
    for context in contexts:
        context.close()


def test_a_ticket_goes_round_the_mail_loop(
    two_pages, live_server, mailbox, smtp_server, subscription, tmp_path
):
    portal, admin = two_pages

    # Given Jane in the portal, opening a ticket on Gold with a screenshot
    sign_in_portal(portal, live_server.url)
    portal.goto(f"{live_server.url}{reverse('clientarea:ticket_new')}")
    portal.get_by_label("Subject").fill("VPN down")
    portal.get_by_label("What do you need?").fill("The VPN drops every minute.")
    portal.select_option("#id_subscription", value=str(subscription.pk))
    screenshot = tmp_path / "vpn-error.png"
    screenshot.write_bytes(b"\x89PNG\r\n\x1a\n error dialog")
    portal.set_input_files("#id_attachments", str(screenshot))
    portal.get_by_role("button", name="Open ticket").click()
    expect(portal.locator("body")).to_contain_text("is open. We will answer soon.")
    ticket = Ticket.objects.get(subject="VPN down")
    expect(portal.locator("body")).to_contain_text("vpn-error.png")

    # Then Olga's e-mail about it arrives
    news = mail_to(smtp_server, OLGA, "The VPN drops every minute.")
    assert f"#{ticket.pk}" in news["Subject"]

    # When Olga replies from the ticket's page with 0.75 h in one submit
    sign_in_admin(admin, live_server.url)
    admin.goto(f"{live_server.url}{reverse('admin:tickets_ticket_change', args=[ticket.pk])}")
    expect(admin.locator("#conversation")).to_contain_text("The VPN drops every minute.")
    expect(admin.locator("#conversation")).to_contain_text("vpn-error.png")
    admin.fill("#reply-body", "Please update the client to 5.2 and retry.")
    admin.fill("#reply-hours", "0.75")
    admin.click("#reply-send")
    expect(admin.locator(".messagelist")).to_contain_text("Saved 0.75 h.")

    # Then Jane's e-mail with the reply arrives
    ours = mail_to(smtp_server, JANE, "Please update the client to 5.2 and retry.")

    # When Jane answers that e-mail and the intake fetches her answer
    answer = EmailMessage()
    answer["From"] = f"Jane <{JANE}>"
    answer["To"] = ours["From"]
    answer["Subject"] = f"Re: {ours['Subject']}"
    answer["Message-ID"] = make_msgid(domain="acme.test")
    answer["In-Reply-To"] = ours["Message-ID"]
    answer["References"] = " ".join(filter(None, [ours["References"], ours["Message-ID"]]))
    answer.set_content(
        "Updated to 5.2, the VPN holds now. Thanks!\n\n"
        "On Thursday, Support wrote:\n> Please update the client to 5.2 and retry."
    )
    with MailBoxUnencrypted(mailbox.host, mailbox.port).login(
        mailbox.user, mailbox.password
    ) as box:
        box.append(answer.as_bytes(), "INBOX")
    assert mail_intake_run().read == 1

    # Then Olga's page shows Jane's answer on the ticket, and her 0.75 h are logged
    admin.reload()
    expect(admin.locator("#conversation")).to_contain_text(
        "Updated to 5.2, the VPN holds now. Thanks!"
    )
    row = InboundMail.objects.get()
    assert (row.status, row.ticket_id) == (InboundStatus.PROCESSED, ticket.pk)
    assert list(ticket.messages.values_list("kind", flat=True)) == [
        MessageKind.CLIENT_REPLY,
        MessageKind.OPERATOR_REPLY,
        MessageKind.CLIENT_REPLY,
    ]
    entry = TimeEntry.objects.get(ticket=ticket)
    assert (entry.hours, entry.operator.username) == (Decimal("0.75"), "olga")
