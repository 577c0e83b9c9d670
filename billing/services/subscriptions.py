"""Writes of subscriptions: create (with a one-time bucket's terms and item), status changes,
and the checks forms call to show the same refusals."""

import datetime as dt
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction

from billing.calculations import (
    one_time_item_draft,
)
from billing.models import (
    BilledTerms,
)
from billing.selectors.periods import subscription_start_earliest, subscription_start_latest
from billing.selectors.statements import MissingPrice, package_price_for
from billing.services.items import billable_item_from_draft
from customers.models import Client
from packages.models import (
    BillingMode,
    PackagePrice,
    Subscription,
    SubscriptionStatus,
    SupportPackage,
)
from supportbilling.periods import (
    local_today,
    period_label,
    period_last_day,
    period_next,
    period_of,
)
from tickets.models import AuditAction, PeriodStatus, Ticket
from tickets.selectors import period_closed_from
from tickets.services import (
    audit_record,
    period_lock,
    periods_lock_after,
    ticket_subscription_set,
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
        billable_item_from_draft(
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
