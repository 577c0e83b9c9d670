"""Writes of billing: subscriptions (with their one-time item), the monthly rollup that
closes a period, adjustments and item statuses."""

import datetime as dt
import json
import logging
import smtplib
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.mail import EmailMultiAlternatives
from django.db import connection, transaction
from django.db.models import Exists, OuterRef
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from djmoney.money import Money

from billing import audit
from billing.calculations import (
    ItemDraft,
    money_round,
    one_time_item_draft,
    rollup_item_drafts,
    statement_compute,
)
from billing.models import (
    BillableItem,
    BilledTerms,
    BillingAction,
    DeliveryStatus,
    ItemKind,
    ItemStatus,
    ItemUnit,
    UsageAlert,
    UsageAlertDelivery,
)
from billing.selectors import (
    MissingPrice,
    billing_start,
    package_price_for,
    rollup_batches,
    rollup_rows,
    subscription_start_earliest,
    subscription_start_latest,
    subscriptions_without_price,
    usage_alert_candidates,
    usage_alerts_to_send,
    usage_thresholds_reached,
)
from customers.models import Client, MailKind
from customers.selectors import unsubscribe_token, user_wants
from packages.models import (
    BillingMode,
    InvoiceAction,
    PackagePrice,
    Subscription,
    SubscriptionStatus,
    SupportPackage,
)
from supportbilling.periods import (
    local_today,
    period_current,
    period_has_ended,
    period_label,
    period_last_day,
    period_next,
    period_of,
)
from supportbilling.queue import task_enqueue
from tickets.models import AuditAction, AuditEvent, BillingPeriod, PeriodStatus, Ticket, TimeEntry
from tickets.selectors import period_closed_from
from tickets.services import (
    audit_record,
    period_lock,
    periods_lock_after,
    ticket_subscription_set,
)

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


def _start_month_closed(month: dt.date, closed: dt.date) -> ValidationError:
    # The rollup of that month already ran: it would never bill the subscription there.
    if closed == month:
        message = f"{period_label(month)} is closed: start the subscription in an open month."
    else:
        message = (
            f"{period_label(closed)} is already closed: start the subscription after it, in "
            f"{period_label(period_next(closed))} or later."
        )
    return ValidationError(message, code="period_closed")


def subscription_create_check(
    *,
    client: Client,
    package: SupportPackage,
    start_date: dt.date,
    now: dt.datetime | None = None,
) -> PackagePrice:
    """Refuse what subscription_create refuses (forms call it to show the message next to the
    fields); returns the price the subscription will be billed at.

    The start month lies between the billing start (or the current month, before billing
    began) and SUBSCRIPTION_START_MAX_MONTHS_AHEAD after the current month, and is open: so
    its months, and a one-time fee, land in months the rollup closes and finance exports."""
    if not client.active:
        raise ValidationError("The client is not active.", code="inactive_client")
    if not package.active:
        raise ValidationError(f"The package {package} is no longer offered.", code="inactive")
    if package.billing_mode == BillingMode.ONE_TIME and package.included_hours <= 0:
        raise ValidationError(
            f"The one-time package {package} has no hours to sell.", code="empty_bucket"
        )
    try:
        price = package_price_for(package_id=package.pk, currency=client.currency)
    except MissingPrice as exc:
        raise ValidationError(
            f"The package {package} has no price in {client.currency}, the client's currency.",
            code="missing_price",
        ) from exc
    month = period_of(start_date)
    earliest = subscription_start_earliest(now=now)
    if month < earliest:
        raise ValidationError(
            f"The start date cannot be before {earliest:%Y-%m-%d}: months before "
            f"{period_label(earliest)} are not billed.",
            code="start_before_billing",
        )
    latest = subscription_start_latest(now=now)
    if month > latest:
        raise ValidationError(
            "The start date can be at most "
            f"{settings.SUBSCRIPTION_START_MAX_MONTHS_AHEAD} months ahead: "
            f"{period_last_day(latest):%Y-%m-%d} at the latest.",
            code="start_too_far_ahead",
        )
    closed = period_closed_from(month=month)
    if closed is not None:
        raise _start_month_closed(month, closed)
    return price


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
    """Subscribe a client to a package. A one-time package stores its terms (the bucket's
    hours and price) and writes its ``one_time`` item now.
    With ``ticket``, the new subscription is also linked to that ticket."""
    start_date = start_date or local_today(now)
    price = subscription_create_check(
        client=client, package=package, start_date=start_date, now=now
    )
    # Writes the start month's row when missing: it records that billing began (billing_start
    # reads the first row). Its shared lock makes a rollup of that month wait for this commit.
    month = period_of(start_date)
    if period_lock(month=month) != PeriodStatus.OPEN:
        raise _start_month_closed(month, month)
    # Later months closed meanwhile (out of order) would never bill it either.
    closed = periods_lock_after(month=month)
    if closed is not None:
        raise _start_month_closed(month, closed)
    # A bucket's size and price are fixed now: later package changes do not reach it.
    subscription = Subscription.objects.create(
        client=client,
        package=package,
        start_date=start_date,
        status=SubscriptionStatus.ACTIVE,
        bucket_hours=package.included_hours
        if package.billing_mode == BillingMode.ONE_TIME
        else None,
    )
    if subscription.bucket_hours is not None:  # a one-time package
        BilledTerms.objects.create(
            subscription=subscription,
            month=period_of(start_date),
            billing_mode=BillingMode.ONE_TIME,
            included_hours=subscription.bucket_hours,
            fee=price.fee,
            hourly_rate=price.hourly_rate,
        )
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


