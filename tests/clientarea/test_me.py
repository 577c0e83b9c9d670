"""``GET /me.json``: who is signed in, for the portal's scripts. A client user gets their own
name, client and role; everyone else a JSON refusal (never a redirect to an HTML page)."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from customers.models import ClientUser
from tests.factories import (
    AdminFactory,
    ClientUserFactory,
    FinanceFactory,
    OperatorFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db
URL = "/me.json"


def test_a_client_user_gets_their_own_name_client_and_role(client):
    # given two clients, each with a user
    mine = ClientUserFactory(
        client__name="Acme", client__currency="EUR", user__first_name="Ada", user__last_name="Ko"
    )
    ClientUserFactory(client__name="Other Corp", user__first_name="Bob")
    client.force_login(mine.user)

    response = client.get(URL)

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["user"] == {
        "id": mine.user.pk,
        "username": mine.user.username,
        "name": "Ada Ko",
        "email": mine.user.email,
    }
    assert body["client"] == {"id": mine.client.pk, "name": "Acme", "currency": "EUR"}
    assert body["role"] == "client"
    assert body["links"]["dashboard"] == "/"
    assert body["links"]["tickets"] == "/tickets/"
    assert "Other Corp" not in response.content.decode()
    assert "Bob" not in response.content.decode()


def test_a_user_without_a_full_name_is_named_by_their_username(client):
    mine = ClientUserFactory(user__first_name="", user__last_name="")
    client.force_login(mine.user)

    assert client.get(URL).json()["user"]["name"] == mine.user.username


def test_anonymous_users_are_asked_to_sign_in_in_json(client):
    response = client.get(URL)

    assert response.status_code == 401
    assert response.json() == {"detail": "Sign in first.", "login_url": "/login/"}


@pytest.mark.parametrize("staff_factory", [OperatorFactory, FinanceFactory, AdminFactory])
def test_staff_are_refused_even_when_linked_to_a_client(client, staff_factory):
    staff = staff_factory()
    linked = ClientUserFactory()
    ClientUser.objects.create(user=staff, client=linked.client)
    client.force_login(staff)

    response = client.get(URL)

    assert response.status_code == 403
    body = response.json()
    assert body["detail"] == "Staff use the admin; the client portal is for client users."
    assert body["admin_url"] == "/admin/"
    assert linked.client.name not in response.content.decode()


def test_a_user_of_no_client_is_refused(client):
    client.force_login(UserFactory())

    response = client.get(URL)

    assert response.status_code == 403
    assert response.json() == {"detail": "Your login is not linked to a client account."}


def test_only_get_is_allowed(client):
    client.force_login(ClientUserFactory().user)

    assert client.post(URL).status_code == 405


def test_it_reads_the_session_the_user_and_the_membership_only(client):
    client.force_login(ClientUserFactory().user)

    with CaptureQueriesContext(connection) as context:
        assert client.get(URL).status_code == 200

    assert len(context.captured_queries) == 3
