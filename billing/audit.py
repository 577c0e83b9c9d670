"""The audit of money changes: the billing services record a BillingEvent in the transaction
of each change (so the API, the admin and commands all leave one), the admin pages list them."""

from collections.abc import Iterable
from typing import Any

from django.db.models import Q

from billing.models import BillableItem, BillingAction, BillingEvent, ItemStatus
from packages.models import BillingMode, InvoiceAction


def _actor_fields(actor: Any) -> dict[str, Any]:
    if not getattr(actor, "is_authenticated", False):
        return {"actor_user_id": None, "actor_username": ""}
    return {"actor_user_id": actor.pk, "actor_username": actor.get_username()}


def billing_event_record(
    *,
    action: str,
    actor: Any = None,
    detail: dict[str, Any],
    item_id: int | None = None,
    subscription_id: int | None = None,
    package_id: int | None = None,
    client_id: int | None = None,
) -> BillingEvent:
    return BillingEvent.objects.create(
        action=action,
        detail=detail,
        item_id=item_id,
        subscription_id=subscription_id,
        package_id=package_id,
        client_id=client_id,
        **_actor_fields(actor),
    )


def item_status_events_record(
    *, items: Iterable[BillableItem], status: str, actor: Any = None
) -> None:
    """One ``item_status`` event per item (``items`` carry their status before the change),
    in one INSERT."""
    actor_fields = _actor_fields(actor)
    BillingEvent.objects.bulk_create(
        BillingEvent(
            action=BillingAction.ITEM_STATUS,
            item_id=item.pk,
            subscription_id=item.subscription_id,
            client_id=item.client_id,
            detail={"status": [item.status, status], "amount": _money_text(item.amount)},
            **actor_fields,
        )
        for item in items
    )


def _money_text(money: Any) -> str:
    return f"{money.amount} {money.currency}"


# --- reading -----------------------------------------------------------------------------------

# Stored values are the codes; the pages show their labels.
_LABELS: dict[str, dict[str, str]] = {
    "status": dict(ItemStatus.choices),
    "billing_mode": dict(BillingMode.choices),
    "invoice_action": dict(InvoiceAction.choices),
}


def _readable(key: str, value: Any) -> str:
    if value is None or value == "":
        return "(none)"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(_LABELS.get(key, {}).get(value, value))


def billing_event_lines(event: BillingEvent) -> list[str]:
    """``{"status": ["pending", "exported"]}`` -> ``["status: Pending → Exported"]``."""
    lines = []
    for key, value in (event.detail or {}).items():
        label = key.replace("_", " ")
        if isinstance(value, list) and len(value) == 2:
            old, new = (_readable(key, v) for v in value)
            lines.append(f"{label}: {old} \u2192 {new}")
        else:
            lines.append(f"{label}: {_readable(key, value)}")
    return lines


def billing_event_list(
    *,
    item_id: int | None = None,
    subscription_id: int | None = None,
    package_id: int | None = None,
    client_id: int | None = None,
    limit: int = 200,
) -> list[BillingEvent]:
    """The events of one object, newest first, in one query. A client's list includes the
    events of its items; a subscription's those of its items."""
    condition = Q()
    for field, value in (
        ("item_id", item_id),
        ("subscription_id", subscription_id),
        ("package_id", package_id),
        ("client_id", client_id),
    ):
        if value is not None:
            condition |= Q(**{field: value})
    if not condition:
        return []
    return list(BillingEvent.objects.filter(condition).order_by("-created_at", "-id")[:limit])
