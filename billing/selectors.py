"""Reads of billing: statements of subscriptions, the rollup's aggregated rows, periods."""

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db.models import (
    Count,
    DecimalField,
    Exists,
    Min,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
)
from django.db.models.functions import Coalesce

from billing.calculations import Statement, money_round, statement_compute
from billing.models import BillableItem, ItemStatus
from packages.models import BillingMode, PackagePrice, Subscription
from supportbilling.periods import (
    local_today,
    period_has_ended,
    period_last_day,
    period_of,
    period_previous,
    periods_between,
)
from tickets.models import BillingPeriod, PeriodStatus, TimeEntry
from tickets.selectors import subscription_hours_used

HOURS = DecimalField(max_digits=12, decimal_places=2)


class MissingPrice(LookupError):
    """The package has no price in the client's currency."""


def package_price_for(*, package_id: int, currency: str) -> PackagePrice:
    price = PackagePrice.objects.filter(package_id=package_id, currency=currency).first()
    if price is None:
        raise MissingPrice(f"The package has no price in {currency}.")
    return price


def statement_for_subscription(
    *, subscription: Subscription, month: dt.date, extra_hours: Decimal = Decimal("0")
) -> Statement:
    """The statement of one subscription for ``month``; ``extra_hours`` answers "what if"
    (the portal's cost calculator) with the very same arithmetic."""
    currency = subscription.client.currency
    price = package_price_for(package_id=subscription.package_id, currency=currency)
    used = subscription_hours_used(subscription=subscription, month=month)
    return statement_compute(
        billing_mode=subscription.package.billing_mode,
        currency=currency,
        included_hours=subscription.package.included_hours,
        used_hours=used + extra_hours,
        fee=price.fee.amount,
        hourly_rate=price.hourly_rate.amount,
    )


def _month_range(month: dt.date) -> tuple[dt.date, dt.date]:
    return month, period_last_day(month)


def subscriptions_billed_in(*, month: dt.date) -> QuerySet[Subscription]:
    """Subscriptions the rollup of ``month`` touches: those whose dates overlap the month, or
    that have time entries in it (their entries are flagged billed; recurring ones bill)."""
    first, last = _month_range(month)
    overlaps = Q(start_date__lte=last) & (Q(end_date__isnull=True) | Q(end_date__gte=first))
    has_entries = Exists(
        TimeEntry.objects.filter(subscription=OuterRef("pk"), work_date__range=(first, last))
    )
    return Subscription.objects.filter(overlaps | Q(has_entries))


def rollup_batches(*, month: dt.date, batch_size: int) -> list[tuple[int, int]]:
    """Id ranges [first, last] of at most ``batch_size`` subscriptions, in id order."""
    ids = list(subscriptions_billed_in(month=month).order_by("pk").values_list("pk", flat=True))
    return [
        (ids[start], ids[min(start + batch_size, len(ids)) - 1])
        for start in range(0, len(ids), batch_size)
    ]


def rollup_rows(*, month: dt.date, first_id: int, last_id: int) -> list[dict[str, Any]]:
    """One row per recurring subscription of the batch with its hours used in ``month`` and
    its price in the client's currency, aggregated by the database in a single query."""
    first, last = _month_range(month)
    used = (
        TimeEntry.objects.filter(subscription=OuterRef("pk"), work_date__range=(first, last))
        .order_by()
        .values("subscription")
        .annotate(total=Sum("hours"))
        .values("total")
    )
    price = PackagePrice.objects.filter(
        package=OuterRef("package_id"), currency=OuterRef("client__currency")
    )
    return list(
        subscriptions_billed_in(month=month)
        .filter(pk__range=(first_id, last_id), package__billing_mode=BillingMode.RECURRING)
        .annotate(
            used_hours=Coalesce(
                Subquery(used, output_field=HOURS), Value(Decimal("0")), output_field=HOURS
            ),
            fee=Subquery(price.values("fee")[:1]),
            hourly_rate=Subquery(price.values("hourly_rate")[:1]),
        )
        .order_by("pk")
        .values(
            "pk",
            "client_id",
            "client__currency",
            "package__name",
            "package__included_hours",
            "package__invoice_action",
            "used_hours",
            "fee",
            "hourly_rate",
        )
    )


