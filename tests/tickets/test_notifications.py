"""Ticket e-mails through a real SMTP server (tests/mail.py): who hears of what, the subject,
link and threading headers, sending each e-mail once, nothing lost with Redis down, and the
recipients' preferences (docs/decisions.md, "Ticket e-mail notifications")."""

import datetime as dt
from email.message import Message
from types import SimpleNamespace

import pytest
from django.conf import settings
from django.contrib.auth.models import Group
from django.urls import reverse
from rest_framework.test import APIClient

from customers.models import NotificationPreference
from customers.selectors import unsubscribe_token
from customers.services import notification_preference_set
from supportbilling.roles import OPERATORS_GROUP
from tests.factories import (
    ClientFactory,
    ClientUserFactory,
    FinanceFactory,
    OperatorFactory,
    TicketFactory,
    UserFactory,
)
from tickets.models import (
    MessageKind,
    NotificationEvent,
    NotificationStatus,
    Ticket,
    TicketNotification,
    TicketStatus,
)
from tickets.notifications import notification_message_id_read, notifications_send
from tickets.services import ticket_message_add, ticket_status_set

pytestmark = pytest.mark.django_db

ALICE, BOB = "alice@client.test", "bob@client.test"
OP1, OP2 = "op1@desk.test", "op2@desk.test"
HOST = "support.example.test"


@pytest.fixture(autouse=True)
def _setup(celery_eager, settings):
    """Queued e-mail tasks run in this process; links and ids use a known site address."""
    settings.SITE_URL = f"https://{HOST}"
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.fixture
def desk():
    """A client with two users (Alice, Bob), two operators, a finance user (no ticket mail)
    and an operator without an address; a ticket of the client, without e-mails yet."""
    client = ClientFactory(name="Acme", currency="EUR")
    alice = ClientUserFactory(client=client, user__email=ALICE).user
    bob = ClientUserFactory(client=client, user__email=BOB).user
    op1, op2 = OperatorFactory(email=OP1), OperatorFactory(email=OP2)
    OperatorFactory(email="")
    FinanceFactory(email="finance@desk.test")
    ClientUserFactory(user__email="other@elsewhere.test")  # another client's user
    ticket = TicketFactory(client=client, subject="Printer on fire")
    return SimpleNamespace(client=client, alice=alice, bob=bob, op1=op1, op2=op2, ticket=ticket)


def recipients(smtp_server) -> list[str]:
    return sorted(address for rcpts, _ in smtp_server.received for address in rcpts)


def parts(message: Message) -> dict[str, str]:
    return {
        part.get_content_type(): part.get_payload(decode=True).decode()
        for part in message.walk()
        if not part.is_multipart()
    }


def test_an_operator_reply_reaches_each_client_user_once_and_a_note_nobody(
    client, desk, smtp_server, django_capture_on_commit_callbacks
):
    client.force_login(desk.op1)
    url = reverse("admin:tickets_ticket_reply", args=[desk.ticket.pk])
    # when an operator writes an internal note
    with django_capture_on_commit_callbacks(execute=True):
        client.post(url, {"kind": MessageKind.INTERNAL_NOTE, "body": "Call the fire brigade"})
    # then nobody is mailed
    assert smtp_server.received == []
    # when the operator replies to the client
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url, {"kind": MessageKind.OPERATOR_REPLY, "body": "Unplug it."})
    assert response.status_code == 302
    # then each of the client's users gets one e-mail, and nobody else
    assert recipients(smtp_server) == [ALICE, BOB]
    message = smtp_server.to(ALICE)[0]
    number = desk.ticket.pk
    assert message["Subject"] == f"[#{number}] Printer on fire"
    assert message["Auto-Submitted"] == "auto-generated"
    assert "List-Unsubscribe" not in message  # a person's reply, not a subscription
    body = parts(message)
    assert set(body) == {"text/plain", "text/html"}
    portal_link = f"https://{HOST}/tickets/{number}/"
    for text in body.values():
        assert "Unplug it." in text and portal_link in text
        assert "Call the fire brigade" not in text
    # and running the send again (a task delivered twice, the periodic run) sends nothing
    assert notifications_send() == 0
    assert (
        notifications_send(
            notification_ids=list(TicketNotification.objects.values_list("pk", flat=True))
        )
        == 0
    )
    assert len(smtp_server.received) == 2


