"""The CSV export streamed from PostgreSQL's COPY: byte for byte the file the Python writer
makes from the same items, sent as it is read."""

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection
from django.http import StreamingHttpResponse
from djmoney.money import Money
from psycopg.pq import TransactionStatus

from billing.exports import copy_csv_batches, copy_csv_chunks, csv_chunks
from billing.models import BILLABLE_ITEM_EXPORT_COLUMNS, BillableItem, ItemStatus, ItemUnit
from billing.selectors.finance import billable_items_export_rows
from tests.billing.conftest import api_as
from tests.factories import BillableItemFactory

OCTOBER = dt.date(2026, 10, 1)
HEADER = (",".join(BILLABLE_ITEM_EXPORT_COLUMNS) + "\r\n").encode()

HOSTILE = [
    '=HYPERLINK("http://x","y")',
    "+cmd|' /C calc'!A0",
    "@SUM(1+1)",
    "-2+3",
    "\t=1+1",
    "\r=1+1",
    "'already quoted",
    "",
    " leading space, trailing space ",
    'say "hello", then leave',
    "first line\nsecond line",
    "windows\r\nline",
    "\n",
    "ends with a newline\n",
    "\\.",
    "Zürich — 東京 😀 ½",
    'a"b""c',
    ";semicolon;",
]


def _python_bytes(month: dt.date) -> bytes:
    return "".join(csv_chunks(billable_items_export_rows(month=month))).encode()


def _copy_bytes(month: dt.date, **options) -> bytes:
    return b"".join(copy_csv_chunks(month=month, **options))


@pytest.fixture
def every_kind_of_item(world):
    every_kind_of_item_create(world)


def every_kind_of_item_create(world) -> None:
    """October's fees (from ``world``), an overtime and a one-time item, and adjustments with
    hostile descriptions in every currency, status and unit, some of them credits."""
    BillableItemFactory(
        subscription=world.subscription,
        kind="overtime",
        unit=ItemUnit.HOURS,
        description="Support overtime 2026-10: 2.25 h x 60.00 EUR",
        quantity=Decimal("2.25"),
        unit_price=Money(Decimal("60.00"), "EUR"),
        amount=Money(Decimal("135.00"), "EUR"),
    )
    BillableItemFactory(
        subscription=world.other_subscription,
        kind="one_time",
        description="-10 h block",
        unit_price=Money(Decimal("999999999999.99"), "USD"),
        amount=Money(Decimal("999999999999.99"), "USD"),
    )
    currencies = ["EUR", "USD", "GBP", "PLN"]
    statuses = list(ItemStatus.values)
    for number, text in enumerate(HOSTILE):
        amount = Decimal("-0.01") * number if number % 2 else Decimal("0.10") * number
        BillableItemFactory(
            subscription=None,
            client=world.acme,
            kind="adjustment",
            unit=ItemUnit.values[number % 2],
            description=text,
            quantity=Decimal("-1.50") if number % 3 == 0 else Decimal("1.00"),
            unit_price=Money(amount, currencies[number % 4]),
            amount=Money(amount, currencies[number % 4]),
            status=statuses[number % len(statuses)],
        )
    # a creation time with microseconds, one of a year before 1000, one in another zone
    first, second, third = BillableItem.objects.order_by("id")[:3]
    BillableItem.objects.filter(pk=first.pk).update(
        created_at=dt.datetime(2026, 10, 3, 8, 7, 6, 5, tzinfo=dt.UTC)
    )
    BillableItem.objects.filter(pk=second.pk).update(
        created_at=dt.datetime(999, 1, 2, 3, 4, 5, 600000, tzinfo=dt.UTC)
    )
    BillableItem.objects.filter(pk=third.pk).update(
        created_at=dt.datetime(2026, 10, 31, 23, 30, tzinfo=dt.timezone(dt.timedelta(hours=-5)))
    )


def test_copy_writes_the_same_bytes_as_the_python_writer(every_kind_of_item, postgres):
    # given a month of items with formulas, quotes, commas, newlines, unicode, credits
    python = _python_bytes(OCTOBER)
    assert python.count(b"\r\n") >= len(HOSTILE) + 4  # every item is in the file
    # when it is exported from COPY, in pieces of any size
    for rows_per_chunk in (1, 3, 1000):
        # then the file is the same, byte for byte
        assert _copy_bytes(OCTOBER, rows_per_chunk=rows_per_chunk) == python


def test_copy_in_batches_writes_the_same_bytes_as_the_python_writer(every_kind_of_item, postgres):
    # given a month of items with newlines, quotes and CR inside cells
    python = _python_bytes(OCTOBER)
    rows = BillableItem.objects.filter(period=OCTOBER).count()
    # when the export job's reader copies it in batches of any size
    for rows_per_batch in (1, 4, 1000):
        told: list[int] = []
        copied = b"".join(
            copy_csv_batches(month=OCTOBER, rows_per_batch=rows_per_batch, progress=told.append)
        )
        # then the file is the same, byte for byte, and the progress ends at every row
        assert copied == python
        assert told[-1] == rows


def test_copy_of_an_empty_month_is_only_the_header(world, postgres):
    assert _copy_bytes(dt.date(2025, 1, 1)) == HEADER == _python_bytes(dt.date(2025, 1, 1))


def test_the_api_streams_the_copy_and_sends_the_header_first(world, every_kind_of_item, postgres):
    # given the items of a month and the finance user's API
    expected = _python_bytes(OCTOBER)
    # when the CSV is requested
    response = api_as(world.users["finance"]).get(
        "/api/v1/billable-items/export/csv/?period=2026-10"
    )
    # then it is a stream whose first piece is the header, sent while the server still runs
    # the COPY (the rows have not all been read)
    assert isinstance(response, StreamingHttpResponse) and response.streaming
    pieces = iter(response.streaming_content)
    assert next(pieces) == HEADER
    assert connection.connection.pgconn.transaction_status == TransactionStatus.ACTIVE
    # and the whole body is the file the Python writer makes
    assert HEADER + b"".join(pieces) == expected
    assert connection.connection.pgconn.transaction_status != TransactionStatus.ACTIVE


def test_a_download_stopped_half_way_leaves_the_connection_usable(world, postgres):
    # given an export read up to its first piece of rows
    pieces = copy_csv_chunks(month=OCTOBER, rows_per_chunk=1)
    assert next(pieces) == HEADER
    assert next(pieces).count(b"\r\n") == 1
    # when the client goes away (the response is closed)
    pieces.close()
    # then the next query on the same connection works
    assert BillableItem.objects.filter(period=OCTOBER).count() == 2
