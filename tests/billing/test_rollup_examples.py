"""Rollup figures on worked examples (docs/billing-rules.md)."""

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from djmoney.money import Money
from rest_framework.test import APIClient

from billing.models import BillableItem
from billing.selectors.statements import statement_for_subscription
from billing.services.rollup import period_close, period_rollup_batch
from packages.models import BillingMode, BillingPeriod, PeriodStatus, SubscriptionStatus
from packages.services import subscription_create
from tests.factories import (
    AdminFactory,
    ClientFactory,
    FinanceFactory,
    OperatorFactory,
    SubscriptionFactory,
    TicketFactory,
    TimeEntryFactory,
    package_with_prices,
)
from tickets.models import AuditAction, AuditEvent, TimeEntry
from tickets.selectors import (
    subscription_audit_trail,
    time_entries_with_billed,
    time_entry_is_billed,
)
from tickets.services import time_entry_log

OCTOBER = dt.date(2026, 10, 1)
NOVEMBER = dt.date(2026, 11, 1)
pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def november(time_machine):
    time_machine.move_to(dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.UTC), tick=False)


def log(ticket, *hours, day=14):
    operator = OperatorFactory()
    for value in hours:
        time_entry_log(
            ticket=ticket, operator=operator, hours=value, work_date=OCTOBER.replace(day=day)
        )


def test_over_the_package_bills_fee_and_overtime():
    # given 10 h included at 500.00 EUR, 60.00 EUR per extra hour, and 12.25 h used
    subscription = SubscriptionFactory(package=package_with_prices({"EUR": ("500.00", "60.00")}))
    log(TicketFactory(subscription=subscription), "8", "4.25")
    # when October is closed
    result = period_close(month=OCTOBER)
    # then the fee and 2.25 h of overtime are billed
    items = {i.kind: i for i in BillableItem.objects.filter(subscription=subscription)}
    assert result.items_created == 2
    assert items["fee"].amount.amount == Decimal("500.00")
    assert items["overtime"].quantity == Decimal("2.25")
    assert items["overtime"].amount.amount == Decimal("135.00")
    assert str(items["overtime"].amount.currency) == "EUR"


def items_of(subscription) -> dict[str, BillableItem]:
    return {i.kind: i for i in BillableItem.objects.filter(subscription=subscription)}


def test_under_the_package_bills_the_fee_only():
    # given 10 h included and 7.50 h used
    subscription = SubscriptionFactory(package=package_with_prices({"EUR": ("500.00", "60.00")}))
    log(TicketFactory(subscription=subscription), "5", "2.5")
    # when October is closed
    period_close(month=OCTOBER)
    # then only the fee is billed
    items = items_of(subscription)
    assert set(items) == {"fee"}
    assert items["fee"].amount == Money("500.00", "EUR")
    assert items["fee"].quantity == Decimal("1.00")
    assert items["fee"].description.endswith("2026-10")


def test_exactly_at_the_package_bills_no_overtime():
    subscription = SubscriptionFactory(package=package_with_prices({"EUR": ("500.00", "60.00")}))
    log(TicketFactory(subscription=subscription), "8", "1.75", "0.25")
    period_close(month=OCTOBER)
    assert set(items_of(subscription)) == {"fee"}


def test_overtime_just_above_the_package_is_one_quarter_hour():
    subscription = SubscriptionFactory(package=package_with_prices({"EUR": ("500.00", "60.00")}))
    log(TicketFactory(subscription=subscription), "10", "0.25")
    period_close(month=OCTOBER)
    overtime = items_of(subscription)["overtime"]
    assert overtime.quantity == Decimal("0.25")
    assert overtime.unit_price == Money("60.00", "EUR")
    assert overtime.amount == Money("15.00", "EUR")
    assert overtime.unit == "hours"


