"""The number of queries of each page does not grow with tickets, entries or months."""

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from billing.services.rollup import period_close
from packages.models import BillingMode
from supportbilling.periods import period_next
from tests.factories import (
    SubscriptionFactory,
    TicketFactory,
    TicketMessageFactory,
    TimeEntryFactory,
    package_with_prices,
)
from tests.prepared import prepared_runs
from tickets.models import MessageKind

pytestmark = pytest.mark.django_db
START = dt.date(2026, 1, 1)


def grow(client_obj, *, tickets: int, months: int):
    """Two subscriptions (monthly and a bucket) with ``tickets`` tickets each holding time,
    messages and internal notes in each of ``months`` closed months and in October."""
    monthly = SubscriptionFactory(client=client_obj, start_date=START)
    bucket = SubscriptionFactory(
        client=client_obj,
        start_date=START,
        package=package_with_prices(
            {"EUR": ("5000.00", "0.00")},
            billing_mode=BillingMode.ONE_TIME,
            included_hours=Decimal("500"),
        ),
    )
    for subscription in (monthly, bucket):
        for _ in range(tickets):
            ticket = TicketFactory(subscription=subscription)
            TicketMessageFactory(ticket=ticket)
            TicketMessageFactory(ticket=ticket, kind=MessageKind.INTERNAL_NOTE)
            month = START
            for _ in range(months):
                TimeEntryFactory(ticket=ticket, work_date=month.replace(day=5))
                month = period_next(month)
            TimeEntryFactory(ticket=ticket, work_date=dt.date(2026, 10, 6))
    month = START
    for _ in range(months):
        period_close(month=month)
        month = period_next(month)
    return monthly, ticket


def queries(client, url):
    with CaptureQueriesContext(connection) as context:
        response = client.get(url)
    assert response.status_code == 200
    return len(context.captured_queries)


PAGES = [
    "/",
    "/?subscription={monthly}&extra=2.5",
    "/subscriptions/{monthly}/estimate/?extra=2.5",
    "/history/",
    "/subscriptions/{monthly}/",
    "/tickets/",
    "/tickets/?status=open",
    "/tickets/{ticket}/",
]


def test_query_counts_do_not_grow(signed_in, portal_user):
    # given a client with one ticket per subscription and one closed month
    monthly, ticket = grow(portal_user.client, tickets=1, months=1)
    small = {
        page: queries(signed_in, page.format(monthly=monthly.pk, ticket=ticket.pk))
        for page in PAGES
    }
    # when it has 8 tickets per subscription and 6 closed months (and the first ones)
    grow(portal_user.client, tickets=8, months=6)
    # then every page runs the same number of queries
    large = {
        page: queries(signed_in, page.format(monthly=monthly.pk, ticket=ticket.pk))
        for page in PAGES
    }
    assert large == small
    # and few of them (session, user, client, then the page's own reads; a ticket's page also
    # reads the files of its messages, a dashboard its stamp, the hours per ticket of the
    # billing policy and the overage decisions, the history its stamp, the approved extra
    # hours, the overage decisions and the months with a statement PDF; the dashboard, its
    # calculator and the history the top-up blocks)
    limits = {
        "/": 11,
        "/tickets/{ticket}/": 9,
        "/history/": 14,
        "/subscriptions/{monthly}/": 14,
        "/?subscription={monthly}&extra=2.5": 12,
    }
    for page, count in small.items():
        assert count <= limits.get(page, 9), (page, count)


# The dashboard: session, user, client (the portal's sign-in check), its stamp (what it shows
# depends on, billing.selectors.portal_stamp), and when that changed the stamp again in the
# snapshot the cards are computed in (in production one statement more sets that snapshot;
# a test runs in its own transaction), the cards (subscriptions,
# prices, stored terms and a bucket's hours in one query, the month's hours per subscription
# and ticket for the billing policy in another), then the month's entries (with whether their
# month is closed) and invoiced items (tickets' time badges), the month's overage decisions,
# and the top-up blocks of the monthly subscriptions (one query when there are none).
DASHBOARD_QUERIES = 11
# Unchanged since the last view: session, user, client and the stamp.
DASHBOARD_KEPT_QUERIES = 4


def test_dashboard_queries_do_not_grow_with_subscriptions_or_closed_months(
    postgres, signed_in, portal_user
):
    # given one monthly subscription with time this month
    first = SubscriptionFactory(client=portal_user.client, start_date=START)
    TimeEntryFactory(ticket=TicketFactory(subscription=first), work_date=dt.date(2026, 10, 2))
    assert queries(signed_in, "/") == DASHBOARD_QUERIES
    assert queries(signed_in, "/") == DASHBOARD_KEPT_QUERIES
    # when the client has two more subscriptions (a bucket among them), 8 tickets each, and
    # 6 closed months of history
    grow(portal_user.client, tickets=8, months=6)
    # then the dashboard reads as many times: computed once after the change, then kept
    assert queries(signed_in, "/") == DASHBOARD_QUERIES
    assert queries(signed_in, "/") == DASHBOARD_KEPT_QUERIES
    # and the calculator's reload (computed each time, without the stamps) adds its queries
    # for the estimated card (the card, its month's hours per ticket, its blocks)
    assert queries(signed_in, f"/?subscription={first.pk}&extra=2.5") == DASHBOARD_QUERIES + 1


# The History pages: session, user, client, their stamp, and when that changed the stamp again
# (in the snapshot, as the dashboard's) and the page's reads (billing.selectors.portal.
# client_history, the overage decisions, the months with a statement).
HISTORY_QUERIES = 14
HISTORY_KEPT_QUERIES = 4


@pytest.mark.parametrize("path", ["/history/", "/subscriptions/{monthly}/"])
def test_history_is_kept_while_unchanged_and_does_not_grow(postgres, signed_in, portal_user, path):
    # given a client with one ticket per subscription and one closed month
    monthly, _ = grow(portal_user.client, tickets=1, months=1)
    url = path.format(monthly=monthly.pk)
    # then the page is read once, then kept
    assert queries(signed_in, url) == HISTORY_QUERIES
    assert queries(signed_in, url) == HISTORY_KEPT_QUERIES
    # when it has 8 tickets per subscription and 6 closed months
    grow(portal_user.client, tickets=8, months=6)
    # then it is read again once, as many times, and then kept
    assert queries(signed_in, url) == HISTORY_QUERIES
    assert queries(signed_in, url) == HISTORY_KEPT_QUERIES


def test_dashboard_without_time_this_month_skips_the_badges(postgres, signed_in, portal_user):
    SubscriptionFactory(client=portal_user.client, start_date=START)

    assert queries(signed_in, "/") == DASHBOARD_QUERIES - 1


def test_the_stamps_are_planned_once_per_connection(postgres, signed_in, portal_user):
    # given a client with one ticket per subscription and one closed month
    grow(portal_user.client, tickets=1, months=1)
    # when the dashboard and the History page are viewed seven times each
    for _ in range(7):
        queries(signed_in, "/")
        queries(signed_in, "/history/")
    # then each stamp is one prepared statement of the connection, prepared once it has run
    # five times and run as such since (and by the tests before on the same connection)
    runs = prepared_runs(postgres, "customers_client c")
    assert len(runs) == 2 and min(runs) >= 2
