"""The review window's writes: a client disputes a time entry or an item of a month in review,
finance resolves the dispute (an adjustment, or a rejection with an answer) and may release a
month before its window ends (docs/billing-rules.md, "Review window and disputes"). Each step
is audited (billing.audit) in its transaction."""

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from billing import audit, signals
from billing.models import (
    BillableItem,
    BillingAction,
    Dispute,
    DisputeStatus,
    ItemStatus,
    PeriodRelease,
)
from billing.selectors.review import month_review, review_days
from billing.services.items import adjustment_create
from packages.models import BillingPeriod, PeriodStatus
from supportbilling.periods import period_label, period_of
from tickets.models import TimeEntry

REASON_MAX = 2000


class DisputeTargetNotFound(ValidationError):
    """The time entry or item to dispute is not the client's (or does not exist). A
    ValidationError, so the API answers it like any refusal; the portal answers a 404."""


class DisputeDecision:
    ADJUST = "adjust"
    REJECT = "reject"
    CHOICES = (("adjust", "Adjust (credit or charge the difference)"), ("reject", "Reject"))


def _when(moment: dt.datetime) -> str:
    return f"{timezone.localtime(moment):%Y-%m-%d %H:%M}"


def dispute_window_check(*, month: dt.date, now: dt.datetime | None = None) -> None:
    """Refuses, with the reason, a dispute of ``month`` now: only a closed month in review."""
    label = period_label(month)
    review = month_review(month, now=now)
    if not review.closed:
        raise ValidationError(
            f"{label} is not closed yet: its time can still change. Ask us on a ticket.",
            code="not_closed",
        )
    if not review_days():
        raise ValidationError(
            f"{label} is billed as closed: months have no review window. Ask us on a ticket.",
            code="no_window",
        )
    if review.released_at is not None:
        raise ValidationError(
            f"The review of {label} is over: it was released for billing on "
            f"{_when(review.released_at)}. Ask us on a ticket.",
            code="released",
        )
    if not review.in_review and review.until is not None:
        raise ValidationError(
            f"The review of {label} ended on {_when(review.until)}. Ask us on a ticket.",
            code="window_over",
        )


def _reason_clean(reason: Any) -> str:
    reason = str(reason or "").strip()
    if not reason:
        raise ValidationError({"reason": "Give the reason for the dispute."})
    if len(reason) > REASON_MAX:
        raise ValidationError({"reason": f"Keep the reason under {REASON_MAX} characters."})
    return reason


@transaction.atomic
def dispute_open(
    *,
    client_id: int,
    reason: str,
    time_entry_id: int | None = None,
    item_id: int | None = None,
    actor: Any = None,
    now: dt.datetime | None = None,
) -> Dispute:
    """A client's dispute of one of its own time entries or billable items, in the review
    window of the object's month; one open dispute per object."""
    if (time_entry_id is None) == (item_id is None):
        raise ValidationError("Choose one time entry or one billable item to dispute.")
    reason = _reason_clean(reason)
    item: BillableItem | None = None
    entry: TimeEntry | None = None
    if item_id is not None:
        # Locked: a second dispute of the same item waits, then sees this one.
        item = (
            BillableItem.objects.select_for_update().filter(pk=item_id, client_id=client_id).first()
        )
        if item is None:
            raise DisputeTargetNotFound({"item": "No such billable item of yours."})
        if item.status == ItemStatus.VOID:
            raise ValidationError({"item": "A void item is not billed: nothing to dispute."})
        month, subscription_id = item.period, item.subscription_id
    else:
        entry = (
            TimeEntry.objects.select_for_update()
            .filter(id=time_entry_id or 0, subscription__client_id=client_id)
            .first()
        )
        if entry is None:
            raise DisputeTargetNotFound({"time_entry": "No such time entry of yours."})
        month, subscription_id = period_of(entry.work_date), entry.subscription_id
    dispute_window_check(month=month, now=now)
    existing = Dispute.objects.filter(
        status=DisputeStatus.OPEN,
        **({"item_id": item_id} if item is not None else {"time_entry_id": time_entry_id}),
    ).first()
    if existing is not None:
        what = "item" if item is not None else "time entry"
        raise ValidationError(
            f"Your dispute #{existing.pk} of this {what} is already open: we answer it first.",
            code="already_open",
        )
    try:
        with transaction.atomic():
            dispute = Dispute.objects.create(
                client_id=client_id,
                subscription_id=subscription_id,
                month=month,
                time_entry=entry,
                item=item,
                reason=reason,
                opened_by=actor if getattr(actor, "is_authenticated", False) else None,
            )
    except IntegrityError as exc:  # the constraint, should two requests pass the check at once
        raise ValidationError("A dispute of this is already open.", code="already_open") from exc
    audit.billing_event_record(
        action=BillingAction.DISPUTE_OPENED,
        actor=actor,
        item_id=dispute.item_id,
        subscription_id=subscription_id,
        client_id=client_id,
        detail={
            "dispute": dispute.pk,
            "period": period_label(month),
            "object": dispute.object_label,
            "reason": reason,
        },
    )
    signals.dispute_opened.send(sender=Dispute, dispute=dispute, actor=actor)
    return dispute


