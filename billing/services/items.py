"""Billable items: building one from a draft, status changes, finance's adjustments."""

import datetime as dt
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from djmoney.money import Money

from billing import audit
from billing.calculations import (
    ItemDraft,
    money_round,
)
from billing.models import (
    BillableItem,
    BillingAction,
    ItemKind,
    ItemStatus,
    ItemUnit,
)
from customers.models import Client
from packages.models import (
    InvoiceAction,
    Subscription,
)
from supportbilling.periods import (
    period_label,
    period_of,
)


def billable_item_from_draft(
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
