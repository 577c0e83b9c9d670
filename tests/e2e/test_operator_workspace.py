"""An operator logs time, runs a timer and replies with time on a ticket's admin page, in real
Chromium."""

import datetime as dt
import os
import re
from decimal import Decimal

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from packages.models import BillingPeriod, PeriodStatus
from tests.factories import (
    PASSWORD,
    OperatorFactory,
    SubscriptionFactory,
    TicketFactory,
    TicketMessageFactory,
    TimeEntryFactory,
    package_with_prices,
)
from tickets.models import TimeEntry

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def ticket():
    package = package_with_prices(name="Gold", included_hours=Decimal("10.00"))
    ticket = TicketFactory(subscription=SubscriptionFactory(package=package), subject="VPN down")
    TicketMessageFactory(ticket=ticket, body="The VPN is down since this morning.")
    return ticket


def test_operator_logs_time_and_runs_a_timer(live_server, page, ticket):
    # given an operator signed in to the admin
    OperatorFactory(username="olga")
    page.goto(f"{live_server.url}{reverse('admin:login')}")
    page.fill("#id_username", "olga")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    expect(page.locator("#user-tools")).to_contain_text("olga")

    # when she opens the ticket, presses + three times and saves
    page.goto(f"{live_server.url}{reverse('admin:tickets_ticket_change', args=[ticket.pk])}")
    expect(page.locator("#conversation")).to_contain_text("The VPN is down since this morning.")
    expect(page.locator("#time-left")).to_contain_text("Gold (active) - 10 of 10 h left in")
    for _ in range(3):
        page.click("#hours-plus")
    expect(page.locator("#log-hours")).to_have_value("0.75")
    page.fill("#log-note", "Restarted the tunnel")
    page.click("#log-save")

    # then she sees the entry and the new remaining hours
    expect(page.locator(".messagelist")).to_contain_text("Saved 0.75 h.")
    expect(page.locator("#entries")).to_contain_text("Restarted the tunnel")
    expect(page.locator("#entries-total")).to_have_text("0.75")
    expect(page.locator("#time-left")).to_contain_text("9.25 of 10 h left")

    # when she starts the timer and reloads the page, it is still running
    page.click("#timer-start")
    expect(page.locator("#timer-elapsed")).to_have_text(re.compile(r"^0:00:\d\d$"))
    page.reload()
    expect(page.locator("#timer-elapsed")).to_have_text(re.compile(r"^0:00:\d\d$"))
    expect(page.locator("#running-timers")).to_contain_text("VPN down")

    # and when she stops it, a quarter hour is saved and the timer is gone
    page.click("#timer-stop")
    expect(page.locator(".messagelist")).to_contain_text("Timer stopped: saved 0.25 h.")
    expect(page.locator("#timer-start")).to_be_visible()
    expect(page.locator("#running-timers")).to_have_count(0)
    expect(page.locator("#time-left")).to_contain_text("9 of 10 h left")
    assert sorted(TimeEntry.objects.values_list("hours", flat=True)) == [
        Decimal("0.25"),
        Decimal("0.75"),
    ]


def test_the_hour_buttons_read_what_the_server_reads(live_server, page, ticket):
    # given an operator on the ticket's page
    OperatorFactory(username="olga")
    page.goto(f"{live_server.url}{reverse('admin:login')}")
    page.fill("#id_username", "olga")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.goto(f"{live_server.url}{reverse('admin:tickets_ticket_change', args=[ticket.pk])}")

    # when she types hours and minutes and presses +
    page.fill("#log-hours", "1h 15m")
    page.click("#hours-plus")
    # then the box shows a quarter hour more, as the server reads it
    expect(page.locator("#log-hours")).to_have_value("1.50")
    expect(page.locator("#log-hours-error")).to_be_hidden()

    # when she types something the server cannot read and presses +
    page.fill("#log-hours", "an hour or so")
    page.click("#hours-plus")
    # then the server's message shows beside the box, and what she typed stays
    expect(page.locator("#log-hours-error")).to_have_text("Enter hours as 1.25, 1:15 or 75m.")
    expect(page.locator("#log-hours")).to_have_value("an hour or so")

    # and when she corrects it, the message goes and the buttons work again
    page.fill("#log-hours", "1.5h")
    expect(page.locator("#log-hours-error")).to_be_hidden()
    page.click("#hours-minus")
    expect(page.locator("#log-hours")).to_have_value("1.25")