def subscription_status_check(*, subscription: Subscription, status: str) -> None:
    """Refuse a status change that subscription_status_set refuses (for forms)."""
    if status not in SubscriptionStatus.values:
        raise ValidationError(f"Unknown status {status!r}.", code="invalid_status")
    if status == subscription.status:
        return
    if SubscriptionStatus.DEPLETED in (status, subscription.status):
        raise ValidationError(
            "A one-time package becomes depleted by itself when its hours run out.",
            code="depleted_is_automatic",
        )
    if subscription.status == SubscriptionStatus.TERMINATED:
        raise ValidationError("A terminated subscription cannot be reopened.", code="terminated")


@transaction.atomic
def subscription_status_set(
    *, subscription: Subscription, status: str, actor: Any = None, now: dt.datetime | None = None
) -> Subscription:
    """Suspend, reactivate or terminate. Terminating ends the subscription today (it is still
    billed for this month); ``depleted`` is set only by the bucket running out."""
    subscription_status_check(subscription=subscription, status=status)
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
    already closed. Refuses a month before the billing start, one that has not ended, and
    one that cannot be billed."""
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


def _items_insert(new_items: list[tuple[Mapping[str, Any], ItemDraft]], *, month: dt.date) -> None:
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
    is already billed, insert the rest in bulk, store the terms of every subscription of the
    batch, flag the entries, record the audit (on PostgreSQL the items and audit are COPY
    statements, which Django's query log does not show).
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
    new_items: list[tuple[Mapping[str, Any], ItemDraft]] = []
    billed_subscriptions: dict[int, list[str]] = {}
    for row in rows:
        if row["fee"] is None:
            raise MissingPrice(f"Subscription #{row['pk']} has no price in its currency.")
        statement = statement_compute(
            billing_mode=BillingMode.RECURRING,
            currency=row["client__currency"],
            included_hours=row["included_hours"],
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
    _terms_insert(rows, month=month)
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


# --- Usage alerts ------------------------------------------------------------------------------
# Delivery guarantee and its one window for a duplicate: docs/decisions.md, "Usage alert
# delivery".

# An alert still unsent this long after it was recorded lost its task (broker down, worker
# killed): the next check queues it again.
USAGE_ALERT_RESEND_AFTER = dt.timedelta(minutes=10)
# A delivery claimed by a worker that never reported back (killed mid-send) may be tried again
# after this: far longer than an SMTP exchange may last (EMAIL_TIMEOUT, 30 s by default).
USAGE_ALERT_CLAIM_TIMEOUT = dt.timedelta(minutes=10)
# Back-off after a failed attempt: 5 min, 10, 20, ... at most 6 h (the periodic check, every
# 5 minutes, picks the delivery up once it is due).
USAGE_ALERT_RETRY_FIRST = dt.timedelta(minutes=5)
USAGE_ALERT_RETRY_LONGEST = dt.timedelta(hours=6)
_OPEN = [DeliveryStatus.PENDING, DeliveryStatus.SENDING]


def _usage_alert_queue(alert_id: int) -> None:
    from billing.tasks import usage_alert_send

    # With the broker down the alert stays unsent in the database (the next check queues it
    # again) and the caller's request or task does not fail after its commit.
    transaction.on_commit(lambda: task_enqueue(usage_alert_send, alert_id), robust=True)


def _usage_alert_record(
    *, subscription_id: int, month: dt.date, thresholds: list[int], used: Decimal, included: Decimal
) -> list[UsageAlert]:
    """Record the highest of ``thresholds`` (not recorded yet) with the figures of now, and
    queue its e-mail; lower ones crossed in the same jump are recorded as covered by it, so
    one e-mail says "100 % reached" and the 80 % one is never sent. Empty when another check
    recorded it first (the unique constraint decides)."""
    figures = {"used_hours": used, "included_hours": included}
    top, *lower = sorted(thresholds, reverse=True)
    # Highest first in every check, so two checks wait on each other's rows in one order.
    with transaction.atomic():
        alert, is_new = UsageAlert.objects.get_or_create(
            subscription_id=subscription_id, period=month, threshold=top, defaults=figures
        )
        if not is_new:
            return []
        recorded = [alert]
        for threshold in lower:
            covered, is_new = UsageAlert.objects.get_or_create(
                subscription_id=subscription_id,
                period=month,
                threshold=threshold,
                defaults={**figures, "covered_by": alert},
            )
            if is_new:
                recorded.append(covered)
        _usage_alert_queue(alert.pk)
    return recorded


def usage_alerts_check(
    *, subscription_ids: list[int] | None = None, now: dt.datetime | None = None
) -> list[UsageAlert]:
    """Record an alert for every active recurring subscription that reached 80 % or 100 % of
    its included hours this month, once per subscription, threshold and month, and queue its
    e-mail when the recording commits. With ``subscription_ids`` (time logged on them) only
    those are read; the periodic check (None) reads all and also re-queues alerts with an
    e-mail still to try (a lost task, a recipient whose back-off is over).

    The unique constraint decides who records an alert, so two checks at once send one e-mail.
    Returns the alerts recorded by this call (covered ones included).
    """
    now = now or timezone.now()
    month = period_current(now)
    candidates = usage_alert_candidates(month=month, subscription_ids=subscription_ids)
    existing = set(
        UsageAlert.objects.filter(
            period=month, subscription_id__in=[c.subscription.pk for c in candidates]
        ).values_list("subscription_id", "threshold")
    )
    created = []
    for usage in candidates:
        if usage.statement is None:  # unpriced: nothing to measure against
            continue
        reached = [
            threshold
            for threshold in usage_thresholds_reached(statement=usage.statement)
            if (usage.subscription.pk, threshold) not in existing
        ]
        if reached:
            created += _usage_alert_record(
                subscription_id=usage.subscription.pk,
                month=month,
                thresholds=reached,
                used=usage.statement.used_hours,
                included=usage.statement.included_hours,
            )
    if subscription_ids is None:  # the periodic check, not one subscription's time
        for alert_id in usage_alerts_to_send(
            now=now, recorded_before=now - USAGE_ALERT_RESEND_AFTER
        ):
            _usage_alert_queue(alert_id)
    return created


def usage_alerts_check_queue(*, subscription_id: int) -> None:
    """For interfaces of billing that log time: check this subscription once the time commits
    (the periodic check catches time logged anywhere else)."""
    from billing.tasks import usage_alerts_check as task

    transaction.on_commit(lambda: task_enqueue(task, [subscription_id]), robust=True)


def _usage_alert_deliveries_create(*, alert: UsageAlert, now: dt.datetime) -> None:
    """One delivery per address of the client's active users, the first time the alert is
    sent; the recipients are then fixed. Two first sends at once insert each address once."""
    if alert.deliveries.exists():
        return
    users = (
        get_user_model()
        .objects.filter(client_membership__client_id=alert.subscription.client_id, is_active=True)
        .exclude(email="")
        .select_related("notification_preference")
        .order_by("pk")
    )
    deliveries: dict[str, UsageAlertDelivery] = {}
    for user in users:
        if not user_wants(user, MailKind.USAGE_ALERTS):
            continue
        address = user.email.strip()
        # Two users sharing an address get one e-mail.
        deliveries.setdefault(
            address.lower(),
            UsageAlertDelivery(alert=alert, user=user, address=address, next_attempt_at=now),
        )
    UsageAlertDelivery.objects.bulk_create(deliveries.values(), ignore_conflicts=True)


def _usage_alert_message(
    *, alert: UsageAlert, delivery: UsageAlertDelivery
) -> EmailMultiAlternatives:
    """The e-mail of ``alert`` to one recipient, plain text and HTML, with the figures stored
    when the threshold was crossed and absolute links to the portal."""
    subscription = alert.subscription
    used, included = alert.used_hours, alert.included_hours
    figures = None
    if used is not None and included:
        figures = {
            "used": used,
            "included": included,
            "left": max(included - used, Decimal("0.00")),
            "overtime": max(used - included, Decimal("0.00")),
            "percent": int(used * 100 // included),
        }
    context = {
        "user": delivery.user,
        "alert": alert,
        "subscription": subscription,
        "client": subscription.client,
        "figures": figures,
        "period": period_label(alert.period),
        "subscription_url": settings.SITE_URL
        + reverse("clientarea:subscription", args=[subscription.pk]),
        "portal_url": settings.SITE_URL + reverse("clientarea:home"),
        "unsubscribe_url": settings.SITE_URL
        + reverse(
            "clientarea:unsubscribe",
            args=[unsubscribe_token(user_id=delivery.user_id or 0, kind=MailKind.USAGE_ALERTS)],
        ),
    }
    message = EmailMultiAlternatives(
        subject=render_to_string("billing/usage_alert_subject.txt", context).strip(),
        body=render_to_string("billing/usage_alert_email.txt", context),
        from_email=settings.USAGE_ALERT_FROM_EMAIL,
        to=[delivery.address],
    )
    message.attach_alternative(
        render_to_string("billing/usage_alert_email.html", context), "text/html"
    )
    return message


def _smtp_failure(exc: OSError | ValueError) -> tuple[bool, str]:
    """(whether the server refused the recipient for good, a short description)."""

    def text(reply: bytes | str) -> str:
        return reply.decode(errors="replace") if isinstance(reply, bytes) else str(reply)

    if isinstance(exc, ValueError):  # an address Django will not put in a header
        return True, f"Invalid address: {exc}"
    if isinstance(exc, smtplib.SMTPRecipientsRefused) and exc.recipients:
        code, reply = next(iter(exc.recipients.values()))
        return code >= 500, f"{code} {text(reply)}"
    if isinstance(exc, smtplib.SMTPDataError):  # the message refused after RCPT
        return exc.smtp_code >= 500, f"{exc.smtp_code} {text(exc.smtp_error)}"
    if isinstance(exc, smtplib.SMTPResponseException):  # our sender or login refused
        return False, f"{exc.smtp_code} {text(exc.smtp_error)}"
    return False, f"{type(exc).__name__}: {exc}"


def _usage_alert_delivery_failed(
    *, delivery_id: int, attempts: int, exc: OSError | ValueError, now: dt.datetime
) -> None:
    refused, error = _smtp_failure(exc)
    limit = (
        settings.USAGE_ALERT_REFUSED_MAX_ATTEMPTS if refused else settings.USAGE_ALERT_MAX_ATTEMPTS
    )
    changes: dict[str, Any] = {"last_error": " ".join(error.split())[:500], "updated_at": now}
    if attempts >= limit:
        changes["status"] = DeliveryStatus.FAILED
    else:
        backoff = min(USAGE_ALERT_RETRY_FIRST * 2 ** (attempts - 1), USAGE_ALERT_RETRY_LONGEST)
        changes.update(status=DeliveryStatus.PENDING, next_attempt_at=now + backoff)
    # Only our own claim: a worker that took over a lapsed claim reports its own outcome.
    UsageAlertDelivery.objects.filter(
        pk=delivery_id, status=DeliveryStatus.SENDING, attempts=attempts
    ).update(**changes)
    logger.warning("Usage alert e-mail #%s not sent (attempt %d): %s", delivery_id, attempts, error)


def usage_alert_send(*, alert_id: int, now: dt.datetime | None = None) -> int:
    """E-mail the alert to each user of the client, one message per recipient, each at most
    once: a delivery is claimed (a conditional UPDATE, committed) before its message goes
    out and marked sent right after (its own short transaction), so a task delivered twice,
    two workers or a later check never send it again; one refused address does not hold back
    or repeat the others. A failure is retried with back-off by a later check, a refused
    address given up after USAGE_ALERT_REFUSED_MAX_ATTEMPTS. The alert is done (``sent_at``)
    once no delivery is open. Call it outside a transaction. Returns the e-mails sent."""
    replayed = now  # a caller replaying a moment keeps it for every step

    def moment() -> dt.datetime:
        # Each claim lapses USAGE_ALERT_CLAIM_TIMEOUT after it is made, not after the task
        # began: a long run over many recipients must not hand later claims out as lapsed.
        return replayed or timezone.now()

    now = moment()
    alert = (
        UsageAlert.objects.select_related("subscription__package", "subscription__client")
        .filter(pk=alert_id, sent_at__isnull=True, covered_by__isnull=True)
        .first()
    )
    if alert is None:
        return 0
    _usage_alert_deliveries_create(alert=alert, now=now)
    due = alert.deliveries.filter(status__in=_OPEN, next_attempt_at__lte=now).select_related("user")
    sent = 0
    for delivery in due:
        lapsed = delivery.status == DeliveryStatus.SENDING
        if lapsed and delivery.attempts >= settings.USAGE_ALERT_MAX_ATTEMPTS:
            # Its workers keep dying before they report: stop rather than loop for ever.
            UsageAlertDelivery.objects.filter(
                pk=delivery.pk, status=DeliveryStatus.SENDING, attempts=delivery.attempts
            ).update(
                status=DeliveryStatus.FAILED,
                last_error=f"No outcome reported after {delivery.attempts} attempts.",
                updated_at=now,
            )
            continue
        message = _usage_alert_message(alert=alert, delivery=delivery)
        attempts = delivery.attempts + 1
        now = moment()
        claimed = UsageAlertDelivery.objects.filter(
            pk=delivery.pk,
            status__in=_OPEN,
            next_attempt_at__lte=now,
            attempts=delivery.attempts,  # nobody claimed it since we read it
        ).update(
            status=DeliveryStatus.SENDING,
            attempts=attempts,
            next_attempt_at=now + USAGE_ALERT_CLAIM_TIMEOUT,
            updated_at=now,
        )
        if not claimed:
            continue
        try:
            message.send()
        except (OSError, ValueError) as exc:  # smtplib's errors, refused connections
            _usage_alert_delivery_failed(
                delivery_id=delivery.pk, attempts=attempts, exc=exc, now=moment()
            )
            continue
        # Accepted by the server: a crash before this line is the one duplicate left.
        UsageAlertDelivery.objects.filter(pk=delivery.pk).update(
            status=DeliveryStatus.SENT, sent_at=moment(), last_error="", updated_at=moment()
        )
        sent += 1
    still_open = UsageAlertDelivery.objects.filter(alert=OuterRef("pk"), status__in=_OPEN)
    UsageAlert.objects.filter(pk=alert.pk, sent_at__isnull=True).exclude(Exists(still_open)).update(
        sent_at=moment()
    )
    return sent


# --- Finance: adjustments and item statuses -------------------------------------------------

# Where an item may go from each status. ``invoiced`` and ``void`` are final: a correction of
# an invoiced item is a new adjustment, and a voided item stays as it is (nothing is deleted).
ITEM_STATUS_TRANSITIONS: dict[str, set[str]] = {
    ItemStatus.PENDING: {ItemStatus.EXPORTED, ItemStatus.INVOICED, ItemStatus.VOID},
    ItemStatus.EXPORTED: {ItemStatus.INVOICED, ItemStatus.VOID, ItemStatus.PENDING},
    ItemStatus.INVOICED: set(),
    ItemStatus.VOID: set(),
}


def _status_refusal(old: str, new: str) -> str:
    if not ITEM_STATUS_TRANSITIONS.get(old):
        return f"An {old} item cannot change any more; enter an adjustment instead."
    allowed = ", ".join(sorted(ITEM_STATUS_TRANSITIONS[old]))
    return f"A {old} item can only become {allowed}, not {new}."


@transaction.atomic
def billable_item_status_set(*, item: BillableItem, status: str, actor: Any = None) -> BillableItem:
    """Move one item along ITEM_STATUS_TRANSITIONS (setting the status it has is a no-op)."""
    if status not in ItemStatus.values:
        raise ValidationError(
            f"Unknown status {status!r}; one of {', '.join(ItemStatus.values)}.",
            code="invalid_status",
        )
    item = BillableItem.objects.select_for_update().get(pk=item.pk)
    if item.status == status:
        return item
    if status not in ITEM_STATUS_TRANSITIONS[item.status]:
        raise ValidationError(_status_refusal(item.status, status), code="status_transition")
    audit.item_status_events_record(items=[item], status=status, actor=actor)
    item.status = status
    item.save(update_fields=["status", "updated_at"])
    return item


@transaction.atomic
def billable_items_status_set(
    *, item_ids: list[int], status: str, actor: Any = None
) -> tuple[int, int]:
    """The same rule for many items at once (admin actions): a conditional UPDATE changes
    the items whose status allows it. Returns (changed, refused)."""
    if status not in ItemStatus.values:
        raise ValidationError(f"Unknown status {status!r}.", code="invalid_status")
    allowed_from = [old for old, targets in ITEM_STATUS_TRANSITIONS.items() if status in targets]
    selected = BillableItem.objects.filter(pk__in=item_ids)
    unchanged = selected.filter(status=status).count()
    # Locked, so each audit row's old status is the one the UPDATE replaces.
    movable = list(selected.filter(status__in=allowed_from).select_for_update().order_by("pk"))
    changed = BillableItem.objects.filter(pk__in=[item.pk for item in movable]).update(
        status=status, updated_at=timezone.now()
    )
    audit.item_status_events_record(items=movable, status=status, actor=actor)
    return changed, len(set(item_ids)) - changed - unchanged


@transaction.atomic
def adjustment_create(
    *,
    client: Client,
    month: dt.date,
    amount: Decimal,
    reason: str,
    subscription: Subscription | None = None,
    actor: Any = None,
) -> BillableItem:
    """A correction by finance: a positive or negative amount in the client's currency for one
    month, open or already closed. The reason is the item's description and is required."""
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"description": "Give the reason for the adjustment."})
    if not isinstance(amount, Decimal) or not amount.is_finite():
        raise ValidationError({"amount": "Enter the amount as a decimal, for example -25.00."})
    if abs(amount) >= Decimal("1e12"):
        raise ValidationError({"amount": "The amount is too large."})
    rounded = money_round(amount, client.currency)
    if rounded.amount != amount:
        raise ValidationError(
            {"amount": f"Enter the amount in whole {client.currency} minor units, e.g. 12.50."}
        )
    if rounded.amount == 0:
        raise ValidationError({"amount": "An adjustment of zero changes nothing."})
    if subscription is not None and subscription.client_id != client.pk:
        raise ValidationError({"subscription": "That subscription belongs to another client."})
    invoice_action = (
        subscription.package.invoice_action if subscription else InvoiceAction.NEXT_INVOICE
    )
    item = BillableItem.objects.create(
        client=client,
        subscription=subscription,
        period=period_of(month),
        kind=ItemKind.ADJUSTMENT,
        description=reason[:300],
        unit=ItemUnit.QUANTITY,
        quantity=Decimal("1.00"),
        unit_price=rounded,
        amount=rounded,
        invoice_action=invoice_action,
        created_by=actor if getattr(actor, "is_authenticated", False) else None,
    )
    audit.billing_event_record(
        action=BillingAction.ADJUSTMENT_ADDED,
        actor=actor,
        item_id=item.pk,
        subscription_id=item.subscription_id,
        client_id=client.pk,
        detail={
            "amount": [None, f"{rounded.amount} {client.currency}"],
            "period": period_label(item.period),
            "reason": item.description,
        },
    )
    return item


