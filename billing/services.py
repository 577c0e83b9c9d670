"""Writes of billing: subscriptions (with their one-time item), the monthly rollup that
closes a period, adjustments and item statuses."""

import datetime as dt
import json
import logging
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone
from djmoney.money import Money

from billing.calculations import (
    ItemDraft,
    one_time_item_draft,
    rollup_item_drafts,
    statement_compute,
)
from billing.models import BillableItem, ItemKind, ItemStatus
from billing.selectors import (
    MissingPrice,
    package_price_for,
    rollup_batches,
    rollup_rows,
    subscriptions_without_price,
)
from customers.models import Client
from packages.models import BillingMode, Subscription, SubscriptionStatus, SupportPackage
from supportbilling.periods import (
    local_today,
    period_has_ended,
    period_label,
    period_next,
    period_of,
)
from tickets.models import AuditAction, AuditEvent, BillingPeriod, PeriodStatus, Ticket, TimeEntry
from tickets.services import audit_record, ticket_subscription_set

logger = logging.getLogger(__name__)


def _item_from_draft(
    draft: ItemDraft,
    *,
    client_id: int,
    subscription_id: int,
    month: dt.date,
    currency: str,
    invoice_action: str,
) -> BillableItem:
    return BillableItem(
        client_id=client_id,
        subscription_id=subscription_id,
        period=month,
        kind=draft.kind,
        description=draft.description,
        unit=draft.unit,
        quantity=draft.quantity,
        unit_price=Money(draft.unit_price, currency),
        amount=Money(draft.amount, currency),
        invoice_action=invoice_action,
    )


@transaction.atomic
def subscription_create(
    *,
    client: Client,
    package: SupportPackage,
    start_date: dt.date | None = None,
    actor: Any = None,
    ticket: Ticket | None = None,
    now: dt.datetime | None = None,
) -> Subscription:
    """Subscribe a client to a package. A one-time package writes its ``one_time`` item now.
    With ``ticket``, the new subscription is also linked to that ticket."""
    if not client.active:
        raise ValidationError("The client is not active.", code="inactive_client")
    if not package.active:
        raise ValidationError(f"The package {package} is no longer offered.", code="inactive")
    try:
        price = package_price_for(package_id=package.pk, currency=client.currency)
    except MissingPrice as exc:
        raise ValidationError(
            f"The package {package} has no price in {client.currency}, the client's currency.",
            code="missing_price",
        ) from exc
    start_date = start_date or local_today(now)
    subscription = Subscription.objects.create(
        client=client, package=package, start_date=start_date, status=SubscriptionStatus.ACTIVE
    )
    if package.billing_mode == BillingMode.ONE_TIME:
        draft = one_time_item_draft(
            package_name=package.name, fee=price.fee.amount, currency=client.currency
        )
        _item_from_draft(
            draft,
            client_id=client.pk,
            subscription_id=subscription.pk,
            month=period_of(start_date),
            currency=client.currency,
            invoice_action=package.invoice_action,
        ).save()
    audit_record(
        action=AuditAction.SERVICE_ADDED,
        actor=actor,
        ticket=ticket,
        subscription_id=subscription.pk,
        detail={"package": package.name, "start_date": str(start_date)},
    )
    if ticket is not None:
        ticket_subscription_set(ticket=ticket, subscription=subscription, actor=actor)
    return subscription


@transaction.atomic
def subscription_status_set(
    *, subscription: Subscription, status: str, actor: Any = None, now: dt.datetime | None = None
) -> Subscription:
    """Suspend, reactivate or terminate. Terminating ends the subscription today (it is still
    billed for this month); ``depleted`` is set only by the bucket running out."""
    if status not in SubscriptionStatus.values:
        raise ValidationError(f"Unknown status {status!r}.", code="invalid_status")
    if status == SubscriptionStatus.DEPLETED or subscription.status == SubscriptionStatus.DEPLETED:
        raise ValidationError(
            "A one-time package becomes depleted by itself when its hours run out.",
            code="depleted_is_automatic",
        )
    if subscription.status == SubscriptionStatus.TERMINATED and status != subscription.status:
        raise ValidationError("A terminated subscription cannot be reopened.", code="terminated")
    old_status = subscription.status
    if old_status == status:
        return subscription
    subscription.status = status
    fields = ["status"]
    if status == SubscriptionStatus.TERMINATED and subscription.end_date is None:
        subscription.end_date = max(local_today(now), subscription.start_date)
        fields.append("end_date")
    subscription.save(update_fields=fields)
    audit_record(
        action=AuditAction.SUBSCRIPTION_STATUS,
        actor=actor,
        subscription_id=subscription.pk,
        detail={"status": [old_status, status]},
    )
    return subscription


# --- The rollup --------------------------------------------------------------------------


@dataclass(frozen=True)
class PeriodCloseResult:
    month: dt.date
    items_created: int
    already_closed: bool

    @property
    def period(self) -> str:
        return period_label(self.month)


def period_close_begin(*, month: dt.date, now: dt.datetime | None = None) -> bool:
    """Stop time entries of ``month`` (status ``closing``). Returns False when the month is
    already closed. Refuses a month that has not ended or that cannot be billed."""
    if not period_has_ended(month, now):
        raise ValidationError(
            f"{period_label(month)} has not ended yet; it can be closed from "
            f"{period_next(month):%Y-%m-%d}.",
            code="period_not_ended",
        )
    unpriced = subscriptions_without_price(month=month)
    if unpriced:
        raise ValidationError(
            f"Cannot close {period_label(month)}: subscriptions "
            f"{', '.join(f'#{pk}' for pk in unpriced[:20])} have no price in their client's "
            "currency.",
            code="missing_price",
        )
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


