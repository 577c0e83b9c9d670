"""Export jobs: a month's items written to a file by the Celery task (run eagerly here, through
a real worker in test_celery_worker.py), with progress, for finance to download from the admin
or the API. The file is the synchronous export's: byte for byte (CSV), cell for cell (XLSX)."""

import datetime as dt
import io
from pathlib import Path

import openpyxl
import pytest
from django.contrib.messages import get_messages
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from billing.exports import billable_items_csv_chunks, billable_items_xlsx_response
from billing.models import ExportJob, ExportStatus
from billing.tasks import export_jobs_expire
from tests.billing.conftest import api_as
from tests.billing.test_exports import OCTOBER, insert_items
from tests.billing.test_exports_copy import every_kind_of_item_create
from tests.factories import FinanceFactory

JOBS = "/admin/billing/billableitem/exports/"
API_JOBS = "/api/v1/export-jobs/"
REAL_MONTH = "Enter a real month as YYYY-MM, for example 2026-10."
YYYY_MM = "Enter the period as YYYY-MM, for example 2026-10."
RANGE = "Enter a month from 2000-01 to 2999-12."


@pytest.fixture
def hostile_month(world):
    """October with formulas, quotes, newlines, unicode, credits (test_exports_copy's items)."""
    every_kind_of_item_create(world)


@pytest.fixture(autouse=True)
def _eager_and_plain_static(celery_eager, settings):
    """Tasks run in the test process (the embedded default); admin pages without a manifest."""
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


def browser_of(user) -> Client:
    browser = Client(raise_request_exception=False)
    if user is not None:
        browser.force_login(user)
    return browser


def admin_job_start(browser: Client, django_capture_on_commit_callbacks, **data) -> ExportJob:
    """Post the export jobs form, as finance does, and let the job's task run (on commit)."""
    with django_capture_on_commit_callbacks(execute=True):
        response = browser.post(JOBS, data)
    job = ExportJob.objects.latest("id")
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:billing_export_job", args=[job.pk])
    job.refresh_from_db()
    return job


def downloaded(response) -> bytes:
    assert response.status_code == 200, response.content
    return b"".join(response.streaming_content)


def sync_csv(month) -> bytes:
    return b"".join(
        piece.encode() if isinstance(piece, str) else piece
        for piece in billable_items_csv_chunks(month=month)
    )


def sync_xlsx(month) -> bytes:
    return b"".join(billable_items_xlsx_response(month=month).streaming_content)


def cells(xlsx: bytes) -> list[list[tuple]]:
    """Every cell of the first sheet: its value, type and number format."""
    sheet = openpyxl.load_workbook(io.BytesIO(xlsx)).active
    return [
        [(cell.value, cell.data_type, cell.number_format) for cell in row]
        for row in sheet.iter_rows()
    ]


# --- the file ---------------------------------------------------------------------------------


def test_a_csv_job_writes_the_bytes_of_the_synchronous_export(
    world,
    hostile_month,
    postgres,
    django_capture_on_commit_callbacks,
):
    # given finance, and a month of formulas, quotes, newlines, unicode and credits
    browser = browser_of(world.users["finance"])
    # when they start a CSV export job of it
    job = admin_job_start(
        browser, django_capture_on_commit_callbacks, period="2026-10", format="csv"
    )
    # then the job is done, every item counted, and its file is the synchronous CSV's bytes
    assert job.status == ExportStatus.DONE
    assert job.rows_done == job.rows_total == 22
    body = downloaded(browser.get(reverse("admin:billing_export_job_download", args=[job.pk])))
    assert body == sync_csv(OCTOBER)
    assert body.startswith(b"id,client,subscription,period,") and b"'=HYPERLINK" in body


