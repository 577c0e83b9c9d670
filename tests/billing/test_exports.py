"""Exports of a month's items: CSV and XLSX with the API's columns and plain decimals, streamed
with a number of queries that does not depend on the number of items."""

import csv
import datetime as dt
import io
import re
import tracemalloc
import zipfile
from decimal import Decimal

import openpyxl
import pytest
from django.db import connection
from django.http import FileResponse, StreamingHttpResponse
from django.test import Client, TestCase
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from djmoney.money import Money

from billing.models import BILLABLE_ITEM_EXPORT_COLUMNS
from tests.billing.conftest import api_as
from tests.factories import BillableItemFactory

OCTOBER = dt.date(2026, 10, 1)
EXPORT = "/api/v1/billable-items/export/?period=2026-10&format={}"


def insert_items(*, client_id: int, count: int, start: int = 0) -> None:
    """``count`` adjustments of October written by the database itself (fast set-up)."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO billing_billableitem
                (period, kind, description, unit, quantity, currency, unit_price, amount,
                 invoice_action, status, created_at, updated_at, client_id)
            SELECT %s, 'adjustment', 'Bulk item ' || n, 'quantity', 1.00, 'EUR',
                   (n %% 100000) / 100.0, (n %% 100000) / 100.0, 'next_invoice', 'pending',
                   now(), now(), %s
            FROM generate_series(%s::bigint, %s::bigint) AS n
            """,
            [OCTOBER, client_id, start + 1, start + count],
        )


def _export(api, kind="csv"):
    """Read the whole body, the way a client downloads it."""
    response = api.get(EXPORT.format(kind))
    return response, b"".join(response.streaming_content)


def test_csv_has_the_api_columns_and_plain_decimals(world):
    # given an overtime item, a negative adjustment without subscription, and a USD fee
    BillableItemFactory(
        subscription=world.subscription,
        kind="overtime",
        unit="hours",
        description='Support overtime 2026-10: 2.25 h x 60.00 EUR, "urgent"',
        quantity=Decimal("2.25"),
        unit_price=Money(Decimal("60.00"), "EUR"),
        amount=Money(Decimal("135.00"), "EUR"),
    )
    BillableItemFactory(
        subscription=None,
        client=world.acme,
        kind="adjustment",
        description="Goodwill credit",
        unit_price=Money(Decimal("-35.50"), "EUR"),
        amount=Money(Decimal("-35.50"), "EUR"),
    )
    # when finance exports October
    response, body = _export(api_as(world.users["finance"]))
    # then the file is a streamed CSV named after the month
    assert isinstance(response, StreamingHttpResponse)
    assert response["Content-Disposition"] == 'attachment; filename="billable-items-2026-10.csv"'
    rows = list(csv.reader(io.StringIO(body.decode())))
    assert tuple(rows[0]) == BILLABLE_ITEM_EXPORT_COLUMNS
    # sorted by kind and currency: ids as text would sort "10" before "9"
    figures = sorted(
        ((r[4], r[2], r[7], r[8], r[9], r[10]) for r in rows[1:]), key=lambda f: (f[0], f[5])
    )
    assert figures == [
        ("adjustment", "", "1.00", "-35.50", "-35.50", "EUR"),
        ("fee", str(world.subscription.pk), "1.00", "500.00", "500.00", "EUR"),
        ("fee", str(world.other_subscription.pk), "1.00", "550.00", "550.00", "USD"),
        ("overtime", str(world.subscription.pk), "2.25", "60.00", "135.00", "EUR"),
    ]
    overtime = next(r for r in rows if r[4] == "overtime")
    assert overtime[5] == 'Support overtime 2026-10: 2.25 h x 60.00 EUR, "urgent"'
    assert (overtime[3], overtime[13]) == ("2026-10", "2026-10-20T09:00:00Z")


def test_an_empty_month_exports_only_the_header(world):
    response = api_as(world.users["finance"]).get("/api/v1/billable-items/export/?period=2025-01")
    header = ",".join(BILLABLE_ITEM_EXPORT_COLUMNS) + "\r\n"
    assert b"".join(response.streaming_content).decode() == header


