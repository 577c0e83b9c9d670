"""The set-based rollup batch (PostgreSQL) bills under the billing policy exactly what the
row-by-row path computes (``rollup_rows`` and ``rollup_row_drafts``, the SQLite fallback):
increments, per-ticket rounding, minimums, no-charge time, several tickets and subscriptions
sharing their inputs."""

import datetime as dt
from decimal import Decimal

import pytest

from billing.models import BillableItem, BilledTerms
from billing.selectors.rollup import rollup_batches, rollup_row_drafts, rollup_rows
from billing.services.rollup import period_close
from tests.factories import OperatorFactory, SubscriptionFactory, TicketFactory, package_with_prices
from tickets.services import time_entry_log, time_entry_no_charge_set

OCTOBER = dt.date(2026, 10, 1)
pytestmark = pytest.mark.django_db
D = Decimal

POLICIES = [
    # increment, rounding, minimum, included hours, fee
    ("0.25", "entry", "0", "0", "0.00"),
    ("0.50", "entry", "0", "1", "50.00"),
    ("1.00", "ticket_month", "0.50", "0", "0.00"),
    ("0.50", "ticket_month", "1.00", "2", "80.00"),
]
# Per ticket, its entries; "nc" marks one at no charge.
TICKETS = [
    ["0.25", "0.25", "0.75"],
    ["1.25", "0.50 nc"],
    ["0.25 nc"],
    ["2.00", "0.25", "0.25", "1.50"],
]


@pytest.fixture(autouse=True)
def november(time_machine):
    time_machine.move_to(dt.datetime(2026, 11, 20, 9, 0, tzinfo=dt.UTC), tick=False)


def test_the_set_based_batch_writes_what_the_rule_computes_row_by_row():
    operator = OperatorFactory()
    subscriptions = []
    for increment, rounding, minimum, included, fee in POLICIES:
        package = package_with_prices(
            {"EUR": (fee, "60.00")},
            included_hours=D(included),
            billing_increment=increment,
            billing_rounding=rounding,
            billing_minimum=D(minimum),
        )
        # Two subscriptions per package with the same tickets: the same inputs, computed once.
        for _twin in range(2):
            subscription = SubscriptionFactory(package=package, start_date=dt.date(2026, 9, 1))
            subscriptions.append(subscription)
            for day, entries in enumerate(TICKETS, start=3):
                ticket = TicketFactory(subscription=subscription)
                for value in entries:
                    hours, _, flag = value.partition(" ")
                    entry = time_entry_log(
                        ticket=ticket,
                        operator=operator,
                        hours=hours,
                        work_date=OCTOBER.replace(day=day),
                    )
                    if flag:
                        time_entry_no_charge_set(
                            entry=entry, actor=operator, no_charge=True, reason="goodwill"
                        )
    expected = {}
    expected_hours = {}
    for first_id, last_id in rollup_batches(month=OCTOBER, batch_size=3):
        for row in rollup_rows(month=OCTOBER, first_id=first_id, last_id=last_id):
            expected_hours[row["pk"]] = (
                row["logged_hours"],
                row["used_hours"],
                row["no_charge_hours"],
            )
            for draft in rollup_row_drafts(row=row, month=OCTOBER):
                expected[(row["pk"], draft.kind)] = (
                    draft.quantity,
                    draft.amount,
                    draft.description,
                )

    period_close(month=OCTOBER, batch_size=3)

    written = {
        (item.subscription_id, item.kind): (item.quantity, item.amount.amount, item.description)
        for item in BillableItem.objects.filter(period=OCTOBER)
    }
    assert written == expected
    # What a user notices: the rounded and no-charge hours stated on the overtime lines.
    overtime = written[(subscriptions[2].pk, "overtime")]
    assert "h logged" in overtime[2] and "h no charge" in overtime[2]
    for subscription in subscriptions:
        terms = BilledTerms.objects.get(subscription=subscription, month=OCTOBER)
        package = subscription.package
        assert (terms.billing_increment, terms.billing_rounding, terms.billing_minimum) == (
            package.billing_increment,
            package.billing_rounding,
            package.billing_minimum,
        )
        # The month's hours, stored with the terms for the portal's history: as the rule
        # computes them row by row.
        assert (
            terms.logged_hours,
            terms.billed_hours,
            terms.no_charge_hours,
        ) == expected_hours[subscription.pk]
    # 6.50 h chargeable and 0.75 h at no charge; to the quarter hour per entry, as logged.
    first = BilledTerms.objects.get(subscription=subscriptions[0], month=OCTOBER)
    assert (first.logged_hours, first.billed_hours, first.no_charge_hours) == (
        D("6.50"),
        D("6.50"),
        D("0.75"),
    )
    # Per ticket and month to the whole hour, 0.50 h at least: 2 + 2 + 4 h billed.
    third = BilledTerms.objects.get(subscription=subscriptions[4], month=OCTOBER)
    assert (third.logged_hours, third.billed_hours, third.no_charge_hours) == (
        D("6.50"),
        D("8.00"),
        D("0.75"),
    )
