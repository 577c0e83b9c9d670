"""The "By client" filter of the admin's ticket and billable item lists: every client while
there are few, only the one filtered by once there are many (customers/admin_filters.py)."""

import pytest
from django.urls import reverse

from customers.admin_filters import CLIENT_FILTER_LISTED
from tests.factories import (
    BillableItemFactory,
    ClientFactory,
    FinanceFactory,
    OperatorFactory,
    SubscriptionFactory,
    TicketFactory,
)

pytestmark = pytest.mark.django_db

TICKETS = reverse("admin:tickets_ticket_changelist")
ITEMS = reverse("admin:billing_billableitem_changelist")


def _client_choices(response) -> list[str] | None:
    """The client filter's entries in the sidebar ("All" first), None when it is not shown
    (the list leaves out a filter with nothing to offer)."""
    changelist = response.context["cl"]
    for spec in changelist.filter_specs:
        if spec.title == "client":
            return [str(choice["display"]) for choice in spec.choices(changelist)]
    return None


def _shown(response) -> set[int]:
    assert response.status_code == 200
    return {row.pk for row in response.context["cl"].result_list}


@pytest.fixture
def operator(client):
    client.force_login(OperatorFactory())
    return client


def test_few_clients_are_all_listed(operator):
    acme = ClientFactory(name="Acme")
    ClientFactory(name="Globex")
    mine = TicketFactory(subscription=SubscriptionFactory(client=acme))
    TicketFactory(subscription=SubscriptionFactory(client=ClientFactory(name="Initech")))

    assert _client_choices(operator.get(TICKETS)) == ["All", "Acme", "Globex", "Initech"]
    assert _shown(operator.get(TICKETS, {"client__id__exact": acme.pk})) == {mine.pk}


def test_many_clients_are_not_listed_but_the_one_filtered_by(operator):
    clients = [ClientFactory(name=f"Client {n:03}") for n in range(CLIENT_FILTER_LISTED + 1)]
    tickets = {c.pk: TicketFactory(subscription=SubscriptionFactory(client=c)) for c in clients}
    chosen = clients[17]

    page = operator.get(TICKETS)
    assert _client_choices(page) is None
    assert b"Client 003" not in page.content.split(b'id="changelist-filter"')[-1]
    assert len(_shown(page)) == len(clients)

    # the client's name in its row links to the list filtered by that client
    link = f'<a href="?client__id__exact={chosen.pk}" title="Show only this client">Client 017</a>'
    assert link in page.content.decode()
    filtered = operator.get(TICKETS, {"client__id__exact": chosen.pk})
    assert _client_choices(filtered) == ["All", "Client 017"]
    assert _shown(filtered) == {tickets[chosen.pk].pk}


@pytest.mark.parametrize("value", ["abc", "-1", "99999999", "1" * 30, "\u00b2", "\u0661"])
def test_a_value_that_is_no_client_lists_nothing(operator, value):
    TicketFactory(subscription=SubscriptionFactory(client=ClientFactory(pk=1)))
    assert _shown(operator.get(TICKETS, {"client__id__exact": value})) == set()


def test_an_unknown_client_among_many_stays_shown_to_leave_it(operator):
    for n in range(CLIENT_FILTER_LISTED + 1):
        TicketFactory(subscription=SubscriptionFactory(client=ClientFactory(name=f"C{n}")))
    page = operator.get(TICKETS, {"client__id__exact": "99999999"})
    assert _shown(page) == set()
    assert _client_choices(page) == ["All", "#99999999 (no such client)"]


def test_billable_items_filter_alike(client):
    client.force_login(FinanceFactory())
    clients = [ClientFactory(name=f"Client {n:03}") for n in range(CLIENT_FILTER_LISTED + 1)]
    items = {c.pk: BillableItemFactory(subscription=SubscriptionFactory(client=c)) for c in clients}
    chosen = clients[4]

    page = client.get(ITEMS)
    assert _client_choices(page) is None
    assert f'href="?client__id__exact={chosen.pk}"' in page.content.decode()
    filtered = client.get(ITEMS, {"client__id__exact": chosen.pk})
    assert _client_choices(filtered) == ["All", "Client 004"]
    assert _shown(filtered) == {items[chosen.pk].pk}
