"""Finance reads: billable items for exports, totals per currency, the periods overview."""

import datetime as dt
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.db import connection
from django.db.models import (
    Count,
    Min,
    QuerySet,
    Sum,
)
from django.utils import timezone
from djmoney.money import Money

from billing.calculations import (
    money_round,
)
from billing.models import (
    BILLABLE_ITEM_EXPORT_COLUMNS,
    BillableItem,
    ItemStatus,
    PeriodRelease,
)
from billing.selectors.disputes import open_disputes_per_month
from billing.selectors.review import items_ready, review_running, review_until
from packages.models import BillingPeriod, PeriodStatus
from packages.selectors import billing_start
from supportbilling.periods import (
    local_today,
    period_has_ended,
    period_next,
    period_of,
    periods_between,
)

# Ids rather than related objects, and the client's name: plain tuples, one join.
_ATTNAMES = {field.name: field.attname for field in BillableItem._meta.concrete_fields}
_EXPORT_VALUES = tuple(_ATTNAMES.get(name, "client__name") for name in BILLABLE_ITEM_EXPORT_COLUMNS)


def billable_items_for_export(
    *, month: dt.date | None = None, items: QuerySet[BillableItem] | None = None
) -> QuerySet[BillableItem]:
    """The items an export holds: ``items`` (a filtered list, as the admin shows it) or every
    item, narrowed to ``month`` when one is given."""
    selected = BillableItem.objects.all() if items is None else items
    return selected if month is None else selected.filter(period=month)


def billable_items_export_rows(
    *,
    month: dt.date | None = None,
    items: QuerySet[BillableItem] | None = None,
    chunk_size: int = 2000,
) -> Iterator[tuple]:
    """The items of ``billable_items_for_export`` as plain tuples in
    BILLABLE_ITEM_EXPORT_COLUMNS order, by id, read in chunks (a server-side cursor on
    PostgreSQL): one query and flat memory however many items."""
    return (
        billable_items_for_export(month=month, items=items)
        .order_by("id")
        .values_list(*_EXPORT_VALUES)
        .iterator(chunk_size=chunk_size)
    )


def items_exportable(*, now: dt.datetime | None = None) -> QuerySet[BillableItem]:
    """The items finance may hand to the billing system now: pending, in a closed month (an
    open month's figures can still change) whose review window is over or that finance
    released, and held by no open dispute (billing.selectors.review)."""
    closed = BillingPeriod.objects.filter(status=PeriodStatus.CLOSED).values("month")
    pending = BillableItem.objects.filter(status=ItemStatus.PENDING, period__in=closed)
    return items_ready(pending, now=now)


def _currency_totals(
    items: QuerySet[BillableItem], *by: str, void: bool = False
) -> Iterator[dict[str, Any]]:
    """Totals per currency (and per ``by``) of ``items``, void items left out (they are not
    billed) unless ``void``: each row ``{**by, "currency": "EUR", "total": Money, "count": 3}``;
    one query."""
    if not void:
        items = items.exclude(status=ItemStatus.VOID)
    rows = (
        items.order_by()
        .values(*by, "currency")
        .annotate(total=Sum("amount"), count=Count("id"))
        .order_by(*by, "currency")
    )
    for row in rows:
        yield {**row, "total": money_round(row["total"] or Decimal("0"), row["currency"])}


# The months that have items, newest first, one probe of the (period, status) index per month
# instead of reading every item (PostgreSQL has no skip scan; SQLite runs the same SQL).
_ITEM_PERIODS = """
WITH RECURSIVE periods (period) AS (
    SELECT MAX(period) FROM billing_billableitem
    UNION ALL
    SELECT (SELECT MAX(i.period) FROM billing_billableitem i WHERE i.period < p.period)
    FROM periods p WHERE p.period IS NOT NULL
)
SELECT period FROM periods WHERE period IS NOT NULL
"""


def item_periods() -> list[dt.date]:
    """Every month with a billable item, newest first (the item list's period filter)."""
    with connection.cursor() as cursor:
        cursor.execute(_ITEM_PERIODS)
        return [_as_date(period) for (period,) in cursor.fetchall()]


def _as_date(value: dt.date | str) -> dt.date:
    # SQLite gives MAX() of a date column back as text.
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(value)


def billable_item_totals(*, items: QuerySet[BillableItem]) -> list[dict[str, Any]]:
    """Totals per currency of ``items``, as ``[{"currency": "EUR", "total": Money,
    "count": 3}]``; one query."""
    return list(_currency_totals(items))


# The statuses an item goes through, in the order the periods page shows them.
STATUS_ORDER = (ItemStatus.PENDING, ItemStatus.EXPORTED, ItemStatus.INVOICED, ItemStatus.VOID)


