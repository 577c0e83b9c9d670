"""Odd input never yields a server error."""

import pytest

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
