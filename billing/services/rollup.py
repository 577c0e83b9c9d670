"""The monthly rollup that closes a period: begin, bill each batch of subscriptions (set-based
INSERT ... SELECT on PostgreSQL), finish."""

import datetime as dt
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from djmoney.money import Money

from billing import signals
from billing.calculations import ItemDraft
from billing.models import (
    BillableItem,
    BilledTerms,
    ItemKind,
    ItemStatus,
)
from billing.selectors.rollup import (
    BlockDrawDraft,
    rollup_batches,
    rollup_billed_kinds,
    rollup_block_balances,
    rollup_block_draws,
    rollup_drafts,
    rollup_drafts_fit,
    rollup_range_blocks,
    rollup_row_drafts,
    rollup_rows,
    rollup_rows_queryset,
    rollup_rows_with_blocks,
    rollup_ticket_hours_queryset,
    subscriptions_without_price,
)
from billing.selectors.statements import policy_of_columns, ticket_billed
from billing.services.items import billable_item_from_draft
from billing.services.monthly_statements import statements_queue_for_month
from packages.models import (
    BillingMode,
    BillingPeriod,
    BlockDraw,
    PeriodStatus,
)
from packages.selectors import MissingPrice, billing_start
from supportbilling.periods import (
    period_has_ended,
    period_label,
    period_next,
)
from supportbilling.sqltext import sql_composed
from tickets.blocks import block_balances_of
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


def _items_insert(new_items: list[tuple[Mapping[str, Any], ItemDraft]], *, month: dt.date) -> None:
    """Write the batch's new items (databases other than PostgreSQL)."""
    if not new_items:
        return
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


def _terms_insert(rows: Sequence[Mapping[str, Any]], *, month: dt.date) -> None:
    """Store the terms of every subscription of the batch, with items or without, and its
    hours of the month, so that the month shows what was billed whatever the prices become
    (databases other than PostgreSQL). Terms a batch stored before stay as they are
    (append-only)."""
    if not rows:
        return
    BilledTerms.objects.bulk_create(
        [
            BilledTerms(
                subscription_id=row["pk"],
                month=month,
                billing_mode=BillingMode.RECURRING,
                included_hours=row["included_hours"],
                fee=Money(row["fee"], row["client__currency"]),
                hourly_rate=Money(row["hourly_rate"], row["client__currency"]),
                billing_increment=row["billing_increment"],
                billing_rounding=row["billing_rounding"],
                billing_minimum=row["billing_minimum"],
                overage_policy=row["billed_overage_policy"],
                approved_hours=row["approved_hours"],
                logged_hours=row["logged_hours"],
                billed_hours=row["used_hours"],
                no_charge_hours=row["no_charge_hours"],
            )
            for row in rows
            if row["stored_terms"] is None
        ],
        ignore_conflicts=True,
    )


def _batch_write_python(*, month: dt.date, first_id: int, last_id: int) -> tuple[int, int]:
    """Bill the batch row by row in Python (databases other than PostgreSQL): (items
    written, subscriptions billed)."""
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
    _items_insert(new_items, month=month)
    _terms_insert(rows, month=month)
    return len(new_items), len(billed_subscriptions)


