"""The catalogue's and customers' domain events arrive inside the transaction of the change:
what billing and tickets write for them (the money audit, a bucket's terms and item, the
subscription's trail) commits with the change, and a receiver that fails undoes it."""

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from billing.models import BillableItem, BilledTerms, BillingAction, BillingEvent
from customers.models import Client
from customers.services import client_update
from customers.signals import client_changed
from packages.models import BillingMode, Subscription
from packages.services import subscription_create
from packages.signals import subscription_created
from tests.factories import ClientFactory, TicketFactory, package_with_prices
from tickets.models import AuditAction, AuditEvent
from tickets.services import ticket_service_add

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def today(time_machine):
    time_machine.move_to(dt.datetime(2026, 11, 24, 10, 0, tzinfo=dt.UTC), tick=False)


class ReceiverFailed(Exception):
    pass


@pytest.fixture
def failing_receiver():
    """Connects a receiver that fails after the product's own ones to ``signal``."""
    connected = []

    def connect(signal):
        def fail(sender, **kwargs):
            raise ReceiverFailed

        signal.connect(fail, weak=False, dispatch_uid="test.failing_receiver")
        connected.append(signal)

    yield connect
    for signal in connected:
        signal.disconnect(dispatch_uid="test.failing_receiver")


def test_a_bucket_sale_writes_its_terms_item_and_trail_with_the_subscription():
    package = package_with_prices(
        {"EUR": ("900.00", "0.00")},
        billing_mode=BillingMode.ONE_TIME,
        included_hours=Decimal("10.00"),
    )
    subscription = subscription_create(client=ClientFactory(currency="EUR"), package=package)
    terms = BilledTerms.objects.get(subscription=subscription)
    assert (terms.included_hours, terms.fee.amount) == (Decimal("10.00"), Decimal("900.00"))
    assert BillableItem.objects.get(subscription=subscription).amount.amount == Decimal("900.00")
    assert AuditEvent.objects.filter(
        subscription=subscription, action=AuditAction.SERVICE_ADDED
    ).exists()


def test_a_sale_whose_receiver_fails_leaves_nothing_behind(failing_receiver):
    # given a receiver of subscription_created that fails after billing's and tickets' ones
    failing_receiver(subscription_created)
    package = package_with_prices(
        {"EUR": ("900.00", "0.00")},
        billing_mode=BillingMode.ONE_TIME,
        included_hours=Decimal("10.00"),
    )
    # when a bucket is sold
    with pytest.raises(ReceiverFailed):
        subscription_create(client=ClientFactory(currency="EUR"), package=package)
    # then neither the sale nor what the receivers wrote for it remains
    assert not Subscription.objects.exists()
    assert not BilledTerms.objects.exists()
    assert not BillableItem.objects.exists()
    assert not AuditEvent.objects.exists()


def test_a_client_change_whose_audit_fails_is_not_saved(failing_receiver):
    client = ClientFactory(name="Acme")
    failing_receiver(client_changed)
    with pytest.raises(ReceiverFailed):
        client_update(client=client, fields={"name": "Acme Ltd"})
    assert Client.objects.get(pk=client.pk).name == "Acme"
    assert not BillingEvent.objects.filter(action=BillingAction.CLIENT_CHANGED).exists()


def test_a_service_sold_from_a_ticket_is_on_the_tickets_trail_and_takes_its_time():
    ticket = TicketFactory(subscription=None)
    subscription = ticket_service_add(ticket=ticket, package=package_with_prices(), actor=None)
    ticket.refresh_from_db()
    assert ticket.subscription == subscription
    actions = list(
        AuditEvent.objects.filter(ticket=ticket).order_by("id").values_list("action", flat=True)
    )
    assert actions == [AuditAction.SERVICE_ADDED, AuditAction.SUBSCRIPTION_LINKED]


def test_a_refused_sale_from_a_ticket_leaves_the_ticket_as_it_was():
    ticket = TicketFactory(subscription=None, client=ClientFactory(currency="USD"))
    with pytest.raises(ValidationError, match="no price in USD"):
        ticket_service_add(
            ticket=ticket, package=package_with_prices({"EUR": ("1.00", "1.00")}), actor=None
        )
    ticket.refresh_from_db()
    assert ticket.subscription is None
    assert not AuditEvent.objects.filter(ticket=ticket).exists()
