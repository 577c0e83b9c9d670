"""The ``assignee`` of a ticket in the API: read on every ticket, set when opening or with a
PATCH, refused (400, on the field) unless it is an active operator."""

import pytest

from tests.api.conftest import api_as
from tests.factories import FinanceFactory, OperatorFactory
from tickets.models import AuditAction, AuditEvent, Ticket


def patch(world, ticket, body, role="operator"):
    return api_as(world.users[role]).patch(f"/api/v1/tickets/{ticket.pk}/", body, format="json")


def test_tickets_show_their_assignee_and_nothing_else_changed(world):
    # given a ticket of alice
    Ticket.objects.filter(pk=world.ticket.pk).update(assignee=world.users["operator"])
    # when it is read, by staff and by its client
    for role in ("operator", "client"):
        data = api_as(world.users[role]).get(f"/api/v1/tickets/{world.ticket.pk}/").json()
        # then it names alice's id, beside the fields it always had
        assert data["assignee"] == world.users["operator"].pk
        assert set(data) == {
            "id",
            "client",
            "subscription",
            "subject",
            "status",
            "track_time",
            "hours_logged",
            "priority",
            "assignee",
        }


def test_patch_assigns_and_unassigns_with_an_audit_row(world):
    bob = OperatorFactory(username="bob")
    response = patch(world, world.ticket, {"assignee": bob.pk})
    assert response.status_code == 200
    assert response.json()["assignee"] == bob.pk
    event = AuditEvent.objects.get(ticket=world.ticket, action=AuditAction.TICKET_ASSIGNED)
    assert event.actor == world.users["operator"]

    response = patch(world, world.ticket, {"assignee": None})
    assert (response.status_code, response.json()["assignee"]) == (200, None)
    world.ticket.refresh_from_db()
    assert world.ticket.assignee is None


def test_a_patch_without_assignee_leaves_it(world):
    Ticket.objects.filter(pk=world.ticket.pk).update(assignee=world.users["operator"])
    response = patch(world, world.ticket, {"status": "on_hold"})
    assert response.json()["assignee"] == world.users["operator"].pk


@pytest.mark.parametrize(
    ("who", "message"),
    [
        ("finance", "fay is not an operator: a ticket can only be assigned to an active operator."),
        ("inactive", "ivy is not active: a ticket can only be assigned to an active operator."),
        ("missing", 'Invalid pk "999999" - object does not exist.'),
    ],
)
def test_only_an_active_operator_can_be_assigned(world, who, message):
    user_id = {
        "finance": lambda: FinanceFactory(username="fay").pk,
        "inactive": lambda: OperatorFactory(username="ivy", is_active=False).pk,
        "missing": lambda: 999999,
    }[who]()
    # when an operator assigns the ticket to someone who is not an active operator
    response = patch(world, world.ticket, {"assignee": user_id, "status": "closed"})
    # then it is a 400 on the field, and nothing changed (not even the status)
    assert response.status_code == 400
    assert response.json() == {"assignee": [message]}
    world.ticket.refresh_from_db()
    assert (world.ticket.assignee, world.ticket.status) == (None, "open")


def test_a_ticket_opened_with_an_assignee(world):
    bob = OperatorFactory(username="bob")
    body = {"client": world.acme.pk, "subject": "Printer", "assignee": bob.pk}
    response = api_as(world.users["operator"]).post("/api/v1/tickets/", body, format="json")
    assert response.status_code == 201
    assert response.json()["assignee"] == bob.pk


def test_a_ticket_opened_with_a_refused_assignee_is_not_opened(world):
    body = {"client": world.acme.pk, "subject": "Printer", "assignee": world.users["finance"].pk}
    response = api_as(world.users["operator"]).post("/api/v1/tickets/", body, format="json")
    assert response.status_code == 400
    assert list(response.json()) == ["assignee"]
    assert not Ticket.objects.filter(subject="Printer").exists()


def test_a_client_user_cannot_assign(world):
    response = patch(world, world.ticket, {"assignee": world.users["operator"].pk}, "client")
    assert response.status_code == 403
