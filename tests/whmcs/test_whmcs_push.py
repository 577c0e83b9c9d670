"""The WHMCS connector against a local WHMCS that implements the documented AddBillableItem
request, response and errors (tests/whmcs/fake_whmcs.py): every exportable item becomes one
billable item there, never two (docs/whmcs.md)."""

import datetime as dt
import socket
from decimal import Decimal

import pytest
from django.urls import reverse

from billing.models import BillableItem, ItemStatus
from billing.services.rollup import period_close
from packages.models import InvoiceAction
from tests.factories import (
    AdminFactory,
    FinanceFactory,
    OperatorFactory,
    SubscriptionFactory,
    package_with_prices,
    subscription_with_overtime,
)
from tests.whmcs.fake_whmcs import FakeWhmcs
from whmcs.models import PushStatus, WhmcsClient, WhmcsPush
from whmcs.services import item_push, items_push

OCTOBER = dt.date(2026, 10, 1)
NOW = dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.UTC)
pytestmark = pytest.mark.django_db


@pytest.fixture
def whmcs(settings, time_machine):
    time_machine.move_to(NOW, tick=False)
    fake = FakeWhmcs().start()
    settings.WHMCS_API_URL = fake.url
    settings.WHMCS_IDENTIFIER = fake.identifier
    settings.WHMCS_SECRET = fake.secret
    settings.WHMCS_ACCESS_KEY = ""
    yield fake
    fake.stop()


def closed_october(*, invoice_action=InvoiceAction.NEXT_INVOICE, whmcs_client_id=7):
    """10 h at 500.00 EUR, 60.00 EUR per extra hour, 12.25 h used: a fee and 2.25 h overtime."""
    package = package_with_prices({"EUR": ("500.00", "60.00")})
    package.invoice_action = invoice_action
    package.save()
    subscription = subscription_with_overtime(package)
    if whmcs_client_id is not None:
        WhmcsClient.objects.create(client=subscription.client, whmcs_client_id=whmcs_client_id)
    period_close(month=OCTOBER)
    return subscription


def test_exportable_items_become_billable_items_and_are_marked_exported(whmcs):
    subscription = closed_october()

    assert items_push() == {PushStatus.PUSHED: 2}

    fee, overtime = BillableItem.objects.filter(subscription=subscription).order_by("kind")
    assert {fee.status, overtime.status} == {ItemStatus.EXPORTED}
    sent = {row["description"]: row for row in whmcs.billable_items}
    assert sent[f"{overtime.description} [item {overtime.pk}]"] == {
        "action": "AddBillableItem",
        "identifier": "api-identifier",
        "secret": "api-secret",
        "responsetype": "json",
        "clientid": "7",
        "description": f"{overtime.description} [item {overtime.pk}]",
        "amount": "135.00",
        "unit": "hours",
        "quantity": "2.25",
        "invoiceaction": "nextinvoice",
    }
    assert sent[f"{fee.description} [item {fee.pk}]"]["unit"] == "quantity"
    pushes = {push.item_id: push.billable_id for push in WhmcsPush.objects.all()}
    assert sorted(pushes.values()) == [1, 2]


def test_a_second_run_or_a_forced_retry_never_creates_a_second_billable_item(whmcs):
    closed_october()
    items_push()
    items_push()
    for push in WhmcsPush.objects.all():
        assert item_push(item_id=push.item_id, again=True) == ""  # exported: not exportable
    assert len(whmcs.billable_items) == 2


def test_bad_credentials_leave_the_items_pending_with_the_error(whmcs, settings):
    closed_october()
    settings.WHMCS_SECRET = "wrong"

    assert items_push() == {PushStatus.FAILED: 2}

    assert set(BillableItem.objects.values_list("status", flat=True)) == {ItemStatus.PENDING}
    assert set(WhmcsPush.objects.values_list("last_error", flat=True)) == {
        "WHMCS refused the credentials: Authentication Failed"
    }
    # Fixed: the next run pushes them.
    settings.WHMCS_SECRET = whmcs.secret
    assert items_push() == {PushStatus.PUSHED: 2}
    assert len(whmcs.billable_items) == 2


def test_an_unknown_whmcs_client_is_refused_and_shown(whmcs):
    closed_october(whmcs_client_id=99)
    assert items_push() == {PushStatus.FAILED: 2}
    assert set(WhmcsPush.objects.values_list("last_error", flat=True)) == {
        "WHMCS refused the item: Client ID Not Found"
    }
    assert whmcs.billable_items == []


def test_a_client_without_a_whmcs_id_is_not_sent(whmcs):
    subscription = closed_october(whmcs_client_id=None)
    assert items_push() == {PushStatus.FAILED: 2}
    assert whmcs.requests == []
    assert set(WhmcsPush.objects.values_list("last_error", flat=True)) == {
        f"{subscription.client} has no WHMCS client id: enter it under WHMCS clients."
    }