def test_operator_replies_and_logs_time_in_one_submit(live_server, page, ticket):
    # given an operator on the ticket's page
    OperatorFactory(username="olga")
    page.goto(f"{live_server.url}{reverse('admin:login')}")
    page.fill("#id_username", "olga")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.goto(f"{live_server.url}{reverse('admin:tickets_ticket_change', args=[ticket.pk])}")

    # when she types a reply and previews it, she sees it as the client will, escaped
    page.fill("#reply-body", "The tunnel is back <b>up</b>.")
    page.click("#reply-preview-button")
    expect(page.locator("#reply-preview")).to_contain_text("Support (olga)")
    expect(page.locator("#reply-preview")).to_contain_text("The tunnel is back <b>up</b>.")
    # and an internal note's preview says the client never sees it
    page.select_option("#reply-kind", "internal_note")
    page.click("#reply-preview-button")
    expect(page.locator("#reply-preview")).to_contain_text("never shown to the client")
    page.select_option("#reply-kind", "operator_reply")

    # when she presses + three times beside the reply's hours and sends
    for _ in range(3):
        page.click("#reply-hours-plus")
    expect(page.locator("#reply-hours")).to_have_value("0.75")
    page.click("#reply-send")

    # then the reply is in the conversation and the 0.75 h are logged, in one submit
    expect(page.locator(".messagelist")).to_contain_text("Operator reply added. Saved 0.75 h.")
    expect(page.locator("#conversation")).to_contain_text("The tunnel is back <b>up</b>.")
    expect(page.locator("#entries-total")).to_have_text("0.75")
    expect(page.locator("#time-left")).to_contain_text("9.25 of 10 h left")
    assert list(TimeEntry.objects.values_list("hours", flat=True)) == [Decimal("0.75")]

    # when she replies with hours the server refuses, both stay typed and nothing is saved
    page.fill("#reply-body", "One more thing")
    page.fill("#reply-hours", "0:10")
    page.click("#reply-send")
    expect(page.locator("#reply-hours-error")).to_contain_text("steps of 0.25")
    expect(page.locator("#reply-body")).to_have_value("One more thing")
    expect(page.locator("#reply-hours")).to_have_value("0:10")
    assert TimeEntry.objects.count() == 1
    assert ticket.messages.count() == 2


def screenshots(page, output_path, name):
    """The page as it is now, at a desktop's width (1400 px) and at a phone's (390 px)."""
    os.makedirs(output_path, exist_ok=True)
    desktop = page.viewport_size
    for width in (1400, 390):
        page.set_viewport_size({"width": width, "height": 900})
        path = os.path.join(output_path, f"{name}-{width}.png")
        page.screenshot(path=path, full_page=True)
        assert os.path.getsize(path) > 0
    page.set_viewport_size(desktop)


