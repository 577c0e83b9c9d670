"""What a fresh install has (roles, the monthly schedule) and the management commands."""

import datetime as dt
from decimal import Decimal
from io import StringIO

import pytest
from django.conf import settings
from django.contrib.auth.models import Group, User
from django.core.management import CommandError, call_command
from django.urls import reverse
from django_celery_beat.models import PeriodicTask

from billing.models import BillableItem
from packages.models import BillingPeriod, PeriodStatus
from tests.factories import SubscriptionFactory, TicketFactory, TimeEntryFactory
from tickets.models import Ticket, TicketMessage, TimeEntry
from tickets.selectors import time_entries_with_billed

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def today(time_machine):
    time_machine.move_to(dt.datetime(2026, 11, 24, 10, 0, tzinfo=dt.UTC), tick=False)


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_the_monthly_schedule_exists_after_migrate():
    # given the test database, built by `migrate` from empty
    task = PeriodicTask.objects.get(task="billing.close_ended_periods")
    # then the rollup runs on the first day of each month at 00:05 in TIME_ZONE
    assert task.enabled
    cron = task.crontab
    assert (
        cron.minute,
        cron.hour,
        cron.day_of_month,
        cron.month_of_year,
        cron.day_of_week,
    ) == ("5", "0", "1", "*", "*")
    assert str(cron.timezone) == settings.TIME_ZONE
    assert task.interval is None and not task.one_off


def test_the_scheduled_task_is_registered_with_celery():
    from supportbilling.celery import app

    app.loader.import_default_modules()
    assert "billing.close_ended_periods" in app.tasks
    assert app.conf.beat_scheduler == "django_celery_beat.schedulers:DatabaseScheduler"


def test_operators_and_finance_groups_exist_with_their_permissions():
    operators = Group.objects.get(name="Operators")
    finance = Group.objects.get(name="Finance")
    operator_codes = set(operators.permissions.values_list("codename", flat=True))
    finance_codes = set(finance.permissions.values_list("codename", flat=True))
    assert {"add_timeentry", "change_timeentry", "delete_timeentry", "change_ticket"} <= (
        operator_codes
    )
    assert not {"add_billableitem", "change_billableitem"} & operator_codes
    assert {"view_billableitem", "add_billableitem", "change_billableitem"} <= finance_codes
    assert not {"add_timeentry", "delete_timeentry"} & finance_codes


def test_rollup_command_closes_one_period():
    subscription = SubscriptionFactory()
    TimeEntryFactory(ticket=TicketFactory(subscription=subscription), hours=Decimal("12.25"))
    out = run("rollup", "--period", "2026-10")
    assert "2026-10 closed: 2 billable items written." in out
    assert BillingPeriod.objects.get(month=dt.date(2026, 10, 1)).status == PeriodStatus.CLOSED
    assert run("rollup", "--period", "2026-10").strip() == (
        "2026-10 was already closed: 0 billable items written."
    )
    assert BillableItem.objects.count() == 2


def test_rollup_command_all_ended_catches_up_every_missed_month():
    # given a subscription since August and nothing closed yet
    SubscriptionFactory(start_date=dt.date(2026, 8, 20))
    # when every ended month is closed
    out = run("rollup", "--all-ended")
    # then August, September and October are billed, November (not ended) is not
    assert out.splitlines() == [
        "2026-08 closed: 1 billable items written.",
        "2026-09 closed: 1 billable items written.",
        "2026-10 closed: 1 billable items written.",
    ]
    assert set(BillableItem.objects.values_list("period", flat=True)) == {
        dt.date(2026, 8, 1),
        dt.date(2026, 9, 1),
        dt.date(2026, 10, 1),
    }
    assert "No ended period is open." in run("rollup", "--all-ended")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--period", "2026-11"], "has not ended yet"),
        (["--period", "2026-13"], "real month"),
        (["--period", "October"], "YYYY-MM"),
    ],
)
def test_rollup_command_refuses_what_cannot_be_closed(args, message):
    with pytest.raises(CommandError, match=message):
        run("rollup", *args)


def test_rollup_command_needs_a_period_or_all_ended():
    with pytest.raises(CommandError):
        run("rollup")


