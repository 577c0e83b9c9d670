"""The review window in the API: items carry ``in_review`` and ``held``; marking a held item
exported is a 400 with the reason; ``/api/v1/disputes/``: a client user opens and reads its
own, staff read all, finance and administrators resolve."""

from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from billing.models import BillableItem, Dispute, ItemStatus
from billing.services.disputes import dispute_open, period_release
from tests.factories import AdminFactory
from tests.review import month_in_review

pytestmark = pytest.mark.django_db
DISPUTES = "/api/v1/disputes/"


def api_as(user) -> APIClient:
    api = APIClient()
    if user is not None:
        api.force_authenticate(user)
    return api


@pytest.fixture
def review(settings, time_machine):
    return month_in_review(settings, time_machine)


def test_items_say_whether_they_are_in_review_or_held(review):
    api = api_as(review.finance)
    item = api.get(f"/api/v1/billable-items/{review.a.fee.pk}/").json()
    assert (item["in_review"], item["held"]) == (True, True)
    dispute_open(client_id=review.a.client.pk, item_id=review.a.fee.pk, reason="No")
    period_release(month=review.a.fee.period, actor=review.finance)
    listed = {
        row["id"]: (row["in_review"], row["held"])
        for row in api.get("/api/v1/billable-items/?period=2026-10").json()["results"]
    }
    assert listed[review.a.fee.pk] == (False, True)
    assert listed[review.a.overtime.pk] == (False, False)


def test_marking_a_held_item_exported_is_a_400_with_the_reason(review):
    api = api_as(review.finance)
    response = api.patch(
        f"/api/v1/billable-items/{review.a.fee.pk}/", {"status": "exported"}, format="json"
    )
    assert response.status_code == 400
    assert "2026-10 is in review until 2026-11-06 00:05" in str(response.json())
    assert BillableItem.objects.get(pk=review.a.fee.pk).status == ItemStatus.PENDING


def test_a_client_opens_a_dispute_on_its_own_item(review):
    api = api_as(review.a.user)
    response = api.post(
        DISPUTES, {"item": review.a.overtime.pk, "reason": "Not ordered"}, format="json"
    )
    assert response.status_code == 201
    body = response.json()
    assert {key: body[key] for key in ("client", "period", "item", "status", "reason")} == {
        "client": review.a.client.pk,
        "period": "2026-10",
        "item": review.a.overtime.pk,
        "status": "open",
        "reason": "Not ordered",
    }
    assert [row["id"] for row in api.get(DISPUTES).json()["results"]] == [body["id"]]


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"reason": "x"}, "detail"),
        ({"item": 1, "time_entry": 1, "reason": "x"}, "detail"),
        ({"item": "OTHER", "reason": "x"}, "item"),
        ({"item": "MINE", "reason": ""}, "reason"),
        ({"item": "MINE", "reason": "x" * 2001}, "reason"),
    ],
)
def test_dispute_refusals_are_400_and_change_nothing(review, payload, field):
    ids = {"OTHER": review.b.fee.pk, "MINE": review.a.fee.pk}
    payload = {key: ids.get(value, value) for key, value in payload.items()}
    response = api_as(review.a.user).post(DISPUTES, payload, format="json")
    assert response.status_code == 400
    assert field in response.json()
    assert not Dispute.objects.exists()


def test_a_client_sees_only_its_own_disputes(review):
    mine = dispute_open(client_id=review.a.client.pk, item_id=review.a.fee.pk, reason="a")
    theirs = dispute_open(client_id=review.b.client.pk, item_id=review.b.fee.pk, reason="b")
    api = api_as(review.a.user)
    assert [row["id"] for row in api.get(DISPUTES).json()["results"]] == [mine.pk]
    assert api.get(f"{DISPUTES}{theirs.pk}/").status_code == 404
    staff = api_as(review.operator)
    assert {row["id"] for row in staff.get(DISPUTES).json()["results"]} == {mine.pk, theirs.pk}
    assert [row["id"] for row in staff.get(f"{DISPUTES}?status=open").json()["results"]] == [
        theirs.pk,
        mine.pk,
    ]


@pytest.mark.parametrize(("who", "code"), [("client", 403), ("operator", 403)])
def test_only_finance_and_administrators_resolve(review, who, code):
    dispute = dispute_open(client_id=review.a.client.pk, item_id=review.a.fee.pk, reason="a")
    user = review.a.user if who == "client" else review.operator
    response = api_as(user).post(
        f"{DISPUTES}{dispute.pk}/resolve/", {"decision": "reject", "answer": "No"}, format="json"
    )
    assert response.status_code == code
    dispute.refresh_from_db()
    assert dispute.status == "open"


def test_staff_cannot_open_a_dispute(review):
    for user in (review.operator, review.finance, AdminFactory()):
        response = api_as(user).post(
            DISPUTES, {"item": review.a.fee.pk, "reason": "x"}, format="json"
        )
        assert response.status_code == 403
    assert not Dispute.objects.exists()


def test_finance_resolves_by_an_adjustment_then_not_again(review):
    dispute = dispute_open(client_id=review.a.client.pk, item_id=review.a.fee.pk, reason="a")
    api = api_as(review.finance)
    url = f"{DISPUTES}{dispute.pk}/resolve/"
    assert api.post(url, {"decision": "adjust", "answer": "ok"}, format="json").json() == {
        "amount": ["An adjustment needs its amount."]
    }
    response = api.post(
        url, {"decision": "adjust", "answer": "Half off", "amount": "-250.00"}, format="json"
    )
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "adjusted" and body["answer"] == "Half off"
    adjustment = BillableItem.objects.get(pk=body["adjustment"])
    assert adjustment.amount.amount == Decimal("-250.00")
    again = api.post(url, {"decision": "reject", "answer": "x"}, format="json")
    assert again.status_code == 400 and "already resolved" in str(again.json())