@dataclass(frozen=True)
class PeriodOverview:
    month: dt.date
    status: str  # open, closing or closed
    ended: bool
    totals: list[dict[str, Any]]  # per currency, void left out: {"currency", "total", "count"}
    billed: bool = True  # False before the billing start: never closed
    closed_at: dt.datetime | None = None
    closed_by: str = ""
    # per currency: {"currency": "EUR", "statuses": [{"status", "label", "count", "total"}]}
    by_status: list[dict[str, Any]] = field(default_factory=list)
    # The review window (billing.selectors.review): when it ends, whether finance released
    # the month (and when), whether it still runs; the open disputes of the month.
    review_until: dt.datetime | None = None
    released_at: dt.datetime | None = None
    in_review: bool = False
    open_disputes: int = 0
    # Lines that interface apps add to the month (billing.admin_views.PERIOD_LINES):
    # (text, url) pairs.
    extra_lines: tuple[tuple[str, str], ...] = ()

    @property
    def can_release(self) -> bool:
        return self.in_review

    @property
    def label(self) -> str:
        return f"{self.month:%Y-%m}"

    @property
    def can_close(self) -> bool:
        return self.billed and self.ended and self.status != PeriodStatus.CLOSED

    def count(self, status: str) -> int:
        return sum(
            row["count"]
            for currency in self.by_status
            for row in currency["statuses"]
            if row["status"] == status
        )

    @property
    def next_step(self) -> tuple[str, str]:
        """What finance does next with the month, and the item status to list for it
        ("" when the step is not on the items list)."""
        if not self.billed:
            return "Nothing: the month is before billing began.", ""
        if not self.ended:
            return (
                f"Wait: the month runs until its end; the schedule closes it on "
                f"{period_next(self.month):%Y-%m-%d}.",
                "",
            )
        if self.status == PeriodStatus.CLOSING:
            return "Wait: the month is being closed.", ""
        if self.status != PeriodStatus.CLOSED:
            return "Close the month: its items are written and its time is locked.", ""
        if self.in_review and self.review_until is not None:
            return (
                f"Wait for the client's review until "
                f"{timezone.localtime(self.review_until):%Y-%m-%d %H:%M} "
                "(or release the month), and resolve the disputes.",
                "",
            )
        if self.open_disputes:
            return (
                f"Resolve the {self.open_disputes} open dispute(s): the items they hold wait; "
                "the others can be exported.",
                "pending",
            )
        pending = self.count(ItemStatus.PENDING)
        if pending:
            return f"Export the {pending} pending item(s) to the billing system.", "pending"
        exported = self.count(ItemStatus.EXPORTED)
        if exported:
            return (
                f"Mark the {exported} exported item(s) invoiced once the invoices are out.",
                "exported",
            )
        return "Done: every item is invoiced or void.", ""


def periods_overview(*, now: dt.datetime | None = None) -> list[PeriodOverview]:
    """Every month from the billing start (or an earlier item) to the current one, newest
    first, with its state, who closed it and when, its items per currency and status, its
    review window and open disputes; six queries whatever the number of months."""
    start = billing_start()
    first_item = BillableItem.objects.aggregate(first=Min("period"))["first"]
    starts = [day for day in (start, first_item) if day is not None]
    current = period_of(local_today(now))
    if not starts:
        return []
    months = periods_between(period_of(min(starts)), max(current, period_of(max(starts))))
    periods = {
        row["month"]: row
        for row in BillingPeriod.objects.values(
            "month", "status", "closed_at", "closed_by__username"
        )
    }
    releases = dict(PeriodRelease.objects.values_list("month", "released_at"))
    disputes = open_disputes_per_month()
    moment = now or timezone.now()
    counts: dict[dt.date, dict[str, dict[str, dict[str, Any]]]] = {}
    for row in _currency_totals(BillableItem.objects.all(), "period", "status", void=True):
        counts.setdefault(row["period"], {}).setdefault(row["currency"], {})[row["status"]] = row
    overviews = []
    for month in reversed(months):
        period: Mapping[str, Any] = periods.get(month) or {}
        by_currency = counts.get(month, {})
        by_status = [
            {
                "currency": currency,
                "statuses": [
                    {
                        "status": status,
                        "label": ItemStatus(status).label.lower(),
                        "count": rows[status]["count"] if status in rows else 0,
                        "total": rows[status]["total"] if status in rows else None,
                    }
                    for status in STATUS_ORDER
                ],
            }
            for currency, rows in sorted(by_currency.items())
        ]
        totals = []
        for currency, rows in sorted(by_currency.items()):
            billed = [row for status, row in rows.items() if status != ItemStatus.VOID]
            if billed:
                totals.append(
                    {
                        "currency": currency,
                        "total": sum((row["total"] for row in billed), Money(0, currency)),
                        "count": sum(row["count"] for row in billed),
                    }
                )
        closed = period.get("status") == PeriodStatus.CLOSED
        until = review_until(period.get("closed_at")) if closed else None
        overviews.append(
            PeriodOverview(
                month=month,
                status=period.get("status", PeriodStatus.OPEN),
                ended=period_has_ended(month, now),
                totals=totals,
                billed=start is not None and month >= start,
                closed_at=period.get("closed_at"),
                closed_by=period.get("closed_by__username") or "",
                by_status=by_status,
                review_until=until,
                released_at=releases.get(month),
                in_review=review_running(until, released=month in releases, now=moment),
                open_disputes=disputes.get(month, 0),
            )
        )
    return overviews
