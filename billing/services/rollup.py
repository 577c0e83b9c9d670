"""The monthly rollup that closes a period: begin, bill each batch of subscriptions (COPY
writes on PostgreSQL), finish."""

import datetime as dt
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from djmoney.money import Money

from billing.calculations import ItemDraft
from billing.models import (
    BILLABLE_ITEM_COLUMNS,
    BillableItem,
    BilledTerms,
    ItemStatus,
)
from billing.selectors.rollup import (
    BlockDrawDraft,
    rollup_batches,
    rollup_billed_kinds,
    rollup_block_balances,
    rollup_block_draws,
    rollup_row_drafts,
    rollup_rows,
    rollup_rows_with_blocks,
    subscriptions_without_price,
)
from billing.services.items import billable_item_from_draft
from packages.models import (
    BillingMode,
    BillingPeriod,
    BlockDraw,
    PeriodStatus,
)
from packages.selectors import billing_start
from supportbilling.periods import (
    period_has_ended,
    period_label,
    period_next,
)
from tickets.models import AuditAction, AuditEvent

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PeriodCloseResult:
    month: dt.date
    items_created: int
    already_closed: bool

    @property
    def period(self) -> str:
        return period_label(self.month)


def period_close_check(*, month: dt.date, now: dt.datetime | None = None) -> None:
    """Refuse (ValidationError) to close a month before the billing start, one that has not
    ended, and one that cannot be billed; the admin's confirmation page asks it too."""
    if not period_has_ended(month, now):
        raise ValidationError(
            f"{period_label(month)} has not ended yet; it can be closed from "
            f"{period_next(month):%Y-%m-%d}.",
            code="period_not_ended",
        )
    start = billing_start()
    if start is None:
        raise ValidationError(
            f"Billing has not begun: no subscription was sold yet, so {period_label(month)} "
            "has nothing to close.",
            code="before_billing_start",
        )
    if month < start:
        raise ValidationError(
            f"{period_label(month)} is before billing began ({period_label(start)}): it is "
            "never closed or billed.",
            code="before_billing_start",
        )
    unpriced = subscriptions_without_price(month=month)
    if unpriced:
        raise ValidationError(
            f"Cannot close {period_label(month)}: subscriptions "
            f"{', '.join(f'#{pk}' for pk in unpriced[:20])} have no price in their client's "
            "currency.",
            code="missing_price",
        )


def period_close_begin(*, month: dt.date, now: dt.datetime | None = None) -> bool:
    """Stop time entries of ``month`` (status ``closing``). Returns False when the month is
    already closed. Refuses what ``period_close_check`` refuses."""
    period_close_check(month=month, now=now)
    BillingPeriod.objects.bulk_create([BillingPeriod(month=month)], ignore_conflicts=True)
    # Waits for time entries of the month that are being written (they hold a share lock).
    BillingPeriod.objects.filter(month=month, status=PeriodStatus.OPEN).update(
        status=PeriodStatus.CLOSING
    )
    return not BillingPeriod.objects.filter(month=month, status=PeriodStatus.CLOSED).exists()


def _batch_lock(month: dt.date, first_id: int) -> None:
    """One worker at a time per batch, so the count of new items and the audit are exact.
    (The unique constraint alone already prevents double billing.)"""
    if connection.vendor == "postgresql":
        key = ((month.year * 12 + month.month) << 32) | (first_id & 0xFFFFFFFF)
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [key])


# Columns the rollup writes with COPY, in the order of the rows it builds: the item's columns
# but the id (the database gives it), then its update time. (No field sets db_column.)
_ATTNAMES = {field.name: field.attname for field in BillableItem._meta.concrete_fields}
_ITEM_COLUMNS = (*(_ATTNAMES[name] for name in BILLABLE_ITEM_COLUMNS[1:]), "updated_at")


