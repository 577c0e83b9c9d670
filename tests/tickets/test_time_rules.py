"""Where, when and how much time can be logged: every rule of docs/billing-rules.md with its
refusals, through the services the admin, the portal and the API all call."""

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from billing.selectors.portal import client_subscription_usages
from billing.services.rollup import period_close
from packages.models import BillingMode, SubscriptionStatus
from packages.services import subscription_create, subscription_status_set
from tests.factories import (
    ClientFactory,
    OperatorFactory,
    SubscriptionFactory,
    TicketFactory,
    TimeEntryFactory,
    package_with_prices,
)
from tickets.models import AuditAction, AuditEvent, TimeEntry
from tickets.services import (
    ticket_subscription_set,
    ticket_tracking_set,
    time_entry_change,
    time_entry_delete,
    time_entry_log,
)

pytestmark = pytest.mark.django_db

OCTOBER = dt.date(2026, 10, 1)
NOVEMBER = dt.date(2026, 11, 1)
TODAY = dt.date(2026, 11, 24)


@pytest.fixture(autouse=True)
def today(time_machine):
    time_machine.move_to(dt.datetime(2026, 11, 24, 10, 0, tzinfo=dt.UTC), tick=False)


@pytest.fixture
def operator():
    return OperatorFactory()


@pytest.fixture
def ticket():
    return TicketFactory()


def refusal(excinfo) -> str:
    return " ".join(excinfo.value.messages)


# --- Hours: Decimal quarter hours, more than zero, at most 24 -----------------------------


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("0.25", Decimal("0.25")),
        ("1,5", Decimal("1.50")),
        ("1:15", Decimal("1.25")),
        ("75m", Decimal("1.25")),
        ("1h 15m", Decimal("1.25")),
        ("1.5h", Decimal("1.50")),
        ("2,25 h", Decimal("2.25")),
        ("24", Decimal("24.00")),
        (Decimal("2.75"), Decimal("2.75")),
        (3, Decimal("3.00")),
    ],
)
def test_hours_in_quarter_steps_are_logged(ticket, operator, typed, stored):
    # when an operator logs time typed in any accepted form
    entry = time_entry_log(ticket=ticket, operator=operator, hours=typed, work_date=TODAY)
    # then exactly that many hours are stored, as a Decimal
    entry.refresh_from_db()
    assert entry.hours == stored
    assert isinstance(entry.hours, Decimal)


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("0.30", "steps of 0.25"),
        ("0.1", "steps of 0.25"),
        ("1:10", "steps of 0.25"),
        ("0", "more than zero"),
        ("0.00", "more than zero"),
        (0, "more than zero"),
        (-1, "more than zero"),
        (Decimal("-0.25"), "more than zero"),
        ("-1", "Enter hours as"),
        ("24.25", "at most 24"),
        ("25", "at most 24"),
        ("abc", "Enter hours as"),
        ("", "Enter hours as"),
        (None, "Enter hours as"),
        ("1.2.3", "Enter hours as"),
        (0.25, "Enter hours as"),  # a float cannot hold every decimal exactly
        (True, "Enter hours as"),
        (Decimal("NaN"), "Enter hours as"),
        (Decimal("Infinity"), "Enter hours as"),
    ],
)
def test_hours_outside_the_rules_are_refused(ticket, operator, typed, message):
    # when an operator logs hours that break a rule
    with pytest.raises(ValidationError) as excinfo:
        time_entry_log(ticket=ticket, operator=operator, hours=typed, work_date=TODAY)
    # then they read why, and nothing is stored
    assert message in refusal(excinfo)
    assert not TimeEntry.objects.exists()


def test_changing_hours_follows_the_same_rules(ticket, operator):
    entry = time_entry_log(ticket=ticket, operator=operator, hours="1", work_date=TODAY)
    for typed in ("0.30", "0", "24.25", "abc"):
        with pytest.raises(ValidationError):
            time_entry_change(entry=entry, actor=operator, hours=typed)
    entry.refresh_from_db()
    assert entry.hours == Decimal("1.00")


# --- Where time can be logged ------------------------------------------------------------


def test_a_ticket_that_does_not_track_time_refuses_time(operator):
    ticket = TicketFactory(track_time=False)
    with pytest.raises(ValidationError) as excinfo:
        time_entry_log(ticket=ticket, operator=operator, hours="1", work_date=TODAY)
    assert "does not track time" in refusal(excinfo)
    assert excinfo.value.code == "not_tracked"