def test_an_xlsx_job_writes_the_cells_of_the_synchronous_export(
    world,
    hostile_month,
    django_capture_on_commit_callbacks,
):
    browser = browser_of(world.users["finance"])
    job = admin_job_start(
        browser, django_capture_on_commit_callbacks, period="2026-10", format="xlsx"
    )
    assert job.status == ExportStatus.DONE
    response = browser.get(reverse("admin:billing_export_job_download", args=[job.pk]))
    assert response["Content-Disposition"] == 'attachment; filename="billable-items-2026-10.xlsx"'
    job_cells, sync_cells = cells(downloaded(response)), cells(sync_xlsx(OCTOBER))
    assert job_cells == sync_cells
    assert len(job_cells) == 23  # the header and 22 items
    descriptions = [row[5][0] for row in job_cells[1:]]
    assert '\'=HYPERLINK("http://x","y")' in descriptions
    assert {row[9][1:] for row in job_cells[1:]} == {("n", "0.00")}  # amounts: numbers


def test_the_job_tells_its_progress_every_few_thousand_rows(
    world, postgres, settings, django_capture_on_commit_callbacks
):
    # given 12,500 items of October, progress written every 5,000 rows
    insert_items(client_id=world.acme.pk, count=12_498)  # with world's two: 12,500
    browser = browser_of(world.users["finance"])
    # when the job runs
    with CaptureQueriesContext(connection) as queries:
        job = admin_job_start(
            browser, django_capture_on_commit_callbacks, period="2026-10", format="csv"
        )
    # then it told its progress at 5,000 and 10,000 rows, and ended with every row counted
    progress = [q["sql"] for q in queries if "rows_done" in q["sql"] and "UPDATE" in q["sql"]]
    assert [sql.split('"rows_done" = ')[1].split()[0].strip(",") for sql in progress] == [
        "0",  # started
        "5000",
        "10000",
        "12500",  # done
    ]
    assert (job.status, job.rows_done, job.rows_total, job.percent) == ("done", 12500, 12500, 100)
    assert sync_csv(OCTOBER).count(b"\r\n") == 12_501


def test_a_job_that_cannot_write_its_file_fails_with_the_reason(
    world, tmp_path, settings, django_capture_on_commit_callbacks
):
    # given a media directory that cannot be created (a file stands in its way)
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    settings.MEDIA_ROOT = str(blocker / "media")
    browser = browser_of(world.users["finance"])
    # when finance starts an export
    job = admin_job_start(
        browser, django_capture_on_commit_callbacks, period="2026-10", format="xlsx"
    )
    # then the job failed, its page says why, and there is nothing to download
    assert job.status == ExportStatus.FAILED
    assert job.error.startswith("The export could not be written (NotADirectoryError")
    page = browser.get(reverse("admin:billing_export_job", args=[job.pk])).content.decode()
    assert 'id="export-job-error"' in page and "could not be written" in page
    assert "export-job-download" not in page
    api = api_as(world.users["finance"])
    refused = api.get(f"{API_JOBS}{job.pk}/download/")
    assert refused.status_code == 409
    assert refused.json()["status"] == "failed"
    assert refused.json()["detail"].startswith("The export failed, there is no file:")


def test_a_job_delivered_twice_writes_its_file_once(
    world, django_capture_on_commit_callbacks, settings, tmp_path
):
    from billing.tasks import export_job_run

    # a media directory of its own: SQLite gives ids again, so an earlier test's job may
    # have left its file in the folder of the same number
    settings.MEDIA_ROOT = str(tmp_path)
    browser = browser_of(world.users["finance"])
    job = admin_job_start(
        browser, django_capture_on_commit_callbacks, period="2026-10", format="csv"
    )
    assert export_job_run(job.pk) == "skipped"
    assert ExportJob.objects.get(pk=job.pk).file.name == job.file.name
    assert len(list(Path(job.file.path).parent.iterdir())) == 1


# --- the admin pages --------------------------------------------------------------------------


def test_the_item_list_leads_to_the_job_page_for_xlsx(world, django_capture_on_commit_callbacks):
    browser = browser_of(world.users["finance"])
    # the list's XLSX link, and the old address, open the form filled in, with no file built
    changelist = browser.get("/admin/billing/billableitem/?period=2026-10").content.decode()
    assert f'href="{JOBS}?period=2026-10&amp;format=xlsx"' in changelist
    old = browser.get(reverse("admin:billing_export") + "?period=2026-10&format=xlsx")
    assert old.status_code == 302
    assert old["Location"] == f"{JOBS}?period=2026-10&format=xlsx"
    page = browser.get(old["Location"])
    assert page.context["form"]["period"].value() == "2026-10"
    assert page.context["form"]["format"].value() == "xlsx"
    assert not ExportJob.objects.exists()