def _copy_rows(table: str, columns: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
    """COPY plain rows into ``table`` (PostgreSQL only). For thousands of rows this is
    several times faster than bulk_create, which builds a model instance per row and adapts
    every value in Python; the rollup spent most of its time there (docs/performance.md)."""
    # Django's cursor wrapper has no COPY; psycopg's own cursor does.
    sql = f"COPY {table} ({', '.join(columns)}) FROM STDIN"
    with connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:
        for row in rows:
            copy.write_row(row)


# When the straight COPY (_copy_new_rows) meets an item another batch wrote meanwhile (a
# batch with other boundaries holds another lock), the items go through a temporary table so
# that ON CONFLICT DO NOTHING drops that one, as bulk_create(ignore_conflicts=True) did.
# Literal SQL (no text built from names); the columns are those of _ITEM_COLUMNS.
_ITEMS_STAGING_CREATE = (
    "CREATE TEMPORARY TABLE IF NOT EXISTS rollup_new_items ON COMMIT DELETE ROWS AS "
    "SELECT client_id, subscription_id, period, kind, description, unit, quantity, "
    "unit_price, amount, currency, invoice_action, status, created_at, updated_at "
    "FROM billing_billableitem WITH NO DATA"
)
_ITEMS_STAGING_INSERT = (
    "INSERT INTO billing_billableitem (client_id, subscription_id, period, kind, description, "
    "unit, quantity, unit_price, amount, currency, invoice_action, status, created_at, "
    "updated_at) SELECT client_id, subscription_id, period, kind, description, unit, quantity, "
    "unit_price, amount, currency, invoice_action, status, created_at, updated_at "
    "FROM rollup_new_items ON CONFLICT DO NOTHING"
)


def _items_insert(new_items: list[tuple[Mapping[str, Any], ItemDraft]], *, month: dt.date) -> None:
    """Write the batch's new items: COPY on PostgreSQL, bulk_create elsewhere."""
    if not new_items:
        return
    if connection.vendor != "postgresql":
        BillableItem.objects.bulk_create(
            [
                billable_item_from_draft(
                    draft,
                    client_id=row["client_id"],
                    subscription_id=row["pk"],
                    month=month,
                    currency=row["client__currency"],
                    invoice_action=row["package__invoice_action"],
                )
                for row, draft in new_items
            ],
            ignore_conflicts=True,
        )
        return
    with connection.cursor() as cursor:
        cursor.execute(_ITEMS_STAGING_CREATE)
        _copy_rows("rollup_new_items", _ITEM_COLUMNS, _item_rows(new_items, month=month))
        cursor.execute(_ITEMS_STAGING_INSERT)


def _item_rows(
    new_items: list[tuple[Mapping[str, Any], ItemDraft]], *, month: dt.date
) -> list[tuple[Any, ...]]:
    """The COPY rows of ``new_items``, columns as ``_ITEM_COLUMNS``."""
    written_at = timezone.now()  # what auto_now_add and auto_now set
    return [
        (
            row["client_id"],
            row["pk"],
            month,
            draft.kind,
            draft.description,
            draft.unit,
            draft.quantity,
            draft.unit_price,
            draft.amount,
            row["client__currency"],
            row["package__invoice_action"],
            ItemStatus.PENDING.value,
            written_at,
            written_at,
        )
        for row, draft in new_items
    ]


# One statement for the whole batch: the rows' columns as arrays, unnested by PostgreSQL.
_TERMS_INSERT = (
    "INSERT INTO billing_billedterms (subscription_id, month, billing_mode, included_hours, "
    "fee, hourly_rate, currency, created_at) "
    "SELECT subscription_id, %s, %s, included_hours, fee, hourly_rate, currency, %s "
    "FROM unnest(%s::bigint[], %s::numeric[], %s::numeric[], %s::numeric[], %s::varchar[]) "
    "AS terms (subscription_id, included_hours, fee, hourly_rate, currency) "
    "ON CONFLICT (subscription_id, month) DO NOTHING"
)


def _terms_insert(rows: list[Mapping[str, Any]], *, month: dt.date) -> None:
    """Store the terms of every subscription of the batch, with items or without, so that
    the month shows what was billed whatever the prices become. Terms a batch stored before
    stay as they are (append-only)."""
    if not rows:
        return
    if connection.vendor != "postgresql":
        BilledTerms.objects.bulk_create(
            [
                BilledTerms(
                    subscription_id=row["pk"],
                    month=month,
                    billing_mode=BillingMode.RECURRING,
                    included_hours=row["included_hours"],
                    fee=Money(row["fee"], row["client__currency"]),
                    hourly_rate=Money(row["hourly_rate"], row["client__currency"]),
                )
                for row in rows
            ],
            ignore_conflicts=True,
        )
        return
    with connection.cursor() as cursor:
        cursor.execute(
            _TERMS_INSERT,
            [
                month,
                BillingMode.RECURRING.value,
                timezone.now(),
                [row["pk"] for row in rows],
                [row["included_hours"] for row in rows],
                [row["fee"] for row in rows],
                [row["hourly_rate"] for row in rows],
                [row["client__currency"] for row in rows],
            ],
        )


_TERMS_COLUMNS = (
    "subscription_id",
    "month",
    "billing_mode",
    "included_hours",
    "fee",
    "hourly_rate",
    "currency",
    "created_at",
)


def _copy_new_rows(
    new_items: list[tuple[Mapping[str, Any], ItemDraft]],
    rows: list[Mapping[str, Any]],
    *,
    month: dt.date,
) -> bool:
    """PostgreSQL: COPY the new items and the terms not stored yet straight into their tables,
    in a savepoint. False, with nothing written, when a row is already there: another batch
    over some of the same subscriptions (other boundaries, so another lock) wrote it after
    this batch read what was billed; the caller then writes through ON CONFLICT DO NOTHING.
    A straight COPY costs half of a COPY into a staging table plus an INSERT from it."""
    written_at = timezone.now()
    terms = [
        (
            row["pk"],
            month,
            BillingMode.RECURRING.value,
            row["included_hours"],
            row["fee"],
            row["hourly_rate"],
            row["client__currency"],
            written_at,
        )
        for row in rows
        if row["stored_terms"] is None
    ]
    try:
        with transaction.atomic(), connection.wrap_database_errors:
            if new_items:
                _copy_rows(
                    BillableItem._meta.db_table, _ITEM_COLUMNS, _item_rows(new_items, month=month)
                )
            if terms:
                _copy_rows(BilledTerms._meta.db_table, _TERMS_COLUMNS, terms)
    except IntegrityError:
        return False
    return True


def _audit_insert(
    *, month: dt.date, first_id: int, last_id: int, subscriptions: int, items: int
) -> None:
    """One ``period_billed`` audit row for the batch, not one per subscription: which
    subscriptions (an id range) the close of ``month`` billed, and how many items it wrote.
    ``tickets.selectors.subscription_audit_trail`` shows it on each of them; what each one was
    billed are its items and stored terms, which never change."""
    if not items:
        return
    AuditEvent.objects.create(
        action=AuditAction.PERIOD_BILLED,
        detail={
            "period": period_label(month),
            "first_subscription": first_id,
            "last_subscription": last_id,
            "subscriptions_billed": subscriptions,
            "items_written": items,
        },
    )


def _block_draws_insert(*, month: dt.date, drafts: list[BlockDrawDraft]) -> None:
    """Store what the month drew from each top-up block (one insert for the batch) and record
    each block that expires with hours unused: a ``block_expired`` event on the trail of the
    subscription it topped up. A batch that ran before (its rows are there) writes nothing."""
    if not drafts:
        return
    stored = set(
        BlockDraw.objects.filter(
            month=month, block_id__in=[draft.block_id for draft in drafts]
        ).values_list("block_id", flat=True)
    )
    new = [draft for draft in drafts if draft.block_id not in stored]
    if not new:
        return
    BlockDraw.objects.bulk_create(
        [
            BlockDraw(
                block_id=draft.block_id,
                subscription_id=draft.subscription_id,
                month=month,
                hours=draft.hours,
                expired_hours=draft.expired_hours,
            )
            for draft in new
        ],
        ignore_conflicts=True,
    )
    expired = [draft for draft in new if draft.expired_hours > 0]
    if expired:
        AuditEvent.objects.bulk_create(
            [
                AuditEvent(
                    action=AuditAction.BLOCK_EXPIRED,
                    subscription_id=draft.subscription_id,
                    detail={
                        "period": period_label(month),
                        "block": draft.block_id,
                        "drawn": str(draft.hours),
                        "unused": str(draft.expired_hours),
                    },
                )
                for draft in expired
            ]
        )


@transaction.atomic
def period_rollup_batch(*, month: dt.date, first_id: int, last_id: int) -> int:
    """Bill one batch of subscriptions for ``month``; returns how many items it wrote.

    A constant number of queries whatever the batch size: read the aggregated rows, read what
    is already billed, insert the rest and store the terms of every subscription of the batch
    (on PostgreSQL two COPY in a savepoint, which Django's query log does not show), record one
    audit row.
    Nothing is written per time entry: an entry is billed once its month is closed
    (``tickets.selectors.time_entries_with_billed``).
    Idempotent: a batch that ran before writes nothing.
    """
    _batch_lock(month, first_id)
    rows = rollup_rows(month=month, first_id=first_id, last_id=last_id)
    # Top-up blocks: their available hours enter each row as ``block_hours`` (one more
    # input of statement_compute), and the batch stores what the month drew from each.
    balances = rollup_block_balances(month=month, rows=rows)
    rows = rollup_rows_with_blocks(rows, balances)
    _block_draws_insert(
        month=month, drafts=rollup_block_draws(month=month, rows=rows, balances=balances)
    )
    already = rollup_billed_kinds(month=month, first_id=first_id, last_id=last_id)
    new_items: list[tuple[Mapping[str, Any], ItemDraft]] = []
    billed_subscriptions: set[int] = set()
    for row in rows:
        for draft in rollup_row_drafts(row=row, month=month):
            if (row["pk"], draft.kind) in already:
                continue
            new_items.append((row, draft))
            billed_subscriptions.add(row["pk"])
    if connection.vendor != "postgresql" or not _copy_new_rows(new_items, rows, month=month):
        _items_insert(new_items, month=month)
        _terms_insert(rows, month=month)
    _audit_insert(
        month=month,
        first_id=first_id,
        last_id=last_id,
        subscriptions=len(billed_subscriptions),
        items=len(new_items),
    )
    return len(new_items)


def period_close_finish(
    *, month: dt.date, actor: Any = None, now: dt.datetime | None = None
) -> bool:
    """Mark the month closed once every batch ran. True for the run that closed it."""
    return bool(
        BillingPeriod.objects.filter(month=month, status=PeriodStatus.CLOSING).update(
            status=PeriodStatus.CLOSED,
            closed_at=now or timezone.now(),
            closed_by=actor if getattr(actor, "is_authenticated", False) else None,
        )
    )


def period_close(
    *,
    month: dt.date,
    actor: Any = None,
    now: dt.datetime | None = None,
    batch_size: int | None = None,
) -> PeriodCloseResult:
    """Close ``month`` in this process: the rollup of every batch, then the period.
    The scheduled task runs the same three steps with the batches spread over workers."""
    if not period_close_begin(month=month, now=now):
        return PeriodCloseResult(month=month, items_created=0, already_closed=True)
    created = 0
    for first_id, last_id in rollup_batches(
        month=month, batch_size=batch_size or settings.ROLLUP_BATCH_SIZE
    ):
        created += period_rollup_batch(month=month, first_id=first_id, last_id=last_id)
    period_close_finish(month=month, actor=actor, now=now)
    logger.info("Closed %s: %d billable items written", period_label(month), created)
    return PeriodCloseResult(month=month, items_created=created, already_closed=False)
