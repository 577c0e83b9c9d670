"""Usage alerts: recording a threshold crossed and e-mailing each recipient once. Delivery
guarantee and its one window for a duplicate: docs/decisions.md, "Usage alert delivery"."""

import datetime as dt
import logging
from decimal import Decimal

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.db.models import Exists, OuterRef
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from billing.models import (
    DeliveryStatus,
    UsageAlert,
    UsageAlertDelivery,
)
from billing.selectors.alerts import usage_alert_candidates, usage_alerts_to_send
from billing.selectors.statements import usage_thresholds_reached
from customers.models import MailKind
from customers.selectors import unsubscribe_token, user_wants
from supportbilling.mail import deliveries_send
from supportbilling.periods import (
    period_current,
    period_label,
)
from supportbilling.queue import task_enqueue

logger = logging.getLogger(__name__)

# An alert still unsent this long after it was recorded lost its task (broker down, worker
# killed): the next check queues it again.
USAGE_ALERT_RESEND_AFTER = dt.timedelta(minutes=10)
_OPEN = [DeliveryStatus.PENDING, DeliveryStatus.SENDING]


def _usage_alert_queue(alert_id: int) -> None:
    # With the broker down the alert stays unsent in the database (the next check queues it
    # again) and the caller's request or task does not fail after its commit.
    transaction.on_commit(lambda: task_enqueue("billing.usage_alert_send", alert_id), robust=True)


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
    transaction.on_commit(
        lambda: task_enqueue("billing.usage_alerts_check", [subscription_id]), robust=True
    )


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


def usage_alert_send(*, alert_id: int, now: dt.datetime | None = None) -> int:
    """E-mail the alert to each user of the client, one message per recipient, each at most
    once: a delivery is claimed (a conditional UPDATE, committed) before its message goes
    out and marked sent right after (its own short transaction), so a task delivered twice,
    two workers or a later check never send it again; one refused address does not hold back
    or repeat the others (supportbilling.mail.deliveries_send). A failure is retried with
    back-off by a later check, a refused address given up after
    USAGE_ALERT_REFUSED_MAX_ATTEMPTS. The alert is done (``sent_at``) once no delivery is
    open. Call it outside a transaction. Returns the e-mails sent."""
    alert = (
        UsageAlert.objects.select_related("subscription__package", "subscription__client")
        .filter(pk=alert_id, sent_at__isnull=True, covered_by__isnull=True)
        .first()
    )
    if alert is None:
        return 0
    _usage_alert_deliveries_create(alert=alert, now=now or timezone.now())
    sent = deliveries_send(
        deliveries=alert.deliveries.select_related("user"),
        message=lambda delivery: _usage_alert_message(alert=alert, delivery=delivery),
        max_attempts=settings.USAGE_ALERT_MAX_ATTEMPTS,
        refused_max_attempts=settings.USAGE_ALERT_REFUSED_MAX_ATTEMPTS,
        label="Usage alert e-mail",
        logger=logger,
        now=now,
    )
    still_open = UsageAlertDelivery.objects.filter(alert=OuterRef("pk"), status__in=_OPEN)
    UsageAlert.objects.filter(pk=alert.pk, sent_at__isnull=True).exclude(Exists(still_open)).update(
        sent_at=now or timezone.now()
    )
    return sent
