"""The overage policy in the set-based rollup batch (PostgreSQL) and in the terms stored with a
closed month (docs/billing-rules.md, "Overage policies"; docs/decisions.md, "Overage control
after the merge with the billing policy"): under ``approve`` only approved overtime bills,
the approvals are read per batch in a constant number of queries, and a policy changed after
the close never changes the closed month's statement."""

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext

from billing.models import BillableItem, BilledTerms
from billing.selectors.portal import client_history
from billing.selectors.rollup import rollup_batches, rollup_row_drafts, rollup_rows
from billing.selectors.statements import statement_for_subscription
from billing.services.rollup import period_close, period_rollup_batch
from packages.models import OveragePolicy
from tests.factories import (
    ClientUserFactory,
    OperatorFactory,
    SubscriptionFactory,
    TicketFactory,
    package_with_prices,
)
from tickets.services import time_entry_log, time_entry_no_charge_set
from tickets.services_overage import overage_approve, subscription_overage_set

OCTOBER = dt.date(2026, 10, 1)
DAY = dt.date(2026, 10, 14)
pytestmark = pytest.mark.django_db
D = Decimal


@pytest.fixture(autouse=True)
def november(time_machine):
    time_machine.move_to(dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.UTC), tick=False)


def subscription_with(package, policy, logged: list[str], approved: str | None = None):
    """A subscription of ``package`` under ``policy`` with ``logged`` entries in October (one
    ticket; "nc" marks one at no charge) and ``approved`` extra hours."""
    subscription = SubscriptionFactory(package=package, start_date=dt.date(2026, 9, 1))
    operator = OperatorFactory()
    subscription_overage_set(subscription=subscription, policy=policy, cap_hours=None, actor=None)
    ticket = TicketFactory(subscription=subscription)
    for value in logged:
        hours, _, flag = value.partition(" ")
        entry = time_entry_log(
            ticket=ticket, operator=operator, hours=hours, work_date=DAY, pending_ok=True
        )
        if flag:
            time_entry_no_charge_set(entry=entry, actor=operator, no_charge=True, reason="goodwill")
    if approved:
        user = ClientUserFactory(client=subscription.client).user
        overage_approve(subscription=subscription, hours=approved, user=user, month=OCTOBER)
    subscription.refresh_from_db()
    return subscription


def gold(**policy):
    """10 h included, 500.00 EUR a month, 60.00 EUR per extra hour."""
    return package_with_prices({"EUR": ("500.00", "60.00")}, included_hours=D("10"), **policy)


def overtime_of(subscription):
    item = BillableItem.objects.filter(subscription=subscription, kind="overtime").first()
    return item.quantity if item else None


def test_the_set_based_batch_bills_approved_overtime_only_as_the_rule_computes_row_by_row():
    # given subscriptions under approve, bill and cap in one batch, with the billing policy
    # (hours rounded up to 0.50 per entry) and time at no charge
    halves = gold(billing_increment="0.50")
    subscriptions = [
        subscription_with(gold(), OveragePolicy.APPROVE, ["8", "4.25"], "1"),
        subscription_with(gold(), OveragePolicy.APPROVE, ["8", "4.25"], None),
        subscription_with(gold(), OveragePolicy.APPROVE, ["11"], "3"),
        subscription_with(halves, OveragePolicy.APPROVE, ["10", "1.25", "2 nc"], "5"),
        subscription_with(halves, OveragePolicy.APPROVE, ["10", "1.25"], "1"),
        subscription_with(gold(), OveragePolicy.BILL, ["8", "4.25"]),
    ]
    expected = {}
    for first_id, last_id in rollup_batches(month=OCTOBER, batch_size=100):
        for row in rollup_rows(month=OCTOBER, first_id=first_id, last_id=last_id):
            for draft in rollup_row_drafts(row=row, month=OCTOBER):
                expected[(row["pk"], draft.kind)] = (draft.quantity, draft.amount)
    # when the month closes in one batch (set-based on PostgreSQL)
    period_close(month=OCTOBER, batch_size=100)
    # then the items are those the row-by-row rule computes
    written = {
        (item.subscription_id, item.kind): (item.quantity, item.amount.amount)
        for item in BillableItem.objects.filter(period=OCTOBER)
    }
    assert written == expected
    # and only the approved overtime is billed under approve
    assert [overtime_of(s) for s in subscriptions] == [
        D("1.00"),  # 2.25 h over, 1 h approved
        None,  # nothing approved: the fee only
        D("1.00"),  # 1 h over, 3 h approved: an approval is a ceiling
        D("1.50"),  # 10 + 1.50 billed (1.25 rounded up), 2 h at no charge never count
        D("1.00"),  # 1.50 h over (rounded), 1 h approved
        D("2.25"),  # bill: every hour beyond
    ]
    # and the policy and the approved hours are stored with the month's terms
    stored = {
        terms.subscription_id: (terms.overage_policy, terms.approved_hours)
        for terms in BilledTerms.objects.filter(month=OCTOBER)
    }
    assert stored[subscriptions[0].pk] == (OveragePolicy.APPROVE, D("1.00"))
    assert stored[subscriptions[1].pk] == (OveragePolicy.APPROVE, D("0.00"))
    assert stored[subscriptions[5].pk] == (OveragePolicy.BILL, D("0.00"))


