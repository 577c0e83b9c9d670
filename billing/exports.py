"""Exports of billable items (a month's, or a filtered list as the admin shows it) as CSV and
XLSX, with the client's name beside its id, streamed so that a month of a million
items never sits in memory: rows come from a chunked cursor (billing.selectors) and leave as
they are written. Amounts are plain decimals with a dot ("135.00"), never float-formatted.
Text never runs as a formula in a spreadsheet (``spreadsheet_text``; docs/api.md).

On PostgreSQL the CSV comes straight from ``COPY (SELECT ...) TO STDOUT`` (``_copy_statement``: the
same rules in SQL, byte for byte the output of ``csv_chunks``); elsewhere (SQLite)
``csv_chunks`` writes it in Python. ``billable_items_csv_chunks`` chooses.

Also the files a client downloads of a closed month: its work log (CSV) and its statement
PDF (``statement_pdf_response``, for the portal and the admin)."""

import csv
import datetime as dt
import io
import tempfile
from collections.abc import Callable, Iterable, Iterator
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import QuerySet
from django.http import FileResponse, Http404, StreamingHttpResponse
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from psycopg import sql
from psycopg.abc import Buffer

from billing.models import (
    BILLABLE_ITEM_EXPORT_COLUMNS,
    BillableItem,
    ExportFormat,
    ExportJob,
    ExportStatus,
    Statement,
)
from billing.selectors.finance import billable_items_export_rows
from billing.selectors.portal import ClosedMonthWork
from customers.models import Client
from supportbilling.periods import period_label
from supportbilling.spreadsheet import FORMULA_TRIGGERS, spreadsheet_text

ROWS_PER_CHUNK = 1000  # rows joined into one piece of the HTTP body
_DECIMAL_COLUMNS = {"quantity", "unit_price", "amount"}
_DECIMAL_INDEXES = [
    i for i, name in enumerate(BILLABLE_ITEM_EXPORT_COLUMNS) if name in _DECIMAL_COLUMNS
]
_OTHER_INDEXES = [i for i in range(len(BILLABLE_ITEM_EXPORT_COLUMNS)) if i not in _DECIMAL_INDEXES]
_PERIOD_INDEX = BILLABLE_ITEM_EXPORT_COLUMNS.index("period")
_CREATED_INDEX = BILLABLE_ITEM_EXPORT_COLUMNS.index("created_at")
_SUBSCRIPTION_INDEX = BILLABLE_ITEM_EXPORT_COLUMNS.index("subscription")

CSV_CONTENT_TYPE = "text/csv; charset=utf-8"
XLSX_CONTENT_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


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
    writer.writerow(BILLABLE_ITEM_EXPORT_COLUMNS)
    for count, row in enumerate(rows, start=1):
        writer.writerow(_csv_row(row))
        if count % ROWS_PER_CHUNK == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def _spreadsheet_text_sql(table: str, column: str) -> sql.Composable:
    # spreadsheet_text in SQL. A simple CASE reads the first character's code once (cheaper
    # than left() and IN); an empty string becomes NULL because COPY writes an empty string as
    # "" and a NULL as nothing, which is what the csv module writes.
    quoted = sql.SQL("'''' || {}").format(sql.Identifier(table, column))
    return sql.SQL("CASE ascii({column}) WHEN 0 THEN NULL {triggers} ELSE {column} END").format(
        column=sql.Identifier(table, column),
        triggers=sql.SQL(" ").join(
            sql.SQL("WHEN {} THEN {}").format(sql.Literal(ord(trigger)), quoted)
            for trigger in FORMULA_TRIGGERS
        ),
    )


