"""On PostgreSQL, with real concurrent connections: two rollups of one month write one set of
items, and time logged while the month closes is either billed or refused, never lost."""

import datetime as dt
import threading
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.db import connection, connections, transaction

from billing.models import BillableItem
from billing.services.rollup import period_close, period_close_begin, period_close_finish
from packages.models import BillingMode, BillingPeriod, PeriodStatus
from packages.services import subscription_create
from tests.factories import (
    ClientFactory,
    OperatorFactory,
    SubscriptionFactory,
    TicketFactory,
    TimeEntryFactory,
    package_with_prices,
)
from tickets.models import TimeEntry
from tickets.selectors import time_entries_with_billed, time_entry_is_billed
from tickets.services import time_entry_log

NOW = dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.UTC)
OCTOBER = dt.date(2026, 10, 1)
MONTHS = [dt.date(2026, month, 1) for month in (6, 7, 8, 9, 10)]


@pytest.fixture
def concurrent_db(postgres, transactional_db):
    """Committed data that other connections can see; PostgreSQL only."""
    return postgres


def in_threads(*work: Callable[[], Any], timeout: float = 60) -> list[Any]:
    """Run each callable in its own thread with its own database connection, all released at
    the same moment; return what each returned or raised."""
    start = threading.Barrier(len(work))
    outcomes: list[Any] = [None] * len(work)

    def run(index: int, fn: Callable[[], Any]) -> None:
        try:
            start.wait()
            outcomes[index] = fn()
        except BaseException as exc:  # reported to the test below
            outcomes[index] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i, fn)) for i, fn in enumerate(work)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
        assert not thread.is_alive(), "a concurrent rollup did not finish"
    return outcomes


def sessions_waiting_for_a_lock() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0]


