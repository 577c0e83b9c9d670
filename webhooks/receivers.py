"""Billing's events become webhook deliveries, in the transaction of the change
(billing/signals.py)."""

import datetime as dt
from typing import Any

from django.db.models import QuerySet
from django.utils import timezone

from billing.models import BillableItem, Dispute, Statement
from packages.models import BillingPeriod
from supportbilling.periods import period_label
from webhooks import payloads
from webhooks.models import WebhookEvent
from webhooks.services import deliveries_record, endpoints_for


def on_period_closed(*, month: dt.date, **_: Any) -> None:
    endpoints = endpoints_for(WebhookEvent.PERIOD_CLOSED)
    if not endpoints:
        return
    period = BillingPeriod.objects.get(month=month)
    data = payloads.period_closed_data(month=month, closed_at=period.closed_at)
    deliveries_record(
        event=WebhookEvent.PERIOD_CLOSED,
        endpoints=endpoints,
        objects=[(f"period:{period_label(month)}", data)],
    )


def on_items_created(*, items: QuerySet[BillableItem], **_: Any) -> None:
    endpoints = endpoints_for(WebhookEvent.ITEM_CREATED)
    if not endpoints:
        return
    deliveries_record(
        event=WebhookEvent.ITEM_CREATED,
        endpoints=endpoints,
        objects=((f"item:{data['id']}", data) for data in payloads.item_data(items)),
    )


def on_items_status_changed(*, changes: list[tuple[int, str]], status: str, **_: Any) -> None:
    endpoints = endpoints_for(WebhookEvent.ITEM_STATUS_CHANGED)
    if not endpoints:
        return
    previous = dict(changes)
    items = BillableItem.objects.filter(pk__in=list(previous))
    now = timezone.now()
    deliveries_record(
        event=WebhookEvent.ITEM_STATUS_CHANGED,
        endpoints=endpoints,
        now=now,
        objects=(
            # One per move: an item may go pending -> exported -> pending -> exported.
            (
                f"item:{data['id']}:{previous[data['id']]}>{status}@{now.isoformat()}",
                {**data, "previous_status": previous[data["id"]]},
            )
            for data in payloads.item_data(items)
        ),
    )


def on_dispute_opened(*, dispute: Dispute, **_: Any) -> None:
    endpoints = endpoints_for(WebhookEvent.DISPUTE_OPENED)
    if not endpoints:
        return
    deliveries_record(
        event=WebhookEvent.DISPUTE_OPENED,
        endpoints=endpoints,
        objects=[(f"dispute:{dispute.pk}", payloads.dispute_data(dispute))],
    )


def on_statement_ready(*, statement: Statement, **_: Any) -> None:
    endpoints = endpoints_for(WebhookEvent.STATEMENT_READY)
    if not endpoints:
        return
    deliveries_record(
        event=WebhookEvent.STATEMENT_READY,
        endpoints=endpoints,
        objects=[(f"statement:{statement.pk}", payloads.statement_data(statement))],
    )
