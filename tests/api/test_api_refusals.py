"""Every refusal of docs/api.md with its status code and message; a client user never sees another
client's objects (404)."""

import datetime as dt
from decimal import Decimal

import pytest
from django.contrib.auth.models import User

from billing.models import BillableItem
from billing.services.rollup import period_close
from packages.models import SubscriptionStatus
from tests.api.conftest import api_as
from tests.factories import (
    PASSWORD,
    ClientFactory,
    SubscriptionFactory,
    TicketFactory,
    TimeEntryFactory,
    package_with_prices,
)
from tickets.models import MESSAGE_BODY_MAX_LENGTH, Ticket


def log_time(world, body, ticket=None, role="operator"):
    ticket = ticket or world.ticket
    return api_as(world.users[role]).post(
        f"/api/v1/tickets/{ticket.pk}/time-entries/", body, format="json"
    )


# --- authentication --------------------------------------------------------------------


def test_anonymous_gets_401_with_a_detail(world):
    response = api_as(None).get("/api/v1/subscriptions/")
    assert response.status_code == 401
    assert response.json() == {"detail": "Authentication credentials were not provided."}


def test_token_from_username_and_password_opens_the_api(world):
    # given an operator's username and password
    api = api_as(None)
    response = api.post(
        "/api/v1/auth/token/", {"username": "alice", "password": PASSWORD}, format="json"
    )
    # then a token answers, and the token authenticates
    assert response.status_code == 200
    token = response.json()["token"]
    api.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert api.get("/api/v1/tickets/").status_code == 200


def test_token_refused_for_a_wrong_password(world):
    response = api_as(None).post(
        "/api/v1/auth/token/", {"username": "alice", "password": "nope"}, format="json"
    )
    assert response.status_code == 400
    # the refusal of the request as a whole is a "detail", as everywhere in the API
    assert response.json() == {"detail": "Unable to log in with provided credentials."}


def test_a_bad_token_is_401(world):
    api = api_as(None)
    api.credentials(HTTP_AUTHORIZATION="Token not-a-token")
    assert api.get("/api/v1/tickets/").status_code == 401


# --- time entries ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hours", "message"),
    [
        ("0.30", "Hours must be in steps of 0.25 (15 minutes), for example 0.25, 0.5 or 1.75."),
        ("0", "Hours must be more than zero."),
        ("-1", "Enter hours as 1.25, 1:15 or 75m."),
        ("24.25", "One entry can hold at most 24 hours."),
        ("lots", "Enter hours as 1.25, 1:15 or 75m."),
        (0.1, "Hours must be in steps of 0.25 (15 minutes), for example 0.25, 0.5 or 1.75."),
        (True, 'Enter hours as a decimal string, e.g. "1.25".'),
    ],
)
def test_hours_refused(world, hours, message):
    response = log_time(world, {"hours": hours})
    assert response.status_code == 400
    assert response.json() == {"hours": [message]}


def test_hours_as_a_json_number_is_read_exactly(world):
    response = log_time(world, {"hours": 1.25})
    assert response.status_code == 201
    assert response.json()["hours"] == "1.25"


def test_a_ticket_that_does_not_track_time_refuses_it(world):
    ticket = TicketFactory(subscription=world.subscription, track_time=False)
    response = log_time(world, {"hours": "1.00"}, ticket=ticket)
    assert response.status_code == 400
    assert response.json() == {"detail": "This ticket does not track time."}


def test_a_ticket_without_subscription_refuses_time(world):
    ticket = TicketFactory(subscription=None, client=world.acme)
    response = log_time(world, {"hours": "1.00"}, ticket=ticket)
    assert response.status_code == 400
    assert "This ticket has no subscription" in response.json()["detail"]


def test_a_suspended_subscription_refuses_time(world):
    world.subscription.status = SubscriptionStatus.SUSPENDED
    world.subscription.save()
    response = log_time(world, {"hours": "1.00"})
    assert response.status_code == 400
    assert response.json() == {
        "detail": "The subscription is suspended: time can only be logged on an active "
        "subscription."
    }


