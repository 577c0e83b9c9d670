"""Billing's receivers of the domain events of lower apps (connected in ``BillingConfig.ready``).
Each one calls one billing service; the rules stay in the services.

The catalogue's and customers' events arrive inside the transaction of the change (see
packages/signals.py, customers/signals.py): the audit rows and a bucket's item commit with it.
``time_entries_changed`` arrives on commit and only queues a check."""

import datetime as dt
from typing import Any

from billing.audit import billing_event_record
from billing.models import BillingAction
from billing.services.alerts import usage_alerts_check_queue
from billing.services.buckets import bucket_sale_record


def usage_alerts_on_time_change(
    sender: Any, *, subscription_id: int, months: tuple[dt.date, ...], **kwargs: Any
) -> None:
    """Time of a subscription changed: check its usage alerts now, rather than at the next
    periodic check (which stays as the safety net when the queue is down)."""
    usage_alerts_check_queue(subscription_id=subscription_id)


def bucket_on_subscription_created(
    sender: Any, *, subscription: Any, price: Any, **kwargs: Any
) -> None:
    bucket_sale_record(subscription=subscription, price=price)


def audit_on_package_changed(
    sender: Any, *, package: Any, actor: Any, created: bool, changes: dict[str, Any], **kwargs: Any
) -> None:
    billing_event_record(
        action=BillingAction.PACKAGE_CREATED if created else BillingAction.PACKAGE_CHANGED,
        actor=actor,
        package_id=package.pk,
        detail=changes,
    )


def audit_on_client_changed(
    sender: Any, *, client: Any, actor: Any, created: bool, changes: dict[str, Any], **kwargs: Any
) -> None:
    billing_event_record(
        action=BillingAction.CLIENT_CREATED if created else BillingAction.CLIENT_CHANGED,
        actor=actor,
        client_id=client.pk,
        detail=changes,
    )


def audit_on_portal_login_changed(
    sender: Any, *, client: Any, user: Any, actor: Any, added: bool, **kwargs: Any
) -> None:
    billing_event_record(
        action=BillingAction.PORTAL_LOGIN_ADDED if added else BillingAction.PORTAL_LOGIN_REMOVED,
        actor=actor,
        client_id=client.pk,
        detail={"username": user.get_username(), "email": user.email},
    )