# _csv_row in SQL, column for column (BILLABLE_ITEM_EXPORT_COLUMNS), on the item (``i``) joined
# to its client (``c``). The decimal columns have a scale of 2, so PostgreSQL already writes
# them as "135.00"; isoformat() leaves out a zero fraction.
_COPY_EXPRESSIONS = {
    "id": sql.SQL("i.id"),
    "client": sql.SQL("i.client_id"),
    "subscription": sql.SQL("i.subscription_id"),
    "period": sql.SQL("to_char(i.period, 'YYYY-MM')"),
    "quantity": sql.SQL("i.quantity"),
    "unit_price": sql.SQL("i.unit_price"),
    "amount": sql.SQL("i.amount"),
    "created_at": sql.SQL(
        "replace(to_char(i.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'),"
        " '.000000Z', 'Z')"
    ),
    "client_name": _spreadsheet_text_sql("c", "name"),
}
_COPY_SELECT = sql.SQL(
    "COPY (SELECT {columns} FROM {items} i JOIN {clients} c ON c.id = i.client_id WHERE "
).format(
    columns=sql.SQL(", ").join(
        sql.SQL("{} AS {}").format(
            _COPY_EXPRESSIONS.get(name) or _spreadsheet_text_sql("i", name), sql.Identifier(name)
        )
        for name in BILLABLE_ITEM_EXPORT_COLUMNS
    ),
    items=sql.Identifier(BillableItem._meta.db_table),
    clients=sql.Identifier(Client._meta.db_table),
)
_COPY_END = sql.SQL(" ORDER BY i.id) TO STDOUT WITH (FORMAT csv, HEADER)")
_COPY_BATCH_SQL = {
    header: _COPY_SELECT
    + sql.SQL(
        "i.period = %s AND i.id > %s ORDER BY i.id LIMIT %s) TO STDOUT WITH (FORMAT csv{})"
    ).format(sql.SQL(", HEADER" if header else ""))
    for header in (True, False)
}


def _copy_statement(
    *, month: dt.date | None, items: QuerySet[BillableItem] | None
) -> tuple[sql.Composable, list[Any]]:
    """The COPY of a month's items (``i.period = %s``, the plain case), of the items a
    filtered queryset selects (its own SQL as a sub-select of ids), or of both."""
    conditions: list[sql.Composable] = []
    params: list[Any] = []
    if items is not None:
        ids_sql, ids_params = items.order_by().values("pk").query.sql_with_params()
        conditions.append(sql.SQL("i.id IN (") + sql.SQL(ids_sql) + sql.SQL(")"))
        params.extend(ids_params)
    if month is not None:
        conditions.append(sql.SQL("i.period = %s"))
        params.append(month)
    where = sql.SQL(" AND ").join(conditions) if conditions else sql.SQL("TRUE")
    return _COPY_SELECT + where + _COPY_END, params


def copy_csv_chunks(
    *,
    month: dt.date | None = None,
    items: QuerySet[BillableItem] | None = None,
    rows_per_chunk: int = ROWS_PER_CHUNK,
) -> Iterator[bytes]:
    """The CSV of ``month`` (or of the filtered ``items``) from PostgreSQL's COPY: the header
    as soon as the server sends it (before it has read a row), then the rows,
    ``rows_per_chunk`` at a time."""
    statement, params = _copy_statement(month=month, items=items)
    with connection.cursor() as cursor, cursor.cursor.copy(statement, params) as copy:
        yield _crlf(copy.read(), 1)
        piece, rows = bytearray(), 0
        for data in copy:
            piece += data
            rows += 1
            if rows == rows_per_chunk:
                yield _crlf(piece, rows)
                piece, rows = bytearray(), 0
        if rows:
            yield _crlf(piece, rows)


def _crlf(piece: Buffer, rows: int) -> bytes:
    """``rows`` rows of COPY's CSV (one message per row, each ending in LF, copied one after
    the other into ``piece``: holding the messages themselves costs more) with CRLF line ends,
    as the csv module writes them; a newline inside a quoted cell stays as it is (as there
    too). One ``replace`` for the whole piece when no cell of it holds a newline (the count of
    LF is then that of the rows); else an LF ends a row only where the quotes before it in the
    row are balanced (PostgreSQL doubles a quote inside a quoted cell)."""
    text = bytes(piece)
    if text.count(b"\n") == rows:
        return text.replace(b"\n", b"\r\n")
    lines, row = [], b""
    for part in text.split(b"\n")[:-1]:
        row += part
        if row.count(b'"') % 2:
            row += b"\n"  # inside a quoted cell
        else:
            lines.append(row + b"\r\n")
            row = b""
    return b"".join(lines)


