"""Recording webhook deliveries with the change that caused them, and sending them
(docs/webhooks.md)."""

import datetime as dt
import json
import logging
import time
from collections.abc import Iterable
from typing import Any

import requests
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

from supportbilling.queue import task_enqueue
from webhooks.models import (
    DeliveryStatus,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
)

logger = logging.getLogger(__name__)

# Back-off after the n-th failed attempt (the Standard Webhooks recommendation): the periodic
# run (WEBHOOK_SEND_EVERY) sends a delivery once it is due. After the last one it is given up
# and stays in the log for a manual redelivery.
RETRY_AFTER = (
    dt.timedelta(seconds=5),
    dt.timedelta(minutes=5),
    dt.timedelta(minutes=30),
    dt.timedelta(hours=2),
    dt.timedelta(hours=5),
    dt.timedelta(hours=10),
    dt.timedelta(hours=10),
)
MAX_ATTEMPTS = len(RETRY_AFTER) + 1
# A claimed delivery whose worker never reported (killed mid-POST) is due again after this:
# far longer than one POST may last (WEBHOOK_TIMEOUT).
CLAIM_TIMEOUT = dt.timedelta(minutes=2)
SEND_BATCH = 100
USER_AGENT = "SupportByTime-Webhooks/1"


def event_types_check(events: Iterable[str]) -> list[str]:
    """The endpoint's event list, validated: known types, no repeats, at least one."""
    chosen = list(dict.fromkeys(events))
    unknown = sorted(set(chosen) - set(WebhookEvent.values))
    if unknown:
        raise ValidationError(
            f"Unknown event type {', '.join(unknown)}; one of {', '.join(WebhookEvent.values)}."
        )
    if not chosen:
        raise ValidationError("Choose at least one event.")
    return chosen


def endpoints_for(event: str) -> list[WebhookEndpoint]:
    """The active endpoints that receive ``event`` (a small table, filtered here so that it
    works the same on SQLite)."""
    return [e for e in WebhookEndpoint.objects.filter(active=True) if event in e.events]


def deliveries_record(
    *,
    event: str,
    objects: Iterable[tuple[str, dict[str, Any]]],
    endpoints: list[WebhookEndpoint] | None = None,
    now: dt.datetime | None = None,
) -> int:
    """One delivery per active endpoint of ``event`` and object (``(object_key, data)``),
    written in the caller's transaction; their sending is queued once it commits. An object
    already announced to an endpoint is skipped. Returns how many were written.

    ``endpoints``: ``endpoints_for(event)`` when the caller already read them (the receivers
    do, to build no payload when nobody listens); None reads them here."""
    if endpoints is None:
        endpoints = endpoints_for(event)
    if not endpoints:
        return 0
    now = now or timezone.now()
    rows = [
        WebhookDelivery(
            endpoint=endpoint,
            event=event,
            object_key=key,
            message_id=WebhookDelivery.message_id_new(),
            payload={"type": event, "timestamp": now.isoformat(), "data": data},
            next_attempt_at=now,
        )
        for key, data in objects
        for endpoint in endpoints
    ]
    WebhookDelivery.objects.bulk_create(rows, ignore_conflicts=True, batch_size=1000)
    if rows:
        transaction.on_commit(lambda: task_enqueue("webhooks.deliveries_send"), robust=True)
    return len(rows)


def _post(delivery: WebhookDelivery, *, now: dt.datetime) -> tuple[int | None, str]:
    """POST the delivery once: (status code or None, error text, empty on a 2xx)."""
    body = json.dumps(delivery.payload, separators=(",", ":"), sort_keys=True)
    signature = Webhook(delivery.endpoint.secret).sign(delivery.message_id, now, body)
    headers = {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "webhook-id": delivery.message_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signature,
    }
    try:
        response = requests.post(
            delivery.endpoint.url,
            data=body.encode(),
            headers=headers,
            timeout=settings.WEBHOOK_TIMEOUT,
            allow_redirects=False,  # a receiver is only ever the address an admin entered
        )
    except requests.Timeout:
        return None, f"No answer within {settings.WEBHOOK_TIMEOUT[1]:g} s."
    except requests.RequestException as exc:
        return None, f"{type(exc).__name__}: {' '.join(str(exc).split())}"[:500]
    code = response.status_code
    response.close()
    if 200 <= code < 300:
        return code, ""
    if 300 <= code < 400:
        location = response.headers.get("location", "")
        return code, f"HTTP {code}: redirect to {location} not followed."[:500]
    return code, f"HTTP {code} {response.reason or ''}".strip()[:500]