def test_a_queued_job_page_shows_its_progress_and_reloads_itself(world):
    job = ExportJob.objects.create(
        requested_by=world.users["finance"], period=OCTOBER, format="xlsx"
    )
    ExportJob.objects.filter(pk=job.pk).update(status="running", rows_done=250, rows_total=1000)
    page = browser_of(world.users["finance"]).get(
        reverse("admin:billing_export_job", args=[job.pk])
    )
    html = page.content.decode()
    assert '<meta http-equiv="refresh" content="2">' in html
    assert '<progress max="100" value="25"' in html
    assert "250 of 1000 items written." in html
    assert "export-job-download" not in html
    # and a download link of an earlier visit leads back to the page, with the reason
    early = browser_of(world.users["finance"]).get(
        reverse("admin:billing_export_job_download", args=[job.pk]), follow=True
    )
    assert [str(m) for m in get_messages(early.wsgi_request)] == [
        "The export is running (25 %): download it once its status is done."
    ]


def test_a_done_job_page_has_the_download_link_and_no_reload(
    world, django_capture_on_commit_callbacks
):
    browser = browser_of(world.users["finance"])
    job = admin_job_start(
        browser, django_capture_on_commit_callbacks, period="2026-10", format="xlsx"
    )
    html = browser.get(reverse("admin:billing_export_job", args=[job.pk])).content.decode()
    assert "http-equiv" not in html
    assert reverse("admin:billing_export_job_download", args=[job.pk]) in html
    assert "2 items written." in html


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"period": "2026-13", "format": "xlsx"}, "period", "Enter a real month as YYYY-MM"),
        ({"period": "9999-01", "format": "xlsx"}, "period", "Enter a month from 2000-01"),
        ({"period": "", "format": "xlsx"}, "period", "This field is required."),
        ({"period": "2026-10", "format": "pdf"}, "format", "Select a valid choice."),
    ],
)
def test_a_refused_export_form_says_why_and_starts_nothing(world, data, field, message):
    response = browser_of(world.users["finance"]).post(JOBS, data)
    assert response.status_code == 400
    assert message in " ".join(response.context["form"].errors[field])
    assert not ExportJob.objects.exists()


ADMIN_ROLES = ["anonymous", "client", "operator", "finance", "other_finance", "administrator"]


@pytest.fixture
def jobs_of_finance(world):
    """A done-looking and a queued job of ``world``'s finance user, and another finance user."""
    world.users["other_finance"] = FinanceFactory()
    mine = ExportJob.objects.create(
        requested_by=world.users["finance"], period=OCTOBER, format="xlsx"
    )
    theirs = ExportJob.objects.create(
        requested_by=world.users["other_finance"], period=OCTOBER, format="csv"
    )
    return mine, theirs


@pytest.mark.parametrize(
    ("role", "list_page", "own_page", "their_page", "listed", "can_start"),
    [
        ("anonymous", "302", "302", "302", None, None),
        ("client", "302", "302", "302", None, None),
        ("operator", "403", "403", "403", None, None),
        ("finance", "200", "200", "404", {"mine"}, True),
        ("other_finance", "200", "404", "200", {"theirs"}, True),
        ("administrator", "200", "200", "200", {"mine", "theirs"}, True),
    ],
)
def test_who_sees_which_jobs_in_the_admin(
    world, jobs_of_finance, role, list_page, own_page, their_page, listed, can_start
):
    mine, theirs = jobs_of_finance
    browser = browser_of(world.users[role])
    response = browser.get(JOBS)
    assert str(response.status_code) == list_page
    pages = [
        str(browser.get(reverse("admin:billing_export_job", args=[job.pk])).status_code)
        for job in (mine, theirs)
    ]
    assert pages == [own_page, their_page]
    download = browser.get(reverse("admin:billing_export_job_download", args=[theirs.pk]))
    assert download.status_code == {"200": 302, "404": 404}.get(their_page, int(their_page))
    if listed is not None:
        names = {mine.pk: "mine", theirs.pk: "theirs"}
        assert {names[job.pk] for job in response.context["jobs"]} == listed
        assert response.context["can_start"] is can_start
    # and whoever may not start one starts nothing by posting
    if role in ("anonymous", "client", "operator"):
        browser.post(JOBS, {"period": "2026-10", "format": "csv"})
        assert ExportJob.objects.count() == 2


