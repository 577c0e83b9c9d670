"""Reads of the monthly rollup: which subscriptions a month bills, in batches, with their
aggregated hours and terms."""

import datetime as dt
import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import connection
from django.db.models import (
    Count,
    Exists,
    F,
    FilteredRelation,
    OuterRef,
    Q,
    QuerySet,
    Sum,
    Value,
)
from django.db.models.functions import Coalesce
from psycopg import sql

from billing.calculations import (
    BillingPolicy,
    ItemDraft,
    hours_split,
    money_round,
    rollup_item_drafts,
    statement_compute,
)
from billing.models import ITEM_AMOUNT_LIMIT, BillableItem, ItemKind
from billing.selectors.statements import (
    HOURS,
    ZERO_HOURS,
    approved_hours_subquery,
    current_price,
    hours_usage,
    hours_usage_by_subscription,
    hours_used_subquery,
    month_range,
    policy_of_columns,
    subscription_runs_in,
    ticket_month_hours_queryset,
)
from customers.models import Client
from packages.models import BillingMode, OveragePolicy, PackagePrice, Subscription, SupportPackage
from packages.selectors import MissingPrice
from supportbilling.periods import period_last_day
from tickets.blocks import BlockBalance, block_balances_of, blocks_queryset
from tickets.models import (
    TimeEntry,
)

ZERO = Decimal("0")


def subscriptions_billed_in(*, month: dt.date) -> QuerySet[Subscription]:
    """Subscriptions the rollup of ``month`` touches: those whose dates overlap the month, or
    that have time entries in it (their entries are flagged billed; recurring ones bill)."""
    first, last = month_range(month)
    has_entries = Exists(
        TimeEntry.objects.filter(subscription=OuterRef("pk"), work_date__range=(first, last))
    )
    return Subscription.objects.filter(subscription_runs_in(first, last) | Q(has_entries))


# The ids numbered by the database, so that only the ranges travel, not every id of the
# month (120,000 of them took 0.2 s of the close's CPU to read).
_BATCH_RANGES = sql.SQL(
    "SELECT MIN(subscription), MAX(subscription) FROM (SELECT ids.subscription, "
    "(ROW_NUMBER() OVER (ORDER BY ids.subscription) - 1) / %s AS batch "
    "FROM ({ids}) AS ids) AS numbered GROUP BY batch ORDER BY batch"
)


def rollup_batches(*, month: dt.date, batch_size: int) -> list[tuple[int, int]]:
    """Id ranges [first, last] of at most ``batch_size`` subscriptions, in id order."""
    ids_sql, ids_params = (
        subscriptions_billed_in(month=month)
        .order_by()
        .values(subscription=F("pk"))
        .query.sql_with_params()
    )
    statement = _BATCH_RANGES.format(ids=sql.SQL(ids_sql)).as_string()
    with connection.cursor() as cursor:
        cursor.execute(statement, [batch_size, *ids_params])
        return [(first, last) for first, last in cursor.fetchall()]


