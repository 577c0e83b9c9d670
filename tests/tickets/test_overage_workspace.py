"""The ticket page under an overage policy: the operator reads the hours still allowed before
typing, a refusal shows beside the hours, and time pending approval is logged on request."""

import datetime as dt
from decimal import Decimal

import pytest
from django.urls import reverse

from packages.models import BillingMode, OveragePolicy
from packages.services import subscription_create
from tests.factories import (
    OperatorFactory,
    SubscriptionFactory,
    TicketFactory,
    TimeEntryFactory,
    package_with_prices,
)
from tickets.models import TimeEntry
from tickets.services_overage import subscription_overage_set

pytestmark = pytest.mark.django_db
TODAY = dt.date(2026, 10, 20)


@pytest.fixture(autouse=True)
def october(time_machine):
    time_machine.move_to(dt.datetime(2026, 10, 20, 9, 0, tzinfo=dt.UTC), tick=False)


def ticket_under(policy, cap=None):
    subscription = SubscriptionFactory(
        package=package_with_prices({"EUR": ("500.00", "60.00")}, name="Gold"),
        start_date=dt.date(2026, 10, 1),
    )
    subscription_overage_set(subscription=subscription, policy=policy, cap_hours=cap, actor=None)
    ticket = TicketFactory(subscription=subscription)
    TimeEntryFactory(ticket=ticket, hours=Decimal("9.5"), work_date=TODAY)
    return ticket


def test_the_page_shows_what_the_cap_still_allows_and_refuses_past_it(client):
    ticket = ticket_under(OveragePolicy.CAP, cap="1")
    client.force_login(OperatorFactory())
    page = client.get(reverse("admin:tickets_ticket_change", args=[ticket.pk])).content.decode()
    assert "Overage cap: 1.5 h more can be logged in 2026-10 (10 h included + 1 h cap)." in page
    response = client.post(
        reverse("admin:tickets_ticket_log", args=[ticket.pk]),
        {"hours": "2", "work_date": TODAY.isoformat()},
    )
    assert response.status_code == 400
    assert "only 1.50 h more can be logged" in response.content.decode()
    assert TimeEntry.objects.count() == 1


def test_time_pending_approval_is_logged_when_the_operator_says_so(client):
    ticket = ticket_under(OveragePolicy.APPROVE)
    client.force_login(OperatorFactory())
    url = reverse("admin:tickets_ticket_log", args=[ticket.pk])
    page = client.get(reverse("admin:tickets_ticket_change", args=[ticket.pk])).content.decode()
    assert "Approval needed beyond 10 h in 2026-10" in page
    assert 'id="log-pending-ok"' in page
    refused = client.post(url, {"hours": "1", "work_date": TODAY.isoformat()})
    assert refused.status_code == 400
    assert "needs the client&#x27;s approval" in refused.content.decode()
    saved = client.post(url, {"hours": "1", "work_date": TODAY.isoformat(), "pending_ok": "on"})
    assert saved.status_code == 302
    assert TimeEntry.objects.count() == 2


def test_plain_bill_shows_no_overage_line(client):
    ticket = ticket_under(OveragePolicy.BILL)
    client.force_login(OperatorFactory())
    page = client.get(reverse("admin:tickets_ticket_change", args=[ticket.pk])).content.decode()
    assert 'id="time-overage"' not in page and 'id="log-pending-ok"' not in page


def test_the_cap_line_counts_the_top_up_blocks_and_follows_a_new_block_at_once(client):
    # given a ticket under a 1 h cap whose page was shown (its lists are cached)
    ticket = ticket_under(OveragePolicy.CAP, cap="1")
    client.force_login(OperatorFactory())
    url = reverse("admin:tickets_ticket_change", args=[ticket.pk])
    assert "1.5 h more can be logged in 2026-10 (10 h included + 1 h cap)." in (
        client.get(url).content.decode()
    )
    # when a 2 h block is sold for its subscription (nothing of the ticket's lists changes)
    subscription_create(
        client=ticket.subscription.client,
        package=package_with_prices(
            {"EUR": ("100.00", "0.00")},
            billing_mode=BillingMode.ONE_TIME,
            included_hours=Decimal("2"),
            name="Block 2 h",
        ),
        start_date=dt.date(2026, 10, 1),
        topup_of=ticket.subscription,
    )
    # then the next view of the page counts the block in the cap line (it is not in the
    # cached lists)
    page = client.get(url).content.decode()
    assert (
        "Overage cap: 3.5 h more can be logged in 2026-10 "
        "(10 h included + 2 h of top-up blocks + 1 h cap)."
    ) in page