def test_the_threading_headers_tie_every_mail_to_the_ticket(
    desk, smtp_server, django_capture_on_commit_callbacks
):
    # given an operator reply and a close, each to Alice and Bob
    with django_capture_on_commit_callbacks(execute=True):
        ticket_message_add(
            ticket=desk.ticket, author=desk.op1, body="Done.", kind=MessageKind.OPERATOR_REPLY
        )
    with django_capture_on_commit_callbacks(execute=True):
        ticket_status_set(ticket=desk.ticket, status=TicketStatus.CLOSED, actor=desk.op1)
    messages = [message for _, message in smtp_server.received]
    assert len(messages) == 4
    root = f"<ticket-{desk.ticket.pk}@{HOST}>"
    # (a long header is folded on the wire; mail clients unfold it)
    ids = ["".join(message["Message-ID"].split()) for message in messages]
    # then each e-mail has its own Message-ID under the site's domain, signed
    assert len(set(ids)) == 4
    for message_id, message in zip(ids, messages, strict=True):
        assert message_id.endswith(f"@{HOST}>")
        ticket_id, mail_id, user_id = notification_message_id_read(message_id)
        mail = TicketNotification.objects.get(pk=mail_id)
        assert (ticket_id, mail.user_id, mail.message_id) == (desk.ticket.pk, user_id, message_id)
        assert mail.address in message["To"]
        # and points at the ticket's root id, so mail clients show one thread
        assert message["In-Reply-To"].strip() == root
        assert message["References"].strip() == root
    # and a forged or altered id is not ours
    assert notification_message_id_read(ids[0].replace("user-", "user-9")) is None
    assert (
        notification_message_id_read(f"<ticket-{desk.ticket.pk}.mail-1.user-1.abc@{HOST}>") is None
    )


def test_a_client_reply_reaches_the_operators(
    client, desk, smtp_server, django_capture_on_commit_callbacks
):
    # when Alice replies in the portal
    client.force_login(desk.alice)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("clientarea:ticket_reply", args=[desk.ticket.pk]), {"body": "Still smoking"}
        )
    assert response.status_code == 302
    # then the operators with an address are told (not finance, not the client's users)
    assert recipients(smtp_server) == [OP1, OP2]
    body = parts(smtp_server.to(OP1)[0])
    admin_link = f"https://{HOST}/admin/tickets/ticket/{desk.ticket.pk}/change/"
    assert all("Still smoking" in text and admin_link in text for text in body.values())


def test_a_client_reply_on_an_assigned_ticket_reaches_its_assignee_only(
    client, desk, smtp_server, django_capture_on_commit_callbacks
):
    # given the ticket is assigned to the second operator
    desk.ticket.assignee = desk.op2
    desk.ticket.save()
    # when Alice replies in the portal
    client.force_login(desk.alice)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            reverse("clientarea:ticket_reply", args=[desk.ticket.pk]), {"body": "Still smoking"}
        )
    # then only the assignee is told
    assert recipients(smtp_server) == [OP2]


def test_an_assignee_who_cannot_be_mailed_leaves_the_news_to_the_operators(
    client, desk, smtp_server, django_capture_on_commit_callbacks
):
    # given the ticket's assignee has left (deactivated), and a non-staff user sits in the
    # Operators group by mistake
    desk.ticket.assignee = desk.op2
    desk.ticket.save()
    desk.op2.is_active = False
    desk.op2.save()
    stray = UserFactory(email="stray@desk.test", is_staff=False)
    stray.groups.add(Group.objects.get(name=OPERATORS_GROUP))
    # when Alice replies
    client.force_login(desk.alice)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            reverse("clientarea:ticket_reply", args=[desk.ticket.pk]), {"body": "Still smoking"}
        )
    # then the active operators are told, and never a non-staff user
    assert recipients(smtp_server) == [OP1]


