"""End to end: tasks sent through Redis, run by a real Celery worker process on the test
database: the scheduled task closes the ended month and writes its items; an export job asked
for through the API is written by the worker and downloaded."""

import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import connection
from django_celery_beat.models import PeriodicTask
from rest_framework.test import APIClient

from billing.exports import copy_csv_chunks
from billing.models import BillableItem
from packages.models import BillingPeriod, PeriodStatus
from supportbilling.periods import period_current, period_label, period_previous
from tests.factories import (
    BillableItemFactory,
    FinanceFactory,
    OperatorFactory,
    SubscriptionFactory,
    TicketFactory,
    TimeEntryFactory,
)
from tickets.models import TimeEntry
from tickets.selectors import time_entries_with_billed

pytestmark = pytest.mark.celery_worker


def database_url() -> str:
    """The test database, as the worker process must see it."""
    db = connection.settings_dict
    user = quote(db["USER"] or "", safe="")
    password = f":{quote(db['PASSWORD'], safe='')}" if db["PASSWORD"] else ""
    host = db["HOST"] or "127.0.0.1"
    port = f":{db['PORT']}" if db["PORT"] else ""
    return f"postgres://{user}{password}@{host}{port}/{db['NAME']}"


@pytest.fixture
def celery_worker_process(postgres, transactional_db, redis_url):
    """A `celery worker` subprocess on the Redis broker and the test database; always
    stopped at the end. Yields the file its log goes to."""
    from supportbilling.celery import app

    eager = app.conf.task_always_eager
    app.conf.task_always_eager = False  # the test process only sends; the worker runs
    app.control.purge()  # messages left over by an earlier, interrupted run
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "supportbilling.settings",
        "DATABASE_URL": database_url(),
        "DB_CONN_MAX_AGE": "0",
        "REDIS_URL": redis_url,
        "SECRET_KEY": settings.SECRET_KEY,
        "DEBUG": "0",
        "MEDIA_ROOT": settings.MEDIA_ROOT,  # the files it writes, where the test reads them
    }
    with tempfile.TemporaryFile(mode="w+") as log:
        worker = subprocess.Popen(
            [
                sys.executable,
                *("-m", "celery", "-A", "supportbilling", "worker"),
                *("--pool=solo", "--loglevel=info", "--concurrency=1"),
                *("--without-gossip", "--without-mingle", "--without-heartbeat"),
            ],
            cwd=settings.BASE_DIR,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            yield log
        finally:
            worker.terminate()
            try:
                worker.wait(timeout=20)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait(timeout=10)
            app.conf.task_always_eager = eager
            log.seek(0)
            print(log.read()[-5000:])  # shown when the test fails


def send_the_scheduled_task() -> list[str]:
    """What beat does on the first of the month: send the task stored in the schedule."""
    from supportbilling.celery import app

    scheduled = PeriodicTask.objects.get(crontab__isnull=False, task__startswith="billing.")
    return app.send_task(
        scheduled.task, args=json.loads(scheduled.args), kwargs=json.loads(scheduled.kwargs)
    ).get(timeout=90)


def test_a_real_worker_runs_the_scheduled_rollup_end_to_end(celery_worker_process):
    # given a subscription since last month (the worker's today is the real one) with 12.25 h
    last_month = period_previous(period_current())
    subscription = SubscriptionFactory(start_date=last_month)
    ticket = TicketFactory(subscription=subscription)
    for hours, day in (("8.00", 3), ("4.25", 17)):
        TimeEntryFactory(
            ticket=ticket,
            operator=OperatorFactory(),
            hours=Decimal(hours),
            work_date=last_month + dt.timedelta(days=day),
        )
    # when the scheduled task is sent through the broker
    started = send_the_scheduled_task()
    # then the worker closes last month and bills its fee and 2.25 h of overtime
    assert started == [period_label(last_month)]
    deadline = time.monotonic() + 90
    while not BillingPeriod.objects.filter(month=last_month, status=PeriodStatus.CLOSED).exists():
        assert time.monotonic() < deadline, "the worker did not close the month in time"
        time.sleep(0.25)
    items = {i.kind: i for i in BillableItem.objects.filter(subscription=subscription)}
    assert set(items) == {"fee", "overtime"}
    assert items["overtime"].quantity == Decimal("2.25")
    assert items["overtime"].amount.amount == Decimal("135.00")
    assert (
        not time_entries_with_billed(TimeEntry.objects.all())
        .filter(billed_at__isnull=True)
        .exists()
    )
    # and sending it again closes nothing more
    assert send_the_scheduled_task() == []
    assert BillableItem.objects.count() == 2


def test_a_real_worker_writes_an_export_job_that_finance_downloads(celery_worker_process):
    # given October's items, hostile text among them, and finance using the API
    subscription = SubscriptionFactory()
    for text in ('=HYPERLINK("http://x","y")', "first line\nsecond", "Zürich ½"):
        BillableItemFactory(
            subscription=None, client=subscription.client, kind="adjustment", description=text
        )
    month = BillableItem.objects.values_list("period", flat=True).first()
    api = APIClient()
    api.force_authenticate(FinanceFactory())
    # when finance asks for the month as CSV: the job is sent through Redis to the worker
    created = api.post(
        "/api/v1/export-jobs/", {"period": period_label(month), "format": "csv"}, format="json"
    )
    assert created.status_code == 202
    # then the worker writes it, and its file is the synchronous export's, byte for byte
    deadline = time.monotonic() + 90
    while (status := api.get(created["Location"]).json())["status"] in ("queued", "running"):
        assert time.monotonic() < deadline, "the worker did not write the export in time"
        time.sleep(0.25)
    assert (status["status"], status["rows_done"]) == ("done", 3)
    response = api.get(status["download"])
    assert response.status_code == 200
    expected = b"".join(copy_csv_chunks(month=month))
    assert b"".join(response.streaming_content) == expected
