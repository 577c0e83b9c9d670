"""bench/seed.py: the benchmark data is what was asked for, follows the time rules,
and its month closes with the totals the billing rules give."""

import datetime as dt
from collections import defaultdict
from decimal import Decimal

import pytest
from django.db.models import Sum

from bench.seed import SeedRefused
from bench.seed import seed as bench_seed
from billing.models import BillableItem, BilledTerms
from billing.services.rollup import period_close
from customers.models import Client
from packages.models import BillingMode, BillingPeriod, PeriodStatus, Subscription
from tickets.models import HOURS_STEP, TimeEntry
from tickets.selectors import time_entries_with_billed

OCTOBER = dt.date(2026, 10, 1)
pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def november(time_machine):
    time_machine.move_to(dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.UTC), tick=False)


def seed(**options):
    return bench_seed(**options)


def test_writes_the_numbers_asked_for_in_last_month():
    # when 60 subscriptions and 300 entries are seeded without a month
    output = seed(subscriptions=60, entries=300)
    # then last month holds the entries, and the clients carry 1.2 subscriptions each
    assert "60 subscriptions" in output and "300 time entries" in output
    assert Subscription.objects.count() == 60
    assert Client.objects.count() == 50
    entries = TimeEntry.objects.select_related("subscription")
    assert entries.count() == 300
    for entry in entries:
        assert OCTOBER <= entry.work_date <= dt.date(2026, 10, 31)
        assert entry.hours > 0 and entry.hours % HOURS_STEP == 0
        assert entry.subscription.start_date <= entry.work_date
        assert entry.subscription.end_date is None or entry.work_date <= entry.subscription.end_date
    # and only October is left open among the ended months
    assert not BillingPeriod.objects.filter(month=OCTOBER).exists()
    assert BillingPeriod.objects.filter(
        month=dt.date(2026, 9, 1), status=PeriodStatus.CLOSED
    ).exists()


def test_its_month_closes_with_the_overtime_of_the_hours_logged():
    # given a seeded October
    seed(subscriptions=80, entries=600, month="2026-10")
    used = defaultdict(Decimal)
    for row in (
        TimeEntry.objects.filter(subscription__package__billing_mode=BillingMode.RECURRING)
        .values("subscription_id", "subscription__package__included_hours")
        .annotate(hours=Sum("hours"))
    ):
        used[row["subscription_id"]] = row["hours"] - row["subscription__package__included_hours"]
    # when October is closed
    result = period_close(month=OCTOBER)
    # then each recurring subscription is billed the hours beyond its package, once
    overtime = {
        item.subscription_id: item.quantity
        for item in BillableItem.objects.filter(period=OCTOBER, kind="overtime")
    }
    assert overtime == {pk: hours for pk, hours in used.items() if hours > 0}
    assert (
        result.items_created
        == BillableItem.objects.filter(period=OCTOBER, kind__in=["fee", "overtime"]).count()
    )
    assert (
        not time_entries_with_billed(TimeEntry.objects.all())
        .filter(billed_at__isnull=True)
        .exists()
    )
    # and the terms are stored: October's of every subscription billed, each bucket's as bought
    billed = set(
        BillableItem.objects.filter(period=OCTOBER, kind__in=["fee", "overtime"]).values_list(
            "subscription_id", flat=True
        )
    )
    with_terms = set(
        BilledTerms.objects.filter(month=OCTOBER, billing_mode=BillingMode.RECURRING).values_list(
            "subscription_id", flat=True
        )
    )
    assert billed and billed <= with_terms
    buckets = Subscription.objects.filter(package__billing_mode=BillingMode.ONE_TIME)
    assert buckets.count() == BilledTerms.objects.filter(billing_mode=BillingMode.ONE_TIME).count()
    # and every bucket holds the hours it was sold with, as its stored terms say
    assert all(
        bucket.bucket_hours
        == bucket.billed_terms.get().included_hours
        == bucket.package.included_hours
        for bucket in buckets.select_related("package")
    )


def test_refuses_a_database_that_holds_subscriptions():
    # given seeded data
    seed(subscriptions=5, entries=5)
    # when seeding again without --flush, then it refuses and writes nothing
    with pytest.raises(SeedRefused, match="--flush"):
        seed(subscriptions=5, entries=5)
    assert Subscription.objects.count() == 5
    # and with --flush it starts over
    seed(subscriptions=7, entries=3, flush=True)
    assert Subscription.objects.count() == 7


@pytest.mark.parametrize(
    "options",
    [
        {"subscriptions": 0, "entries": 5},
        {"subscriptions": 5, "entries": -1},
        {"subscriptions": 5, "entries": 5, "month": "2026-13"},
    ],
)
def test_refuses_nonsense(options):
    with pytest.raises(SeedRefused):
        seed(**options)
    assert not Subscription.objects.exists()
