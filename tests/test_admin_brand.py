"""The admin carries the product's name and the portal's look, and its ticket list keeps
every column in view."""

import pytest
from django.urls import reverse

from tests.factories import AdminFactory, OperatorFactory, TicketFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _plain_static_files(settings):
    """Static URLs without the manifest, so these tests do not need collectstatic."""
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.mark.parametrize("url", ["/admin/", "/admin/login/", "/admin/tickets/ticket/"])
def test_the_admin_says_support_by_time_not_django_administration(client, url):
    if url != "/admin/login/":
        client.force_login(AdminFactory())
    html = client.get(url).content.decode()
    assert "Django administration" not in html and "Django site admin" not in html
    assert '<div id="site-name"><a href="/admin/">Support by Time</a></div>' in html
    assert "| Support by Time</title>" in html
    # the brand's stylesheet (the portal's colours and font) and icon
    assert "/static/brand/admin.css" in html and "/static/brand/favicon.svg" in html


def test_the_admin_index_is_titled_for_the_product(client):
    client.force_login(AdminFactory())
    assert "Support desk and billing" in client.get("/admin/").content.decode()


def test_the_ticket_list_has_no_column_the_filters_already_give(client):
    # whether a ticket tracks time is a filter and the ticket page's switch, not a column
    client.force_login(OperatorFactory())
    TicketFactory()
    response = client.get(reverse("admin:tickets_ticket_changelist"))
    html = response.content.decode()
    assert "column-track_time" not in html
    assert "By track time" in html
    assert "Hours this month" in html