# --- The catalogue and clients, as the API writes them ---------------------------------------


def _prices_check(*, prices: list[dict[str, Any]]) -> None:
    currencies = [price["currency"] for price in prices]
    for currency in currencies:
        if currency not in settings.CURRENCIES:
            raise ValidationError(
                {"prices": f"{currency} is not one of {', '.join(settings.CURRENCIES)}."}
            )
    if len(set(currencies)) != len(currencies):
        raise ValidationError({"prices": "Give at most one price per currency."})
    for price in prices:
        if price["fee"] < 0 or price["hourly_rate"] < 0:
            raise ValidationError({"prices": "Fees and hourly rates cannot be negative."})


def package_prices_check(*, package: SupportPackage, prices: list[dict[str, Any]]) -> None:
    """Refuse a price list that package_create or package_update refuses (forms call it):
    known currencies, one price each, nothing negative, and a currency still used by a live
    subscription of the package must stay."""
    _prices_check(prices=prices)
    if package.pk is None:
        return
    kept = {price["currency"] for price in prices}
    in_use = sorted(
        set(
            Subscription.objects.filter(package=package)
            .exclude(status=SubscriptionStatus.TERMINATED)
            .exclude(client__currency__in=kept)
            .values_list("client__currency", flat=True)
        )
    )
    if in_use:
        raise ValidationError(
            {
                "prices": f"Subscriptions of this package are billed in {', '.join(in_use)}; "
                "keep a price in that currency."
            }
        )