# Columns the rollup writes with COPY, in the order of the rows it builds.
_ITEM_COLUMNS = (
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
    "updated_at",
)
_AUDIT_COLUMNS = ("subscription_id", "action", "detail", "created_at")


def _copy_rows(table: str, columns: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
    """COPY plain rows into ``table`` (PostgreSQL only). For thousands of rows this is
    several times faster than bulk_create, which builds a model instance per row and adapts
    every value in Python; the rollup spent most of its time there (docs/performance.md)."""
    # Django's cursor wrapper has no COPY; psycopg's own cursor does.
    sql = f"COPY {table} ({', '.join(columns)}) FROM STDIN"
    with connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:
        for row in rows:
            copy.write_row(row)


# New items go through a temporary table so that ON CONFLICT DO NOTHING still drops an item
# another batch wrote meanwhile (a batch with other boundaries holds another lock), as
# bulk_create(ignore_conflicts=True) did.
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


def _items_insert(new_items: list[tuple[dict[str, Any], ItemDraft]], *, month: dt.date) -> None:
    """Write the batch's new items: COPY on PostgreSQL, bulk_create elsewhere."""
    if not new_items:
        return
    if connection.vendor != "postgresql":
        BillableItem.objects.bulk_create(
            [
                _item_from_draft(
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
    written_at = timezone.now()  # what auto_now_add and auto_now set
    rows = [
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
    with connection.cursor() as cursor:
        cursor.execute(_ITEMS_STAGING_CREATE)
        _copy_rows("rollup_new_items", _ITEM_COLUMNS, rows)
        cursor.execute(_ITEMS_STAGING_INSERT)


def _audit_insert(audit_details: list[tuple[int, dict[str, Any]]]) -> None:
    """One ``period_billed`` audit row per billed subscription: COPY on PostgreSQL."""
    if not audit_details:
        return
    if connection.vendor != "postgresql":
        AuditEvent.objects.bulk_create(
            AuditEvent(
                subscription_id=subscription_id, action=AuditAction.PERIOD_BILLED, detail=detail
            )
            for subscription_id, detail in audit_details
        )
        return
    written_at = timezone.now()
    _copy_rows(
        AuditEvent._meta.db_table,
        _AUDIT_COLUMNS,
        [
            (subscription_id, AuditAction.PERIOD_BILLED.value, json.dumps(detail), written_at)
            for subscription_id, detail in audit_details
        ],
    )


@transaction.atomic
def period_rollup_batch(
    *, month: dt.date, first_id: int, last_id: int, now: dt.datetime | None = None
) -> int:
    """Bill one batch of subscriptions for ``month``; returns how many items it wrote.

    A constant number of queries whatever the batch size: read the aggregated rows, read what
    is already billed, insert the rest in bulk, flag the entries, record the audit (on
    PostgreSQL the inserts are COPY statements, which Django's query log does not show).
    Idempotent: a batch that ran before writes nothing.
    """
    now = now or timezone.now()
    _batch_lock(month, first_id)
    rows = rollup_rows(month=month, first_id=first_id, last_id=last_id)
    already = set(
        BillableItem.objects.filter(
            period=month,
            subscription_id__gte=first_id,
            subscription_id__lte=last_id,
            kind__in=[ItemKind.FEE, ItemKind.OVERTIME],
        ).values_list("subscription_id", "kind")
    )
    new_items: list[tuple[dict[str, Any], ItemDraft]] = []
    billed_subscriptions: dict[int, list[str]] = {}
    for row in rows:
        if row["fee"] is None:
            raise MissingPrice(f"Subscription #{row['pk']} has no price in its currency.")
        statement = statement_compute(
            billing_mode=BillingMode.RECURRING,
            currency=row["client__currency"],
            included_hours=row["package__included_hours"],
            used_hours=row["used_hours"],
            fee=row["fee"],
            hourly_rate=row["hourly_rate"],
        )
        for draft in rollup_item_drafts(
            statement=statement, package_name=row["package__name"], month=month
        ):
            if (row["pk"], draft.kind) in already:
                continue
            new_items.append((row, draft))
            billed_subscriptions.setdefault(row["pk"], []).append(
                f"{draft.kind} {draft.amount} {row['client__currency']}"
            )
    audit_details = [
        (subscription_id, {"period": period_label(month), "items": billed})
        for subscription_id, billed in billed_subscriptions.items()
    ]
    _items_insert(new_items, month=month)
    TimeEntry.objects.filter(
        subscription_id__gte=first_id,
        subscription_id__lte=last_id,
        work_date__gte=month,
        work_date__lt=period_next(month),
        billed_at__isnull=True,
    ).update(billed_at=now)
    _audit_insert(audit_details)
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
        created += period_rollup_batch(month=month, first_id=first_id, last_id=last_id, now=now)
    period_close_finish(month=month, actor=actor, now=now)
    logger.info("Closed %s: %d billable items written", period_label(month), created)
    return PeriodCloseResult(month=month, items_created=created, already_closed=False)
