"""Overage control, the writes: staff set a subscription's policy and ceiling, a client's
portal user sets their own monthly cap and approves extra hours for a month (the portal, or
a reply to the e-mail that asks). Each decision is audited on the subscription's trail,
which the portal's usage card and history show. The rules: docs/billing-rules.md,
"Overage policies"."""

import datetime as dt
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from customers.models import ClientUser
from packages.models import (
    ApprovalChannel,
    BillingMode,
    OverageApproval,
    OveragePolicy,
    Subscription,
)
from packages.services import period_lock_open
from supportbilling.periods import period_current, period_label, period_last_day
from tickets.models import AuditAction
from tickets.overage import (
    approval_hours_clean,
    approved_hours_of,
    cap_hours_clean,
    overage_cap_effective,
)
from tickets.services import audit_record


def _locked(subscription: Subscription) -> Subscription:
    return (
        Subscription.objects.select_for_update(of=("self",))
        .select_related("package")
        .get(pk=subscription.pk)
    )


def _recurring_check(subscription: Subscription) -> None:
    if subscription.package.billing_mode != BillingMode.RECURRING:
        raise ValidationError(
            "A one-time package has no overtime: its overage policy cannot be set.",
            code="overage_one_time",
        )


def _hours_text(value: Decimal | None) -> str:
    return "" if value is None else str(value)


@transaction.atomic
def subscription_overage_set(
    *, subscription: Subscription, policy: str, cap_hours: object, actor: Any
) -> Subscription:
    """Staff set the overage policy and, for ``cap``, the ceiling in hours a month beyond the
    included ones (empty: none, so no extra hour). A client's own cap above a new ceiling is
    lowered to it. Audited when something changed."""
    if policy not in OveragePolicy.values:
        raise ValidationError(
            f"Unknown overage policy {policy!r}: choose bill, cap or approve.",
            code="overage_policy",
        )
    cap = None if cap_hours in (None, "") else cap_hours_clean(cap_hours)
    subscription = _locked(subscription)
    if policy != subscription.overage_policy or cap is not None:
        _recurring_check(subscription)
    old = (subscription.overage_policy, subscription.overage_cap_hours)
    old_client = subscription.client_cap_hours
    subscription.overage_policy, subscription.overage_cap_hours = policy, cap
    if (
        policy == OveragePolicy.CAP
        and cap is not None
        and old_client is not None
        and old_client > cap
    ):
        subscription.client_cap_hours = cap
    if old == (policy, cap) and old_client == subscription.client_cap_hours:
        return subscription
    subscription.save(update_fields=["overage_policy", "overage_cap_hours", "client_cap_hours"])
    detail: dict[str, Any] = {
        "policy": [old[0], policy],
        "cap_hours": [_hours_text(old[1]), _hours_text(cap)],
    }
    if old_client != subscription.client_cap_hours:
        detail["client_cap_hours"] = [
            _hours_text(old_client),
            _hours_text(subscription.client_cap_hours),
        ]
    audit_record(
        action=AuditAction.OVERAGE_POLICY,
        actor=actor,
        subscription_id=subscription.pk,
        detail=detail,
    )
    return subscription


def _client_user_check(*, subscription: Subscription, user: Any) -> None:
    """Only a portal user of the subscription's own client decides for it."""
    user_id = getattr(user, "pk", None)
    client_id = (
        ClientUser.objects.filter(user_id=user_id).values_list("client_id", flat=True).first()
        if user_id is not None
        else None
    )
    if client_id is None or client_id != subscription.client_id:
        raise ValidationError(
            "Only a portal user of the subscription's client can decide this.",
            code="not_client_user",
        )


@transaction.atomic
def subscription_client_cap_set(
    *, subscription: Subscription, cap_hours: object, user: Any
) -> Subscription:
    """A client's portal user sets (or clears, with an empty value) their own monthly cap on
    hours beyond the included ones. Under ``cap`` it cannot be above staff's ceiling."""
    _client_user_check(subscription=subscription, user=user)
    cap = None if cap_hours in (None, "") else cap_hours_clean(cap_hours)
    subscription = _locked(subscription)
    _recurring_check(subscription)
    if subscription.overage_policy == OveragePolicy.CAP and cap is not None:
        ceiling = subscription.overage_cap_hours or Decimal("0.00")
        if cap > ceiling:
            raise ValidationError(
                f"Your cap can be at most {ceiling:.2f} h, the ceiling of your support agreement.",
                code="cap_above_ceiling",
            )
    old = subscription.client_cap_hours
    if old == cap:
        return subscription
    subscription.client_cap_hours = cap
    subscription.save(update_fields=["client_cap_hours"])
    audit_record(
        action=AuditAction.OVERAGE_CAP,
        actor=user,
        subscription_id=subscription.pk,
        detail={"client_cap_hours": [_hours_text(old), _hours_text(cap)]},
    )
    return subscription


@transaction.atomic
def overage_approve(
    *,
    subscription: Subscription,
    hours: object,
    user: Any,
    month: dt.date | None = None,
    channel: str = ApprovalChannel.PORTAL,
    now: dt.datetime | None = None,
) -> OverageApproval:
    """A client's portal user approves ``hours`` more extra hours for ``month`` (the current
    one by default) of a subscription under ``approve``. Only while the month is open (its
    time is billed at the close with the approvals made by then), within the subscription's
    dates, and within the client's cap when one is set."""
    _client_user_check(subscription=subscription, user=user)
    value = approval_hours_clean(hours)
    month = month or period_current(now)
    period_lock_open(month=month)
    subscription = _locked(subscription)
    if subscription.overage_policy != OveragePolicy.APPROVE:
        raise ValidationError(
            "This subscription does not ask for approval of extra hours.",
            code="not_approve_policy",
        )
    if subscription.start_date > period_last_day(month) or (
        subscription.end_date is not None and subscription.end_date < month
    ):
        raise ValidationError(
            f"The subscription does not run in {period_label(month)}.", code="outside_subscription"
        )
    approved = approved_hours_of(subscription_id=subscription.pk, month=month)
    cap = overage_cap_effective(subscription)
    if cap is not None and approved + value > cap:
        raise ValidationError(
            f"Your monthly cap allows {cap:.2f} extra hours and {approved:.2f} h are approved "
            f"already: approve at most {max(cap - approved, Decimal(0)):.2f} h more, or raise "
            "your cap first.",
            code="approval_above_cap",
        )
    approval = OverageApproval.objects.create(
        subscription=subscription, month=month, hours=value, approved_by=user, channel=channel
    )
    audit_record(
        action=AuditAction.OVERAGE_APPROVED,
        actor=user,
        subscription_id=subscription.pk,
        detail={
            "month": f"{month:%Y-%m}",
            "hours": str(value),
            "approved": str(approved + value),
            "channel": channel,
        },
    )
    return approval
