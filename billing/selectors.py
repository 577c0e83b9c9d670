"""Reads of billing: statements of subscriptions, the rollup's aggregated rows, periods."""

import datetime as dt
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import (
    Count,
    DecimalField,
    Exists,
    F,
    FilteredRelation,
    Max,
    Min,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
)
from django.db.models.functions import Coalesce, TruncMonth
from djmoney.money import Money

from billing.calculations import (
    HOURS_QUANTUM,
    TERMS_BILLED,
    Statement,
    money_round,
    statement_compute,
)
from billing.models import (
    BillableItem,
    BilledTerms,
    DeliveryStatus,
    ItemKind,
    ItemStatus,
    UsageAlert,
    UsageAlertDelivery,
    UsageThreshold,
)
from packages.models import BillingMode, PackagePrice, Subscription, SubscriptionStatus
from supportbilling.periods import (
    local_today,
    period_add,
    period_current,
    period_has_ended,
    period_last_day,
    period_of,
    period_previous,
    periods_between,
)
from tickets.models import (
    BillingPeriod,
    MessageKind,
    PeriodStatus,
    Ticket,
    TicketMessage,
    TicketStatus,
    TimeEntry,
)
from tickets.selectors import billing_start, subscription_hours_used

HOURS = DecimalField(max_digits=12, decimal_places=2)


class MissingPrice(ValidationError, LookupError):
    """The package has no price in the client's currency. A ValidationError, so that every
    interface shows the message instead of failing."""

    def __init__(self, message: str) -> None:
        super().__init__(message, code="missing_price")


def package_price_for(*, package_id: int, currency: str) -> PackagePrice:
    price = PackagePrice.objects.filter(package_id=package_id, currency=currency).first()
    if price is None:
        raise MissingPrice(f"The package has no price in {currency}.")
    return price


def _billed_terms_of(month: dt.date, prefix: str = "") -> Q:
    """The stored terms that bill ``month``: the month's own (a recurring subscription, once
    the month is closed) or the bucket's (a one-time subscription, stored when bought)."""
    return Q(**{f"{prefix}month": month}) | Q(**{f"{prefix}billing_mode": BillingMode.ONE_TIME})


def billed_terms_get(*, subscription_id: int, month: dt.date) -> BilledTerms | None:
    """The terms ``month`` of the subscription was billed with, or None (the month is open,
    or was closed before terms were stored): then the current prices apply."""
    return (
        BilledTerms.objects.filter(subscription_id=subscription_id)
        .filter(_billed_terms_of(month))
        .first()
    )


def statement_for_subscription(
    *, subscription: Subscription, month: dt.date, extra_hours: Decimal = Decimal("0")
) -> Statement:
    """The statement of one subscription for ``month``, with the terms it was billed with
    (closed month, bucket) or else the current prices; ``extra_hours`` answers "what if"
    (the portal's cost calculator) with the very same arithmetic."""
    used = subscription_hours_used(subscription=subscription, month=month)
    terms = billed_terms_get(subscription_id=subscription.pk, month=month)
    if terms is not None:
        return statement_compute(
            billing_mode=terms.billing_mode,
            currency=terms.currency,
            included_hours=terms.included_hours,
            used_hours=used + extra_hours,
            fee=terms.fee.amount,
            hourly_rate=terms.hourly_rate.amount,
            terms=TERMS_BILLED,
        )
    currency = subscription.client.currency
    price = package_price_for(package_id=subscription.package_id, currency=currency)
    return statement_compute(
        billing_mode=subscription.package.billing_mode,
        currency=currency,
        included_hours=subscription.hours_included,
        used_hours=used + extra_hours,
        fee=price.fee.amount,
        hourly_rate=price.hourly_rate.amount,
    )


def _month_range(month: dt.date) -> tuple[dt.date, dt.date]:
    return month, period_last_day(month)


def _runs_in(first: dt.date, last: dt.date) -> Q:
    """The subscription's dates overlap [first, last]."""
    return Q(start_date__lte=last) & (Q(end_date__isnull=True) | Q(end_date__gte=first))


