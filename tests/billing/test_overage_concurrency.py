"""On PostgreSQL, with real concurrent connections: two operators logging at once cannot
pass a subscription's overage cap (the subscription row lock, as for a bucket)."""

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from packages.models import OveragePolicy
from tests.billing.test_rollup_concurrency import in_threads
from tests.factories import (
    OperatorFactory,
    SubscriptionFactory,
    TicketFactory,
    package_with_prices,
)
from tickets.models import TimeEntry
from tickets.services import time_entry_log
from tickets.services_overage import subscription_overage_set

NOW = dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.UTC)
OCTOBER = dt.date(2026, 10, 1)


@pytest.fixture
def concurrent_db(postgres, transactional_db):
    return postgres


def test_two_operators_cannot_pass_the_cap_at_the_same_moment(concurrent_db):
    # given 10 h included, a 1 h cap, and 10 h used
    subscription = SubscriptionFactory(
        package=package_with_prices({"EUR": ("500.00", "60.00")}), start_date=dt.date(2026, 9, 1)
    )
    subscription_overage_set(
        subscription=subscription, policy=OveragePolicy.CAP, cap_hours="1", actor=None
    )
    ticket = TicketFactory(subscription=subscription)
    time_entry_log(
        ticket=ticket, operator=OperatorFactory(), hours="10", work_date=OCTOBER, now=NOW
    )
    operators = [OperatorFactory(), OperatorFactory()]
    # when two operators log 0.75 h at the same moment
    outcomes = in_threads(
        *(
            lambda operator=operator: time_entry_log(
                ticket=ticket, operator=operator, hours="0.75", work_date=OCTOBER, now=NOW
            )
            for operator in operators
        )
    )
    # then one is logged, the other told what is left
    logged = [o for o in outcomes if isinstance(o, TimeEntry)]
    refused = [o for o in outcomes if isinstance(o, ValidationError)]
    assert (len(logged), len(refused)) == (1, 1), outcomes
    assert "only 0.25 h more can be logged" in refused[0].messages[0]
    assert sum(e.hours for e in TimeEntry.objects.all()) == Decimal("10.75")