def test_pay_per_hour_bills_every_hour_and_no_fee():
    # given a package with 0 h included and no fee, 75.00 EUR per hour, and 3.25 h used
    package = package_with_prices({"EUR": ("0.00", "75.00")}, included_hours=Decimal("0"))
    subscription = SubscriptionFactory(package=package)
    log(TicketFactory(subscription=subscription), "3.25")
    period_close(month=OCTOBER)
    # then only overtime is billed: 3.25 h x 75.00 = 243.75 EUR
    items = items_of(subscription)
    assert set(items) == {"overtime"}
    assert items["overtime"].quantity == Decimal("3.25")
    assert items["overtime"].amount == Money("243.75", "EUR")


def test_pay_per_hour_without_time_bills_nothing():
    package = package_with_prices({"EUR": ("0.00", "75.00")}, included_hours=Decimal("0"))
    subscription = SubscriptionFactory(package=package)
    result = period_close(month=OCTOBER)
    assert result.items_created == 0
    assert not items_of(subscription)


def test_a_subscription_without_entries_bills_the_fee():
    subscription = SubscriptionFactory(package=package_with_prices({"EUR": ("220.00", "65.00")}))
    period_close(month=OCTOBER)
    assert set(items_of(subscription)) == {"fee"}
    assert items_of(subscription)["fee"].amount == Money("220.00", "EUR")


@pytest.mark.parametrize(
    ("dates", "work_date"),
    [
        # ended on 15 October, with time before it ended
        ((dt.date(2026, 9, 1), dt.date(2026, 10, 15)), dt.date(2026, 10, 15)),
        # ended in September, with October time all the same: the time services refuse such
        # an entry, imported or older data can hold one, and its month still bills it
        ((dt.date(2026, 8, 1), dt.date(2026, 9, 30)), dt.date(2026, 10, 20)),
    ],
    ids=["ended-mid-month", "time-after-its-end"],
)
def test_a_terminated_subscription_is_billed_the_month_of_its_time_and_not_the_next(
    time_machine, dates, work_date
):
    # given a terminated subscription with 11 h in October
    start_date, end_date = dates
    subscription = SubscriptionFactory(
        start_date=start_date, end_date=end_date, status=SubscriptionStatus.TERMINATED
    )
    TimeEntryFactory(
        ticket=TicketFactory(subscription=subscription),
        hours=Decimal("11.00"),
        work_date=work_date,
    )
    # when October and then November are closed
    period_close(month=OCTOBER)
    time_machine.move_to(dt.datetime(2026, 12, 1, 0, 5, tzinfo=dt.UTC), tick=False)
    period_close(month=NOVEMBER)
    # then October bills the full fee (no proration) and the overtime, November nothing
    october = items_of(subscription)
    assert {i.period for i in october.values()} == {OCTOBER}
    assert october["fee"].amount == Money("500.00", "EUR")
    assert october["overtime"].amount == Money("60.00", "EUR")


def test_an_amount_no_item_holds_stops_the_close_with_its_reason_until_the_price_is_fixed():
    # given an hourly rate the catalogue accepts but far too high, and 120 h of overtime
    package = package_with_prices({"EUR": ("500.00", "9999999999.99")})
    subscription = SubscriptionFactory(package=package)
    ticket = TicketFactory(subscription=subscription)
    for day in range(1, 6):
        TimeEntryFactory(ticket=ticket, hours=Decimal("24.00"), work_date=OCTOBER.replace(day=day))
    TimeEntryFactory(ticket=ticket, hours=Decimal("10.00"), work_date=OCTOBER.replace(day=6))
    # then the subscription's usage still shows the amount
    api = APIClient()
    api.force_authenticate(AdminFactory())
    usage = api.get(f"/api/v1/subscriptions/{subscription.pk}/usage/?period=2026-10")
    assert usage.status_code == 200
    assert usage.json()["overtime_amount"] == "1199999999998.80"
    # and the admin's confirmation of the close gives the reason instead of the items
    browser = Client()
    browser.force_login(FinanceFactory())
    confirmation = browser.get("/admin/packages/billingperiod/2026-10/close/")
    assert confirmation.status_code == 200
    assert f"Subscription #{subscription.pk}: its overtime of" in confirmation.content.decode()
    # and the close refuses with the reason, writing nothing
    with pytest.raises(ValidationError) as refused:
        period_close(month=OCTOBER)
    assert refused.value.messages == [
        f"Subscription #{subscription.pk}: its overtime of 1199999999998.80 EUR is more than a "
        "billable item holds (at most 999,999,999,999.99); correct its price, then close the "
        "month again."
    ]
    assert not BillableItem.objects.exists()
    assert BillingPeriod.objects.get(month=OCTOBER).status == PeriodStatus.CLOSING
    # when the price is corrected, the close bills the month
    price = package.prices.get()
    price.hourly_rate = Money("60.00", "EUR")
    price.save()
    period_close(month=OCTOBER)
    assert items_of(subscription)["overtime"].amount == Money("7200.00", "EUR")
    assert BillingPeriod.objects.get(month=OCTOBER).status == PeriodStatus.CLOSED


