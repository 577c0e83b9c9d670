"""Benchmark of the billable item exports on PostgreSQL (docs/performance.md). One command:

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/sbt_finance \
    python bench/export.py --items 1000000 --xlsx   # [--repeat 5]

It seeds one synthetic month (2001-01) with ``--items`` billable items (or reuses a seed of
the same size), then times, in the same run:
1. the baseline: PostgreSQL ``COPY (SELECT ...) TO STDOUT (FORMAT csv)`` of the same rows and
   columns (the floor: no Python at all);
2. the CSV export as the API serves it (``billing.exports.billable_items_csv_response``,
   the body read to the end; on PostgreSQL it streams from COPY), with the time to its first
   piece (the first byte a client would get);
3. the XLSX export (``--xlsx``), written to a temporary file and read back;
4. ``--xlsx-writers``: the two XLSX writers the export job could use, on the same rows, each
   in its own forked process (so each has its own peak memory): openpyxl in write-only mode
   (``billing.exports.xlsx_write``, with lxml) and xlsxwriter in ``constant_memory`` mode (the
   same cells: numbers as numbers with two decimals, text as inline strings after the same
   formula rule). Time, file size and the growth of the process's peak resident memory.
``--repeat N`` times the baseline and the CSV export N times, one after the other (the machine
is shared), and prints the median ratio.
It prints the wall time, rows per second, the ratio to the baseline and the growth of the
process's peak memory (flat: rows stream through in chunks). For a benchmark database only.
"""

import argparse
import datetime as dt
import os
import resource
import sys
import time
from pathlib import Path

import django

ROOT = Path(__file__).resolve().parent.parent
MONTH = dt.date(2001, 1, 1)

# The same rows and columns as the export (BILLABLE_ITEM_EXPORT_COLUMNS, the client's name
# last), without the export's rules (the formula rule, the timestamp without a zero fraction).
BASELINE_SQL = """
COPY (
    SELECT i.id, i.client_id, i.subscription_id, to_char(i.period, 'YYYY-MM'), i.kind,
           i.description, i.unit, i.quantity, i.unit_price, i.amount, i.currency,
           i.invoice_action, i.status,
           to_char(i.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'), c.name
    FROM billing_billableitem i JOIN customers_client c ON c.id = i.client_id
    WHERE i.period = '{month}' ORDER BY i.id
) TO STDOUT (FORMAT csv, HEADER)
"""

SEED_SQL = """
INSERT INTO billing_billableitem
    (period, kind, description, unit, quantity, currency, unit_price, amount,
     invoice_action, status, created_at, updated_at, client_id)
SELECT %s, 'adjustment', 'Bench item ' || n, 'quantity', 1.00, 'EUR',
       (n %% 100000) / 100.0, (n %% 100000) / 100.0, 'next_invoice', 'pending',
       now(), now(), %s
FROM generate_series(1, %s) AS n
"""


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def seed(items: int) -> None:
    from django.db import connection, transaction

    from billing.models import BillableItem
    from customers.models import Client

    existing = BillableItem.objects.filter(period=MONTH).count()
    if existing == items:
        print(f"reusing {items:,} items of {MONTH:%Y-%m}")
        return
    started = time.perf_counter()
    with transaction.atomic():
        BillableItem.objects.filter(period=MONTH).delete()
        client, _ = Client.objects.get_or_create(
            name="Bench export client", defaults={"email": "bench@example.test", "currency": "EUR"}
        )
        with connection.cursor() as cursor:
            cursor.execute(SEED_SQL, [MONTH, client.pk, items])
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE billing_billableitem")
    print(f"seeded {items:,} items in {time.perf_counter() - started:.1f} s")


def time_baseline() -> tuple[float, int]:
    from django.db import connection

    started = time.perf_counter()
    size = 0
    with (
        connection.cursor() as cursor,
        cursor.cursor.copy(BASELINE_SQL.format(month=MONTH)) as copy,
    ):
        for data in copy:
            size += len(data)
    return time.perf_counter() - started, size


def time_csv() -> tuple[float, float, int, int]:
    from billing.exports import billable_items_csv_response

    started = time.perf_counter()
    response = billable_items_csv_response(month=MONTH)
    size = pieces = 0
    first_byte = 0.0
    for piece in response.streaming_content:
        if not pieces:
            first_byte = time.perf_counter() - started
        size += len(piece)
        pieces += 1
    response.close()
    return time.perf_counter() - started, first_byte, size, pieces


def time_xlsx() -> tuple[float, int]:
    from billing.exports import billable_items_xlsx_response

    started = time.perf_counter()
    response = billable_items_xlsx_response(month=MONTH)
    size = sum(len(piece) for piece in response.streaming_content)
    response.close()
    return time.perf_counter() - started, size


