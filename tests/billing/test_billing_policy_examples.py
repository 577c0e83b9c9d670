"""The billing increment, the minimum and no-charge time on the worked examples of
docs/billing-rules.md ("Billing increment and minimum", "No-charge time"): one test each."""

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from billing.calculations import (
    TERMS_BILLED,
    TERMS_CURRENT,
    BillingPolicy,
    entries_billed,
    hours_round_up,
    statement_compute,
)
from billing.models import BillableItem, BilledTerms
from billing.selectors.rollup import period_close_preview
from billing.selectors.statements import statement_for_subscription
from billing.services.rollup import period_close
from packages.services import package_update
from tests.factories import (
    OperatorFactory,
    SubscriptionFactory,
    TicketFactory,
    package_with_prices,
)
from tickets.models import TimeEntry
from tickets.services import time_entry_log, time_entry_no_charge_set

OCTOBER = dt.date(2026, 10, 1)
NOVEMBER = dt.date(2026, 11, 1)
pytestmark = pytest.mark.django_db
D = Decimal


@pytest.fixture(autouse=True)
def november(time_machine):
    time_machine.move_to(dt.datetime(2026, 11, 20, 9, 0, tzinfo=dt.UTC), tick=False)


def pay_per_hour(increment="0.25", rounding="entry", minimum="0", included="0", fee="0.00"):
    """0 h included, no fee, 60.00 EUR per hour: what is billed is the overtime item."""
    package = package_with_prices(
        {"EUR": (fee, "60.00")},
        included_hours=D(included),
        billing_increment=increment,
        billing_rounding=rounding,
        billing_minimum=D(minimum),
    )
    return SubscriptionFactory(package=package, start_date=dt.date(2026, 9, 1))


def log(subscription, tickets: dict[str, list[str]], day=14, month=OCTOBER, operator=None):
    """Log ``{"A": ["0.25", "1.00"], "B": [...]}``: the entries of each ticket."""
    operator = operator or OperatorFactory()
    logged = {}
    for name, hours in tickets.items():
        ticket = TicketFactory(subscription=subscription, subject=f"Ticket {name}")
        logged[name] = [
            time_entry_log(
                ticket=ticket, operator=operator, hours=value, work_date=month.replace(day=day)
            )
            for value in hours
        ]
    return logged


def overtime_of(subscription) -> BillableItem | None:
    return BillableItem.objects.filter(subscription=subscription, kind="overtime").first()


# --- the rule, as a pure function -----------------------------------------------------------


def test_rounding_is_always_up():
    assert hours_round_up(D("1.25"), "0.50") == D("1.50")
    assert hours_round_up(D("1.50"), "0.50") == D("1.50")
    assert hours_round_up(D("0.25"), "1.00") == D("1.00")
    assert hours_round_up(D("2.00"), "1.00") == D("2.00")


def test_per_entry_and_per_ticket_month_differ_on_small_entries():
    entries = [D("0.25"), D("0.25"), D("0.25")]
    assert entries_billed(entries, BillingPolicy("0.50", "entry")) == D("1.50")
    assert entries_billed(entries, BillingPolicy("0.50", "ticket_month")) == D("1.00")


def test_the_default_policy_bills_what_is_logged():
    assert entries_billed([D("1.25"), D("0.50")], BillingPolicy()) == D("1.75")


# --- example 1: the default -------------------------------------------------------------------


def test_example_default_policy_bills_the_time_as_logged():
    subscription = pay_per_hour()
    log(subscription, {"A": ["1.25"]})
    period_close(month=OCTOBER)
    item = overtime_of(subscription)
    assert item.quantity == D("1.25")
    assert item.amount.amount == D("75.00")
    assert item.description == "Support overtime 2026-10: 1.25 h x 60.00 EUR"


# --- example 2: 0.50 h per entry ----------------------------------------------------------


def test_example_half_hour_per_entry():
    subscription = pay_per_hour(increment="0.50")
    log(subscription, {"A": ["0.25", "1.00"]})
    period_close(month=OCTOBER)
    item = overtime_of(subscription)
    assert item.quantity == D("1.50")
    assert item.amount.amount == D("90.00")
    assert item.description == (
        "Support overtime 2026-10: 1.50 h x 60.00 EUR (1.25 h logged, 1.50 h billed)"
    )


