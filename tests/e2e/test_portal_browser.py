"""The client portal in real Chromium: sign in, read the card, use the calculator, open a
ticket and reply. Writes a screenshot of the dashboard to the test's output folder."""

import os
from decimal import Decimal

import pytest
from playwright.sync_api import Page, expect

from supportbilling.periods import local_today
from tests.factories import (
    PASSWORD,
    ClientUserFactory,
    SubscriptionFactory,
    TicketFactory,
    TimeEntryFactory,
    UserFactory,
    package_with_prices,
)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
]

AMBER = "rgb(199, 119, 0)"  # --warning in portal.css


@pytest.fixture
def jane():
    """Jane of ACME (EUR): Gold, 10 h included at 500.00 EUR + 60.00 EUR/h, 8.50 h used."""
    member = ClientUserFactory(
        user__username="jane", client__name="ACME Ltd", client__currency="EUR"
    )
    today = local_today()
    subscription = SubscriptionFactory(
        client=member.client,
        start_date=today.replace(day=1),
        package=package_with_prices({"EUR": ("500.00", "60.00")}, name="Gold"),
    )
    ticket = TicketFactory(subscription=subscription, subject="Mail server down")
    # A staff user without the Operators group: after another transactional test the groups
    # the migrations create may be gone.
    operator = UserFactory(is_staff=True, first_name="Alice")
    for hours, note in (("6.00", "Postfix"), ("2.50", "Queue")):
        TimeEntryFactory(
            ticket=ticket, operator=operator, hours=Decimal(hours), work_date=today, note=note
        )
    return member


def test_client_reads_usage_estimates_cost_and_talks_to_support(
    page: Page, live_server, jane, output_path
):
    # given Jane is not signed in
    page.goto(f"{live_server.url}/")
    expect(page).to_have_url(f"{live_server.url}/login/?next=/")
    # when she signs in
    page.get_by_label("Username").fill("jane")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    # then she sees Gold's card: 8.50 h used, 1.50 h left, an amber bar at 85 %
    expect(page).to_have_url(f"{live_server.url}/")
    card = page.locator("section.card", has=page.get_by_role("heading", name="Gold"))
    expect(card.locator('[data-figure="used"]')).to_have_text("8.50 h")
    expect(card.locator('[data-figure="left"]')).to_have_text("1.50 h")
    expect(card.locator('[data-figure="fee"]')).to_have_text("€500.00")
    bar = card.get_by_role("progressbar", name="Hours used this month")
    expect(bar).to_have_attribute("aria-valuenow", "85")
    fill = card.locator(".bar-fill")
    assert fill.evaluate("el => getComputedStyle(el).fill") == AMBER
    assert fill.get_attribute("width") == "85"
    expect(page.get_by_role("status").first).to_contain_text("You have used 85%")
    # and a screenshot of the dashboard is kept with the test's output
    os.makedirs(output_path, exist_ok=True)
    page.screenshot(path=os.path.join(output_path, "dashboard.png"), full_page=True)
    assert os.path.getsize(os.path.join(output_path, "dashboard.png")) > 0
    # and one at a phone's width
    desktop = page.viewport_size
    page.set_viewport_size({"width": 390, "height": 844})
    page.screenshot(path=os.path.join(output_path, "dashboard-390.png"), full_page=True)
    assert os.path.getsize(os.path.join(output_path, "dashboard-390.png")) > 0
    page.set_viewport_size(desktop)

    # when she asks the calculator about 2.5 more hours
    page.evaluate("window.notReloaded = true")
    card.get_by_label("Extra hours this month").fill("2.5")
    card.get_by_role("button", name="Estimate").click()
    # then it shows 1 h of overtime: 60.00 on top of 500.00, without reloading the page
    estimate = card.locator("output.estimate")
    expect(estimate.locator('[data-field="total"]')).to_have_text("€560.00")
    expect(estimate.locator('[data-field="overtime_amount"]')).to_have_text("€60.00")
    expect(estimate.locator('[data-field="overtime_hours"]')).to_have_text("1.00 h")
    assert page.evaluate("window.notReloaded") is True
    # and a typo is explained, not crashed on
    card.get_by_label("Extra hours this month").fill("0.1")
    card.get_by_role("button", name="Estimate").click()
    expect(card.get_by_role("alert")).to_contain_text("quarter hours")

    # when she expands the ticket's time and opens the ticket
    card.get_by_text("2 entries").click()
    expect(card.get_by_role("cell", name="Postfix")).to_be_visible()
    card.get_by_role("link", name="Mail server down").click()
    # then she sees its time and can reply
    expect(page.get_by_role("heading", name="Mail server down")).to_be_visible()
    expect(page.locator('[data-figure="ticket-total"]')).to_have_text("8.50 h")
    page.get_by_label("Your reply").fill("Thank you, mail flows again.")
    page.get_by_role("button", name="Send reply").click()
    expect(page.locator("ol.conversation")).to_contain_text("Thank you, mail flows again.")
    expect(page.locator('[data-figure="status"]')).to_have_text("Customer reply")

    # when she opens a new ticket and replies to it
    page.get_by_role("link", name="Tickets", exact=True).click()
    page.get_by_role("link", name="New ticket").click()
    page.get_by_label("Subject").fill("Renew our certificate")
    page.get_by_label("What do you need?").fill("It expires on Friday.")
    page.get_by_role("button", name="Open ticket").click()
    expect(page.get_by_role("heading", name="Renew our certificate")).to_be_visible()
    page.get_by_label("Your reply").fill("The domain is acme.test.")
    page.get_by_role("button", name="Send reply").click()
    expect(page.locator("ol.conversation li")).to_have_count(2)
