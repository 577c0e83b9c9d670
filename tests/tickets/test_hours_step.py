"""The -/+ buttons beside the workspace's hours box ask the server, which reads what was
typed with the same grammar as saving: the browser holds no second one."""

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from tests.factories import ClientUserFactory, FinanceFactory, OperatorFactory
from tickets.hours import PARSE_ERROR, hours_clean, hours_stepped

pytestmark = pytest.mark.django_db
URL = reverse("admin:tickets_ticket_hours_step")


@pytest.fixture
def operator(client):
    user = OperatorFactory()
    client.force_login(user)
    return user


def ask(client, hours, steps="1"):
    return client.get(URL, {"hours": hours, "steps": steps})


@pytest.mark.parametrize(
    ("typed", "steps", "shown"),
    [
        ("1h 15m", "1", "1.50"),  # the grammar the box once turned into 0.25
        ("1.5h", "1", "1.75"),
        ("1h", "-1", "0.75"),
        ("1:15", "1", "1.50"),
        ("75m", "-1", "1.00"),
        ("1,25", "1", "1.50"),
        ("", "1", "0.25"),  # an empty box starts from nothing
        ("  ", "1", "0.25"),
        ("0.25", "-1", "0.25"),  # never below one step
        ("24", "1", "24.00"),  # never above what one entry holds
        ("0:10", "1", "0.50"),  # snapped to the nearest quarter hour, then moved
        ("1.30", "0", "1.25"),  # no step: only snapped
    ],
)
def test_the_buttons_step_what_the_server_reads(client, operator, typed, steps, shown):
    # when the operator presses a button beside what they typed
    response = ask(client, typed, steps)
    # then the box shows the server's answer
    assert response.status_code == 200
    assert response.json() == {"hours": shown}


@pytest.mark.parametrize("typed", ["1h 15m", "1.5h", "1:15", "75m", "1,25", "1.25", "2h"])
def test_stepping_up_and_down_gives_back_what_saving_reads(client, operator, typed):
    # the box and the save read the same text the same way
    up = ask(client, typed, "1").json()["hours"]
    back = ask(client, up, "-1").json()["hours"]
    assert Decimal(back) == hours_clean(typed)


@pytest.mark.parametrize("typed", ["abc", "1h 15", "one hour", "-1", "1..5", "1.5 hours"])
def test_what_the_server_cannot_read_is_refused_with_its_message(client, operator, typed):
    response = ask(client, typed)
    assert response.status_code == 400
    assert response.json() == {"error": PARSE_ERROR}


@pytest.mark.parametrize("steps", ["", "x", "1.5", "97", "-97"])
def test_a_step_that_is_not_a_whole_number_of_quarter_hours_is_refused(client, operator, steps):
    response = ask(client, "1", steps)
    assert response.status_code == 400
    assert "steps must be a whole number" in response.json()["error"]


def test_only_a_get(client, operator):
    assert client.post(URL, {"hours": "1", "steps": "1"}).status_code == 405


def test_any_staff_member_may_ask(client):
    client.force_login(FinanceFactory())
    assert ask(client, "1h").json() == {"hours": "1.25"}


@pytest.mark.parametrize("who", ["anonymous", "client user"])
def test_who_is_not_staff_is_refused(client, who):
    if who == "client user":
        client.force_login(ClientUserFactory().user)
    response = ask(client, "1h 15m")
    # sent to the admin's sign-in, with no answer
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


def test_hours_stepped_refuses_floats_like_saving_does():
    with pytest.raises(ValidationError, match="Enter hours"):
        hours_stepped(1.5, steps=1)
    assert hours_stepped(Decimal("1.5"), steps=1) == Decimal("1.75")
