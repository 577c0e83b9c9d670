"""Subscribing a client to a package: prices per currency and the one-time item."""

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from djmoney.money import Money

from billing.models import BillableItem, ItemKind
from billing.services.rollup import period_close
from packages.models import (
    BillingMode,
    PackagePrice,
    Subscription,
    SubscriptionStatus,
    SupportPackage,
)
from packages.services import package_create, subscription_create, subscription_status_set
from tests.factories import ClientFactory, SubscriptionFactory, TicketFactory, package_with_prices
from tickets.services import ticket_service_add

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def today(time_machine):
    time_machine.move_to(dt.datetime(2026, 11, 24, 10, 0, tzinfo=dt.UTC), tick=False)


def test_a_package_without_a_price_in_the_clients_currency_is_refused():
    # given a package priced in EUR only and a client billed in USD
    package = package_with_prices({"EUR": ("500.00", "60.00")}, name="Gold")
    client = ClientFactory(currency="USD")
    # when the client is subscribed
    with pytest.raises(ValidationError) as excinfo:
        subscription_create(client=client, package=package)
    # then it is refused, naming the currency, and nothing is written
    assert "Gold has no price in USD" in " ".join(excinfo.value.messages)
    assert not Subscription.objects.exists()
    assert not BillableItem.objects.exists()


def test_a_recurring_subscription_starts_today_and_bills_nothing_yet():
    client = ClientFactory(currency="USD")
    package = package_with_prices({"EUR": ("500.00", "60.00"), "USD": ("550.00", "65.00")})
    subscription = subscription_create(client=client, package=package)
    assert subscription.status == SubscriptionStatus.ACTIVE
    assert subscription.start_date == dt.date(2026, 11, 24)
    assert not BillableItem.objects.exists()


def test_a_one_time_package_bills_its_fee_when_subscribed():
    # given a 20 h bucket at 1,100.00 EUR
    package = package_with_prices(
        {"EUR": ("1100.00", "0.00")},
        name="20 hours block",
        billing_mode=BillingMode.ONE_TIME,
        included_hours=Decimal("20"),
    )
    # when a client subscribes from 10 November
    subscription = subscription_create(
        client=ClientFactory(currency="EUR"), package=package, start_date=dt.date(2026, 11, 10)
    )
    # then one one_time item of the fee is waiting for the billing system
    item = BillableItem.objects.get()
    assert item.kind == ItemKind.ONE_TIME
    assert item.subscription == subscription
    assert item.client == subscription.client
    assert item.period == dt.date(2026, 11, 1)
    assert item.amount == Money("1100.00", "EUR")
    assert item.quantity == Decimal("1.00")
    assert item.invoice_action == package.invoice_action
    assert item.status == "pending"


def test_a_one_time_package_is_billed_once_per_subscription():
    package = package_with_prices({"EUR": ("100.00", "0.00")}, billing_mode=BillingMode.ONE_TIME)
    subscription = subscription_create(client=ClientFactory(), package=package)
    item = BillableItem.objects.get()
    with pytest.raises(IntegrityError), transaction.atomic():
        BillableItem.objects.create(
            client=item.client,
            subscription=subscription,
            period=item.period,
            kind=ItemKind.ONE_TIME,
            description="again",
            quantity=1,
            unit_price=item.unit_price,
            amount=item.amount,
            invoice_action=item.invoice_action,
        )


def test_inactive_clients_and_withdrawn_packages_cannot_subscribe():
    package = package_with_prices()
    with pytest.raises(ValidationError, match="client is not active"):
        subscription_create(client=ClientFactory(active=False), package=package)
    package.active = False
    package.save()
    with pytest.raises(ValidationError, match="no longer offered"):
        subscription_create(client=ClientFactory(), package=package)


def test_subscribing_from_a_ticket_links_the_ticket():
    ticket = TicketFactory(subscription=None)
    subscription = ticket_service_add(ticket=ticket, package=package_with_prices(), actor=None)
    ticket.refresh_from_db()
    assert ticket.subscription == subscription


def test_prices_are_unique_per_package_and_currency():
    package = package_with_prices({"EUR": ("500.00", "60.00")})
    with pytest.raises(IntegrityError), transaction.atomic():
        PackagePrice.objects.create(
            package=package, fee=Money("1", "EUR"), hourly_rate=Money("1", "EUR")
        )


def test_terminating_ends_the_subscription_today_and_cannot_be_undone():
    subscription = subscription_create(client=ClientFactory(), package=package_with_prices())
    subscription_status_set(subscription=subscription, status=SubscriptionStatus.TERMINATED)
    subscription.refresh_from_db()
    assert subscription.end_date == dt.date(2026, 11, 24)
    with pytest.raises(ValidationError, match="cannot be reopened"):
        subscription_status_set(subscription=subscription, status=SubscriptionStatus.ACTIVE)
    with pytest.raises(ValidationError, match="depleted by itself"):
        subscription_status_set(subscription=subscription, status=SubscriptionStatus.DEPLETED)


