"""The rollup as separate processes (`manage.py rollup`) on PostgreSQL: one killed with SIGKILL
in the middle of a batch and run again, and four run at the same moment, each bill the month
exactly as one uninterrupted run does: every item once, nothing lost, nothing twice."""

import datetime as dt
import re
from decimal import Decimal

import pytest
from celery import group
from django.db import connection, transaction
from django.db.models import Count
from djmoney.money import Money

from billing.calculations import rollup_item_drafts, statement_compute
from billing.models import BillableItem, BilledTerms
from billing.selectors.rollup import rollup_batches
from billing.services.rollup import _batch_lock, period_close_begin, period_close_finish
from billing.tasks import rollup_batch
from customers.models import Client
from packages.models import (
    BillingMode,
    BillingPeriod,
    PeriodStatus,
    Subscription,
    SubscriptionStatus,
)
from tests.factories import OperatorFactory, package_with_prices
from tests.faults.conftest import celery_worker_args, manage, wait_for
from tickets.models import AuditAction, AuditEvent, Ticket, TimeEntry
from tickets.selectors import subscription_audit_trail, time_entries_with_billed

OCTOBER = dt.date(2026, 10, 1)
SEPTEMBER = dt.date(2026, 9, 1)
ItemRow = tuple[int, str, Decimal, Decimal, str]


def a_month_to_bill(count: int) -> tuple[list[int], list[ItemRow]]:
    """``count`` subscriptions of three packages in EUR and USD with October hours from none
    to well over the package; returns their ids (in id order) and the items one uninterrupted
    rollup of October writes, computed with the pure billing rules."""
    packages = [
        (package_with_prices({"EUR": ("500.00", "60.00"), "USD": ("550.00", "66.00")}), "10"),
        (package_with_prices({"EUR": ("250.00", "75.50"), "USD": ("275.00", "81.25")}), "5"),
        (package_with_prices({"EUR": ("0.00", "90.00"), "USD": ("0.00", "99.00")}), "0"),
    ]
    for package, included in packages:
        package.included_hours = Decimal(included)
        package.save(update_fields=["included_hours"])
    clients = Client.objects.bulk_create(
        Client(name=f"Faulty {n} Ltd", email=f"f{n}@client.test", currency=currency)
        for n, currency in enumerate(["EUR", "USD"] * 3)
    )
    # Billing began with the subscriptions, as subscription_create records it.
    BillingPeriod.objects.get_or_create(month=dt.date(2026, 1, 1))
    subscriptions = Subscription.objects.bulk_create(
        Subscription(
            client=clients[i % len(clients)],
            package=packages[i % len(packages)][0],
            status=SubscriptionStatus.ACTIVE,
            start_date=dt.date(2026, 1, 1),
        )
        for i in range(count)
    )
    tickets = Ticket.objects.bulk_create(
        Ticket(subscription=s, client=s.client, subject=f"Work {s.pk}", track_time=True)
        for s in subscriptions
    )
    operator = OperatorFactory()
    entries, expected = [], []
    for i, (subscription, ticket) in enumerate(zip(subscriptions, tickets, strict=True)):
        october = [Decimal("0.25") * ((i * 7 + k * 13) % 36 + 1) for k in range(i % 5)]
        for day, hours in enumerate(october, start=1):
            entries.append(
                TimeEntry(
                    ticket=ticket,
                    subscription=subscription,
                    operator=operator,
                    hours=hours,
                    work_date=OCTOBER.replace(day=day),
                )
            )
        # September stays open: its entries must not be touched.
        entries.append(
            TimeEntry(
                ticket=ticket,
                subscription=subscription,
                operator=operator,
                hours=Decimal("1.50"),
                work_date=SEPTEMBER,
            )
        )
        package = subscription.package
        price = package.prices.get(currency=subscription.client.currency)
        statement = statement_compute(
            billing_mode=BillingMode.RECURRING,
            currency=subscription.client.currency,
            included_hours=package.included_hours,
            used_hours=sum(october, Decimal("0.00")),
            fee=price.fee.amount,
            hourly_rate=price.hourly_rate.amount,
        )
        expected += [
            (subscription.pk, d.kind, d.quantity, d.amount, subscription.client.currency)
            for d in rollup_item_drafts(
                statement=statement, package_name=package.name, month=OCTOBER
            )
        ]
    TimeEntry.objects.bulk_create(entries)
    return [s.pk for s in subscriptions], sorted(expected)


