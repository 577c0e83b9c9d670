"""Tickets in the portal: list, conversation without internal notes, new, reply, close, and
where their time stands (Open, Billed, Invoiced)."""

import datetime as dt
from decimal import Decimal

import pytest

from billing.models import BillableItem, ItemStatus
from billing.services.rollup import period_close
from packages.models import SubscriptionStatus
from tests.clientarea.conftest import SEPTEMBER, figures
from tests.factories import (
    OperatorFactory,
    SubscriptionFactory,
    TicketFactory,
    TicketMessageFactory,
    TimeEntryFactory,
)
from tickets.models import MessageKind, Ticket, TicketMessage, TicketStatus

pytestmark = pytest.mark.django_db


@pytest.fixture
def subscription(portal_user):
    return SubscriptionFactory(client=portal_user.client, start_date=dt.date(2026, 8, 1))


def test_list_shows_the_clients_tickets_with_their_time(signed_in, subscription):
    ticket = TicketFactory(subscription=subscription, subject="Mail server down")
    TimeEntryFactory(ticket=ticket, hours=Decimal("1.25"), work_date=dt.date(2026, 10, 2))
    TimeEntryFactory(ticket=ticket, hours=Decimal("0.50"), work_date=dt.date(2026, 10, 9))
    TicketFactory(subject="Someone else's problem")

    html = signed_in.get("/tickets/").content.decode()

    assert "Mail server down" in html and "Someone else" not in html
    row = html[html.index(f'data-ticket="{ticket.pk}"') :]
    assert figures(row)["ticket-time"][0] == "1.75 h"
    assert "1:45" in row
    assert figures(row)["entries"][0] == "2"
    assert figures(row)["badge"][0] == "Open"
    assert "2026-10-09" in row


def test_status_filter(signed_in, subscription):
    open_ticket = TicketFactory(subscription=subscription, subject="Still broken")
    closed = TicketFactory(subscription=subscription, subject="Fixed long ago")
    closed.status = TicketStatus.CLOSED
    closed.save()

    default = signed_in.get("/tickets/").content.decode()
    only_closed = signed_in.get("/tickets/?status=closed").content.decode()
    everything = signed_in.get("/tickets/?status=").content.decode()
    nonsense = signed_in.get("/tickets/?status=%3Cscript%3E&page=abc")

    assert open_ticket.subject in default and closed.subject not in default
    assert closed.subject in only_closed and open_ticket.subject not in only_closed
    assert open_ticket.subject in everything and closed.subject in everything
    assert nonsense.status_code == 200


def test_conversation_never_shows_internal_notes(signed_in, subscription):
    ticket = TicketFactory(subscription=subscription)
    TicketMessageFactory(ticket=ticket, kind=MessageKind.CLIENT_REPLY, body="Our mail is down")
    TicketMessageFactory(
        ticket=ticket, kind=MessageKind.INTERNAL_NOTE, body="Customer forgot to pay DNS"
    )
    TicketMessageFactory(
        ticket=ticket,
        kind=MessageKind.OPERATOR_REPLY,
        author=OperatorFactory(first_name="Bob"),
        body="Fixed the MX record",
    )

    html = signed_in.get(f"/tickets/{ticket.pk}/").content.decode()

    assert "Our mail is down" in html and "Fixed the MX record" in html
    assert "Customer forgot to pay DNS" not in html
    assert "internal_note" not in html


def test_open_a_ticket_on_a_subscription(signed_in, portal_user, subscription):
    response = signed_in.post(
        "/tickets/new/",
        {
            "subject": "Renew our certificate",
            "body": "It expires Friday.",
            "subscription": subscription.pk,
        },
    )

    ticket = Ticket.objects.get(subject="Renew our certificate")
    assert response.status_code == 302 and response["Location"] == f"/tickets/{ticket.pk}/"
    assert ticket.client == portal_user.client and ticket.subscription == subscription
    message = ticket.messages.get()
    assert message.kind == MessageKind.CLIENT_REPLY and message.author == portal_user.user
    assert "It expires Friday." in signed_in.get(response["Location"]).content.decode()


