"""The rollup of a batch issues the same number of queries whatever its size."""

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from billing.calculations import rollup_item_drafts, statement_compute
from billing.models import BillableItem, BilledTerms
from billing.selectors.rollup import rollup_rows
from billing.services.rollup import _copy_new_rows, period_rollup_batch
from packages.models import BillingMode, BlockDraw, Subscription
from tests.factories import SubscriptionFactory, TimeEntryFactory, package_with_prices

OCTOBER = dt.date(2026, 10, 1)
pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def november(time_machine):
    time_machine.move_to(dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.UTC), tick=False)


def busy_subscriptions(count: int) -> tuple[int, int]:
    """``count`` subscriptions of 10 h at 500 EUR that each logged 12 h in October."""
    package = package_with_prices({"EUR": ("500.00", "60.00")}, included_hours=Decimal("10"))
    subscriptions = [SubscriptionFactory(package=package) for _ in range(count)]
    for subscription in subscriptions:
        TimeEntryFactory(ticket__subscription=subscription, hours=Decimal("12.00"))
    return subscriptions[0].pk, subscriptions[-1].pk


def queries_of_batch(first_id: int, last_id: int) -> int:
    with CaptureQueriesContext(connection) as captured:
        period_rollup_batch(month=OCTOBER, first_id=first_id, last_id=last_id)
    return len(captured)


def test_a_batch_of_ten_costs_the_queries_of_a_batch_of_two():
    # given a batch of 2 and a batch of 10 subscriptions, each with a fee and overtime
    small = busy_subscriptions(2)
    large = busy_subscriptions(10)
    # when each batch is billed
    small_queries = queries_of_batch(*small)
    large_queries = queries_of_batch(*large)
    # then both issue the same number of queries, and every item is written
    assert small_queries == large_queries
    # The batch's transaction (a savepoint and its release inside the test's), then on
    # PostgreSQL: the lock, the rows, their top-up blocks (none), what is billed, a
    # savepoint around the two COPY (items and terms, not in Django's log) and its release,
    # one audit row; elsewhere: the rows, the blocks, what is billed, the items, the terms,
    # the audit row. Nothing per time entry.
    assert small_queries == 2 + (7 if connection.vendor == "postgresql" else 6)
    assert BillableItem.objects.filter(period=OCTOBER).count() == 2 * 12
    overtime = BillableItem.objects.filter(period=OCTOBER, kind="overtime").first()
    assert overtime.quantity == Decimal("2.00")
    assert overtime.amount.amount == Decimal("120.00")


def with_blocks(first_id: int, last_id: int) -> None:
    """A 1 h top-up block (expiring in October) on each subscription of the range."""
    block_package = package_with_prices(
        {"EUR": ("60.00", "0.00")}, billing_mode=BillingMode.ONE_TIME, included_hours=Decimal("1")
    )
    for subscription in Subscription.objects.filter(pk__range=(first_id, last_id)):
        SubscriptionFactory(
            client=subscription.client,
            package=block_package,
            topup_of=subscription,
            start_date=OCTOBER,
            expires_on=dt.date(2026, 10, 31),
        )


def test_a_batch_with_top_up_blocks_costs_the_same_queries_whatever_its_size():
    # given a batch of 2 and a batch of 10 subscriptions, each with a block of 1 h
    small = busy_subscriptions(2)
    large = busy_subscriptions(10)
    with_blocks(*small)
    with_blocks(*large)
    # when each batch is billed, then both issue the same number of queries: the blocks'
    # stored draws, the closed months, the earlier months' hours, the draws already stored,
    # the insert of the draws and that of the expiries' audit rows come on top
    assert queries_of_batch(*small) == queries_of_batch(*large)
    assert BlockDraw.objects.filter(month=OCTOBER, hours=Decimal("1.00")).count() == 12
    overtime = BillableItem.objects.filter(period=OCTOBER, kind="overtime").first()
    assert overtime.quantity == Decimal("1.00")


def test_a_batch_billed_again_writes_nothing_more():
    # given a batch that was billed
    first_id, last_id = busy_subscriptions(3)
    assert period_rollup_batch(month=OCTOBER, first_id=first_id, last_id=last_id) == 6
    # when it runs again, then it writes nothing
    assert period_rollup_batch(month=OCTOBER, first_id=first_id, last_id=last_id) == 0
    assert BillableItem.objects.filter(period=OCTOBER).count() == 6


def test_a_batch_meeting_an_item_written_meanwhile_writes_the_rest_once(postgres):
    # given a batch read before another batch (other boundaries) wrote one of its items
    first_id, last_id = busy_subscriptions(2)
    rows = rollup_rows(month=OCTOBER, first_id=first_id, last_id=last_id)
    new_items = [
        (row, draft)
        for row in rows
        for draft in rollup_item_drafts(
            statement=statement_compute(
                billing_mode=BillingMode.RECURRING,
                currency=row["client__currency"],
                included_hours=row["included_hours"],
                used_hours=row["used_hours"],
                fee=row["fee"],
                hourly_rate=row["hourly_rate"],
            ),
            package_name=row["package__name"],
            month=OCTOBER,
        )
    ]
    with transaction.atomic():
        _copy_new_rows(new_items[:1], [], month=OCTOBER)
    # when the batch writes straight into the tables, then it writes nothing there
    with transaction.atomic():
        assert _copy_new_rows(new_items, rows, month=OCTOBER) is False
        assert BillableItem.objects.filter(period=OCTOBER).count() == 1
        assert not BilledTerms.objects.filter(month=OCTOBER).exists()
    # and the batch as a whole writes the other items and every subscription's terms, once
    assert period_rollup_batch(month=OCTOBER, first_id=first_id, last_id=last_id) == 3
    assert BillableItem.objects.filter(period=OCTOBER).count() == 4
    assert BilledTerms.objects.filter(month=OCTOBER).count() == 2