def items_of_october() -> list[ItemRow]:
    return sorted(
        (s, k, q, a, c)
        for s, k, q, a, c in BillableItem.objects.filter(period=OCTOBER).values_list(
            "subscription_id", "kind", "quantity", "amount", "currency"
        )
    )


def assert_october_billed_once(expected: list[ItemRow]) -> None:
    # every item of an uninterrupted run, with its quantity and amount, and no other
    assert items_of_october() == expected
    # the month is closed, all its time billed, and the open September untouched
    assert BillingPeriod.objects.get(month=OCTOBER).status == PeriodStatus.CLOSED
    october = TimeEntry.objects.filter(work_date__gte=OCTOBER, work_date__lt=dt.date(2026, 11, 1))
    assert not time_entries_with_billed(october).filter(billed_at__isnull=True).exists()
    assert not (
        time_entries_with_billed(TimeEntry.objects.filter(work_date=SEPTEMBER))
        .filter(billed_at__isnull=False)
        .exists()
    )
    # one "period billed" line for October in the audit trail of each subscription billed,
    # from rows that count every item once
    rollup_items = [row for row in expected if row[1] in ("fee", "overtime")]
    for subscription_id in {row[0] for row in rollup_items}:
        trail = subscription_audit_trail(subscription_id=subscription_id)
        lines = [e for e in trail if e.action == AuditAction.PERIOD_BILLED]
        assert [line.detail["period"] for line in lines] == ["2026-10"], subscription_id
    audit = AuditEvent.objects.filter(action=AuditAction.PERIOD_BILLED, detail__period="2026-10")
    assert sum(row.detail["items_written"] for row in audit) == len(rollup_items)
    # and the terms of October stored once per subscription, items or not
    terms = BilledTerms.objects.filter(month=OCTOBER).values("subscription_id")
    per_subscription = {
        row["subscription_id"]: row["rows"] for row in terms.annotate(rows=Count("pk"))
    }
    assert set(per_subscription.values()) == {1}
    assert {row[0] for row in expected} <= set(per_subscription)


def backends_waiting(event: str, query_start: str) -> list[int]:
    """Sessions of the test database waiting for a lock (``event``: 'tuple', 'advisory', ...)
    in a statement that starts with ``query_start``."""
    with connection.cursor() as cursor:
        # Inside a transaction PostgreSQL keeps showing its first view of the activity.
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock' AND wait_event = %s AND query LIKE %s",
            [event, f"{query_start}%"],
        )
        return [pid for (pid,) in cursor.fetchall()]


def items_written(output: str) -> int:
    match = re.search(r"2026-10 closed: (\d+) billable items written", output)
    assert match, output
    return int(match.group(1))


