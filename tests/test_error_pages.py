"""The error pages carry the product's name and look (404, 403, 500), the 500 page renders
with nothing but the template (no request, no context processors, no database), and
/favicon.ico is the brand's icon, not a 404."""

import pytest
from django.http import HttpRequest, HttpResponse
from django.test import Client, RequestFactory
from django.urls import include, path
from django.views.defaults import server_error

from tests.factories import ClientUserFactory, OperatorFactory

ICO_MAGIC = b"\x00\x00\x01\x00"  # an icon resource file (Windows ICO)


def _fails(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("something broke")


# The project's URLs plus one that fails, for the 500 page through Django's own handler.
urlpatterns = [path("test-fails/", _fails), path("", include("supportbilling.urls"))]


def assert_branded(html: str) -> None:
    assert "Support by Time" in html
    assert "Django" not in html  # not Django's bare "Not Found" or "Server Error (500)"
    assert 'href="/static/clientarea/portal.css"' in html
    assert 'href="/favicon.ico"' in html


@pytest.mark.django_db
@pytest.mark.parametrize("who", ["anonymous", "client user"])
def test_a_missing_page_is_a_branded_404(client, who):
    if who == "client user":
        client.force_login(ClientUserFactory().user)
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    html = response.content.decode()
    assert_branded(html)
    assert "Page not found" in html and 'href="/"' in html


@pytest.mark.django_db
def test_a_refused_page_is_a_branded_403(client):
    # an operator may not open the users' admin (tests/security/test_access_matrix.py)
    client.force_login(OperatorFactory())
    response = client.get("/admin/auth/user/")
    assert response.status_code == 403
    html = response.content.decode()
    assert_branded(html)
    assert "You may not open this page" in html


def test_the_500_page_renders_without_request_context_or_database():
    # no django_db mark: any query would fail the test
    response = server_error(RequestFactory().get("/"))
    assert response.status_code == 500
    html = response.content.decode()
    assert_branded(html)
    assert "Something went wrong on our side" in html


@pytest.mark.urls(__name__)
@pytest.mark.django_db
def test_an_error_in_a_view_answers_the_branded_500():
    browser = Client(raise_request_exception=False)
    response = browser.get("/test-fails/")
    assert response.status_code == 500
    assert_branded(response.content.decode())
    assert "something broke" not in response.content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize("method", ["get", "head"])
def test_the_favicon_is_served(client, method):
    response = getattr(client, method)("/favicon.ico")
    assert response.status_code == 200
    assert response["Content-Type"] == "image/x-icon"
    assert "max-age=" in response["Cache-Control"]
    if method == "get":
        assert response.content.startswith(ICO_MAGIC)


@pytest.mark.django_db
def test_the_favicon_refuses_a_post(client):
    assert client.post("/favicon.ico").status_code == 405
