"""Billing's receivers of the domain events of lower apps (connected in ``BillingConfig.ready``).
Each one only queues work; the rules stay in the services."""

import datetime as dt
from typing import Any

from billing.services.alerts import usage_alerts_check_queue


def usage_alerts_on_time_change(
    sender: Any, *, subscription_id: int, months: tuple[dt.date, ...], **kwargs: Any
) -> None:
    """Time of a subscription changed: check its usage alerts now, rather than at the next
    periodic check (which stays as the safety net when the queue is down)."""
    usage_alerts_check_queue(subscription_id=subscription_id)