# PostgreSQL: the batch's aggregated rows (``rollup_rows_queryset``) go into a temporary
# table, their hours per ticket (``rollup_ticket_hours_queryset``) into another; Python
# computes each ticket's billed hours once per distinct (policy, ticket sums)
# (``ticket_billed``) and one UPDATE sums them per subscription; then Python computes the
# items once per distinct set of inputs of the billing rule (``rollup_drafts``); one
# INSERT ... SELECT joins each row to its group's items, another stores the terms. No row
# travels to Python and back: a group is known on both sides by its number, its rank in the
# order of its inputs (the SELECT that reads the groups sorts them as DENSE_RANK numbers the
# rows) (docs/performance.md, docs/decisions.md).
_BATCH_TABLE = "rollup_batch_rows"
_TICKETS_TABLE = "rollup_batch_tickets"
# The temporary table's columns, named after the queryset's values().
_BATCH_COLUMNS = {
    "pk": "subscription_id",
    "client_id": "client_id",
    "client__currency": "currency",
    "package__name": "package_name",
    "package__invoice_action": "invoice_action",
    "included_hours": "included_hours",
    "used_hours": "used_hours",
    "fee": "fee",
    "hourly_rate": "hourly_rate",
    "billing_increment": "billing_increment",
    "billing_rounding": "billing_rounding",
    "billing_minimum": "billing_minimum",
    "logged_hours": "logged_hours",
    "no_charge_hours": "no_charge_hours",
    "block_hours": "block_hours",
    "billed_overage_policy": "overage_policy",
    "approved_hours": "approved_hours",
    "stored_terms": "stored_terms",
}
# The distinct inputs of the billing policy per ticket: the subscription's policy and the
# ticket's sums (``ticket_month_hours``: logged, then the entries rounded per increment;
# the tickets table's columns are named after that query's values()).
_TICKET_SUMS = ("logged", *(f"rounded_{key}" for key in ("050", "100")))


