"""The review window in the portal: a closed month in review says until when, lists its items,
and lets the client dispute its own time entries and items with a reason; the disputes page
shows finance's answers. Refusals are messages and change nothing."""

from decimal import Decimal

import pytest
from django.contrib.messages import get_messages
from django.db import connection
from django.test.utils import CaptureQueriesContext

from billing.models import BillingEvent, Dispute
from billing.services.disputes import dispute_open, dispute_resolve, period_release
from tests.factories import TimeEntryFactory
from tests.review import OCTOBER, REVIEW_UNTIL, month_in_review

pytestmark = pytest.mark.django_db


@pytest.fixture
def review(settings, time_machine):
    return month_in_review(settings, time_machine)


@pytest.fixture
def signed_in(client, review):
    client.force_login(review.a.user)
    return client


def month_url(side) -> str:
    return f"/subscriptions/{side.subscription.pk}/months/2026-10/"


def messages_of(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def test_the_month_in_review_says_until_when_and_offers_disputes(signed_in, review):
    html = signed_in.get(month_url(review.a)).content.decode()
    assert 'data-review="in-review"' in html
    assert "In review until <strong" in html and "2026-11-06 00:05" in html
    # the month's items and every entry carry a dispute form
    assert f'data-item="{review.a.fee.pk}"' in html
    assert f'name="item" value="{review.a.overtime.pk}"' in html
    assert f'name="time_entry" value="{review.a.entry.pk}"' in html
    # and the history marks the month
    history = signed_in.get("/history/").content.decode()
    assert "in review until 2026-11-06 00:05" in history


def test_without_a_window_the_month_page_is_as_before(signed_in, review, settings):
    settings.REVIEW_WINDOW_DAYS = 0
    html = signed_in.get(month_url(review.a)).content.decode()
    assert "data-review" not in html and 'data-form="dispute"' not in html
    assert "in review until" not in signed_in.get("/history/").content.decode()


def test_a_client_disputes_an_entry_and_sees_it_held(signed_in, review):
    response = signed_in.post(
        "/disputes/new/", {"time_entry": review.a.entry.pk, "reason": "We only asked for 6 h"}
    )
    assert response.status_code == 302 and response["Location"] == month_url(review.a)
    dispute = Dispute.objects.get()
    assert (dispute.client, dispute.time_entry_id, dispute.month) == (
        review.a.client,
        review.a.entry.pk,
        OCTOBER,
    )
    assert dispute.opened_by == review.a.user
    assert messages_of(response)[0].startswith(f"Your dispute #{dispute.pk} is open")
    html = signed_in.get(month_url(review.a)).content.decode()
    assert f'data-dispute="{dispute.pk}"' in html and f"Dispute #{dispute.pk}: Open" in html
    assert BillingEvent.objects.filter(action="dispute_opened").count() == 1


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"reason": "   "}, "Give the reason for the dispute."),
        ({"reason": "x"}, "Choose one time entry or one billable item to dispute."),
        ({"item": "abc", "reason": "x"}, "Enter a whole number."),
    ],
)
def test_an_incomplete_dispute_is_refused_with_a_message(signed_in, review, data, message):
    response = signed_in.post("/disputes/new/", data)
    assert response.status_code == 302 and response["Location"] == "/disputes/"
    assert message in messages_of(response)
    assert not Dispute.objects.exists()


def test_another_clients_objects_cannot_be_disputed(signed_in, review):
    for data in ({"item": review.b.fee.pk}, {"time_entry": review.b.entry.pk}):
        response = signed_in.post("/disputes/new/", {**data, "reason": "Not mine"})
        assert response.status_code == 404
    assert not Dispute.objects.exists()
    assert signed_in.get(month_url(review.b)).status_code == 404


def test_a_second_open_dispute_and_a_late_one_are_refused(signed_in, review, time_machine):
    signed_in.post("/disputes/new/", {"item": review.a.fee.pk, "reason": "Too much"})
    response = signed_in.post("/disputes/new/", {"item": review.a.fee.pk, "reason": "Again"})
    first = Dispute.objects.get()
    assert messages_of(response)[-1] == (
        f"The dispute was not opened: Your dispute #{first.pk} of this item is already open: "
        "we answer it first."
    )
    time_machine.move_to(REVIEW_UNTIL, tick=False)
    response = signed_in.post("/disputes/new/", {"item": review.a.overtime.pk, "reason": "Late"})
    assert messages_of(response)[-1] == (
        "The dispute was not opened: The review of 2026-10 ended on 2026-11-06 00:05. "
        "Ask us on a ticket."
    )
    assert Dispute.objects.count() == 1
    # and the page offers no more forms
    html = signed_in.get(month_url(review.a)).content.decode()
    assert 'data-review="ended"' in html and 'data-form="dispute"' not in html


def test_the_disputes_page_shows_the_answer(signed_in, review):
    mine = dispute_open(client_id=review.a.client.pk, item_id=review.a.fee.pk, reason="Why?")
    theirs = dispute_open(client_id=review.b.client.pk, item_id=review.b.fee.pk, reason="Hm")
    dispute_resolve(
        dispute=mine,
        decision="adjust",
        answer="We credit half of it.",
        amount=Decimal("-250.00"),
        actor=review.finance,
    )
    html = signed_in.get("/disputes/").content.decode()
    assert f'data-dispute="{mine.pk}"' in html and f'data-dispute="{theirs.pk}"' not in html
    assert "We credit half of it." in html and "-250.00 EUR" in html
    assert "Resolved by an adjustment" in html


def test_a_released_month_says_so(signed_in, review):
    period_release(month=OCTOBER, actor=review.finance)
    html = signed_in.get(month_url(review.a)).content.decode()
    assert 'data-review="released"' in html and 'data-form="dispute"' not in html
    assert "in review until" not in signed_in.get("/history/").content.decode()


def test_staff_and_strangers_cannot_open_disputes(client, review):
    response = client.post("/disputes/new/", {"item": review.a.fee.pk, "reason": "x"})
    assert response.status_code == 302 and "/login/" in response["Location"]
    client.force_login(review.finance)
    response = client.post("/disputes/new/", {"item": review.a.fee.pk, "reason": "x"})
    assert response.status_code == 302 and response["Location"].startswith("/admin/")
    assert not Dispute.objects.exists()


def test_the_page_in_review_reads_in_a_fixed_number_of_queries(signed_in, review):
    # given the page of a month in review with two entries, then with twenty more and a dispute
    signed_in.get(month_url(review.a))
    with CaptureQueriesContext(connection) as few:
        signed_in.get(month_url(review.a))
    for day in range(1, 21):
        TimeEntryFactory(
            ticket=review.a.entry.ticket, work_date=OCTOBER.replace(day=day), note="more"
        )
    dispute_open(client_id=review.a.client.pk, time_entry_id=review.a.entry.pk, reason="x")
    with CaptureQueriesContext(connection) as many:
        html = signed_in.get(month_url(review.a)).content.decode()
    assert html.count("data-entry=") == 22
    # the page without a window takes 8 (its statement PDFs included); the review adds the
    # month, its release, the subscription's items and its disputes
    assert len(few) == len(many) == 8 + 4