def test_a_closed_period_refuses_new_changed_and_deleted_time(world):
    # given September is closed, with an entry in it
    september_entry = TimeEntryFactory(ticket=world.ticket, work_date=dt.date(2026, 9, 10))
    period_close(month=dt.date(2026, 9, 1))
    closed = (
        "2026-09 is closed: its time can no longer be logged, changed or deleted. "
        "Finance can enter an adjustment instead."
    )
    api = api_as(world.users["operator"])
    # when time is logged, changed or deleted in September, then each is refused
    response = log_time(world, {"hours": "1.00", "work_date": "2026-09-30"})
    assert (response.status_code, response.json()) == (400, {"detail": closed})
    response = api.patch(
        f"/api/v1/time-entries/{september_entry.pk}/", {"hours": "2.00"}, format="json"
    )
    assert (response.status_code, response.json()) == (400, {"detail": closed})
    response = api.delete(f"/api/v1/time-entries/{september_entry.pk}/")
    assert (response.status_code, response.json()) == (400, {"detail": closed})


def test_a_bucket_cannot_be_overdrawn(world):
    bucket = package_with_prices(
        {"EUR": ("300.00", "0.00")}, billing_mode="one_time", included_hours=Decimal("2.00")
    )
    subscription = SubscriptionFactory(
        client=world.acme, package=bucket, start_date=dt.date(2026, 10, 1)
    )
    ticket = TicketFactory(subscription=subscription)
    assert log_time(world, {"hours": "1.50"}, ticket=ticket).status_code == 201
    response = log_time(world, {"hours": "0.75"}, ticket=ticket)
    assert response.status_code == 400
    assert response.json() == {"detail": "Only 0.50 h left in this one-time package."}


def test_future_work_date_is_refused(world):
    response = log_time(world, {"hours": "1.00", "work_date": "2026-10-21"})
    assert (response.status_code, response.json()) == (
        400,
        {"detail": "The work date cannot be in the future."},
    )


# --- subscriptions ---------------------------------------------------------------------


def test_subscription_without_a_price_in_the_clients_currency_is_refused(world):
    pounds = ClientFactory(currency="GBP", name="Brit Ltd")
    response = api_as(world.users["operator"]).post(
        "/api/v1/subscriptions/", {"client": pounds.pk, "package": world.package.pk}, format="json"
    )
    assert response.status_code == 400
    assert response.json() == {
        "detail": "The package Gold has no price in GBP, the client's currency."
    }


def test_a_one_time_package_with_no_hours_is_not_sold(world):
    empty = package_with_prices(
        {"EUR": ("0.00", "0.00")}, name="Empty", billing_mode="one_time", included_hours=Decimal(0)
    )
    response = api_as(world.users["operator"]).post(
        "/api/v1/subscriptions/", {"client": world.acme.pk, "package": empty.pk}, format="json"
    )
    assert response.status_code == 400
    assert response.json() == {"detail": "The one-time package Empty has no hours to sell."}
    assert not empty.subscriptions.exists()


def test_a_terminated_subscription_cannot_be_reopened(world):
    api = api_as(world.users["administrator"])
    path = f"/api/v1/subscriptions/{world.subscription.pk}/"
    assert api.patch(path, {"status": "terminated"}, format="json").json()["end_date"] == (
        "2026-10-20"
    )
    response = api.patch(path, {"status": "active"}, format="json")
    assert response.status_code == 400
    assert response.json() == {"detail": "A terminated subscription cannot be reopened."}


def test_unknown_subscription_status_is_refused(world):
    response = api_as(world.users["administrator"]).patch(
        f"/api/v1/subscriptions/{world.subscription.pk}/", {"status": "paused"}, format="json"
    )
    assert response.status_code == 400
    assert response.json() == {"status": ['"paused" is not a valid choice.']}


# --- rollups and items -----------------------------------------------------------------


def test_a_period_that_has_not_ended_cannot_be_closed(world):
    response = api_as(world.users["finance"]).post(
        "/api/v1/rollups/", {"period": "2026-10"}, format="json"
    )
    assert response.status_code == 400
    assert response.json() == {
        "detail": "2026-10 has not ended yet; it can be closed from 2026-11-01."
    }


def test_a_malformed_period_is_refused(world):
    response = api_as(world.users["finance"]).post(
        "/api/v1/rollups/", {"period": "October"}, format="json"
    )
    assert response.status_code == 400
    assert response.json() == {"period": ["Enter the period as YYYY-MM, for example 2026-10."]}


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        ({"description": ""}, {"description": ["This field may not be blank."]}),
        ({"description": None}, {"description": ["This field may not be null."]}),
        ({"amount": "0.00"}, {"amount": ["An adjustment of zero changes nothing."]}),
        ({"amount": "1.005"}, {"amount": ["Ensure that there are no more than 2 decimal places."]}),
        ({"currency": "USD"}, {"currency": ["Adjustments are in the client's currency, EUR."]}),
    ],
)
def test_adjustment_refusals(world, body, errors):
    adjustment = {
        "client": world.acme.pk,
        "period": "2026-10",
        "amount": "-10.00",
        "description": "Credit",
        **body,
    }
    response = api_as(world.users["finance"]).post(
        "/api/v1/billable-items/", adjustment, format="json"
    )
    assert response.status_code == 400
    assert response.json() == errors


