"""The live timer on the ticket's admin page: anchored on the server, rounded up to the
quarter hour on Stop, discarded on Cancel, shown on every admin page."""

import datetime as dt
from decimal import Decimal

import pytest
from django.urls import reverse

from tests.factories import OperatorFactory, SubscriptionFactory, TicketFactory
from tickets.models import AuditAction, AuditEvent, TimeEntry, TimeTimer

pytestmark = pytest.mark.django_db
START = dt.datetime(2026, 11, 20, 10, 0, tzinfo=dt.UTC)


@pytest.fixture
def operator(client):
    user = OperatorFactory(username="tom")
    client.force_login(user)
    return user


@pytest.fixture
def ticket():
    return TicketFactory(subject="Mail bounces")


def url(name, ticket):
    return reverse(f"admin:tickets_ticket_{name}", args=[ticket.pk])


def start_timer(client, ticket, time_machine):
    time_machine.move_to(START, tick=False)
    assert client.post(url("timer_start", ticket)).status_code == 302


@pytest.mark.parametrize(
    ("elapsed", "hours"),
    [
        (dt.timedelta(seconds=5), Decimal("0.25")),
        (dt.timedelta(minutes=1), Decimal("0.25")),
        (dt.timedelta(minutes=15), Decimal("0.25")),
        (dt.timedelta(minutes=16), Decimal("0.50")),
        (dt.timedelta(minutes=61), Decimal("1.25")),
    ],
)
def test_stop_rounds_up_to_the_next_quarter_hour(
    client, operator, ticket, time_machine, elapsed, hours
):
    # given a timer started at 10:00
    start_timer(client, ticket, time_machine)
    # when it is stopped later
    time_machine.move_to(START + elapsed, tick=False)
    response = client.post(url("timer_stop", ticket), {"note": "bounce logs"})
    # then the elapsed time, rounded up, is a new entry and the timer is gone
    assert response.status_code == 302
    entry = TimeEntry.objects.get(ticket=ticket)
    assert (entry.hours, entry.operator, entry.note) == (hours, operator, "bounce logs")
    assert not TimeTimer.objects.exists()
    actions = list(AuditEvent.objects.filter(ticket=ticket).values_list("action", flat=True))
    assert actions == [
        AuditAction.TIMER_STARTED,
        AuditAction.TIME_LOGGED,
        AuditAction.TIMER_STOPPED,
    ]


def test_the_timer_survives_a_reload_and_shows_on_every_admin_page(
    client, operator, ticket, time_machine
):
    start_timer(client, ticket, time_machine)
    # the ticket page, loaded again, shows the running timer with Stop and Cancel
    html = client.get(reverse("admin:tickets_ticket_change", args=[ticket.pk])).content.decode()
    assert "Timer running" in html
    assert 'id="timer-stop"' in html and 'id="timer-cancel"' in html
    assert 'data-started="2026-11-20T10:00:00+00:00"' in html
    # any other admin page shows it with a link to the ticket
    index = client.get(reverse("admin:index")).content.decode()
    assert "Running timers" in index
    assert reverse("admin:tickets_ticket_change", args=[ticket.pk]) in index
    assert "Mail bounces" in index


def test_another_operator_does_not_see_my_timer(client, operator, ticket, time_machine):
    start_timer(client, ticket, time_machine)
    client.force_login(OperatorFactory())
    assert "Running timers" not in client.get(reverse("admin:index")).content.decode()


def test_a_note_with_a_nul_character_is_refused_and_the_timer_runs_on(
    client, operator, ticket, time_machine
):
    start_timer(client, ticket, time_machine)
    time_machine.move_to(START + dt.timedelta(minutes=20), tick=False)
    response = client.post(url("timer_stop", ticket), {"note": "bounce\x00logs"})
    assert response.status_code == 400
    assert "The note cannot contain NUL characters." in response.content.decode()
    assert not TimeEntry.objects.exists()
    assert TimeTimer.objects.get().started_at == START


def test_cancel_discards_the_timer(client, operator, ticket, time_machine):
    start_timer(client, ticket, time_machine)
    time_machine.move_to(START + dt.timedelta(minutes=40), tick=False)
    response = client.post(url("timer_cancel", ticket))
    assert response.status_code == 302
    assert not TimeEntry.objects.exists()
    assert not TimeTimer.objects.exists()
    cancelled = AuditEvent.objects.get(action=AuditAction.TIMER_CANCELLED)
    assert (cancelled.actor, cancelled.detail["minutes"]) == (operator, "40.0")


def test_starting_twice_is_refused(client, operator, ticket, time_machine):
    start_timer(client, ticket, time_machine)
    response = client.post(url("timer_start", ticket))
    assert response.status_code == 400
    assert "already running" in response.content.decode()
    assert TimeTimer.objects.get().started_at == START


def test_stop_or_cancel_without_a_timer_is_refused(client, operator, ticket):
    for name in ("timer_stop", "timer_cancel"):
        response = client.post(url(name, ticket))
        assert response.status_code == 400
        assert "You have no timer running on this ticket." in response.content.decode()


def test_timer_refused_where_time_cannot_be_logged(client, operator, time_machine):
    untracked = TicketFactory(track_time=False)
    response = client.post(url("timer_start", untracked))
    assert response.status_code == 400
    assert "This ticket does not track time." in response.content.decode()
    assert not TimeTimer.objects.exists()


def test_a_refused_stop_keeps_the_timer_running(client, operator, ticket, time_machine):
    # given a running timer whose subscription was suspended meanwhile
    start_timer(client, ticket, time_machine)
    subscription = ticket.subscription
    subscription.status = "suspended"
    subscription.save()
    # when the operator stops it, the refusal is shown and the timer still runs
    response = client.post(url("timer_stop", ticket), {"note": "typed"})
    assert response.status_code == 400
    assert "suspended" in response.content.decode()
    assert 'aria-label="Timer note" value="typed"' in response.content.decode()
    assert TimeTimer.objects.filter(ticket=ticket).exists()


def test_timer_of_a_ticket_without_subscription_is_refused(client, operator):
    ticket = TicketFactory(subscription=None, client=SubscriptionFactory().client)
    response = client.post(url("timer_start", ticket))
    assert response.status_code == 400
    assert "no subscription" in response.content.decode()