def rollup_rows_queryset(*, month: dt.date, first_id: int, last_id: int) -> QuerySet[Any, Any]:
    """One row per recurring subscription of the batch with its terms (included hours, fee
    and hourly rate in the client's currency), aggregated by the database in a single query.
    Terms already stored for the month (a batch that ran before) win over the current ones,
    so a batch billed again computes what it billed; ``stored_terms`` says whether they are
    stored (their id, else None).

    The subscriptions of ``subscriptions_billed_in``: those that run in the month, or that
    logged chargeable hours in it (hours are positive), a correlated sum that PostgreSQL
    evaluates only for the subscriptions that do not run in the month. The price is an outer
    join. This shape is 2.5 times faster than three correlated subqueries and than a GROUP BY
    over the joined entries, which sorts on every selected column (docs/performance.md).

    The aggregation of the rollup, as a query: ``rollup_rows`` reads it, and on PostgreSQL
    ``period_rollup_batch`` stores it in a temporary table and writes from there.

    ``used_hours``, ``logged_hours`` and ``no_charge_hours`` are zero here. The billing policy
    (increment, rounding, minimum; stored or current like the prices) applies per ticket and
    month, from ``rollup_ticket_hours_queryset``: ``rollup_rows`` (and the set-based batch, in
    SQL) then set ``used_hours`` to the hours billed, ``logged_hours`` to the chargeable hours
    as logged and ``no_charge_hours`` to those at no charge. (A sum of the hours here, for
    every row, was overwritten so, and cost the close half of this query's time.)"""
    first, last = month_range(month)
    return (
        Subscription.objects.filter(
            pk__range=(first_id, last_id), package__billing_mode=BillingMode.RECURRING
        )
        .annotate(
            price=FilteredRelation(
                "package__prices", condition=Q(package__prices__currency=F("client__currency"))
            ),
            # The id range repeated on the terms: while a close runs, the month's terms grow
            # faster than their statistics, and without it PostgreSQL read and sorted all of
            # them for every batch (docs/performance.md).
            stored=FilteredRelation(
                "billed_terms",
                condition=Q(
                    billed_terms__month=month,
                    billed_terms__subscription__gte=first_id,
                    billed_terms__subscription__lte=last_id,
                ),
            ),
            used_hours=Value(ZERO_HOURS, output_field=HOURS),
            included_hours=Coalesce("stored__included_hours", "package__included_hours"),
            fee=Coalesce("stored__fee", "price__fee"),
            hourly_rate=Coalesce("stored__hourly_rate", "price__hourly_rate"),
            billing_increment=Coalesce("stored__billing_increment", "package__billing_increment"),
            billing_rounding=Coalesce("stored__billing_rounding", "package__billing_rounding"),
            billing_minimum=Coalesce("stored__billing_minimum", "package__billing_minimum"),
            logged_hours=Value(ZERO_HOURS, output_field=HOURS),
            no_charge_hours=Value(ZERO_HOURS, output_field=HOURS),
            # What the top-up blocks have available (``rollup_rows_with_blocks``; the
            # set-based batch fills its column, billing.services.rollup).
            block_hours=Value(ZERO_HOURS, output_field=HOURS),
            # The overage policy and the month's approved hours: stored with the terms once the
            # batch ran (a policy changed since never changes the month), else current.
            billed_overage_policy=Coalesce("stored__overage_policy", "overage_policy"),
            approved_hours=Coalesce("stored__approved_hours", approved_hours_subquery(month)),
            stored_terms=F("stored__id"),
        )
        .alias(chargeable_logged=hours_used_subquery(month))
        .filter(subscription_runs_in(first, last) | Q(chargeable_logged__gt=0))
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
            "billing_increment",
            "billing_rounding",
            "billing_minimum",
            "logged_hours",
            "no_charge_hours",
            "block_hours",
            "billed_overage_policy",
            "approved_hours",
            "stored_terms",
        )
    )


def rollup_block_balances(
    *, month: dt.date, rows: Sequence[Mapping[str, Any]]
) -> dict[int, list[BlockBalance]]:
    """The top-up blocks of the batch's recurring subscriptions (the rows of
    ``rollup_rows``) serving ``month``, each with the hours it has available for the month:
    its size minus the draws stored by the closes of earlier months (minus what earlier
    months not closed yet draw). One query when no subscription of the batch has a block,
    four otherwise. The rollup adds their total to each row as ``block_hours``, the one
    more input of ``statement_compute`` (docs/decisions.md, "Top-up blocks")."""
    return block_balances_of(
        subscriptions={row["pk"]: row["included_hours"] for row in rows}, month=month
    )


def rollup_range_blocks(*, month: dt.date, first_id: int, last_id: int) -> list[Subscription]:
    """The top-up blocks (not terminated, started by the end of ``month``) of the
    subscriptions of a batch's id range, in id order: the set-based batch's one read of them
    (the same blocks as ``tickets.blocks.blocks_of`` of the batch's rows, by the same filter;
    the range spares reading the batch's ids first)."""
    return list(
        blocks_queryset(
            Q(topup_of_id__gte=first_id, topup_of_id__lte=last_id), until=period_last_day(month)
        )
    )


def rollup_rows_with_blocks(
    rows: Sequence[Mapping[str, Any]], balances: Mapping[int, list[BlockBalance]]
) -> list[dict[str, Any]]:
    """The rows with ``block_hours``: what their blocks have available for the month."""
    return [
        {**row, "block_hours": sum((b.available for b in balances.get(row["pk"], [])), ZERO)}
        for row in rows
    ]


@dataclass(frozen=True)
class BlockDrawDraft:
    """What the close of a month draws from one block, and leaves unused if it expires."""

    subscription_id: int
    block_id: int
    hours: Decimal
    expired_hours: Decimal


def rollup_block_draws(
    *,
    month: dt.date,
    rows: Sequence[Mapping[str, Any]],
    balances: Mapping[int, list[BlockBalance]],
) -> list[BlockDrawDraft]:
    """Per block of the batch: what the month draws from it (``hours_split`` of the row's
    hours used), and the hours it leaves unused when ``month`` is the month it expires in.
    Only blocks with either above zero."""
    drafts = []
    for row in rows:
        own = balances.get(row["pk"], [])
        if not own:
            continue
        _, draws, _ = hours_split(
            row["used_hours"], row["included_hours"], [(b.block_id, b.available) for b in own]
        )
        drawn = dict(draws)
        for balance in own:
            hours = drawn.get(balance.block_id, ZERO)
            expires_now = balance.expires_on is not None and (
                balance.expires_on.replace(day=1) == month
            )
            expired = balance.available - hours if expires_now else ZERO
            if hours > 0 or expired > 0:
                drafts.append(
                    BlockDrawDraft(
                        subscription_id=row["pk"],
                        block_id=balance.block_id,
                        hours=hours,
                        expired_hours=expired,
                    )
                )
    return drafts


