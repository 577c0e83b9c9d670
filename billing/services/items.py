"""Billable items: building one from a draft, status changes, finance's adjustments."""

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count
from django.utils import timezone
from djmoney.money import Money

from billing import audit, signals
from billing.calculations import (
    ItemDraft,
    money_round,
)
from billing.models import (
    ITEM_AMOUNT_LIMIT,
    BillableItem,
    BillingAction,
    ItemKind,
    ItemStatus,
    ItemUnit,
)
from billing.selectors.review import item_hold_reason, items_held
from billing.services.monthly_statements import adjustment_statement_revise
from customers.models import Client
from packages.models import (
    InvoiceAction,
    Subscription,
)
from supportbilling.money import in_whole_minor_units
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


# Where an item may go from each status (docs/api.md, "Item statuses"): pending -> exported
# -> invoiced, pending or exported -> void, and exported -> pending (an export the billing
# system did not take). ``invoiced`` and ``void`` are final: a correction of an invoiced item is
# a new adjustment, and a voided item stays as it is (nothing is deleted). The one rule for the
# API (billable_item_status_set) and the admin's actions (billable_items_status_set).
ITEM_STATUS_TRANSITIONS: dict[str, set[str]] = {
    ItemStatus.PENDING: {ItemStatus.EXPORTED, ItemStatus.VOID},
    ItemStatus.EXPORTED: {ItemStatus.INVOICED, ItemStatus.VOID, ItemStatus.PENDING},
    ItemStatus.INVOICED: set(),
    ItemStatus.VOID: set(),
}


def item_status_refusal(*, old: str, new: str) -> str:
    """Why an item in status ``old`` cannot become ``new``, with what to do instead."""
    if not ITEM_STATUS_TRANSITIONS.get(old):
        return f"An {old} item cannot change any more; enter an adjustment instead."
    if old == ItemStatus.PENDING and new == ItemStatus.INVOICED:
        return "A pending item is invoiced only after it was exported: export it first."
    allowed = " or ".join(sorted(ITEM_STATUS_TRANSITIONS[old]))
    return f"A {old} item can only become {allowed}, not {new}."


def _status_check(status: str) -> None:
    if status not in ItemStatus.values:
        raise ValidationError(
            f"Unknown status {status!r}; one of {', '.join(ItemStatus.values)}.",
            code="invalid_status",
        )


@transaction.atomic
def billable_item_status_set(*, item: BillableItem, status: str, actor: Any = None) -> BillableItem:
    """Move one item along ITEM_STATUS_TRANSITIONS (setting the status it has is a no-op)."""
    _status_check(status)
    item = BillableItem.objects.select_for_update().get(pk=item.pk)
    if item.status == status:
        return item
    if status not in ITEM_STATUS_TRANSITIONS[item.status]:
        raise ValidationError(
            item_status_refusal(old=item.status, new=status), code="status_transition"
        )
    if status == ItemStatus.EXPORTED:
        held = item_hold_reason(item)
        if held:
            raise ValidationError(f"Item #{item.pk} is held back: {held}", code="held")
    audit.item_status_events_record(items=[item], status=status, actor=actor)
    changes = [(item.pk, item.status)]
    item.status = status
    item.save(update_fields=["status", "updated_at"])
    signals.items_status_changed.send(
        sender=BillableItem, changes=changes, status=status, actor=actor
    )
    return item


@dataclass(frozen=True)
class ItemsStatusChange:
    """What ``billable_items_status_set`` did: the items it moved, how many already had the
    status, and how many of each other status it refused."""

    status: str
    changed_ids: list[int]
    unchanged: int
    refused: dict[str, int]
    # pending items not exported: their month is in review or an open dispute holds them
    held: int = 0

    @property
    def changed(self) -> int:
        return len(self.changed_ids)

    @property
    def refused_total(self) -> int:
        return sum(self.refused.values()) + self.held

    def refusals(self) -> list[str]:
        """One sentence per refused status: how many, and why."""
        sentences = []
        for old, count in sorted(self.refused.items()):
            reason = item_status_refusal(old=old, new=self.status)
            sentences.append(f"{count} item(s) left as they were: {reason[0].lower()}{reason[1:]}")
        if self.held:
            sentences.append(
                f"{self.held} item(s) held back, still pending: their month is in review or "
                "an open dispute of the client holds them (see the periods page and the "
                "disputes)."
            )
        return sentences


@transaction.atomic
def billable_items_status_set(
    *, item_ids: Iterable[int], status: str, actor: Any = None
) -> ItemsStatusChange:
    """The same rule for many items at once (admin actions): a conditional UPDATE changes
    the items whose status allows it, the others are counted per status and left alone."""
    _status_check(status)
    allowed_from = [old for old, targets in ITEM_STATUS_TRANSITIONS.items() if status in targets]
    selected = BillableItem.objects.filter(pk__in=list(item_ids))
    # Locked, so each audit row's old status is the one the UPDATE replaces.
    movable = list(selected.filter(status__in=allowed_from).select_for_update().order_by("pk"))
    held_ids: set[int] = set()
    if status == ItemStatus.EXPORTED and movable:
        # The review window and open disputes hold pending items back (billing.selectors.review).
        held_ids = set(
            items_held(
                BillableItem.objects.filter(pk__in=[item.pk for item in movable])
            ).values_list("pk", flat=True)
        )
        movable = [item for item in movable if item.pk not in held_ids]
    others = dict(
        selected.exclude(pk__in=[item.pk for item in movable])
        .exclude(pk__in=held_ids)
        .order_by()
        .values_list("status")
        .annotate(count=Count("id"))
    )
    BillableItem.objects.filter(pk__in=[item.pk for item in movable]).update(
        status=status, updated_at=timezone.now()
    )
    audit.item_status_events_record(items=movable, status=status, actor=actor)
    if movable:
        signals.items_status_changed.send(
            sender=BillableItem,
            changes=[(item.pk, item.status) for item in movable],
            status=status,
            actor=actor,
        )
    return ItemsStatusChange(
        status=status,
        changed_ids=[item.pk for item in movable],
        unchanged=others.pop(status, 0),
        refused=others,
        held=len(held_ids),
    )


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
    if abs(amount) >= ITEM_AMOUNT_LIMIT:
        raise ValidationError({"amount": "The amount is too large."})
    if not in_whole_minor_units(amount, client.currency):
        raise ValidationError(
            {"amount": f"Enter the amount in whole {client.currency} minor units, e.g. 12.50."}
        )
    rounded = money_round(amount, client.currency)  # the same amount, in the currency's places
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
    signals.items_created.send(sender=BillableItem, items=BillableItem.objects.filter(pk=item.pk))
    adjustment_statement_revise(subscription_id=item.subscription_id, month=item.period)
    return item
