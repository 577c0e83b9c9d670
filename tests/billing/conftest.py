"""Fixtures of the billing tests. ``world``, for the API tests: two clients in two currencies,
their subscriptions, tickets, entries and items, and one user of each role; time stands still
on 2026-10-20."""

import datetime as dt
from decimal import Decimal
from types import SimpleNamespace

import pytest
from djmoney.money import Money
from rest_framework.test import APIClient

from tests.factories import (
    AdminFactory,
    BillableItemFactory,
    ClientFactory,
    ClientUserFactory,
    FinanceFactory,
    OperatorFactory,
    SubscriptionFactory,
    TicketFactory,
    TimeEntryFactory,
    package_with_prices,
)


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    """Hashing a password the production way takes a third of a second; tests make many."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


NOW = dt.datetime(2026, 10, 20, 9, 0, tzinfo=dt.UTC)
ROLES = ["anonymous", "client", "operator", "finance", "administrator"]


@pytest.fixture
def world(db, time_machine):
    time_machine.move_to(NOW, tick=False)
    package = package_with_prices(
        {"EUR": ("500.00", "60.00"), "USD": ("550.00", "70.00")}, name="Gold"
    )
    acme = ClientFactory(name="ACME", currency="EUR")
    globex = ClientFactory(name="Globex", currency="USD")
    subscription = SubscriptionFactory(client=acme, package=package, start_date=dt.date(2026, 9, 1))
    other_subscription = SubscriptionFactory(
        client=globex, package=package, start_date=dt.date(2026, 9, 1)
    )
    ticket = TicketFactory(subscription=subscription, subject="Mail server down")
    other_ticket = TicketFactory(subscription=other_subscription, subject="Globex printer")
    operator = OperatorFactory(username="alice")
    entry = TimeEntryFactory(ticket=ticket, operator=operator, hours=Decimal("1.00"))
    other_entry = TimeEntryFactory(ticket=other_ticket, operator=operator)
    item = BillableItemFactory(subscription=subscription)
    other_item = BillableItemFactory(
        subscription=other_subscription,
        unit_price=Money(Decimal("550.00"), "USD"),
        amount=Money(Decimal("550.00"), "USD"),
    )
    users = {
        "anonymous": None,
        "client": ClientUserFactory(client=acme).user,
        "operator": operator,
        "finance": FinanceFactory(),
        "administrator": AdminFactory(),
    }
    return SimpleNamespace(
        package=package,
        acme=acme,
        globex=globex,
        subscription=subscription,
        other_subscription=other_subscription,
        ticket=ticket,
        other_ticket=other_ticket,
        entry=entry,
        other_entry=other_entry,
        item=item,
        other_item=other_item,
        users=users,
    )


def api_as(user) -> APIClient:
    api = APIClient()
    if user is not None:
        api.force_authenticate(user)
    return api