def test_switching_tracking_off_stops_time_on_the_ticket(ticket, operator):
    # given a ticket whose tracking an operator switches off
    ticket_tracking_set(ticket=ticket, track_time=False, actor=operator)
    # then time on it is refused, even through a stale copy of the ticket
    stale = TicketFactory._meta.model.objects.get(pk=ticket.pk)
    stale.track_time = True
    with pytest.raises(ValidationError, match="does not track time"):
        time_entry_log(ticket=stale, operator=operator, hours="1", work_date=TODAY)


def test_a_ticket_without_subscription_refuses_time(operator):
    ticket = TicketFactory(subscription=None)
    with pytest.raises(ValidationError) as excinfo:
        time_entry_log(ticket=ticket, operator=operator, hours="1", work_date=TODAY)
    assert "no subscription" in refusal(excinfo)


@pytest.mark.parametrize(
    "status",
    [SubscriptionStatus.SUSPENDED, SubscriptionStatus.TERMINATED, SubscriptionStatus.DEPLETED],
)
def test_an_inactive_subscription_refuses_time(operator, status):
    ticket = TicketFactory(subscription=SubscriptionFactory(status=status))
    with pytest.raises(ValidationError) as excinfo:
        time_entry_log(ticket=ticket, operator=operator, hours="1", work_date=TODAY)
    assert f"The subscription is {status}" in refusal(excinfo)
    assert not TimeEntry.objects.exists()


def test_a_suspended_subscription_takes_time_again_when_reactivated(ticket, operator):
    subscription_status_set(subscription=ticket.subscription, status="suspended")
    with pytest.raises(ValidationError):
        time_entry_log(ticket=ticket, operator=operator, hours="1", work_date=TODAY)
    subscription_status_set(subscription=ticket.subscription, status="active")
    assert time_entry_log(ticket=ticket, operator=operator, hours="1", work_date=TODAY).pk


def test_another_clients_subscription_refuses_time(operator):
    # given a ticket of one client pointing at the subscription of another (set up directly)
    foreign = SubscriptionFactory()
    ticket = TicketFactory(client=ClientFactory(), subscription=foreign)
    # then no time can be booked to the other client's package
    with pytest.raises(ValidationError) as excinfo:
        time_entry_log(ticket=ticket, operator=operator, hours="1", work_date=TODAY)
    assert "another client" in refusal(excinfo)
    assert not TimeEntry.objects.exists()


def test_linking_another_clients_or_an_inactive_subscription_is_refused(operator):
    ticket = TicketFactory()
    with pytest.raises(ValidationError, match="another client"):
        ticket_subscription_set(ticket=ticket, subscription=SubscriptionFactory(), actor=operator)
    inactive = SubscriptionFactory(client=ticket.client, status=SubscriptionStatus.SUSPENDED)
    with pytest.raises(ValidationError, match="suspended"):
        ticket_subscription_set(ticket=ticket, subscription=inactive, actor=operator)


def test_work_dates_in_the_future_or_outside_the_subscription_are_refused(operator):
    subscription = SubscriptionFactory(start_date=dt.date(2026, 10, 5))
    ticket = TicketFactory(subscription=subscription)
    with pytest.raises(ValidationError, match="future"):
        time_entry_log(ticket=ticket, operator=operator, hours="1", work_date=TODAY.replace(day=25))
    with pytest.raises(ValidationError, match="outside the subscription"):
        time_entry_log(ticket=ticket, operator=operator, hours="1", work_date=dt.date(2026, 10, 4))


def test_entries_snapshot_the_subscription_and_are_audited(ticket, operator):
    # when time is logged and the ticket later moves to another subscription
    entry = time_entry_log(ticket=ticket, operator=operator, hours="1.5", work_date=TODAY)
    other = SubscriptionFactory(client=ticket.client)
    ticket_subscription_set(ticket=ticket, subscription=other, actor=operator)
    # then the entry stays with the subscription that was linked when it was logged
    entry.refresh_from_db()
    assert entry.subscription_id != other.pk
    logged = AuditEvent.objects.get(action=AuditAction.TIME_LOGGED)
    assert logged.detail["hours"] == "1.50"
    assert logged.actor == operator


# --- Closed periods: no create, change or delete ------------------------------------------


@pytest.fixture
def october_closed(ticket, operator):
    """An October entry, then October closed by the rollup."""
    entry = TimeEntryFactory(ticket=ticket, hours=Decimal("2.00"), work_date=dt.date(2026, 10, 9))
    period_close(month=OCTOBER)
    return entry