def test_a_subscription_cannot_start_in_a_closed_month():
    # given billing began in October and October is closed (its rollup ran)
    SubscriptionFactory(start_date=dt.date(2026, 10, 1))
    period_close(month=dt.date(2026, 10, 1))
    package = package_with_prices({"EUR": ("100.00", "0.00")}, billing_mode=BillingMode.ONE_TIME)
    # then a subscription starting in October, which would never be billed, is refused
    with pytest.raises(ValidationError, match="2026-10 is closed"):
        subscription_create(
            client=ClientFactory(), package=package, start_date=dt.date(2026, 10, 20)
        )
    assert Subscription.objects.count() == 1
    assert not BillableItem.objects.filter(kind=ItemKind.ONE_TIME).exists()


def test_a_price_form_refuses_negative_amounts_with_a_message():
    # given the form the admin builds for a price (a negative hourly rate)
    from django.forms import modelform_factory

    form_class = modelform_factory(PackagePrice, fields=["package", "fee", "hourly_rate"])
    package = package_with_prices({"USD": ("1.00", "1.00")})
    data = {"package": package.pk, "fee_0": "500.00", "fee_1": "EUR"}
    refused = form_class(data={**data, "hourly_rate_0": "-5.00", "hourly_rate_1": "EUR"})
    # then it is refused with a message, not a crash
    assert not refused.is_valid()
    assert "hourly_rate" in refused.errors
    accepted = form_class(data={**data, "hourly_rate_0": "60.00", "hourly_rate_1": "EUR"})
    assert accepted.is_valid(), accepted.errors
    assert accepted.save().hourly_rate == Money("60.00", "EUR")


@pytest.mark.parametrize(
    ("currency", "fee", "hourly_rate", "message"),
    [
        ("JPY", "50000", "1002.50", "JPY prices are whole numbers: 1002.50 has more."),
        ("EUR", "500.005", "60.00", "EUR prices have at most 2 decimal places: 500.005 has more."),
    ],
)
def test_a_price_is_in_whole_minor_units_of_its_currency(
    settings, currency, fee, hourly_rate, message
):
    # given a deployment that prices in yen too
    settings.CURRENCIES = (*settings.CURRENCIES, "JPY")
    prices = [{"currency": currency, "fee": Decimal(fee), "hourly_rate": Decimal(hourly_rate)}]
    fields = {"name": "Yen support", "billing_mode": BillingMode.RECURRING, "included_hours": 10}
    # when a price has a fraction of the currency's minor unit, it is refused, nothing written
    with pytest.raises(ValidationError) as refused:
        package_create(fields=fields, prices=prices)
    assert refused.value.message_dict == {"prices": [message]}
    assert not SupportPackage.objects.filter(name="Yen support").exists()
    # and the same price in whole units is taken
    prices[0]["hourly_rate"], prices[0]["fee"] = Decimal("1002"), Decimal("500.00")
    package = package_create(fields=fields, prices=prices)
    assert package.prices.get().hourly_rate == Money("1002", currency)


def test_a_bucket_stores_its_size_when_bought_and_keeps_it():
    # given a 20 h bucket package and a recurring one
    bucket = package_with_prices(
        {"EUR": ("1100.00", "0.00")},
        billing_mode=BillingMode.ONE_TIME,
        included_hours=Decimal("20"),
    )
    monthly = package_with_prices({"EUR": ("500.00", "60.00")}, included_hours=Decimal("10"))
    client = ClientFactory(currency="EUR")
    # when both are bought and the bucket package then shrinks
    subscription = subscription_create(client=client, package=bucket)
    recurring = subscription_create(client=client, package=monthly)
    bucket.included_hours = Decimal("5")
    bucket.save(update_fields=["included_hours"])
    # then the bucket keeps the 20 h bought, as its stored terms say; a monthly one has none
    subscription.refresh_from_db()
    assert subscription.bucket_hours == Decimal("20.00")
    assert subscription.hours_included == Decimal("20.00")
    assert subscription.billed_terms.get().included_hours == subscription.bucket_hours
    recurring.refresh_from_db()
    assert recurring.bucket_hours is None
    assert recurring.hours_included == Decimal("10.00")


def test_a_bucket_without_hours_cannot_be_bought():
    package = package_with_prices(
        {"EUR": ("0.00", "0.00")},
        name="Empty",
        billing_mode=BillingMode.ONE_TIME,
        included_hours=Decimal("0"),
    )
    with pytest.raises(ValidationError, match="Empty has no hours to sell"):
        subscription_create(client=ClientFactory(currency="EUR"), package=package)
    assert not Subscription.objects.exists()


@pytest.mark.parametrize("hours", ["0", "-1"])
def test_the_database_refuses_a_bucket_of_no_hours(hours):
    subscription = SubscriptionFactory()
    subscription.bucket_hours = Decimal(hours)
    with pytest.raises(IntegrityError), transaction.atomic():
        subscription.save(update_fields=["bucket_hours"])