@pytest.mark.parametrize("path", ["portal", "api"])
def test_opening_a_ticket_sends_a_receipt_and_tells_the_operators(
    client, desk, smtp_server, django_capture_on_commit_callbacks, path
):
    # when Alice opens a ticket in the portal, or an integration (an operator's token) opens
    # the client's request through the API
    with django_capture_on_commit_callbacks(execute=True):
        if path == "portal":
            client.force_login(desk.alice)
            response = client.post(
                reverse("clientarea:ticket_new"), {"subject": "VPN down", "body": "Since 9:00"}
            )
            assert response.status_code == 302
        else:
            api = APIClient()
            api.force_authenticate(OperatorFactory(email="robot@desk.test"))
            response = api.post(
                "/api/v1/tickets/",
                {"client": desk.client.pk, "subject": "VPN down", "body": "Since 9:00"},
                format="json",
            )
            assert response.status_code == 201, response.content
    ticket = Ticket.objects.get(subject="VPN down")
    # then whoever asked gets a receipt (an automatic reply: Alice in the portal; for an
    # integration, every user of the client) and the operators the news
    asked = [ALICE] if path == "portal" else [ALICE, BOB]
    assert recipients(smtp_server) == sorted([*asked, OP1, OP2])
    receipt = smtp_server.to(ALICE)[0]
    assert receipt["Subject"] == f"[#{ticket.pk}] VPN down"
    assert receipt["Auto-Submitted"] == "auto-replied"
    assert "We received your ticket" in parts(receipt)["text/plain"]
    # and the receipt does not repeat the request's text (it would relay anyone's words)
    assert all("Since 9:00" not in text for text in parts(receipt).values())
    news = smtp_server.to(OP1)[0]
    assert news["Auto-Submitted"] == "auto-generated"
    assert "Since 9:00" in parts(news)["text/plain"]
    assert f"/admin/tickets/ticket/{ticket.pk}/change/" in parts(news)["text/html"]
    assert news["References"] == f"<ticket-{ticket.pk}@{HOST}>"


def test_closing_and_reopening_tell_the_client(
    client, desk, smtp_server, django_capture_on_commit_callbacks
):
    # when an operator closes the ticket in the admin
    client.force_login(desk.op1)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            reverse("admin:tickets_ticket_status", args=[desk.ticket.pk]), {"status": "closed"}
        )
    # then Alice and Bob are told
    assert recipients(smtp_server) == [ALICE, BOB]
    closed = smtp_server.to(BOB)[0]
    assert "is closed" in parts(closed)["text/plain"]
    assert "List-Unsubscribe" in closed and closed["List-Unsubscribe-Post"]
    smtp_server.received.clear()
    # when Alice replies to the closed ticket (which reopens it)
    desk.ticket.refresh_from_db()
    with django_capture_on_commit_callbacks(execute=True):
        ticket_message_add(
            ticket=desk.ticket, author=desk.alice, body="Back again", kind=MessageKind.CLIENT_REPLY
        )
    # then Bob hears it is open again (not Alice, who did it) and the operators get the reply
    assert recipients(smtp_server) == [BOB, OP1, OP2]
    assert "is open again" in parts(smtp_server.to(BOB)[0])["text/plain"]
    events = set(TicketNotification.objects.values_list("event", flat=True))
    assert events == {
        NotificationEvent.TICKET_CLOSED,
        NotificationEvent.TICKET_REOPENED,
        NotificationEvent.CLIENT_REPLY,
    }


