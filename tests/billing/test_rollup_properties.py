"""Properties of the rollup on random months of time entries (hypothesis, real database)."""

import datetime as dt
from decimal import Decimal

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing.models import BillableItem
from billing.services.rollup import period_close, period_rollup_batch
from packages.models import Subscription
from tests.factories import (
    ClientFactory,
    OperatorFactory,
    SubscriptionFactory,
    TicketFactory,
    TimeEntryFactory,
    package_with_prices,
)
from tickets.models import TimeEntry
from tickets.selectors import time_entries_with_billed

pytestmark = pytest.mark.django_db

OCTOBER = dt.date(2026, 10, 1)
NOW = dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.UTC)
QUARTER = Decimal("0.25")

# One subscription's month: its package (included hours, fee, rate) and its entries.
entries = st.lists(
    st.tuples(st.integers(1, 96), st.integers(1, 31)),  # quarter hours, day of October
    max_size=8,
)
subscription_months = st.fixed_dictionaries(
    {
        "included": st.sampled_from(["0", "2", "10", "20.5"]),
        "fee": st.sampled_from(["0.00", "99.99", "500.00"]),
        "rate": st.sampled_from(["0.00", "60.00", "72.33"]),
        "currency": st.sampled_from(["EUR", "USD"]),
        "entries": entries,
    }
)
PROPERTY = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def build(months: list[dict], operator) -> list[tuple[Subscription, Decimal, Decimal]]:
    built = []
    for month in months:
        package = package_with_prices(
            {month["currency"]: (month["fee"], month["rate"])},
            included_hours=Decimal(month["included"]),
        )
        subscription = SubscriptionFactory(
            package=package, client=ClientFactory(currency=month["currency"])
        )
        ticket = TicketFactory(subscription=subscription)
        for count, day in month["entries"]:
            TimeEntryFactory(
                ticket=ticket,
                operator=operator,
                hours=count * QUARTER,
                work_date=OCTOBER.replace(day=day),
            )
        used = sum((count * QUARTER for count, _ in month["entries"]), Decimal(0))
        built.append((subscription, used, Decimal(month["included"])))
    return built


def snapshot() -> list[tuple]:
    return list(
        BillableItem.objects.order_by("subscription_id", "kind").values_list(
            "subscription_id", "kind", "quantity", "unit_price", "amount", "currency"
        )
    )


@PROPERTY
@given(months=st.lists(subscription_months, min_size=1, max_size=4), batch_size=st.integers(1, 3))
def test_the_rollup_bills_every_logged_hour_once(months, batch_size):
    with transaction.atomic():
        operator = OperatorFactory()
        built = build(months, operator)
        # when October is closed
        period_close(month=OCTOBER, now=NOW, batch_size=batch_size)
        items = {(i.subscription_id, i.kind): i for i in BillableItem.objects.all()}
        for subscription, used, included in built:
            overtime = items.get((subscription.pk, "overtime"))
            overtime_hours = overtime.quantity if overtime else Decimal(0)
            # then overtime is never negative and included + overtime covers every hour used
            assert overtime_hours >= 0
            assert overtime_hours == max(used - included, 0)
            assert min(used, included) + overtime_hours == used
            if overtime:
                assert overtime.amount.amount >= 0
                assert overtime.amount.currency == overtime.unit_price.currency
        # and every entry of the month is flagged billed
        assert (
            not time_entries_with_billed(TimeEntry.objects.all())
            .filter(billed_at__isnull=True)
            .exists()
        )
        billed = sum(TimeEntry.objects.values_list("hours", flat=True), Decimal(0))
        assert billed == sum((used for _, used, _ in built), Decimal(0))
        transaction.set_rollback(True)


@PROPERTY
@given(months=st.lists(subscription_months, min_size=1, max_size=4))
def test_the_rollup_run_twice_equals_the_rollup_run_once(months):
    with transaction.atomic():
        built = build(months, OperatorFactory())
        period_close(month=OCTOBER, now=NOW)
        once = snapshot()
        # when the month is closed again and every batch is delivered again
        again = period_close(month=OCTOBER, now=NOW)
        ids = [s.pk for s, _, _ in built]
        rewritten = period_rollup_batch(month=OCTOBER, first_id=min(ids), last_id=max(ids))
        # then nothing more is written
        assert (again.items_created, again.already_closed, rewritten) == (0, True, 0)
        assert snapshot() == once
        transaction.set_rollback(True)