def test_xlsx_has_the_same_rows_with_two_decimal_numbers(world):
    response, body = _export(api_as(world.users["finance"]), "xlsx")
    assert isinstance(response, FileResponse)
    assert response["Content-Disposition"] == ('attachment; filename="billable-items-2026-10.xlsx"')
    sheet = openpyxl.load_workbook(io.BytesIO(body)).active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0] == BILLABLE_ITEM_EXPORT_COLUMNS
    assert sorted((r[10], Decimal(str(r[9]))) for r in rows[1:]) == [
        ("EUR", Decimal("500")),
        ("USD", Decimal("550")),
    ]
    amount_cell = sheet.cell(row=2, column=BILLABLE_ITEM_EXPORT_COLUMNS.index("amount") + 1)
    assert amount_cell.number_format == "0.00"
    assert rows[1][3] == "2026-10"


def test_export_queries_do_not_grow_and_memory_stays_flat(world, postgres):
    """100,000 items: the same number of queries as 1,000, sent as a stream of pieces, with a
    memory peak far below the size of the file."""
    api = api_as(world.users["finance"])
    api.get("/api/v1/billable-items/?page_size=1")  # the caller's role is read once
    insert_items(client_id=world.acme.pk, count=1_000)
    with CaptureQueriesContext(connection) as small:
        _, small_body = _export(api)
    insert_items(client_id=world.acme.pk, count=99_000, start=1_000)

    with CaptureQueriesContext(connection) as large:
        response = api.get(EXPORT.format("csv"))
        assert isinstance(response, StreamingHttpResponse) and response.streaming
        tracemalloc.start()
        pieces = 0
        size = 0
        for piece in response.streaming_content:
            pieces += 1
            size += len(piece)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()

    assert len(large) == len(small)
    assert size > 50 * len(small_body)  # about 100 times the rows of the small export
    assert pieces > 100  # written as it is read, ~1,000 rows a piece
    assert peak < size / 3, f"peak {peak} bytes for a body of {size} bytes"


@pytest.mark.parametrize("kind", ["csv", "xlsx"])
def test_export_is_refused_to_operators_and_clients(world, kind):
    for role in ("operator", "client"):
        assert api_as(world.users[role]).get(EXPORT.format(kind)).status_code == 403


def _bulk_adjustments(world, count):
    from billing.models import BillableItem

    BillableItem.objects.bulk_create(
        BillableItem(
            client=world.acme,
            period=OCTOBER,
            kind="adjustment",
            description=f"Bulk {n}",
            quantity=Decimal("1.00"),
            unit_price=Money(Decimal("1.25"), "EUR"),
            amount=Money(Decimal("1.25"), "EUR"),
            invoice_action="next_invoice",
        )
        for n in range(count)
    )


def test_xlsx_queries_do_not_grow_with_the_items(world):
    api = api_as(world.users["finance"])
    api.get("/api/v1/billable-items/?page_size=1")  # the caller's role is read once
    _bulk_adjustments(world, 200)
    with CaptureQueriesContext(connection) as small:
        _, small_body = _export(api, "xlsx")
    _bulk_adjustments(world, 2_000)
    with CaptureQueriesContext(connection) as large:
        _, large_body = _export(api, "xlsx")
    assert len(large) == len(small)
    rows = list(openpyxl.load_workbook(io.BytesIO(large_body)).active.iter_rows(values_only=True))
    assert len(rows) == 1 + 2 + 2_200


# Descriptions a spreadsheet would run as formulas (OWASP, "CSV injection").
FORMULAS = [
    '=HYPERLINK("http://x","y")',
    "+cmd|' /C calc'!A0",
    "@SUM(1+1)",
    "-2+3",
    "\t=1+1",
    "\r=1+1",
]


@pytest.fixture
def formula_items(world):
    """Adjustments of October whose descriptions are formulas, one a credit of -10.00."""
    for number, text in enumerate(FORMULAS):
        amount = Money(Decimal("-10.00") if number == 0 else Decimal("1.00"), "EUR")
        BillableItemFactory(
            subscription=None,
            client=world.acme,
            kind="adjustment",
            description=text,
            unit_price=amount,
            amount=amount,
        )


def _finance_admin(world):
    browser = Client()
    browser.force_login(world.users["finance"])
    return browser


