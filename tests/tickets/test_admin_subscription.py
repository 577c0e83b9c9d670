"""A ticket without a subscription: choose one of the client's active subscriptions or add a
support service right on the ticket page; switch time tracking off and back."""

import datetime as dt
import html as html_lib
import re
from decimal import Decimal

import pytest
from django.urls import reverse

from billing.models import BillableItem
from packages.models import BillingMode, Subscription, SubscriptionStatus
from tests.factories import (
    ClientFactory,
    OperatorFactory,
    SubscriptionFactory,
    TicketFactory,
    package_with_prices,
)
from tickets.models import AuditAction, AuditEvent, TimeEntry

pytestmark = pytest.mark.django_db
NOW = dt.datetime(2026, 11, 20, 10, 0, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def frozen(time_machine):
    time_machine.move_to(NOW, tick=False)


@pytest.fixture
def operator(client):
    user = OperatorFactory()
    client.force_login(user)
    return user


@pytest.fixture
def acme():
    return ClientFactory(name="Acme", currency="EUR")


@pytest.fixture
def ticket(acme):
    return TicketFactory(client=acme, subscription=None, subject="New laptop")


def ticket_page(client, ticket):
    response = client.get(reverse("admin:tickets_ticket_change", args=[ticket.pk]))
    return response.content.decode()


def text(html: str) -> str:
    return re.sub(r"\s+", " ", html_lib.unescape(re.sub(r"<[^>]+>", " ", html)))


def service_url(ticket):
    return reverse("admin:tickets_ticket_service_add", args=[ticket.pk])


def test_without_subscription_the_page_offers_the_clients_subscriptions(client, operator, acme):
    # given a client with an active, a suspended and a terminated subscription
    active = SubscriptionFactory(client=acme, package=package_with_prices(name="Gold"))
    suspended = SubscriptionFactory(
        client=acme, package=package_with_prices(name="Silver"), status=SubscriptionStatus.SUSPENDED
    )
    terminated = SubscriptionFactory(
        client=acme, package=package_with_prices(name="Bronze"), status="terminated"
    )
    ticket = TicketFactory(client=acme, subscription=None)
    html = ticket_page(client, ticket)
    # then all are listed, only the active one can be chosen
    assert "No subscription yet" in text(html)
    assert f'value="{active.pk}">' in html
    assert f'value="{suspended.pk}" disabled>' in html
    assert f'value="{terminated.pk}" disabled>' in html
    assert "Silver" in text(html) and "suspended" in text(html)


def test_choose_an_active_subscription(client, operator, acme, ticket):
    subscription = SubscriptionFactory(client=acme)
    response = client.post(
        reverse("admin:tickets_ticket_subscription", args=[ticket.pk]),
        {"subscription": subscription.pk},
    )
    assert response.status_code == 302
    ticket.refresh_from_db()
    assert ticket.subscription == subscription
    assert AuditEvent.objects.filter(ticket=ticket, action=AuditAction.SUBSCRIPTION_LINKED).exists()


@pytest.mark.parametrize("status", ["suspended", "terminated"])
def test_an_inactive_subscription_cannot_be_chosen(client, operator, acme, ticket, status):
    subscription = SubscriptionFactory(client=acme, status=status)
    response = client.post(
        reverse("admin:tickets_ticket_subscription", args=[ticket.pk]),
        {"subscription": subscription.pk},
    )
    assert response.status_code == 400
    assert f"That subscription is {status}; choose an active one." in text(
        response.content.decode()
    )
    ticket.refresh_from_db()
    assert ticket.subscription is None


@pytest.mark.parametrize("value", ["", "abc"])
def test_no_choice_is_a_message(client, operator, ticket, value):
    response = client.post(
        reverse("admin:tickets_ticket_subscription", args=[ticket.pk]), {"subscription": value}
    )
    assert response.status_code == 400
    assert "Subscription:" in text(response.content.decode())


def test_another_clients_subscription_cannot_be_chosen(client, operator, ticket):
    foreign = SubscriptionFactory()
    response = client.post(
        reverse("admin:tickets_ticket_subscription", args=[ticket.pk]),
        {"subscription": foreign.pk},
    )
    assert response.status_code == 400
    assert "That subscription belongs to another client." in text(response.content.decode())
    ticket.refresh_from_db()
    assert ticket.subscription_id != foreign.pk


def test_add_a_support_service_from_the_ticket(client, operator, acme, ticket):
    # given an active recurring package priced in the client's currency
    gold = package_with_prices({"EUR": ("500.00", "60.00")}, name="Gold")
    package_with_prices(name="Retired", active=False)
    html = ticket_page(client, ticket)
    assert f'<option value="{gold.pk}"' in html
    assert "Retired" not in text(html)
    # when the operator adds it from the ticket
    response = client.post(service_url(ticket), {"package": gold.pk})
    # then the subscription exists, is linked, and time can be logged right away
    assert response.status_code == 302
    subscription = Subscription.objects.get(client=acme)
    assert (subscription.package, subscription.status) == (gold, SubscriptionStatus.ACTIVE)
    ticket.refresh_from_db()
    assert ticket.subscription == subscription
    actions = list(AuditEvent.objects.filter(ticket=ticket).values_list("action", flat=True))
    assert actions == [AuditAction.SERVICE_ADDED, AuditAction.SUBSCRIPTION_LINKED]
    assert "Gold (active) - 10 of 10 h left in 2026-11" in text(ticket_page(client, ticket))


def test_adding_a_bucket_bills_its_fee(client, operator, acme, ticket):
    bucket = package_with_prices(
        {"EUR": ("900.00", "0.00")},
        name="20 h bucket",
        billing_mode=BillingMode.ONE_TIME,
        included_hours=Decimal("20.00"),
    )
    client.post(service_url(ticket), {"package": bucket.pk})
    item = BillableItem.objects.get(client=acme)
    assert (item.kind, item.amount.amount) == ("one_time", Decimal("900.00"))


def test_a_package_without_the_clients_currency_is_refused(client, operator, acme, ticket):
    dollars_only = package_with_prices({"USD": ("500.00", "60.00")}, name="US Gold")
    response = client.post(service_url(ticket), {"package": dollars_only.pk})
    assert response.status_code == 400
    assert "The package US Gold has no price in EUR, the client's currency." in text(
        response.content.decode()
    )
    assert f'<option value="{dollars_only.pk}" selected>' in response.content.decode()
    assert not Subscription.objects.filter(client=acme).exists()


def test_an_unknown_package_is_a_message(client, operator, ticket):
    response = client.post(service_url(ticket), {"package": "99999"})
    assert response.status_code == 400
    assert "Choose one of the packages offered." in text(response.content.decode())


def test_switch_tracking_off_and_back(client, operator):
    ticket = TicketFactory()
    # when tracking is switched off the page is a plain helpdesk ticket
    response = client.post(
        reverse("admin:tickets_ticket_tracking", args=[ticket.pk]), {"track_time": "off"}
    )
    assert response.status_code == 302
    html = ticket_page(client, ticket)
    assert "This ticket does not track time." in html
    assert 'id="log-form"' not in html and 'id="timer-start"' not in html
    # and time cannot be logged by a forged post either
    response = client.post(reverse("admin:tickets_ticket_log", args=[ticket.pk]), {"hours": "1"})
    assert response.status_code == 400
    assert not TimeEntry.objects.exists()
    # switched back on, the time panel returns
    client.post(reverse("admin:tickets_ticket_tracking", args=[ticket.pk]), {"track_time": "on"})
    assert 'id="log-form"' in ticket_page(client, ticket)
    switches = AuditEvent.objects.filter(action=AuditAction.TRACKING_SWITCHED)
    assert [e.detail["track_time"] for e in switches] == [False, True]
