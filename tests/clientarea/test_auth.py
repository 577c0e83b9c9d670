"""Signing in, out, and passwords (Django's auth views with the portal's pages)."""

import datetime as dt
import re

import pytest
from django.core import mail

from tests.clientarea.conftest import NOW
from tests.factories import PASSWORD, ClientUserFactory, OperatorFactory

pytestmark = pytest.mark.django_db


def test_a_client_user_signs_in_and_lands_on_the_dashboard(client, portal_user):
    page = client.get("/login/")
    assert page.status_code == 200
    assert '<label for="id_username">' in page.content.decode()

    response = client.post(
        "/login/", {"username": portal_user.user.username, "password": PASSWORD}, follow=True
    )

    assert response.redirect_chain[-1][0] == "/"
    assert portal_user.client.name in response.content.decode()


def test_sign_in_returns_to_the_page_asked_for(client, portal_user):
    response = client.post(
        "/login/?next=/tickets/",
        {"username": portal_user.user.username, "password": PASSWORD, "next": "/tickets/"},
    )
    assert response["Location"] == "/tickets/"


def test_a_wrong_password_is_refused(client, portal_user):
    response = client.post("/login/", {"username": portal_user.user.username, "password": "nope"})
    assert response.status_code == 200
    assert "enter a correct username and password" in response.content.decode()


def test_staff_signing_in_at_the_portal_go_to_the_admin(client):
    operator = OperatorFactory()
    response = client.post(
        "/login/", {"username": operator.username, "password": PASSWORD}, follow=True
    )
    assert [url for url, _ in response.redirect_chain][:2] == ["/", "/admin/"]


def test_sign_out(signed_in):
    response = signed_in.post("/logout/")
    assert response["Location"] == "/login/"
    assert signed_in.get("/")["Location"].startswith("/login/")


def test_password_change(signed_in, portal_user):
    response = signed_in.post(
        "/password/change/",
        {
            "old_password": PASSWORD,
            "new_password1": "a-much-better-pass-2026",
            "new_password2": "a-much-better-pass-2026",
        },
    )
    assert response["Location"] == "/password/change/done/"
    portal_user.user.refresh_from_db()
    assert portal_user.user.check_password("a-much-better-pass-2026")


def test_password_change_refuses_a_weak_password(signed_in, portal_user):
    response = signed_in.post(
        "/password/change/",
        {"old_password": PASSWORD, "new_password1": "123", "new_password2": "123"},
    )
    assert response.status_code == 200
    assert "too short" in response.content.decode()


def test_password_reset_by_email(client):
    member = ClientUserFactory(user__email="jane@acme.test")
    # when Jane asks for a reset
    response = client.post("/password/reset/", {"email": "jane@acme.test"})
    assert response["Location"] == "/password/reset/sent/"
    # then she gets one e-mail with a link
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["jane@acme.test"]
    link = re.search(r"https?://[^/]+(/password/reset/\S+/)", mail.outbox[0].body)[1]
    # and the link lets her choose a new password once
    form = client.get(link, follow=True)
    assert "Choose a new password" in form.content.decode()
    done = client.post(
        form.redirect_chain[-1][0],
        {"new_password1": "fresh-and-long-2026", "new_password2": "fresh-and-long-2026"},
    )
    assert done["Location"] == "/password/reset/done/"
    member.user.refresh_from_db()
    assert member.user.check_password("fresh-and-long-2026")
    assert "no longer works" in client.get(link, follow=True).content.decode()


def test_password_reset_for_an_unknown_address_sends_nothing_and_says_the_same(client):
    response = client.post("/password/reset/", {"email": "nobody@nowhere.test"})
    assert response["Location"] == "/password/reset/sent/"
    assert mail.outbox == []


def _ask_reset(client, email, address="203.0.113.7"):
    return client.post("/password/reset/", {"email": email}, REMOTE_ADDR=address)


def test_a_fourth_reset_within_the_hour_sends_no_mail_and_reads_the_same(client, time_machine):
    ClientUserFactory(user__email="jane@acme.test")
    # when Jane's address is asked for four times within an hour (any spelling of it)
    answers = [_ask_reset(client, email) for email in ["jane@acme.test"] * 3 + ["JANE@acme.test"]]
    # then three e-mails go, the fourth request sends none, and every answer is the same
    assert len(mail.outbox) == 3
    assert {answer["Location"] for answer in answers} == {"/password/reset/sent/"}
    # and an hour after the first, she can ask again
    time_machine.move_to(NOW + dt.timedelta(hours=1, seconds=1), tick=False)
    _ask_reset(client, "jane@acme.test")
    assert len(mail.outbox) == 4


def test_the_limit_of_an_address_holds_from_any_client_address(client):
    ClientUserFactory(user__email="jane@acme.test")
    for number in range(4):
        _ask_reset(client, "jane@acme.test", address=f"198.51.100.{number}")
    assert len(mail.outbox) == 3


def test_one_client_address_asking_for_many_addresses_is_limited(client):
    # given someone asking from one address for ten unknown addresses, then a real one
    ClientUserFactory(user__email="jane@acme.test")
    for number in range(10):
        assert _ask_reset(client, f"guess{number}@acme.test")["Location"] == (
            "/password/reset/sent/"
        )
    # when they ask for Jane's
    response = _ask_reset(client, "jane@acme.test")
    # then the page reads the same, and no e-mail goes
    assert response["Location"] == "/password/reset/sent/"
    assert mail.outbox == []
    # while Jane herself, from her own address, still gets hers
    _ask_reset(client, "jane@acme.test", address="192.0.2.1")
    assert len(mail.outbox) == 1


def test_the_limit_counts_unknown_addresses_like_known_ones(client):
    # the same number of requests for an unknown address leaves the same trace: none sent,
    # and the fourth is as silent as for a known address
    answers = [_ask_reset(client, "nobody@nowhere.test") for _ in range(4)]
    assert {answer.status_code for answer in answers} == {302}
    assert {answer["Location"] for answer in answers} == {"/password/reset/sent/"}
    assert mail.outbox == []
