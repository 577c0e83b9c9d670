"""Properties of the billing policy (hypothesis): the rule's bounds, the SQL sums agreeing with
the rule on the entries themselves, and closed months that a policy change never reaches."""

import datetime as dt
from decimal import Decimal

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing.calculations import BillingPolicy, entries_billed, hours_round_up
from billing.models import BillableItem
from billing.selectors.portal import client_history
from billing.selectors.statements import (
    hours_usage,
    statement_for_subscription,
    ticket_month_hours,
)
from billing.services.rollup import period_close, period_rollup_batch
from packages.models import BillingIncrement, BillingRounding
from packages.services import package_update
from tests.factories import (
    OperatorFactory,
    SubscriptionFactory,
    TicketFactory,
    TimeEntryFactory,
    package_with_prices,
)
from tickets.models import TimeEntry

OCTOBER = dt.date(2026, 10, 1)
NOW = dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.UTC)
QUARTER = Decimal("0.25")

policies = st.builds(
    BillingPolicy,
    increment=st.sampled_from(BillingIncrement.values),
    rounding=st.sampled_from(BillingRounding.values),
    minimum=st.sampled_from([Decimal(m) for m in ("0", "0.25", "0.50", "1.00", "1.75")]),
)
# One ticket's entries in a month: (quarter hours, no charge?).
ticket_entries = st.lists(st.tuples(st.integers(1, 96), st.booleans()), min_size=1, max_size=6)
month_tickets = st.lists(ticket_entries, min_size=1, max_size=4)
DB_PROPERTY = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@given(hours=st.lists(st.integers(1, 96), max_size=8), policy=policies)
def test_billed_hours_cover_the_logged_hours_and_less_than_one_increment_per_unit(hours, policy):
    entries = [count * QUARTER for count in hours]
    logged = sum(entries, Decimal(0))
    billed = entries_billed(entries, policy)
    # billed >= logged (always rounded UP)
    assert billed >= logged
    if not entries:
        assert billed == 0
        return
    # and below logged + one increment per unit rounded (an entry, or the ticket-month),
    # unless the minimum is what is billed
    units = len(entries) if policy.rounding == BillingRounding.PER_ENTRY else 1
    assert billed < logged + Decimal(policy.increment) * units or billed == policy.minimum
    assert billed >= policy.minimum
    # and a whole number of increments, unless the minimum is what is billed
    assert billed == hours_round_up(billed, policy.increment) or billed == policy.minimum


def _build(tickets: list[list[tuple[int, bool]]], policy: BillingPolicy):
    package = package_with_prices(
        {"EUR": ("0.00", "60.00")},
        included_hours=Decimal("0"),
        billing_increment=policy.increment,
        billing_rounding=policy.rounding,
        billing_minimum=policy.minimum,
    )
    subscription = SubscriptionFactory(package=package, start_date=dt.date(2026, 9, 1))
    operator = OperatorFactory()
    for entries in tickets:
        ticket = TicketFactory(subscription=subscription)
        for day, (count, no_charge) in enumerate(entries, start=1):
            TimeEntryFactory(
                ticket=ticket,
                operator=operator,
                hours=count * QUARTER,
                work_date=OCTOBER.replace(day=day),
                no_charge=no_charge,
                no_charge_reason="Goodwill" if no_charge else "",
            )
    return subscription


@pytest.mark.django_db
@DB_PROPERTY
@given(tickets=month_tickets, policy=policies)
def test_the_sql_sums_agree_with_the_rule_on_the_entries(tickets, policy):
    with transaction.atomic():
        subscription = _build(tickets, policy)
        # when the database sums the month per ticket and the rule is applied to the sums
        rows = ticket_month_hours(TimeEntry.objects.filter(subscription=subscription))
        usage = hours_usage(rows, policy)
        # then it bills what the rule bills on each ticket's chargeable entries
        expected = sum(
            (
                entries_billed([c * QUARTER for c, no_charge in entries if not no_charge], policy)
                for entries in tickets
            ),
            Decimal(0),
        )
        assert usage.billed == expected
        assert usage.logged == sum(
            (c * QUARTER for entries in tickets for c, no_charge in entries if not no_charge),
            Decimal(0),
        )
        assert usage.no_charge == sum(
            (c * QUARTER for entries in tickets for c, no_charge in entries if no_charge),
            Decimal(0),
        )
        # and the rollup bills the same hours
        period_close(month=OCTOBER, now=NOW)
        overtime = BillableItem.objects.filter(subscription=subscription, kind="overtime").first()
        assert (overtime.quantity if overtime else Decimal(0)) == expected
        transaction.set_rollback(True)


def _closed_figures(subscription) -> tuple:
    statement = statement_for_subscription(subscription=subscription, month=OCTOBER)
    [history] = client_history(client_id=subscription.client_id, now=NOW)
    row = next(row for row in history.rows if row.month == OCTOBER)
    items = list(
        BillableItem.objects.filter(subscription=subscription)
        .order_by("kind")
        .values_list("kind", "description", "quantity", "amount")
    )
    return statement, row.statement, items


@pytest.mark.django_db
@DB_PROPERTY
@given(tickets=month_tickets, before=policies, after=policies)
def test_a_policy_change_never_changes_a_closed_month(tickets, before, after, time_machine):
    time_machine.move_to(NOW, tick=False)
    with transaction.atomic():
        subscription = _build(tickets, before)
        period_close(month=OCTOBER, now=NOW)
        closed = _closed_figures(subscription)
        # when the package's policy changes after the close
        package_update(
            package=subscription.package,
            fields={
                "billing_increment": after.increment,
                "billing_rounding": after.rounding,
                "billing_minimum": after.minimum,
            },
            prices=None,
        )
        subscription.package.refresh_from_db()
        # then October's statement, history row and items are as they were billed
        assert _closed_figures(subscription) == closed
        # and its batch, delivered again, writes nothing
        assert (
            period_rollup_batch(month=OCTOBER, first_id=subscription.pk, last_id=subscription.pk)
            == 0
        )
        transaction.set_rollback(True)
