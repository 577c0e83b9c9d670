"""Lists: pagination (50 a page, ?page_size= up to 500), filters, and query counts that do not
grow with the page."""

import datetime as dt
from decimal import Decimal

import pytest
from djmoney.money import Money

from customers.models import Client
from tests.api.conftest import api_as
from tests.factories import (
    BillableItemFactory,
    ClientFactory,
    SubscriptionFactory,
    TicketFactory,
    TimeEntryFactory,
)


def test_lists_are_paginated_fifty_a_page(world):
    # given 120 clients in all
    Client.objects.bulk_create(
        Client(name=f"Bulk {n}", email=f"b{n}@x.test", currency="EUR") for n in range(118)
    )
    api = api_as(world.users["finance"])
    # when the first page is read
    page = api.get("/api/v1/clients/").json()
    # then it holds 50 of 120 with a link to the next page
    assert set(page) == {"count", "next", "previous", "results"}
    assert (page["count"], len(page["results"]), page["previous"]) == (120, 50, None)
    assert page["next"].endswith("/api/v1/clients/?page=2")
    last = api.get("/api/v1/clients/?page=3").json()
    assert (len(last["results"]), last["next"]) == (20, None)
    assert api.get("/api/v1/clients/?page=4").status_code == 404


def test_page_size_goes_up_to_500(world):
    Client.objects.bulk_create(
        Client(name=f"Bulk {n}", email=f"b{n}@x.test", currency="EUR") for n in range(510)
    )
    api = api_as(world.users["finance"])
    assert len(api.get("/api/v1/clients/?page_size=120").json()["results"]) == 120
    assert len(api.get("/api/v1/clients/?page_size=5000").json()["results"]) == 500
    assert len(api.get("/api/v1/clients/?page_size=nonsense").json()["results"]) == 50


def _items(world):
    """October: ACME fee (pending), ACME overtime (exported); Globex fee (USD); September."""
    BillableItemFactory(
        subscription=world.subscription,
        kind="overtime",
        unit="hours",
        quantity=Decimal("2.25"),
        unit_price=Money(Decimal("60.00"), "EUR"),
        amount=Money(Decimal("135.00"), "EUR"),
        status="exported",
    )
    BillableItemFactory(subscription=world.subscription, period=dt.date(2026, 9, 1))


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("period=2026-10", {"fee EUR 500.00", "overtime EUR 135.00", "fee USD 550.00"}),
        ("period=2026-09", {"fee EUR 500.00"}),
        ("status=exported", {"overtime EUR 135.00"}),
        ("kind=overtime", {"overtime EUR 135.00"}),
        ("currency=USD", {"fee USD 550.00"}),
        ("client={globex}&period=2026-10", {"fee USD 550.00"}),
        ("period=2026-10&currency=EUR&status=pending", {"fee EUR 500.00"}),
    ],
)
def test_billable_item_filters(world, query, expected):
    _items(world)
    response = api_as(world.users["finance"]).get(
        "/api/v1/billable-items/?" + query.format(globex=world.globex.pk)
    )
    assert response.status_code == 200
    assert {
        f"{i['kind']} {i['currency']} {i['amount']}" for i in response.json()["results"]
    } == expected


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("period=2026-13", "period"),
        ("period=last", "period"),
        ("status=paid", "status"),
        ("kind=bonus", "kind"),
        ("currency=XXX", "currency"),
        ("client=abc", "client"),
        ("client=99999", "client"),
    ],
)
def test_billable_item_filters_refuse_what_they_cannot_read(world, query, field):
    response = api_as(world.users["finance"]).get("/api/v1/billable-items/?" + query)
    assert response.status_code == 400
    assert field in response.json()


def test_billable_item_reads_as_in_the_contract(world):
    item = api_as(world.users["finance"]).get(f"/api/v1/billable-items/{world.item.pk}/").json()
    assert item == {
        "id": world.item.pk,
        "client": world.acme.pk,
        "subscription": world.subscription.pk,
        "period": "2026-10",
        "kind": "fee",
        "description": "Support package 2026-10",
        "unit": "quantity",
        "quantity": "1.00",
        "unit_price": "500.00",
        "amount": "500.00",
        "currency": "EUR",
        "invoice_action": "next_invoice",
        "status": "pending",
        "created_at": "2026-10-20T09:00:00Z",
        # where it stands in the review window (docs/billing-rules.md): October is open
        "in_review": False,
        "held": False,
    }