def _prices_replace(*, package: SupportPackage, prices: list[dict[str, Any]]) -> None:
    """Prices are written whole."""
    package_prices_check(package=package, prices=prices)
    PackagePrice.objects.filter(package=package).delete()
    PackagePrice.objects.bulk_create(
        PackagePrice(
            package=package,
            fee=Money(price["fee"], price["currency"]),
            hourly_rate=Money(price["hourly_rate"], price["currency"]),
        )
        for price in prices
    )


PACKAGE_FIELDS = (
    "name",
    "billing_mode",
    "included_hours",
    "invoice_action",
    "show_work_log",
    "active",
)


def _package_values(package: SupportPackage) -> dict[str, Any]:
    return {key: getattr(package, key) for key in PACKAGE_FIELDS}


@transaction.atomic
def package_create(
    *, fields: dict[str, Any], prices: list[dict[str, Any]], actor: Any = None
) -> SupportPackage:
    package = SupportPackage(**{key: fields[key] for key in PACKAGE_FIELDS if key in fields})
    package.full_clean()
    package.save()
    _prices_replace(package=package, prices=prices)
    audit.billing_event_record(
        action=BillingAction.PACKAGE_CREATED,
        actor=actor,
        package_id=package.pk,
        detail={
            **audit.fields_diff({}, _package_values(package)),
            **audit.prices_diff({}, audit.prices_text(package.prices.all())),
        },
    )
    return package


