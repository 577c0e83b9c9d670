"""History: one row per closed month per subscription, its billed items, and the chart."""

import datetime as dt
from decimal import Decimal

import pytest
from djmoney.money import Money

from billing.models import BillableItem, ItemStatus
from billing.services import period_close
from packages.models import BillingMode
from tests.clientarea.conftest import SEPTEMBER, figures, section
from tests.factories import (
    SubscriptionFactory,
    TicketFactory,
    TimeEntryFactory,
    package_with_prices,
)

pytestmark = pytest.mark.django_db
AUGUST = dt.date(2026, 8, 1)


def log(subscription, hours, day):
    TimeEntryFactory(
        ticket=TicketFactory(subscription=subscription), hours=Decimal(hours), work_date=day
    )


@pytest.fixture
def gold(portal_user):
    """10 h at 500.00 EUR + 60.00 EUR/h since August: 4 h in August, 12.25 h in September,
    1 h in October (still open). August and September are closed by the rollup."""
    subscription = SubscriptionFactory(
        client=portal_user.client,
        start_date=AUGUST,
        package=package_with_prices({"EUR": ("500.00", "60.00")}, name="Gold"),
    )
    log(subscription, "4.00", dt.date(2026, 8, 10))
    log(subscription, "8.00", dt.date(2026, 9, 3))
    log(subscription, "4.25", dt.date(2026, 9, 4))
    log(subscription, "1.00", dt.date(2026, 10, 2))
    period_close(month=AUGUST)
    period_close(month=SEPTEMBER)
    return subscription


def test_one_row_per_closed_month_with_figures_and_items(signed_in, gold):
    # given September's overtime item has been invoiced
    BillableItem.objects.filter(subscription=gold, period=SEPTEMBER, kind="overtime").update(
        status=ItemStatus.INVOICED
    )
    # when
    html = section(signed_in.get("/history/").content.decode(), f"history-{gold.pk}")
    table = html.split("<table")[1]
    # then August and September are listed, newest first; the open October is not
    assert table.index('data-month="2026-09"') < table.index('data-month="2026-08"')
    assert 'data-month="2026-10"' not in table
    shown = figures(table)
    assert shown["included"] == ["10.00 h", "10.00 h"]
    assert shown["used"] == ["12.25 h", "4.00 h"]
    assert shown["overtime"] == ["2.25 h", "0.00 h"]
    assert shown["fee"] == ["€500.00", "€500.00"]
    assert shown["overtime-amount"] == ["€135.00", "€0.00"]
    # and the billed items with their status
    assert shown["item-amount"] == ["€500.00", "€135.00", "€500.00"]
    assert shown["item-status"] == ["Pending", "Invoiced", "Pending"]
    assert "Support overtime 2026-09: 2.25 h x 60.00 EUR" in html


def test_chart_of_the_last_12_months(signed_in, gold):
    html = signed_in.get(f"/subscriptions/{gold.pk}/").content.decode()

    start = html.index('<svg class="usage-chart"')
    svg = html[start : html.index("</svg>", start)]
    assert svg.count('<g class="month') == 12
    assert 'data-month="2025-11"' in svg and 'data-month="2026-10"' in svg
    assert 'data-month="2026-09" data-used="12.25" data-included="10.00"' in svg
    assert '<g class="month over" data-month="2026-09"' in svg
    assert 'data-month="2026-08" data-used="4.00" data-included="10.00"' in svg
    assert 'data-month="2026-10" data-used="1.00" data-included="10.00"' in svg
    assert 'data-month="2026-07" data-used="0.00" data-included="0.00"' in svg  # before start
    assert "<title" in svg and 'role="img"' in svg
    assert f'aria-labelledby="chart-{gold.pk}-title chart-{gold.pk}-desc"' in svg
    assert "Gold hours used per month" in svg


def test_bucket_history_shows_hours_and_its_one_time_item(signed_in, portal_user, gold):
    bucket = SubscriptionFactory(
        client=portal_user.client,
        start_date=SEPTEMBER,
        package=package_with_prices(
            {"EUR": ("1100.00", "0.00")},
            billing_mode=BillingMode.ONE_TIME,
            included_hours=Decimal("20.00"),
        ),
    )
    log(bucket, "3.50", dt.date(2026, 9, 20))
    BillableItem.objects.create(
        client=portal_user.client,
        subscription=bucket,
        period=SEPTEMBER,
        kind="one_time",
        description="Support hours package 20 h",
        quantity=Decimal("1"),
        unit_price=Money(Decimal("1100.00"), "EUR"),
        amount=Money(Decimal("1100.00"), "EUR"),
        invoice_action="next_invoice",
    )

    html = section(signed_in.get("/history/").content.decode(), f"history-{bucket.pk}")

    shown = figures(html)
    assert shown["used"] == ["3.50 h"]
    assert shown["item-amount"] == ["€1,100.00"]
    assert "usage-chart" not in html


def test_a_month_without_items_says_nothing_was_billed(signed_in, portal_user):
    free = SubscriptionFactory(
        client=portal_user.client,
        start_date=SEPTEMBER,
        package=package_with_prices({"EUR": ("0.00", "70.00")}, included_hours=Decimal("0")),
    )
    period_close(month=SEPTEMBER)

    html = section(signed_in.get("/history/").content.decode(), f"history-{free.pk}")

    assert 'data-month="2026-09"' in html
    assert "Nothing billed" in html


def test_another_clients_history_is_not_found(signed_in, gold):
    foreign = SubscriptionFactory()
    assert signed_in.get(f"/subscriptions/{foreign.pk}/").status_code == 404
    assert f"history-{foreign.pk}" not in signed_in.get("/history/").content.decode()
