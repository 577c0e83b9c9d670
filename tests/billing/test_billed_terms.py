"""A closed month shows what was billed, forever: the terms stored when it closed (a bucket:
when it was bought), whatever the package's prices and hours become afterwards."""

import datetime as dt
from decimal import Decimal

import pytest
from django.db import DatabaseError, transaction

from billing.models import BillableItem, BilledTerms
from billing.selectors.statements import statement_for_subscription
from billing.services.rollup import period_close, period_rollup_batch
from packages.models import BillingMode, BillingPeriod
from packages.services import subscription_create
from tests.billing.conftest import api_as
from tests.factories import (
    AdminFactory,
    ClientFactory,
    ClientUserFactory,
    SubscriptionFactory,
    TimeEntryFactory,
    package_with_prices,
)

pytestmark = pytest.mark.django_db
SEPTEMBER = dt.date(2026, 9, 1)
OCTOBER = dt.date(2026, 10, 1)


@pytest.fixture(autouse=True)
def october(time_machine):
    time_machine.move_to(dt.datetime(2026, 10, 20, 9, 0, tzinfo=dt.UTC), tick=False)


def reprice(package, *, fee: str, hourly_rate: str, **fields) -> None:
    """What an administrator does: PATCH the package with its new EUR price (and fields)."""
    response = api_as(AdminFactory()).patch(
        f"/api/v1/packages/{package.pk}/",
        {**fields, "prices": [{"currency": "EUR", "fee": fee, "hourly_rate": hourly_rate}]},
        format="json",
    )
    assert response.status_code == 200, response.content


@pytest.fixture
def gold():
    """10 h at 500.00 EUR + 60.00 EUR/h, 12.25 h used in September (closed): billed 500.00
    and 2.25 h x 60.00 = 135.00."""
    client = ClientFactory(currency="EUR")
    subscription = SubscriptionFactory(
        client=client,
        start_date=SEPTEMBER,
        package=package_with_prices({"EUR": ("500.00", "60.00")}, name="Gold"),
    )
    TimeEntryFactory(ticket__subscription=subscription, hours=Decimal("12.25"), work_date=SEPTEMBER)
    TimeEntryFactory(ticket__subscription=subscription, hours=Decimal("11.00"), work_date=OCTOBER)
    period_close(month=SEPTEMBER)
    return subscription


def usage(subscription, period: str | None = None) -> dict:
    api = api_as(ClientUserFactory(client=subscription.client).user)
    query = f"?period={period}" if period else ""
    response = api.get(f"/api/v1/subscriptions/{subscription.pk}/usage/{query}")
    assert response.status_code == 200, response.content
    return response.json()


def test_a_closed_month_keeps_its_billed_price_after_a_price_change(gold):
    # given September was billed 500.00 + 135.00
    items = {i.kind: i.amount.amount for i in BillableItem.objects.filter(subscription=gold)}
    assert items == {"fee": Decimal("500.00"), "overtime": Decimal("135.00")}
    # when the package's price becomes 550.00 + 70.00 EUR/h
    reprice(gold.package, fee="550.00", hourly_rate="70.00")
    # then the closed September still shows what was billed, and says so
    september = usage(gold, "2026-09")
    assert september["closed"] is True
    assert september["terms"] == "billed"
    assert (september["fee"], september["hourly_rate"]) == ("500.00", "60.00")
    assert (september["overtime_hours"], september["overtime_amount"]) == ("2.25", "135.00")
    # and the open October uses the new price, and says so
    october = usage(gold)
    assert october["closed"] is False
    assert october["terms"] == "current"
    assert (october["fee"], october["hourly_rate"]) == ("550.00", "70.00")
    assert october["overtime_amount"] == "70.00"  # 1 h over 10 h at 70.00


def test_a_closed_month_keeps_its_included_hours_after_the_package_changes(gold):
    # when the package includes 12 h from now on
    reprice(gold.package, fee="500.00", hourly_rate="60.00", included_hours="12.00")
    # then September still had 10 h included and 2.25 h of overtime, as billed
    september = usage(gold, "2026-09")
    assert september["included_hours"] == "10.00"
    assert september["overtime_hours"] == "2.25"
    assert september["overtime_amount"] == "135.00"
    # while October, open, has the new 12 h (11 h used: no overtime)
    october = usage(gold, "2026-10")
    assert october["included_hours"] == "12.00"
    assert october["overtime_hours"] == "0.00"


