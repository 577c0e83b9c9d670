"""Statements of subscriptions: the terms and prices they are computed with, the hours used,
and the query pieces every read of billing shares (subscriptions running in a month, the
hours-sum and price subqueries)."""

import datetime as dt
import functools
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db.models import (
    Case,
    DecimalField,
    F,
    FilteredRelation,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Ceil, Coalesce, TruncMonth
from djmoney.money import Money

from billing.calculations import (
    TERMS_BILLED,
    BillingPolicy,
    Statement,
    entries_billed,
    statement_compute,
    ticket_month_billed,
)
from billing.models import (
    BilledTerms,
    UsageThreshold,
)
from billing.selectors.blocks import BlockLine, block_hours_of, block_lines_of
from packages.models import (
    BillingIncrement,
    BillingMode,
    OverageApproval,
    OveragePolicy,
    PackagePrice,
    Subscription,
)
from packages.selectors import package_price_for
from supportbilling.periods import (
    period_last_day,
)
from tickets.models import (
    TimeEntry,
)

HOURS = DecimalField(max_digits=12, decimal_places=2)
ZERO_HOURS = Decimal("0.00")
CHARGEABLE = Q(no_charge=False)


@functools.lru_cache(maxsize=1024)
def policy_of_columns(increment: Any, rounding: Any, minimum: Any) -> BillingPolicy:
    """The billing policy of the three stored fields (``billing_increment``,
    ``billing_rounding``, ``billing_minimum``): the one place they become a ``BillingPolicy``.
    Cached: the set-based rollup asks once per distinct inputs of every batch."""
    return BillingPolicy(increment=str(increment), rounding=str(rounding), minimum=Decimal(minimum))


def policy_of(source: Any) -> BillingPolicy:
    """The billing policy of a package, of stored terms, or of anything with the three
    fields."""
    return policy_of_columns(
        source.billing_increment, source.billing_rounding, source.billing_minimum
    )


def _rounded_key(increment: str) -> str:
    return "rounded_" + increment.replace(".", "")


@dataclass(frozen=True)
class HoursUsage:
    """Hours of one subscription in one month (a bucket: all time): ``logged`` chargeable
    hours as logged, ``billed`` those hours under the billing policy, ``no_charge`` hours
    worked at no charge."""

    logged: Decimal = ZERO_HOURS
    billed: Decimal = ZERO_HOURS
    no_charge: Decimal = ZERO_HOURS


def stored_usage(terms: BilledTerms | None) -> HoursUsage | None:
    """The month's hours as the close stored them with its terms, or None (no terms, terms
    stored before the hours were kept, or a bucket's)."""
    if terms is None or terms.billed_hours is None:
        return None
    return HoursUsage(
        logged=terms.logged_hours or ZERO_HOURS,
        billed=terms.billed_hours,
        no_charge=terms.no_charge_hours or ZERO_HOURS,
    )


def _ticket_month_sums() -> dict[str, Coalesce]:
    """The sums of ``ticket_month_hours`` per group: the chargeable hours (``logged``), the
    hours at no charge, and for the 0.50 and 1.00 increments the chargeable entries each
    rounded up to it (``rounded_050``, ``rounded_100``; to 0.25 they are ``logged``)."""
    rounded = {
        _rounded_key(increment): Coalesce(
            Sum(
                Ceil(F("hours") / Value(Decimal(increment))) * Value(Decimal(increment)),
                filter=CHARGEABLE,
                output_field=HOURS,
            ),
            Value(ZERO_HOURS),
            output_field=HOURS,
        )
        for increment in BillingIncrement.values
        # Entries are quarter hours (a check constraint): rounded to 0.25 they are the sum.
        if increment != BillingIncrement.QUARTER
    }
    return {
        "logged": Coalesce(Sum("hours", filter=CHARGEABLE), Value(ZERO_HOURS), output_field=HOURS),
        "no_charge_hours": Coalesce(
            Sum("hours", filter=Q(no_charge=True)), Value(ZERO_HOURS), output_field=HOURS
        ),
        **rounded,
    }


def ticket_month_hours_queryset(entries: QuerySet[TimeEntry]) -> QuerySet[Any, Any]:
    """``ticket_month_hours`` of ``entries`` of one month, as a query: one row per
    subscription and ticket (no date truncated per entry). The rollup's set-based batch stores
    it in a temporary table (``billing.services.rollup``)."""
    return (
        entries.order_by().values("subscription_id", "ticket_id").annotate(**_ticket_month_sums())
    )


def ticket_month_hours(
    entries: QuerySet[TimeEntry], *, month: dt.date | None = None
) -> list[dict[str, Any]]:
    """Per subscription, month and ticket of ``entries``: the chargeable hours (``logged``),
    the hours at no charge, and for the 0.50 and 1.00 increments the chargeable entries each
    rounded up to it (``rounded_050``, ``rounded_100``; to 0.25 they are ``logged``): one
    GROUP BY, whatever the policy; ``hours_usage`` applies the policy in Python
    (``ticket_month_billed``). With ``month`` (``entries`` are of that month only) the rows
    are grouped without truncating dates."""
    if month is not None:  # one month: no date truncated per entry
        return [{**row, "month": month} for row in ticket_month_hours_queryset(entries)]
    rows = (
        entries.annotate(month=TruncMonth("work_date"))
        .order_by()
        .values("subscription_id", "month", "ticket_id")
        .annotate(**_ticket_month_sums())
    )
    return [dict(row) for row in rows]


def ticket_billed(row: Mapping[str, Any], policy: BillingPolicy) -> Decimal:
    """The billed hours of one ``ticket_month_hours`` row under ``policy``
    (``ticket_month_billed`` given the row's sum rounded to the policy's increment)."""
    return ticket_month_billed(
        logged=row["logged"],
        entries_rounded=row.get(_rounded_key(policy.increment), row["logged"]),
        policy=policy,
    )


def hours_usage(rows: list[dict[str, Any]], policy: BillingPolicy | None) -> HoursUsage:
    """The usage of the ``ticket_month_hours`` rows of one subscription (and month) under
    ``policy``; None: no policy (a bucket is drawn down by the hours logged)."""
    logged = no_charge = billed = ZERO_HOURS
    for row in rows:
        logged += row["logged"]
        no_charge += row["no_charge_hours"]
        billed += row["logged"] if policy is None else ticket_billed(row, policy)
    return HoursUsage(logged=logged, billed=billed, no_charge=no_charge)


def hours_usage_by_subscription(rows: list[dict[str, Any]]) -> dict[int, list[dict[str, Any]]]:
    """``ticket_month_hours`` rows grouped by subscription."""
    grouped: dict[int, list[dict[str, Any]]] = {}
    for row in rows:
        grouped.setdefault(row["subscription_id"], []).append(row)
    return grouped


def extra_billed(extra_hours: Decimal, policy: BillingPolicy | None) -> Decimal:
    """The portal calculator's "what if": ``extra_hours`` more, as one entry on a new ticket."""
    if extra_hours <= 0 or policy is None:
        return extra_hours
    return entries_billed([extra_hours], policy)


def billed_terms_of(month: dt.date, prefix: str = "") -> Q:
    """The stored terms that bill ``month``: the month's own (a recurring subscription, once
    the month is closed) or the bucket's (a one-time subscription, stored when bought)."""
    return Q(**{f"{prefix}month": month}) | Q(**{f"{prefix}billing_mode": BillingMode.ONE_TIME})


def billed_terms_get(*, subscription_id: int, month: dt.date) -> BilledTerms | None:
    """The terms ``month`` of the subscription was billed with, or None (the month is open,
    or was closed before terms were stored): then the current prices apply."""
    return (
        BilledTerms.objects.filter(subscription_id=subscription_id)
        .filter(billed_terms_of(month))
        .first()
    )


def statement_for_subscription(
    *, subscription: Subscription, month: dt.date, extra_hours: Decimal = Decimal("0")
) -> Statement:
    """The statement of one subscription for ``month``, with the terms it was billed with
    (closed month, bucket) or else the current prices; ``extra_hours`` answers "what if"
    (the portal's cost calculator) with the very same arithmetic."""
    is_recurring = subscription.package.billing_mode == BillingMode.RECURRING
    entries = TimeEntry.objects.filter(subscription_id=subscription.pk)
    if is_recurring:
        entries = entries.filter(work_date__range=month_range(month))
    terms = billed_terms_get(subscription_id=subscription.pk, month=month)
    policy = policy_of(terms if terms is not None else subscription.package)
    usage = hours_usage(ticket_month_hours(entries, month=month), policy if is_recurring else None)
    extra = extra_billed(extra_hours, policy if is_recurring else None)
    block_hours = ZERO_HOURS
    if is_recurring:
        lines = subscription_block_lines(
            subscription=subscription,
            month=month,
            used=usage.billed + extra,
            closed=terms is not None,
        )
        block_hours = block_hours_of(lines, closed=terms is not None)
    if terms is not None:
        return statement_of_terms(
            terms,
            used_hours=usage.billed + extra,
            logged_hours=usage.logged + extra_hours,
            no_charge_hours=usage.no_charge,
            block_hours=block_hours,
        )
    currency = subscription.client.currency
    price = package_price_for(package_id=subscription.package_id, currency=currency)
    return statement_compute(
        billing_mode=subscription.package.billing_mode,
        currency=currency,
        included_hours=subscription.hours_included,
        used_hours=usage.billed + extra,
        fee=price.fee.amount,
        hourly_rate=price.hourly_rate.amount,
        overage_policy=subscription.overage_policy,
        approved_hours=approved_hours_get(subscription=subscription, month=month),
        logged_hours=usage.logged + extra_hours,
        no_charge_hours=usage.no_charge,
        block_hours=block_hours,
    )


def subscription_block_lines(
    *, subscription: Subscription, month: dt.date, used: Decimal, closed: bool
) -> list[BlockLine]:
    """The top-up blocks of one recurring subscription in ``month`` (``billing.selectors.
    blocks``); ``closed``: the month was billed, the draws are those it stored."""
    return block_lines_of(
        month=month,
        included={subscription.pk: subscription.hours_included},
        used={subscription.pk: used},
        closed={subscription.pk} if closed else set(),
    ).get(subscription.pk, [])


def approved_hours_get(*, subscription: Subscription, month: dt.date) -> Decimal:
    """The extra hours approved for ``month`` under the ``approve`` policy (zero under the
    others: nothing to read)."""
    if subscription.overage_policy != OveragePolicy.APPROVE:
        return ZERO_HOURS
    total = OverageApproval.objects.filter(subscription_id=subscription.pk, month=month).aggregate(
        total=Sum("hours")
    )["total"]
    return total or ZERO_HOURS


def approved_hours_subquery(month: dt.date) -> Case:
    """The extra hours approved for ``month`` of the outer subscription under the ``approve``
    policy, zero otherwise: PostgreSQL evaluates a CASE branch only when it is taken, so the
    rollup and the cards sum nothing for the other subscriptions."""
    total = (
        OverageApproval.objects.filter(subscription=OuterRef("pk"), month=month)
        .order_by()
        .values("subscription")
        .annotate(total=Sum("hours"))
        .values("total")
    )
    return Case(
        When(
            overage_policy=OveragePolicy.APPROVE,
            then=Coalesce(
                Subquery(total, output_field=HOURS), Value(ZERO_HOURS), output_field=HOURS
            ),
        ),
        default=Value(ZERO_HOURS),
        output_field=HOURS,
    )


def statement_of_terms(
    terms: BilledTerms,
    *,
    used_hours: Decimal,
    logged_hours: Decimal | None = None,
    no_charge_hours: Decimal = ZERO_HOURS,
    block_hours: Decimal = ZERO_HOURS,
) -> Statement:
    """The statement of ``used_hours`` (billed) under terms stored when the month (or bucket)
    was billed, with the overage policy and the approved hours stored with them: a policy
    changed after the close never changes the month's statement."""
    return statement_compute(
        billing_mode=terms.billing_mode,
        currency=terms.currency,
        included_hours=terms.included_hours,
        used_hours=used_hours,
        fee=terms.fee.amount,
        hourly_rate=terms.hourly_rate.amount,
        terms=TERMS_BILLED,
        overage_policy=terms.overage_policy,
        approved_hours=terms.approved_hours,
        logged_hours=logged_hours,
        no_charge_hours=no_charge_hours,
        block_hours=block_hours,
    )


def month_range(month: dt.date) -> tuple[dt.date, dt.date]:
    return month, period_last_day(month)


def subscription_runs_in(first: dt.date, last: dt.date) -> Q:
    """The subscription's dates overlap [first, last]."""
    return Q(start_date__lte=last) & (Q(end_date__isnull=True) | Q(end_date__gte=first))


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
    blocks: tuple[BlockLine, ...] = ()  # its top-up blocks in the month (recurring)

    @property
    def thresholds_reached(self) -> list[int]:
        return usage_thresholds_reached(statement=self.statement) if self.statement else []

    @property
    def exhausted(self) -> bool:
        return UsageThreshold.EXHAUSTED in self.thresholds_reached


def hours_used_subquery(month: dt.date | None = None) -> Coalesce:
    """The chargeable hours (not at no charge) the subscription of the outer row logged in
    ``month`` (None: ever), zero when none: one correlated sum per subscription over the
    (subscription, work_date) index, which is faster than a join and GROUP BY over every
    entry (docs/performance.md). As logged: the billing policy is applied by ``hours_usage``."""
    entries = TimeEntry.objects.filter(subscription=OuterRef("pk"), no_charge=False)
    if month is not None:
        entries = entries.filter(work_date__range=month_range(month))
    total = entries.order_by().values("subscription").annotate(total=Sum("hours")).values("total")
    return Coalesce(Subquery(total, output_field=HOURS), Value(ZERO_HOURS), output_field=HOURS)


def current_price() -> QuerySet[PackagePrice]:
    """The price of the outer subscription's package in its client's currency, for subqueries
    (``Exists``, ``with_current_price``)."""
    return PackagePrice.objects.filter(
        package=OuterRef("package_id"), currency=OuterRef("client__currency")
    )


def with_current_price(subscriptions: QuerySet[Subscription]) -> QuerySet[Subscription]:
    """Annotate ``price_fee`` and ``price_hourly_rate`` (None without a price), which
    ``statement_of_row`` reads."""
    price = current_price().order_by()  # one price per package and currency: no sort
    return subscriptions.annotate(
        price_fee=Subquery(price.values("fee")[:1]),
        price_hourly_rate=Subquery(price.values("hourly_rate")[:1]),
    )


def priced_subscriptions(*, client_id: int) -> QuerySet[Subscription]:
    return with_current_price(
        Subscription.objects.filter(client_id=client_id).select_related("package", "client")
    )


def with_stored_terms(subscriptions: QuerySet[Subscription], *, month: dt.date) -> QuerySet:
    """Annotate the terms stored for ``month`` (see ``billed_terms_of``): one join, at most
    one row (unique per month; a bucket has one)."""
    return subscriptions.annotate(
        stored=FilteredRelation("billed_terms", condition=billed_terms_of(month, "billed_terms__")),
        stored_billing_mode=F("stored__billing_mode"),
        stored_included_hours=F("stored__included_hours"),
        stored_fee=F("stored__fee"),
        stored_hourly_rate=F("stored__hourly_rate"),
        stored_currency=F("stored__currency"),
        stored_billing_increment=F("stored__billing_increment"),
        stored_billing_rounding=F("stored__billing_rounding"),
        stored_billing_minimum=F("stored__billing_minimum"),
        stored_overage_policy=F("stored__overage_policy"),
        stored_approved_hours=F("stored__approved_hours"),
    )


def stored_terms_of_row(subscription: Any) -> BilledTerms | None:
    if subscription.stored_fee is None:
        return None
    return BilledTerms(
        subscription=subscription,
        billing_mode=subscription.stored_billing_mode,
        included_hours=subscription.stored_included_hours,
        fee=Money(subscription.stored_fee, subscription.stored_currency),
        hourly_rate=Money(subscription.stored_hourly_rate, subscription.stored_currency),
        billing_increment=subscription.stored_billing_increment,
        billing_rounding=subscription.stored_billing_rounding,
        billing_minimum=subscription.stored_billing_minimum,
        overage_policy=subscription.stored_overage_policy,
        approved_hours=subscription.stored_approved_hours,
    )


def statement_of_row(
    subscription: Any,
    *,
    used_hours: Decimal,
    extra_hours: Decimal = ZERO_HOURS,
    terms: BilledTerms | None = None,
    usage_rows: list[dict[str, Any]] | None = None,
    approved_hours: Decimal | None = None,
    block_hours: Decimal = ZERO_HOURS,
) -> Statement | None:
    """The statement with the stored ``terms`` when given (their overage policy and approved
    hours too), else with the current price (annotated by ``with_current_price``); None when
    neither exists. The extra hours approved of an open month are ``approved_hours``, else the
    row's ``approved_in_month`` annotation (``approved_hours_subquery``), else none.

    ``usage_rows`` (``ticket_month_hours`` rows of the subscription and month) apply the
    billing policy of the terms (else the package's) to a recurring month; without them
    ``used_hours`` are taken as billed (a bucket, or a caller without the rows)."""
    logged = used_hours
    no_charge = ZERO_HOURS
    extra = extra_hours
    if usage_rows is not None and subscription.package.billing_mode == BillingMode.RECURRING:
        policy = policy_of(terms if terms is not None else subscription.package)
        usage = hours_usage(usage_rows, policy)
        used_hours, logged, no_charge = usage.billed, usage.logged, usage.no_charge
        extra = extra_billed(extra_hours, policy)
    if terms is not None:
        return statement_of_terms(
            terms,
            used_hours=used_hours + extra,
            logged_hours=logged + extra_hours,
            no_charge_hours=no_charge,
            block_hours=block_hours,
        )
    if subscription.price_fee is None:
        return None
    if approved_hours is None:
        approved_hours = getattr(subscription, "approved_in_month", ZERO_HOURS)
    return statement_compute(
        billing_mode=subscription.package.billing_mode,
        currency=subscription.client.currency,
        included_hours=subscription.hours_included,
        used_hours=used_hours + extra,
        fee=subscription.price_fee,
        hourly_rate=subscription.price_hourly_rate,
        overage_policy=subscription.overage_policy,
        approved_hours=approved_hours,
        logged_hours=logged + extra_hours,
        no_charge_hours=no_charge,
        block_hours=block_hours,
    )
