"""Reads of usage alerts: the subscriptions that reached a threshold, the e-mails still due."""

import datetime as dt
from collections.abc import Collection
from decimal import Decimal

from django.db.models import (
    Exists,
    F,
    OuterRef,
)

from billing.models import (
    DeliveryStatus,
    UsageAlert,
    UsageAlertDelivery,
    UsageThreshold,
)
from billing.selectors.statements import (
    SubscriptionUsage,
    hours_used_subquery,
    month_range,
    statement_of_row,
    subscription_runs_in,
    with_current_price,
)
from packages.models import BillingMode, Subscription, SubscriptionStatus


def usage_alert_candidates(
    *, month: dt.date, subscription_ids: Collection[int] | None = None
) -> list[SubscriptionUsage]:
    """Active recurring subscriptions (all, or those of ``subscription_ids``) with included
    hours whose usage in ``month`` reached the first alert threshold, with their statements;
    one query."""
    lowest = Decimal(min(UsageThreshold.values)) / 100
    subscriptions = (
        with_current_price(
            Subscription.objects.filter(
                subscription_runs_in(*month_range(month)),
                status=SubscriptionStatus.ACTIVE,
                package__billing_mode=BillingMode.RECURRING,
                package__included_hours__gt=0,
            ).select_related("package", "client")
        )
        .annotate(used_in_month=hours_used_subquery(month))
        .filter(used_in_month__gte=F("package__included_hours") * lowest)
        .order_by("pk")
    )
    if subscription_ids is not None:
        subscriptions = subscriptions.filter(pk__in=subscription_ids)
    usages = []
    for subscription in subscriptions:
        statement = statement_of_row(subscription, used_hours=subscription.used_in_month)
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
