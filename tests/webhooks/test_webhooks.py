"""Webhooks: billing's events reach the endpoints an administrator entered, signed per the
Standard Webhooks specification, retried with back-off, logged, and sent again on demand
(docs/webhooks.md). The receiver is a real HTTP server that verifies every signature."""

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from billing.models import BillableItem, Dispute, ItemStatus
from billing.services.disputes import dispute_open
from billing.services.items import adjustment_create, billable_items_status_set
from billing.services.rollup import period_close
from tests.factories import (
    AdminFactory,
    ClientUserFactory,
    FinanceFactory,
    OperatorFactory,
    SubscriptionFactory,
    package_with_prices,
    subscription_with_overtime,
)
from tests.webhooks.receiver import WebhookReceiver
from webhooks.models import (
    DeliveryStatus,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
    webhook_secret_new,
)
from webhooks.services import MAX_ATTEMPTS, RETRY_AFTER, deliveries_send

OCTOBER = dt.date(2026, 10, 1)
NOW = dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.UTC)
pytestmark = pytest.mark.django_db


@pytest.fixture
def clock(time_machine):
    time_machine.move_to(NOW, tick=False)
    return time_machine


@pytest.fixture
def receiver():
    server = WebhookReceiver(secret=webhook_secret_new()).start()
    yield server
    server.stop()


def endpoint_for(receiver, path="/ok", events=tuple(WebhookEvent.values), secret=None):
    return WebhookEndpoint.objects.create(
        url=f"{receiver.base_url}{path}", events=list(events), secret=secret or receiver.secret
    )


def test_closing_a_month_sends_the_period_and_its_items_signed(clock, receiver):
    endpoint_for(receiver, events=[WebhookEvent.PERIOD_CLOSED, WebhookEvent.ITEM_CREATED])
    subscription = subscription_with_overtime()

    period_close(month=OCTOBER)
    delivered, more = deliveries_send()

    assert (delivered, more) == (3, False)
    assert [r.payload is not None for r in receiver.received] == [True, True, True]
    by_type = {}
    for received in receiver.received:
        by_type.setdefault(received.payload["type"], []).append(received.payload["data"])
    overtime = BillableItem.objects.get(subscription=subscription, kind="overtime")
    assert {
        "id": overtime.pk,
        "client": subscription.client_id,
        "subscription": subscription.pk,
        "period": "2026-10",
        "kind": "overtime",
        "quantity": "2.25",
        "unit_price": "60.00",
        "amount": "135.00",
        "currency": "EUR",
        "status": "pending",
    }.items() <= next(d for d in by_type["item.created"] if d["kind"] == "overtime").items()
    assert by_type["period.closed"] == [
        {
            "period": "2026-10",
            "closed_at": NOW.isoformat(),
            "totals": [{"currency": "EUR", "amount": "635.00", "items": 2}],
        }
    ]
    assert set(WebhookDelivery.objects.values_list("status", flat=True)) == {"delivered"}
    # The headers of the specification, one id per delivery.
    ids = {r.headers["webhook-id"] for r in receiver.received}
    assert len(ids) == 3 and all(i.startswith("msg_") for i in ids)
    assert {r.headers["webhook-timestamp"] for r in receiver.received} == {
        str(int(NOW.timestamp()))
    }


def test_an_endpoint_gets_only_the_events_it_chose(clock, receiver):
    endpoint_for(receiver, events=[WebhookEvent.ITEM_STATUS_CHANGED])
    subscription_with_overtime()
    period_close(month=OCTOBER)
    assert not WebhookDelivery.objects.exists()

    items = BillableItem.objects.order_by("pk")
    billable_items_status_set(
        item_ids=[items[0].pk], status=ItemStatus.EXPORTED, actor=FinanceFactory()
    )
    deliveries_send()

    [received] = receiver.received
    assert received.payload["type"] == "item.status_changed"
    assert received.payload["data"]["id"] == items[0].pk
    assert received.payload["data"]["status"] == "exported"
    assert received.payload["data"]["previous_status"] == "pending"


def test_an_adjustment_and_a_one_time_sale_are_announced(clock, receiver):
    endpoint_for(receiver, events=[WebhookEvent.ITEM_CREATED])
    subscription = SubscriptionFactory(package=package_with_prices({"EUR": ("500.00", "60.00")}))
    adjustment_create(
        client=subscription.client,
        month=dt.date(2026, 11, 1),
        amount=Decimal("-25.00"),
        reason="Goodwill credit",
        actor=FinanceFactory(),
    )
    deliveries_send()
    [received] = receiver.received
    assert received.payload["data"]["kind"] == "adjustment"
    assert received.payload["data"]["amount"] == "-25.00"