def test_open_a_ticket_without_a_subscription(signed_in, portal_user, subscription):
    signed_in.post("/tickets/new/", {"subject": "Question", "body": "How?", "subscription": ""})
    assert Ticket.objects.get(subject="Question").subscription is None


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"subject": "", "body": "x"}, "This field is required."),
        ({"subject": "x", "body": "   "}, "This field is required."),
        ({"subject": "x" * 201, "body": "x"}, "at most 200 characters"),
    ],
)
def test_a_ticket_needs_a_subject_and_a_question(signed_in, data, message):
    response = signed_in.post("/tickets/new/", data)

    assert response.status_code == 200
    assert message in response.content.decode()
    assert not Ticket.objects.exists()


def test_only_own_active_subscriptions_can_be_chosen(signed_in, portal_user, subscription):
    foreign = SubscriptionFactory()
    suspended = SubscriptionFactory(client=portal_user.client, status=SubscriptionStatus.SUSPENDED)
    form_html = signed_in.get("/tickets/new/").content.decode()
    assert f'value="{subscription.pk}"' in form_html
    assert f'value="{foreign.pk}"' not in form_html
    assert f'value="{suspended.pk}"' not in form_html

    for other in (foreign, suspended):
        response = signed_in.post(
            "/tickets/new/", {"subject": "Sneaky", "body": "x", "subscription": other.pk}
        )
        assert response.status_code == 200
        assert "Select a valid choice" in response.content.decode()
    assert not Ticket.objects.exists()


def test_reply_and_close(signed_in, portal_user, subscription):
    ticket = TicketFactory(subscription=subscription)
    ticket.status = TicketStatus.ANSWERED
    ticket.save()

    reply = signed_in.post(f"/tickets/{ticket.pk}/reply/", {"body": "Thanks, works now."})
    ticket.refresh_from_db()
    assert reply.status_code == 302
    assert ticket.status == TicketStatus.CUSTOMER_REPLY
    assert ticket.messages.get().body == "Thanks, works now."

    close = signed_in.post(f"/tickets/{ticket.pk}/close/")
    ticket.refresh_from_db()
    assert close.status_code == 302 and ticket.status == TicketStatus.CLOSED
    page = signed_in.get(f"/tickets/{ticket.pk}/").content.decode()
    assert "Close ticket" not in page and "Reply to open it again" in page

    signed_in.post(f"/tickets/{ticket.pk}/reply/", {"body": "It broke again."})
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.CUSTOMER_REPLY


def test_an_empty_reply_is_refused(signed_in, subscription):
    ticket = TicketFactory(subscription=subscription)

    response = signed_in.post(f"/tickets/{ticket.pk}/reply/", {"body": "  "})

    assert response.status_code == 400
    assert "This field is required." in response.content.decode()
    assert not TicketMessage.objects.exists()


def test_pages_refuse_the_wrong_method(signed_in, subscription):
    ticket = TicketFactory(subscription=subscription)
    assert signed_in.get(f"/tickets/{ticket.pk}/close/").status_code == 405
    assert signed_in.get(f"/tickets/{ticket.pk}/reply/").status_code == 405
    assert signed_in.post("/").status_code == 405


def test_time_badges_open_billed_invoiced(signed_in, portal_user, subscription):
    # given time in September (closed by the rollup) and in October (open)
    ticket = TicketFactory(subscription=subscription)
    september = TimeEntryFactory(ticket=ticket, work_date=dt.date(2026, 9, 10))
    october = TimeEntryFactory(ticket=ticket, work_date=dt.date(2026, 10, 10))
    period_close(month=SEPTEMBER)

    def badges():
        html = signed_in.get(f"/tickets/{ticket.pk}/").content.decode()
        rows = {}
        for entry in (september, october):
            row = html[html.index(f'data-entry="{entry.pk}"') :]
            rows[entry.work_date.month] = row[
                row.index("badge-") + 6 : row.index('"', row.index("badge-"))
            ]
        return rows

    # then September's time is billed and October's is open
    assert badges() == {9: "billed", 10: "open"}
    # when finance invoices September's fee
    BillableItem.objects.filter(subscription=subscription, period=SEPTEMBER).update(
        status=ItemStatus.INVOICED
    )
    # then September's time is invoiced
    assert badges() == {9: "invoiced", 10: "open"}
    html = signed_in.get(f"/tickets/{ticket.pk}/").content.decode()
    assert figures(html)["ticket-total"] == ["2.00 h"]
    # and the ticket as a whole is as far as its least advanced time
    assert figures(html)["badge"] == ["Open"]