# --- example 3: per entry against per ticket-month ---------------------------------------------


@pytest.mark.parametrize(("rounding", "billed"), [("entry", "1.50"), ("ticket_month", "1.00")])
def test_example_three_quarter_hours_per_entry_or_per_ticket_month(rounding, billed):
    subscription = pay_per_hour(increment="0.50", rounding=rounding)
    log(subscription, {"A": ["0.25", "0.25", "0.25"]})
    statement = statement_for_subscription(subscription=subscription, month=OCTOBER)
    assert statement.logged_hours == D("0.75")
    assert statement.used_hours == D(billed)
    period_close(month=OCTOBER)
    assert overtime_of(subscription).quantity == D(billed)


# --- example 4: one hour per ticket-month, two tickets -----------------------------------------


def test_example_one_hour_per_ticket_month_two_tickets():
    subscription = pay_per_hour(increment="1.00", rounding="ticket_month")
    log(subscription, {"A": ["0.25"], "B": ["1.00", "1.25"]})
    period_close(month=OCTOBER)
    item = overtime_of(subscription)
    assert item.quantity == D("4.00")  # A: 1.00, B: 2.25 -> 3.00
    assert item.amount.amount == D("240.00")
    assert "(2.50 h logged, 4.00 h billed)" in item.description


# --- example 5: a minimum per ticket-month ------------------------------------------------------


def test_example_minimum_half_hour_per_ticket_month():
    subscription = pay_per_hour(minimum="0.50")
    log(subscription, {"A": ["0.25"], "B": ["1.00"]})
    period_close(month=OCTOBER)
    item = overtime_of(subscription)
    assert item.quantity == D("1.50")  # A: 0.25 -> 0.50, B: 1.00
    assert item.amount.amount == D("90.00")


def test_example_minimum_applies_in_each_month_of_a_ticket():
    subscription = pay_per_hour(minimum="0.50")
    operator = OperatorFactory()
    ticket = TicketFactory(subscription=subscription)
    for month in (OCTOBER, NOVEMBER):
        time_entry_log(
            ticket=ticket, operator=operator, hours="0.25", work_date=month.replace(day=2)
        )
    for month in (OCTOBER, NOVEMBER):
        statement = statement_for_subscription(subscription=subscription, month=month)
        assert (statement.logged_hours, statement.used_hours) == (D("0.25"), D("0.50"))


# --- example 6: the policy within the included hours -------------------------------------------


def test_example_rounded_time_counts_against_the_included_hours():
    subscription = pay_per_hour(
        increment="1.00", rounding="ticket_month", included="10", fee="500.00"
    )
    log(subscription, {str(n): ["0.75"] for n in range(11)})  # 11 tickets of 0.75 h
    statement = statement_for_subscription(subscription=subscription, month=OCTOBER)
    assert statement.logged_hours == D("8.25")
    assert statement.used_hours == D("11.00")
    assert statement.remaining_hours == D("0.00")
    assert statement.overtime_hours == D("1.00")
    assert statement.hours_label == "8.25 h logged, 11.00 h billed"
    period_close(month=OCTOBER)
    assert overtime_of(subscription).amount.amount == D("60.00")


# --- example 7: no-charge time ----------------------------------------------------------------


def test_example_no_charge_time_is_worked_but_not_billed():
    subscription = pay_per_hour(included="10", fee="500.00")
    operator = OperatorFactory()
    logged = log(subscription, {"A": ["8.00", "3.00"], "B": ["2.00"]}, operator=operator)
    time_entry_no_charge_set(
        entry=logged["A"][1], actor=operator, no_charge=True, reason="Our own mistake"
    )
    statement = statement_for_subscription(subscription=subscription, month=OCTOBER)
    assert statement.logged_hours == D("10.00")
    assert statement.used_hours == D("10.00")
    assert statement.no_charge_hours == D("3.00")
    assert statement.overtime_hours == D("0.00")
    assert statement.hours_label == "10.00 h, 3.00 h no charge"
    period_close(month=OCTOBER)
    assert overtime_of(subscription) is None
    # the entry is still on its ticket, as logged
    assert TimeEntry.objects.get(pk=logged["A"][1].pk).hours == D("3.00")


