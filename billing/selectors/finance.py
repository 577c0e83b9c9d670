"""Finance reads: billable items for exports, totals per currency, the periods overview."""

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db.models import (
    Count,
    Min,
    QuerySet,
    Sum,
)

from billing.calculations import (
    money_round,
)
from billing.models import (
    BILLABLE_ITEM_COLUMNS,
    BillableItem,
    ItemStatus,
)
from packages.models import BillingPeriod, PeriodStatus
from packages.selectors import billing_start
from supportbilling.periods import (
    local_today,
    period_has_ended,
    period_of,
    periods_between,
)

# Ids rather than related objects: plain tuples, no join.
_ATTNAMES = {field.name: field.attname for field in BillableItem._meta.concrete_fields}
_EXPORT_VALUES = tuple(_ATTNAMES[name] for name in BILLABLE_ITEM_COLUMNS)


def billable_items_export_rows(*, month: dt.date, chunk_size: int = 2000) -> Iterator[tuple]:
    """Every item of ``month`` as plain tuples in BILLABLE_ITEM_COLUMNS order, read in chunks (a
    server-side cursor on PostgreSQL): one query and flat memory however many items."""
    return (
        BillableItem.objects.filter(period=month)
        .order_by("id")
        .values_list(*_EXPORT_VALUES)
        .iterator(chunk_size=chunk_size)
    )


def _currency_totals(items: QuerySet[BillableItem], *by: str) -> Iterator[dict[str, Any]]:
    """Totals per currency (and per ``by``) of ``items``, void items left out (they are not
    billed): each row ``{**by, "currency": "EUR", "total": Money, "count": 3}``; one query."""
    rows = (
        items.exclude(status=ItemStatus.VOID)
        .order_by()
        .values(*by, "currency")
        .annotate(total=Sum("amount"), count=Count("id"))
        .order_by(*by, "currency")
    )
    for row in rows:
        yield {**row, "total": money_round(row["total"] or Decimal("0"), row["currency"])}


def billable_item_totals(*, items: QuerySet[BillableItem]) -> list[dict[str, Any]]:
    """Totals per currency of ``items``, as ``[{"currency": "EUR", "total": Money,
    "count": 3}]``; one query."""
    return list(_currency_totals(items))


@dataclass(frozen=True)
class PeriodOverview:
    month: dt.date
    status: str  # open, closing or closed
    ended: bool
    totals: list[dict[str, Any]]
    billed: bool = True  # False before the billing start: never closed

    @property
    def label(self) -> str:
        return f"{self.month:%Y-%m}"

    @property
    def can_close(self) -> bool:
        return self.billed and self.ended and self.status != PeriodStatus.CLOSED


def periods_overview(*, now: dt.datetime | None = None) -> list[PeriodOverview]:
    """Every month from the billing start (or an earlier item) to the current one, newest
    first, with its state and billed totals per currency; four queries whatever the number
    of months."""
    start = billing_start()
    first_item = BillableItem.objects.aggregate(first=Min("period"))["first"]
    starts = [day for day in (start, first_item) if day is not None]
    current = period_of(local_today(now))
    if not starts:
        return []
    months = periods_between(period_of(min(starts)), max(current, period_of(max(starts))))
    states = dict(BillingPeriod.objects.values_list("month", "status"))
    totals: dict[dt.date, list[dict[str, Any]]] = {}
    for row in _currency_totals(BillableItem.objects.all(), "period"):
        totals.setdefault(row.pop("period"), []).append(row)
    return [
        PeriodOverview(
            month=month,
            status=states.get(month, PeriodStatus.OPEN),
            ended=period_has_ended(month, now),
            totals=totals.get(month, []),
            billed=start is not None and month >= start,
        )
        for month in reversed(months)
    ]
