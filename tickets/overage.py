"""Overage control of a recurring subscription, the reads: how many hours a month may still
take (``cap``), how many the client approved (``approve``), what is pending approval.
The rules: docs/billing-rules.md, "Overage policies". The time services
(``tickets.services``) call ``overage_check`` with the subscription row locked, as the bucket
check does, so two operators logging at once cannot pass the cap together."""

import datetime as dt
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError
from django.db.models import Sum

from packages.models import BillingMode, OverageApproval, OveragePolicy, Subscription
from supportbilling.periods import period_label, period_last_day
from tickets.blocks import block_hours_available
from tickets.models import AuditEvent, TimeEntry

ZERO = Decimal("0.00")


def hours_short(hours: Decimal) -> str:
    """As ``tickets.selectors.hours_short`` (which reads this module): ``6.50`` -> ``6.5``."""
    text = f"{hours:.2f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


# The most extra hours one approval can add (a month has at most 744 hours).
APPROVAL_MAX_HOURS = Decimal("744")


def month_hours_used(*, subscription_id: int, month: dt.date) -> Decimal:
    """The chargeable hours logged in ``month`` (time at no charge is never overtime)."""
    entries = TimeEntry.objects.filter(
        subscription_id=subscription_id,
        work_date__range=(month, period_last_day(month)),
        no_charge=False,
    )
    return entries.aggregate(total=Sum("hours"))["total"] or ZERO


def approved_hours_of(*, subscription_id: int, month: dt.date) -> Decimal:
    """The extra hours the client approved for ``month`` (the sum of its approvals)."""
    total = OverageApproval.objects.filter(subscription_id=subscription_id, month=month).aggregate(
        total=Sum("hours")
    )["total"]
    return (total or ZERO).quantize(Decimal("0.01"))


def overage_cap_effective(subscription: Subscription) -> Decimal | None:
    """Hours a month may take beyond the included ones, None when unlimited: staff's ceiling
    under ``cap`` (none set: no extra hour at all) and the client's own cap (any policy),
    the lower of the two."""
    caps = []
    if subscription.overage_policy == OveragePolicy.CAP:
        caps.append(subscription.overage_cap_hours or ZERO)
    if subscription.client_cap_hours is not None:
        caps.append(subscription.client_cap_hours)
    return min(caps) if caps else None


@dataclass(frozen=True)
class OverageState:
    """One month of a recurring subscription under its overage policy."""

    policy: str
    month: dt.date
    included: Decimal
    used: Decimal
    cap: Decimal | None  # hours allowed beyond the included ones; None: no cap
    approved: Decimal  # extra hours the client approved (``approve``)
    # Hours the prepaid top-up blocks have available for the month: drawn after the
    # included hours and before any extra hour, so the cap and approvals start after them.
    blocks: Decimal = ZERO

    @property
    def prepaid(self) -> Decimal:
        """The included hours and the blocks' available hours: time the policy never meets."""
        return self.included + self.blocks

    @property
    def allowed_left(self) -> Decimal | None:
        """Hours that can still be logged in the month; None: no limit."""
        if self.cap is None:
            return None
        return max(self.prepaid + self.cap - self.used, ZERO)

    @property
    def approved_left(self) -> Decimal | None:
        """``approve``: hours that can still be logged without (more) approval."""
        if self.policy != OveragePolicy.APPROVE:
            return None
        return max(self.prepaid + self.approved - self.used, ZERO)

    @property
    def pending(self) -> Decimal:
        """``approve``: hours logged beyond the included, block and approved ones (not
        billed unless approved before the month closes)."""
        if self.policy != OveragePolicy.APPROVE:
            return ZERO
        return max(self.used - self.prepaid - self.approved, ZERO)

    def _prepaid_text(self) -> str:
        included = f"{hours_short(self.included)} h included"
        if self.blocks:
            return f"{included} + {hours_short(self.blocks)} h of top-up blocks"
        return included

    @property
    def summary(self) -> str:
        """What the operator reads before typing hours (empty under plain ``bill``)."""
        label = period_label(self.month)
        parts = []
        if self.allowed_left is not None:
            parts.append(
                f"Overage cap: {hours_short(self.allowed_left)} h more can be logged in "
                f"{label} ({self._prepaid_text()} + {hours_short(self.cap or ZERO)} h cap)."
            )
        if self.policy == OveragePolicy.APPROVE:
            parts.append(
                f"Approval needed beyond {hours_short(self.prepaid + self.approved)} h in "
                f"{label} ({hours_short(self.approved)} h approved by the client): "
                f"{hours_short(self.approved_left or ZERO)} h can be logged without approval"
                + (f", {hours_short(self.pending)} h pending approval." if self.pending else ".")
            )
        return " ".join(parts)