def _peak_rss_kb() -> int:
    # VmHWM: this process's own high-water mark, right for a forked child (ru_maxrss would
    # include what the parent had touched before the fork).
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def _xlsxwriter_write(*, rows, target) -> None:
    """The candidate: xlsxwriter, constant_memory (one row in memory, inline strings)."""
    import xlsxwriter
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    from billing.exports import _DECIMAL_INDEXES, _csv_row
    from billing.models import BILLABLE_ITEM_COLUMNS
    from supportbilling.spreadsheet import spreadsheet_text

    workbook = xlsxwriter.Workbook(target, {"constant_memory": True})
    sheet = workbook.add_worksheet("Billable items")
    two_places = workbook.add_format({"num_format": "0.00"})
    sheet.write_row(0, 0, BILLABLE_ITEM_COLUMNS)
    decimals = set(_DECIMAL_INDEXES)
    for number, row in enumerate(rows, start=1):
        for column, value in enumerate(_csv_row(row)):
            if column in decimals:
                sheet.write_number(number, column, row[column], two_places)
            elif isinstance(value, str):
                text = spreadsheet_text(ILLEGAL_CHARACTERS_RE.sub("", value))
                if text:
                    sheet.write_string(number, column, text)
            else:
                sheet.write_number(number, column, value)
    workbook.close()


def _xlsx_writer_child(name: str, results) -> None:
    import tempfile

    from django.db import connections

    from billing.exports import xlsx_write
    from billing.selectors.finance import billable_items_export_rows

    connections.close_all()  # the fork must not share the parent's connection
    writer = {"openpyxl write-only": xlsx_write, "xlsxwriter constant_memory": _xlsxwriter_write}
    before = _peak_rss_kb()
    started = time.perf_counter()
    with tempfile.TemporaryFile(suffix=".xlsx") as target:
        writer[name](rows=billable_items_export_rows(month=MONTH), target=target)
        size = target.tell()
    results.put((name, time.perf_counter() - started, size, (_peak_rss_kb() - before) / 1024))


def compare_xlsx_writers(items: int) -> None:
    import multiprocessing

    from django.db import connections

    connections.close_all()
    context = multiprocessing.get_context("fork")
    for name in ("openpyxl write-only", "xlsxwriter constant_memory"):
        results = context.Queue()
        child = context.Process(target=_xlsx_writer_child, args=(name, results))
        child.start()
        _, seconds, size, memory = results.get()
        child.join()
        print(
            f"{name:27}: {seconds:7.2f} s  {items / seconds:10,.0f} rows/s  "
            f"{size / 1e6:7.1f} MB  peak memory grew by {memory:.1f} MB"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=200_000)
    parser.add_argument("--xlsx", action="store_true", help="also time the XLSX export")
    parser.add_argument(
        "--repeat", type=int, default=1, help="time the baseline and the CSV this many times"
    )
    parser.add_argument(
        "--xlsx-writers", action="store_true", help="compare openpyxl and xlsxwriter"
    )
    args = parser.parse_args()

    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "supportbilling.settings")
    os.environ.setdefault("SECRET_KEY", "bench-only")
    os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/sbt_finance")
    django.setup()
    from django.core.management import call_command
    from django.db import connection

    if connection.vendor != "postgresql":
        sys.exit("bench/export.py needs PostgreSQL (set DATABASE_URL).")
    call_command("migrate", verbosity=0)
    seed(args.items)

    rss_before = peak_rss_mb()
    ratios = []
    for _ in range(args.repeat):
        baseline, baseline_size = time_baseline()
        print(
            f"baseline COPY TO STDOUT: {baseline:7.2f} s  {args.items / baseline:10,.0f} rows/s  "
            f"{baseline_size / 1e6:7.1f} MB"
        )
        seconds, first_byte, size, pieces = time_csv()
        ratios.append(seconds / baseline)
        print(
            f"CSV export (streamed):   {seconds:7.2f} s  {args.items / seconds:10,.0f} rows/s  "
            f"{size / 1e6:7.1f} MB in {pieces:,} pieces  ratio to baseline "
            f"{seconds / baseline:5.2f}x  first byte {first_byte * 1000:.1f} ms"
        )
    if args.repeat > 1:
        ratios.sort()
        median = ratios[len(ratios) // 2]
        print(
            f"CSV export to baseline over {args.repeat} pairs: median {median:.2f}x"
            f" (from {ratios[0]:.2f}x to {ratios[-1]:.2f}x)"
        )
    if args.xlsx:
        seconds, size = time_xlsx()
        print(
            f"XLSX export (temp file): {seconds:7.2f} s  {args.items / seconds:10,.0f} rows/s  "
            f"{size / 1e6:7.1f} MB  ratio to baseline {seconds / baseline:5.1f}x"
        )
    print(f"peak memory grew by {peak_rss_mb() - rss_before:.1f} MB during the exports")
    if args.xlsx_writers:
        compare_xlsx_writers(args.items)


if __name__ == "__main__":
    main()