def test_example_no_charge_time_is_left_out_of_the_rounding_and_the_minimum():
    subscription = pay_per_hour(increment="1.00", rounding="ticket_month", minimum="1.00")
    operator = OperatorFactory()
    logged = log(subscription, {"A": ["0.50"], "B": ["1.25", "0.50"]}, operator=operator)
    time_entry_no_charge_set(
        entry=logged["A"][0], actor=operator, no_charge=True, reason="Goodwill"
    )
    time_entry_no_charge_set(
        entry=logged["B"][1], actor=operator, no_charge=True, reason="Goodwill"
    )
    period_close(month=OCTOBER)
    item = overtime_of(subscription)
    assert item.quantity == D("2.00")  # A: nothing chargeable; B: 1.25 -> 2.00
    assert "(1.25 h logged, 2.00 h billed, 1.00 h no charge)" in item.description


# --- example 8: a policy change after the close -------------------------------------------------


def test_example_a_policy_change_reaches_open_months_only():
    subscription = pay_per_hour()
    log(subscription, {"A": ["1.25"]})
    period_close(month=OCTOBER)
    log(subscription, {"B": ["1.25"]}, month=NOVEMBER, day=3)
    # when the package's policy becomes 1 h per ticket-month
    package_update(
        package=subscription.package,
        fields={"billing_increment": "1.00", "billing_rounding": "ticket_month"},
        prices=None,
    )
    subscription.refresh_from_db()
    subscription.package.refresh_from_db()
    # then October keeps the terms it was billed with
    october = statement_for_subscription(subscription=subscription, month=OCTOBER)
    assert (october.terms, october.used_hours, october.overtime_amount.amount) == (
        TERMS_BILLED,
        D("1.25"),
        D("75.00"),
    )
    terms = BilledTerms.objects.get(subscription=subscription, month=OCTOBER)
    assert (terms.billing_increment, terms.billing_rounding) == ("0.25", "entry")
    # and November, still open, takes the new policy
    november = statement_for_subscription(subscription=subscription, month=NOVEMBER)
    assert (november.terms, november.used_hours) == (TERMS_CURRENT, D("2.00"))


def test_the_close_stores_the_policy_with_the_prices():
    subscription = pay_per_hour(increment="0.50", rounding="ticket_month", minimum="0.75")
    log(subscription, {"A": ["0.25"]})
    preview = period_close_preview(month=OCTOBER, batch_size=100)
    assert preview.expected[0]["total"].amount == D("45.00")  # 0.25 -> 0.50 -> at least 0.75
    period_close(month=OCTOBER)
    terms = BilledTerms.objects.get(subscription=subscription, month=OCTOBER)
    assert (terms.billing_increment, terms.billing_rounding, terms.billing_minimum) == (
        "0.50",
        "ticket_month",
        D("0.75"),
    )
    assert overtime_of(subscription).quantity == D("0.75")


def test_a_statement_keeps_logged_equal_to_used_by_default():
    statement = statement_compute(
        billing_mode="recurring",
        currency="EUR",
        included_hours=D("10"),
        used_hours=D("2.5"),
        fee=D("500"),
        hourly_rate=D("60"),
    )
    assert (statement.logged_hours, statement.no_charge_hours) == (D("2.50"), D("0.00"))
    assert not statement.rounded
    assert statement.hours_label == "2.50 h"


def test_a_package_minimum_must_be_in_quarter_hours():
    subscription = pay_per_hour()
    with pytest.raises(ValidationError) as refusal:
        package_update(
            package=subscription.package, fields={"billing_minimum": D("0.30")}, prices=None
        )
    assert "steps of 0.25" in str(refusal.value)
    subscription.package.refresh_from_db()
    assert subscription.package.billing_minimum == D("0")