RowsWritten = Callable[[int], None]  # told how many rows are written so far


def copy_csv_batches(
    *, month: dt.date, rows_per_batch: int, progress: RowsWritten
) -> Iterator[bytes]:
    """The bytes of ``copy_csv_chunks``, from one COPY per ``rows_per_batch`` rows (by id), and
    ``progress`` told between them: a COPY holds the connection until it ends, so this is
    where the caller may write to the database (an export job's progress)."""
    after_id, written, header = 0, 0, True
    while True:
        query = _COPY_BATCH_SQL[header]
        piece, messages, last = bytearray(), 0, b""
        with (
            connection.cursor() as cursor,
            cursor.cursor.copy(query, [month, after_id, rows_per_batch]) as copy,
        ):
            for last in copy:  # one message per row, as in copy_csv_chunks
                piece += last
                messages += 1
        rows = messages - header
        if rows:
            after_id = int(bytes(last).split(b",", 1)[0])  # the id column comes first
        yield _crlf(piece, messages)
        written += rows
        progress(written)
        if rows < rows_per_batch:
            return
        header = False


def rows_counted(rows: Iterable[tuple], progress: RowsWritten, every: int) -> Iterator[tuple]:
    """``rows`` as they are, telling ``progress`` the count every ``every`` rows and at the end."""
    count = 0
    for count, row in enumerate(rows, start=1):
        yield row
        if count % every == 0:
            progress(count)
    progress(count)


def billable_items_csv_chunks(
    *, month: dt.date | None = None, items: QuerySet[BillableItem] | None = None
) -> Iterator[bytes] | Iterator[str]:
    """The CSV of every item of ``month``, or of the filtered ``items`` (of ``month`` when
    one is given), piece by piece: from COPY on PostgreSQL, from Python elsewhere."""
    if connection.vendor == "postgresql":
        return copy_csv_chunks(month=month, items=items)
    return csv_chunks(billable_items_export_rows(month=month, items=items))


def export_filename(month: dt.date | None, extension: str, *, name: str = "") -> str:
    """``billable-items-2026-10.csv``; a filtered export adds its ``name``."""
    parts = ["billable-items", period_label(month) if month else "", name]
    return "-".join(part for part in parts if part) + f".{extension}"


def billable_items_csv_response(
    *, month: dt.date | None = None, items: QuerySet[BillableItem] | None = None, name: str = ""
) -> StreamingHttpResponse:
    """A CSV of the items of ``billable_items_csv_chunks``, produced while it is sent."""
    response = StreamingHttpResponse(
        billable_items_csv_chunks(month=month, items=items), content_type=CSV_CONTENT_TYPE
    )
    filename = export_filename(month, "csv", name=name)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def xlsx_write(*, rows: Iterable[tuple], target) -> None:
    """openpyxl's write-only mode keeps one row in memory; decimals are numeric cells with two
    decimals (written from the Decimal's text, never a float); text is a string cell, never a
    formula, after the same ``spreadsheet_text`` rule as the CSV."""
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("Billable items")
    sheet.append(list(BILLABLE_ITEM_EXPORT_COLUMNS))
    for row in rows:
        values: list = _csv_row(row)
        for index in _DECIMAL_INDEXES:
            values[index] = _xlsx_number_cell(sheet, row[index])
        for index in _OTHER_INDEXES:
            if isinstance(values[index], str):
                values[index] = _xlsx_text_cell(sheet, values[index])
        sheet.append(values)
    workbook.save(target)


def _xlsx_number_cell(sheet, value: Decimal) -> WriteOnlyCell:
    # openpyxl writes a Decimal through "%.16g", that is through a float (8.20 became
    # 8.199999999999999 in the file): the cell holds the Decimal's own text, typed a number.
    cell = WriteOnlyCell(sheet, value=format(value, "f"))
    cell.data_type = "n"
    cell.number_format = "0.00"
    return cell