def test_time_cannot_be_logged_in_a_closed_month(ticket, operator, october_closed):
    with pytest.raises(ValidationError) as excinfo:
        time_entry_log(ticket=ticket, operator=operator, hours="1", work_date=dt.date(2026, 10, 20))
    assert "2026-10 is closed" in refusal(excinfo)
    assert TimeEntry.objects.count() == 1


def test_an_entry_of_a_closed_month_cannot_be_changed(operator, october_closed):
    for change in ({"hours": "3"}, {"note": "Edited"}, {"work_date": TODAY}):
        with pytest.raises(ValidationError, match="2026-10 is closed"):
            time_entry_change(entry=october_closed, actor=operator, **change)
    october_closed.refresh_from_db()
    assert (october_closed.hours, october_closed.work_date) == (
        Decimal("2.00"),
        dt.date(2026, 10, 9),
    )


def test_an_entry_cannot_be_moved_into_a_closed_month(ticket, operator, october_closed):
    entry = time_entry_log(ticket=ticket, operator=operator, hours="1", work_date=TODAY)
    with pytest.raises(ValidationError, match="2026-10 is closed"):
        time_entry_change(entry=entry, actor=operator, work_date=dt.date(2026, 10, 30))
    entry.refresh_from_db()
    assert entry.work_date == TODAY


def test_an_entry_of_a_closed_month_cannot_be_deleted(operator, october_closed):
    with pytest.raises(ValidationError, match="2026-10 is closed"):
        time_entry_delete(entry=october_closed, actor=operator)
    assert TimeEntry.objects.filter(pk=october_closed.pk).exists()


def test_entries_of_an_open_month_can_be_changed_and_deleted(ticket, operator, october_closed):
    entry = time_entry_log(ticket=ticket, operator=operator, hours="1", work_date=TODAY)
    time_entry_change(entry=entry, actor=operator, hours="1.75", note="  Longer  ")
    entry.refresh_from_db()
    assert (entry.hours, entry.note) == (Decimal("1.75"), "Longer")
    changed = AuditEvent.objects.get(action=AuditAction.TIME_CHANGED)
    assert changed.detail["hours"] == ["1.00", "1.75"]
    time_entry_delete(entry=entry, actor=operator)
    assert not TimeEntry.objects.filter(pk=entry.pk).exists()
    assert AuditEvent.objects.filter(action=AuditAction.TIME_DELETED).count() == 1


# --- One-time buckets ---------------------------------------------------------------------


@pytest.fixture
def bucket_ticket():
    package = package_with_prices(
        {"EUR": ("1100.00", "0.00")}, billing_mode=BillingMode.ONE_TIME, included_hours="2.00"
    )
    return TicketFactory(subscription=SubscriptionFactory(package=package))


def test_a_bucket_cannot_be_overdrawn(bucket_ticket, operator):
    # given a 2 h bucket with 1.50 h used
    time_entry_log(ticket=bucket_ticket, operator=operator, hours="1.5", work_date=TODAY)
    # when 0.75 h more is logged
    with pytest.raises(ValidationError) as excinfo:
        time_entry_log(ticket=bucket_ticket, operator=operator, hours="0.75", work_date=TODAY)
    # then it is refused, saying what is left
    assert "Only 0.50 h left" in refusal(excinfo)
    assert TimeEntry.objects.count() == 1
    bucket_ticket.subscription.refresh_from_db()
    assert bucket_ticket.subscription.status == SubscriptionStatus.ACTIVE


def test_a_bucket_is_depleted_exactly_at_zero(bucket_ticket, operator):
    subscription = bucket_ticket.subscription
    time_entry_log(ticket=bucket_ticket, operator=operator, hours="1.75", work_date=TODAY)
    subscription.refresh_from_db()
    assert subscription.status == SubscriptionStatus.ACTIVE  # 0.25 h left
    # when the last quarter hour is logged
    time_entry_log(ticket=bucket_ticket, operator=operator, hours="0.25", work_date=TODAY)
    # then the bucket is depleted and takes no more time
    subscription.refresh_from_db()
    assert subscription.status == SubscriptionStatus.DEPLETED
    with pytest.raises(ValidationError, match="depleted"):
        time_entry_log(ticket=bucket_ticket, operator=operator, hours="0.25", work_date=TODAY)


