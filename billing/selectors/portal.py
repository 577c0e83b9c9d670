"""The client portal's reads of subscriptions: dashboard cards, history, the subscriptions
a client may choose. Each is scoped to one client and runs a fixed number of queries,
whatever the number of subscriptions, entries or months."""

import datetime as dt
import operator
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from functools import reduce
from typing import Any

from django.db.models import (
    Case,
    Exists,
    OuterRef,
    Q,
    QuerySet,
    Sum,
    Value,
    When,
)
from django.utils import timezone

from billing.calculations import (
    Statement,
)
from billing.models import (
    BillableItem,
    BilledTerms,
    PeriodRelease,
)
from billing.selectors.blocks import block_draw_notes, block_hours_of, block_lines_of
from billing.selectors.portal_tickets import EntryLine, client_ticket_times
from billing.selectors.review import review_days, review_running, review_until
from billing.selectors.statements import (
    HOURS,
    ZERO_HOURS,
    HoursUsage,
    SubscriptionUsage,
    approved_hours_subquery,
    extra_billed,
    hours_usage,
    hours_usage_by_subscription,
    hours_used_subquery,
    month_range,
    policy_of,
    priced_subscriptions,
    statement_of_row,
    statement_of_terms,
    stored_terms_of_row,
    stored_usage,
    subscription_runs_in,
    ticket_month_hours,
    with_stored_terms,
)
from packages.models import (
    BillingMode,
    BillingPeriod,
    BlockDraw,
    OverageApproval,
    PeriodStatus,
    Subscription,
    SubscriptionStatus,
)
from supportbilling.periods import (
    period_current,
    period_last_day,
    period_next,
    period_of,
    period_previous,
    periods_between,
)
from tickets.models import TimeEntry


def _months_back(month: dt.date, count: int) -> dt.date:
    for _ in range(count):
        month = period_previous(month)
    return month


def client_subscription_usages(
    *,
    client_id: int,
    month: dt.date,
    subscription_id: int | None = None,
    extra_hours: Decimal = ZERO_HOURS,
) -> list[SubscriptionUsage]:
    """The dashboard's cards: every subscription of the client whose dates overlap ``month``
    (recurring: hours of the month; one-time: the bucket, all time), in two queries: the
    subscriptions, and the month's hours per subscription and ticket (the billing policy
    applies per ticket and month, ``ticket_month_hours``).

    ``subscription_id`` with ``extra_hours`` answers the cost calculator's "what if" for one
    subscription with the same arithmetic (``statement_compute``) the rollup uses.
    """
    first, last = month_range(month)
    subscriptions = (
        with_stored_terms(priced_subscriptions(client_id=client_id), month=month)
        .filter(subscription_runs_in(first, last))
        .annotate(
            approved_in_month=approved_hours_subquery(month),
            # All time only for a bucket: a monthly package's card never reads its history, so
            # PostgreSQL (which evaluates a CASE branch only when it is taken) sums nothing
            # for it, and the card costs the same after 2 or 200 closed months.
            used_ever=Case(
                When(package__billing_mode=BillingMode.ONE_TIME, then=hours_used_subquery()),
                default=Value(ZERO_HOURS),
                output_field=HOURS,
            ),
        )
        .order_by("-package__billing_mode", "start_date", "pk")
    )
    if subscription_id is not None:
        subscriptions = subscriptions.filter(pk=subscription_id)
    entries = TimeEntry.objects.filter(
        subscription__client_id=client_id,
        subscription__package__billing_mode=BillingMode.RECURRING,
        work_date__range=(first, last),
    )
    if subscription_id is not None:
        entries = entries.filter(subscription_id=subscription_id)
    month_rows = hours_usage_by_subscription(ticket_month_hours(entries, month=month))
    rows = list(subscriptions)
    recurring = [s for s in rows if s.package.billing_mode == BillingMode.RECURRING]

    def billed_in_month(subscription: Any) -> Decimal:
        """The month's hours billed under the policy (what draws the blocks)."""
        terms = stored_terms_of_row(subscription)
        policy = policy_of(terms if terms is not None else subscription.package)
        billed = hours_usage(month_rows.get(subscription.pk, []), policy).billed
        if subscription.pk == subscription_id:
            billed += extra_billed(extra_hours, policy)
        return billed

    # Top-up blocks: one query when none of them has any (billing.selectors.blocks).
    blocks = block_lines_of(
        month=month,
        included={
            s.pk: (s.stored_included_hours if s.stored_fee is not None else s.hours_included)
            for s in recurring
        },
        used={s.pk: billed_in_month(s) for s in recurring},
        closed={s.pk for s in recurring if s.stored_fee is not None},
    )
    usages = []
    for subscription in rows:
        is_recurring = subscription.package.billing_mode == BillingMode.RECURRING
        extra = extra_hours if subscription.pk == subscription_id else ZERO_HOURS
        lines = blocks.get(subscription.pk, [])
        usages.append(
            SubscriptionUsage(
                subscription=subscription,
                month=month,
                statement=statement_of_row(
                    subscription,
                    used_hours=ZERO_HOURS if is_recurring else subscription.used_ever,
                    extra_hours=extra,
                    terms=stored_terms_of_row(subscription),
                    usage_rows=month_rows.get(subscription.pk, []) if is_recurring else None,
                    block_hours=block_hours_of(lines, closed=subscription.stored_fee is not None),
                ),
                extra_hours=extra,
                blocks=tuple(lines),
            )
        )
    return usages