def overage_state(
    *, subscription: Subscription, month: dt.date, blocks: list[Subscription] | None = None
) -> OverageState | None:
    """The month's state; None for a one-time bucket (never any overtime). Reads
    ``package``: select it with the subscription. ``blocks``: the subscription's top-up
    blocks when the caller locked them (``tickets.blocks.blocks_of``); their available
    hours are read only when a cap or approvals make them matter."""
    if subscription.package.billing_mode != BillingMode.RECURRING:
        return None
    approved = ZERO
    if subscription.overage_policy == OveragePolicy.APPROVE:
        approved = approved_hours_of(subscription_id=subscription.pk, month=month)
    cap = overage_cap_effective(subscription)
    block_hours = ZERO
    if cap is not None or subscription.overage_policy == OveragePolicy.APPROVE:
        block_hours = block_hours_available(subscription=subscription, month=month, blocks=blocks)
    return OverageState(
        policy=subscription.overage_policy,
        month=month,
        included=subscription.hours_included,
        used=month_hours_used(subscription_id=subscription.pk, month=month),
        cap=cap,
        approved=approved,
        blocks=block_hours,
    )


# What an entry did to its month under the policy, for the caller to audit and act on.
CAP_REACHED = "cap_reached"
PENDING_APPROVAL = "pending_approval"


def overage_check(
    *,
    subscription: Subscription,
    month: dt.date,
    new_hours: Decimal,
    old_hours: Decimal = ZERO,
    pending_ok: bool = False,
    blocks: list[Subscription] | None = None,
) -> list[str]:
    """Refuse ``new_hours`` in ``month`` (a new entry's hours, or a changed entry's new hours
    replacing its ``old_hours`` in that month) when they pass the cap, or need approval and
    the operator did not choose to log them as pending approval. Call with the subscription
    row locked. Returns what the entry does (``CAP_REACHED``, ``PENDING_APPROVAL``)."""
    state = overage_state(subscription=subscription, month=month, blocks=blocks)
    if state is None:
        return []
    label = period_label(month)
    added = new_hours - old_hours
    total = state.used + added
    outcome = []
    left = state.allowed_left
    if left is not None:
        if added > left:
            raise ValidationError(
                f"The monthly overage cap is reached: only {left:.2f} h more can be logged "
                f"on this subscription in {label} ({state.included:.2f} h included + "
                + (f"{state.blocks:.2f} h of top-up blocks + " if state.blocks else "")
                + f"{state.cap or ZERO:.2f} h cap).",
                code="overage_cap",
            )
        if added == left:
            outcome.append(CAP_REACHED)
    if state.policy == OveragePolicy.APPROVE and total > state.prepaid + state.approved:
        if not pending_ok:
            raise ValidationError(
                f"Time beyond {state.prepaid + state.approved:.2f} h in {label} needs the "
                f"client's approval ({state.approved:.2f} h extra approved): "
                f"{state.approved_left or ZERO:.2f} h more can be logged without approval. "
                "Log it as pending approval to keep it; it is billed only once the client "
                "approves.",
                code="approval_needed",
            )
        outcome.append(PENDING_APPROVAL)
    return outcome


_APPROVE = re.compile(
    r"\s*approve\s*:?\s*([0-9]{1,3}(?:[.,][0-9]{1,2})?)\s*(?:h|hours?)?\s*[.!]?\s*",
    re.IGNORECASE | re.ASCII,
)


def approval_hours_read(text: str) -> Decimal | None:
    """The hours of a clear approval in a reply: its first non-empty line is exactly
    ``APPROVE 3``, ``approve 3h``, ``Approve: 2.5 hours`` (case aside). Anything else
    (another word, two numbers, a question) is None: left for a person."""
    for line in text.splitlines():
        if not line.strip():
            continue
        match = _APPROVE.fullmatch(line)
        if match is None:
            return None
        try:
            return Decimal(match[1].replace(",", "."))
        except InvalidOperation:
            return None
    return None