def wait_until(condition: Callable[[], bool], seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the expected lock wait never happened"
        time.sleep(0.05)


def test_two_rollups_of_one_month_at_once_write_one_set_of_items(concurrent_db):
    # given six subscriptions, each 1.25 h over its package in every month June to October
    subscriptions = [SubscriptionFactory() for _ in range(6)]
    operator = OperatorFactory()
    for subscription in subscriptions:
        ticket = TicketFactory(subscription=subscription)
        for month in MONTHS:
            TimeEntryFactory(
                ticket=ticket, operator=operator, hours=Decimal("11.25"), work_date=month
            )
    for month in MONTHS:
        # when two workers close the same month at the same moment (in batches of two)
        outcomes = in_threads(
            lambda month=month: period_close(month=month, now=NOW, batch_size=2),
            lambda month=month: period_close(month=month, now=NOW, batch_size=2),
        )
        # then neither fails, and together they wrote exactly one fee and one overtime each
        errors = [o for o in outcomes if isinstance(o, BaseException)]
        assert not errors
        assert sum(o.items_created for o in outcomes) == 12
        items = BillableItem.objects.filter(period=month)
        assert items.count() == 12
        assert set(items.values_list("subscription_id", "kind")) == {
            (s.pk, kind) for s in subscriptions for kind in ("fee", "overtime")
        }
        assert BillingPeriod.objects.get(month=month).status == PeriodStatus.CLOSED
    assert (
        not time_entries_with_billed(TimeEntry.objects.all())
        .filter(billed_at__isnull=True)
        .exists()
    )


def test_time_logged_while_the_month_closes_is_billed(concurrent_db):
    # given an operator in the middle of logging 2 h on October (transaction not committed)
    subscription = SubscriptionFactory()
    ticket, operator = TicketFactory(subscription=subscription), OperatorFactory()
    TimeEntryFactory(ticket=ticket, operator=operator, hours=Decimal("9.00"))
    logged, release = threading.Event(), threading.Event()

    def log_slowly() -> TimeEntry:
        with transaction.atomic():
            entry = time_entry_log(
                ticket=ticket,
                operator=operator,
                hours="2",
                work_date=dt.date(2026, 10, 31),
                now=NOW,
            )
            logged.set()
            assert release.wait(30)
        return entry

    def close_when_logged() -> Any:
        assert logged.wait(30)
        return period_close(month=OCTOBER, now=NOW)

    def release_once_the_close_waits() -> None:
        assert logged.wait(30)
        # when the rollup starts: it waits for the entry's transaction instead of racing it
        wait_until(lambda: sessions_waiting_for_a_lock() >= 1)
        release.set()

    entry, result, _ = in_threads(log_slowly, close_when_logged, release_once_the_close_waits)
    # then the entry landed before the close and is billed with the month
    assert isinstance(entry, TimeEntry), entry
    assert result.items_created == 2, result
    entry.refresh_from_db()
    assert time_entry_is_billed(entry)
    overtime = BillableItem.objects.get(subscription=subscription, kind="overtime")
    assert overtime.quantity == Decimal("1.00")


def test_a_subscription_sold_while_its_month_closes_is_billed(concurrent_db):
    # given October open with a subscription in it, and a client being sold a package starting
    # on 31 October (the sale's transaction not committed yet)
    SubscriptionFactory(start_date=OCTOBER)
    client, package = ClientFactory(), package_with_prices()
    sold, release = threading.Event(), threading.Event()

    def sell_slowly() -> Any:
        with transaction.atomic():
            subscription = subscription_create(
                client=client,
                package=package,
                start_date=dt.date(2026, 10, 31),
                now=dt.datetime(2026, 10, 31, 23, 0, tzinfo=dt.UTC),
            )
            sold.set()
            assert release.wait(30)
        return subscription

    def close_when_sold() -> Any:
        assert sold.wait(30)
        return period_close(month=OCTOBER, now=NOW)

    def release_once_the_close_waits() -> None:
        assert sold.wait(30)
        # when the rollup starts: it waits for the sale instead of missing it
        wait_until(lambda: sessions_waiting_for_a_lock() >= 1)
        release.set()

    subscription, result, _ = in_threads(sell_slowly, close_when_sold, release_once_the_close_waits)
    # then October bills the new subscription's fee too
    assert result.items_created == 2, result
    assert BillableItem.objects.filter(subscription=subscription, kind="fee").exists()


def test_time_logged_once_the_close_has_begun_is_refused(concurrent_db):
    ticket, operator = TicketFactory(), OperatorFactory()
    # given the rollup of October has begun (the month is `closing`)
    assert period_close_begin(month=OCTOBER, now=NOW)
    # then new time on October is refused already
    with pytest.raises(ValidationError, match="2026-10 is closed"):
        time_entry_log(
            ticket=ticket, operator=operator, hours="1", work_date=dt.date(2026, 10, 30), now=NOW
        )
    period_close_finish(month=OCTOBER, now=NOW)
    assert not TimeEntry.objects.exists()


def test_time_racing_the_close_is_either_billed_or_refused(concurrent_db):
    # given one subscription and, for each month, an entry and a close started together
    subscription = SubscriptionFactory()
    ticket, operator = TicketFactory(subscription=subscription), OperatorFactory()
    for month in MONTHS:
        entry, result = in_threads(
            lambda month=month: time_entry_log(
                ticket=ticket, operator=operator, hours="10.5", work_date=month, now=NOW
            ),
            lambda month=month: period_close(month=month, now=NOW),
        )
        assert not isinstance(result, BaseException), result
        # then the entry was billed with its month, or refused with a clear error
        if isinstance(entry, ValidationError):
            assert entry.code == "period_closed"
            assert not TimeEntry.objects.filter(work_date=month).exists()
            assert not BillableItem.objects.filter(period=month, kind="overtime").exists()
        else:
            assert isinstance(entry, TimeEntry), entry
            entry.refresh_from_db()
            assert time_entry_is_billed(entry)
            overtime = BillableItem.objects.get(period=month, kind="overtime")
            assert overtime.quantity == Decimal("0.50")
    # never an unbilled entry in a closed month
    assert (
        not time_entries_with_billed(TimeEntry.objects.all())
        .filter(billed_at__isnull=True)
        .exists()
    )


def test_two_operators_cannot_overdraw_a_bucket_at_the_same_moment(concurrent_db):
    # given a 2 h bucket
    package = package_with_prices(
        {"EUR": ("200.00", "0.00")}, billing_mode=BillingMode.ONE_TIME, included_hours="2"
    )
    ticket = TicketFactory(subscription=SubscriptionFactory(package=package))
    operators = [OperatorFactory(), OperatorFactory()]
    # when two operators log 1.50 h on it at the same moment
    outcomes = in_threads(
        *(
            lambda operator=operator: time_entry_log(
                ticket=ticket, operator=operator, hours="1.5", work_date=OCTOBER, now=NOW
            )
            for operator in operators
        )
    )
    # then one is logged and the other is told what is left
    logged = [o for o in outcomes if isinstance(o, TimeEntry)]
    refused = [o for o in outcomes if isinstance(o, ValidationError)]
    assert (len(logged), len(refused)) == (1, 1), outcomes
    assert "Only 0.50 h left" in refused[0].messages[0]
    assert TimeEntry.objects.get().hours == Decimal("1.50")