def test_with_redis_down_the_mail_waits_and_the_periodic_run_sends_it(
    desk, smtp_server, django_capture_on_commit_callbacks, caplog
):
    from supportbilling.celery import app
    from tests.mail import free_port

    # given Redis (the broker) is unreachable
    eager, broker = app.conf.task_always_eager, app.conf.broker_url
    app.conf.task_always_eager = False
    app.conf.broker_url = f"redis://127.0.0.1:{free_port()}/0"
    app._pool = None
    app.amqp._producer_pool = None
    try:
        # when an operator replies: the reply is saved, the request does not fail
        with django_capture_on_commit_callbacks(execute=True):
            ticket_message_add(
                ticket=desk.ticket, author=desk.op1, body="Hi", kind=MessageKind.OPERATOR_REPLY
            )
    finally:
        app.conf.task_always_eager, app.conf.broker_url = eager, broker
        app._pool = None
        app.amqp._producer_pool = None
    assert "Could not queue tickets.notifications_send" in caplog.text
    # then nothing is sent yet, but the e-mails wait in the database
    assert smtp_server.received == []
    assert set(TicketNotification.objects.values_list("status", flat=True)) == {"pending"}
    # when the periodic run comes (beat, every few minutes)
    from tickets.tasks import notifications_send as task

    task.apply()
    # then each e-mail is sent, once
    assert recipients(smtp_server) == [ALICE, BOB]
    assert set(TicketNotification.objects.values_list("status", flat=True)) == {"sent"}
    task.apply()
    assert len(smtp_server.received) == 2


def test_a_refused_mail_is_retried_with_back_off_and_shown_in_the_mail_log(
    client, desk, smtp_server, django_capture_on_commit_callbacks, time_machine
):
    now = dt.datetime(2026, 10, 20, 9, 0, tzinfo=dt.UTC)
    time_machine.move_to(now, tick=False)
    smtp_server.refuse[BOB] = ["451 4.7.1 Greylisted, try again later"]
    with django_capture_on_commit_callbacks(execute=True):
        ticket_message_add(
            ticket=desk.ticket, author=desk.op1, body="Hi", kind=MessageKind.OPERATOR_REPLY
        )
    bob = TicketNotification.objects.get(address=BOB)
    assert (bob.status, bob.attempts) == (NotificationStatus.PENDING, 1)
    assert "451" in bob.last_error
    # the periodic run before the back-off is over does not try again
    assert notifications_send() == 0
    time_machine.move_to(now + dt.timedelta(minutes=6), tick=False)
    assert notifications_send() == 1
    assert len(smtp_server.to(BOB)) == 1 and len(smtp_server.to(ALICE)) == 1
    # the operator sees to whom the e-mails went on the ticket's page
    client.force_login(desk.op1)
    html = client.get(reverse("admin:tickets_ticket_change", args=[desk.ticket.pk])).content
    log = html.decode().split('id="mail-log"')[1].split("</section>")[0]
    assert ALICE in log and BOB in log and "Sent" in log


def test_an_unsubscribed_user_gets_nothing(desk, smtp_server, django_capture_on_commit_callbacks):
    # given Bob turned ticket e-mails off and an operator turned them off too
    notification_preference_set(user=desk.bob, ticket_mail=False)
    notification_preference_set(user=desk.op2, ticket_mail=False)
    with django_capture_on_commit_callbacks(execute=True):
        ticket_message_add(
            ticket=desk.ticket, author=desk.op1, body="Hi", kind=MessageKind.OPERATOR_REPLY
        )
        ticket_message_add(
            ticket=desk.ticket, author=desk.alice, body="Ok", kind=MessageKind.CLIENT_REPLY
        )
    assert recipients(smtp_server) == [ALICE, OP1]


def test_turning_mail_off_after_the_event_still_stops_it(
    desk, smtp_server, django_capture_on_commit_callbacks
):
    # given the e-mails were recorded while the broker was away (nothing sent yet)
    from tickets.notifications import ticket_message_record

    message = ticket_message_add(
        ticket=desk.ticket, author=desk.op1, body="Hi", kind=MessageKind.OPERATOR_REPLY
    )
    with django_capture_on_commit_callbacks(execute=False):
        ticket_message_record(
            ticket_id=desk.ticket.pk,
            message_id=message.pk,
            kind=MessageKind.OPERATOR_REPLY,
            actor_id=desk.op1.pk,
        )
    # when Bob unsubscribes before the periodic run
    notification_preference_set(user=desk.bob, ticket_mail=False)
    notifications_send()
    # then only Alice gets it
    assert recipients(smtp_server) == [ALICE]
    assert TicketNotification.objects.get(address=BOB).status == NotificationStatus.SKIPPED


