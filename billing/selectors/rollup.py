"""Reads of the monthly rollup: which subscriptions a month bills, in batches, with their
aggregated hours and terms."""

import datetime as dt
from collections.abc import Mapping
from typing import Any

from django.db.models import (
    Exists,
    F,
    FilteredRelation,
    OuterRef,
    Q,
    QuerySet,
)
from django.db.models.functions import Coalesce

from billing.selectors.statements import (
    current_price,
    hours_used_subquery,
    month_range,
    subscription_runs_in,
)
from packages.models import BillingMode, Subscription
from tickets.models import (
    TimeEntry,
)


def subscriptions_billed_in(*, month: dt.date) -> QuerySet[Subscription]:
    """Subscriptions the rollup of ``month`` touches: those whose dates overlap the month, or
    that have time entries in it (their entries are flagged billed; recurring ones bill)."""
    first, last = month_range(month)
    has_entries = Exists(
        TimeEntry.objects.filter(subscription=OuterRef("pk"), work_date__range=(first, last))
    )
    return Subscription.objects.filter(subscription_runs_in(first, last) | Q(has_entries))


def rollup_batches(*, month: dt.date, batch_size: int) -> list[tuple[int, int]]:
    """Id ranges [first, last] of at most ``batch_size`` subscriptions, in id order."""
    ids = list(subscriptions_billed_in(month=month).order_by("pk").values_list("pk", flat=True))
    return [
        (ids[start], ids[min(start + batch_size, len(ids)) - 1])
        for start in range(0, len(ids), batch_size)
    ]


def rollup_rows(*, month: dt.date, first_id: int, last_id: int) -> list[Mapping[str, Any]]:
    """One row per recurring subscription of the batch with its hours used in ``month`` and
    its terms (included hours, fee and hourly rate in the client's currency), aggregated by
    the database in a single query. Terms already stored for the month (a batch that ran
    before) win over the current ones, so a batch billed again computes what it billed;
    ``stored_terms`` says whether they are stored (their id, else None).

    The subscriptions of ``subscriptions_billed_in``; "has entries in the month" is the
    hours used being above zero (hours are positive), so one correlated sum per subscription
    serves both, and the price is an outer join. This shape is 2.5 times faster than three
    correlated subqueries and than a GROUP BY over the joined entries, which sorts on every
    selected column (docs/performance.md)."""
    first, last = month_range(month)
    return list(
        Subscription.objects.filter(
            pk__range=(first_id, last_id), package__billing_mode=BillingMode.RECURRING
        )
        .annotate(
            price=FilteredRelation(
                "package__prices", condition=Q(package__prices__currency=F("client__currency"))
            ),
            stored=FilteredRelation("billed_terms", condition=Q(billed_terms__month=month)),
            used_hours=hours_used_subquery(month),
            included_hours=Coalesce("stored__included_hours", "package__included_hours"),
            fee=Coalesce("stored__fee", "price__fee"),
            hourly_rate=Coalesce("stored__hourly_rate", "price__hourly_rate"),
            stored_terms=F("stored__id"),
        )
        .filter(subscription_runs_in(first, last) | Q(used_hours__gt=0))
        .order_by("pk")
        .values(
            "pk",
            "client_id",
            "client__currency",
            "package__name",
            "included_hours",
            "package__invoice_action",
            "used_hours",
            "fee",
            "hourly_rate",
            "stored_terms",
        )
    )


def subscriptions_without_price(*, month: dt.date) -> list[int]:
    """Recurring subscriptions to bill in ``month`` whose package has no price in the
    client's currency: the rollup refuses to run until they are fixed."""
    return list(
        subscriptions_billed_in(month=month)
        .filter(package__billing_mode=BillingMode.RECURRING)
        .exclude(Exists(current_price()))
        .values_list("pk", flat=True)
    )