def test_a_subscription_starting_after_the_month_is_not_billed():
    SubscriptionFactory(start_date=dt.date(2026, 1, 1))  # billing began in January
    subscription = SubscriptionFactory(start_date=dt.date(2026, 11, 1))
    period_close(month=OCTOBER)
    assert not items_of(subscription)


def test_a_suspended_subscription_still_owes_the_month():
    subscription = SubscriptionFactory(status=SubscriptionStatus.SUSPENDED)
    period_close(month=OCTOBER)
    assert set(items_of(subscription)) == {"fee"}


def test_each_client_is_billed_in_its_own_currency():
    # given one package priced in three currencies and a client in each
    package = package_with_prices(
        {"EUR": ("500.00", "60.00"), "USD": ("550.00", "65.00"), "PLN": ("2100.00", "250.00")}
    )
    subscriptions = {
        currency: SubscriptionFactory(package=package, client=ClientFactory(currency=currency))
        for currency in ("EUR", "USD", "PLN")
    }
    for subscription in subscriptions.values():
        log(TicketFactory(subscription=subscription), "10", "1.5")
    period_close(month=OCTOBER)
    # then each bill uses the client's currency and that currency's price
    expected = {
        "EUR": (Money("500.00", "EUR"), Money("90.00", "EUR")),
        "USD": (Money("550.00", "USD"), Money("97.50", "USD")),
        "PLN": (Money("2100.00", "PLN"), Money("375.00", "PLN")),
    }
    for currency, subscription in subscriptions.items():
        items = items_of(subscription)
        assert (items["fee"].amount, items["overtime"].amount) == expected[currency]
        assert items["overtime"].unit_price.currency.code == currency


@pytest.mark.parametrize(
    ("rate", "hours", "amount"),
    [
        ("1002.00", "0.25", "251"),  # 250.50 rounds half up, not to even
        ("1001.00", "0.25", "250"),  # 250.25 rounds down
        ("1003.00", "0.25", "251"),  # 250.75 rounds up
        ("1234.00", "2.75", "3394"),  # 3393.50
    ],
)
def test_yen_has_no_minor_unit_and_rounds_half_up(settings, rate, hours, amount):
    # given a client billed in JPY (a currency without a minor unit)
    settings.CURRENCIES = (*settings.CURRENCIES, "JPY")
    package = package_with_prices({"JPY": ("50000.50", rate)}, included_hours=Decimal("0"))
    client = ClientFactory(currency="JPY")
    client.full_clean()
    subscription = SubscriptionFactory(package=package, client=client)
    log(TicketFactory(subscription=subscription), hours)
    # when the month is closed
    period_close(month=OCTOBER)
    # then amounts are whole yen, rounded half up once
    items = items_of(subscription)
    assert items["overtime"].amount == Money(amount, "JPY")
    assert items["overtime"].amount.amount == items["overtime"].amount.amount.to_integral_value()
    assert items["fee"].amount == Money("50001", "JPY")


