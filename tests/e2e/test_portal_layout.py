"""The portal's pages fit a phone (390 px) and a desktop (1400 px) in real Chromium: nothing
runs off the side of the page, tables stack on the phone. Screenshots of each page at each
width are kept with the test's output; the admin's ticket list keeps its last column in view."""

import os
from decimal import Decimal

import pytest
from django.urls import reverse
from playwright.sync_api import Browser, Page, expect

from billing.services.rollup import period_close
from packages.models import BillingMode
from supportbilling.periods import local_today, period_label, period_previous
from tests.factories import (
    PASSWORD,
    ClientUserFactory,
    SubscriptionFactory,
    TicketFactory,
    TimeEntryFactory,
    UserFactory,
    package_with_prices,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WIDTHS = (390, 1400)
OVERFLOW = "document.documentElement.scrollWidth - window.innerWidth"


@pytest.fixture
def portal():
    """Jane of ACME: Gold since last month (closed, 12.25 h of 10 h), a ticket with a long
    subject and time this month, and a 10 h block used last month; the work log is shown."""
    member = ClientUserFactory(user__username="jane", client__name="ACME Ltd")
    today = local_today()
    last_month = period_previous(today.replace(day=1))
    subscription = SubscriptionFactory(
        client=member.client,
        start_date=last_month,
        package=package_with_prices({"EUR": ("500.00", "60.00")}, name="Gold"),
    )
    operator = UserFactory(is_staff=True, first_name="Alice", username="alice")
    ticket = TicketFactory(
        subscription=subscription,
        subject="Migration of the mail cluster to the new data centre in Frankfurt",
    )
    for hours, day, note in (
        ("6.00", last_month, "Moved the mailboxes and checked the DKIM and SPF records"),
        ("6.25", last_month.replace(day=2), "Switched the MX records"),
        ("1.50", today, "Answered the follow-up questions about the certificates"),
    ):
        TimeEntryFactory(
            ticket=ticket, operator=operator, hours=Decimal(hours), work_date=day, note=note
        )
    # and a 10 h block, used last month (its history rows have no overtime figures)
    block = SubscriptionFactory(
        client=member.client,
        start_date=last_month,
        package=package_with_prices(
            {"EUR": ("550.00", "0.00")},
            name="10 hours block",
            billing_mode=BillingMode.ONE_TIME,
            included_hours=Decimal("10"),
        ),
    )
    TimeEntryFactory(
        ticket=TicketFactory(subscription=block, subject="Certificate renewal"),
        operator=operator,
        hours=Decimal("1.50"),
        work_date=last_month.replace(day=3),
        note="Renewed the wildcard certificate",
    )
    period_close(month=last_month)
    return {"member": member, "subscription": subscription, "ticket": ticket, "month": last_month}


def sign_in(page: Page, url: str) -> None:
    page.goto(f"{url}/login/")
    page.get_by_label("Username").fill("jane")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{url}/")


@pytest.mark.parametrize("width", WIDTHS)
def test_portal_pages_fit_the_screen(browser: Browser, live_server, portal, output_path, width):
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    sign_in(page, live_server.url)
    subscription, ticket = portal["subscription"], portal["ticket"]
    pages = {
        "dashboard": "/",
        "history": "/history/",
        "ticket": f"/tickets/{ticket.pk}/",
        "closed-month": reverse(
            "clientarea:closed_month", args=[subscription.pk, period_label(portal["month"])]
        ),
    }
    os.makedirs(output_path, exist_ok=True)
    for name, path in pages.items():
        page.goto(f"{live_server.url}{path}")
        # every list of entries opened, as a reader would
        for summary in page.locator("details.entries > summary").all():
            summary.click()
        assert page.evaluate(OVERFLOW) <= 0, f"{name} runs off the side at {width} px"
        shot = os.path.join(output_path, f"{name}-{width}.png")
        page.screenshot(path=shot, full_page=True)
        assert os.path.getsize(shot) > 0
    context.close()


def test_the_phone_stacks_tables_and_labels_each_cell(browser: Browser, live_server, portal):
    context = browser.new_context(viewport={"width": 390, "height": 900})
    page = context.new_page()
    sign_in(page, live_server.url)
    # the ticket's time: one block per row, each value under its column's name
    page.goto(f"{live_server.url}/tickets/{portal['ticket'].pk}/")
    billing = page.locator("table.ticket-times > tbody > tr > td[data-label='Billing']")
    assert billing.evaluate("el => getComputedStyle(el).display") == "flow-root"
    assert billing.evaluate("el => getComputedStyle(el, '::before').content") == '"Billing"'
    # the e-mail settings: each checkbox at the start of its label's line
    page.goto(f"{live_server.url}/account/notifications/")
    box = page.get_by_label("Ticket e-mails").bounding_box()
    label = page.get_by_text("Ticket e-mails", exact=True).bounding_box()
    assert box["x"] < label["x"] and abs(box["y"] - label["y"]) < label["height"]
    context.close()


# The cells of stacked tables whose column name takes more height than the cell itself: the
# name would run into the next cell.
LABELS_PAST_THEIR_CELL = """
() => [...document.querySelectorAll("table.stack > tbody > tr > td[data-label]")]
  .filter(cell => getComputedStyle(cell, "::before").content !== "none")
  .filter(cell => parseFloat(getComputedStyle(cell, "::before").height)
                  > cell.getBoundingClientRect().height + 0.5)
  .map(cell => cell.dataset.label)
"""


def test_a_column_name_on_two_lines_makes_its_cell_taller_on_the_phone(
    browser: Browser, live_server, portal
):
    context = browser.new_context(viewport={"width": 390, "height": 900})
    page = context.new_page()
    sign_in(page, live_server.url)
    page.goto(f"{live_server.url}/history/")
    # the block's "Overtime amount" (no figure beside it: "—") takes two lines, and no name
    # runs past its cell
    amount = page.locator("td[data-label='Overtime amount']:not([data-figure])").first
    assert amount.evaluate("el => parseFloat(getComputedStyle(el, '::before').height)") > 30
    assert page.evaluate(LABELS_PAST_THEIR_CELL) == []
    context.close()


def test_the_admin_ticket_list_keeps_its_last_column_in_view(
    browser: Browser, live_server, portal, output_path
):
    UserFactory(username="root", is_staff=True, is_superuser=True)
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.goto(f"{live_server.url}{reverse('admin:login')}")
    page.fill("#id_username", "root")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.goto(f"{live_server.url}{reverse('admin:tickets_ticket_changelist')}")
    results = page.locator("#changelist .results")
    assert results.evaluate("el => el.scrollWidth - el.clientWidth") <= 0
    expect(page.locator("#site-name")).to_have_text("Support by Time")
    os.makedirs(output_path, exist_ok=True)
    page.screenshot(path=os.path.join(output_path, "admin-tickets-1400.png"), full_page=True)
    context.close()