_TICKET_GROUP = (
    "r.billing_increment, r.billing_rounding, r.billing_minimum, t.logged, t.rounded_050, "
    "t.rounded_100"
)
_TICKETS_JOINED = (
    "rollup_batch_tickets t JOIN rollup_batch_rows r ON r.subscription_id = t.subscription_id"
)
_TICKET_INPUTS = sql_composed(
    "SELECT {group} FROM {tickets} GROUP BY {group} ORDER BY {group}",
    group=_TICKET_GROUP,
    tickets=_TICKETS_JOINED,
)
# Each subscription's billed hours (the sum of its tickets' billed hours, given per group of
# inputs in the order of _TICKET_INPUTS), its chargeable and no-charge hours. A subscription
# without entries keeps zero.
_TICKETS_UPDATE = sql_composed(
    "WITH billed (input_group, billed) AS (SELECT u.input_group, u.billed FROM unnest("
    "%(billed)s::numeric[]) WITH ORDINALITY AS u (billed, input_group)), "
    "tickets AS (SELECT t.subscription_id, t.logged, t.no_charge_hours, "
    "DENSE_RANK() OVER (ORDER BY {group}) AS input_group FROM {tickets}), "
    "sums AS (SELECT t.subscription_id, SUM(t.logged) AS logged, "
    "SUM(t.no_charge_hours) AS no_charge, SUM(d.billed) AS billed "
    "FROM tickets t JOIN billed d ON d.input_group = t.input_group GROUP BY t.subscription_id) "
    "UPDATE rollup_batch_rows b SET used_hours = s.billed, logged_hours = s.logged, "
    "no_charge_hours = s.no_charge FROM sums s WHERE b.subscription_id = s.subscription_id",
    group=_TICKET_GROUP,
    tickets=_TICKETS_JOINED,
)
# The distinct inputs of the rule in the batch, in the order of their numbers; the smallest
# subscription id names the group when its price is missing (fee NULL).
_BATCH_GROUP = (
    "currency, package_name, included_hours, used_hours, fee, hourly_rate, logged_hours, "
    "no_charge_hours, overage_policy, approved_hours, block_hours"
)
_BATCH_INPUTS = sql_composed(
    "SELECT {group}, MIN(subscription_id) FROM rollup_batch_rows GROUP BY {group} ORDER BY {group}",
    group=_BATCH_GROUP,
)
# The items: each row joined, through the number of its inputs' group, to the items computed
# for that group, in the order Python wrote them before (subscription, then fee before
# overtime). The count is of the items written now.
_BATCH_ITEMS_INSERT = (
    "WITH drafts AS (SELECT * FROM jsonb_to_recordset(%(drafts)s::jsonb) AS d (input_group "
    "int, position int, kind text, description text, unit text, quantity numeric, "
    "unit_price numeric, amount numeric)), "
    "grouped AS (SELECT b.*, "
    "DENSE_RANK() OVER (ORDER BY {group}) AS input_group FROM rollup_batch_rows b), "
    "written AS (INSERT INTO billing_billableitem (client_id, subscription_id, period, kind, "
    "description, unit, quantity, unit_price, amount, currency, invoice_action, status, "
    "created_at, updated_at) "
    "SELECT b.client_id, b.subscription_id, %(month)s, d.kind, d.description, d.unit, "
    "d.quantity, d.unit_price, d.amount, b.currency, b.invoice_action, %(status)s, "
    "%(written_at)s, %(written_at)s "
    "FROM grouped b JOIN drafts d ON d.input_group = b.input_group "
    "ORDER BY b.subscription_id, d.position{on_conflict} RETURNING subscription_id) "
    "SELECT COUNT(*), COUNT(DISTINCT subscription_id) FROM written"
)
# The terms of every subscription of the batch, with items or without, and its hours of the
# month (``used_hours`` are the billed hours by now); terms stored before stay as they are
# (append-only).
_BATCH_TERMS_INSERT = (
    "INSERT INTO billing_billedterms (subscription_id, month, billing_mode, included_hours, "
    "fee, hourly_rate, currency, billing_increment, billing_rounding, billing_minimum, "
    "overage_policy, approved_hours, logged_hours, billed_hours, no_charge_hours, created_at) "
    "SELECT subscription_id, %(month)s, %(billing_mode)s, included_hours, fee, hourly_rate, "
    "currency, billing_increment, billing_rounding, billing_minimum, overage_policy, "
    "approved_hours, logged_hours, used_hours, no_charge_hours, %(written_at)s "
    "FROM rollup_batch_rows WHERE stored_terms IS NULL "
    "ORDER BY subscription_id{on_conflict}"
)
# Plain inserts first: ON CONFLICT DO NOTHING checks each row against the unique index before
# writing it, a fifth of the items' insert (docs/performance.md). With it, a run of the batch
# that meets rows an earlier run (or a batch with other boundaries meanwhile) wrote keeps those
# as they are and writes the rest once.
_ITEMS_AND_TERMS_INSERTS = {
    on_conflict: (
        sql_composed(
            _BATCH_ITEMS_INSERT,
            group=_BATCH_GROUP,
            on_conflict=" ON CONFLICT DO NOTHING" if on_conflict else "",
        ),
        sql_composed(
            _BATCH_TERMS_INSERT,
            on_conflict=" ON CONFLICT (subscription_id, month) DO NOTHING" if on_conflict else "",
        ),
    )
    for on_conflict in (False, True)
}
_BATCH_TABLE_DROP = "DROP TABLE rollup_batch_rows, rollup_batch_tickets"
# Top-up blocks on the set-based path: the rows of the subscriptions that have blocks (only
# those travel, for ``block_balances_of`` and ``hours_split``), then their available hours
# into the ``block_hours`` column, one more distinct input of the rule.
_BLOCK_ROWS = (
    "SELECT subscription_id, included_hours, used_hours FROM rollup_batch_rows "
    "WHERE subscription_id = ANY(%(owners)s::bigint[]) ORDER BY subscription_id"
)
_BLOCK_HOURS_UPDATE = (
    "UPDATE rollup_batch_rows b SET block_hours = u.block_hours FROM unnest("
    "%(subscription_id)s::bigint[], %(block_hours)s::numeric[]) AS u (subscription_id, "
    "block_hours) WHERE b.subscription_id = u.subscription_id"
)