def package_update_check(*, package: SupportPackage, fields: dict[str, Any]) -> None:
    """Refuse a change of fields that package_update refuses (forms call it). The billing
    mode of a package with subscriptions cannot change: its items were written under the
    old mode."""
    new_mode = fields.get("billing_mode", package.billing_mode)
    if new_mode != package.billing_mode and package.subscriptions.exists():
        raise ValidationError(
            {"billing_mode": "The package has subscriptions; its billing mode cannot change."}
        )


@transaction.atomic
def package_update(
    *,
    package: SupportPackage,
    fields: dict[str, Any],
    prices: list[dict[str, Any]] | None,
    actor: Any = None,
) -> SupportPackage:
    """Change a package; ``prices`` (when given) replaces every price. One audit event lists
    what changed, old and new."""
    package = SupportPackage.objects.select_for_update().get(pk=package.pk)
    package_update_check(package=package, fields=fields)
    old_values = _package_values(package)
    old_prices = audit.prices_text(package.prices.all())
    for key in PACKAGE_FIELDS:
        if key in fields:
            setattr(package, key, fields[key])
    package.full_clean()
    package.save()
    new_prices = old_prices
    if prices is not None:
        _prices_replace(package=package, prices=prices)
        new_prices = audit.prices_text(package.prices.all())
    changes = {
        **audit.fields_diff(old_values, _package_values(package)),
        **audit.prices_diff(old_prices, new_prices),
    }
    if changes:
        audit.billing_event_record(
            action=BillingAction.PACKAGE_CHANGED, actor=actor, package_id=package.pk, detail=changes
        )
    return package