# --- the API ----------------------------------------------------------------------------------


def test_the_api_starts_a_job_follows_it_and_downloads_its_file(
    world,
    hostile_month,
    postgres,
    django_capture_on_commit_callbacks,
):
    api = api_as(world.users["finance"])
    # when finance asks for a CSV export of October
    with django_capture_on_commit_callbacks(execute=True):
        created = api.post(API_JOBS, {"period": "2026-10", "format": "csv"}, format="json")
    # then it is accepted, with the address of the job to follow
    assert created.status_code == 202
    body = created.json()
    job_url = f"http://testserver{API_JOBS}{body['id']}/"
    assert created["Location"] == body["url"] == job_url
    assert (body["period"], body["format"], body["status"]) == ("2026-10", "csv", "queued")
    assert body["download"] is None
    # and its status, once the task has run, says done and where the file is
    status = api.get(job_url).json()
    assert (status["status"], status["rows_done"], status["rows_total"], status["percent"]) == (
        "done",
        22,
        22,
        100,
    )
    assert status["download"] == f"{job_url}download/"
    response = api.get(status["download"])
    assert response["Content-Type"] == "text/csv"
    assert downloaded(response) == sync_csv(OCTOBER)


def test_the_api_downloads_an_xlsx_as_bytes(world, django_capture_on_commit_callbacks):
    api = api_as(world.users["finance"])
    with django_capture_on_commit_callbacks(execute=True):
        created = api.post(API_JOBS, {"period": "2026-10", "format": "xlsx"}, format="json")
    response = api.get(created.json()["url"] + "download/")
    assert response["Content-Type"] == "application/octet-stream"
    assert response["Content-Disposition"] == 'attachment; filename="billable-items-2026-10.xlsx"'
    assert cells(downloaded(response)) == cells(sync_xlsx(OCTOBER))


@pytest.mark.parametrize(
    ("data", "errors"),
    [
        ({"period": "2026-10", "format": "pdf"}, {"format": ['"pdf" is not a valid choice.']}),
        ({"period": "2026-13", "format": "csv"}, {"period": [REAL_MONTH]}),
        ({"period": "3000-01", "format": "csv"}, {"period": [RANGE]}),
        ({"period": "October", "format": "csv"}, {"period": [YYYY_MM]}),
        ({"format": "csv"}, {"period": ["This field is required."]}),
        ({"period": "2026-10"}, {"format": ["This field is required."]}),
    ],
)  # fmt: skip
def test_the_api_refuses_a_bad_request_and_starts_nothing(world, data, errors):
    response = api_as(world.users["finance"]).post(API_JOBS, data, format="json")
    assert (response.status_code, response.json()) == (400, errors)
    assert not ExportJob.objects.exists()


@pytest.mark.parametrize(
    ("role", "create", "own", "theirs", "listed"),
    [
        ("anonymous", 401, 401, 401, None),
        ("client", 403, 403, 403, None),
        ("operator", 403, 403, 403, None),
        ("finance", 202, 200, 404, {"mine"}),
        ("administrator", 202, 200, 200, {"mine", "theirs"}),
    ],
)
def test_who_may_use_export_jobs_in_the_api(
    world, jobs_of_finance, role, create, own, theirs, listed
):
    mine, their_job = jobs_of_finance
    api = api_as(world.users[role])
    created = api.post(API_JOBS, {"period": "2026-10", "format": "csv"}, format="json")
    assert created.status_code == create
    assert api.get(f"{API_JOBS}{mine.pk}/").status_code == own
    assert api.get(f"{API_JOBS}{their_job.pk}/").status_code == theirs
    assert api.get(f"{API_JOBS}{their_job.pk}/download/").status_code in (
        {theirs} if theirs != 200 else {409}  # visible, but not done
    )
    listing = api.get(API_JOBS)
    if listed is None:
        assert listing.status_code == create
        assert ExportJob.objects.count() == 2
    else:
        names = {mine.pk: "mine", their_job.pk: "theirs"}
        found = {names[job["id"]] for job in listing.json()["results"] if job["id"] in names}
        assert found == listed