def test_a_failed_delivery_is_retried_with_back_off_and_logged(clock, receiver):
    receiver.answers["/flaky"] = [500, 204]
    endpoint_for(receiver, path="/flaky", events=[WebhookEvent.PERIOD_CLOSED])
    subscription_with_overtime()
    period_close(month=OCTOBER)

    assert deliveries_send() == (0, False)
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == DeliveryStatus.PENDING
    assert delivery.last_status_code == 500
    assert delivery.last_error == "HTTP 500 Internal Server Error"
    assert delivery.next_attempt_at == NOW + RETRY_AFTER[0]

    # Not due yet: nothing is sent.
    assert deliveries_send() == (0, False)
    assert len(receiver.received) == 1

    clock.shift(RETRY_AFTER[0])
    assert deliveries_send() == (1, False)
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DELIVERED
    assert list(delivery.attempt_log.order_by("pk").values_list("status_code", "error")) == [
        (500, "HTTP 500 Internal Server Error"),
        (204, ""),
    ]
    # Both attempts carried the same webhook-id: the receiver can drop a repeat.
    assert receiver.received[0].headers["webhook-id"] == receiver.received[1].headers["webhook-id"]


def test_a_redirect_is_not_followed(clock, receiver):
    receiver.answers["/moved"] = ["redirect"]
    endpoint_for(receiver, path="/moved", events=[WebhookEvent.PERIOD_CLOSED])
    subscription_with_overtime()
    period_close(month=OCTOBER)

    deliveries_send()

    assert [r.path for r in receiver.received] == ["/moved"]
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == DeliveryStatus.PENDING
    assert delivery.last_error == f"HTTP 302: redirect to {receiver.base_url}/ok not followed."


def test_a_slow_receiver_times_out_and_is_retried(clock, receiver, settings):
    settings.WEBHOOK_TIMEOUT = (1, 1)
    receiver.answers["/slow"] = ["slow"]
    endpoint_for(receiver, path="/slow", events=[WebhookEvent.PERIOD_CLOSED])
    subscription_with_overtime()
    period_close(month=OCTOBER)

    deliveries_send()

    delivery = WebhookDelivery.objects.get()
    assert delivery.status == DeliveryStatus.PENDING
    assert delivery.last_status_code is None
    assert delivery.last_error == "No answer within 1 s."


def test_a_receiver_with_another_secret_refuses_the_signature(clock, receiver):
    endpoint_for(receiver, events=[WebhookEvent.PERIOD_CLOSED], secret=webhook_secret_new())
    subscription_with_overtime()
    period_close(month=OCTOBER)

    deliveries_send()

    assert receiver.received[0].payload is None  # did not verify
    assert WebhookDelivery.objects.get().last_status_code == 401


def test_given_up_after_the_last_attempt_then_sent_again_by_an_administrator(
    clock, receiver, client
):
    receiver.answers["/down"] = [503]
    endpoint_for(receiver, path="/down", events=[WebhookEvent.PERIOD_CLOSED])
    subscription_with_overtime()
    period_close(month=OCTOBER)
    for _ in range(MAX_ATTEMPTS):
        deliveries_send()
        clock.shift(dt.timedelta(hours=11))
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.FAILED, MAX_ATTEMPTS)
    deliveries_send()
    assert len(receiver.received) == MAX_ATTEMPTS  # given up: no more attempts

    receiver.answers["/down"] = [204]
    client.force_login(AdminFactory())
    response = client.post(
        reverse("admin:webhooks_webhookdelivery_changelist"),
        {"action": "redeliver", "_selected_action": [delivery.pk]},
    )
    assert response.status_code == 302
    deliveries_send()

    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DELIVERED
    assert delivery.attempt_log.count() == MAX_ATTEMPTS + 1
    assert receiver.received[-1].headers["webhook-id"] == delivery.message_id


def test_an_item_is_announced_once_per_endpoint(clock, receiver):
    from billing import signals

    endpoint_for(receiver, events=[WebhookEvent.ITEM_CREATED])
    subscription_with_overtime()
    period_close(month=OCTOBER)
    # A batch delivered twice announces the same items again: recorded once.
    signals.items_created.send(sender=BillableItem, items=BillableItem.objects.all())
    assert WebhookDelivery.objects.count() == 2


@pytest.mark.parametrize(
    ("role", "expected"),
    [("anonymous", 302), ("client", 302), ("operator", 403), ("finance", 403), ("admin", 200)],
)
@pytest.mark.parametrize(
    "url_name",
    [
        "admin:webhooks_webhookendpoint_changelist",
        "admin:webhooks_webhookendpoint_add",
        "admin:webhooks_webhookdelivery_changelist",
    ],
)
def test_only_administrators_see_or_configure_webhooks(client, role, expected, url_name):
    users = {
        "client": lambda: ClientUserFactory().user,
        "operator": OperatorFactory,
        "finance": FinanceFactory,
        "admin": AdminFactory,
    }
    if role in users:
        client.force_login(users[role]())
    response = client.get(reverse(url_name))
    assert response.status_code == expected


