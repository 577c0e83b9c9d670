"""The rollup is set-based: its number of queries does not grow with the subscriptions."""

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from billing.models import BillableItem
from billing.services.rollup import period_close
from packages.models import BillingPeriod, Subscription
from tests.factories import ClientFactory, OperatorFactory, package_with_prices
from tickets.models import Ticket, TimeEntry
from tickets.selectors import time_entries_with_billed

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.UTC)
SEPTEMBER = dt.date(2026, 9, 1)
OCTOBER = dt.date(2026, 10, 1)


def subscriptions_with_overtime(count: int, month: dt.date) -> None:
    """``count`` subscriptions active only in ``month``, each with 11 h logged (1 h over)."""
    package = package_with_prices({"EUR": ("500.00", "60.00")}, included_hours=Decimal("10"))
    clients = [ClientFactory() for _ in range(10)]
    operator = OperatorFactory()
    last_day = month.replace(day=28)
    BillingPeriod.objects.get_or_create(
        month=month
    )  # billing began, as subscription_create records
    subscriptions = Subscription.objects.bulk_create(
        Subscription(client=clients[n % 10], package=package, start_date=month, end_date=last_day)
        for n in range(count)
    )
    tickets = Ticket.objects.bulk_create(
        Ticket(client=s.client, subscription=s, subject="Work") for s in subscriptions
    )
    TimeEntry.objects.bulk_create(
        TimeEntry(
            ticket=t,
            subscription=t.subscription,
            operator=operator,
            hours=Decimal("11.00"),
            work_date=month.replace(day=10),
        )
        for t in tickets
    )


def rollup_queries(month: dt.date, settings) -> list[str]:
    settings.ROLLUP_BATCH_SIZE = 2000
    with CaptureQueriesContext(connection) as queries:
        period_close(month=month, now=NOW)
    return [q["sql"] for q in queries.captured_queries]


def test_the_rollup_of_1000_subscriptions_takes_as_many_queries_as_of_10(postgres, settings):
    # given 10 subscriptions to bill in September and 1,000 in October (one batch each)
    subscriptions_with_overtime(10, SEPTEMBER)
    subscriptions_with_overtime(1000, OCTOBER)
    # when both months are closed
    small = rollup_queries(SEPTEMBER, settings)
    large = rollup_queries(OCTOBER, settings)
    # then both take the same number of queries, and every subscription is billed
    assert len(large) == len(small)
    assert BillableItem.objects.filter(period=SEPTEMBER).count() == 2 * 10
    assert BillableItem.objects.filter(period=OCTOBER).count() == 2 * 1000
    assert (
        not time_entries_with_billed(TimeEntry.objects.all())
        .filter(billed_at__isnull=True)
        .exists()
    )


def test_the_rollups_reads_and_updates_do_not_grow_with_subscriptions(settings):
    """On any database. (SQLite caps a statement at 999 parameters, so Django splits the bulk
    INSERTs there; PostgreSQL does not, see the test above.)"""
    subscriptions_with_overtime(10, SEPTEMBER)
    subscriptions_with_overtime(300, OCTOBER)
    small = rollup_queries(SEPTEMBER, settings)
    large = rollup_queries(OCTOBER, settings)

    def not_inserts(queries: list[str]) -> list[str]:
        return [sql for sql in queries if not sql.lstrip().upper().startswith("INSERT")]

    assert len(not_inserts(large)) == len(not_inserts(small))
    assert BillableItem.objects.filter(period=OCTOBER).count() == 2 * 300
