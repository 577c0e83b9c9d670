"""The portal shows the billing policy's effect (logged against billed hours) and time at no
charge: the dashboard's card, the history, a ticket's time and a closed month's entries."""

import datetime as dt
from decimal import Decimal

import pytest

from billing.services.rollup import period_close
from tests.clientarea.conftest import SEPTEMBER, figure, figures, section
from tests.factories import (
    SubscriptionFactory,
    TicketFactory,
    TimeEntryFactory,
    package_with_prices,
)

pytestmark = pytest.mark.django_db


def subscription_of(client, **policy):
    package = package_with_prices({"EUR": ("500.00", "60.00")}, **policy)
    return SubscriptionFactory(client=client, package=package, start_date=SEPTEMBER)


def entry(subscription, hours, month=10, ticket=None, **fields):
    return TimeEntryFactory(
        ticket=ticket or TicketFactory(subscription=subscription),
        hours=Decimal(hours),
        work_date=dt.date(2026, month, 5),
        **fields,
    )


def test_the_card_shows_logged_and_billed_hours(signed_in, portal_user):
    # given 0.50 h per entry, and 0.25 h + 1.00 h logged on one ticket
    subscription = subscription_of(portal_user.client, billing_increment="0.50")
    ticket = entry(subscription, "0.25").ticket
    entry(subscription, "1.00", ticket=ticket)
    # when the client opens the dashboard
    html = section(signed_in.get("/").content.decode(), f"subscription-{subscription.pk}")
    # then the card counts the billed hours and says what was logged
    assert figure(html, "used").startswith("1.50")
    assert figure(html, "logged").startswith("1.25")
    assert "1.25 h logged, 1.50 h billed" in figure(html, "hours-label")


def test_the_default_policy_shows_one_figure(signed_in, portal_user):
    subscription = subscription_of(portal_user.client)
    entry(subscription, "1.25")
    html = section(signed_in.get("/").content.decode(), f"subscription-{subscription.pk}")
    assert figure(html, "used").startswith("1.25")
    assert "logged" not in figures(html)


def test_no_charge_time_is_shown_as_no_charge_and_not_counted(signed_in, portal_user):
    subscription = subscription_of(portal_user.client)
    free = entry(subscription, "2.00", no_charge=True, no_charge_reason="Goodwill")
    entry(subscription, "1.00", ticket=free.ticket)
    html = signed_in.get("/").content.decode()
    card = section(html, f"subscription-{subscription.pk}")
    assert figure(card, "used").startswith("1.00")
    assert figure(card, "no-charge").startswith("2.00")
    # and the ticket's time lists the entry with a "No charge" tag
    ticket_page = signed_in.get(f"/tickets/{free.ticket_id}/").content.decode()
    assert figures(ticket_page)["no-charge"] == ["No charge"]


def test_a_closed_month_shows_logged_and_billed_in_the_history(
    signed_in, portal_user, time_machine
):
    subscription = subscription_of(
        portal_user.client, billing_increment="1.00", billing_rounding="ticket_month"
    )
    entry(subscription, "0.25", month=9)
    entry(subscription, "0.50", month=9, no_charge=True, no_charge_reason="Our mistake")
    time_machine.move_to(dt.datetime(2026, 10, 20, 9, 0, tzinfo=dt.UTC), tick=False)
    period_close(month=SEPTEMBER)
    html = signed_in.get(f"/subscriptions/{subscription.pk}/").content.decode()
    assert "0.25 h logged, 1.00 h billed, 0.50 h no charge" in html
    month = signed_in.get(f"/subscriptions/{subscription.pk}/months/2026-09/").content.decode()
    assert figures(month)["no-charge"] == ["No charge"]
    csv = signed_in.get(f"/subscriptions/{subscription.pk}/months/2026-09/csv/")
    assert ",0.50,billed (no charge)," in csv.content.decode()