def _answer_clean(answer: Any) -> str:
    answer = str(answer or "").strip()
    if not answer:
        raise ValidationError({"answer": "Give the answer the client will read."})
    if len(answer) > REASON_MAX:
        raise ValidationError({"answer": f"Keep the answer under {REASON_MAX} characters."})
    return answer


@transaction.atomic
def dispute_resolve(
    *,
    dispute: Dispute,
    decision: str,
    answer: str,
    amount: Decimal | None = None,
    actor: Any = None,
    now: dt.datetime | None = None,
) -> Dispute:
    """Finance's decision: ``adjust`` writes an adjustment of ``amount`` (the existing
    adjustment service; its reason names the dispute) in the disputed month, ``reject``
    answers only. Either way the dispute is closed and no longer holds items back."""
    if decision not in (DisputeDecision.ADJUST, DisputeDecision.REJECT):
        raise ValidationError({"decision": "Choose adjust or reject."})
    answer = _answer_clean(answer)
    dispute = Dispute.objects.select_for_update().select_related("client").get(pk=dispute.pk)
    if dispute.status != DisputeStatus.OPEN:
        raise ValidationError(
            f"Dispute #{dispute.pk} is already resolved ({dispute.get_status_display().lower()}).",
            code="resolved",
        )
    adjustment = None
    if decision == DisputeDecision.ADJUST:
        if amount is None:
            raise ValidationError({"amount": "Enter the amount of the adjustment."})
        try:
            amount = Decimal(amount)
        except (InvalidOperation, TypeError, ValueError) as exc:
            raise ValidationError({"amount": "Enter the amount as a decimal."}) from exc
        adjustment = adjustment_create(
            client=dispute.client,
            month=dispute.month,
            amount=amount,
            reason=f"Dispute #{dispute.pk}: {answer}"[:300],
            subscription=dispute.subscription,
            actor=actor,
        )
    old = dispute.status
    dispute.status = (
        DisputeStatus.ADJUSTED if decision == DisputeDecision.ADJUST else DisputeStatus.REJECTED
    )
    dispute.answer = answer
    dispute.adjustment = adjustment
    dispute.resolved_by = actor if getattr(actor, "is_authenticated", False) else None
    dispute.resolved_at = now or timezone.now()
    dispute.save(update_fields=["status", "answer", "adjustment", "resolved_by", "resolved_at"])
    detail: dict[str, Any] = {
        "dispute": dispute.pk,
        "status": [old, dispute.status],
        "period": period_label(dispute.month),
        "answer": answer,
    }
    if adjustment is not None:
        detail["adjustment"] = adjustment.pk
        detail["amount"] = f"{adjustment.amount.amount} {adjustment.currency}"
    audit.billing_event_record(
        action=(
            BillingAction.DISPUTE_ADJUSTED
            if adjustment is not None
            else BillingAction.DISPUTE_REJECTED
        ),
        actor=actor,
        item_id=dispute.item_id,
        subscription_id=dispute.subscription_id,
        client_id=dispute.client_id,
        detail=detail,
    )
    return dispute


@dataclass(frozen=True)
class ReleaseResult:
    period: str
    release: PeriodRelease


@transaction.atomic
def period_release(
    *, month: dt.date, actor: Any = None, now: dt.datetime | None = None
) -> ReleaseResult:
    """Finance ends the review window of a closed month now: its items become exportable
    (those an open dispute holds still wait). Refused outside a running window."""
    label = period_label(month)
    period = BillingPeriod.objects.select_for_update().filter(month=month).first()
    if period is None or period.status != PeriodStatus.CLOSED:
        raise ValidationError(f"{label} is not closed: only a closed month is released.")
    if not review_days():
        raise ValidationError(
            "Closed months have no review window (REVIEW_WINDOW_DAYS is 0): "
            "their items are exportable at once."
        )
    review = month_review(month, now=now)
    if review.released_at is not None:
        raise ValidationError(f"{label} was already released on {_when(review.released_at)}.")
    if not review.in_review and review.until is not None:
        raise ValidationError(
            f"The review of {label} already ended on {_when(review.until)}: "
            "its items are exportable."
        )
    release = PeriodRelease.objects.create(
        month=month, released_by=actor if getattr(actor, "is_authenticated", False) else None
    )
    audit.billing_event_record(
        action=BillingAction.PERIOD_RELEASED,
        actor=actor,
        detail={
            "period": label,
            "review_until": _when(review.until) if review.until else None,
            "open_disputes": Dispute.objects.filter(month=month, status=DisputeStatus.OPEN).count(),
        },
    )
    return ReleaseResult(period=label, release=release)
