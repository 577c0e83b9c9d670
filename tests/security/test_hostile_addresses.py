"""A NUL character (``%00``) in an address answers 400 everywhere, never a server error:
PostgreSQL refuses NUL in a text parameter, so every admin filter, search and lookup with one
would otherwise fail inside the database."""

import pytest
from django.contrib import admin
from django.test import Client

pytestmark = pytest.mark.django_db

NUL = "%00"


def _lookups(model_admin) -> list[str]:
    """The query parameters a changelist reads: search, a status filter, each list filter."""
    names = ["q", "status__exact", "pk", "id__exact"]
    for entry in model_admin.list_filter:
        if isinstance(entry, str):
            names += [f"{entry}__exact", entry]
        elif isinstance(entry, tuple) and isinstance(entry[0], str):
            names.append(f"{entry[0]}__exact")
        else:
            names.append(entry.parameter_name if hasattr(entry, "parameter_name") else "x")
    return names


CHANGELISTS = sorted(
    (f"{model._meta.app_label}/{model._meta.model_name}", _lookups(model_admin))
    for model, model_admin in admin.site._registry.items()
)


def _administrator(world) -> Client:
    browser = Client(raise_request_exception=False)  # a 500 must show up as a status code
    browser.force_login(world.users["administrator"])
    return browser


@pytest.mark.parametrize(("changelist", "lookups"), CHANGELISTS, ids=[c for c, _ in CHANGELISTS])
def test_a_nul_in_any_changelist_filter_or_search_is_a_400(world, changelist, lookups):
    browser = _administrator(world)
    for name in lookups:
        # when an administrator's browser sends a NUL in a filter, the search or a lookup
        response = browser.get(f"/admin/{changelist}/?{name}={NUL}")
        # then the page answers 400 with a plain reason, not a server error
        assert response.status_code == 400, (name, response.status_code)
        assert "NUL character" in response.content.decode()


def test_a_nul_in_an_admin_object_address_is_a_400(world):
    browser = _administrator(world)
    assert browser.get(f"/admin/authtoken/tokenproxy/{NUL}/change/").status_code == 400


def test_a_nul_in_the_api_and_the_portal_is_a_400(world):
    api = Client(raise_request_exception=False)
    api.force_login(world.users["operator"])
    response = api.get(f"/api/v1/tickets/?status={NUL}")
    assert response.status_code == 400
    assert response.json() == {"detail": "A NUL character is not allowed in the address."}
    portal = Client(raise_request_exception=False)
    portal.force_login(world.users["client_a"])
    assert portal.get(f"/tickets/?q=x{NUL}y").status_code == 400


@pytest.mark.parametrize("charset", ["rot13", "base64", "undefined"])
def test_a_charset_that_is_no_text_encoding_is_a_400(world, charset):
    # given a client's reply form sent as multipart with a codec that is no text encoding
    portal = Client(raise_request_exception=False)
    portal.force_login(world.users["client_a"])
    boundary = "b0undary"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="body"\r\n\r\nhello\r\n'
        f"--{boundary}--\r\n"
    )
    # (generic(): the test client's post() would encode the body with that charset itself)
    response = portal.generic(
        "POST",
        "/tickets/new/",
        data=body.encode(),
        content_type=f"multipart/form-data; boundary={boundary}; charset={charset}",
    )
    # then it is refused with the reason, as the API's JSON is
    assert response.status_code == 400
    assert f"The request's charset, {charset}, is not a text encoding." in response.content.decode()
    api = Client(raise_request_exception=False)
    api.force_login(world.users["operator"])
    response = api.generic(
        "POST", "/api/v1/tickets/", data=b"{}", content_type=f"application/json; charset={charset}"
    )
    assert response.status_code == 400
    assert response.json() == {
        "detail": f"The request's charset, {charset}, is not a text encoding."
    }


def test_a_text_encoding_of_more_than_one_byte_is_read(world):
    # given a ticket sent to the API as UTF-16 JSON
    api = Client(raise_request_exception=False)
    api.force_login(world.users["operator"])
    body = f'{{"client": {world.a.client.pk}, "subject": "Printer"}}'
    response = api.generic(
        "POST",
        "/api/v1/tickets/",
        data=body.encode("utf-16"),
        content_type="application/json; charset=utf-16",
    )
    # then it is read like any other
    assert response.status_code == 201, response.content
    assert response.json()["subject"] == "Printer"


def test_ordinary_filters_still_work(world):
    browser = _administrator(world)
    assert browser.get("/admin/tickets/ticket/?q=mail&status__exact=open").status_code == 200