def test_seed_demo_builds_a_believable_data_set():
    out = run("seed_demo")
    # then there are logins for every role, billed past months and an open current one
    assert "Demo logins" in out
    # and how to turn the mailbox on, after the logins
    assert out.index("Mailbox intake: off. To turn e-mail into tickets, set MAIL_INTAKE_HOST") > (
        out.index("Demo logins")
    )
    assert {"admin", "alice", "bob", "fiona", "jane", "john"} <= set(
        User.objects.values_list("username", flat=True)
    )
    closed = set(
        BillingPeriod.objects.filter(status=PeriodStatus.CLOSED).values_list("month", flat=True)
    )
    assert closed == {dt.date(2026, 8, 1), dt.date(2026, 9, 1), dt.date(2026, 10, 1)}
    kinds = set(BillableItem.objects.values_list("kind", flat=True))
    assert {"fee", "overtime", "one_time"} <= kinds
    currencies = set(BillableItem.objects.values_list("currency", flat=True))
    assert {"EUR", "USD", "GBP", "PLN"} <= currencies
    assert (
        time_entries_with_billed(TimeEntry.objects.filter(work_date__gte=dt.date(2026, 11, 1)))
        .filter(billed_at=None)
        .exists()
    )
    # and running it again changes nothing
    items = BillableItem.objects.count()
    assert "already there" in run("seed_demo")
    assert BillableItem.objects.count() == items


def test_seed_demo_looks_like_a_month_of_a_support_desk(client, settings):
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    run("seed_demo")
    today = dt.date(2026, 11, 1)
    this_month = Ticket.objects.filter(created_at__date__gte=today)
    # tickets in every state, most of them assigned, not all opened today
    assert set(this_month.values_list("status", flat=True)) >= {"open", "closed"}
    assert len(set(Ticket.objects.values_list("status", flat=True))) >= 4
    assert Ticket.objects.exclude(assignee=None).count() > Ticket.objects.count() / 2
    assert len(set(this_month.values_list("created_at__date", flat=True))) > 1
    # time logged on many days of the current month
    days = set(TimeEntry.objects.filter(work_date__gte=today).values_list("work_date", flat=True))
    assert len(days) > 3
    # the previous month is closed with items waiting for finance, earlier ones invoiced
    october = BillableItem.objects.filter(period=dt.date(2026, 10, 1))
    assert set(october.values_list("status", flat=True)) == {"pending"}
    assert set(
        BillableItem.objects.filter(period=dt.date(2026, 9, 1)).values_list("status", flat=True)
    ) == {"invoiced"}
    # a client without a portal login is named on its messages in the admin, not "(unknown)"
    message = TicketMessage.objects.filter(author=None).select_related("ticket__client").first()
    client.force_login(User.objects.get(username="alice"))
    page = client.get(reverse("admin:tickets_ticket_change", args=[message.ticket_id]))
    html = page.content.decode()
    assert "(unknown)" not in html
    assert f"<strong>{message.ticket.client.name}</strong>" in html


def test_seed_demo_can_leave_the_last_month_open_to_try_the_close():
    out = run("seed_demo", "--leave-open")
    assert "2026-10 is left open for you to close." in out
    october = BillingPeriod.objects.filter(month=dt.date(2026, 10, 1)).first()
    assert october is None or october.status == PeriodStatus.OPEN


def test_every_model_change_has_its_migration():
    call_command("makemigrations", "--check", "--dry-run", stdout=StringIO())


def test_the_scheduled_task_closes_the_other_months_when_one_cannot_close(celery_eager):
    # given September and October ended; in September a subscription has no price in its
    # client's currency (a USD client on a EUR-only package, written directly)
    from billing.tasks import close_ended_periods
    from tests.factories import ClientFactory, package_with_prices

    SubscriptionFactory(
        client=ClientFactory(currency="USD"),
        package=package_with_prices({"EUR": ("500.00", "60.00")}),
        start_date=dt.date(2026, 9, 1),
        end_date=dt.date(2026, 9, 30),
    )
    billed = SubscriptionFactory(start_date=dt.date(2026, 10, 1))
    # when the scheduled task runs (eagerly, in this process)
    close_ended_periods.apply()
    # then September stays open and October is closed and billed
    assert not BillingPeriod.objects.filter(
        month=dt.date(2026, 9, 1), status=PeriodStatus.CLOSED
    ).exists()
    assert BillingPeriod.objects.get(month=dt.date(2026, 10, 1)).status == PeriodStatus.CLOSED
    assert BillableItem.objects.filter(subscription=billed, kind="fee").count() == 1