def test_operator_edits_an_entry_on_demand(live_server, page, ticket, output_path):
    # given a ticket with two entries this month and three in a closed month
    operator = OperatorFactory(username="olga")
    today = dt.date.today()
    first = today.replace(day=1)
    closed = (first - dt.timedelta(days=1)).replace(day=1)
    BillingPeriod.objects.create(month=closed, status=PeriodStatus.CLOSED)
    entry = TimeEntryFactory(
        ticket=ticket, operator=operator, hours=Decimal("1.00"), work_date=first, note="Tunnel"
    )
    TimeEntryFactory(ticket=ticket, operator=operator, hours=Decimal("0.50"), work_date=first)
    for day in range(3):
        TimeEntryFactory(ticket=ticket, operator=operator, work_date=closed + dt.timedelta(day))
    page.goto(f"{live_server.url}{reverse('admin:login')}")
    page.fill("#id_username", "olga")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.goto(f"{live_server.url}{reverse('admin:tickets_ticket_change', args=[ticket.pk])}")

    # then the open month's entries are listed with an "Edit" link, no form is open, and the
    # closed month is one summary row
    expect(page.locator("#entry-edit-form")).to_have_count(0)
    expect(page.locator(".sbt-edit-link")).to_have_count(2)
    month = page.locator(f"#month-{closed:%Y-%m}")
    expect(month).to_contain_text("3 entries")
    # the entries table is wide enough for a date on one line
    date_cell = page.locator(f"#entry-{entry.pk} td.sbt-date")
    lines = "el => { const r = document.createRange(); r.selectNodeContents(el); "
    lines += "return r.getClientRects().length; }"
    assert date_cell.evaluate(lines) == 1
    screenshots(page, output_path, "ticket")

    # when she lists the closed month's entries, they are shown, without "Edit"
    month.get_by_role("link", name="Show entries").click()
    expect(page.locator(".sbt-entry.sbt-locked")).to_have_count(3)
    expect(page.locator(".sbt-entry.sbt-locked .sbt-edit-link")).to_have_count(0)

    # when she follows "Edit" of the entry, the one form opens with it
    page.locator(f"#entry-{entry.pk}").get_by_role("link", name="Edit").click()
    expect(page.locator("#entry-edit-form")).to_have_count(1)
    expect(page.locator("#entry-edit-note")).to_have_value("Tunnel")
    expect(page.locator("#entry-edit-hours")).to_have_value("1.00")

    # when she types hours the server refuses, the message is beside the hours box
    page.fill("#entry-edit-hours", "0:10")
    page.click("#entry-edit-save")
    expect(page.locator("#entry-edit-hours-error")).to_contain_text("steps of 0.25")
    expect(page.locator("#entry-edit-hours")).to_have_value("0:10")
    expect(page.locator("#entry-edit-work-date-error")).to_be_hidden()
    screenshots(page, output_path, "ticket-edit-refused")

    # and when she corrects it, the entry is changed and the form closes
    page.fill("#entry-edit-hours", "1:30")
    page.click("#entry-edit-save")
    expect(page.locator(".messagelist")).to_contain_text("The entry was changed.")
    expect(page.locator("#entry-edit-form")).to_have_count(0)
    expect(page.locator(f"#entry-{entry.pk}")).to_contain_text("1.5")
    entry.refresh_from_db()
    assert entry.hours == Decimal("1.50")


def test_time_panel_refusals_show_beside_their_field(live_server, page, ticket, output_path):
    OperatorFactory(username="olga")
    page.goto(f"{live_server.url}{reverse('admin:login')}")
    page.fill("#id_username", "olga")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.goto(f"{live_server.url}{reverse('admin:tickets_ticket_change', args=[ticket.pk])}")
    # the empty hours box shows a hint, not a value
    expect(page.locator("#log-hours")).to_have_value("")
    expect(page.locator("#log-hours")).to_have_attribute("placeholder", "e.g. 1:15")

    # when she saves time on a date in the future
    page.fill("#log-hours", "1")
    future = dt.date.today() + dt.timedelta(days=3)
    page.fill("#log-work-date", f"{future:%Y-%m-%d}")
    page.click("#log-save")
    # then the message is beside the work date, what she typed stays, nothing is saved
    expect(page.locator("#log-work-date-error")).to_contain_text("cannot be in the future")
    expect(page.locator("#log-hours-error")).to_be_hidden()
    expect(page.locator("#log-hours")).to_have_value("1")
    screenshots(page, output_path, "ticket-log-refused")
    assert not TimeEntry.objects.exists()


def test_operator_report_over_a_range(live_server, page, ticket, output_path):
    # given time of two operators this month
    olga, tom = OperatorFactory(username="olga"), OperatorFactory(username="tom")
    today = dt.date.today()
    for operator, hours in ((olga, "1.25"), (olga, "0.75"), (tom, "0.50")):
        TimeEntryFactory(ticket=ticket, operator=operator, hours=Decimal(hours), work_date=today)
    page.goto(f"{live_server.url}{reverse('admin:login')}")
    page.fill("#id_username", "olga")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    # when she opens the report: per operator, with a total, in one hours format
    page.goto(f"{live_server.url}{reverse('admin:tickets_timeentry_report')}")
    expect(page.locator("#report-table tbody tr")).to_have_count(2)
    expect(page.locator("#report-total th")).to_have_text(["Total", "2.5", "3"])
    # and per client
    page.click("#report-view-client")
    expect(page.locator("#report-table thead")).to_contain_text("Client")
    expect(page.locator("#report h2")).to_contain_text("2.5 h in 3 entries")
    screenshots(page, output_path, "report")
    # when she types an end before the start, the message is beside the field
    page.fill("#id_from", f"{today:%Y-%m-%d}")
    page.fill("#id_to", f"{today - dt.timedelta(days=1):%Y-%m-%d}")
    page.click("#report-show")
    expect(page.locator("#report-to-error")).to_have_text("The end date is before the start date.")
    expect(page.locator("#report")).to_have_count(0)