def rollup_ticket_hours_queryset(
    *, month: dt.date, first_id: int, last_id: int
) -> QuerySet[Any, Any]:
    """The hours of the batch's subscriptions in ``month`` per subscription and ticket
    (``ticket_month_hours``): what the billing policy applies to. Every subscription of the
    id range (a bucket's rows are not read): no join needed."""
    return ticket_month_hours_queryset(
        TimeEntry.objects.filter(
            subscription_id__gte=first_id,
            subscription_id__lte=last_id,
            work_date__range=month_range(month),
        )
    )


def rollup_rows(*, month: dt.date, first_id: int, last_id: int) -> list[dict[str, Any]]:
    """The rows of ``rollup_rows_queryset``, one per recurring subscription of the batch, with
    the billing policy applied: ``used_hours`` billed, ``logged_hours``, ``no_charge_hours``
    (two queries; the set-based batch does the same in SQL, docs/decisions.md)."""
    rows = [
        dict(row) for row in rollup_rows_queryset(month=month, first_id=first_id, last_id=last_id)
    ]
    by_subscription = hours_usage_by_subscription(
        [
            {**row, "month": month}
            for row in rollup_ticket_hours_queryset(month=month, first_id=first_id, last_id=last_id)
        ]
    )
    for row in rows:
        usage = hours_usage(by_subscription.get(row["pk"], []), policy_of_row(row))
        row["used_hours"] = usage.billed
        row["logged_hours"] = usage.logged
        row["no_charge_hours"] = usage.no_charge
    return rows


def policy_of_row(row: Mapping[str, Any]) -> BillingPolicy:
    """The billing policy of a ``rollup_rows`` row (its stored terms', else its package's)."""
    return policy_of_columns(
        row["billing_increment"], row["billing_rounding"], row["billing_minimum"]
    )


def subscriptions_without_price(*, month: dt.date) -> list[int]:
    """Recurring subscriptions to bill in ``month`` whose package has no price in the
    client's currency: the rollup refuses to run until they are fixed.

    When every recurring package has a price in every currency a client has, none can lack
    one, and three small queries say so; only otherwise are the month's subscriptions read
    (0.16 s at 120,000 of them, docs/performance.md)."""
    currencies = set(Client.objects.order_by().values_list("currency", flat=True).distinct())
    packages = SupportPackage.objects.filter(billing_mode=BillingMode.RECURRING).values_list(
        "pk", flat=True
    )
    priced = set(
        PackagePrice.objects.filter(package__billing_mode=BillingMode.RECURRING).values_list(
            "package_id", "currency"
        )
    )
    if all((package, currency) in priced for package in packages for currency in currencies):
        return []
    return list(
        subscriptions_billed_in(month=month)
        .filter(package__billing_mode=BillingMode.RECURRING)
        .exclude(Exists(current_price()))
        .values_list("pk", flat=True)
    )


@functools.lru_cache(maxsize=8192)
def rollup_drafts(
    *,
    currency: str,
    package_name: str,
    included_hours: Decimal,
    used_hours: Decimal,
    fee: Decimal,
    hourly_rate: Decimal,
    month: dt.date,
    logged_hours: Decimal | None = None,
    no_charge_hours: Decimal = ZERO,
    overage_policy: str = OveragePolicy.BILL,
    approved_hours: Decimal = ZERO,
    block_hours: Decimal = ZERO,
) -> tuple[ItemDraft, ...]:
    """The items (fee, overtime) of a recurring subscription with these terms and hours
    (``used_hours`` billed under the policy, ``logged_hours`` as logged, ``no_charge_hours``;
    ``overage_policy`` and ``approved_hours``: under ``approve`` only approved overtime bills;
    ``block_hours``: what the top-up blocks have available, drawn before any overtime):
    ``statement_compute`` and ``rollup_item_drafts``, the one home of the rule. Pure, so it is
    computed once per distinct set of inputs: a month of 100,000 subscriptions has a few
    thousand (packages x currencies x hours used), docs/performance.md."""
    statement = statement_compute(
        billing_mode=BillingMode.RECURRING,
        currency=currency,
        included_hours=included_hours,
        used_hours=used_hours,
        fee=fee,
        hourly_rate=hourly_rate,
        logged_hours=logged_hours,
        no_charge_hours=no_charge_hours,
        overage_policy=overage_policy,
        approved_hours=approved_hours,
        block_hours=block_hours,
    )
    return tuple(rollup_item_drafts(statement=statement, package_name=package_name, month=month))


