"""Rollup figures on worked examples (DESIGN.md's billing rules)."""

import datetime as dt
from decimal import Decimal

import pytest

from billing.models import BillableItem
from billing.services import period_close
from tests.factories import OperatorFactory, SubscriptionFactory, TicketFactory, package_with_prices
from tickets.services import time_entry_log

OCTOBER = dt.date(2026, 10, 1)
pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def november(time_machine):
    time_machine.move_to(dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.UTC), tick=False)


def log(ticket, *hours, day=14):
    operator = OperatorFactory()
    for value in hours:
        time_entry_log(
            ticket=ticket, operator=operator, hours=value, work_date=OCTOBER.replace(day=day)
        )


def test_over_the_package_bills_fee_and_overtime():
    # given 10 h included at 500.00 EUR, 60.00 EUR per extra hour, and 12.25 h used
    subscription = SubscriptionFactory(package=package_with_prices({"EUR": ("500.00", "60.00")}))
    log(TicketFactory(subscription=subscription), "8", "4.25")
    # when October is closed
    result = period_close(month=OCTOBER)
    # then the fee and 2.25 h of overtime are billed
    items = {i.kind: i for i in BillableItem.objects.filter(subscription=subscription)}
    assert result.items_created == 2
    assert items["fee"].amount.amount == Decimal("500.00")
    assert items["overtime"].quantity == Decimal("2.25")
    assert items["overtime"].amount.amount == Decimal("135.00")
    assert str(items["overtime"].amount.currency) == "EUR"