@dataclass(frozen=True)
class HistoryRow:
    """One closed month of one subscription: the statement and what was billed for it."""

    month: dt.date
    statement: Statement | None
    items: list[BillableItem]
    # The month is in review (docs/billing-rules.md) until then; None: not (any more).
    review_until: dt.datetime | None = None
    # Top-up blocks: what the close drew from each, and those that expired unused.
    block_notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class ChartPoint:
    month: dt.date
    used_hours: Decimal
    included_hours: Decimal


@dataclass(frozen=True)
class SubscriptionHistory:
    subscription: Subscription
    rows: list[HistoryRow]  # closed months, newest first
    chart: list[ChartPoint]  # the last 12 months it ran, oldest first (recurring only)
    # Closed months older than those shown (``client_history(months=...)``) when it ran then.
    earlier_months: bool = False


def _included_in(
    subscription: Any, month: dt.date, terms_by_key: Mapping[tuple[int, dt.date | None], Any]
) -> Decimal:
    """The hours included in ``month``: as billed when its terms are stored, else today's."""
    terms = terms_by_key.get((subscription.pk, month))
    return terms.included_hours if terms else subscription.hours_included


# More date ranges than this (a client with hundreds of subscriptions and months closed
# before the hours were stored) read all their entries instead: SQLite refuses a condition
# of about 1,000 ORs.
_ENTRY_RANGES_MAX = 200


def _entries_wanted(
    subscriptions: list[Subscription],
    shown_months: set[dt.date],
    terms_by_key: Mapping[tuple[int, dt.date | None], BilledTerms],
    *,
    since: dt.date | None,
) -> Q | None:
    """The time entries the history must read for ``shown_months`` (its rows' and its chart's),
    or None: a bucket's (from ``since``), and of a recurring subscription those of the months
    whose hours are not stored with their terms (open months, months closed before the hours
    were kept), each run of consecutive months one date range on the ``(subscription,
    work_date)`` index."""
    wanted = []
    for subscription in subscriptions:
        if subscription.package.billing_mode != BillingMode.RECURRING:
            wanted.append(Q(subscription_id=subscription.pk))
            continue
        months = sorted(
            month
            for month in shown_months
            if stored_usage(terms_by_key.get((subscription.pk, month))) is None
        )
        for first, last in _month_runs(months):
            wanted.append(
                Q(subscription_id=subscription.pk, work_date__range=(first, period_last_day(last)))
            )
    if not wanted:
        return None
    if len(wanted) > _ENTRY_RANGES_MAX:
        # Every entry of the subscriptions rather than a query too long for SQLite.
        wanted = [Q(subscription_id__in=[subscription.pk for subscription in subscriptions])]
    entries = reduce(operator.or_, wanted)
    return entries if since is None else entries & Q(work_date__gte=since)


def _month_runs(months: list[dt.date]) -> list[tuple[dt.date, dt.date]]:
    """Sorted months as runs of consecutive months: [(first, last)]."""
    runs: list[tuple[dt.date, dt.date]] = []
    for month in months:
        if runs and period_next(runs[-1][1]) == month:
            runs[-1] = (runs[-1][0], month)
        else:
            runs.append((month, month))
    return runs