CLIENT_FIELDS = ("name", "email", "currency", "active")


def client_update_check(*, client: Client, fields: dict[str, Any]) -> None:
    """Refuse a change that client_update refuses (forms call it). The currency is fixed
    once the client has subscriptions or billable items: their prices and amounts are in
    that currency."""
    new_currency = fields.get("currency", client.currency)
    if new_currency != client.currency and (
        client.subscriptions.exists() or client.billable_items.exists()
    ):
        raise ValidationError(
            {
                "currency": "The client has subscriptions or billable items in "
                f"{client.currency}; its currency cannot change."
            }
        )


@transaction.atomic
def client_update(*, client: Client, fields: dict[str, Any], actor: Any = None) -> Client:
    """Change a client; one audit event lists what changed, old and new."""
    client = Client.objects.select_for_update().get(pk=client.pk)
    client_update_check(client=client, fields=fields)
    old_values = {key: getattr(client, key) for key in CLIENT_FIELDS}
    for key in CLIENT_FIELDS:
        if key in fields:
            setattr(client, key, fields[key])
    client.full_clean()
    client.save()
    changes = audit.fields_diff(old_values, {key: getattr(client, key) for key in CLIENT_FIELDS})
    if changes:
        audit.billing_event_record(
            action=BillingAction.CLIENT_CHANGED, actor=actor, client_id=client.pk, detail=changes
        )
    return client