def test_a_finance_user_cannot_redeliver(clock, receiver, client):
    endpoint_for(receiver, events=[WebhookEvent.PERIOD_CLOSED])
    subscription_with_overtime()
    period_close(month=OCTOBER)
    delivery = WebhookDelivery.objects.get()
    client.force_login(FinanceFactory())
    response = client.post(
        reverse("admin:webhooks_webhookdelivery_changelist"),
        {"action": "redeliver", "_selected_action": [delivery.pk]},
    )
    assert response.status_code == 403
    assert WebhookDelivery.objects.get().attempts == 0


@pytest.mark.parametrize(
    ("url", "events", "error"),
    [
        ("ftp://billing.example/hook", ["period.closed"], "Enter a valid URL."),
        ("javascript:alert(1)", ["period.closed"], "Enter a valid URL."),
        ("https://billing.example/hook", [], "This field is required."),
        ("https://billing.example/hook", ["invoice.paid"], "Select a valid choice."),
    ],
)
def test_the_endpoint_form_refuses_bad_input_and_saves_nothing(client, url, events, error):
    client.force_login(AdminFactory())
    response = client.post(
        reverse("admin:webhooks_webhookendpoint_add"),
        {"url": url, "description": "", "events": events, "active": "on"},
    )
    assert response.status_code == 200
    assert error in response.content.decode()
    assert not WebhookEndpoint.objects.exists()


def test_an_administrator_adds_an_endpoint_and_sees_its_secret(client):
    client.force_login(AdminFactory())
    response = client.post(
        reverse("admin:webhooks_webhookendpoint_add"),
        {
            "url": "https://billing.example/hook",
            "description": "ERP",
            "events": ["period.closed", "item.created"],
            "active": "on",
        },
    )
    assert response.status_code == 302
    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.events == ["period.closed", "item.created"]
    assert endpoint.secret.startswith("whsec_")
    page = client.get(reverse("admin:webhooks_webhookendpoint_change", args=[endpoint.pk]))
    assert endpoint.secret in page.content.decode()


def test_a_dispute_is_announced_in_its_transaction(clock, receiver, settings):
    # given a 5-day review window and a month just closed
    settings.REVIEW_WINDOW_DAYS = 5
    endpoint_for(receiver, events=[WebhookEvent.DISPUTE_OPENED])
    subscription = subscription_with_overtime(month=OCTOBER)
    period_close(month=OCTOBER)
    item = BillableItem.objects.get(subscription=subscription, kind="overtime")
    user = ClientUserFactory(client=subscription.client).user
    # when the client disputes an item
    dispute = dispute_open(
        client_id=subscription.client_id, item_id=item.pk, reason="Not ordered", actor=user
    )
    deliveries_send()
    # then the endpoint gets dispute.opened with the dispute
    [received] = receiver.received
    assert received.payload["type"] == "dispute.opened"
    assert received.payload["data"] == {
        "id": dispute.pk,
        "client": subscription.client_id,
        "subscription": subscription.pk,
        "period": "2026-10",
        "time_entry": None,
        "item": item.pk,
        "reason": "Not ordered",
        "status": "open",
        "opened_at": NOW.isoformat(),
    }
    # and a refused dispute (a second one of the same item) announces nothing
    with pytest.raises(ValidationError, match="already open"):
        dispute_open(client_id=subscription.client_id, item_id=item.pk, reason="again")
    assert WebhookDelivery.objects.filter(event="dispute.opened").count() == 1
    assert Dispute.objects.count() == 1


def test_a_statement_pdf_is_announced_with_its_download_path(
    clock, receiver, celery_eager, django_capture_on_commit_callbacks
):
    endpoint_for(receiver, events=[WebhookEvent.STATEMENT_READY])
    subscription = subscription_with_overtime()

    # when October closes and its statement is rendered, then adjusted
    with django_capture_on_commit_callbacks(execute=True):
        period_close(month=OCTOBER)
    with django_capture_on_commit_callbacks(execute=True):
        adjustment_create(
            client=subscription.client,
            month=OCTOBER,
            amount=Decimal("-25.00"),
            reason="Goodwill credit",
            subscription=subscription,
        )
    deliveries_send()  # (sent already by the tasks queued on commit: nothing left)

    # then each revision is announced once, with the portal's path that downloads it
    data = [r.payload["data"] for r in receiver.received if r.payload["type"] == "statement.ready"]
    assert [(d["period"], d["revision"], d["total"]) for d in data] == [
        ("2026-10", 1, "635.00 EUR"),
        ("2026-10", 2, "610.00 EUR"),
    ]
    assert data[1]["download_path"] == reverse(
        "clientarea:statement_revision", args=[subscription.pk, "2026-10", 2]
    )
    assert data[1]["subscription"] == subscription.pk
    assert data[1]["changes"] == [
        "Adjustment added: Goodwill credit (-25.00 EUR).",
        "Total: 635.00 EUR before, 610.00 EUR now.",
    ]
    assert len(data[0]["checksum_sha256"]) == 64