def _download(world, source, kind):
    if source == "api":
        return _export(api_as(world.users["finance"]), kind)[1]
    browser = _finance_admin(world)
    if kind == "xlsx":  # an export job: started, written by its task, then downloaded
        with TestCase.captureOnCommitCallbacks(execute=True):
            started = browser.post(
                reverse("admin:billing_export_jobs"), {"period": "2026-10", "format": "xlsx"}
            )
        url = started["Location"] + "download/"
    else:
        url = reverse("admin:billing_export") + f"?period=2026-10&format={kind}"
    response = browser.get(url)
    assert response.status_code == 200
    return b"".join(response.streaming_content)


@pytest.mark.parametrize("source", ["api", "admin"])
def test_csv_cells_never_start_a_formula_and_amounts_stay_numbers(world, formula_items, source):
    # when finance exports a month with formula-like descriptions
    rows = list(csv.reader(io.StringIO(_download(world, source, "csv").decode(), newline="")))
    adjustments = [r for r in rows[1:] if r[4] == "adjustment"]
    # then each description is the text with a leading quote, shown and never run
    assert sorted(r[5] for r in adjustments) == sorted("'" + text for text in FORMULAS)
    # and the -10.00 credit is a plain number, not prefixed
    assert sorted(r[9] for r in adjustments) == ["-10.00"] + ["1.00"] * 5
    for row in rows[1:]:
        for index, value in enumerate(row):
            if BILLABLE_ITEM_EXPORT_COLUMNS[index] not in {"quantity", "unit_price", "amount"}:
                assert not value.startswith(("=", "+", "-", "@", "\t", "\r")), row


@pytest.mark.parametrize("source", ["api", "admin"])
def test_xlsx_text_cells_are_strings_and_amounts_numbers(
    world, formula_items, source, celery_eager
):
    sheet = openpyxl.load_workbook(io.BytesIO(_download(world, source, "xlsx"))).active
    description = BILLABLE_ITEM_EXPORT_COLUMNS.index("description") + 1
    amount = BILLABLE_ITEM_EXPORT_COLUMNS.index("amount") + 1
    cells = list(sheet.iter_rows(min_row=2))
    assert not [c.coordinate for row in cells for c in row if c.data_type == "f"]
    adjustments = [row for row in cells if row[4].value == "adjustment"]
    assert {row[description - 1].data_type for row in adjustments} == {"s"}
    assert sorted(row[description - 1].value for row in adjustments) == sorted(
        "'" + text for text in FORMULAS
    )
    assert {row[amount - 1].data_type for row in cells} == {"n"}
    assert (
        sorted(Decimal(str(row[amount - 1].value)) for row in adjustments)
        == [Decimal("-10")] + [Decimal("1")] * 5
    )


@pytest.mark.parametrize("amount", ["8.20", "0.07", "9975.88", "-72395.57"])
def test_xlsx_amounts_are_the_decimals_own_digits(world, amount):
    # given an item whose amount a float cannot hold exactly
    BillableItemFactory(
        subscription=None,
        client=world.acme,
        kind="adjustment",
        unit_price=Money(amount, "EUR"),
        amount=Money(amount, "EUR"),
    )
    # when it is exported as XLSX
    body = _download(world, "api", "xlsx")
    # then the file holds the amount's digits (a finance import reading the cell's text gets
    # them), as numbers
    sheet_xml = zipfile.ZipFile(io.BytesIO(body)).read("xl/worksheets/sheet1.xml").decode()
    columns = [
        openpyxl.utils.get_column_letter(BILLABLE_ITEM_EXPORT_COLUMNS.index(name) + 1)
        for name in ("unit_price", "amount")
    ]
    for column in columns:
        texts = re.findall(rf'<c r="{column}\d+"[^>]*t="n"[^>]*><v>([^<]*)</v>', sheet_xml)
        assert amount in texts
        assert all(Decimal(text).as_tuple().exponent == -2 for text in texts)


def test_xlsx_drops_control_characters_a_worksheet_cannot_hold(world):
    BillableItemFactory(
        subscription=None, client=world.acme, kind="adjustment", description="\x01=1+1 \x07bell"
    )
    sheet = openpyxl.load_workbook(io.BytesIO(_download(world, "api", "xlsx"))).active
    descriptions = [row[5] for row in sheet.iter_rows(min_row=2, values_only=True)]
    assert "'=1+1 bell" in descriptions