@transaction.atomic
def client_user_create(
    *, client: Client, username: str, email: str, password: str, actor: Any = None
) -> Any:
    """A portal login for ``client``: a username nobody has and a password Django's validators
    accept. The password is stored hashed and never shown again."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.password_validation import validate_password

    from customers.models import ClientUser

    user_model = get_user_model()
    username = (username or "").strip()
    if not username:
        raise ValidationError({"username": "Enter a username."})
    if user_model.objects.filter(username__iexact=username).exists():
        raise ValidationError({"username": "A user with that username already exists."})
    user = user_model(username=username, email=(email or "").strip())
    try:
        validate_password(password, user=user)
    except ValidationError as exc:
        raise ValidationError({"password": exc.messages}) from exc
    user.set_password(password)
    user.full_clean(exclude=["password"])
    user.save()
    ClientUser.objects.create(user=user, client=client)
    _portal_login_audit(client=client, user=user, actor=actor)
    return user


def _portal_login_audit(
    *, client: Client, user: Any, actor: Any, action: str = BillingAction.PORTAL_LOGIN_ADDED
) -> None:
    audit.billing_event_record(
        action=action,
        actor=actor,
        client_id=client.pk,
        detail={"username": user.get_username(), "email": user.email},
    )


@transaction.atomic
def client_user_link(*, client: Client, user: Any, actor: Any = None) -> Any:
    """Give an existing user a portal login for ``client`` (the client's admin page)."""
    from customers.models import ClientUser

    membership, created = ClientUser.objects.get_or_create(user=user, defaults={"client": client})
    if membership.client_id != client.pk:
        raise ValidationError({"user": "That user already acts for another client."})
    if created:
        _portal_login_audit(client=client, user=user, actor=actor)
    return user


@transaction.atomic
def client_user_unlink(*, client: Client, user: Any, actor: Any = None) -> None:
    """Take ``user``'s portal login for ``client`` away (the user account stays), recorded in
    the client's billing audit like its addition."""
    from customers.models import ClientUser

    removed, _ = ClientUser.objects.filter(user=user, client=client).delete()
    if removed:
        _portal_login_audit(
            client=client, user=user, actor=actor, action=BillingAction.PORTAL_LOGIN_REMOVED
        )


@transaction.atomic
def client_user_replace(
    *, replaced_id: int | None, client: Client, user: Any, actor: Any = None
) -> Any:
    """The admin's edit of a portal login row: remove the login ``replaced_id`` (None: there is
    none) and give ``user`` a portal login for ``client``, both or neither, each recorded as
    client_user_unlink / client_user_link record it. Returns the user."""
    from customers.models import ClientUser

    if replaced_id is not None:
        replaced = ClientUser.objects.select_related("user", "client").get(pk=replaced_id)
        if (replaced.user_id, replaced.client_id) == (user.pk, client.pk):
            return user  # unchanged
        client_user_unlink(client=replaced.client, user=replaced.user, actor=actor)
    return client_user_link(client=client, user=user, actor=actor)


@transaction.atomic
def client_create(*, fields: dict[str, Any], actor: Any = None) -> Client:
    client = Client(**{key: fields[key] for key in CLIENT_FIELDS if key in fields})
    client.full_clean()
    client.save()
    audit.billing_event_record(
        action=BillingAction.CLIENT_CREATED,
        actor=actor,
        client_id=client.pk,
        detail=audit.fields_diff({}, {key: getattr(client, key) for key in CLIENT_FIELDS}),
    )
    return client