def subscriptions_billed_in(*, month: dt.date) -> QuerySet[Subscription]:
    """Subscriptions the rollup of ``month`` touches: those whose dates overlap the month, or
    that have time entries in it (their entries are flagged billed; recurring ones bill)."""
    first, last = _month_range(month)
    has_entries = Exists(
        TimeEntry.objects.filter(subscription=OuterRef("pk"), work_date__range=(first, last))
    )
    return Subscription.objects.filter(_runs_in(first, last) | Q(has_entries))


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
    before) win over the current ones, so a batch billed again computes what it billed.

    The subscriptions of ``subscriptions_billed_in``; "has entries in the month" is the
    hours used being above zero (hours are positive), so one correlated sum per subscription
    serves both, and the price is an outer join. This shape is 2.5 times faster than three
    correlated subqueries and than a GROUP BY over the joined entries, which sorts on every
    selected column (docs/performance.md)."""
    first, last = _month_range(month)
    used = (
        TimeEntry.objects.filter(subscription=OuterRef("pk"), work_date__range=(first, last))
        .order_by()
        .values("subscription")
        .annotate(total=Sum("hours"))
        .values("total")
    )
    return list(
        Subscription.objects.filter(
            pk__range=(first_id, last_id), package__billing_mode=BillingMode.RECURRING
        )
        .annotate(
            price=FilteredRelation(
                "package__prices", condition=Q(package__prices__currency=F("client__currency"))
            ),
            stored=FilteredRelation("billed_terms", condition=Q(billed_terms__month=month)),
            used_hours=Coalesce(
                Subquery(used, output_field=HOURS), Value(Decimal("0")), output_field=HOURS
            ),
            included_hours=Coalesce("stored__included_hours", "package__included_hours"),
            fee=Coalesce("stored__fee", "price__fee"),
            hourly_rate=Coalesce("stored__hourly_rate", "price__hourly_rate"),
        )
        .filter(_runs_in(first, last) | Q(used_hours__gt=0))
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


def subscription_start_earliest(*, now: dt.datetime | None = None) -> dt.date:
    """The first month a new subscription may start in: the billing start, or the current
    month when billing has not begun by then (a first sale makes it begin)."""
    current = period_current(now)
    start = billing_start()
    if start is None:
        return current
    return start if settings.BILLING_START else min(start, current)


def subscription_start_latest(*, now: dt.datetime | None = None) -> dt.date:
    """The last month a new subscription may start in."""
    return period_add(period_current(now), settings.SUBSCRIPTION_START_MAX_MONTHS_AHEAD)


def periods_to_close(*, now: dt.datetime | None = None) -> list[dt.date]:
    """Every ended month that is still open, from the billing start."""
    start = billing_start()
    if start is None:
        return []
    last_ended = period_previous(period_current(now))
    closed = set(
        BillingPeriod.objects.filter(status=PeriodStatus.CLOSED, month__gte=start).values_list(
            "month", flat=True
        )
    )
    return [month for month in periods_between(start, last_ended) if month not in closed]


# --- The client portal -----------------------------------------------------------------------
# Every read below is scoped to one client and runs a fixed number of queries, whatever the
# number of subscriptions, tickets, entries or months.

ZERO_HOURS = Decimal("0.00")


class TimeBadge(models.TextChoices):
    """Where the time of an entry stands, as the client sees it (in order of progress)."""

    OPEN = "open", "Open"  # its month is still open: it can change
    BILLED = "billed", "Billed"  # its month was closed by the rollup
    INVOICED = "invoiced", "Invoiced"  # the billable item of its month was invoiced


_BADGE_ORDER: list[str] = [TimeBadge.OPEN, TimeBadge.BILLED, TimeBadge.INVOICED]


def usage_thresholds_reached(*, statement: Statement) -> list[int]:
    """The usage alert thresholds (80 %, 100 %) a recurring statement has reached: the rule the
    dashboard notice and the alert e-mails share. Nothing without included hours."""
    if statement.billing_mode != BillingMode.RECURRING or statement.included_hours <= 0:
        return []
    return [threshold for threshold in UsageThreshold.values if statement.used_percent >= threshold]


@dataclass(frozen=True)
class SubscriptionUsage:
    """One card of the dashboard: a subscription and its statement for the month (None when
    the package has no price in the client's currency)."""

    subscription: Subscription
    month: dt.date
    statement: Statement | None
    extra_hours: Decimal = ZERO_HOURS

    @property
    def thresholds_reached(self) -> list[int]:
        return usage_thresholds_reached(statement=self.statement) if self.statement else []


def _months_back(month: dt.date, count: int) -> dt.date:
    for _ in range(count):
        month = period_previous(month)
    return month


def _hours_subquery(entries: QuerySet[TimeEntry]) -> Coalesce:
    total = entries.order_by().values("subscription").annotate(total=Sum("hours")).values("total")
    return Coalesce(Subquery(total, output_field=HOURS), Value(ZERO_HOURS), output_field=HOURS)


def _priced_subscriptions(*, client_id: int) -> QuerySet[Subscription]:
    price = PackagePrice.objects.filter(
        package=OuterRef("package_id"), currency=OuterRef("client__currency")
    )
    return (
        Subscription.objects.filter(client_id=client_id)
        .select_related("package", "client")
        .annotate(
            price_fee=Subquery(price.values("fee")[:1]),
            price_hourly_rate=Subquery(price.values("hourly_rate")[:1]),
        )
    )


def _with_stored_terms(subscriptions: QuerySet[Subscription], *, month: dt.date) -> QuerySet:
    """Annotate the terms stored for ``month`` (see ``_billed_terms_of``): one join, at most
    one row (unique per month; a bucket has one)."""
    return subscriptions.annotate(
        stored=FilteredRelation(
            "billed_terms", condition=_billed_terms_of(month, "billed_terms__")
        ),
        stored_billing_mode=F("stored__billing_mode"),
        stored_included_hours=F("stored__included_hours"),
        stored_fee=F("stored__fee"),
        stored_hourly_rate=F("stored__hourly_rate"),
        stored_currency=F("stored__currency"),
    )


def _stored_terms_of_row(subscription: Any) -> BilledTerms | None:
    if subscription.stored_fee is None:
        return None
    return BilledTerms(
        subscription=subscription,
        billing_mode=subscription.stored_billing_mode,
        included_hours=subscription.stored_included_hours,
        fee=Money(subscription.stored_fee, subscription.stored_currency),
        hourly_rate=Money(subscription.stored_hourly_rate, subscription.stored_currency),
    )


def _statement_of_row(
    subscription: Any,
    *,
    used_hours: Decimal,
    extra_hours: Decimal = ZERO_HOURS,
    terms: BilledTerms | None = None,
) -> Statement | None:
    """The statement with the stored ``terms`` when given, else with the current price
    (annotated by ``_priced_subscriptions``); None when neither exists."""
    if terms is not None:
        return statement_compute(
            billing_mode=terms.billing_mode,
            currency=terms.currency,
            included_hours=terms.included_hours,
            used_hours=used_hours + extra_hours,
            fee=terms.fee.amount,
            hourly_rate=terms.hourly_rate.amount,
            terms=TERMS_BILLED,
        )
    if subscription.price_fee is None:
        return None
    return statement_compute(
        billing_mode=subscription.package.billing_mode,
        currency=subscription.client.currency,
        included_hours=subscription.hours_included,
        used_hours=used_hours + extra_hours,
        fee=subscription.price_fee,
        hourly_rate=subscription.price_hourly_rate,
    )


def client_subscription_usages(
    *,
    client_id: int,
    month: dt.date,
    subscription_id: int | None = None,
    extra_hours: Decimal = ZERO_HOURS,
) -> list[SubscriptionUsage]:
    """The dashboard's cards: every subscription of the client whose dates overlap ``month``
    (recurring: hours of the month; one-time: the bucket, all time), in one query.

    ``subscription_id`` with ``extra_hours`` answers the cost calculator's "what if" for one
    subscription with the same arithmetic (``statement_compute``) the rollup uses.
    """
    first, last = _month_range(month)
    subscriptions = (
        _with_stored_terms(_priced_subscriptions(client_id=client_id), month=month)
        .filter(Q(start_date__lte=last) & (Q(end_date__isnull=True) | Q(end_date__gte=first)))
        .annotate(
            used_in_month=_hours_subquery(
                TimeEntry.objects.filter(
                    subscription=OuterRef("pk"), work_date__range=(first, last)
                )
            ),
            used_ever=_hours_subquery(TimeEntry.objects.filter(subscription=OuterRef("pk"))),
        )
        .order_by("-package__billing_mode", "start_date", "pk")
    )
    if subscription_id is not None:
        subscriptions = subscriptions.filter(pk=subscription_id)
    usages = []
    for subscription in subscriptions:
        is_recurring = subscription.package.billing_mode == BillingMode.RECURRING
        used = subscription.used_in_month if is_recurring else subscription.used_ever
        extra = extra_hours if subscription.pk == subscription_id else ZERO_HOURS
        usages.append(
            SubscriptionUsage(
                subscription=subscription,
                month=month,
                statement=_statement_of_row(
                    subscription,
                    used_hours=used,
                    extra_hours=extra,
                    terms=_stored_terms_of_row(subscription),
                ),
                extra_hours=extra,
            )
        )
    return usages


@dataclass(frozen=True)
class EntryLine:
    """One time entry as the client sees it; operator and note only with the work log."""

    entry_id: int
    ticket_id: int
    subscription_id: int
    work_date: dt.date
    hours: Decimal
    badge: str
    show_work_log: bool
    operator_name: str
    note: str


@dataclass(frozen=True)
class TicketTime:
    """The time of one ticket (in one month, or all time): its entries and where they stand."""

    ticket_id: int
    subject: str
    subscription_id: int
    entries: list[EntryLine]

    @property
    def total_hours(self) -> Decimal:
        return sum((entry.hours for entry in self.entries), ZERO_HOURS)

    @property
    def last_work_date(self) -> dt.date:
        return max(entry.work_date for entry in self.entries)

    @property
    def badge(self) -> str:
        """The least advanced state of its entries: one open entry keeps the ticket open."""
        return min((entry.badge for entry in self.entries), key=_BADGE_ORDER.index)

    @property
    def show_work_log(self) -> bool:
        return all(entry.show_work_log for entry in self.entries)


def _entry_badge(
    entry: TimeEntry, *, closed: set[dt.date], invoiced: set[tuple[int, dt.date | None]]
) -> str:
    month = period_of(entry.work_date)
    if entry.subscription.package.billing_mode == BillingMode.ONE_TIME:
        is_invoiced = (entry.subscription_id, None) in invoiced
    else:
        is_invoiced = (entry.subscription_id, month) in invoiced
    if is_invoiced and (entry.billed_at or month in closed):
        return TimeBadge.INVOICED
    if entry.billed_at or month in closed:
        return TimeBadge.BILLED
    return TimeBadge.OPEN


def client_ticket_times(
    *,
    client_id: int,
    month: dt.date | None = None,
    ticket_ids: Collection[int] | None = None,
) -> list[TicketTime]:
    """Tickets of the client with time (in ``month``, or all time), one group per ticket and
    subscription, newest activity first. Three queries: entries, closed months, invoiced items.

    Badges: ``Invoiced`` when the subscription's billable item for the entry's month (for a
    one-time bucket: its one-time item) is invoiced, ``Billed`` when the month is closed,
    ``Open`` otherwise.
    """
    # The subscription's client too (the same one: the time services refuse another client's
    # subscription), so PostgreSQL reaches the month's entries through the client's few
    # subscriptions instead of scanning every client's month (docs/performance.md, Portal).
    entries = TimeEntry.objects.filter(
        ticket__client_id=client_id, subscription__client_id=client_id
    ).select_related("ticket", "operator", "subscription__package")
    if month is not None:
        entries = entries.filter(work_date__range=_month_range(month))
    if ticket_ids is not None:
        entries = entries.filter(ticket_id__in=list(ticket_ids))
    entry_list = list(entries.order_by("work_date", "pk"))
    if not entry_list:
        return []
    months = sorted({period_of(entry.work_date) for entry in entry_list})
    closed = set(
        BillingPeriod.objects.filter(month__in=months)
        .exclude(status=PeriodStatus.OPEN)
        .values_list("month", flat=True)
    )
    invoiced: set[tuple[int, dt.date | None]] = set()
    items = BillableItem.objects.filter(
        subscription_id__in={entry.subscription_id for entry in entry_list},
        status=ItemStatus.INVOICED,
    ).filter(
        Q(kind=ItemKind.ONE_TIME) | Q(kind__in=[ItemKind.FEE, ItemKind.OVERTIME], period__in=months)
    )
    for subscription_pk, period, kind in items.values_list("subscription_id", "period", "kind"):
        invoiced.add((subscription_pk, None if kind == ItemKind.ONE_TIME else period))
    groups: dict[tuple[int, int], list[EntryLine]] = {}
    subjects: dict[int, str] = {}
    for entry in entry_list:
        show = entry.subscription.package.show_work_log
        subjects[entry.ticket_id] = entry.ticket.subject
        groups.setdefault((entry.ticket_id, entry.subscription_id), []).append(
            EntryLine(
                entry_id=entry.pk,
                ticket_id=entry.ticket_id,
                subscription_id=entry.subscription_id,
                work_date=entry.work_date,
                hours=entry.hours,
                badge=_entry_badge(entry, closed=closed, invoiced=invoiced),
                show_work_log=show,
                operator_name=(entry.operator.get_full_name() or entry.operator.username)
                if show
                else "",
                note=entry.note if show else "",
            )
        )
    times = [
        TicketTime(
            ticket_id=ticket_pk,
            subject=subjects[ticket_pk],
            subscription_id=subscription_pk,
            entries=lines,
        )
        for (ticket_pk, subscription_pk), lines in groups.items()
    ]
    times.sort(key=lambda time: (time.last_work_date, time.ticket_id), reverse=True)
    return times


@dataclass(frozen=True)
class HistoryRow:
    """One closed month of one subscription: the statement and what was billed for it."""

    month: dt.date
    statement: Statement | None
    items: list[BillableItem]


@dataclass(frozen=True)
class ChartPoint:
    month: dt.date
    used_hours: Decimal
    included_hours: Decimal


@dataclass(frozen=True)
class SubscriptionHistory:
    subscription: Subscription
    rows: list[HistoryRow]  # closed months, newest first
    chart: list[ChartPoint]  # the last 12 months, oldest first (recurring only)


def _included_in(
    subscription: Any, month: dt.date, terms_by_key: Mapping[tuple[int, dt.date | None], Any]
) -> Decimal:
    """The hours included in ``month``: as billed when its terms are stored, else today's."""
    terms = terms_by_key.get((subscription.pk, month))
    return terms.included_hours if terms else subscription.hours_included


def client_history(
    *,
    client_id: int,
    subscription_id: int | None = None,
    now: dt.datetime | None = None,
    chart_months: int = 12,
) -> list[SubscriptionHistory]:
    """Per subscription of the client: one row per closed month it was billed in, with the
    statement (with the terms stored when the month was billed; the current ones only for a
    month closed before terms were stored) and its billable items, and the hours used
    against the hours included over the last ``chart_months`` months. Five queries in all."""
    subscriptions = list(
        _priced_subscriptions(client_id=client_id).order_by(
            "-package__billing_mode", "start_date", "pk"
        )
        if subscription_id is None
        else _priced_subscriptions(client_id=client_id).filter(pk=subscription_id)
    )
    if not subscriptions:
        return []
    subscription_ids = [subscription.pk for subscription in subscriptions]
    closed_months = list(
        BillingPeriod.objects.filter(status=PeriodStatus.CLOSED)
        .order_by("-month")
        .values_list("month", flat=True)
    )
    used: dict[tuple[int, dt.date], Decimal] = {
        (row["subscription_id"], row["month"]): row["total"].quantize(HOURS_QUANTUM)
        for row in TimeEntry.objects.filter(subscription_id__in=subscription_ids)
        .annotate(month=TruncMonth("work_date"))
        .order_by()
        .values("subscription_id", "month")
        .annotate(total=Sum("hours"))
    }
    items_by_key: dict[tuple[int | None, dt.date], list[BillableItem]] = {}
    for item in BillableItem.objects.filter(subscription_id__in=subscription_ids).order_by(
        "period", "kind", "pk"
    ):
        items_by_key.setdefault((item.subscription_id, item.period), []).append(item)
    terms_by_key: dict[tuple[int, dt.date | None], BilledTerms] = {}
    for stored in BilledTerms.objects.filter(subscription_id__in=subscription_ids):
        # A bucket's terms serve every month of it.
        month_key = None if stored.billing_mode == BillingMode.ONE_TIME else stored.month
        terms_by_key[(stored.subscription_id, month_key)] = stored
    current = period_current(now)
    chart_range = periods_between(_months_back(current, chart_months - 1), current)
    histories = []
    for subscription in subscriptions:
        first = period_of(subscription.start_date)
        last = period_of(subscription.end_date) if subscription.end_date else current
        is_recurring = subscription.package.billing_mode == BillingMode.RECURRING
        rows = []
        for month in closed_months:
            month_items = items_by_key.get((subscription.pk, month), [])
            hours = used.get((subscription.pk, month), ZERO_HOURS)
            if not (first <= month <= last) and not month_items and not hours:
                continue
            if not is_recurring and not month_items and not hours:
                continue
            terms = terms_by_key.get((subscription.pk, month if is_recurring else None))
            statement = _statement_of_row(subscription, used_hours=hours, terms=terms)
            rows.append(HistoryRow(month=month, statement=statement, items=month_items))
        chart = (
            [
                ChartPoint(
                    month=month,
                    used_hours=used.get((subscription.pk, month), ZERO_HOURS),
                    included_hours=_included_in(subscription, month, terms_by_key)
                    if first <= month <= last
                    else ZERO_HOURS,
                )
                for month in chart_range
            ]
            if is_recurring
            else []
        )
        histories.append(SubscriptionHistory(subscription=subscription, rows=rows, chart=chart))
    return histories


def client_ticket_badges(*, client_id: int, ticket_ids: Collection[int]) -> dict[int, str]:
    """The time badge of each ticket that has time (least advanced of its entries)."""
    badges: dict[int, str] = {}
    for time in client_ticket_times(client_id=client_id, ticket_ids=ticket_ids):
        known = badges.get(time.ticket_id, time.badge)
        badges[time.ticket_id] = min(known, time.badge, key=_BADGE_ORDER.index)
    return badges


def client_tickets(*, client_id: int, status: str = "") -> QuerySet[Ticket]:
    """The client's tickets with their logged time (total, entries, last work date), newest
    activity first; ``status`` is a ticket status, ``active`` (not closed) or empty (all)."""
    tickets = Ticket.objects.filter(client_id=client_id).select_related("subscription__package")
    if status == "active":
        tickets = tickets.exclude(status=TicketStatus.CLOSED)
    elif status in TicketStatus.values:
        tickets = tickets.filter(status=status)
    # Per-ticket subqueries (the entry index by ticket) rather than a join and GROUP BY: the
    # join made PostgreSQL scan every client's entries, and the page's COUNT repeat it.
    entries = TimeEntry.objects.filter(ticket=OuterRef("pk")).order_by().values("ticket")

    def per_ticket(aggregate: Any, output_field: models.Field) -> Subquery:
        return Subquery(
            entries.annotate(value=aggregate).values("value"), output_field=output_field
        )

    return tickets.annotate(
        hours_total=Coalesce(
            per_ticket(Sum("hours"), HOURS), Value(ZERO_HOURS), output_field=HOURS
        ),
        entry_count=Coalesce(
            per_ticket(Count("pk"), models.IntegerField()),
            Value(0),
            output_field=models.IntegerField(),
        ),
        last_work_date=per_ticket(Max("work_date"), models.DateField()),
    ).order_by("-updated_at", "-pk")


def client_ticket_get(*, client_id: int, ticket_id: int) -> Ticket:
    """A ticket of the client; another client's ticket does not exist (Ticket.DoesNotExist)."""
    return Ticket.objects.select_related("subscription__package").get(
        pk=ticket_id, client_id=client_id
    )


def client_ticket_conversation(*, ticket: Ticket) -> QuerySet[TicketMessage]:
    """What the client may read of a ticket: replies, never internal notes."""
    return (
        TicketMessage.objects.filter(ticket=ticket)
        .exclude(kind=MessageKind.INTERNAL_NOTE)
        .select_related("author")
        .order_by("created_at", "pk")
    )


def client_subscriptions_to_choose(*, client_id: int) -> QuerySet[Subscription]:
    """Subscriptions a client can open a ticket on: its active ones."""
    return (
        Subscription.objects.filter(client_id=client_id, status=SubscriptionStatus.ACTIVE)
        .select_related("package")
        .order_by("start_date", "pk")
    )


def client_subscription_get(*, client_id: int, subscription_id: int) -> Subscription:
    return Subscription.objects.select_related("package", "client").get(
        pk=subscription_id, client_id=client_id
    )


def usage_alert_candidates(
    *, month: dt.date, subscription_ids: Collection[int] | None = None
) -> list[SubscriptionUsage]:
    """Active recurring subscriptions (all, or those of ``subscription_ids``) with included
    hours whose usage in ``month`` reached the first alert threshold, with their statements;
    one query."""
    first, last = _month_range(month)
    used = _hours_subquery(
        TimeEntry.objects.filter(subscription=OuterRef("pk"), work_date__range=(first, last))
    )
    lowest = Decimal(min(UsageThreshold.values)) / 100
    price = PackagePrice.objects.filter(
        package=OuterRef("package_id"), currency=OuterRef("client__currency")
    )
    subscriptions = (
        Subscription.objects.filter(
            status=SubscriptionStatus.ACTIVE,
            package__billing_mode=BillingMode.RECURRING,
            package__included_hours__gt=0,
            start_date__lte=last,
        )
        .filter(Q(end_date__isnull=True) | Q(end_date__gte=first))
        .select_related("package", "client")
        .annotate(
            used_in_month=used,
            price_fee=Subquery(price.values("fee")[:1]),
            price_hourly_rate=Subquery(price.values("hourly_rate")[:1]),
        )
        .filter(used_in_month__gte=F("package__included_hours") * lowest)
        .order_by("pk")
    )
    if subscription_ids is not None:
        subscriptions = subscriptions.filter(pk__in=subscription_ids)
    usages = []
    for subscription in subscriptions:
        statement = _statement_of_row(subscription, used_hours=subscription.used_in_month)
        if statement is not None:
            usages.append(
                SubscriptionUsage(subscription=subscription, month=month, statement=statement)
            )
    return usages


def usage_alerts_to_send(*, now: dt.datetime, recorded_before: dt.datetime) -> list[int]:
    """Ids of the alerts with an e-mail still to try now: not done, not covered by a higher
    threshold, recorded before ``recorded_before`` (a younger one's own task may still be on
    its way), and either never started (its task was lost) or with a delivery that is due
    (back-off over, or claimed by a worker that never reported back). One query."""
    deliveries = UsageAlertDelivery.objects.filter(alert=OuterRef("pk"))
    due = deliveries.filter(
        status__in=[DeliveryStatus.PENDING, DeliveryStatus.SENDING], next_attempt_at__lte=now
    )
    return list(
        UsageAlert.objects.filter(
            sent_at__isnull=True, covered_by__isnull=True, created_at__lt=recorded_before
        )
        .filter(Exists(due) | ~Exists(deliveries))
        .order_by("pk")
        .values_list("pk", flat=True)
    )


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
            billed=start is not None and month >= start,
        )
        for month in reversed(months)
    ]
