"""Finance closes a month and exports it in real Chromium, on a 1400 px wide screen."""

import csv
import datetime as dt
import io
from decimal import Decimal
from pathlib import Path

import pytest
from django.urls import reverse
from djmoney.money import Money
from playwright.sync_api import expect

from billing.models import BillableItem
from tests.factories import (
    PASSWORD,
    BillableItemFactory,
    ClientFactory,
    FinanceFactory,
    SubscriptionFactory,
    TicketFactory,
    TimeEntryFactory,
    package_with_prices,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def october(time_machine):
    """ACME's Gold subscription since September, 11.25 h in October; today is 2 November."""
    time_machine.move_to(dt.datetime(2026, 10, 20, 9, 0, tzinfo=dt.UTC), tick=False)
    package = package_with_prices({"EUR": ("500.00", "60.00")}, name="Gold")
    acme = ClientFactory(name="ACME Ltd", currency="EUR")
    subscription = SubscriptionFactory(client=acme, package=package, start_date=dt.date(2026, 9, 1))
    ticket = TicketFactory(subscription=subscription, subject="Mail server down")
    TimeEntryFactory(ticket=ticket, hours=Decimal("11.25"), work_date=dt.date(2026, 10, 2))
    BillableItemFactory(
        subscription=None,
        client=acme,
        kind="adjustment",
        description="A long description of an item billed twice by mistake, now void",
        unit_price=Money(Decimal("99.00"), "EUR"),
        amount=Money(Decimal("99.00"), "EUR"),
        period=dt.date(2026, 10, 1),
        status="void",
    )
    time_machine.move_to(dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.UTC), tick=True)
    FinanceFactory(username="fiona")


def test_finance_closes_a_month_and_exports_it(live_server, page, october):
    page.set_viewport_size({"width": 1400, "height": 900})
    page.goto(f"{live_server.url}{reverse('admin:login')}")
    page.fill("#id_username", "fiona")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")

    # the index's "Billing periods" leads to the page with the close button
    page.click("text=Billing periods")
    expect(page.locator("#period-2026-10")).to_contain_text("Close the month")
    page.click("#close-2026-10")
    # which first says what will be written
    expect(page.locator("#close-subscriptions")).to_have_text("1")
    expect(page.locator("#close-items")).to_have_text("2")
    page.click("#close-confirm input[type=submit]")
    expect(page.locator(".messagelist")).to_contain_text("2026-10 closed: 2 billable item(s)")
    expect(page.locator("#period-2026-10")).to_contain_text("Export the 2 pending item(s)")

    # the month's list shows every column, the amount and status included, on 1400 px
    page.click("#period-2026-10 th a")
    for column in ("amount_display", "status_display"):
        box = page.locator(f"#result_list th.column-{column}").bounding_box()
        assert box is not None and box["x"] + box["width"] <= 1400, column
    void_row = page.locator("#result_list tr", has=page.locator(".sbt-status-void"))
    decoration = void_row.locator("td.field-amount_display").evaluate(
        "cell => getComputedStyle(cell).textDecorationLine"
    )
    assert decoration == "line-through"

    # "export pending and mark exported" downloads the two items, named, and marks them
    with page.expect_download() as download:
        page.click("#export-pending button")
    text = Path(download.value.path()).read_text()
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    assert sorted((row["kind"], row["client_name"], row["status"]) for row in rows) == [
        ("fee", "ACME Ltd", "exported"),
        ("overtime", "ACME Ltd", "exported"),
    ]
    assert BillableItem.objects.filter(status="exported").count() == 2