def client_history(
    *,
    client_id: int,
    subscription_id: int | None = None,
    now: dt.datetime | None = None,
    chart_months: int = 12,
    months: int | None = None,
) -> list[SubscriptionHistory]:
    """Per subscription of the client: one row per closed month it was billed in, with the
    statement (with the terms stored when the month was billed; the current ones only for a
    month closed before terms were stored) and its billable items, and the hours used
    against the hours included over the months it ran of the last ``chart_months``. Seven
    queries in all (the approvals of extra hours one of them, the top-up blocks' draws
    another). ``months``: only the newest that many closed months, whose data alone is read,
    so that the cost does not grow with the years of history (one query more when there are
    older ones: whose items they hold); None: all of them."""
    subscriptions = list(
        priced_subscriptions(client_id=client_id).order_by(
            "-package__billing_mode", "start_date", "pk"
        )
        if subscription_id is None
        else priced_subscriptions(client_id=client_id).filter(pk=subscription_id)
    )
    if not subscriptions:
        return []
    subscription_ids = [subscription.pk for subscription in subscriptions]
    closed = BillingPeriod.objects.filter(status=PeriodStatus.CLOSED).order_by("-month")
    in_review: dict[dt.date, dt.datetime] = {}
    if review_days():
        now_moment = now or timezone.now()
        rows_closed = list(
            closed.annotate(
                released=Exists(PeriodRelease.objects.filter(month=OuterRef("month")))
            ).values_list("month", "closed_at", "released")
        )
        closed_months = [month for month, _, _ in rows_closed]
        for month, closed_at, released in rows_closed:
            until = review_until(closed_at)
            if until is not None and review_running(until, released=released, now=now_moment):
                in_review[month] = until
    else:
        closed_months = list(closed.values_list("month", flat=True))
    all_closed_months = closed_months
    current = period_current(now)
    chart_range = periods_between(_months_back(current, chart_months - 1), current)
    # The first month whose data is read: the oldest shown, or the chart's first.
    since: dt.date | None = None
    if months is not None:
        closed_months = closed_months[:months]
        since = min([*closed_months[-1:], chart_range[0]])
    in_months = Q() if since is None else Q(month__gte=since)
    items_by_key: dict[tuple[int | None, dt.date], list[BillableItem]] = {}
    items = BillableItem.objects.filter(subscription_id__in=subscription_ids)
    if since is not None:
        items = items.filter(period__gte=since)
    for item in items.order_by("period", "kind", "pk"):
        items_by_key.setdefault((item.subscription_id, item.period), []).append(item)
    approved: dict[tuple[int, dt.date], Decimal] = {
        (row["subscription_id"], row["month"]): row["total"]
        for row in OverageApproval.objects.filter(in_months, subscription_id__in=subscription_ids)
        .order_by()
        .values("subscription_id", "month")
        .annotate(total=Sum("hours"))
    }
    draws: dict[tuple[int, dt.date], list[Any]] = {}
    for draw in BlockDraw.objects.filter(
        in_months, subscription_id__in=subscription_ids
    ).select_related("block"):
        draws.setdefault((draw.subscription_id, draw.month), []).append(draw)
    terms_by_key: dict[tuple[int, dt.date | None], BilledTerms] = {}
    all_terms = BilledTerms.objects.filter(subscription_id__in=subscription_ids)
    if since is not None:
        all_terms = all_terms.filter(Q(month__gte=since) | Q(billing_mode=BillingMode.ONE_TIME))
    for stored in all_terms:
        # A bucket's terms serve every month of it.
        month_key = None if stored.billing_mode == BillingMode.ONE_TIME else stored.month
        terms_by_key[(stored.subscription_id, month_key)] = stored
    # Per subscription, month and ticket (the billing policy applies per ticket and month),
    # only where the close did not store the month's hours with its terms.
    rows_by_key: dict[tuple[int, dt.date], list[dict[str, Any]]] = {}
    entries_wanted = _entries_wanted(
        subscriptions, {*closed_months, *chart_range}, terms_by_key, since=since
    )
    if entries_wanted is not None:
        for row in ticket_month_hours(TimeEntry.objects.filter(entries_wanted)):
            rows_by_key.setdefault((row["subscription_id"], row["month"]), []).append(row)
    # The closed months not shown, and the subscriptions that have items in them (an
    # adjustment may be dated outside the months a subscription ran).
    earlier = all_closed_months[len(closed_months) :]
    items_earlier = (
        set(
            BillableItem.objects.filter(subscription_id__in=subscription_ids, period__in=earlier)
            .values_list("subscription_id", flat=True)
            .distinct()
        )
        if earlier
        else set()
    )
    histories = []
    for subscription in subscriptions:
        first = period_of(subscription.start_date)
        last = period_of(subscription.end_date) if subscription.end_date else current
        is_recurring = subscription.package.billing_mode == BillingMode.RECURRING
        rows = []

        def usage_in(month: dt.date, subscription: Subscription = subscription) -> HoursUsage:
            terms = terms_by_key.get((subscription.pk, month))
            stored_hours = stored_usage(terms)
            if stored_hours is not None:
                return stored_hours
            policy = policy_of(terms if terms is not None else subscription.package)
            return hours_usage(rows_by_key.get((subscription.pk, month), []), policy)

        for month in closed_months:
            month_items = items_by_key.get((subscription.pk, month), [])
            month_rows = rows_by_key.get((subscription.pk, month))
            terms = terms_by_key.get((subscription.pk, month if is_recurring else None))
            # The month's hours as the close stored them with its terms, else from its rows.
            stored_hours = stored_usage(terms) if is_recurring else None
            worked = bool(month_rows) or (
                stored_hours is not None and stored_hours.logged + stored_hours.no_charge > 0
            )
            # Outside the months it ran, a month shows only when it has items or time.
            if not month_items and not worked and not (is_recurring and first <= month <= last):
                continue
            month_draws = draws.get((subscription.pk, month), [])
            block_hours = sum((draw.hours for draw in month_draws), ZERO_HOURS)
            statement = (
                statement_of_terms(
                    terms,
                    used_hours=stored_hours.billed,
                    logged_hours=stored_hours.logged,
                    no_charge_hours=stored_hours.no_charge,
                    block_hours=block_hours,
                )
                if stored_hours is not None and terms is not None
                else statement_of_row(
                    subscription,
                    used_hours=hours_usage(month_rows or [], None).logged,
                    terms=terms,
                    usage_rows=month_rows or [],
                    approved_hours=approved.get((subscription.pk, month), ZERO_HOURS),
                    block_hours=block_hours,
                )
            )
            rows.append(
                HistoryRow(
                    month=month,
                    statement=statement,
                    items=month_items,
                    block_notes=tuple(block_draw_notes(month_draws)),
                    review_until=in_review.get(month),
                )
            )
        # Only the months the subscription ran: before its start there is nothing to show,
        # and a zero bar there would read as a month without support requests.
        chart = (
            [
                ChartPoint(
                    month=month,
                    used_hours=usage_in(month).billed,
                    included_hours=_included_in(subscription, month, terms_by_key),
                )
                for month in chart_range
                if first <= month <= last
            ]
            if is_recurring
            else []
        )
        histories.append(
            SubscriptionHistory(
                subscription=subscription,
                rows=rows,
                chart=chart,
                earlier_months=subscription.pk in items_earlier
                or any(first <= month <= last for month in earlier),
            )
        )
    return histories