def test_a_bucket_cannot_be_overdrawn_by_changing_an_entry(bucket_ticket, operator):
    entry = time_entry_log(ticket=bucket_ticket, operator=operator, hours="1", work_date=TODAY)
    with pytest.raises(ValidationError, match="Only 1.00 h left"):
        time_entry_change(entry=entry, actor=operator, hours="2.25")
    entry.refresh_from_db()
    assert entry.hours == Decimal("1.00")


def bought_bucket_ticket(hours: str):
    """A ticket on a bucket of ``hours`` bought through the real path (subscription_create)."""
    package = package_with_prices(
        {"EUR": ("1100.00", "0.00")},
        billing_mode=BillingMode.ONE_TIME,
        included_hours=Decimal(hours),
    )
    subscription = subscription_create(client=ClientFactory(currency="EUR"), package=package)
    return TicketFactory(client=subscription.client, subscription=subscription)


def package_hours_set(ticket, hours: str) -> None:
    package = ticket.subscription.package
    package.included_hours = Decimal(hours)
    package.save(update_fields=["included_hours"])


def test_a_bucket_keeps_the_hours_bought_when_the_package_shrinks(operator):
    # given a 10 h bucket bought, then its package cut to 5 h for new buyers
    ticket = bought_bucket_ticket("10.00")
    package_hours_set(ticket, "5.00")
    subscription = ticket.subscription
    # when 6 h are logged
    time_entry_log(ticket=ticket, operator=operator, hours="6", work_date=TODAY)
    # then they are accepted with 4 h left: the bucket is not depleted at 5 h
    subscription.refresh_from_db()
    assert subscription.status == SubscriptionStatus.ACTIVE
    with pytest.raises(ValidationError, match=r"Only 4\.00 h left"):
        time_entry_log(ticket=ticket, operator=operator, hours="4.25", work_date=TODAY)
    # and it is depleted exactly at the 10 h bought
    time_entry_log(ticket=ticket, operator=operator, hours="3.75", work_date=TODAY)
    subscription.refresh_from_db()
    assert subscription.status == SubscriptionStatus.ACTIVE
    time_entry_log(ticket=ticket, operator=operator, hours="0.25", work_date=TODAY)
    subscription.refresh_from_db()
    assert subscription.status == SubscriptionStatus.DEPLETED


def test_a_bucket_gives_no_more_than_bought_when_the_package_grows(operator):
    # given a 5 h bucket bought, then its package raised to 10 h for new buyers
    ticket = bought_bucket_ticket("5.00")
    package_hours_set(ticket, "10.00")
    subscription = ticket.subscription
    # when 6 h are logged, then they are refused with the 5 h bought
    with pytest.raises(ValidationError, match=r"Only 5\.00 h left"):
        time_entry_log(ticket=ticket, operator=operator, hours="6", work_date=TODAY)
    # and neither logging nor changing an entry draws past 5 h
    entry = time_entry_log(ticket=ticket, operator=operator, hours="4", work_date=TODAY)
    with pytest.raises(ValidationError, match=r"Only 1\.00 h left"):
        time_entry_change(entry=entry, actor=operator, hours="5.25")
    time_entry_change(entry=entry, actor=operator, hours="5")
    subscription.refresh_from_db()
    assert subscription.status == SubscriptionStatus.DEPLETED
    # and the client's portal shows the same bucket: 5 h bought, all used
    (usage,) = client_subscription_usages(client_id=subscription.client_id, month=NOVEMBER)
    assert (usage.statement.included_hours, usage.statement.used_hours) == (
        Decimal("5.00"),
        Decimal("5.00"),
    )


def test_giving_time_back_to_a_depleted_bucket_reactivates_it(bucket_ticket, operator):
    entry = time_entry_log(ticket=bucket_ticket, operator=operator, hours="2", work_date=TODAY)
    subscription = bucket_ticket.subscription
    subscription.refresh_from_db()
    assert subscription.status == SubscriptionStatus.DEPLETED
    time_entry_change(entry=entry, actor=operator, hours="1.5")
    subscription.refresh_from_db()
    assert subscription.status == SubscriptionStatus.ACTIVE
    time_entry_log(ticket=bucket_ticket, operator=operator, hours="0.5", work_date=TODAY)
    subscription.refresh_from_db()
    assert subscription.status == SubscriptionStatus.DEPLETED
    time_entry_delete(entry=entry, actor=operator)
    subscription.refresh_from_db()
    assert subscription.status == SubscriptionStatus.ACTIVE
