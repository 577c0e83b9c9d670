"""The database refuses what the services refuse, even when they are bypassed."""

import datetime as dt
from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction

from packages.models import BillingPeriod
from tests.factories import OperatorFactory, TicketFactory
from tickets.models import TimeEntry

pytestmark = pytest.mark.django_db


def entry_insert(ticket, operator, hours: str) -> TimeEntry:
    with transaction.atomic():
        return TimeEntry.objects.create(
            ticket=ticket,
            subscription=ticket.subscription,
            operator=operator,
            hours=Decimal(hours),
            work_date=dt.date(2026, 10, 14),
        )


@pytest.mark.parametrize("hours", ["0.30", "0.10", "1.01", "0", "0.00", "-0.25", "24.25", "99"])
def test_hours_the_rules_refuse_are_refused_by_the_database(hours):
    # given a direct insert that bypasses the services
    ticket, operator = TicketFactory(), OperatorFactory()
    # then the check constraints refuse it, on SQLite and PostgreSQL alike
    with pytest.raises(IntegrityError):
        entry_insert(ticket, operator, hours)
    assert not TimeEntry.objects.exists()


@pytest.mark.parametrize("hours", ["0.25", "0.50", "0.75", "1.00", "7.25", "23.75", "24.00"])
def test_quarter_hours_up_to_24_are_accepted_by_the_database(hours):
    entry = entry_insert(TicketFactory(), OperatorFactory(), hours)
    entry.refresh_from_db()
    assert entry.hours == Decimal(hours)


def test_a_period_is_the_first_day_of_a_month():
    with pytest.raises(IntegrityError), transaction.atomic():
        BillingPeriod.objects.create(month=dt.date(2026, 10, 2))
    BillingPeriod.objects.create(month=dt.date(2026, 10, 1))
    with pytest.raises(IntegrityError), transaction.atomic():
        BillingPeriod.objects.create(month=dt.date(2026, 10, 1))
