"""Writes of the catalogue (packages and their prices), subscriptions and their life cycle,
and the month lock every write into a month takes (BillingPeriod rows).

Billing and the helpdesk learn what happened here through packages.signals, sent inside the
transaction of the change so that what they write (the audit, a bucket's item) commits or rolls
back with it."""

import datetime as dt
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from djmoney.money import Money

from customers.models import Client
from packages import signals
from packages.models import (
    BillingMode,
    BillingPeriod,
    PackagePrice,
    PeriodStatus,
    Subscription,
    SubscriptionStatus,
    SupportPackage,
)
from packages.selectors import (
    MissingPrice,
    billing_start,
    package_price_for,
    period_closed_from,
    subscription_start_earliest,
    subscription_start_latest,
)
from supportbilling.changes import CENT, fields_diff
from supportbilling.money import in_whole_minor_units, minor_unit_places
from supportbilling.periods import (
    local_today,
    period_label,
    period_last_day,
    period_next,
    period_of,
)

# The ORM has no FOR SHARE; the table name is fixed by the model (db_table).
_PERIOD_STATUS = "SELECT status FROM packages_billingperiod WHERE month = %s"


_PERIOD_STATUS_SHARED = "SELECT status FROM packages_billingperiod WHERE month = %s FOR SHARE"


def period_lock(*, month: dt.date) -> str:
    """The status of ``month``, holding a shared lock on its row until commit; the row is
    created (open) when missing, race-safe.

    The rollup flips the row to ``closing`` with an UPDATE, which waits for these shared
    locks: nothing can slip into a month after its totals were read.
    """
    BillingPeriod.objects.bulk_create([BillingPeriod(month=month)], ignore_conflicts=True)
    sql = _PERIOD_STATUS_SHARED if connection.vendor == "postgresql" else _PERIOD_STATUS
    with connection.cursor() as cursor:
        cursor.execute(sql, [month])
        (status,) = cursor.fetchone()
    return str(status)


_LATER_PERIODS = "SELECT month, status FROM packages_billingperiod WHERE month > %s"


def periods_lock_after(*, month: dt.date) -> dt.date | None:
    """Hold a shared lock on the rows of every month after ``month`` until commit and return
    the last of them that is closed or being closed (None when all are open).

    A sale that bills from ``month`` on must not start under a later month that a rollup has
    closed (it would never be billed there); the locks make such a rollup wait for the sale.
    """
    sql = _LATER_PERIODS + (" FOR SHARE" if connection.vendor == "postgresql" else "")
    with connection.cursor() as cursor:
        cursor.execute(sql, [month])
        not_open = [row[0] for row in cursor.fetchall() if row[1] != PeriodStatus.OPEN]
    return max(not_open, default=None)


def period_lock_open(*, month: dt.date) -> None:
    """Refuse unless ``month`` is open, and hold a shared lock on its row until commit
    (``period_lock``). A month before the billing start is refused too: it is never closed,
    and writing its row would move the billing start back."""
    start = billing_start()
    if start is not None and month < start:
        raise ValidationError(
            f"{period_label(month)} is before billing began ({period_label(start)}): its time "
            "is never billed and cannot be logged, changed or deleted.",
            code="before_billing_start",
        )
    if period_lock(month=month) != PeriodStatus.OPEN:
        raise ValidationError(
            f"{period_label(month)} is closed: its time can no longer be logged, changed or "
            "deleted. Finance can enter an adjustment instead.",
            code="period_closed",
        )


# --- The catalogue: packages and their prices ----------------------------------------------


def _price_text(*, fee: Decimal, hourly_rate: Decimal, currency: str) -> str:
    return f"{fee.quantize(CENT)} {currency} + {hourly_rate.quantize(CENT)} {currency}/h"


def _prices_text(prices: Iterable[PackagePrice]) -> dict[str, str]:
    """currency -> "500.00 EUR + 60.00 EUR/h", the form prices take in the audit."""
    return {
        price.currency: _price_text(
            fee=price.fee.amount, hourly_rate=price.hourly_rate.amount, currency=price.currency
        )
        for price in prices
    }


def _prices_diff(old: dict[str, str], new: dict[str, str]) -> dict[str, list[str | None]]:
    """``{"price EUR": [old, new]}`` for every currency added, changed or removed."""
    return {
        f"price {currency}": [old.get(currency), new.get(currency)]
        for currency in sorted(set(old) | set(new))
        if old.get(currency) != new.get(currency)
    }


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
        for value in (price["fee"], price["hourly_rate"]):
            _price_minor_units_check(value, price["currency"])


def _price_minor_units_check(value: Decimal, currency: str) -> None:
    """A price is in whole minor units of its currency (whole yen): the items, the portal and
    the statements would round a fraction each their own way (docs/decisions.md)."""
    if not in_whole_minor_units(value, currency):
        places = minor_unit_places(currency)
        rule = (
            f"{currency} prices are whole numbers"
            if places == 0
            else f"{currency} prices have at most {places} decimal places"
        )
        raise ValidationError({"prices": f"{rule}: {value} has more."})


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


