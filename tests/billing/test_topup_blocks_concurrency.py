"""On PostgreSQL, with real concurrent connections: two operators logging at once cannot
overdraw a top-up block under the cap policy (the subscription's row, then its blocks' rows,
are locked by the time services; docs/billing-rules.md, "Top-up blocks")."""

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from packages.models import BillingMode, OveragePolicy
from packages.services import subscription_create
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


def test_two_operators_cannot_overdraw_a_block_at_the_same_moment(concurrent_db):
    # given 10 h included, a 2 h block, no extra hour allowed (cap of 0 h), and 10 h used
    monthly = SubscriptionFactory(
        package=package_with_prices({"EUR": ("500.00", "60.00")}, included_hours=Decimal("10")),
        start_date=dt.date(2026, 9, 1),
    )
    subscription_overage_set(
        subscription=monthly, policy=OveragePolicy.CAP, cap_hours="0", actor=None
    )
    subscription_create(
        client=monthly.client,
        package=package_with_prices(
            {"EUR": ("150.00", "0.00")},
            billing_mode=BillingMode.ONE_TIME,
            included_hours=Decimal("2"),
        ),
        start_date=OCTOBER,
        topup_of=monthly,
        now=NOW,
    )
    ticket = TicketFactory(client=monthly.client, subscription=monthly)
    time_entry_log(
        ticket=ticket, operator=OperatorFactory(), hours="10", work_date=OCTOBER, now=NOW
    )
    operators = [OperatorFactory(), OperatorFactory()]
    # when two operators log 1.5 h at the same moment
    outcomes = in_threads(
        *(
            lambda operator=operator: time_entry_log(
                ticket=ticket, operator=operator, hours="1.5", work_date=OCTOBER, now=NOW
            )
            for operator in operators
        )
    )
    # then one is logged, the other told what the block has left
    logged = [o for o in outcomes if isinstance(o, TimeEntry)]
    refused = [o for o in outcomes if isinstance(o, ValidationError)]
    assert (len(logged), len(refused)) == (1, 1), outcomes
    assert "only 0.50 h more can be logged" in refused[0].messages[0]
    assert "10.00 h included + 2.00 h of top-up blocks + 0.00 h cap" in refused[0].messages[0]
    assert sum(e.hours for e in TimeEntry.objects.all()) == Decimal("11.50")