def test_ticket_and_subscription_filters(world):
    api = api_as(world.users["operator"])
    TicketFactory(subscription=world.subscription, status="closed")
    by_client = api.get(f"/api/v1/tickets/?client={world.acme.pk}").json()
    assert by_client["count"] == 2
    closed = api.get(f"/api/v1/tickets/?client={world.acme.pk}&status=closed").json()
    assert [t["status"] for t in closed["results"]] == ["closed"]
    assert api.get("/api/v1/tickets/?status=lost").status_code == 400
    subscriptions = api.get(f"/api/v1/subscriptions/?client={world.globex.pk}").json()
    assert [s["id"] for s in subscriptions["results"]] == [world.other_subscription.pk]


def test_resources_read_as_in_the_contract(world):
    api = api_as(world.users["administrator"])
    assert api.get(f"/api/v1/packages/{world.package.pk}/").json() == {
        "id": world.package.pk,
        "name": "Gold",
        "billing_mode": "recurring",
        "included_hours": "10.00",
        "invoice_action": "next_invoice",
        "show_work_log": True,
        "active": True,
        "billing_increment": "0.25",
        "billing_rounding": "entry",
        "billing_minimum": "0.00",
        "prices": [
            {"currency": "EUR", "fee": "500.00", "hourly_rate": "60.00"},
            {"currency": "USD", "fee": "550.00", "hourly_rate": "70.00"},
        ],
    }
    assert api.get(f"/api/v1/clients/{world.acme.pk}/").json() == {
        "id": world.acme.pk,
        "name": "ACME",
        "email": world.acme.email,
        "currency": "EUR",
        "language": "",
        "active": True,
    }
    assert api.get(f"/api/v1/subscriptions/{world.subscription.pk}/").json() == {
        "id": world.subscription.pk,
        "client": world.acme.pk,
        "package": world.package.pk,
        "status": "active",
        "start_date": "2026-09-01",
        "end_date": None,
        "overage_policy": "bill",
        "overage_cap_hours": None,
        "client_cap_hours": None,
        "approved_extra_hours": "0.00",
        "topup_of": None,
        "expires_on": None,
    }
    ticket = api.get(f"/api/v1/tickets/{world.ticket.pk}/").json()
    assert {k: ticket[k] for k in ("client", "subscription", "subject", "status")} == {
        "client": world.acme.pk,
        "subscription": world.subscription.pk,
        "subject": "Mail server down",
        "status": "open",
    }
    assert (ticket["track_time"], ticket["hours_logged"]) == (True, "1.00")
    assert api.get(f"/api/v1/time-entries/{world.entry.pk}/").json() == {
        "id": world.entry.pk,
        "ticket": world.ticket.pk,
        "subscription": world.subscription.pk,
        "operator": "alice",
        "hours": "1.00",
        "work_date": "2026-10-14",
        "note": "Work",
        "billed": False,
        "no_charge": False,
        "no_charge_reason": "",
    }


def test_usage_of_a_recurring_subscription(world):
    TimeEntryFactory(ticket=world.ticket, hours=Decimal("11.25"), work_date=dt.date(2026, 10, 2))
    usage = api_as(world.users["client"]).get(
        f"/api/v1/subscriptions/{world.subscription.pk}/usage/?period=2026-10"
    )
    assert usage.json() == {
        "subscription": world.subscription.pk,
        "period": "2026-10",
        "billing_mode": "recurring",
        "included_hours": "10.00",
        "used_hours": "12.25",
        "logged_hours": "12.25",
        "billed_hours": "12.25",
        "no_charge_hours": "0.00",
        "remaining_hours": "0.00",
        "overtime_hours": "2.25",
        "currency": "EUR",
        "hourly_rate": "60.00",
        "fee": "500.00",
        "overtime_amount": "135.00",
        "closed": False,
        "overage_policy": "bill",
        "approved_hours": "0.00",
        "unapproved_hours": "0.00",
        "terms": "current",
        "block_hours_available": "0.00",
        "block_hours_used": "0.00",
        "blocks": [],
    }
    # the period defaults to the current month; a bad one is a 400
    api = api_as(world.users["client"])
    path = f"/api/v1/subscriptions/{world.subscription.pk}/usage/"
    assert api.get(path).json()["period"] == "2026-10"
    assert api.get(path + "?period=10-2026").status_code == 400


@pytest.mark.parametrize(
    "path",
    ["/api/v1/tickets/", "/api/v1/billable-items/", "/api/v1/subscriptions/", "/api/v1/packages/"],
)
def test_list_queries_do_not_grow_with_the_page(world, path, django_assert_max_num_queries):
    api = api_as(world.users["administrator"])
    api.get(path)  # warm caches (content types, sessions)
    for _ in range(30):
        subscription = SubscriptionFactory(client=ClientFactory())
        TimeEntryFactory(ticket=TicketFactory(subscription=subscription))
        BillableItemFactory(subscription=subscription)
    with django_assert_max_num_queries(4):
        response = api.get(path)
    assert response.json()["count"] >= 30