# The fields of a package that are written (prices apart), in the order the admin's list and
# the API show them.
PACKAGE_FIELDS = (
    "name",
    "billing_mode",
    "included_hours",
    "invoice_action",
    "show_work_log",
    "active",
    "billing_increment",
    "billing_rounding",
    "billing_minimum",
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
    changes = {
        **fields_diff({}, _package_values(package)),
        **_prices_diff({}, _prices_text(package.prices.all())),
    }
    signals.package_changed.send(
        sender=SupportPackage, package=package, actor=actor, created=True, changes=changes
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
    old_prices = _prices_text(package.prices.all())
    for key in PACKAGE_FIELDS:
        if key in fields:
            setattr(package, key, fields[key])
    package.full_clean()
    package.save()
    new_prices = old_prices
    if prices is not None:
        _prices_replace(package=package, prices=prices)
        new_prices = _prices_text(package.prices.all())
    changes = {
        **fields_diff(old_values, _package_values(package)),
        **_prices_diff(old_prices, new_prices),
    }
    if changes:
        signals.package_changed.send(
            sender=SupportPackage, package=package, actor=actor, created=False, changes=changes
        )
    return package


# --- Subscriptions ------------------------------------------------------------------------------


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
    topup_of: Subscription | None = None,
    expires_on: dt.date | None = None,
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
    topup_check(
        client=client,
        package=package,
        start_date=start_date,
        topup_of=topup_of,
        expires_on=expires_on,
    )
    return price


def topup_check(
    *,
    client: Client,
    package: SupportPackage,
    start_date: dt.date,
    topup_of: Subscription | None,
    expires_on: dt.date | None,
) -> None:
    """A top-up block (docs/billing-rules.md, "Top-up blocks"): a one-time package with hours
    sold as extra hours of a recurring subscription of the same client that is not
    terminated; its expiry, when given, not before its start."""
    if topup_of is None:
        if expires_on is not None:
            raise ValidationError(
                "Only a top-up block expires: choose the monthly subscription it tops up.",
                code="expiry_without_topup",
            )
        return
    if topup_of.client_id != client.pk:
        raise ValidationError(
            f"Subscription #{topup_of.pk} belongs to another client: a block tops up a "
            "subscription of the same client.",
            code="topup_foreign",
        )
    if topup_of.package.billing_mode != BillingMode.RECURRING or topup_of.topup_of_id:
        raise ValidationError(
            f"Subscription #{topup_of.pk} is not a monthly subscription: only a monthly "
            "(recurring) subscription can be topped up.",
            code="topup_not_recurring",
        )
    if topup_of.status == SubscriptionStatus.TERMINATED:
        raise ValidationError(
            f"Subscription #{topup_of.pk} is terminated: it cannot be topped up.",
            code="topup_terminated",
        )
    if package.billing_mode != BillingMode.ONE_TIME:
        raise ValidationError(
            f"The package {package} is monthly: a top-up block is a one-time package of hours.",
            code="topup_package_recurring",
        )
    if expires_on is not None and expires_on < start_date:
        raise ValidationError(
            f"The block cannot expire ({expires_on:%Y-%m-%d}) before it starts "
            f"({start_date:%Y-%m-%d}).",
            code="topup_expiry_before_start",
        )


@transaction.atomic
def subscription_create(
    *,
    client: Client,
    package: SupportPackage,
    start_date: dt.date | None = None,
    actor: Any = None,
    ticket_id: int | None = None,
    now: dt.datetime | None = None,
    topup_of: Subscription | None = None,
    expires_on: dt.date | None = None,
) -> Subscription:
    """Subscribe a client to a package. ``topup_of``: sell a one-time package as a prepaid
    top-up block of that monthly subscription, ``expires_on`` its optional expiry (its fee
    is the one-time item, as for any bucket). A one-time package's size is fixed now; billing's
    receiver of ``subscription_created`` stores its terms and writes its ``one_time`` item in
    this transaction. ``ticket_id``: the ticket the sale was made from, for its audit trail
    (tickets.services.ticket_service_add also links the ticket)."""
    start_date = start_date or local_today(now)
    if topup_of is not None:  # its row as it is now: no other sale changes it meanwhile
        topup_of = (
            Subscription.objects.select_for_update(of=("self",))
            .select_related("package")
            .get(pk=topup_of.pk)
        )
    price = subscription_create_check(
        client=client,
        package=package,
        start_date=start_date,
        now=now,
        topup_of=topup_of,
        expires_on=expires_on,
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
        topup_of=topup_of,
        expires_on=expires_on,
    )
    signals.subscription_created.send(
        sender=Subscription,
        subscription=subscription,
        price=price,
        actor=actor,
        ticket_id=ticket_id,
    )
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
    signals.subscription_status_changed.send(
        sender=Subscription,
        subscription=subscription,
        old_status=old_status,
        new_status=status,
        actor=actor,
    )
    return subscription
