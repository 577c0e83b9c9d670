"""Top-up blocks in the set-based rollup batch (PostgreSQL) and with the billing policy
(docs/billing-rules.md, "Top-up blocks"; docs/decisions.md, "Top-up blocks on the set-based
rollup"): the blocks' available hours are one more input of the rule, the draws and expiries
are written per batch in a constant number of statements, and what the batch writes is what
the row-by-row rule computes."""

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext

from billing.models import BillableItem
from billing.selectors.rollup import (
    rollup_batches,
    rollup_block_balances,
    rollup_block_draws,
    rollup_row_drafts,
    rollup_rows,
    rollup_rows_with_blocks,
)
from billing.selectors.statements import statement_for_subscription
from billing.services.rollup import period_close, period_rollup_batch
from packages.models import BillingMode, BlockDraw, OveragePolicy
from packages.services import subscription_create
from tests.factories import (
    OperatorFactory,
    SubscriptionFactory,
    TicketFactory,
    package_with_prices,
)
from tickets.models import AuditAction, AuditEvent
from tickets.services import time_entry_log, time_entry_no_charge_set
from tickets.services_overage import subscription_overage_set

SEPTEMBER = dt.date(2026, 9, 1)
OCTOBER = dt.date(2026, 10, 1)
DAY = dt.date(2026, 10, 14)
pytestmark = pytest.mark.django_db
D = Decimal


@pytest.fixture(autouse=True)
def november(time_machine):
    time_machine.move_to(dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.UTC), tick=False)


def monthly(policy=OveragePolicy.BILL, cap=None, **billing):
    """10 h included, 500.00 EUR a month, 60.00 EUR per extra hour, since September."""
    subscription = SubscriptionFactory(
        package=package_with_prices(
            {"EUR": ("500.00", "60.00")}, included_hours=D("10"), **billing
        ),
        start_date=SEPTEMBER,
    )
    if policy != OveragePolicy.BILL:
        subscription_overage_set(
            subscription=subscription, policy=policy, cap_hours=cap, actor=OperatorFactory()
        )
    subscription.refresh_from_db()
    return subscription


def block(subscription, hours, *, expires_on=None):
    package = package_with_prices(
        {"EUR": ("400.00", "0.00")},
        billing_mode=BillingMode.ONE_TIME,
        included_hours=D(hours),
        name=f"Block {hours} h",
    )
    return subscription_create(
        client=subscription.client,
        package=package,
        start_date=OCTOBER,
        topup_of=subscription,
        expires_on=expires_on,
    )


def log(subscription, tickets, operator=None):
    """``[["9.75"], ["0.25", "2 nc"]]``: the entries of each ticket ("nc": at no charge)."""
    operator = operator or OperatorFactory()
    for hours_list in tickets:
        ticket = TicketFactory(client=subscription.client, subscription=subscription)
        for value in hours_list:
            hours, _, flag = value.partition(" ")
            entry = time_entry_log(
                ticket=ticket, operator=operator, hours=hours, work_date=DAY, pending_ok=True
            )
            if flag:
                time_entry_no_charge_set(
                    entry=entry, actor=operator, no_charge=True, reason="goodwill"
                )


def row_by_row(month):
    """What the row-by-row rule computes for every batch: the items and the draws."""
    items, draws = {}, {}
    for first_id, last_id in rollup_batches(month=month, batch_size=100):
        rows = rollup_rows(month=month, first_id=first_id, last_id=last_id)
        balances = rollup_block_balances(month=month, rows=rows)
        rows = rollup_rows_with_blocks(rows, balances)
        for row in rows:
            for draft in rollup_row_drafts(row=row, month=month):
                items[(row["pk"], draft.kind)] = (draft.quantity, draft.amount)
        for draft in rollup_block_draws(month=month, rows=rows, balances=balances):
            draws[draft.block_id] = (draft.hours, draft.expired_hours)
    return items, draws