def test_a_rollup_killed_in_the_middle_of_a_batch_and_run_again_bills_exactly_once(
    app_env, processes
):
    # given 60 subscriptions to bill for October, in batches of 10
    ids, expected = a_month_to_bill(60)
    env = app_env(ROLLUP_BATCH_SIZE="10", DB_CONN_MAX_AGE="0")
    with transaction.atomic():
        # when the rollup runs while this test is writing (not committed) the October terms of
        # a subscription of the fourth batch: the batch reads its totals, writes its items,
        # then waits in the middle of its transaction to store the same terms
        BilledTerms.objects.create(
            subscription_id=ids[30],
            month=OCTOBER,
            billing_mode=BillingMode.RECURRING,
            included_hours=Decimal("10.00"),
            fee=Money("500.00", "EUR"),
            hourly_rate=Money("60.00", "EUR"),
        )
        rollup = processes(manage("rollup", "--period", "2026-10"), env, "rollup, killed")
        wait_for(
            lambda: backends_waiting("transactionid", "INSERT INTO billing_billedterms"),
            "the fourth batch to wait",
        )
        # then three batches are committed
        committed = [row for row in expected if row[0] in set(ids[:30])]
        assert items_of_october() == committed
        # and the process is killed there, its fourth batch not committed
        rollup.kill()
        transaction.set_rollback(True)  # the terms this test was writing
    assert rollup.popen.returncode == -9
    # when the rollup is run again, to the end
    again = processes(manage("rollup", "--period", "2026-10"), env, "rollup, again")
    assert again.wait(90) == 0, again.output()
    # then it wrote exactly what was missing, and October is billed as by one clean run
    assert items_written(again.output()) == len(expected) - len(committed)
    assert_october_billed_once(expected)


def test_four_rollups_of_one_month_at_once_write_one_set_of_items(app_env, processes):
    # given 60 subscriptions to bill for October, in batches of 5
    ids, expected = a_month_to_bill(60)
    env = app_env(ROLLUP_BATCH_SIZE="5", DB_CONN_MAX_AGE="0")
    with transaction.atomic():
        # when four rollup processes start together and all reach the first batch
        _batch_lock(OCTOBER, ids[0])
        runs = [
            processes(manage("rollup", "--period", "2026-10"), env, f"rollup {n}")
            for n in range(1, 5)
        ]
        wait_for(
            lambda: len(backends_waiting("advisory", "SELECT pg_advisory_xact_lock")) == 4,
            "four rollups waiting at the first batch",
            seconds=60,
        )
    # (and race through the twelve batches once the first is free)
    for run in runs:
        assert run.wait(90) == 0, run.output()
    # then together they wrote one set of items: each item by exactly one of them
    assert sum(items_written(run.output()) for run in runs) == len(expected)
    assert_october_billed_once(expected)


@pytest.fixture
def celery_sender(redis_url):
    """This process sends tasks through Redis (not eagerly); messages of an earlier,
    interrupted run are dropped first."""
    from supportbilling.celery import app

    eager = app.conf.task_always_eager
    app.conf.task_always_eager = False
    app.control.purge()
    yield app
    app.conf.task_always_eager = eager


@pytest.mark.celery_worker
def test_four_celery_workers_given_every_batch_twice_write_one_set_of_items(
    app_env, processes, celery_sender
):
    # given 60 subscriptions to bill for October, in batches of 5, and four Celery workers
    ids, expected = a_month_to_bill(60)
    env = app_env(REDIS_URL=celery_sender.conf.broker_url, DB_CONN_MAX_AGE="0")
    for n in range(1, 5):
        processes(celery_worker_args(f"faults{n}"), env, f"worker {n}")
    wait_for(lambda: len(celery_sender.control.ping(timeout=0.5)) >= 4, "four workers", seconds=60)
    assert period_close_begin(month=OCTOBER)
    batches = rollup_batches(month=OCTOBER, batch_size=5)
    with transaction.atomic():
        # when every batch is delivered twice, and both copies of the first batch are taken
        # by two workers at the same moment
        _batch_lock(OCTOBER, ids[0])
        sent = group(
            rollup_batch.s("2026-10", first, last) for first, last in batches for _copy in (1, 2)
        ).apply_async()
        wait_for(
            lambda: len(backends_waiting("advisory", "SELECT pg_advisory_xact_lock")) == 2,
            "two workers at the first batch",
            seconds=60,
        )
    written = sent.get(timeout=90)
    assert period_close_finish(month=OCTOBER)
    # then each item was written by exactly one delivery, and October is billed once
    assert len(written) == 2 * len(batches)
    assert sum(written) == len(expected)
    assert_october_billed_once(expected)