def test_a_bucket_keeps_the_hours_and_price_it_was_bought_with():
    # given a 20 h bucket bought for 1,100.00 EUR, 3.50 h used
    package = package_with_prices(
        {"EUR": ("1100.00", "0.00")},
        billing_mode=BillingMode.ONE_TIME,
        included_hours=Decimal("20.00"),
    )
    BillingPeriod.objects.get_or_create(month=SEPTEMBER)  # billing began in September
    bucket = subscription_create(
        client=ClientFactory(currency="EUR"), package=package, start_date=SEPTEMBER
    )
    TimeEntryFactory(ticket__subscription=bucket, hours=Decimal("3.50"), work_date=OCTOBER)
    # when the package becomes 10 h for 900.00 EUR
    reprice(package, fee="900.00", hourly_rate="0.00", included_hours="10.00")
    # then the bucket still holds 20 h bought for 1,100.00
    figures = usage(bucket)
    assert figures["terms"] == "billed"
    assert figures["included_hours"] == "20.00"
    assert figures["remaining_hours"] == "16.50"
    assert figures["fee"] == "1100.00"
    terms = BilledTerms.objects.get(subscription=bucket)
    assert terms.month == SEPTEMBER
    assert terms.billing_mode == BillingMode.ONE_TIME


def test_terms_are_stored_for_subscriptions_billed_nothing():
    # given a pay-per-hour subscription (no fee, 0 h included) that logged no time
    free = SubscriptionFactory(
        client=ClientFactory(currency="EUR"),
        start_date=SEPTEMBER,
        package=package_with_prices({"EUR": ("0.00", "75.00")}, included_hours=Decimal("0")),
    )
    # when September closes
    period_close(month=SEPTEMBER)
    # then nothing is billed, but the terms of the month are stored
    assert not BillableItem.objects.filter(subscription=free).exists()
    terms = BilledTerms.objects.get(subscription=free, month=SEPTEMBER)
    assert terms.billing_mode == BillingMode.RECURRING
    assert terms.included_hours == Decimal("0.00")
    assert terms.fee.amount == Decimal("0.00")
    assert terms.hourly_rate.amount == Decimal("75.00")
    assert str(terms.currency) == "EUR"
    # and a later price change does not reach September
    free.package.prices.update(hourly_rate=Decimal("90.00"))
    september = statement_for_subscription(subscription=free, month=SEPTEMBER)
    assert september.hourly_rate.amount == Decimal("75.00")


def test_a_batch_billed_again_stores_no_second_terms_row(gold):
    # given September's batch ran once, then the price changed
    reprice(gold.package, fee="550.00", hourly_rate="70.00")
    # when the same batch runs again
    written = period_rollup_batch(month=SEPTEMBER, first_id=gold.pk, last_id=gold.pk)
    # then it writes nothing: one terms row, with the terms billed the first time
    assert written == 0
    terms = BilledTerms.objects.get(subscription=gold)
    assert (terms.fee.amount, terms.hourly_rate.amount) == (Decimal("500.00"), Decimal("60.00"))
    assert BillableItem.objects.filter(subscription=gold).count() == 2


def test_a_batch_billed_again_after_the_fee_appears_bills_no_fee():
    # given a pay-per-hour month billed with no item, then the package gets a fee
    free = SubscriptionFactory(
        start_date=SEPTEMBER,
        package=package_with_prices({"EUR": ("0.00", "75.00")}, included_hours=Decimal("0")),
    )
    period_close(month=SEPTEMBER)
    free.package.prices.update(fee=Decimal("100.00"))
    # when the batch of September runs again (a task delivered twice)
    written = period_rollup_batch(month=SEPTEMBER, first_id=free.pk, last_id=free.pk)
    # then September is billed with its stored terms: still no fee
    assert written == 0
    assert not BillableItem.objects.filter(subscription=free).exists()


def test_stored_terms_cannot_be_changed_or_deleted(postgres, gold):
    terms = BilledTerms.objects.get(subscription=gold)
    with pytest.raises(DatabaseError, match="cannot be changed"), transaction.atomic():
        BilledTerms.objects.filter(pk=terms.pk).update(included_hours=Decimal("99"))
    with pytest.raises(DatabaseError, match="cannot be changed"), transaction.atomic():
        BilledTerms.objects.filter(pk=terms.pk).delete()
    assert BilledTerms.objects.get(pk=terms.pk).included_hours == Decimal("10.00")


def test_the_usage_of_a_closed_month_reads_a_fixed_number_of_queries(
    gold, django_assert_num_queries
):
    api = api_as(ClientUserFactory(client=gold.client).user)
    # the user's client, the subscription, hours used, the stored terms (which spare the
    # price), its top-up blocks (none) and the month's state
    with django_assert_num_queries(6):
        response = api.get(f"/api/v1/subscriptions/{gold.pk}/usage/?period=2026-09")
    assert response.json()["terms"] == "billed"