def test_the_set_based_batch_with_blocks_writes_what_the_rule_computes_row_by_row():
    # given subscriptions with and without blocks in one batch: blocks that are used up, left
    # partly unused, expiring this month, two in order; the billing policy (0.50 per ticket
    # and month, a 0.50 minimum) and time at no charge
    halves = {"billing_increment": "0.50", "billing_rounding": "ticket_month"}
    subscriptions = [
        monthly(),
        monthly(),
        monthly(**halves, billing_minimum=D("0.50")),
        monthly(),
        monthly(**halves),
        monthly(),
    ]
    log(subscriptions[0], [["12"]])  # a 5 h block: 2 h drawn
    block(subscriptions[0], "5")
    log(subscriptions[1], [["13"]])  # a 2 h block used up, then 1 h overtime
    block(subscriptions[1], "2")
    log(subscriptions[2], [["9.75"], ["0.25"], ["1.25", "3 nc"]])  # billed 10 + 0.5 + 1.5
    block(subscriptions[2], "1.5", expires_on=dt.date(2026, 10, 31))
    log(subscriptions[3], [["11"]])  # expiring this month with 4 h unused
    block(subscriptions[3], "5", expires_on=dt.date(2026, 10, 31))
    log(subscriptions[4], [["17.25"]])  # two blocks: the one expiring first, then the other
    block(subscriptions[4], "3")
    block(subscriptions[4], "3", expires_on=dt.date(2027, 3, 31))
    log(subscriptions[5], [["12"]])  # no block: 2 h overtime
    items, draws = row_by_row(OCTOBER)
    # when the month closes in one batch (set-based on PostgreSQL)
    period_close(month=OCTOBER, batch_size=100)
    # then the items are those the row-by-row rule computes
    written = {
        (item.subscription_id, item.kind): (item.quantity, item.amount.amount)
        for item in BillableItem.objects.filter(period=OCTOBER, kind__in=["fee", "overtime"])
    }
    assert written == items
    # and so are the draws and expiries
    stored = {
        draw.block_id: (draw.hours, draw.expired_hours)
        for draw in BlockDraw.objects.filter(month=OCTOBER)
    }
    assert stored == draws
    overtime = {pk: quantity for (pk, kind), (quantity, _) in written.items() if kind == "overtime"}
    assert overtime == {
        subscriptions[1].pk: D("1.00"),
        subscriptions[2].pk: D("0.50"),  # 12.00 h billed: 10 included, 1.5 block, 0.5 over
        subscriptions[4].pk: D("1.50"),  # 17.50 h billed: 10, 3 + 3 of the blocks, 1.5 over
        subscriptions[5].pk: D("2.00"),
    }
    assert sorted(stored.values()) == sorted(
        [
            (D("2.00"), D("0.00")),
            (D("2.00"), D("0.00")),
            (D("1.50"), D("0.00")),
            (D("1.00"), D("4.00")),
            (D("3.00"), D("0.00")),
            (D("3.00"), D("0.00")),
        ]
    )
    assert AuditEvent.objects.filter(action=AuditAction.BLOCK_EXPIRED).count() == 1
    # and a batch run again writes nothing more
    first, last = subscriptions[0].pk, subscriptions[-1].pk
    assert period_rollup_batch(month=OCTOBER, first_id=first, last_id=last) == 0
    assert BlockDraw.objects.filter(month=OCTOBER).count() == 6


def batch_queries(count):
    subscriptions = [monthly() for _ in range(count)]
    for index, subscription in enumerate(subscriptions):
        log(subscription, [["12"]])
        block(subscription, str(index + 3), expires_on=dt.date(2026, 10, 31))
    with CaptureQueriesContext(connection) as captured:
        period_rollup_batch(
            month=OCTOBER, first_id=subscriptions[0].pk, last_id=subscriptions[-1].pk
        )
    return len(captured)


def test_the_blocks_cost_no_query_per_subscription():
    # given a batch of 2 and a batch of 6 subscriptions, each with its own block size (distinct
    # inputs of the rule), all expiring this month with hours unused
    # then both batches issue as many queries
    assert batch_queries(2) == batch_queries(6)
    assert BlockDraw.objects.filter(month=OCTOBER).count() == 8


# --- the combined worked example (docs/billing-rules.md, "Top-up blocks") ---------------------


def test_example_increment_minimum_block_and_cap_in_one_month():
    # given 10 h included, 0.50 h increments per ticket and month with a 0.50 h minimum, a 2 h
    # block and the cap policy with 1 h cap
    subscription = monthly(
        OveragePolicy.CAP,
        cap="1",
        billing_increment="0.50",
        billing_rounding="ticket_month",
        billing_minimum=D("0.50"),
    )
    block(subscription, "2", expires_on=dt.date(2027, 3, 31))
    operator = OperatorFactory()
    tickets = [TicketFactory(client=subscription.client, subscription=subscription) for _ in "ABC"]

    def log_on(ticket, hours):
        return time_entry_log(ticket=ticket, operator=operator, hours=hours, work_date=DAY)

    log_on(tickets[0], "9.75")  # A: billed 10.00
    log_on(tickets[1], "0.25")  # B: billed 0.50 (the minimum)
    log_on(tickets[2], "2.50")  # C: billed 2.50
    # when 1 h more is logged on C, then the cap refuses it: the cap counts the hours logged
    with pytest.raises(ValidationError) as refused:
        log_on(tickets[2], "1")
    assert refused.value.messages == [
        "The monthly overage cap is reached: only 0.50 h more can be logged on this "
        "subscription in 2026-10 (10.00 h included + 2.00 h of top-up blocks + 1.00 h cap)."
    ]
    log_on(tickets[2], "0.5")  # C: 3.00 h logged and billed
    # then the month: 13.00 h logged, 13.50 h billed; 10 included, 2 from the block, 1.50 h
    # overtime (the rounding of A and B bills 0.50 h beyond the cap)
    statement = statement_for_subscription(subscription=subscription, month=OCTOBER)
    assert (statement.logged_hours, statement.used_hours) == (D("13.00"), D("13.50"))
    assert (statement.block_hours_available, statement.block_hours_used) == (D("2.00"), D("2.00"))
    assert statement.overtime_hours == D("1.50")
    period_close(month=OCTOBER)
    items = {item.kind: item for item in BillableItem.objects.filter(subscription=subscription)}
    assert items["fee"].amount.amount == D("500.00")
    assert items["overtime"].quantity == D("1.50")
    assert items["overtime"].amount.amount == D("90.00")
    assert "(13.00 h logged, 13.50 h billed)" in items["overtime"].description
    draw = BlockDraw.objects.get(month=OCTOBER)
    assert (draw.hours, draw.expired_hours) == (D("2.00"), D("0.00"))
