"""Exports of a month's billable items as CSV and XLSX, streamed so that a month of a million
items never sits in memory: rows come from a chunked cursor (billing.selectors) and leave as
they are written. Amounts are plain decimals with a dot ("135.00"), never float-formatted.
Text never runs as a formula in a spreadsheet (``spreadsheet_text``; docs/api.md).

On PostgreSQL the CSV comes straight from ``COPY (SELECT ...) TO STDOUT`` (``_COPY_SQL``: the
same rules in SQL, byte for byte the output of ``csv_chunks``); elsewhere (SQLite)
``csv_chunks`` writes it in Python. ``billable_items_csv_chunks`` chooses."""

import csv
import datetime as dt
import io
import tempfile
from collections.abc import Iterable, Iterator
from decimal import Decimal

from django.db import connection
from django.http import FileResponse, StreamingHttpResponse
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from psycopg import sql

from billing.models import BILLABLE_ITEM_COLUMNS, BillableItem
from billing.selectors.finance import billable_items_export_rows
from billing.selectors.portal import ClosedMonthWork
from supportbilling.periods import period_label

ROWS_PER_CHUNK = 1000  # rows joined into one piece of the HTTP body
_DECIMAL_COLUMNS = {"quantity", "unit_price", "amount"}
_DECIMAL_INDEXES = [i for i, name in enumerate(BILLABLE_ITEM_COLUMNS) if name in _DECIMAL_COLUMNS]
_OTHER_INDEXES = [i for i in range(len(BILLABLE_ITEM_COLUMNS)) if i not in _DECIMAL_INDEXES]
_PERIOD_INDEX = BILLABLE_ITEM_COLUMNS.index("period")
_CREATED_INDEX = BILLABLE_ITEM_COLUMNS.index("created_at")
_SUBSCRIPTION_INDEX = BILLABLE_ITEM_COLUMNS.index("subscription")

CSV_CONTENT_TYPE = "text/csv; charset=utf-8"
XLSX_CONTENT_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


# A spreadsheet reads a cell that starts with one of these as a formula (OWASP, "CSV
# injection"): ``=HYPERLINK(...)``, ``+cmd|...``, ``@SUM(...)``, ``-2+3``.
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_text(value: str) -> str:
    """``value`` as a spreadsheet must show it, never run it: a leading single quote makes a
    would-be formula plain text. The one rule for every text cell of both exports; numbers
    (amounts, quantities) never pass here, so ``-10.00`` stays a number."""
    return "'" + value if value.startswith(FORMULA_TRIGGERS) else value


def _decimal_text(value: Decimal) -> str:
    return f"{value:.2f}"  # Decimal formatting: exact, a dot, two places


def _csv_row(row: tuple) -> list:
    values = list(row)
    for index in _DECIMAL_INDEXES:
        values[index] = _decimal_text(values[index])
    values[_PERIOD_INDEX] = period_label(values[_PERIOD_INDEX])
    values[_CREATED_INDEX] = values[_CREATED_INDEX].isoformat().replace("+00:00", "Z")
    if values[_SUBSCRIPTION_INDEX] is None:
        values[_SUBSCRIPTION_INDEX] = ""
    for index in _OTHER_INDEXES:
        if isinstance(values[index], str):
            values[index] = spreadsheet_text(values[index])
    return values


def csv_chunks(rows: Iterable[tuple]) -> Iterator[str]:
    """The header, then the rows, ROWS_PER_CHUNK at a time."""
    buffer = io.StringIO()
    # CRLF line ends (RFC 4180): the csv module quotes a field only when it holds a character
    # of the line terminator, and a bare CR inside a cell must be quoted too, or a spreadsheet
    # starts a new row there (and reads what follows as a fresh cell).
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(BILLABLE_ITEM_COLUMNS)
    for count, row in enumerate(rows, start=1):
        writer.writerow(_csv_row(row))
        if count % ROWS_PER_CHUNK == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def _spreadsheet_text_sql(column: str) -> sql.Composable:
    # spreadsheet_text in SQL. A simple CASE reads the first character's code once (cheaper
    # than left() and IN); an empty string becomes NULL because COPY writes an empty string as
    # "" and a NULL as nothing, which is what the csv module writes.
    quoted = sql.SQL("'''' || {}").format(sql.Identifier(column))
    return sql.SQL("CASE ascii({column}) WHEN 0 THEN NULL {triggers} ELSE {column} END").format(
        column=sql.Identifier(column),
        triggers=sql.SQL(" ").join(
            sql.SQL("WHEN {} THEN {}").format(sql.Literal(ord(trigger)), quoted)
            for trigger in FORMULA_TRIGGERS
        ),
    )


# _csv_row in SQL, column for column (BILLABLE_ITEM_COLUMNS). The decimal columns have a scale
# of 2, so PostgreSQL already writes them as "135.00"; isoformat() leaves out a zero fraction.
_COPY_EXPRESSIONS = {
    "id": sql.SQL("id"),
    "client": sql.SQL("client_id"),
    "subscription": sql.SQL("subscription_id"),
    "period": sql.SQL("to_char(period, 'YYYY-MM')"),
    "quantity": sql.SQL("quantity"),
    "unit_price": sql.SQL("unit_price"),
    "amount": sql.SQL("amount"),
    "created_at": sql.SQL(
        "replace(to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'),"
        " '.000000Z', 'Z')"
    ),
}
_COPY_SQL = sql.SQL(
    "COPY (SELECT {columns} FROM {table} WHERE period = %s ORDER BY id)"
    " TO STDOUT WITH (FORMAT csv, HEADER)"
).format(
    columns=sql.SQL(", ").join(
        sql.SQL("{} AS {}").format(
            _COPY_EXPRESSIONS.get(name) or _spreadsheet_text_sql(name), sql.Identifier(name)
        )
        for name in BILLABLE_ITEM_COLUMNS
    ),
    table=sql.Identifier(BillableItem._meta.db_table),
)


