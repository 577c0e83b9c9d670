"""Signing in, out, and passwords (Django's auth views with the portal's pages)."""

import re

import pytest
from django.core import mail

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
