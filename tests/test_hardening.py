"""Production hardening: check --deploy, HTTPS headers and cookies, CSP, sign-in throttling,
the API docs without a CDN."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.urls import reverse

from tests.factories import PASSWORD, ClientUserFactory, OperatorFactory

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.django_db


def test_check_deploy_is_clean_with_production_settings():
    # given the environment of a production deployment (DEBUG off, a real secret key)
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("SECURE_", "DEBUG", "SECRET_KEY", "DJANGO_ALLOW_ASYNC_UNSAFE"))
    }
    env.update(
        SECRET_KEY="p9!x2-longer-than-fifty-characters-and-random-3kq8z7w1v5n0m4b6c",
        ALLOWED_HOSTS="support.example.com",
    )
    # when Django's deployment checklist runs
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    # then it reports nothing
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_https_responses_carry_hsts_and_the_content_security_policy(client):
    response = client.get(reverse("clientarea:login"), secure=True)
    assert response.status_code == 200
    assert "max-age=31536000" in response["Strict-Transport-Security"]
    policy = response["Content-Security-Policy"]
    assert "default-src 'self'" in policy
    assert "script-src 'self'" in policy
    assert "frame-ancestors 'none'" in policy
    assert "unsafe-inline" not in policy
    assert response["X-Content-Type-Options"] == "nosniff"


def test_session_and_csrf_cookies_are_secure_and_http_only(client):
    member = ClientUserFactory()
    page = client.get(reverse("clientarea:login"), secure=True)
    assert page.cookies["csrftoken"]["secure"]
    response = client.post(
        reverse("clientarea:login"),
        {"username": member.user.username, "password": PASSWORD},
        secure=True,
    )
    assert response.status_code == 302
    session = response.cookies["sessionid"]
    assert session["secure"] and session["httponly"]


def test_five_wrong_passwords_lock_the_portal_sign_in(client):
    # given a client user and someone guessing the password
    member = ClientUserFactory()
    login = reverse("clientarea:login")
    for _ in range(5):
        client.post(login, {"username": member.user.username, "password": "guess"})
    # when the right password comes next from the same address
    response = client.post(login, {"username": member.user.username, "password": PASSWORD})
    # then the sign-in stays locked, and the page says why
    assert response.status_code == 429
    assert "Too many failed sign-ins" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_wrong_passwords_lock_the_admin_sign_in_too(client):
    operator = OperatorFactory()
    login = reverse("admin:login")
    for _ in range(5):
        client.post(login, {"username": operator.username, "password": "guess"})
    response = client.post(login, {"username": operator.username, "password": PASSWORD})
    assert response.status_code == 429


def test_wrong_passwords_lock_the_api_token_endpoint(client):
    operator = OperatorFactory()
    url = reverse("api:token")

    def ask(password):
        body = {"username": operator.username, "password": password}
        return client.post(url, body, content_type="application/json")

    for _ in range(4):
        assert ask("guess").status_code == 400
    # the fifth wrong password locks the account for this address
    assert ask("guess").status_code == 429
    response = ask(PASSWORD)
    assert response.status_code == 429
    assert response.json() == {"detail": "Too many failed sign-ins. Try again in 15 minutes."}


def test_a_right_password_resets_the_count(client):
    member = ClientUserFactory()
    login = reverse("clientarea:login")
    for _ in range(4):
        client.post(login, {"username": member.user.username, "password": "guess"})
    assert (
        client.post(login, {"username": member.user.username, "password": PASSWORD}).status_code
        == 302
    )
    client.logout()
    for _ in range(4):
        client.post(login, {"username": member.user.username, "password": "guess"})
    assert (
        client.post(login, {"username": member.user.username, "password": PASSWORD}).status_code
        == 302
    )


def test_the_api_docs_load_swagger_from_our_own_static_files(client):
    client.force_login(OperatorFactory())
    response = client.get(reverse("api:docs"))
    assert response.status_code == 200
    html = response.content.decode()
    assert "swagger-ui" in html
    assert "cdn" not in html.lower()
    assert "<script>" not in html  # the initialiser is a separate script (CSP: no inline code)


# Longer than the 255 characters django-axes stores for an attempt's username.
LONG_USERNAME = "u" * 300


@pytest.mark.parametrize(
    ("url_name", "expected_status", "expected_text"),
    [
        ("clientarea:login", 200, "enter a correct username and password"),
        ("admin:login", 200, "enter the correct username and password"),
        ("api:token", 400, "Unable to log in with provided credentials."),
    ],
)
def test_a_username_too_long_to_record_is_a_wrong_sign_in(
    client, url_name, expected_status, expected_text
):
    # when someone signs in with a 300-character username on any sign-in form
    body = {"username": LONG_USERNAME, "password": "guess"}
    if url_name == "api:token":
        response = client.post(reverse(url_name), body, content_type="application/json")
    else:
        response = client.post(reverse(url_name), body)
    # then it is a wrong sign-in like any other, not a server error
    assert response.status_code == expected_status
    assert expected_text in response.content.decode()


def test_long_usernames_are_still_counted_and_locked(client):
    login = reverse("clientarea:login")
    for _ in range(5):
        client.post(login, {"username": LONG_USERNAME, "password": "guess"})
    assert client.post(login, {"username": LONG_USERNAME, "password": "guess"}).status_code == 429