def delivery_send(delivery: WebhookDelivery, *, now: dt.datetime | None = None) -> bool:
    """Send one due delivery at most once at a time: claimed by a conditional UPDATE
    (committed) before the POST, its outcome recorded after it. True when delivered."""
    now = now or timezone.now()
    claimed = WebhookDelivery.objects.filter(
        pk=delivery.pk,
        status__in=[DeliveryStatus.PENDING, DeliveryStatus.SENDING],
        next_attempt_at__lte=now,
        attempts=delivery.attempts,  # nobody claimed it since we read it
    ).update(
        status=DeliveryStatus.SENDING,
        attempts=delivery.attempts + 1,
        next_attempt_at=now + CLAIM_TIMEOUT,
        updated_at=now,
    )
    if not claimed:
        return False
    attempts = delivery.attempts + 1
    started = time.monotonic()
    code, error = _post(delivery, now=now)
    duration_ms = int((time.monotonic() - started) * 1000)
    finished = timezone.now()
    changes: dict[str, Any] = {
        "last_status_code": code,
        "last_error": error,
        "updated_at": finished,
    }
    if not error:
        changes.update(status=DeliveryStatus.DELIVERED, delivered_at=finished)
    elif attempts >= MAX_ATTEMPTS:
        changes["status"] = DeliveryStatus.FAILED
    else:
        changes.update(
            status=DeliveryStatus.PENDING, next_attempt_at=finished + RETRY_AFTER[attempts - 1]
        )
    with transaction.atomic():
        WebhookAttempt.objects.create(
            delivery_id=delivery.pk,
            attempted_at=now,
            status_code=code,
            error=error,
            duration_ms=duration_ms,
        )
        WebhookDelivery.objects.filter(pk=delivery.pk, attempts=attempts).update(**changes)
    if error:
        logger.warning("Webhook %s to %s failed: %s", delivery.message_id, delivery.endpoint, error)
    return not error


def deliveries_send(*, now: dt.datetime | None = None) -> tuple[int, bool]:
    """Send the due deliveries, oldest first, at most SEND_BATCH of them; call it outside a
    transaction. Returns (how many were delivered, whether more are due)."""
    moment = now or timezone.now()
    due = (
        WebhookDelivery.objects.filter(
            status__in=[DeliveryStatus.PENDING, DeliveryStatus.SENDING],
            next_attempt_at__lte=moment,
            endpoint__active=True,
        )
        .select_related("endpoint")
        .order_by("next_attempt_at", "pk")
    )
    batch = list(due[: SEND_BATCH + 1])
    delivered = sum(delivery_send(delivery, now=now) for delivery in batch[:SEND_BATCH])
    return delivered, len(batch) > SEND_BATCH


@transaction.atomic
def deliveries_redeliver(*, delivery_ids: Iterable[int], now: dt.datetime | None = None) -> int:
    """Send these deliveries again (an administrator's action), whatever their status: due at
    once, with a full retry schedule; the log keeps the earlier attempts. The receiver sees the
    same ``webhook-id`` and can tell it is a repeat."""
    now = now or timezone.now()
    count = WebhookDelivery.objects.filter(pk__in=list(delivery_ids)).update(
        status=DeliveryStatus.PENDING, attempts=0, next_attempt_at=now, updated_at=now
    )
    if count:
        transaction.on_commit(lambda: task_enqueue("webhooks.deliveries_send"), robust=True)
    return count
