"""Odd input never yields a server error."""

import pytest

from tests.factories import TicketFactory
from tickets.models import MESSAGE_BODY_MAX_LENGTH, Ticket, TicketMessage

pytestmark = pytest.mark.django_db

HUGE = "9" * 30


@pytest.mark.parametrize(
    "path",
    [
        f"/tickets/{HUGE}/",
        f"/subscriptions/{HUGE}/",
        f"/subscriptions/{HUGE}/estimate/?extra=1",
        f"/?subscription={HUGE}&extra=1",
        "/?subscription=abc&extra=1",
        "/?subscription=1&extra=" + "9" * 500,
        "/tickets/?page=999999&status=closed",
        "/tickets/?status=" + "x" * 300,
    ],
)
def test_odd_urls_answer_without_a_server_error(signed_in, path):
    assert signed_in.get(path).status_code in (200, 400, 404)


def test_odd_posts_answer_without_a_server_error(signed_in):
    assert signed_in.post(f"/tickets/{HUGE}/reply/", {"body": "x"}).status_code == 404
    response = signed_in.post("/tickets/new/", {"subject": "x", "body": "y", "subscription": HUGE})
    assert response.status_code == 200
    response = signed_in.post("/tickets/new/", {"subject": "\x00", "body": "y"})
    assert response.status_code == 200


# A 2.4 MB question, far above the one limit for a message everywhere.
HUGE_BODY = "x" * 2_400_000


def test_a_huge_new_ticket_is_refused_with_a_clear_error(signed_in):
    # when a client opens a ticket with a 2.4 MB question
    response = signed_in.post("/tickets/new/", {"subject": "Help", "body": HUGE_BODY})
    # then the form says how long a message may be, and no ticket is opened
    assert response.status_code == 200
    assert (
        "A message has at most 20000 characters; this one has 2400000." in response.content.decode()
    )
    assert not Ticket.objects.exists()


def test_a_huge_reply_is_refused_with_a_clear_error(signed_in, portal_user):
    ticket = TicketFactory(client=portal_user.client, subscription=None)
    response = signed_in.post(f"/tickets/{ticket.pk}/reply/", {"body": HUGE_BODY})
    assert response.status_code == 400
    assert "A message has at most 20000 characters" in response.content.decode()
    assert not TicketMessage.objects.exists()


def test_a_message_of_exactly_the_limit_is_taken(signed_in, portal_user):
    ticket = TicketFactory(client=portal_user.client, subscription=None)
    body = "y" * MESSAGE_BODY_MAX_LENGTH
    assert signed_in.post(f"/tickets/{ticket.pk}/reply/", {"body": body}).status_code == 302
    assert TicketMessage.objects.get().body == body