def _batch_blocks_sql(cursor: Any, *, month: dt.date, first_id: int, last_id: int) -> None:
    """The set-based batch's top-up blocks: one query when no subscription of the batch has a
    block; otherwise the blocks, their rows, their balances (three queries), one UPDATE of
    ``block_hours`` and the draws stored (``_block_draws_insert``): a constant number of
    statements whatever the batch size. The same rule as the row-by-row path
    (``rollup_block_balances``, ``rollup_rows_with_blocks``, ``rollup_block_draws``)."""
    blocks = rollup_range_blocks(month=month, first_id=first_id, last_id=last_id)
    if not blocks:
        return
    owners = sorted({block.topup_of_id for block in blocks if block.topup_of_id is not None})
    cursor.execute(_BLOCK_ROWS, {"owners": owners})
    rows = [
        {"pk": pk, "included_hours": included, "used_hours": used}
        for pk, included, used in cursor.fetchall()
    ]
    balances = block_balances_of(
        subscriptions={row["pk"]: row["included_hours"] for row in rows},
        month=month,
        blocks=blocks,
    )
    rows = rollup_rows_with_blocks(rows, balances)
    cursor.execute(
        _BLOCK_HOURS_UPDATE,
        {
            "subscription_id": [row["pk"] for row in rows],
            "block_hours": [row["block_hours"] for row in rows],
        },
    )
    _block_draws_insert(
        month=month, drafts=rollup_block_draws(month=month, rows=rows, balances=balances)
    )


def _batch_items_and_terms(
    cursor: Any, params: Mapping[str, Any], *, on_conflict: bool
) -> tuple[int, int]:
    """Write the batch's items and terms: (items written, subscriptions billed)."""
    items_insert, terms_insert = _ITEMS_AND_TERMS_INSERTS[on_conflict]
    cursor.execute(items_insert, params)
    items, subscriptions = cursor.fetchone()
    cursor.execute(terms_insert, params)
    return items, subscriptions