@dataclass(frozen=True)
class WorkLine:
    """One time entry of a closed month, with the subject of its ticket."""

    entry: EntryLine
    subject: str


@dataclass(frozen=True)
class ClosedMonthWork:
    """What was done on one subscription in one closed month: its time entries, oldest first.
    Operator and note only when the package shows its work log (``show_work_log``)."""

    subscription: Subscription
    month: dt.date
    lines: list[WorkLine]

    @property
    def show_work_log(self) -> bool:
        return self.subscription.package.show_work_log

    @property
    def total_hours(self) -> Decimal:
        return sum((line.entry.hours for line in self.lines), ZERO_HOURS)


def client_closed_month_work(
    *, client_id: int, subscription_id: int, month: dt.date
) -> ClosedMonthWork:
    """The entries of a closed month of one of the client's subscriptions. Another client's
    subscription raises ``Subscription.DoesNotExist``, a month that is not closed (still open,
    or being closed) ``BillingPeriod.DoesNotExist``: the history only offers closed months.
    Five queries."""
    subscription = client_subscription_get(client_id=client_id, subscription_id=subscription_id)
    if not BillingPeriod.objects.filter(month=month, status=PeriodStatus.CLOSED).exists():
        raise BillingPeriod.DoesNotExist(f"{month} is not a closed month.")
    times = client_ticket_times(client_id=client_id, month=month, subscription_id=subscription.pk)
    lines = [
        WorkLine(entry=entry, subject=time.subject) for time in times for entry in time.entries
    ]
    lines.sort(key=lambda line: (line.entry.work_date, line.entry.entry_id))
    return ClosedMonthWork(subscription=subscription, month=month, lines=lines)


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


@dataclass(frozen=True)
class DisputeTarget:
    """Where a time entry or item of the client belongs: its subscription and month."""

    subscription_id: int | None
    month: dt.date


def client_dispute_target(
    *, client_id: int, time_entry_id: int | None, item_id: int | None
) -> DisputeTarget | None:
    """The client's own time entry or item (None: not theirs, or no such object)."""
    if item_id is not None:
        item = (
            BillableItem.objects.filter(pk=item_id, client_id=client_id)
            .values("subscription_id", "period")
            .first()
        )
        return DisputeTarget(item["subscription_id"], item["period"]) if item else None
    if time_entry_id is not None:
        entry = (
            TimeEntry.objects.filter(pk=time_entry_id, subscription__client_id=client_id)
            .values("subscription_id", "work_date")
            .first()
        )
        if entry:
            return DisputeTarget(entry["subscription_id"], period_of(entry["work_date"]))
    return None
