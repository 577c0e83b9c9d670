"""Words and amounts a client reads the same way on every page: the billing state of time is
"Billing" wherever it is shown (next to a ticket's own status), a ticket's page does not
repeat its number and subject per row, and money is one locale-aware format, billed items
included."""

import datetime as dt
import re
from decimal import Decimal

import pytest
from djmoney.money import Money

from billing.models import BillableItem
from billing.services.rollup import period_close
from tests.clientarea.conftest import SEPTEMBER
from tests.factories import (
    SubscriptionFactory,
    TicketFactory,
    TimeEntryFactory,
    package_with_prices,
)

pytestmark = pytest.mark.django_db

_TABLE = re.compile(r'<table class="([^"]*)">(.*?)</thead>', re.S)
_COLUMN = re.compile(r'<th scope="col">([^<]*)</th>')


def headers(html: str, table_class: str) -> list[list[str]]:
    """The column names of each table of that class (and of the tables inside it)."""
    return [
        _COLUMN.findall(head)
        for classes, head in _TABLE.findall(html)
        if table_class in classes.split()
    ]


@pytest.fixture
def ticket(portal_user):
    subscription = SubscriptionFactory(client=portal_user.client, start_date=SEPTEMBER)
    ticket = TicketFactory(subscription=subscription, subject="Mail server down")
    TimeEntryFactory(ticket=ticket, hours=Decimal("1.50"), work_date=dt.date(2026, 10, 5))
    return ticket


def test_the_dashboard_calls_the_time_state_billing(signed_in, ticket):
    html = signed_in.get("/").content.decode()
    assert headers(html, "ticket-times") == [
        ["Ticket", "Subject", "Entries", "Time", "Last entry", "Billing"]
    ]
    assert headers(html, "stack")[1] == ["Date", "Time", "By", "Note", "Billing"]  # entries


def test_the_ticket_list_shows_the_tickets_status_and_its_billing(signed_in, ticket):
    html = signed_in.get("/tickets/").content.decode()
    columns = headers(html, "tickets")[0]
    assert "Status" in columns and "Billing" in columns


def test_the_ticket_page_shows_billing_next_to_the_status_without_repeating_the_ticket(
    signed_in, ticket
):
    html = signed_in.get(f"/tickets/{ticket.pk}/").content.decode()
    time_table = html[html.index('<table class="ticket-times') :]
    assert headers(html, "ticket-times") == [["Entries", "Time", "Last entry", "Billing"]]
    assert "Status" not in _COLUMN.findall(time_table)
    # the ticket's number and subject are the page's heading, not a cell of each row
    assert f"#{ticket.pk}" not in time_table and "Mail server down" not in time_table
    assert re.search(r'data-figure="status">Open<', html)


@pytest.fixture
def billed(portal_user):
    """September closed with 12.25 h of Gold (10 h at 500.00 + 60.00/h) and an adjustment."""
    subscription = SubscriptionFactory(
        client=portal_user.client,
        start_date=SEPTEMBER,
        package=package_with_prices({"EUR": ("500.00", "60.00")}, name="Gold"),
    )
    TimeEntryFactory(
        ticket=TicketFactory(subscription=subscription),
        hours=Decimal("12.25"),
        work_date=dt.date(2026, 9, 3),
    )
    period_close(month=SEPTEMBER)
    BillableItem.objects.create(
        client=portal_user.client,
        subscription=subscription,
        period=SEPTEMBER,
        kind="adjustment",
        description="Goodwill credit",
        quantity=Decimal("1"),
        unit_price=Money(Decimal("-20.00"), "EUR"),
        amount=Money(Decimal("-20.00"), "EUR"),
        invoice_action="next_invoice",
    )
    return subscription


@pytest.mark.parametrize(
    ("language", "fee", "overtime", "rate", "credit"),
    [
        ("en", "€500.00", "€135.00", "€60.00", "-€20.00"),
        ("de", "500,00 €", "135,00 €", "60,00 €", "-20,00 €"),
    ],
)
def test_billed_items_use_the_pages_money_format(
    signed_in, billed, language, fee, overtime, rate, credit
):
    html = signed_in.get("/history/", HTTP_ACCEPT_LANGUAGE=language).content.decode()
    html = html.replace("\xa0", " ")
    start = html.index('<ul class="items">')
    items = html[start : html.index("</ul>", start)]
    # the row's figures and its items read alike; never "60.00 EUR" beside "€135.00"
    assert "Monthly fee: <span" in items and fee in items
    assert f"Overtime 2.25 h × {rate}: " in items and overtime in items
    assert "Adjustment: Goodwill credit" in items and credit in items
    assert "EUR" not in html