def rollup_drafts_fit(
    drafts: tuple[ItemDraft, ...], *, subscription_id: int, currency: str
) -> tuple[ItemDraft, ...]:
    """``drafts``, or a refusal (ValidationError) that names the subscription when an amount
    is more than an item holds: the batch then writes nothing and the month stays closing
    until the price is corrected (docs/billing-rules.md)."""
    for draft in drafts:
        if abs(draft.amount) >= ITEM_AMOUNT_LIMIT:
            raise ValidationError(
                f"Subscription #{subscription_id}: its {draft.kind} of {draft.amount} "
                f"{currency} is more than a billable item holds (at most 999,999,999,999.99); "
                "correct its price, then close the month again.",
                code="amount_too_large",
            )
    return drafts


def rollup_row_drafts(*, row: Mapping[str, Any], month: dt.date) -> tuple[ItemDraft, ...]:
    """The items (fee, overtime) one row of ``rollup_rows`` bills: what the rollup writes, and
    what the admin's confirmation of a close announces."""
    if row["fee"] is None:
        raise MissingPrice(f"Subscription #{row['pk']} has no price in its currency.")
    drafts = rollup_drafts(
        currency=row["client__currency"],
        package_name=row["package__name"],
        included_hours=row["included_hours"],
        used_hours=row["used_hours"],
        fee=row["fee"],
        hourly_rate=row["hourly_rate"],
        overage_policy=row["billed_overage_policy"],
        approved_hours=row["approved_hours"],
        block_hours=row.get("block_hours", ZERO),
        month=month,
        logged_hours=row.get("logged_hours"),
        no_charge_hours=row.get("no_charge_hours", ZERO),
    )
    return rollup_drafts_fit(drafts, subscription_id=row["pk"], currency=row["client__currency"])


def rollup_billed_kinds(*, month: dt.date, first_id: int, last_id: int) -> set[tuple[int, str]]:
    """(subscription, kind) of the fees and overtime of ``month`` already written for the
    batch: a batch that ran before writes them again never."""
    return set(
        BillableItem.objects.filter(
            period=month,
            subscription_id__gte=first_id,
            subscription_id__lte=last_id,
            kind__in=[ItemKind.FEE, ItemKind.OVERTIME],
        ).values_list("subscription_id", "kind")
    )


@dataclass(frozen=True)
class ClosePreview:
    """What closing ``month`` will write, as the admin's confirmation states it."""

    month: dt.date
    subscriptions: int  # subscriptions the rollup bills or flags
    entries: int  # time entries of the month it locks
    hours: Decimal
    expected: list[dict[str, Any]]  # {"kind", "currency", "count", "total": Money}

    @property
    def items(self) -> int:
        return sum(row["count"] for row in self.expected)


def period_close_preview(*, month: dt.date, batch_size: int) -> ClosePreview:
    """The items the rollup of ``month`` would write now (the same rows and rules, batch by
    batch, nothing written), the subscriptions it touches and the entries it locks."""
    expected: dict[tuple[str, str], list[Any]] = {}
    for first_id, last_id in rollup_batches(month=month, batch_size=batch_size):
        already = rollup_billed_kinds(month=month, first_id=first_id, last_id=last_id)
        rows = rollup_rows(month=month, first_id=first_id, last_id=last_id)
        rows = rollup_rows_with_blocks(rows, rollup_block_balances(month=month, rows=rows))
        for row in rows:
            if row["fee"] is None:
                continue  # period_close_check refuses the month and names it
            for draft in rollup_row_drafts(row=row, month=month):
                if (row["pk"], draft.kind) in already:
                    continue
                total = expected.setdefault((draft.kind, row["client__currency"]), [0, ZERO])
                total[0] += 1
                total[1] += draft.amount
    first, last = month_range(month)
    entries = TimeEntry.objects.filter(work_date__range=(first, last)).aggregate(
        count=Count("id"), hours=Sum("hours")
    )
    labels = dict(ItemKind.choices)
    return ClosePreview(
        month=month,
        subscriptions=subscriptions_billed_in(month=month).count(),
        entries=entries["count"],
        hours=entries["hours"] or ZERO,
        expected=[
            {
                "kind": labels[kind],
                "currency": currency,
                "count": count,
                "total": money_round(total, currency),
            }
            for (kind, currency), (count, total) in sorted(expected.items())
        ],
    )