def copy_csv_chunks(*, month: dt.date, rows_per_chunk: int = ROWS_PER_CHUNK) -> Iterator[bytes]:
    """The CSV of ``month`` from PostgreSQL's COPY: the header as soon as the server sends it
    (before it has read a row), then the rows, ``rows_per_chunk`` at a time."""
    with connection.cursor() as cursor, cursor.cursor.copy(_COPY_SQL, [month]) as copy:
        # The server sends one message per row, ending in LF: the LF becomes CRLF (as the csv
        # module writes), a newline inside a quoted cell stays as it is (as there too).
        yield bytes(copy.read()[:-1]) + b"\r\n"
        lines: list = []
        for data in copy:
            lines.append(data[:-1])
            if len(lines) == rows_per_chunk:
                lines.append(b"")
                yield b"\r\n".join(lines)
                lines = []
        if lines:
            lines.append(b"")
            yield b"\r\n".join(lines)


def billable_items_csv_chunks(*, month: dt.date) -> Iterator[bytes] | Iterator[str]:
    """The CSV of ``month``, piece by piece: from COPY on PostgreSQL, from Python elsewhere."""
    if connection.vendor == "postgresql":
        return copy_csv_chunks(month=month)
    return csv_chunks(billable_items_export_rows(month=month))


def export_filename(month: dt.date, extension: str) -> str:
    return f"billable-items-{period_label(month)}.{extension}"


def billable_items_csv_response(*, month: dt.date) -> StreamingHttpResponse:
    """A CSV of every item of ``month``, produced while it is sent."""
    response = StreamingHttpResponse(
        billable_items_csv_chunks(month=month), content_type=CSV_CONTENT_TYPE
    )
    response["Content-Disposition"] = f'attachment; filename="{export_filename(month, "csv")}"'
    return response


def xlsx_write(*, rows: Iterable[tuple], target) -> None:
    """openpyxl's write-only mode keeps one row in memory; decimals are numeric cells with two
    decimals (written from the Decimal's text, never a float); text is a string cell, never a
    formula, after the same ``spreadsheet_text`` rule as the CSV."""
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("Billable items")
    sheet.append(list(BILLABLE_ITEM_COLUMNS))
    for row in rows:
        values: list = _csv_row(row)
        for index in _DECIMAL_INDEXES:
            cell = WriteOnlyCell(sheet, value=row[index])
            cell.number_format = "0.00"
            values[index] = cell
        for index in _OTHER_INDEXES:
            if isinstance(values[index], str):
                values[index] = _xlsx_text_cell(sheet, values[index])
        sheet.append(values)
    workbook.save(target)


def _xlsx_text_cell(sheet, text: str) -> WriteOnlyCell:
    # Control characters are not allowed in an XLSX file (openpyxl refuses the whole row), so
    # they go, and the rule is applied again to what is left; the data type is set after the
    # value because openpyxl guesses "f" (formula) for a leading "=".
    cell = WriteOnlyCell(sheet, value=spreadsheet_text(ILLEGAL_CHARACTERS_RE.sub("", text)))
    cell.data_type = "s"
    return cell


def billable_items_xlsx_response(*, month: dt.date) -> FileResponse:
    """An XLSX of every item of ``month``: written row by row to a temporary file on disk,
    then streamed from it (the file disappears when the response is closed)."""
    spool = tempfile.TemporaryFile(suffix=".xlsx")  # noqa: SIM115 - FileResponse closes it
    xlsx_write(rows=billable_items_export_rows(month=month), target=spool)
    spool.seek(0)
    return FileResponse(
        spool,
        as_attachment=True,
        filename=export_filename(month, "xlsx"),
        content_type=XLSX_CONTENT_TYPE,
    )


# --- The client's work log of a closed month (portal) ----------------------------------------

WORK_LOG_COLUMNS = ("date", "ticket", "subject", "hours", "billing")
WORK_LOG_DETAIL_COLUMNS = ("operator", "note")  # only when the package shows its work log


def work_log_filename(work: ClosedMonthWork) -> str:
    return f"support-time-{work.subscription.pk}-{period_label(work.month)}.csv"


def work_log_csv(work: ClosedMonthWork) -> str:
    """The entries of one closed month as the client sees them in the portal: operator and
    note only with the package's work log; text cells through ``spreadsheet_text``, so a
    subject or note cannot run as a formula; hours as plain decimals (``1.25``)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    detail = work.show_work_log
    writer.writerow(WORK_LOG_COLUMNS + (WORK_LOG_DETAIL_COLUMNS if detail else ()))
    for line in work.lines:
        entry = line.entry
        row = [
            entry.work_date.isoformat(),
            entry.ticket_id,
            spreadsheet_text(line.subject),
            _decimal_text(entry.hours),
            entry.badge,
        ]
        if detail:
            row += [spreadsheet_text(entry.operator_name), spreadsheet_text(entry.note)]
        writer.writerow(row)
    return buffer.getvalue()