def test_adjustment_on_another_clients_subscription_is_refused(world):
    response = api_as(world.users["finance"]).post(
        "/api/v1/billable-items/",
        {
            "client": world.acme.pk,
            "subscription": world.other_subscription.pk,
            "period": "2026-10",
            "amount": "5.00",
            "description": "x",
        },
        format="json",
    )
    assert response.status_code == 400
    assert response.json() == {"subscription": ["That subscription belongs to another client."]}


def test_an_invoiced_item_cannot_go_back(world):
    api = api_as(world.users["finance"])
    path = f"/api/v1/billable-items/{world.item.pk}/"
    assert api.patch(path, {"status": "exported"}, format="json").json()["status"] == "exported"
    assert api.patch(path, {"status": "invoiced"}, format="json").json()["status"] == "invoiced"
    response = api.patch(path, {"status": "void"}, format="json")
    assert response.status_code == 400
    assert response.json() == {
        "detail": "An invoiced item cannot change any more; enter an adjustment instead."
    }
    world.item.refresh_from_db()
    assert world.item.status == "invoiced"


def test_a_void_item_keeps_its_row(world):
    api = api_as(world.users["finance"])
    response = api.patch(
        f"/api/v1/billable-items/{world.item.pk}/", {"status": "void"}, format="json"
    )
    assert response.json()["status"] == "void"
    assert BillableItem.objects.filter(pk=world.item.pk, status="void").exists()
    assert api.delete(f"/api/v1/billable-items/{world.item.pk}/").status_code == 405


def test_export_needs_a_period(world):
    response = api_as(world.users["finance"]).get("/api/v1/billable-items/export/?format=csv")
    assert response.status_code == 400
    assert response.json() == {"period": ["This field is required."]}


# --- portal logins -----------------------------------------------------------------------


def test_portal_login_created_without_echoing_the_password(world):
    response = api_as(world.users["administrator"]).post(
        f"/api/v1/clients/{world.acme.pk}/users/",
        {"username": "jane", "email": "jane@acme.test", "password": "correct-Horse-battery-9"},
        format="json",
    )
    assert response.status_code == 201
    body = response.json()
    assert body == {"id": body["id"], "username": "jane", "email": "jane@acme.test"}
    jane = User.objects.get(username="jane")
    assert jane.client_membership.client == world.acme
    assert jane.check_password("correct-Horse-battery-9")


def test_portal_login_with_an_existing_username_is_refused(world):
    response = api_as(world.users["administrator"]).post(
        f"/api/v1/clients/{world.acme.pk}/users/",
        {"username": "ALICE", "password": "correct-Horse-battery-9"},
        format="json",
    )
    assert response.status_code == 400
    assert response.json() == {"username": ["A user with that username already exists."]}


def test_portal_login_with_a_weak_password_is_refused(world):
    response = api_as(world.users["administrator"]).post(
        f"/api/v1/clients/{world.acme.pk}/users/",
        {"username": "jane", "password": "12345678"},
        format="json",
    )
    assert response.status_code == 400
    assert response.json() == {
        "password": ["This password is too common.", "This password is entirely numeric."]
    }
    assert not User.objects.filter(username="jane").exists()


# --- catalogue -----------------------------------------------------------------------------


def test_a_package_keeps_a_price_its_subscriptions_need(world):
    response = api_as(world.users["administrator"]).patch(
        f"/api/v1/packages/{world.package.pk}/",
        {"prices": [{"currency": "EUR", "fee": "500.00", "hourly_rate": "60.00"}]},
        format="json",
    )
    assert response.status_code == 400
    assert response.json() == {
        "prices": [
            "Subscriptions of this package are billed in USD; keep a price in that currency."
        ]
    }


@pytest.mark.parametrize(
    ("price", "message"),
    [
        ({}, "Price 1 has no currency and no fee and no hourly_rate: a price is given whole."),
        ({"currency": "EUR", "fee": "1.00"}, "Price 1 has no hourly_rate: a price is given whole."),
    ],
)
def test_a_package_patch_gives_each_price_whole(world, price, message):
    before = list(world.package.prices.values_list("currency", "fee", "hourly_rate"))
    response = api_as(world.users["administrator"]).patch(
        f"/api/v1/packages/{world.package.pk}/", {"prices": [price]}, format="json"
    )
    assert response.status_code == 400
    assert response.json() == {"prices": [message]}
    assert list(world.package.prices.values_list("currency", "fee", "hourly_rate")) == before


