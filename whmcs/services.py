"""Pushing billable items to WHMCS through its API's ``AddBillableItem`` (docs/whmcs.md).

At most one WHMCS billable item per item: a push is claimed (committed) before its request and
its outcome recorded after it. A definite refusal (bad credentials, unknown client, no
connection) leaves the item pending and is pushed again by the next run; an answer that never
came (a read timeout, a server error) may have created the billable item in WHMCS, so it is
not pushed again until someone has looked there (the admin's "push again" action)."""

import datetime as dt
import logging
from collections import Counter
from collections.abc import Iterable
from typing import Any

import requests
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from urllib3.exceptions import NewConnectionError

from billing.models import BillableItem, ItemStatus
from billing.selectors.finance import items_exportable
from billing.services.items import billable_items_status_set
from packages.models import InvoiceAction
from supportbilling.periods import local_today
from whmcs.models import PushStatus, WhmcsPush

logger = logging.getLogger(__name__)

# Our invoice actions in WHMCS's words.
INVOICE_ACTIONS = {
    InvoiceAction.NO_INVOICE: "noinvoice",
    InvoiceAction.NEXT_CRON: "nextcron",
    InvoiceAction.NEXT_INVOICE: "nextinvoice",
    InvoiceAction.DUE_DATE: "duedate",
}
# A claim whose worker never reported (killed mid-request) is then an unknown outcome.
CLAIM_TIMEOUT = dt.timedelta(minutes=5)
NOT_CONFIGURED = "WHMCS is not configured: set WHMCS_API_URL, WHMCS_IDENTIFIER and WHMCS_SECRET."


class WhmcsNotConfigured(ValidationError):
    pass


def whmcs_configured() -> bool:
    return bool(settings.WHMCS_API_URL and settings.WHMCS_IDENTIFIER and settings.WHMCS_SECRET)


def add_billable_item_fields(
    item: BillableItem, *, whmcs_client_id: int, today: dt.date
) -> dict[str, str]:
    """The request of one item: credentials, then AddBillableItem's documented parameters."""
    fields = {
        "action": "AddBillableItem",
        "identifier": settings.WHMCS_IDENTIFIER,
        "secret": settings.WHMCS_SECRET,
        "responsetype": "json",
        "clientid": str(whmcs_client_id),
        "description": f"{item.description} [item {item.pk}]",
        "amount": str(item.amount.amount),
        "unit": item.unit,  # "hours" or "quantity", the same words in WHMCS
        "quantity": str(item.quantity),
        "invoiceaction": INVOICE_ACTIONS[InvoiceAction(item.invoice_action)],
    }
    if item.invoice_action == InvoiceAction.DUE_DATE:
        fields["duedate"] = (today + dt.timedelta(days=settings.WHMCS_DUE_DAYS)).isoformat()
    if settings.WHMCS_ACCESS_KEY:
        fields["accesskey"] = settings.WHMCS_ACCESS_KEY
    return fields


def _request(fields: dict[str, str]) -> tuple[str, int | None, str]:
    """POST to WHMCS once: (PushStatus, billable id, error)."""
    try:
        response = requests.post(
            settings.WHMCS_API_URL,
            data=fields,
            timeout=settings.WHMCS_TIMEOUT,
            allow_redirects=False,
        )
    except requests.ConnectTimeout:
        return PushStatus.FAILED, None, "WHMCS could not be reached (connection timed out)."
    except requests.ConnectionError as exc:
        reason = getattr(exc.args[0], "reason", None) if exc.args else None
        if isinstance(reason, NewConnectionError):
            return PushStatus.FAILED, None, "WHMCS could not be reached (connection refused)."
        return PushStatus.UNKNOWN, None, f"The connection broke before WHMCS answered: {exc}"[:500]
    except requests.Timeout:
        return (
            PushStatus.UNKNOWN,
            None,
            f"WHMCS did not answer within {settings.WHMCS_TIMEOUT[1]:g} s.",
        )
    except requests.RequestException as exc:
        return PushStatus.FAILED, None, f"{type(exc).__name__}: {exc}"[:500]
    try:
        body: Any = response.json()
    except ValueError:
        body = {}
    message = str(body.get("message", "")) if isinstance(body, dict) else ""
    if response.status_code in (401, 403):
        refusal = message or response.status_code
        return PushStatus.FAILED, None, f"WHMCS refused the credentials: {refusal}"
    if response.status_code >= 500 or not isinstance(body, dict) or "result" not in body:
        answer = f"WHMCS answered HTTP {response.status_code} without a result."
        return PushStatus.UNKNOWN, None, answer
    if body["result"] == "success" and str(body.get("billableid", "")).isdigit():
        return PushStatus.PUSHED, int(body["billableid"]), ""
    return PushStatus.FAILED, None, f"WHMCS refused the item: {message or body['result']}"[:500]