def subscriptions_without_price(*, month: dt.date) -> list[int]:
    """Recurring subscriptions to bill in ``month`` whose package has no price in the
    client's currency: the rollup refuses to run until they are fixed."""
    price = PackagePrice.objects.filter(
        package=OuterRef("package_id"), currency=OuterRef("client__currency")
    )
    return list(
        subscriptions_billed_in(month=month)
        .filter(package__billing_mode=BillingMode.RECURRING)
        .exclude(Exists(price))
        .values_list("pk", flat=True)
    )


def periods_to_close(*, now: dt.datetime | None = None) -> list[dt.date]:
    """Every ended month that is still open, from the first month anything happened."""
    earliest = Subscription.objects.aggregate(first=Min("start_date"))["first"]
    if earliest is None:
        return []
    last_ended = period_previous(period_of(local_today(now)))
    closed = set(
        BillingPeriod.objects.filter(status=PeriodStatus.CLOSED).values_list("month", flat=True)
    )
    return [
        month
        for month in periods_between(period_of(earliest), last_ended)
        if month not in closed and period_has_ended(month, now)
    ]


# --- Finance: items, totals, periods, exports ----------------------------------------------

# The columns of an export, in order: the same fields as the API's billable item.
EXPORT_COLUMNS = (
    "id",
    "client",
    "subscription",
    "period",
    "kind",
    "description",
    "unit",
    "quantity",
    "unit_price",
    "amount",
    "currency",
    "invoice_action",
    "status",
    "created_at",
)
_EXPORT_VALUES = (
    "id",
    "client_id",
    "subscription_id",
    "period",
    "kind",
    "description",
    "unit",
    "quantity",
    "unit_price",
    "amount",
    "currency",
    "invoice_action",
    "status",
    "created_at",
)


def billable_items_export_rows(*, month: dt.date, chunk_size: int = 2000) -> Iterator[tuple]:
    """Every item of ``month`` as plain tuples in EXPORT_COLUMNS order, read in chunks (a
    server-side cursor on PostgreSQL): one query and flat memory however many items."""
    return (
        BillableItem.objects.filter(period=month)
        .order_by("id")
        .values_list(*_EXPORT_VALUES)
        .iterator(chunk_size=chunk_size)
    )


def billable_item_totals(*, items: QuerySet[BillableItem]) -> list[dict[str, Any]]:
    """Totals per currency of ``items`` (void items left out: they are not billed), as
    ``[{"currency": "EUR", "total": Money, "count": 3}]``; one query."""
    rows = (
        items.exclude(status=ItemStatus.VOID)
        .order_by()
        .values("currency")
        .annotate(total=Sum("amount"), count=Count("id"))
        .order_by("currency")
    )
    return [
        {
            "currency": row["currency"],
            "total": money_round(row["total"] or Decimal("0"), row["currency"]),
            "count": row["count"],
        }
        for row in rows
    ]


@dataclass(frozen=True)
class PeriodOverview:
    month: dt.date
    status: str  # open, closing or closed
    ended: bool
    totals: list[dict[str, Any]]

    @property
    def label(self) -> str:
        return f"{self.month:%Y-%m}"

    @property
    def can_close(self) -> bool:
        return self.ended and self.status != PeriodStatus.CLOSED


def periods_overview(*, now: dt.datetime | None = None) -> list[PeriodOverview]:
    """Every month from the first subscription or item to the current one, newest first, with
    its state and billed totals per currency; three queries whatever the number of months."""
    first_start = Subscription.objects.aggregate(first=Min("start_date"))["first"]
    first_item = BillableItem.objects.aggregate(first=Min("period"))["first"]
    starts = [day for day in (first_start, first_item) if day is not None]
    current = period_of(local_today(now))
    if not starts:
        return []
    months = periods_between(period_of(min(starts)), current)
    states = dict(BillingPeriod.objects.values_list("month", "status"))
    totals: dict[dt.date, list[dict[str, Any]]] = {}
    rows = (
        BillableItem.objects.exclude(status=ItemStatus.VOID)
        .order_by()
        .values("period", "currency")
        .annotate(total=Sum("amount"), count=Count("id"))
        .order_by("period", "currency")
    )
    for row in rows:
        totals.setdefault(row["period"], []).append(
            {
                "currency": row["currency"],
                "total": money_round(row["total"], row["currency"]),
                "count": row["count"],
            }
        )
    return [
        PeriodOverview(
            month=month,
            status=states.get(month, PeriodStatus.OPEN),
            ended=period_has_ended(month, now),
            totals=totals.get(month, []),
        )
        for month in reversed(months)
    ]