def test_a_clients_currency_is_fixed_once_billed(world):
    response = api_as(world.users["administrator"]).patch(
        f"/api/v1/clients/{world.acme.pk}/", {"currency": "USD"}, format="json"
    )
    assert response.status_code == 400
    assert response.json() == {
        "currency": [
            "The client has subscriptions or billable items in EUR; its currency cannot change."
        ]
    }


def test_a_clients_language_is_one_django_knows(world):
    administrator = api_as(world.users["administrator"])
    url = f"/api/v1/clients/{world.acme.pk}/"
    response = administrator.patch(url, {"language": "klingon"}, format="json")
    assert response.status_code == 400
    assert response.json() == {"language": ['"klingon" is not a valid choice.']}
    world.acme.refresh_from_db()
    assert world.acme.language == ""
    # a known one is kept, and the statements use it
    assert administrator.patch(url, {"language": "de"}, format="json").status_code == 200
    world.acme.refresh_from_db()
    assert world.acme.language == "de"


# --- another client's objects are 404 -----------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/subscriptions/{w.other_subscription.pk}/",
        "/api/v1/subscriptions/{w.other_subscription.pk}/usage/",
        "/api/v1/tickets/{w.other_ticket.pk}/",
        "/api/v1/tickets/{w.other_ticket.pk}/time-entries/",
        "/api/v1/time-entries/{w.other_entry.pk}/",
    ],
)
def test_a_client_user_gets_404_for_another_clients_object(world, path):
    response = api_as(world.users["client"]).get(path.format(w=world))
    assert response.status_code == 404
    assert response.json() == {"detail": "No Subscription matches the given query."} or set(
        response.json()
    ) == {"detail"}


def test_a_client_user_lists_only_its_own_client(world):
    api = api_as(world.users["client"])
    assert [s["id"] for s in api.get("/api/v1/subscriptions/").json()["results"]] == [
        world.subscription.pk
    ]
    assert [t["id"] for t in api.get("/api/v1/tickets/").json()["results"]] == [world.ticket.pk]
    assert api.get(f"/api/v1/subscriptions/?client={world.globex.pk}").json()["count"] == 0


def test_a_hidden_work_log_is_not_shown_to_the_client(world):
    world.package.show_work_log = False
    world.package.save()
    api = api_as(world.users["client"])
    assert api.get(f"/api/v1/tickets/{world.ticket.pk}/time-entries/").json()["count"] == 0
    assert api.get(f"/api/v1/time-entries/{world.entry.pk}/").status_code == 404
    # staff still see it
    staff = api_as(world.users["operator"])
    assert staff.get(f"/api/v1/tickets/{world.ticket.pk}/time-entries/").json()["count"] == 1


def test_missing_objects_are_404(world):
    api = api_as(world.users["administrator"])
    for path in ["/api/v1/packages/999999/", "/api/v1/billable-items/99999999999999999999/"]:
        assert api.get(path).status_code == 404


ALLOWED = {
    ("pending", "exported"),
    ("pending", "void"),
    ("exported", "invoiced"),
    ("exported", "void"),
    ("exported", "pending"),
}
STATUSES = ["pending", "exported", "invoiced", "void"]


@pytest.mark.parametrize("old", STATUSES)
@pytest.mark.parametrize("new", STATUSES)
def test_item_status_transitions(world, old, new):
    # given an item in status ``old``
    BillableItem.objects.filter(pk=world.item.pk).update(status=old)
    # when finance sets ``new``
    response = api_as(world.users["finance"]).patch(
        f"/api/v1/billable-items/{world.item.pk}/", {"status": new}, format="json"
    )
    # then it moves only along the allowed transitions (the same status is a no-op)
    world.item.refresh_from_db()
    if old == new or (old, new) in ALLOWED:
        assert (response.status_code, world.item.status) == (200, new)
    else:
        assert (response.status_code, world.item.status) == (400, old)
        assert "detail" in response.json()


def test_a_ticket_body_over_the_message_limit_is_refused(world):
    api = api_as(world.users["operator"])
    body = {"client": world.acme.pk, "subject": "VPN", "body": "x" * (MESSAGE_BODY_MAX_LENGTH + 1)}
    response = api.post("/api/v1/tickets/", body, format="json")
    assert response.status_code == 400
    assert "body" in response.json()
    assert not Ticket.objects.filter(subject="VPN").exists()
