"""The subscription admin adds and changes subscriptions through the billing services."""

import datetime as dt

import pytest
from django.urls import reverse

from billing.models import BillableItem
from packages.models import BillingMode, Subscription, SubscriptionStatus
from tests.factories import (
    AdminFactory,
    ClientFactory,
    OperatorFactory,
    SubscriptionFactory,
    package_with_prices,
)
from tickets.models import AuditAction, AuditEvent

pytestmark = pytest.mark.django_db
ADD = reverse("admin:packages_subscription_add")


@pytest.fixture(autouse=True)
def november(time_machine):
    time_machine.move_to(dt.datetime(2026, 11, 24, 10, 0, tzinfo=dt.UTC), tick=False)


def add(http, **fields):
    return http.post(ADD, {"start_date": "2026-11-24", **fields})


def test_an_operator_adds_a_bucket_and_its_fee_is_billed(client):
    # given an operator and a one-time package priced in the client's currency
    operator = OperatorFactory()
    client.force_login(operator)
    acme = ClientFactory(currency="EUR")
    bucket = package_with_prices(
        {"EUR": ("1100.00", "0.00")}, billing_mode=BillingMode.ONE_TIME, name="20 h"
    )
    # when the operator adds the subscription in the admin
    response = add(client, client=acme.pk, package=bucket.pk)
    # then it exists, its one-time item is billed and the audit trail says who added it
    assert response.status_code == 302
    subscription = Subscription.objects.get(client=acme)
    item = BillableItem.objects.get(subscription=subscription)
    assert (item.kind, str(item.amount.amount), str(item.amount.currency)) == (
        "one_time",
        "1100.00",
        "EUR",
    )
    event = AuditEvent.objects.get(subscription=subscription, action=AuditAction.SERVICE_ADDED)
    assert event.actor == operator


def test_a_package_without_a_price_in_the_clients_currency_is_refused_on_the_form(client):
    client.force_login(AdminFactory())
    globex = ClientFactory(currency="USD")
    euro_only = package_with_prices({"EUR": ("500.00", "60.00")}, name="Gold")
    response = add(client, client=globex.pk, package=euro_only.pk)
    assert response.status_code == 200
    assert "has no price in USD" in response.content.decode()
    assert not Subscription.objects.exists()


def test_suspending_goes_through_the_service_and_depleted_cannot_be_chosen(client):
    admin_user = AdminFactory()
    client.force_login(admin_user)
    subscription = SubscriptionFactory()
    change = reverse("admin:packages_subscription_change", args=[subscription.pk])
    # when an administrator suspends it
    assert client.post(change, {"status": "suspended"}).status_code == 302
    subscription.refresh_from_db()
    assert subscription.status == SubscriptionStatus.SUSPENDED
    assert AuditEvent.objects.filter(
        subscription=subscription, action=AuditAction.SUBSCRIPTION_STATUS, actor=admin_user
    ).exists()
    # and tries to mark it depleted by hand
    response = client.post(change, {"status": "depleted"})
    assert response.status_code == 200
    assert "becomes depleted by itself" in response.content.decode()
    subscription.refresh_from_db()
    assert subscription.status == SubscriptionStatus.SUSPENDED


def test_terminating_sets_the_end_date(client):
    client.force_login(AdminFactory())
    subscription = SubscriptionFactory(start_date=dt.date(2026, 1, 1))
    change = reverse("admin:packages_subscription_change", args=[subscription.pk])
    assert client.post(change, {"status": "terminated"}).status_code == 302
    subscription.refresh_from_db()
    assert subscription.end_date == dt.date(2026, 11, 24)


def test_staff_set_the_overage_policy_on_the_subscription_page(client):
    # given an administrator on a monthly subscription's page
    client.force_login(AdminFactory())
    subscription = SubscriptionFactory(start_date=dt.date(2026, 11, 1))
    url = reverse("admin:packages_subscription_change", args=[subscription.pk])
    form = {"status": "active", "overage_policy": "cap"}
    # when a cap off the quarter-hour step is typed, it is refused and nothing changes
    response = client.post(url, {**form, "overage_cap_hours": "1.10"})
    assert response.status_code == 200
    assert "Hours must be in steps of 0.25." in response.content.decode()
    subscription.refresh_from_db()
    assert subscription.overage_policy == "bill"
    # when the cap policy with 2 h is saved
    response = client.post(url, {**form, "overage_cap_hours": "2"})
    assert response.status_code == 302
    subscription.refresh_from_db()
    assert (subscription.overage_policy, str(subscription.overage_cap_hours)) == ("cap", "2.00")
    event = AuditEvent.objects.get(subscription=subscription, action=AuditAction.OVERAGE_POLICY)
    assert event.detail == {"policy": ["bill", "cap"], "cap_hours": ["", "2.00"]}


def test_an_operator_sells_a_top_up_block_and_a_foreign_target_is_refused_on_the_form(client):
    client.force_login(OperatorFactory())
    monthly = SubscriptionFactory(start_date=dt.date(2026, 11, 1))
    other = SubscriptionFactory(start_date=dt.date(2026, 11, 1))
    block = package_with_prices(
        {"EUR": ("400.00", "0.00")}, billing_mode=BillingMode.ONE_TIME, name="Block 10 h"
    )
    fields = dict(client=monthly.client.pk, package=block.pk, expires_on="2027-03-31")
    # another client's subscription: the form says why, nothing is written
    response = add(client, topup_of=other.pk, **fields)
    assert response.status_code == 200
    assert "belongs to another client" in response.content.decode()
    assert not Subscription.objects.filter(topup_of__isnull=False).exists()
    # its own client's monthly subscription: sold, with its expiry, and billed as one-time
    assert add(client, topup_of=monthly.pk, **fields).status_code == 302
    sold = Subscription.objects.get(topup_of=monthly)
    assert sold.expires_on == dt.date(2027, 3, 31)
    assert BillableItem.objects.get(subscription=sold).kind == "one_time"
    # its change page shows what it tops up
    page = client.get(reverse("admin:packages_subscription_change", args=[sold.pk]))
    assert page.status_code == 200 and "2027" in page.content.decode()
