"""Prepaid top-up blocks of a monthly subscription (docs/billing-rules.md, "Top-up blocks"):
the sale and its refusals, the worked examples (each row of the docs is a test here), the
close's draws and expiries, the statement, the portal's lines and the audit trail."""

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from billing.models import BillableItem
from billing.selectors.portal import client_history, client_subscription_usages
from billing.selectors.statements import statement_for_subscription
from billing.services.rollup import period_close
from packages.models import BillingMode, BlockDraw, OveragePolicy, Subscription
from packages.services import subscription_create
from tests.factories import (
    ClientFactory,
    OperatorFactory,
    SubscriptionFactory,
    TicketFactory,
    package_with_prices,
)
from tickets.models import AuditAction, AuditEvent, TimeEntry
from tickets.selectors import subscription_audit_trail
from tickets.services import time_entry_change, time_entry_log
from tickets.services_overage import subscription_overage_set

SEPTEMBER = dt.date(2026, 9, 1)
OCTOBER = dt.date(2026, 10, 1)
NOVEMBER = dt.date(2026, 11, 1)
pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def november(time_machine):
    time_machine.move_to(dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.UTC), tick=False)


def gold(policy=OveragePolicy.BILL, cap=None):
    """10 h included, 500.00 EUR a month, 60.00 EUR per extra hour, since September."""
    subscription = SubscriptionFactory(
        package=package_with_prices({"EUR": ("500.00", "60.00")}, included_hours=Decimal("10")),
        start_date=SEPTEMBER,
    )
    if policy != OveragePolicy.BILL:
        subscription_overage_set(
            subscription=subscription, policy=policy, cap_hours=cap, actor=OperatorFactory()
        )
    subscription.refresh_from_db()
    return subscription


def block(monthly, hours="10", *, start=OCTOBER, expires_on=None, fee="400.00"):
    package = package_with_prices(
        {"EUR": (fee, "0.00")},
        billing_mode=BillingMode.ONE_TIME,
        included_hours=Decimal(hours),
        name=f"Block {hours} h",
    )
    return subscription_create(
        client=monthly.client,
        package=package,
        start_date=start,
        topup_of=monthly,
        expires_on=expires_on,
    )


def log(ticket, hours, day=dt.date(2026, 10, 14), **kwargs):
    return time_entry_log(
        ticket=ticket, operator=OperatorFactory(), hours=hours, work_date=day, **kwargs
    )


def items_of(subscription, month=OCTOBER):
    return {i.kind: i for i in BillableItem.objects.filter(subscription=subscription, period=month)}


# --- the sale ----------------------------------------------------------------------------------


def test_a_block_is_a_one_time_sale_of_the_monthly_subscription_billed_as_one_time_item():
    monthly = gold()
    topup = block(monthly, expires_on=dt.date(2027, 3, 31))
    assert topup.topup_of == monthly and topup.bucket_hours == Decimal("10.00")
    (item,) = BillableItem.objects.filter(subscription=topup)
    assert (item.kind, item.amount.amount) == ("one_time", Decimal("400.00"))


def test_the_sale_refuses_a_foreign_or_one_time_target_a_monthly_block_and_a_bad_expiry():
    monthly = gold()
    other = SubscriptionFactory(client=ClientFactory(), start_date=SEPTEMBER)
    bucket_package = package_with_prices(
        billing_mode=BillingMode.ONE_TIME, included_hours=Decimal("5")
    )
    refusals = {
        "topup_foreign": dict(client=monthly.client, package=bucket_package, topup_of=other),
        "topup_not_recurring": dict(
            client=monthly.client, package=bucket_package, topup_of=block(monthly)
        ),
        "topup_package_recurring": dict(
            client=monthly.client, package=monthly.package, topup_of=monthly
        ),
        "topup_expiry_before_start": dict(
            client=monthly.client,
            package=bucket_package,
            topup_of=monthly,
            expires_on=dt.date(2026, 9, 30),
        ),
        "expiry_without_topup": dict(
            client=monthly.client, package=bucket_package, expires_on=dt.date(2027, 1, 31)
        ),
    }
    count = Subscription.objects.count()
    for code, kwargs in refusals.items():
        with pytest.raises(ValidationError) as refused:
            subscription_create(start_date=OCTOBER, **kwargs)
        assert refused.value.code == code
    assert Subscription.objects.count() == count


def test_time_is_not_logged_on_a_block_itself():
    monthly = gold()
    topup = block(monthly)
    with pytest.raises(ValidationError) as refused:
        log(TicketFactory(client=monthly.client, subscription=topup), "1")
    assert refused.value.code == "topup_block"
    assert TimeEntry.objects.count() == 0


# --- worked examples (docs/billing-rules.md, "Top-up blocks") -----------------------------------


