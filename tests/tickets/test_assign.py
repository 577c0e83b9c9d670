"""Who answers a ticket: ticket_assign's refusals and audit, and the automatic assignment of
new tickets (settings.TICKET_AUTO_ASSIGN)."""

import pytest
from django.core.exceptions import ValidationError

from tests.factories import (
    ClientFactory,
    FinanceFactory,
    OperatorFactory,
    TicketFactory,
    UserFactory,
)
from tests.test_settings import settings_with
from tickets.models import AuditAction, AuditEvent, Ticket
from tickets.services import ticket_assign, ticket_create, ticket_open, ticket_update

pytestmark = pytest.mark.django_db


def assign_events(ticket: Ticket) -> list[dict]:
    return list(
        AuditEvent.objects.filter(ticket=ticket, action=AuditAction.TICKET_ASSIGNED)
        .order_by("pk")
        .values_list("detail", flat=True)
    )


def test_assigning_an_operator_is_audited_with_who_did_it():
    # given an unassigned ticket and two operators
    olga, tom = OperatorFactory(username="olga"), OperatorFactory(username="tom")
    ticket = TicketFactory()
    # when tom assigns it to olga
    ticket_assign(ticket=ticket, assignee=olga, actor=tom)
    # then olga has it, and the audit trail says who gave it to whom
    ticket.refresh_from_db()
    assert ticket.assignee == olga
    event = AuditEvent.objects.get(ticket=ticket, action=AuditAction.TICKET_ASSIGNED)
    assert event.actor == tom
    assert event.detail == {"assignee": ["", "olga"], "assignee_id": olga.pk}


def test_unassigning_and_an_unchanged_assignee():
    olga = OperatorFactory(username="olga")
    ticket = TicketFactory(assignee=olga)
    ticket_assign(ticket=ticket, assignee=olga, actor=olga)  # no change: nothing recorded
    assert assign_events(ticket) == []
    ticket_assign(ticket=ticket, assignee=None, actor=olga)
    ticket.refresh_from_db()
    assert ticket.assignee is None
    assert assign_events(ticket) == [{"assignee": ["olga", ""], "assignee_id": None}]


@pytest.mark.parametrize(
    ("make_user", "message"),
    [
        (lambda: FinanceFactory(username="fay"), "fay is not an operator"),
        (lambda: UserFactory(username="carl"), "carl is not an operator"),  # a client's login
        (lambda: OperatorFactory(username="ivy", is_active=False), "ivy is not active"),
        (lambda: OperatorFactory(username="sam", is_staff=False), "sam is not an operator"),
    ],
)
def test_only_an_active_operator_can_be_assigned(make_user, message):
    # given a ticket of olga
    olga = OperatorFactory(username="olga")
    ticket = TicketFactory(assignee=olga)
    # when it is given to someone who is not an active operator
    with pytest.raises(ValidationError) as refused:
        ticket_assign(ticket=ticket, assignee=make_user(), actor=olga)
    # then it is refused on the assignee, with the reason, and nothing changes
    assert message in refused.value.message_dict["assignee"][0]
    ticket.refresh_from_db()
    assert ticket.assignee == olga
    assert assign_events(ticket) == []


def test_ticket_update_changes_the_assignee_with_the_rest_all_or_nothing():
    olga = OperatorFactory(username="olga")
    ticket = TicketFactory()
    with pytest.raises(ValidationError):
        ticket_update(
            ticket=ticket, actor=olga, status="closed", assignee=FinanceFactory(username="fay")
        )
    ticket.refresh_from_db()
    assert (ticket.status, ticket.assignee) == ("open", None)
    ticket_update(ticket=ticket, actor=olga, assignee=olga)
    ticket.refresh_from_db()
    assert ticket.assignee == olga


# --- automatic assignment of new tickets ---------------------------------------------------


def open_ticket(subject: str = "Printer", **kwargs) -> Ticket:
    ticket = ticket_create(
        client=ClientFactory(), subject=subject, body="Jammed.", author=None, **kwargs
    )
    ticket.refresh_from_db()
    return ticket


def test_by_default_new_tickets_are_not_assigned(settings):
    assert settings.TICKET_AUTO_ASSIGN == "none"
    OperatorFactory()
    assert open_ticket().assignee is None


def test_round_robin_hands_new_tickets_to_the_active_operators_in_turn(settings):
    # given round robin, three operators (one inactive) and a finance user
    settings.TICKET_AUTO_ASSIGN = "round_robin"
    anna = OperatorFactory(username="anna")
    OperatorFactory(username="ivy", is_active=False)
    bob = OperatorFactory(username="bob")
    FinanceFactory()
    # when four tickets are opened, with a manual assignment in between
    first, second = open_ticket("1"), open_ticket("2")
    ticket_assign(ticket=second, assignee=anna, actor=anna)  # does not move the turn
    third, fourth = open_ticket("3"), open_ticket("4")
    # then the active operators got them in turn (by id), wrapping round
    assert [t.assignee for t in (first, third, fourth)] == [anna, anna, bob]
    assert [e["assignee"][1] for e in assign_events(second)] == ["bob", "anna"]
    # and each automatic assignment is audited as such, by nobody
    event = AuditEvent.objects.filter(ticket=third, action=AuditAction.TICKET_ASSIGNED).get()
    assert (event.actor, event.detail["auto"]) == (None, True)


def test_round_robin_with_no_active_operator_leaves_the_ticket_unassigned(settings):
    settings.TICKET_AUTO_ASSIGN = "round_robin"
    OperatorFactory(is_active=False)
    assert open_ticket().assignee is None


def test_an_assignee_given_when_opening_wins_over_the_turn(settings):
    settings.TICKET_AUTO_ASSIGN = "round_robin"
    OperatorFactory(username="anna")
    bob = OperatorFactory(username="bob")
    ticket = ticket_open(
        client=ClientFactory(), subject="Printer", body="Jammed.", author=bob, assignee=bob
    )
    ticket.refresh_from_db()
    assert ticket.assignee == bob
    assert [e["assignee"] for e in assign_events(ticket)] == [["", "bob"]]


def test_an_unknown_auto_assignment_rule_stops_the_process_at_startup():
    refused = settings_with(SECRET_KEY="k", TICKET_AUTO_ASSIGN="random")
    assert refused.returncode != 0
    assert 'TICKET_AUTO_ASSIGN must be "none" or "round_robin".' in refused.stderr
    assert settings_with(SECRET_KEY="k", TICKET_AUTO_ASSIGN="round_robin").returncode == 0
