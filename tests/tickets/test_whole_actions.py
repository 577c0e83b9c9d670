"""The services that do a whole action of the admin or the API in one transaction: open a ticket
with its tracking and status, update a ticket, close a ticket with the time logged on it."""

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from tests.factories import (
    ClientFactory,
    OperatorFactory,
    SubscriptionFactory,
    TicketFactory,
)
from tickets.models import AuditAction, AuditEvent, Ticket, TicketStatus, TimeEntry
from tickets.services import ticket_close, ticket_open, ticket_update

pytestmark = pytest.mark.django_db

TODAY = dt.date(2026, 11, 24)


@pytest.fixture(autouse=True)
def today(time_machine):
    time_machine.move_to(dt.datetime(2026, 11, 24, 10, 0, tzinfo=dt.UTC), tick=False)


def _actions(ticket: Ticket) -> list[str]:
    return list(
        AuditEvent.objects.filter(ticket=ticket).order_by("pk").values_list("action", flat=True)
    )


def test_a_ticket_opens_untracked_and_closed_with_both_changes_audited():
    operator = OperatorFactory()
    ticket = ticket_open(
        client=ClientFactory(),
        subject="Printer",
        body="Jammed.",
        author=operator,
        track_time=False,
        status=TicketStatus.CLOSED,
    )
    ticket.refresh_from_db()
    assert (ticket.track_time, ticket.status) == (False, TicketStatus.CLOSED)
    assert _actions(ticket) == [AuditAction.TRACKING_SWITCHED, AuditAction.TICKET_CLOSED]


def test_a_ticket_opened_with_the_defaults_records_nothing_more():
    ticket = ticket_open(client=ClientFactory(), subject="Printer", body="Jammed.", author=None)
    assert (ticket.track_time, ticket.status) == (True, TicketStatus.OPEN)
    assert _actions(ticket) == []


def test_a_refused_status_opens_no_ticket():
    with pytest.raises(ValidationError):
        ticket_open(
            client=ClientFactory(), subject="Printer", body="Jammed.", author=None, status="bogus"
        )
    assert not Ticket.objects.exists()


def test_an_update_changes_only_what_it_is_given():
    ticket = TicketFactory()
    subscription = ticket.subscription
    ticket_update(ticket=ticket, actor=None, track_time=False)
    ticket.refresh_from_db()
    assert ticket.subscription == subscription and not ticket.track_time
    assert _actions(ticket) == [AuditAction.TRACKING_SWITCHED]


def test_an_update_unlinks_the_subscription_when_given_none():
    ticket = TicketFactory()
    ticket_update(ticket=ticket, actor=None, subscription=None)
    ticket.refresh_from_db()
    assert ticket.subscription is None


def test_an_update_with_a_refused_part_changes_nothing():
    ticket = TicketFactory()
    other = SubscriptionFactory(client=ticket.client)
    with pytest.raises(ValidationError):
        ticket_update(ticket=ticket, actor=None, subscription=other, status="bogus")
    ticket.refresh_from_db()
    assert ticket.subscription != other
    assert _actions(ticket) == []


def test_closing_with_hours_logs_them_then_closes():
    operator = OperatorFactory()
    ticket = TicketFactory()
    entry = ticket_close(ticket=ticket, actor=operator, hours="1h 15m", note="Done")
    ticket.refresh_from_db()
    assert entry is not None and entry.hours == Decimal("1.25") and entry.work_date == TODAY
    assert ticket.status == TicketStatus.CLOSED
    assert _actions(ticket) == [AuditAction.TIME_LOGGED, AuditAction.TICKET_CLOSED]


def test_closing_without_hours_logs_nothing():
    ticket = TicketFactory()
    assert ticket_close(ticket=ticket, actor=OperatorFactory(), hours=" ") is None
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.CLOSED
    assert not TimeEntry.objects.exists()


def test_refused_hours_leave_the_ticket_open():
    ticket = TicketFactory()
    with pytest.raises(ValidationError):
        ticket_close(ticket=ticket, actor=OperatorFactory(), hours="0.30")
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.OPEN
    assert not TimeEntry.objects.exists()
    assert _actions(ticket) == []