def test_example_blocks_alone_then_the_rest_of_the_block_next_month():
    monthly = gold()
    topup = block(monthly, "10", expires_on=dt.date(2027, 3, 31))
    ticket = TicketFactory(client=monthly.client, subscription=monthly)
    log(ticket, "13.5")
    statement = statement_for_subscription(subscription=monthly, month=OCTOBER)
    assert (statement.block_hours_used, statement.overtime_hours) == (Decimal("3.50"), 0)
    (card,) = [
        u
        for u in client_subscription_usages(client_id=monthly.client_id, month=OCTOBER)
        if u.subscription.pk == monthly.pk
    ]
    assert [line.text for line in card.blocks] == [
        f"3.5 h from your 10 h block #{topup.pk}, 6.5 h left, expires 2027-03-31"
    ]
    # November, while October is still open: October's draw already counts.
    log(ticket, "18", day=dt.date(2026, 11, 2))
    november = statement_for_subscription(subscription=monthly, month=NOVEMBER)
    assert (november.block_hours_available, november.block_hours_used) == (
        Decimal("6.50"),
        Decimal("6.50"),
    )
    assert november.overtime_hours == Decimal("1.50")
    period_close(month=OCTOBER)
    assert {k: i.amount.amount for k, i in items_of(monthly).items()} == {"fee": Decimal("500.00")}
    assert list(BlockDraw.objects.values_list("block_id", "month", "hours")) == [
        (topup.pk, OCTOBER, Decimal("3.50"))
    ]
    # Closed: the same figures, from the stored draw.
    assert statement_for_subscription(subscription=monthly, month=OCTOBER).block_hours_used == (
        Decimal("3.50")
    )
    assert statement_for_subscription(
        subscription=monthly, month=NOVEMBER
    ).overtime_amount.amount == (Decimal("90.00"))


def test_example_a_block_expiring_unused_is_reported_at_the_close_of_its_month():
    monthly = gold()
    topup = block(monthly, "5", expires_on=dt.date(2026, 10, 31))
    ticket = TicketFactory(client=monthly.client, subscription=monthly)
    log(ticket, "12")
    log(ticket, "12", day=dt.date(2026, 11, 2))
    period_close(month=OCTOBER)
    assert {k: i.amount.amount for k, i in items_of(monthly).items()} == {"fee": Decimal("500.00")}
    (event,) = AuditEvent.objects.filter(action=AuditAction.BLOCK_EXPIRED)
    assert event.subscription_id == monthly.pk
    assert event.detail == {
        "period": "2026-10",
        "block": topup.pk,
        "drawn": "2.00",
        "unused": "3.00",
    }
    assert event in [e for e in subscription_audit_trail(subscription_id=monthly.pk)]
    (history,) = [
        h for h in client_history(client_id=monthly.client_id) if h.subscription.pk == monthly.pk
    ]
    (october,) = [row for row in history.rows if row.month == OCTOBER]
    assert october.block_notes == (
        f"2 h from block #{topup.pk} (5 h).",
        f"Block #{topup.pk} expired with 3 h unused.",
    )
    # Expired: never drawn again; November's extra hours are overtime.
    november = statement_for_subscription(subscription=monthly, month=NOVEMBER)
    assert (november.block_hours_available, november.overtime_hours) == (0, Decimal("2.00"))
    period_close(month=OCTOBER)  # again: nothing more
    assert AuditEvent.objects.filter(action=AuditAction.BLOCK_EXPIRED).count() == 1


def test_example_two_blocks_the_one_expiring_first_then_the_oldest():
    monthly = gold()
    older = block(monthly, "5", start=SEPTEMBER)
    expiring = block(monthly, "5", expires_on=dt.date(2027, 3, 31))
    newest = block(monthly, "5")
    ticket = TicketFactory(client=monthly.client, subscription=monthly)
    log(ticket, "18")
    period_close(month=OCTOBER)
    assert dict(BlockDraw.objects.values_list("block_id", "hours")) == {
        expiring.pk: Decimal("5.00"),
        older.pk: Decimal("3.00"),
    }
    assert newest.pk not in dict(BlockDraw.objects.values_list("block_id", "hours"))
    assert items_of(monthly).keys() == {"fee"}


def test_example_combined_included_then_block_then_cap():
    monthly = gold(OveragePolicy.CAP, cap="2")
    block(monthly, "4")
    ticket = TicketFactory(client=monthly.client, subscription=monthly)
    log(ticket, "15.75")
    with pytest.raises(ValidationError) as refused:
        log(ticket, "0.5")
    assert refused.value.messages == [
        "The monthly overage cap is reached: only 0.25 h more can be logged on this "
        "subscription in 2026-10 (10.00 h included + 4.00 h of top-up blocks + 2.00 h cap)."
    ]
    entry = log(ticket, "0.25")
    with pytest.raises(ValidationError):
        time_entry_change(entry=entry, actor=OperatorFactory(), hours="0.5")
    statement = statement_for_subscription(subscription=monthly, month=OCTOBER)
    assert (statement.block_hours_used, statement.overtime_hours) == (
        Decimal("4.00"),
        Decimal("2.00"),
    )
    period_close(month=OCTOBER)
    items = items_of(monthly)
    assert items["overtime"].quantity == Decimal("2.00")
    assert items["overtime"].amount.amount == Decimal("120.00")


def test_under_approve_the_blocks_come_before_time_that_needs_approval():
    monthly = gold(OveragePolicy.APPROVE)
    block(monthly, "2")
    ticket = TicketFactory(client=monthly.client, subscription=monthly)
    log(ticket, "12")  # 10 h included + 2 h of the block: no approval needed
    with pytest.raises(ValidationError) as refused:
        log(ticket, "0.25")
    assert refused.value.code == "approval_needed"
    assert "Time beyond 12.00 h in 2026-10" in refused.value.messages[0]
    log(ticket, "0.25", pending_ok=True)
    statement = statement_for_subscription(subscription=monthly, month=OCTOBER)
    assert (statement.block_hours_used, statement.overtime_hours, statement.unapproved_hours) == (
        Decimal("2.00"),
        Decimal("0.00"),
        Decimal("0.25"),
    )
