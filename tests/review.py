"""A month in review, for the tests of the review window and disputes (docs/billing-rules.md,
"Review window and disputes"): October 2026 billed on 1 November at 00:05 with a 5-day window,
so it is in review until 6 November 00:05; "now" is 2 November 09:00."""

import datetime as dt
from types import SimpleNamespace

from billing.models import BillableItem
from billing.services.rollup import period_close
from tests.factories import (
    ClientUserFactory,
    FinanceFactory,
    OperatorFactory,
    subscription_with_overtime,
)
from tickets.models import TimeEntry

OCTOBER = dt.date(2026, 10, 1)
CLOSED_AT = dt.datetime(2026, 11, 1, 0, 5, tzinfo=dt.UTC)
NOW = dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.UTC)
WINDOW_DAYS = 5
REVIEW_UNTIL = CLOSED_AT + dt.timedelta(days=WINDOW_DAYS)


def month_in_review(settings, time_machine, *, days: int = WINDOW_DAYS) -> SimpleNamespace:
    """Two clients with a fee and overtime each in October, closed at CLOSED_AT; a portal user
    of each, a finance user and an operator; time then stands at NOW."""
    settings.REVIEW_WINDOW_DAYS = days
    time_machine.move_to(CLOSED_AT, tick=False)
    mine, other = subscription_with_overtime(), subscription_with_overtime()
    period_close(month=OCTOBER)
    time_machine.move_to(NOW, tick=False)

    def side(subscription):
        items = BillableItem.objects.filter(subscription=subscription)
        return SimpleNamespace(
            subscription=subscription,
            client=subscription.client,
            user=ClientUserFactory(client=subscription.client).user,
            fee=items.get(kind="fee"),
            overtime=items.get(kind="overtime"),
            entry=TimeEntry.objects.filter(subscription=subscription).order_by("pk").first(),
        )

    return SimpleNamespace(
        a=side(mine), b=side(other), finance=FinanceFactory(), operator=OperatorFactory()
    )
