"""Overage control in real Chromium: an operator sees the hours still allowed under the cap
before typing and is refused past it; then, under the approve policy, logs time pending
approval, and the client approves extra hours in the portal."""

from decimal import Decimal

import pytest
from django.urls import reverse
from playwright.sync_api import Page, expect

from packages.models import OveragePolicy
from supportbilling.periods import local_today
from tests.factories import (
    PASSWORD,
    ClientUserFactory,
    OperatorFactory,
    SubscriptionFactory,
    TicketFactory,
    TimeEntryFactory,
    package_with_prices,
)
from tickets.models import TimeEntry
from tickets.services_overage import subscription_overage_set

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_cap_is_hit_and_the_client_approves_extra_hours(page: Page, live_server):
    # given Jane's Gold (10 h included) under a 1 h cap, with 10 h used this month
    member = ClientUserFactory(user__username="jane", client__name="ACME Ltd")
    today = local_today()
    subscription = SubscriptionFactory(
        client=member.client,
        start_date=today.replace(day=1),
        package=package_with_prices({"EUR": ("500.00", "60.00")}, name="Gold"),
    )
    subscription_overage_set(
        subscription=subscription, policy=OveragePolicy.CAP, cap_hours="1", actor=None
    )
    ticket = TicketFactory(subscription=subscription, subject="Mail server down")
    operator = OperatorFactory(username="olga")
    TimeEntryFactory(ticket=ticket, operator=operator, hours=Decimal("10"), work_date=today)

    # when the operator opens the ticket
    page.goto(f"{live_server.url}{reverse('admin:login')}")
    page.fill("#id_username", "olga")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    ticket_url = f"{live_server.url}{reverse('admin:tickets_ticket_change', args=[ticket.pk])}"
    page.goto(ticket_url)
    # then she reads what is still allowed before typing anything
    expect(page.locator("#time-overage")).to_contain_text("Overage cap: 1 h more can be logged")
    # when she tries 1.5 h, she is refused and told what is left; nothing is saved
    page.fill("#log-hours", "1.5")
    page.click("#log-save")
    expect(page.locator("#log-hours-error")).to_contain_text(
        "The monthly overage cap is reached: only 1.00 h more can be logged"
    )
    assert TimeEntry.objects.count() == 1
    # and 1 h is saved, after which nothing more is allowed
    page.fill("#log-hours", "1")
    page.click("#log-save")
    expect(page.locator(".messagelist")).to_contain_text("Saved 1 h.")
    expect(page.locator("#time-overage")).to_contain_text("0 h more can be logged")

    # when staff switch Gold to approve, she logs half an hour pending the client's approval
    subscription_overage_set(
        subscription=subscription, policy=OveragePolicy.APPROVE, cap_hours=None, actor=None
    )
    page.goto(ticket_url)
    expect(page.locator("#time-overage")).to_contain_text("Approval needed beyond 10 h")
    page.fill("#log-hours", "0.5")
    page.click("#log-save")
    expect(page.locator("#log-hours-error")).to_contain_text("needs the client's approval")
    page.fill("#log-hours", "0.5")
    page.check("#log-pending-ok")
    page.click("#log-save")
    expect(page.locator(".messagelist")).to_contain_text("Saved 0.5 h.")

    # when Jane signs in to the portal
    page.context.clear_cookies()
    page.goto(f"{live_server.url}/login/")
    page.get_by_label("Username").fill("jane")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    panel = page.locator(f"#overage-{subscription.pk}")
    # then she sees the time pending her approval and the decisions of the month
    expect(panel.locator("[data-figure=pending]")).to_have_text("1.50 h")
    expect(panel.locator("[data-list=decisions]")).to_contain_text("pending your approval")
    # when she approves 2 extra hours
    panel.get_by_label("Extra hours to approve for this month").fill("2")
    panel.get_by_role("button", name="Approve").click()
    # then the card shows them approved, the time billed, and the decision recorded
    panel = page.locator(f"#overage-{subscription.pk}")
    expect(page.locator(".messages")).to_contain_text("extra approved for")
    expect(panel.locator("[data-figure=approved]")).to_have_text("2.00 h")
    expect(panel.locator("[data-figure=pending]")).to_have_text("0.00 h")
    expect(panel.locator("[data-list=decisions]")).to_contain_text("2 extra hours approved for")
    card = page.locator(f"#subscription-{subscription.pk}")
    expect(card.locator("[data-figure=overtime-amount]")).to_contain_text("90.00")