def item_push(*, item_id: int, again: bool = False, now: dt.datetime | None = None) -> str:
    """Push one exportable item; returns its push status afterwards. ``again`` also pushes an
    item whose earlier outcome is unknown (someone checked WHMCS has no such billable item)."""
    if not whmcs_configured():
        raise WhmcsNotConfigured(NOT_CONFIGURED)
    now = now or timezone.now()
    with transaction.atomic():
        item = (
            items_exportable()
            .select_for_update(of=("self",))
            .select_related("client__whmcs_link")
            .filter(pk=item_id)
            .first()
        )
        if item is None:
            return ""  # no longer pending (exported by hand, void) or its month reopened
        push, _ = WhmcsPush.objects.select_for_update().get_or_create(
            item=item, defaults={"status": PushStatus.FAILED}
        )
        stale = push.last_attempt_at is None or push.last_attempt_at <= now - CLAIM_TIMEOUT
        if push.status == PushStatus.PUSHED:
            return push.status
        if push.status == PushStatus.SENDING and not stale:
            return push.status  # another worker is on it
        if push.status in (PushStatus.UNKNOWN, PushStatus.SENDING) and not again:
            if push.status == PushStatus.SENDING:
                push.status = PushStatus.UNKNOWN
                push.last_error = "The push stopped before WHMCS answered."
                push.save(update_fields=["status", "last_error"])
            return push.status
        link = getattr(item.client, "whmcs_link", None)
        if link is None:
            push.status = PushStatus.FAILED
            push.last_error = f"{item.client} has no WHMCS client id: enter it under WHMCS clients."
            push.last_attempt_at = now
            push.save(update_fields=["status", "last_error", "last_attempt_at"])
            return push.status
        fields = add_billable_item_fields(
            item, whmcs_client_id=link.whmcs_client_id, today=local_today(now)
        )
        push.status, push.attempts, push.last_attempt_at = (
            PushStatus.SENDING,
            push.attempts + 1,
            now,
        )
        push.save(update_fields=["status", "attempts", "last_attempt_at"])
    status, billable_id, error = _request(fields)
    with transaction.atomic():
        WhmcsPush.objects.filter(pk=push.pk).update(
            status=status,
            billable_id=billable_id,
            last_error=error,
            pushed_at=timezone.now() if status == PushStatus.PUSHED else None,
        )
        if status == PushStatus.PUSHED:
            billable_items_status_set(item_ids=[item_id], status=ItemStatus.EXPORTED)
    if error:
        logger.warning("WHMCS push of item %s: %s", item_id, error)
    return status


def items_to_push() -> QuerySet[BillableItem]:
    """The exportable items not pushed yet, nor of unknown outcome (held for a person)."""
    return items_exportable().exclude(
        whmcs_push__status__in=[PushStatus.PUSHED, PushStatus.UNKNOWN]
    )


def items_push(*, item_ids: Iterable[int] | None = None, again: bool = False) -> Counter[str]:
    """Push these items (None: ``items_to_push``); the count of each resulting status. Nothing
    while WHMCS is not configured. Call it outside a transaction."""
    if not whmcs_configured():
        return Counter()
    if item_ids is None:
        item_ids = items_to_push().order_by("pk").values_list("pk", flat=True)
    outcome: Counter[str] = Counter()
    for item_id in list(item_ids):
        status = item_push(item_id=item_id, again=again)
        outcome[status or "skipped"] += 1
    return outcome
