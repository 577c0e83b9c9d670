"""The rollup of a batch issues the same number of queries whatever its size."""

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from djmoney.money import Money

from billing.models import BillableItem, BilledTerms
from billing.selectors.rollup import rollup_row_drafts, rollup_rows
from billing.services.rollup import period_rollup_batch
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
    # PostgreSQL: the lock, the rows into a temporary table, their hours per ticket into
    # another, the distinct inputs of the billing policy per ticket, the billed hours summed
    # per subscription (UPDATE), their top-up blocks (none), the distinct inputs of the rule,
    # the items, the terms, the tables dropped, one audit row; elsewhere: the rows, their
    # hours per ticket, the blocks, what is billed, the items, the terms, the audit row. Then
    # the webhook endpoints that want new items (webhooks/receivers.py). Nothing per time
    # entry.
    assert small_queries == 2 + (13 if connection.vendor == "postgresql" else 7) + 1
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
    # given a batch of which one item was written by another batch (other boundaries)
    first_id, last_id = busy_subscriptions(2)
    row = rollup_rows(month=OCTOBER, first_id=first_id, last_id=first_id)[0]
    fee = rollup_row_drafts(row=row, month=OCTOBER)[0]
    BillableItem.objects.create(
        client_id=row["client_id"],
        subscription_id=first_id,
        period=OCTOBER,
        kind=fee.kind,
        description=fee.description,
        unit=fee.unit,
        quantity=fee.quantity,
        unit_price=Money(fee.unit_price, "EUR"),
        amount=Money(fee.amount, "EUR"),
        invoice_action=row["package__invoice_action"],
    )
    # when the batch is billed, then it writes the other items and every subscription's
    # terms, once
    assert period_rollup_batch(month=OCTOBER, first_id=first_id, last_id=last_id) == 3
    assert BillableItem.objects.filter(period=OCTOBER).count() == 4
    assert BilledTerms.objects.filter(month=OCTOBER).count() == 2
    assert period_rollup_batch(month=OCTOBER, first_id=first_id, last_id=last_id) == 0


def test_a_batch_with_many_distinct_hours_bills_each_subscription_by_its_own():
    # given subscriptions of the same package that used different hours, some the same
    package = package_with_prices({"EUR": ("500.00", "60.00")}, included_hours=Decimal("10"))
    logged = [Decimal("3"), Decimal("10.25"), Decimal("12.5"), Decimal("12.5"), Decimal("21")]
    subscriptions = [SubscriptionFactory(package=package) for _ in logged]
    for subscription, hours in zip(subscriptions, logged, strict=True):
        TimeEntryFactory(ticket__subscription=subscription, hours=hours)
    # when the batch is billed
    period_rollup_batch(month=OCTOBER, first_id=subscriptions[0].pk, last_id=subscriptions[-1].pk)
    # then each subscription has its fee and the overtime of its own hours
    overtime = dict(
        BillableItem.objects.filter(period=OCTOBER, kind="overtime").values_list(
            "subscription_id", "quantity"
        )
    )
    assert overtime == {
        subscriptions[1].pk: Decimal("0.25"),
        subscriptions[2].pk: Decimal("2.50"),
        subscriptions[3].pk: Decimal("2.50"),
        subscriptions[4].pk: Decimal("11.00"),
    }
    assert BillableItem.objects.filter(period=OCTOBER, kind="fee").count() == 5
    described = BillableItem.objects.get(subscription=subscriptions[4], kind="overtime")
    assert described.description == "Support overtime 2026-10: 11.00 h x 60.00 EUR"
    assert described.amount == Money("660.00", "EUR")