def test_the_period_is_closed_by_whom_and_when_and_its_entries_are_billed():
    # given an entry in October
    subscription = SubscriptionFactory()
    log(TicketFactory(subscription=subscription), "2")
    finance = FinanceFactory()
    # when finance closes October
    period_close(month=OCTOBER, actor=finance)
    # then the month is closed, by finance, now, and its entries are billed since then
    period = BillingPeriod.objects.get(month=OCTOBER)
    assert period.status == PeriodStatus.CLOSED
    assert period.closed_by == finance
    assert period.closed_at == dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.UTC)
    entries = time_entries_with_billed(TimeEntry.objects.all())
    assert [entry.billed_at for entry in entries] == [period.closed_at]
    # and the subscription's audit trail shows the month billed
    billed = [
        event
        for event in subscription_audit_trail(subscription_id=subscription.pk)
        if event.action == AuditAction.PERIOD_BILLED
    ]
    assert [event.detail["period"] for event in billed] == ["2026-10"]


def test_the_audit_has_one_row_per_batch_and_each_subscription_shows_it(settings):
    # given three subscriptions with time in October, and between the first two (by id) one
    # that ended in September
    first = SubscriptionFactory()
    ended = SubscriptionFactory(start_date=dt.date(2026, 8, 1), end_date=dt.date(2026, 9, 30))
    subscriptions = [first, SubscriptionFactory(), SubscriptionFactory()]
    for subscription in subscriptions:
        log(TicketFactory(subscription=subscription), "2")
    # when October is closed in batches of two subscriptions
    settings.ROLLUP_BATCH_SIZE = 2
    period_close(month=OCTOBER)
    # then the audit has one "period billed" row per batch, not per subscription
    rows = AuditEvent.objects.filter(action=AuditAction.PERIOD_BILLED)
    assert sorted(
        (row.detail["subscriptions_billed"], row.detail["items_written"]) for row in rows
    ) == [(1, 1), (2, 2)]
    assert not rows.filter(subscription__isnull=False).exists()
    # and each billed subscription's trail shows October billed, once
    for subscription in subscriptions:
        trail = subscription_audit_trail(subscription_id=subscription.pk)
        billed = [event.detail["period"] for event in trail if event.action == "period_billed"]
        assert billed == ["2026-10"], subscription
    # but not on the trail of the one that ended, although its id lies in the first batch
    assert subscriptions[0].pk < ended.pk < subscriptions[1].pk
    assert subscription_audit_trail(subscription_id=ended.pk) == []


def test_entries_of_other_months_are_not_billed():
    subscription = SubscriptionFactory()
    ticket = TicketFactory(subscription=subscription)
    log(ticket, "1")
    november = time_entry_log(
        ticket=ticket, operator=OperatorFactory(), hours="1", work_date=dt.date(2026, 11, 2)
    )
    period_close(month=OCTOBER)
    assert not time_entry_is_billed(TimeEntry.objects.get(pk=november.pk))
    assert (
        time_entries_with_billed(TimeEntry.objects.filter(pk=november.pk)).get().billed_at is None
    )


def test_a_month_that_has_not_ended_cannot_be_closed():
    SubscriptionFactory()
    with pytest.raises(ValidationError, match="2026-11 has not ended yet"):
        period_close(month=NOVEMBER)
    assert not BillableItem.objects.exists()
    assert not BillingPeriod.objects.filter(month=NOVEMBER).exclude(status="open").exists()


def test_a_month_with_a_subscription_without_price_is_not_closed():
    # given a subscription whose client's currency the package has no price for
    subscription = SubscriptionFactory(client=ClientFactory(currency="GBP"))
    # then the month is not closed, and says which subscription to fix
    with pytest.raises(ValidationError, match=f"#{subscription.pk}"):
        period_close(month=OCTOBER)
    assert not BillingPeriod.objects.filter(month=OCTOBER, status="closed").exists()


def test_closing_a_month_twice_writes_nothing_more():
    subscription = SubscriptionFactory()
    log(TicketFactory(subscription=subscription), "12.25")
    first = period_close(month=OCTOBER)
    second = period_close(month=OCTOBER)
    assert (first.items_created, first.already_closed) == (2, False)
    assert (second.items_created, second.already_closed) == (0, True)
    assert BillableItem.objects.count() == 2