def test_the_one_click_link_works_without_signing_in(
    client, desk, smtp_server, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        ticket_status_set(ticket=desk.ticket, status=TicketStatus.CLOSED, actor=desk.op1)
    # given the link in Bob's e-mail
    text = parts(smtp_server.to(BOB)[0])["text/plain"]
    link = next(word for word in text.split() if "/unsubscribe/" in word)
    assert link.startswith(f"https://{HOST}/unsubscribe/")
    path = link.removeprefix(f"https://{HOST}")
    # when someone who is not signed in opens it: a question, nothing changes yet
    page = client.get(path)
    assert page.status_code == 200 and b"Stop receiving ticket e-mails?" in page.content
    assert not NotificationPreference.objects.filter(user=desk.bob).exists()
    # when they confirm (or the mail client posts the one-click unsubscribe)
    response = client.post(path, {"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    assert NotificationPreference.objects.get(user=desk.bob).ticket_mail is False
    assert NotificationPreference.objects.get(user=desk.bob).usage_alerts is True


def _tampered(token: str) -> str:
    value, signature = token.rsplit(":", 1)
    return f"{value}:{'A' if signature[0] != 'A' else 'B'}{signature[1:]}"


@pytest.mark.parametrize("token", ["not-a-token", "tampered", "other-salt", "unknown-kind"])
def test_a_tampered_unsubscribe_link_is_refused(client, desk, token):
    from django.core import signing

    tokens = {
        "not-a-token": "not-a-token",
        "tampered": _tampered(unsubscribe_token(user_id=desk.bob.pk, kind="ticket_mail")),
        "other-salt": signing.dumps({"u": desk.bob.pk, "k": "ticket_mail"}),
        "unknown-kind": signing.dumps(
            {"u": desk.bob.pk, "k": "everything"}, salt="customers.unsubscribe", compress=True
        ),
    }
    path = reverse("clientarea:unsubscribe", args=[tokens[token]])
    # a GET or a POST of a link that is not ours is refused, never a 500, and changes nothing
    assert client.get(path).status_code == 400
    assert client.post(path).status_code == 400
    assert not NotificationPreference.objects.exists()


def test_the_link_of_a_removed_user_is_refused(client, desk):
    path = reverse(
        "clientarea:unsubscribe", args=[unsubscribe_token(user_id=999_999, kind="ticket_mail")]
    )
    assert client.post(path).status_code == 400
    assert not NotificationPreference.objects.exists()


def test_preferences_in_the_portal_and_the_admin(client, desk):
    # a client user turns usage alerts off in the portal
    client.force_login(desk.alice)
    page = client.get(reverse("clientarea:notifications"))
    assert page.status_code == 200
    for kind in ("ticket_mail", "usage_alerts", "monthly_statements"):
        assert f'name="{kind}"'.encode() in page.content
    assert (
        reverse("clientarea:notifications").encode()
        in client.get(reverse("clientarea:home")).content
    )
    response = client.post(reverse("clientarea:notifications"), {"ticket_mail": "on"})
    assert response.status_code == 302
    preference = NotificationPreference.objects.get(user=desk.alice)
    assert (preference.ticket_mail, preference.usage_alerts) == (True, False)
    # an operator turns ticket e-mails off in the admin; usage alerts and statements go to a
    # client's users only, so the operator is not offered them, and a post of them changes
    # nothing
    client.force_login(desk.op1)
    url = reverse("admin:tickets_mail_preferences")
    assert url.encode() in client.get(reverse("admin:index")).content
    page = client.get(url).content
    assert b'name="ticket_mail"' in page
    assert b'name="usage_alerts"' not in page
    assert b'name="monthly_statements"' not in page
    assert client.post(url, {"usage_alerts": "", "monthly_statements": ""}).status_code == 302
    preference = NotificationPreference.objects.get(user=desk.op1)
    assert (preference.ticket_mail, preference.usage_alerts, preference.monthly_statements) == (
        False,
        True,
        True,
    )
    assert settings.TICKET_MAIL_FROM_EMAIL