def approval_hours_clean(value: object) -> Decimal:
    """Extra hours a client approves: more than zero, at most 744, quarter hours."""
    try:
        hours = Decimal(str(value).strip().replace(",", "."))
    except InvalidOperation:
        raise ValidationError(
            "Enter the extra hours to approve as a number, such as 3 or 2.5.",
            code="approval_format",
        ) from None
    if not hours.is_finite() or hours <= 0 or hours > APPROVAL_MAX_HOURS:
        raise ValidationError(
            "Approve more than 0 and at most 744 extra hours.", code="approval_range"
        )
    if (hours * 4) != (hours * 4).to_integral_value():
        raise ValidationError("Hours must be in steps of 0.25.", code="approval_step")
    return hours.quantize(Decimal("0.01"))


def cap_hours_clean(value: object) -> Decimal:
    """A monthly cap in hours: zero or more, at most 744, quarter hours."""
    try:
        hours = Decimal(str(value).strip().replace(",", "."))
    except InvalidOperation:
        raise ValidationError(
            "Enter the cap in hours, such as 5 or 2.5.", code="cap_format"
        ) from None
    if not hours.is_finite() or hours < 0 or hours > APPROVAL_MAX_HOURS:
        raise ValidationError("Enter a cap from 0 to 744 hours.", code="cap_range")
    if (hours * 4) != (hours * 4).to_integral_value():
        raise ValidationError("Hours must be in steps of 0.25.", code="cap_step")
    return hours.quantize(Decimal("0.01"))


# --- The decisions, as the client's statement shows them -----------------------------------------

OVERAGE_ACTIONS = (
    "overage_policy",
    "overage_cap",
    "overage_cap_reached",
    "overage_pending",
    "overage_requested",
    "overage_approved",
)
_POLICY_LABELS = {
    OveragePolicy.BILL: "bill every extra hour",
    OveragePolicy.CAP: "cap",
    OveragePolicy.APPROVE: "approve extra hours each month",
}


@dataclass(frozen=True)
class OverageDecision:
    subscription_id: int
    created_at: dt.datetime
    action: str
    text: str


def _who(event: AuditEvent) -> str:
    actor = event.actor
    if actor is None:
        return ""
    return actor.get_full_name() or actor.get_username()


def _decision_text(event: AuditEvent) -> str:
    detail = event.detail
    action = event.action
    if action == "overage_policy":
        old, new = detail.get("policy", ["", ""])
        text = f"Overage policy: {_POLICY_LABELS.get(new, new)}"
        if new == OveragePolicy.CAP:
            text += f", up to {hours_short(Decimal(detail['cap_hours'][1] or '0'))} h a month"
        if "client_cap_hours" in detail:
            text += f"; your cap lowered to {detail['client_cap_hours'][1] or 'none'} h"
        return text + " (set by our staff)."
    if action == "overage_cap":
        new = detail.get("client_cap_hours", ["", ""])[1]
        cap = f"{hours_short(Decimal(new))} h a month" if new else "no cap"
        return f"Your monthly cap on extra hours: {cap} (set by {_who(event)})."
    if action == "overage_cap_reached":
        return f"The monthly cap was reached in {detail.get('month')}: no more time is logged."
    if action == "overage_pending":
        return (
            f"Time beyond the approved hours was logged in {detail.get('month')}: "
            f"{hours_short(Decimal(detail.get('pending', '0')))} h pending your approval."
        )
    if action == "overage_requested":
        return f"We asked for your approval of extra hours for {detail.get('month')}."
    if action == "overage_approved":
        via = " by e-mail" if detail.get("channel") == "email" else ""
        return (
            f"{hours_short(Decimal(detail.get('hours', '0')))} extra hours approved for "
            f"{detail.get('month')}{via} by {_who(event)} "
            f"({hours_short(Decimal(detail.get('approved', '0')))} h in all)."
        )
    return event.get_action_display()


def overage_decisions(
    *, subscription_ids: list[int], since: dt.datetime | None = None, limit: int = 50
) -> list[OverageDecision]:
    """The overage decisions and events of the subscriptions, newest first (one query)."""
    events = AuditEvent.objects.filter(
        subscription_id__in=subscription_ids, action__in=OVERAGE_ACTIONS
    ).select_related("actor")
    if since is not None:
        events = events.filter(created_at__gte=since)
    return [
        OverageDecision(
            subscription_id=event.subscription_id or 0,
            created_at=event.created_at,
            action=event.action,
            text=_decision_text(event),
        )
        for event in events.order_by("-created_at", "-pk")[:limit]
    ]