def _xlsx_text_cell(sheet, text: str) -> WriteOnlyCell:
    # Control characters are not allowed in an XLSX file (openpyxl refuses the whole row), so
    # they go, and the rule is applied again to what is left; the data type is set after the
    # value because openpyxl guesses "f" (formula) for a leading "=".
    cell = WriteOnlyCell(sheet, value=spreadsheet_text(ILLEGAL_CHARACTERS_RE.sub("", text)))
    cell.data_type = "s"
    return cell


def billable_items_xlsx_response(
    *, month: dt.date | None = None, items: QuerySet[BillableItem] | None = None, name: str = ""
) -> FileResponse:
    """An XLSX of every item of ``month`` (or of the filtered ``items``): written row by row
    to a temporary file on disk, then streamed from it (the file disappears when the
    response is closed)."""
    spool = tempfile.TemporaryFile(suffix=".xlsx")  # noqa: SIM115 - FileResponse closes it
    xlsx_write(rows=billable_items_export_rows(month=month, items=items), target=spool)
    spool.seek(0)
    return FileResponse(
        spool,
        as_attachment=True,
        filename=export_filename(month, "xlsx", name=name),
        content_type=XLSX_CONTENT_TYPE,
    )


def export_job_file_response(job: ExportJob, *, content_type: str | None = None) -> FileResponse:
    """The file of a done export job, as an attachment named like the synchronous exports'
    (``billable-items-2026-10.xlsx``), read from the storage while it is sent."""
    return FileResponse(
        job.file.open("rb"),
        as_attachment=True,
        filename=export_filename(job.period, job.format),
        content_type=content_type
        or (XLSX_CONTENT_TYPE if job.format == ExportFormat.XLSX else CSV_CONTENT_TYPE),
    )


class ExportJobFileUnavailable(Exception):
    """An export job has no file to send; the message says why (``export_job_download``)."""


def export_job_download(job: ExportJob, *, content_type: str | None = None) -> FileResponse:
    """The file of ``job`` (``export_job_file_response``) for the admin's and the API's
    download; ``ExportJobFileUnavailable`` with the reason when there is none: not done yet,
    failed, expired, or deleted between reading the job and opening its file."""
    if job.status == ExportStatus.DONE and job.file:
        try:
            return export_job_file_response(job, content_type=content_type)
        except FileNotFoundError:  # expired between reading the job and opening its file
            job.refresh_from_db()
    if job.status == ExportStatus.FAILED:
        reason = f"The export failed, there is no file: {job.error}"
    elif job.status == ExportStatus.EXPIRED:
        reason = (
            f"The export's file was deleted {settings.EXPORT_JOB_KEEP_DAYS} days after it was "
            "written: start a new export of the month."
        )
    elif job.status == ExportStatus.DONE:
        reason = "The export's file is missing: start a new export of the month."
    else:
        reason = (
            f"The export is {job.status} ({job.percent} %): download it once its status is done."
        )
    raise ExportJobFileUnavailable(reason)


# --- The statement PDF of a closed month (portal and admin) ----------------------------------


def statement_pdf_response(statement: Statement) -> FileResponse:
    """The stored PDF of ``statement`` as a download (the portal's and the admin's), read from
    the storage while it is sent; a 404 when its file cannot be opened."""
    try:
        stored = statement.file.open("rb")
    except OSError as exc:
        raise Http404("No such statement.") from exc
    response = FileResponse(
        stored,
        as_attachment=True,
        filename=statement.filename,
        content_type="application/pdf",
    )
    response["X-Content-Type-Options"] = "nosniff"
    return response


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
            f"{entry.badge} (no charge)" if entry.no_charge else entry.badge,
        ]
        if detail:
            row += [spreadsheet_text(entry.operator_name), spreadsheet_text(entry.note)]
        writer.writerow(row)
    return buffer.getvalue()