def test_the_api_download_before_the_job_is_done_is_a_409(world, jobs_of_finance):
    mine, _ = jobs_of_finance
    api = api_as(world.users["finance"])
    queued = api.get(f"{API_JOBS}{mine.pk}/download/")
    assert queued.status_code == 409
    assert queued.json() == {
        "detail": "The export is queued (0 %): download it once its status is done.",
        "status": "queued",
    }
    ExportJob.objects.filter(pk=mine.pk).update(status="running", rows_done=30, rows_total=120)
    assert api.get(f"{API_JOBS}{mine.pk}/download/").json()["detail"] == (
        "The export is running (25 %): download it once its status is done."
    )
    assert api.get(f"{API_JOBS}999999/download/").status_code == 404


# --- expiry: files are kept EXPORT_JOB_KEEP_DAYS -----------------------------------------------


def test_files_older_than_the_keep_days_are_deleted_and_their_jobs_say_so(
    world, django_capture_on_commit_callbacks, settings
):
    # given two done CSV jobs, one finished 8 days ago and one today, files kept 7 days
    settings.EXPORT_JOB_KEEP_DAYS = 7
    browser = browser_of(world.users["finance"])
    old, new = (
        admin_job_start(browser, django_capture_on_commit_callbacks, period="2026-10", format="csv")
        for _ in range(2)
    )
    ExportJob.objects.filter(pk=old.pk).update(finished_at=timezone.now() - dt.timedelta(days=8))
    old_path = Path(old.file.path)
    assert old_path.exists()
    # when the periodic task runs (twice: the second finds nothing to do)
    assert export_jobs_expire.delay().get() == 1
    assert export_jobs_expire.delay().get() == 0
    # then the old job's file is gone and the job says so; the new one is untouched
    old.refresh_from_db()
    new.refresh_from_db()
    assert (old.status, old.file.name, old.percent) == (ExportStatus.EXPIRED, "", 100)
    assert not old_path.exists()
    assert new.status == ExportStatus.DONE and Path(new.file.path).exists()
    # and its page says to export again, its download leads there, the API answers 409
    page = browser.get(reverse("admin:billing_export_job", args=[old.pk])).content.decode()
    assert "Its file was deleted 7 days after it was written." in page
    assert "Export the month again" in page
    download = browser.get(reverse("admin:billing_export_job_download", args=[old.pk]))
    assert download["Location"] == reverse("admin:billing_export_job", args=[old.pk])
    answer = api_as(world.users["finance"]).get(f"{API_JOBS}{old.pk}/download/")
    assert answer.status_code == 409
    assert answer.json() == {
        "detail": "The export's file was deleted 7 days after it was written: start a new "
        "export of the month.",
        "status": "expired",
    }


def test_the_expiry_runs_on_the_beat_schedule(settings):
    tasks = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert "billing.export_jobs_expire" in tasks


def test_a_done_job_whose_file_is_gone_answers_without_an_error(
    world, django_capture_on_commit_callbacks
):
    # given a done job whose file was deleted behind its back (an expiry racing the download)
    browser = browser_of(world.users["finance"])
    job = admin_job_start(
        browser, django_capture_on_commit_callbacks, period="2026-10", format="csv"
    )
    Path(job.file.path).unlink()
    # then the API says so with a 409 and the admin leads to the job page, never a 500
    answer = api_as(world.users["finance"]).get(f"{API_JOBS}{job.pk}/download/")
    assert answer.status_code == 409
    assert answer.json() == {
        "detail": "The export's file is missing: start a new export of the month.",
        "status": "done",
    }
    download = browser.get(reverse("admin:billing_export_job_download", args=[job.pk]))
    assert download.status_code == 302
    assert download["Location"] == reverse("admin:billing_export_job", args=[job.pk])
    assert [str(m) for m in get_messages(download.wsgi_request)] == [
        "The export's file is missing: start a new export of the month."
    ]
