"""Export jobs: a month's billable items written to a file by a Celery task, with progress, for
finance to download when it is done (docs/decisions.md, "Export jobs"). The file has the bytes
(CSV) and cells (XLSX) of the synchronous exports: the same writers of billing.exports."""

import datetime as dt
import logging
import tempfile
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files import File
from django.db import connection, transaction
from django.utils import timezone

from billing import exports
from billing.models import BillableItem, ExportFormat, ExportJob, ExportStatus
from billing.selectors.finance import billable_items_export_rows
from supportbilling.periods import period_parse
from supportbilling.queue import task_enqueue

logger = logging.getLogger(__name__)

# Progress is written at most once per this many rows (one UPDATE each), and at the end.
PROGRESS_EVERY_ROWS = 5000
NOT_QUEUED = (
    "The export could not be queued: the task queue is unreachable. Start it again in a "
    "few minutes."
)


def export_job_create(*, requested_by: Any, period: str, format: str) -> ExportJob:
    """Record an export of the month ``period`` (YYYY-MM) in ``format`` (csv or xlsx) and queue
    its task once the job is committed. Refuses (ValidationError, nothing written) a period or
    a format it does not know; the caller checks who may ask."""
    errors: dict[str, list[str]] = {}
    try:
        month = period_parse(period)
    except ValidationError as exc:
        errors["period"] = exc.messages
    if format not in ExportFormat.values:
        errors["format"] = [f"Choose the format of the file: {', '.join(ExportFormat.values)}."]
    if errors:
        raise ValidationError(errors)
    job = ExportJob.objects.create(requested_by=requested_by, period=month, format=format)
    transaction.on_commit(lambda: _export_job_queue(job.pk), robust=True)
    return job


def _export_job_queue(job_id: int) -> None:
    # With the broker down nothing would ever run the job: it fails at once, with the reason,
    # rather than waiting forever as "queued".
    if not task_enqueue("billing.export_job_run", job_id):
        ExportJob.objects.filter(pk=job_id, status=ExportStatus.QUEUED).update(
            status=ExportStatus.FAILED, error=NOT_QUEUED, finished_at=timezone.now()
        )


def export_job_run(*, job_id: int) -> str:
    """Write the job's file, telling its progress as it goes; its status is done or failed.
    Run by the task: a job already done or failed is left as it is (a message delivered
    twice), one left running by a worker that died is written again from the start."""
    claimed = ExportJob.objects.filter(
        pk=job_id, status__in=[ExportStatus.QUEUED, ExportStatus.RUNNING]
    ).update(status=ExportStatus.RUNNING, started_at=timezone.now(), rows_done=0)
    if not claimed:
        return "skipped"
    job = ExportJob.objects.get(pk=job_id)
    job.rows_total = BillableItem.objects.filter(period=job.period).count()
    ExportJob.objects.filter(pk=job_id).update(rows_total=job.rows_total)
    try:
        rows_done = _export_job_write(job)
    except Exception as exc:
        logger.exception("Export job %s failed", job_id)
        if job.file:
            job.file.delete(save=False)
        ExportJob.objects.filter(pk=job_id).update(
            status=ExportStatus.FAILED,
            file="",
            error=f"The export could not be written ({type(exc).__name__}: {exc}). Start it "
            "again; if it fails again, tell an administrator.",
            finished_at=timezone.now(),
        )
        return ExportStatus.FAILED
    # Items added while it ran (an adjustment of an open month) are in the file or not, as
    # the query saw them: the count is what the file holds.
    ExportJob.objects.filter(pk=job_id).update(
        status=ExportStatus.DONE,
        file=job.file.name,
        rows_done=rows_done,
        rows_total=rows_done,
        error="",
        finished_at=timezone.now(),
    )
    return ExportStatus.DONE


def export_jobs_expire(*, now: dt.datetime | None = None) -> int:
    """Delete the files of the jobs done more than ``EXPORT_JOB_KEEP_DAYS`` ago (an export
    of a month can be 150 MB, and the month's items can be exported again at any time); the
    job stays in the list, expired. Returns how many expired."""
    now = now or timezone.now()
    cutoff = now - dt.timedelta(days=settings.EXPORT_JOB_KEEP_DAYS)
    expired = 0
    for job in ExportJob.objects.filter(status=ExportStatus.DONE, finished_at__lt=cutoff):
        # The row first: a download that starts now sees "expired", never a missing file.
        if ExportJob.objects.filter(pk=job.pk, status=ExportStatus.DONE).update(
            status=ExportStatus.EXPIRED, file=""
        ):
            if job.file:
                try:
                    job.file.delete(save=False)
                except OSError:  # the row says expired; the file is left for an administrator
                    logger.exception("Export job %s: its expired file could not be deleted", job.pk)
            expired += 1
    return expired


def _export_job_write(job: ExportJob) -> int:
    written = [0]
    last_told = [0]

    def progress(rows: int) -> None:
        written[0] = rows
        if rows - last_told[0] >= PROGRESS_EVERY_ROWS:
            ExportJob.objects.filter(pk=job.pk).update(rows_done=rows)
            last_told[0] = rows

    with tempfile.TemporaryFile(suffix=f".{job.format}") as spool:
        if job.format == ExportFormat.XLSX:
            rows = billable_items_export_rows(month=job.period)
            exports.xlsx_write(
                rows=exports.rows_counted(rows, progress, exports.ROWS_PER_CHUNK), target=spool
            )
        elif connection.vendor == "postgresql":
            for piece in exports.copy_csv_batches(
                month=job.period, rows_per_batch=PROGRESS_EVERY_ROWS, progress=progress
            ):
                spool.write(piece)
        else:
            rows = billable_items_export_rows(month=job.period)
            counted = exports.rows_counted(rows, progress, exports.ROWS_PER_CHUNK)
            for text in exports.csv_chunks(counted):
                spool.write(text.encode())
        spool.seek(0)
        job.file.save(exports.export_filename(job.period, job.format), File(spool), save=False)
    return written[0]
