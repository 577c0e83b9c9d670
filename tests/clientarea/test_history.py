"""History: one row per closed month per subscription, its billed items, and the chart."""

import datetime as dt
from decimal import Decimal

import pytest
from djmoney.money import Money

from billing.models import BillableItem, BilledTerms, ItemStatus
from billing.selectors import portal as portal_selectors
from billing.selectors.portal import client_history
from billing.services.rollup import period_close
from packages.models import BillingMode, BillingPeriod
from packages.services import subscription_create
from tests.clientarea.conftest import SEPTEMBER, figures, log, section
from tests.factories import (
    SubscriptionFactory,
    package_with_prices,
)

pytestmark = pytest.mark.django_db


def closed(*months: dt.date) -> None:
    for month in months:
        BillingPeriod.objects.update_or_create(
            month=month, defaults={"status": "closed", "closed_at": dt.datetime.now(dt.UTC)}
        )


def months_closed(first: dt.date, count: int) -> list[dt.date]:
    """``count`` months from ``first``, each closed."""
    months = [
        dt.date(first.year + (first.month - 1 + n) // 12, (first.month - 1 + n) % 12 + 1, 1)
        for n in range(count)
    ]
    closed(*months)
    return months


def terms_stored(subscription, month: dt.date, hours: tuple[str, str, str] | None) -> None:
    """Gold's terms (10 h, 500.00 + 60.00 EUR) as the close stores them, with the month's
    hours (logged, billed, no charge), or None as before the hours were kept."""
    logged, billed, no_charge = (Decimal(value) for value in hours) if hours else (None,) * 3
    BilledTerms.objects.create(
        subscription=subscription,
        month=month,
        billing_mode=BillingMode.RECURRING,
        included_hours=Decimal("10"),
        fee=Money("500.00", "EUR"),
        hourly_rate=Money("60.00", "EUR"),
        logged_hours=logged,
        billed_hours=billed,
        no_charge_hours=no_charge,
    )


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
    # and each item is written from its figures, in the same money format as the rest
    assert "Overtime 2.25 h × €60.00: " in html
    assert "EUR" not in html


def test_chart_of_the_months_it_ran_in_the_last_12(signed_in, gold):
    html = signed_in.get(f"/subscriptions/{gold.pk}/").content.decode()

    start = html.index('<svg class="usage-chart"')
    svg = html[start : html.index("</svg>", start)]
    # the months before Gold started in August are left out, not drawn as empty bars
    assert svg.count('<g class="month') == 3
    assert 'data-month="2026-07"' not in svg and 'data-month="2025-11"' not in svg
    assert 'data-month="2026-09" data-used="12.25" data-included="10.00"' in svg
    assert '<g class="month over" data-month="2026-09"' in svg
    assert 'data-month="2026-08" data-used="4.00" data-included="10.00"' in svg
    assert 'data-month="2026-10" data-used="1.00" data-included="10.00"' in svg
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


def reprice(package, *, fee: str, hourly_rate: str, included_hours: str | None = None) -> None:
    """An administrator changes the package after September closed."""
    if included_hours is not None:
        package.included_hours = Decimal(included_hours)
        package.save(update_fields=["included_hours"])
    package.prices.update(fee=Decimal(fee), hourly_rate=Decimal(hourly_rate))


def test_closed_months_keep_the_price_they_were_billed_with(signed_in, gold):
    # given September was billed 500.00 + 2.25 h x 60.00 = 135.00
    # when the package's price becomes 550.00 + 70.00 EUR/h
    reprice(gold.package, fee="550.00", hourly_rate="70.00")
    # then the history still shows what was billed, next to the same items
    html = section(signed_in.get("/history/").content.decode(), f"history-{gold.pk}")
    shown = figures(html.split("<table")[1])
    assert shown["fee"] == ["€500.00", "€500.00"]
    assert shown["overtime-amount"] == ["€135.00", "€0.00"]
    assert shown["item-amount"] == ["€500.00", "€135.00", "€500.00"]
    assert 'data-month="2026-09" data-terms="billed"' in html
    assert "the terms it was billed with" in html
    # and the open October, on the dashboard, uses the new price and says so
    card = section(signed_in.get("/").content.decode(), f"subscription-{gold.pk}")
    assert figures(card)["fee"] == ["€550.00"]
    assert figures(card)["rate"] == ["€70.00"]
    assert 'data-terms="current"' in card
    assert "current prices" in card


def test_closed_months_keep_their_included_hours_in_rows_and_chart(signed_in, gold):
    # when the package includes 12 h from now on
    reprice(gold.package, fee="500.00", hourly_rate="60.00", included_hours="12.00")
    # then September and August still had 10 h included, and September's 2.25 h overtime
    html = signed_in.get(f"/subscriptions/{gold.pk}/").content.decode()
    shown = figures(html.split("<table")[1])
    assert shown["included"] == ["10.00 h", "10.00 h"]
    assert shown["overtime"] == ["2.25 h", "0.00 h"]
    assert shown["overtime-amount"] == ["€135.00", "€0.00"]
    svg = html[html.index('<svg class="usage-chart"') :]
    assert 'data-month="2026-09" data-used="12.25" data-included="10.00"' in svg
    # while the open October has the new 12 h
    assert 'data-month="2026-10" data-used="1.00" data-included="12.00"' in svg


def test_a_bucket_keeps_what_was_bought_after_the_package_changes(signed_in, portal_user):
    # given a 20 h bucket bought in September for 1,100.00 EUR, 3.50 h used
    package = package_with_prices(
        {"EUR": ("1100.00", "0.00")},
        billing_mode=BillingMode.ONE_TIME,
        included_hours=Decimal("20.00"),
    )
    BillingPeriod.objects.get_or_create(month=SEPTEMBER)  # billing began in September
    bucket = subscription_create(client=portal_user.client, package=package, start_date=SEPTEMBER)
    log(bucket, "3.50", dt.date(2026, 9, 20))
    period_close(month=SEPTEMBER)
    # when the package becomes a 10 h bucket for 900.00 EUR
    reprice(package, fee="900.00", hourly_rate="0.00", included_hours="10.00")
    # then the dashboard still shows the 20 h bought for 1,100.00, 16.50 h left
    card = section(signed_in.get("/").content.decode(), f"subscription-{bucket.pk}")
    shown = figures(card)
    assert shown["included"] == ["20.00 h"]
    assert shown["left"] == ["16.50 h"]
    assert shown["fee"] == ["€1,100.00"]
    assert 'data-terms="billed"' in card
    # and so does its history
    html = section(signed_in.get("/history/").content.decode(), f"history-{bucket.pk}")
    assert figures(html)["item-amount"] == ["€1,100.00"]
    assert 'data-month="2026-09" data-terms="billed"' in html


def test_history_reads_the_stored_terms_in_one_query(portal_user, django_assert_num_queries):
    # given a monthly package and a bucket, both with stored terms of a closed September
    monthly = SubscriptionFactory(client=portal_user.client, start_date=SEPTEMBER)
    bucket = subscription_create(
        client=portal_user.client,
        package=package_with_prices({"EUR": ("300.00", "0.00")}, billing_mode=BillingMode.ONE_TIME),
        start_date=SEPTEMBER,
    )
    log(monthly, "2.00", dt.date(2026, 9, 3))
    log(bucket, "1.00", dt.date(2026, 9, 3))
    period_close(month=SEPTEMBER)
    # then subscriptions, closed months, hours, items, approved extra hours, the top-up
    # blocks' draws and stored terms: seven queries
    with django_assert_num_queries(7):
        histories = client_history(client_id=portal_user.client.pk)
    assert [len(history.rows) for history in histories] == [1, 1]
    assert {row.statement.terms for h in histories for row in h.rows} == {"billed"}


def test_closed_months_show_the_hours_stored_by_the_close_else_their_entries(
    signed_in, portal_user
):
    # given a 10 h package since June; June's terms were stored before the close kept the
    # month's hours (2 h logged then), July's with the hours the close billed: 5.00 h logged,
    # 6.00 h billed under the policy, 0.50 h at no charge (its entries are not read again)
    may, june, july = dt.date(2026, 5, 1), dt.date(2026, 6, 1), dt.date(2026, 7, 1)
    gold = SubscriptionFactory(
        client=portal_user.client,
        start_date=june,
        package=package_with_prices({"EUR": ("500.00", "60.00")}, name="Gold"),
    )
    log(gold, "2.00", dt.date(2026, 6, 10))
    # (and May's, before it started, with no time: a month it did not run)
    months = ((may, ("0", "0", "0")), (june, None), (july, ("5.00", "6.00", "0.50")))
    for month, hours in months:
        closed(month)
        terms_stored(gold, month, hours)
    # when the client opens the history
    html = section(signed_in.get("/history/").content.decode(), f"history-{gold.pk}")
    table = html.split("<table")[1]
    # then July shows the stored hours, June those of its entries
    shown = figures(table)
    assert shown["used"][-2:] == ["6.00 h", "2.00 h"]
    assert 'data-month="2026-05"' not in table
    assert shown["hours-label"] == ["(5.00 h logged, 6.00 h billed, 0.50 h no charge)"]
    chart = {
        point.month: point.used_hours for point in client_history(client_id=gold.client_id)[0].chart
    }
    assert (chart[june], chart[july]) == (Decimal("2.00"), Decimal("6.00"))


def test_many_ranges_of_entries_read_all_entries_and_show_the_same(signed_in, gold, monkeypatch):
    # given the history of a client whose entry ranges are more than a query takes
    def shown() -> str:
        return section(signed_in.get("/history/").content.decode(), f"history-{gold.pk}")

    expected = shown()
    monkeypatch.setattr(portal_selectors, "_ENTRY_RANGES_MAX", 0)
    # then it reads all of their entries and shows the same
    assert shown() == expected
    assert 'data-month="2026-09"' in expected


def test_the_history_shows_the_last_12_closed_months_and_links_to_all_of_them(
    signed_in, portal_user
):
    # given a package that ran through 14 closed months, 1 h logged in each, all billed
    months = months_closed(dt.date(2025, 8, 1), 14)
    gold = SubscriptionFactory(
        client=portal_user.client,
        start_date=months[0],
        package=package_with_prices({"EUR": ("500.00", "60.00")}, name="Gold"),
    )
    for month in months:
        terms_stored(gold, month, ("1", "1", "0"))
    assert (months[0], months[-1]) == (dt.date(2025, 8, 1), dt.date(2026, 9, 1))
    # when the client opens the history
    html = section(signed_in.get("/history/").content.decode(), f"history-{gold.pk}")
    # then the newest 12 months are listed, with a link to all of them
    shown = [f'data-month="{month:%Y-%m}"' in html for month in months]
    assert shown == [False, False] + [True] * 12
    assert f'href="/subscriptions/{gold.pk}/" data-link="earlier-months"' in html
    # and the package's own page lists all 14, without that link
    page = signed_in.get(f"/subscriptions/{gold.pk}/").content.decode()
    assert all(f'data-month="{month:%Y-%m}"' in page for month in months)
    assert 'data-link="earlier-months"' not in page


def test_a_package_with_no_more_than_12_closed_months_has_no_link_to_earlier_ones(signed_in, gold):
    html = section(signed_in.get("/history/").content.decode(), f"history-{gold.pk}")
    assert 'data-month="2026-08"' in html
    assert 'data-link="earlier-months"' not in html


def test_a_credit_dated_before_the_package_started_is_reached_from_the_history(
    signed_in, portal_user
):
    # given 2025-01 to 2026-09 closed, a package started in 2026-01, and a credit finance
    # dated 2025-03 on it (an adjustment may be dated in any month)
    months_closed(dt.date(2025, 1, 1), 21)
    gold = SubscriptionFactory(client=portal_user.client, start_date=dt.date(2026, 1, 1))
    BillableItem.objects.create(
        client=portal_user.client,
        subscription=gold,
        period=dt.date(2025, 3, 1),
        kind="adjustment",
        description="Goodwill credit",
        unit="quantity",
        quantity=Decimal("1"),
        unit_price=Money("-40.00", "EUR"),
        amount=Money("-40.00", "EUR"),
    )
    # when the client opens the history, which lists the newest 12 closed months
    html = section(signed_in.get("/history/").content.decode(), f"history-{gold.pk}")
    # then the credit's month is not among them, but the link to all months is there
    assert 'data-month="2025-03"' not in html
    assert 'data-link="earlier-months"' in html
    page = signed_in.get(f"/subscriptions/{gold.pk}/").content.decode()
    assert 'data-month="2025-03"' in page


def test_a_package_that_ended_before_the_newest_12_closed_months_says_so_and_links_to_them(
    signed_in, portal_user
):
    # given a package that ran from 2024-11 to 2025-02, all of 2024-11 to 2026-09 closed
    months = months_closed(dt.date(2024, 11, 1), 23)
    old = SubscriptionFactory(
        client=portal_user.client, start_date=months[0], end_date=dt.date(2025, 2, 28)
    )
    # when the client opens the history
    html = section(signed_in.get("/history/").content.decode(), f"history-{old.pk}")
    # then no row, a sentence that says why, and the link to its months
    assert "<table" not in html
    assert "Nothing in the newest 12 closed months." in html
    assert "No closed month yet." not in html
    assert f'href="/subscriptions/{old.pk}/" data-link="earlier-months"' in html


def test_the_chart_reads_the_hours_of_closed_months_not_listed_as_rows(portal_user):
    # given 12 closed months without stored hours (closed before they were kept), 3 h each
    months = months_closed(dt.date(2025, 10, 1), 12)
    gold = SubscriptionFactory(client=portal_user.client, start_date=months[0])
    for month in months:
        log(gold, "3.00", month)
    # when the history lists only the newest 6 closed months
    [history] = client_history(client_id=portal_user.client.pk, months=6)
    # then the chart still shows every month's hours, as the full history does
    [full] = client_history(client_id=portal_user.client.pk)
    assert len(history.rows) == 6
    assert history.chart == full.chart
    assert [point.used_hours for point in history.chart][:11] == [Decimal("3.00")] * 11
