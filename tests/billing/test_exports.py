"""Exports of a month's items: CSV and XLSX with the API's columns and plain decimals, streamed
with a number of queries that does not depend on the number of items."""

import csv
import datetime as dt
import io
import tracemalloc
from decimal import Decimal

import openpyxl
import pytest
from django.db import connection
from django.http import FileResponse, StreamingHttpResponse
from django.test.utils import CaptureQueriesContext
from djmoney.money import Money

from billing.selectors import EXPORT_COLUMNS
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
            FROM generate_series(%s, %s) AS n
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
    assert tuple(rows[0]) == EXPORT_COLUMNS
    figures = sorted((r[4], r[2], r[7], r[8], r[9], r[10]) for r in rows[1:])
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
    assert b"".join(response.streaming_content).decode() == ",".join(EXPORT_COLUMNS) + "\n"


def test_xlsx_has_the_same_rows_with_two_decimal_numbers(world):
    response, body = _export(api_as(world.users["finance"]), "xlsx")
    assert isinstance(response, FileResponse)
    assert response["Content-Disposition"] == ('attachment; filename="billable-items-2026-10.xlsx"')
    sheet = openpyxl.load_workbook(io.BytesIO(body)).active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0] == EXPORT_COLUMNS
    assert sorted((r[10], Decimal(str(r[9]))) for r in rows[1:]) == [
        ("EUR", Decimal("500")),
        ("USD", Decimal("550")),
    ]
    amount_cell = sheet.cell(row=2, column=EXPORT_COLUMNS.index("amount") + 1)
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
