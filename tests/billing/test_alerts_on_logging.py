"""Logging, changing or deleting time tells billing (``tickets.signals.time_entries_changed``,
on commit), which queues the usage alert check of that subscription: the alert goes out
without waiting for (or needing) the periodic check."""

import datetime as dt
from decimal import Decimal

import pytest
from django.core import mail
from django.db import transaction
from django.urls import reverse

from billing.models import UsageAlert
from tests.billing.conftest import api_as
from tests.factories import (
    ClientUserFactory,
    OperatorFactory,
    SubscriptionFactory,
    TicketFactory,
    TimeEntryFactory,
    package_with_prices,
)
from tickets import services
from tickets.models import TimeEntry, TimeTimer
from tickets.signals import time_entries_changed

pytestmark = pytest.mark.django_db
NOW = dt.datetime(2026, 11, 20, 10, 0, tzinfo=dt.UTC)
NOVEMBER, OCTOBER = dt.date(2026, 11, 1), dt.date(2026, 10, 1)
ALERT_80 = "80% of your included support hours used"


@pytest.fixture(autouse=True)
def _frozen_and_eager(time_machine, celery_eager):
    """Tasks run in this process, as in the embedded default; no beat runs here."""
    time_machine.move_to(NOW, tick=False)


@pytest.fixture
def operator():
    return OperatorFactory(username="olga")


@pytest.fixture
def ticket():
    """10 h included a month, 7.75 h used in November; the client has one user with e-mail."""
    package = package_with_prices(name="Gold", included_hours=Decimal("10.00"))
    subscription = SubscriptionFactory(package=package, start_date=dt.date(2026, 9, 1))
    ClientUserFactory(client=subscription.client, user__email="cto@client.test")
    ticket = TicketFactory(subscription=subscription, subject="VPN down")
    TimeEntryFactory(ticket=ticket, hours=Decimal("7.75"), work_date=dt.date(2026, 11, 3))
    return ticket


@pytest.fixture
def events():
    """What billing is told, as a receiver sees it."""
    seen: list[tuple[int, tuple[dt.date, ...]]] = []

    def receiver(sender, *, subscription_id, months, **kwargs):
        seen.append((subscription_id, months))

    time_entries_changed.connect(receiver, dispatch_uid="test-events")
    yield seen
    time_entries_changed.disconnect(dispatch_uid="test-events")


def alerts_sent() -> list[tuple[list[str], str]]:
    return [(message.to, message.subject) for message in mail.outbox]


def test_logging_time_in_the_admin_sends_the_alert(
    client, operator, ticket, django_capture_on_commit_callbacks
):
    # given 7.75 of 10 h used and no alert yet
    client.force_login(operator)
    # when the operator saves 0.25 h on the ticket's page (reaching 80 %)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("admin:tickets_ticket_log", args=[ticket.pk]), {"hours": "0.25"}
        )
    # then the client's user gets the alert, with no periodic check having run
    assert response.status_code == 302
    [(to, subject)] = alerts_sent()
    assert to == ["cto@client.test"] and ALERT_80 in subject
    assert UsageAlert.objects.get().sent_at is not None


def test_logging_time_through_the_api_sends_the_alert(
    operator, ticket, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = api_as(operator).post(
            f"/api/v1/tickets/{ticket.pk}/time-entries/", {"hours": "1.00"}, format="json"
        )
    assert response.status_code == 201, response.content
    [(to, subject)] = alerts_sent()
    assert to == ["cto@client.test"] and ALERT_80 in subject


def test_changing_an_entry_through_the_api_sends_the_alert(
    operator, ticket, django_capture_on_commit_callbacks
):
    entry = TimeEntryFactory(ticket=ticket, hours=Decimal("0.25"), work_date=NOW.date())
    with django_capture_on_commit_callbacks(execute=True):
        response = api_as(operator).patch(
            f"/api/v1/time-entries/{entry.pk}/", {"hours": "2.00"}, format="json"
        )
    assert response.status_code == 200, response.content
    [(to, subject)] = alerts_sent()
    assert to == ["cto@client.test"] and ALERT_80 in subject


def test_stopping_a_timer_sends_the_alert(
    client, operator, ticket, django_capture_on_commit_callbacks
):
    # given a timer started 20 minutes ago (0.5 h once rounded up)
    TimeTimer.objects.create(
        ticket=ticket, operator=operator, started_at=NOW - dt.timedelta(minutes=20)
    )
    client.force_login(operator)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("admin:tickets_ticket_timer_stop", args=[ticket.pk]))
    assert response.status_code == 302
    assert TimeEntry.objects.filter(hours=Decimal("0.50")).exists()
    assert len(alerts_sent()) == 1


def test_time_that_is_rolled_back_sends_nothing(
    operator, ticket, events, django_capture_on_commit_callbacks
):
    # when time reaching 80 % is logged in a transaction that then fails
    with (
        django_capture_on_commit_callbacks(execute=True),
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        services.time_entry_log(ticket=ticket, operator=operator, hours="1")
        raise RuntimeError("something later in the same transaction failed")
    # then billing was told nothing, and no alert was recorded or sent
    assert events == []
    assert not UsageAlert.objects.exists()
    assert mail.outbox == []


def test_billing_is_told_which_subscription_and_months(
    operator, ticket, events, django_capture_on_commit_callbacks
):
    subscription_id = ticket.subscription_id
    with django_capture_on_commit_callbacks(execute=True):
        entry = services.time_entry_log(ticket=ticket, operator=operator, hours="0.5")
    with django_capture_on_commit_callbacks(execute=True):
        services.time_entry_change(entry=entry, actor=operator, work_date=dt.date(2026, 10, 30))
    with django_capture_on_commit_callbacks(execute=True):
        services.time_entry_change(entry=entry, actor=operator, note="only the note")
    with django_capture_on_commit_callbacks(execute=True):
        services.time_entry_delete(entry=entry, actor=operator)

    assert events == [
        (subscription_id, (NOVEMBER,)),
        (subscription_id, (OCTOBER, NOVEMBER)),  # moved: both months changed
        # a new note changes no figure: nothing to tell
        (subscription_id, (OCTOBER,)),
    ]


def test_a_failing_receiver_does_not_undo_or_fail_the_logging(
    client, operator, ticket, django_capture_on_commit_callbacks
):
    def broken(sender, **kwargs):
        raise RuntimeError("receiver bug")

    time_entries_changed.connect(broken, dispatch_uid="test-broken")
    try:
        client.force_login(operator)
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(
                reverse("admin:tickets_ticket_log", args=[ticket.pk]), {"hours": "0.25"}
            )
    finally:
        time_entries_changed.disconnect(dispatch_uid="test-broken")
    # the time is saved, and billing's own receiver still sent the alert
    assert response.status_code == 302
    assert TimeEntry.objects.count() == 2
    assert len(alerts_sent()) == 1