def test_a_batch_delivered_again_writes_nothing_more():
    subscription = SubscriptionFactory()
    log(TicketFactory(subscription=subscription), "12.25")
    period_close(month=OCTOBER)
    again = period_rollup_batch(month=OCTOBER, first_id=subscription.pk, last_id=subscription.pk)
    assert again == 0
    assert BillableItem.objects.count() == 2


def test_one_time_buckets_get_no_monthly_items():
    package = package_with_prices(
        {"EUR": ("1100.00", "0.00")},
        billing_mode=BillingMode.ONE_TIME,
        included_hours=Decimal("20"),
    )
    subscription = subscription_create(
        client=ClientFactory(),
        package=package,
        start_date=dt.date(2026, 10, 1),
        now=dt.datetime(2026, 10, 1, 9, 0, tzinfo=dt.UTC),  # sold in October
    )
    log(TicketFactory(subscription=subscription), "12")
    period_close(month=OCTOBER)
    assert [i.kind for i in BillableItem.objects.filter(subscription=subscription)] == ["one_time"]
    assert time_entry_is_billed(TimeEntry.objects.get())


def test_small_batches_bill_the_same_as_one_batch():
    subscriptions = [SubscriptionFactory() for _ in range(5)]
    for subscription in subscriptions:
        log(TicketFactory(subscription=subscription), "11")
    result = period_close(month=OCTOBER, batch_size=2)
    assert result.items_created == 10
    assert BillableItem.objects.filter(kind="overtime").count() == 5


def test_months_follow_the_projects_time_zone(settings, time_machine):
    # given the project runs on Warsaw time, and it is 00:30 on 1 December there
    settings.TIME_ZONE = "Europe/Warsaw"
    time_machine.move_to(dt.datetime(2026, 11, 30, 23, 30, tzinfo=dt.UTC), tick=False)
    subscription = SubscriptionFactory()
    # then November has ended (although it is still 30 November in UTC)
    period_close(month=NOVEMBER)
    assert BillableItem.objects.get(subscription=subscription).period == NOVEMBER
    # and time logged now, without a date, belongs to December
    entry = time_entry_log(
        ticket=TicketFactory(subscription=subscription), operator=OperatorFactory(), hours="1"
    )
    assert entry.work_date == dt.date(2026, 12, 1)


def test_in_utc_the_month_has_not_ended_before_midnight_utc(settings, time_machine):
    settings.TIME_ZONE = "UTC"
    time_machine.move_to(dt.datetime(2026, 11, 30, 23, 30, tzinfo=dt.UTC), tick=False)
    with pytest.raises(ValidationError, match="has not ended yet"):
        period_close(month=NOVEMBER)


def test_a_statement_without_a_price_is_a_clear_refusal():
    # given a subscription whose client's currency lost its price
    subscription = SubscriptionFactory(client=ClientFactory(currency="GBP"))
    # then the statement says so, as every service refusal does
    with pytest.raises(ValidationError, match="no price in GBP") as excinfo:
        statement_for_subscription(subscription=subscription, month=OCTOBER)
    assert excinfo.value.code == "missing_price"


def test_a_statement_shows_the_figures_the_rollup_bills():
    subscription = SubscriptionFactory()
    log(TicketFactory(subscription=subscription), "12.25")
    statement = statement_for_subscription(subscription=subscription, month=OCTOBER)
    what_if = statement_for_subscription(
        subscription=subscription, month=OCTOBER, extra_hours=Decimal("1")
    )
    period_close(month=OCTOBER)
    overtime = items_of(subscription)["overtime"]
    assert (statement.overtime_hours, statement.overtime_amount) == (
        overtime.quantity,
        overtime.amount,
    )
    assert statement.remaining_hours == Decimal("0.00")
    assert statement.used_percent == 122
    assert what_if.overtime_amount == Money("195.00", "EUR")