def test_an_answer_that_never_came_is_not_pushed_again_by_itself(whmcs, settings):
    closed_october()
    settings.WHMCS_TIMEOUT = (1, 1)
    whmcs.mode = "slow"  # WHMCS stores the item, then answers too late

    assert items_push() == {PushStatus.UNKNOWN: 2}
    assert set(WhmcsPush.objects.values_list("last_error", flat=True)) == {
        "WHMCS did not answer within 1 s."
    }
    whmcs.mode = ""
    assert items_push() == {}  # not retried: it may be in WHMCS already
    assert len(whmcs.billable_items) == 2
    assert set(BillableItem.objects.values_list("status", flat=True)) == {ItemStatus.PENDING}


def test_a_server_error_is_an_unknown_outcome(whmcs):
    closed_october()
    whmcs.mode = "error500"
    assert items_push() == {PushStatus.UNKNOWN: 2}


def test_whmcs_unreachable_is_retried_by_the_next_run(whmcs, settings):
    closed_october()
    with socket.socket() as closed_port:
        closed_port.bind(("127.0.0.1", 0))
        port = closed_port.getsockname()[1]
    settings.WHMCS_API_URL = f"http://127.0.0.1:{port}/includes/api.php"

    assert items_push() == {PushStatus.FAILED: 2}
    assert set(WhmcsPush.objects.values_list("last_error", flat=True)) == {
        "WHMCS could not be reached (connection refused)."
    }
    settings.WHMCS_API_URL = whmcs.url
    assert items_push() == {PushStatus.PUSHED: 2}


def test_the_due_date_action_sends_a_due_date(whmcs, settings):
    settings.WHMCS_DUE_DAYS = 14
    closed_october(invoice_action=InvoiceAction.DUE_DATE)
    items_push()
    assert {row["invoiceaction"] for row in whmcs.billable_items} == {"duedate"}
    assert {row["duedate"] for row in whmcs.billable_items} == {"2026-11-16"}


def test_the_due_date_counts_from_today_in_the_app_time_zone(whmcs, settings, time_machine):
    # given Tokyo's time zone, where 2 November has begun while it is 1 November in UTC
    settings.TIME_ZONE = "Asia/Tokyo"
    settings.WHMCS_DUE_DAYS = 14
    time_machine.move_to(dt.datetime(2026, 11, 1, 22, 0, tzinfo=dt.UTC), tick=False)
    closed_october(invoice_action=InvoiceAction.DUE_DATE)
    # when the items are pushed
    items_push()
    # then they are due 14 days after Tokyo's today
    assert {row["duedate"] for row in whmcs.billable_items} == {"2026-11-16"}


def test_items_of_an_open_month_wait(whmcs):
    closed_october()
    BillableItem.objects.update(status=ItemStatus.EXPORTED)
    subscription = SubscriptionFactory(package=package_with_prices({"EUR": ("0.00", "60.00")}))
    WhmcsClient.objects.create(client=subscription.client, whmcs_client_id=8)
    from billing.services.items import adjustment_create

    adjustment_create(
        client=subscription.client,
        month=dt.date(2026, 11, 1),
        amount=Decimal("-10.00"),
        reason="Credit",
        actor=FinanceFactory(),
    )
    assert items_push() == {}
    assert whmcs.requests == []


def test_not_configured_refuses_clearly(settings):
    settings.WHMCS_API_URL = ""
    from whmcs.services import WhmcsNotConfigured

    with pytest.raises(WhmcsNotConfigured, match="WHMCS is not configured"):
        item_push(item_id=1)


@pytest.mark.parametrize(
    ("role", "expected"), [("operator", 403), ("finance", 200), ("admin", 200)]
)
def test_finance_and_administrators_see_the_push_log(client, role, expected, whmcs):
    user = {"operator": OperatorFactory, "finance": FinanceFactory, "admin": AdminFactory}[role]
    client.force_login(user())
    assert client.get(reverse("admin:whmcs_whmcspush_changelist")).status_code == expected
    assert client.get(reverse("admin:whmcs_whmcsclient_changelist")).status_code == expected


def test_push_again_after_checking_whmcs(client, whmcs, settings):
    closed_october()
    settings.WHMCS_TIMEOUT = (1, 1)
    whmcs.mode = "slow"
    items_push()
    whmcs.mode = ""
    whmcs.billable_items.clear()  # finance looked: WHMCS did not keep them
    settings.CELERY_TASK_ALWAYS_EAGER = True
    from supportbilling.celery import app

    app.conf.task_always_eager = True
    try:
        client.force_login(FinanceFactory())
        response = client.post(
            reverse("admin:whmcs_whmcspush_changelist"),
            {
                "action": "push_again",
                "_selected_action": list(WhmcsPush.objects.values_list("pk", flat=True)),
            },
        )
    finally:
        app.conf.task_always_eager = False
    assert response.status_code == 302
    assert set(WhmcsPush.objects.values_list("status", flat=True)) == {PushStatus.PUSHED}
    assert len(whmcs.billable_items) == 2
