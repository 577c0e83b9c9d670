"""Redis unreachable: the web app (gunicorn) serves its pages and saves time; a check that
cannot queue its e-mail loses nothing; once Redis is back, Celery beat (its schedule in the
database) and a worker close the ended month and send the alert, once."""

import datetime as dt
import shutil
import sys
from decimal import Decimal

import pytest
from django.db.models import F
from django.urls import reverse

from billing.models import BillableItem, ExportJob, UsageAlert
from billing.services.exports import NOT_QUEUED
from conftest import need_service
from packages.models import BillingPeriod, PeriodStatus
from supportbilling.periods import period_current, period_previous
from tests.factories import (
    ClientUserFactory,
    FinanceFactory,
    OperatorFactory,
    SubscriptionFactory,
    TicketFactory,
    TimeEntryFactory,
)
from tests.faults.conftest import (
    celery_worker_args,
    free_port,
    manage,
    request,
    session_cookie,
    wait_for,
)
from tickets.models import TimeEntry


def test_the_web_app_serves_pages_and_saves_time_with_redis_unreachable(gunicorn):
    # given a client user, an operator and a ticket
    client_user = ClientUserFactory()
    subscription = SubscriptionFactory(client=client_user.client)
    ticket = TicketFactory(subscription=subscription)
    operator = OperatorFactory()
    # when the app runs with its broker on a port where nothing listens
    base = gunicorn(REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
    portal, staff = session_cookie(client_user.user), session_cookie(operator)
    # then the portal and the operator's pages answer
    ticket_page = reverse("admin:tickets_ticket_change", args=[ticket.pk])
    pages = [
        ("/", portal),
        (reverse("clientarea:tickets"), portal),
        (reverse("clientarea:history"), portal),
        (reverse("clientarea:ticket", args=[ticket.pk]), portal),
        ("/admin/", staff),
        (ticket_page, staff),
        (reverse("admin:tickets_ticket_changelist"), staff),
    ]
    for path, cookie in pages:
        status, body = request(f"{base}{path}", cookie)
        assert status == 200, (path, status, body[:500])
    # and the operator saves time on the ticket
    log_time = reverse("admin:tickets_ticket_log", args=[ticket.pk])
    status, _ = request(f"{base}{log_time}", staff, {"hours": "1:30", "note": "Fixed it"})
    assert status == 302
    entry = TimeEntry.objects.get(ticket=ticket)
    assert (entry.hours, entry.operator, entry.note) == (Decimal("1.50"), operator, "Fixed it")
    assert request(f"{base}{ticket_page}", staff)[0] == 200


def test_an_export_job_the_broker_cannot_take_fails_with_the_reason(gunicorn):
    # given finance, and the app running with its broker where nothing listens
    finance = FinanceFactory()
    base = gunicorn(REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
    # when finance starts an export
    jobs = reverse("admin:billing_export_jobs")
    form = {"period": "2026-10", "format": "xlsx"}
    status, _ = request(f"{base}{jobs}", session_cookie(finance), form)
    # then the request does not fail, and the job does not wait for ever: it says why
    assert status == 302
    job = ExportJob.objects.get()
    assert (job.status, job.error) == ("failed", NOT_QUEUED)
    status, page = request(
        f"{base}{reverse('admin:billing_export_job', args=[job.pk])}", session_cookie(finance)
    )
    assert status == 200 and "could not be queued" in page


@pytest.mark.celery_worker
def test_after_an_outage_the_scheduled_close_runs_and_no_usage_alert_is_lost(
    app_env, processes, redis_url
):
    redis_server = shutil.which("redis-server")
    if redis_server is None:
        need_service("redis-server (to stop and start a Redis of the test's own)")
    port = free_port()
    env = app_env(
        REDIS_URL=f"redis://127.0.0.1:{port}/0",
        EMAIL_BACKEND="django.core.mail.backends.console.EmailBackend",
        # The schedule's own intervals (1 h, 5 min), shortened so the test can wait for them.
        CLOSE_ENDED_PERIODS_EVERY="1",
        USAGE_ALERTS_CHECK_EVERY="1",
    )
    # given last month still open, with 12.25 h on a 10 h package
    this_month = period_current()
    last_month = period_previous(this_month)
    ended = SubscriptionFactory(start_date=last_month)
    for hours, day in (("8.00", 2), ("4.25", 16)):
        TimeEntryFactory(
            ticket=TicketFactory(subscription=ended),
            hours=Decimal(hours),
            work_date=last_month + dt.timedelta(days=day),
        )
    # and a client at 85 % of its hours this month
    user = ClientUserFactory(user__email="alert@client.test")
    busy = SubscriptionFactory(client=user.client, start_date=this_month)
    TimeEntryFactory(ticket=TicketFactory(subscription=busy), hours="8.5", work_date=this_month)

    # when Redis is down, and beat is running on the database schedule
    beat = processes(
        [sys.executable, *("-m", "celery", "-A", "supportbilling", "beat"), "--loglevel=info"]
        + ["--max-interval=1"],
        env,
        "beat",
    )
    # and a usage check runs: it records the alert but cannot queue its e-mail
    check = processes(
        manage(
            "shell",
            "-c",
            "from billing.services.alerts import usage_alerts_check; usage_alerts_check()",
        ),
        env,
        "usage check",
    )
    assert check.wait(60) == 0, check.output()
    assert "Could not queue billing.usage_alert_send" in check.output()
    alert = UsageAlert.objects.get(subscription=busy)
    assert (alert.threshold, alert.sent_at) == (80, None)
    # (beat tries to send the close and the check, and cannot: it retries, backing off)
    wait_for(lambda: "beat: Connection error" in beat.output(), "beat to hit the dead broker")
    assert BillingPeriod.objects.filter(month=last_month, status=PeriodStatus.CLOSED).count() == 0

    # when Redis is back, with a worker, and the alert has been unsent for 11 minutes
    processes(
        [redis_server, *("--port", str(port), "--bind", "127.0.0.1")]
        + ["--save", "", "--appendonly", "no"],
        env,
        "redis-server",
    )
    worker = processes(celery_worker_args("after-outage"), env, "worker")
    UsageAlert.objects.update(created_at=F("created_at") - dt.timedelta(minutes=11))
    # then beat's next run closes last month
    try:
        wait_for(
            lambda: BillingPeriod.objects.filter(month=last_month, status=PeriodStatus.CLOSED),
            "the scheduled close",
            seconds=90,
        )
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n--- beat\n{beat.output()}\n--- worker\n{worker.output()}")
    items = {i.kind: i.quantity for i in BillableItem.objects.filter(subscription=ended)}
    assert items == {"fee": Decimal("1.00"), "overtime": Decimal("2.25")}
    # and a later check sends the alert, once
    wait_for(
        lambda: UsageAlert.objects.filter(pk=alert.pk, sent_at__isnull=False),
        "the alert to be sent",
        seconds=60,
    )
    assert worker.output().count("To: alert@client.test") == 1