def _batch_write_sql(*, month: dt.date, first_id: int, last_id: int) -> tuple[int, int]:
    """Bill the batch on PostgreSQL, set-based: (items written, subscriptions billed).
    Eleven statements whatever the batch size, without top-up blocks."""
    query = rollup_rows_queryset(month=month, first_id=first_id, last_id=last_id).query
    # The SELECT's columns in the order Django compiles them (that of values()).
    columns = ", ".join(_BATCH_COLUMNS[name] for name in query.selected or ())
    select, select_params = query.sql_with_params()
    tickets_query = rollup_ticket_hours_queryset(
        month=month, first_id=first_id, last_id=last_id
    ).query
    ticket_columns = ", ".join(tickets_query.selected or ())
    tickets_select, tickets_params = tickets_query.sql_with_params()
    # The items computed per group of inputs (numbered from 1), as one JSON document:
    # psycopg writes a long array literal element by element, 0.2 s of CPU per close in
    # eight arrays; amounts go as strings, so that no float touches them.
    drafts: list[dict[str, Any]] = []
    written_at = timezone.now()  # what auto_now_add and auto_now set
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TEMPORARY TABLE {_BATCH_TABLE} ({columns}) AS {select}", select_params
        )
        cursor.execute(
            f"CREATE TEMPORARY TABLE {_TICKETS_TABLE} ({ticket_columns}) AS {tickets_select}",
            tickets_params,
        )
        # The billing policy, once per distinct (policy, ticket sums) of the batch, in the
        # order of the groups' numbers; SQL sums each subscription's tickets.
        cursor.execute(_TICKET_INPUTS)
        billed = [
            ticket_billed(
                dict(zip(_TICKET_SUMS, sums, strict=True)),
                policy_of_columns(increment, rounding, minimum),
            )
            for increment, rounding, minimum, *sums in cursor.fetchall()
        ]
        cursor.execute(_TICKETS_UPDATE, {"billed": billed})
        _batch_blocks_sql(cursor, month=month, first_id=first_id, last_id=last_id)
        cursor.execute(_BATCH_INPUTS)
        for group, row in enumerate(cursor.fetchall(), start=1):
            (
                currency,
                package_name,
                included,
                used,
                fee,
                rate,
                logged,
                no_charge,
                overage_policy,
                approved,
                block_hours,
                first_subscription,
            ) = row
            if fee is None:
                raise MissingPrice(
                    f"Subscription #{first_subscription} has no price in its currency."
                )
            computed = rollup_drafts(
                currency=currency,
                package_name=package_name,
                included_hours=included,
                used_hours=used,
                fee=fee,
                hourly_rate=rate,
                month=month,
                logged_hours=logged,
                no_charge_hours=no_charge,
                overage_policy=overage_policy,
                approved_hours=approved,
                block_hours=block_hours,
            )
            computed = rollup_drafts_fit(
                computed, subscription_id=first_subscription, currency=currency
            )
            for position, draft in enumerate(computed):
                drafts.append(
                    {
                        "input_group": group,
                        "position": position,
                        "kind": draft.kind,
                        "description": draft.description,
                        "unit": draft.unit,
                        "quantity": str(draft.quantity),
                        "unit_price": str(draft.unit_price),
                        "amount": str(draft.amount),
                    }
                )
        params = {
            "drafts": json.dumps(drafts),
            "month": month,
            "status": ItemStatus.PENDING.value,
            "billing_mode": BillingMode.RECURRING.value,
            "written_at": written_at,
        }
        try:
            with transaction.atomic():
                items, subscriptions = _batch_items_and_terms(cursor, params, on_conflict=False)
        except IntegrityError:
            # An earlier run of the batch, or a batch with other boundaries meanwhile, wrote
            # some of these items or terms: they stay as they are, the rest is written once.
            items, subscriptions = _batch_items_and_terms(cursor, params, on_conflict=True)
        cursor.execute(_BATCH_TABLE_DROP)
    return items, subscriptions


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

    A constant number of queries whatever the batch size. On PostgreSQL: the lock, the
    aggregated rows and their hours per ticket into temporary tables, the billing policy's
    hours summed per subscription, their distinct inputs of the billing rule, in a savepoint
    one INSERT ... SELECT of the items (the rule's results joined to the rows) and one of the
    terms of every subscription of the batch (again with ON CONFLICT DO NOTHING when they
    meet rows already written), the tables dropped, one audit row. Elsewhere the rows are
    read and written through the ORM.
    Nothing is written per time entry: an entry is billed once its month is closed
    (``tickets.selectors.time_entries_with_billed``).
    Idempotent: a batch that ran before writes nothing.
    """
    _batch_lock(month, first_id)
    write = _batch_write_sql if connection.vendor == "postgresql" else _batch_write_python
    items, subscriptions = write(month=month, first_id=first_id, last_id=last_id)
    _audit_insert(
        month=month,
        first_id=first_id,
        last_id=last_id,
        subscriptions=subscriptions,
        items=items,
    )
    if items:
        # Items already written by an earlier run of the batch are announced once: the
        # receivers record one delivery per object.
        signals.items_created.send(
            sender=BillableItem,
            items=BillableItem.objects.filter(
                period=month,
                subscription__gte=first_id,
                subscription__lte=last_id,
                kind__in=[ItemKind.FEE, ItemKind.OVERTIME],
            ),
        )
    return items


def period_close_finish(
    *, month: dt.date, actor: Any = None, now: dt.datetime | None = None
) -> bool:
    """Mark the month closed once every batch ran. True for the run that closed it."""
    with transaction.atomic():
        closed = bool(
            BillingPeriod.objects.filter(month=month, status=PeriodStatus.CLOSING).update(
                status=PeriodStatus.CLOSED,
                closed_at=now or timezone.now(),
                closed_by=actor if getattr(actor, "is_authenticated", False) else None,
            )
        )
        if closed:
            signals.period_closed.send(sender=BillingPeriod, month=month, actor=actor)
            statements_queue_for_month(month=month)
    return closed


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
