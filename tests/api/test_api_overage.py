"""The API's overage control: staff set the policy, a client's user approves extra hours,
refusals are 400s that change nothing (docs/api.md)."""

from decimal import Decimal

import pytest

from packages.models import OverageApproval
from tests.api.conftest import api_as
from tests.factories import ClientUserFactory

pytestmark = pytest.mark.django_db


def test_staff_set_the_policy_and_the_subscription_shows_it(world):
    api = api_as(world.users["administrator"])
    url = f"/api/v1/subscriptions/{world.subscription.pk}/"
    response = api.post(url + "overage/", {"policy": "cap", "cap_hours": "2.5"}, format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["overage_policy"] == "cap"
    assert response.json()["overage_cap_hours"] == "2.50"
    # refusals: an unknown policy, a cap off the quarter-hour step
    for body in ({"policy": "never"}, {"policy": "cap", "cap_hours": "1.1"}):
        refused = api.post(url + "overage/", body, format="json")
        assert refused.status_code == 400
    assert api.get(url).json()["overage_cap_hours"] == "2.50"


def test_a_client_user_approves_and_the_usage_shows_it(world):
    admin = api_as(world.users["administrator"])
    url = f"/api/v1/subscriptions/{world.subscription.pk}/"
    admin.post(url + "overage/", {"policy": "approve"}, format="json")
    client = api_as(world.users["client"])
    response = client.post(url + "approvals/", {"hours": "3"}, format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["approved_hours"] == "3.00"
    assert response.json()["overage_policy"] == "approve"
    assert client.get(url).json()["approved_extra_hours"] == "3.00"
    # bad numbers are refused and change nothing
    for hours in ("0", "-1", "2.1", "1000", "x"):
        refused = client.post(url + "approvals/", {"hours": hours}, format="json")
        assert refused.status_code == 400, hours
    assert OverageApproval.objects.get().hours == Decimal("3.00")


def test_another_clients_user_cannot_approve(world):
    admin = api_as(world.users["administrator"])
    admin.post(
        f"/api/v1/subscriptions/{world.other_subscription.pk}/overage/",
        {"policy": "approve"},
        format="json",
    )
    acme_user = api_as(world.users["client"])
    response = acme_user.post(
        f"/api/v1/subscriptions/{world.other_subscription.pk}/approvals/",
        {"hours": "1"},
        format="json",
    )
    assert response.status_code == 404
    globex_user = api_as(ClientUserFactory(client=world.globex).user)
    assert (
        globex_user.post(
            f"/api/v1/subscriptions/{world.other_subscription.pk}/approvals/",
            {"hours": "1"},
            format="json",
        ).status_code
        == 201
    )
    assert OverageApproval.objects.count() == 1


def test_time_beyond_the_approved_hours_needs_pending_approval(world):
    admin = api_as(world.users["administrator"])
    admin.post(
        f"/api/v1/subscriptions/{world.subscription.pk}/overage/",
        {"policy": "approve"},
        format="json",
    )
    operator = api_as(world.users["operator"])
    url = f"/api/v1/tickets/{world.ticket.pk}/time-entries/"
    # 1 h logged already; 9.5 h more reaches 10.5 h, beyond the 10 h included
    refused = operator.post(url, {"hours": "9.5"}, format="json")
    assert refused.status_code == 400
    assert "needs the client's approval" in str(refused.json())
    logged = operator.post(url, {"hours": "9.5", "pending_approval": True}, format="json")
    assert logged.status_code == 201, logged.json()
    assert "pending_approval" not in logged.json()
    usage = operator.get(f"/api/v1/subscriptions/{world.subscription.pk}/usage/").json()
    assert (usage["unapproved_hours"], usage["overtime_hours"]) == ("0.50", "0.00")