def batch_queries(count: int) -> int:
    package = gold()
    subscriptions = [
        subscription_with(package, OveragePolicy.APPROVE, ["12"], str(index + 1))
        for index in range(count)
    ]
    with CaptureQueriesContext(connection) as captured:
        period_rollup_batch(
            month=OCTOBER, first_id=subscriptions[0].pk, last_id=subscriptions[-1].pk
        )
    return len(captured)


def test_the_approvals_cost_no_query_per_subscription():
    # given a batch of 2 and a batch of 6 subscriptions under approve, each with its own
    # approved hours (distinct inputs of the rule)
    small = batch_queries(2)
    large = batch_queries(6)
    # then both batches issue as many queries
    assert small == large
    # and each bills its own approved overtime (1 h, 2 h, then at most the 2 h over)
    overtime = sorted(
        BillableItem.objects.filter(period=OCTOBER, kind="overtime").values_list(
            "quantity", flat=True
        )
    )
    assert overtime == [D("1.00"), D("1.00"), *[D("2.00")] * 6]


def test_a_policy_changed_after_the_close_never_changes_the_closed_month():
    # given a month closed under approve: 12.25 h used, 1 h approved
    approve = subscription_with(gold(), OveragePolicy.APPROVE, ["8", "4.25"], "1")
    # and one closed under bill: 12.25 h used
    bill = subscription_with(gold(), OveragePolicy.BILL, ["8", "4.25"])
    period_close(month=OCTOBER)
    # when staff change both policies afterwards
    subscription_overage_set(
        subscription=approve, policy=OveragePolicy.BILL, cap_hours=None, actor=None
    )
    subscription_overage_set(
        subscription=bill, policy=OveragePolicy.APPROVE, cap_hours=None, actor=None
    )
    approve.refresh_from_db()
    bill.refresh_from_db()
    # then October's statements still read as billed
    statement = statement_for_subscription(subscription=approve, month=OCTOBER)
    assert statement.overage_policy == OveragePolicy.APPROVE
    assert (statement.overtime_hours, statement.unapproved_hours) == (D("1.00"), D("1.25"))
    assert statement.overtime_amount.amount == D("60.00")
    statement = statement_for_subscription(subscription=bill, month=OCTOBER)
    assert statement.overage_policy == OveragePolicy.BILL
    assert (statement.overtime_hours, statement.unapproved_hours) == (D("2.25"), D("0.00"))
    # and so does the client's history, next to the items billed
    [row] = client_history(client_id=approve.client_id)[0].rows
    assert (row.statement.overtime_hours, row.statement.unapproved_hours) == (
        D("1.00"),
        D("1.25"),
    )
    assert row.statement.overtime_amount == row.items[-1].amount
    [row] = client_history(client_id=bill.client_id)[0].rows
    assert (row.statement.overtime_hours, row.statement.unapproved_hours) == (
        D("2.25"),
        D("0.00"),
    )


def test_a_batch_billed_again_after_a_policy_change_bills_with_the_stored_policy():
    # given a subscription under approve whose month a first batch billed: 1 h of 2.25 h
    subscription = subscription_with(gold(), OveragePolicy.APPROVE, ["8", "4.25"], "1")
    assert period_rollup_batch(month=OCTOBER, first_id=subscription.pk, last_id=subscription.pk)
    # when its overtime item is gone (deleted by hand) and the policy becomes
    # bill before the batch runs again
    BillableItem.objects.filter(subscription=subscription, kind="overtime").delete()
    subscription_overage_set(
        subscription=subscription, policy=OveragePolicy.BILL, cap_hours=None, actor=None
    )
    period_rollup_batch(month=OCTOBER, first_id=subscription.pk, last_id=subscription.pk)
    # then it bills what the stored terms say: the approved hour only
    assert overtime_of(subscription) == D("1.00")


def test_time_at_no_charge_never_counts_towards_the_cap_and_charging_it_again_is_checked():
    # given a subscription capped at 10 h included + 1 h with 10.5 h logged, 2 h at no charge
    subscription = subscription_with(gold(), OveragePolicy.CAP, ["8.5"])
    subscription_overage_set(
        subscription=subscription, policy=OveragePolicy.CAP, cap_hours="1", actor=None
    )
    operator = OperatorFactory()
    ticket = subscription.tickets.get()
    free = time_entry_log(ticket=ticket, operator=operator, hours="2", work_date=DAY)
    time_entry_no_charge_set(entry=free, actor=operator, no_charge=True, reason="goodwill")
    # when 2.5 h more are logged: 11 h chargeable, within the cap
    time_entry_log(ticket=ticket, operator=operator, hours="2.5", work_date=DAY)
    # then charging the 2 h again would pass the cap, and is refused, changing nothing
    with pytest.raises(ValidationError, match="overage cap is reached"):
        time_entry_no_charge_set(entry=free, actor=operator, no_charge=False)
    free.refresh_from_db()
    assert free.no_charge
