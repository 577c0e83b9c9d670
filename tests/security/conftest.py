"""One world for the whole access matrix, built once per module: two clients, each with a
subscription, a ticket, a message, a time entry, a timer, an audit event, a billable item, a
usage alert and a statement PDF; a portal login for each client and one user of each staff role.

Every test still runs in its own savepoint inside the module's transaction, so a request that
writes leaves nothing behind for the next one."""

import datetime as dt
import hashlib
from types import SimpleNamespace

import pytest
from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.core.files.base import ContentFile
from django.db import transaction
from django_celery_beat.models import (
    ClockedSchedule,
    CrontabSchedule,
    IntervalSchedule,
    PeriodicTask,
    SolarSchedule,
)
from rest_framework.authtoken.models import Token

from billing.models import Dispute, ExportJob, Statement, UsageAlert
from packages.models import BillingPeriod, PeriodStatus
from tests.factories import (
    AdminFactory,
    BillableItemFactory,
    ClientFactory,
    ClientUserFactory,
    FinanceFactory,
    OperatorFactory,
    SubscriptionFactory,
    TicketFactory,
    TicketMessageFactory,
    TimeEntryFactory,
    package_with_prices,
)
from tests.install import roles_and_schedule_restore
from tickets.attachments import attachment_add
from tickets.intake import inbound_mail_receive
from tickets.models import AuditAction, AuditEvent, TimeTimer
from webhooks.models import WebhookDelivery, WebhookEndpoint
from whmcs.models import PushStatus, WhmcsClient, WhmcsPush

NOW = dt.datetime(2026, 10, 20, 9, 0, tzinfo=dt.UTC)
SEPTEMBER = dt.date(2026, 9, 1)
# Words that only one client's objects carry: another client's user must never see them.
SECRET = {"a": "ALPHA-SECRET", "b": "BRAVO-SECRET"}


def _client_side(key: str, *, currency: str, package, operator) -> SimpleNamespace:
    secret = SECRET[key]
    client = ClientFactory(name=f"{secret} Ltd", currency=currency, email=f"{key}@client.test")
    login = ClientUserFactory(client=client, user__username=f"client_{key}")
    subscription = SubscriptionFactory(client=client, package=package, start_date=SEPTEMBER)
    ticket = TicketFactory(
        subscription=subscription, subject=f"{secret} mail server down", assignee=operator
    )
    message = TicketMessageFactory(ticket=ticket, body=f"{secret}: please help")
    attachment = attachment_add(
        message=message, filename=f"{secret}.txt", content_type="text/plain", data=secret.encode()
    )
    entry = TimeEntryFactory(ticket=ticket, operator=operator, note=f"{secret} restarted postfix")
    timer = TimeTimer.objects.create(ticket=ticket, operator=operator, started_at=NOW)
    event = AuditEvent.objects.create(
        ticket=ticket, subscription=subscription, actor=operator, action=AuditAction.TIME_LOGGED
    )
    price = package.prices.get(currency=currency).fee
    item = BillableItemFactory(
        subscription=subscription,
        period=SEPTEMBER,
        description=f"{secret} support package 2026-09",
        unit_price=price,
        amount=price,
    )
    alert = UsageAlert.objects.create(subscription=subscription, period=SEPTEMBER, threshold=80)
    # written directly (the service wants a month in review): the client's open dispute
    dispute = Dispute.objects.create(
        client=client,
        subscription=subscription,
        month=SEPTEMBER,
        item=item,
        reason=f"{secret}: we did not order this",
        opened_by=login.user,
    )
    # A stored statement PDF of September (the matrix's month is open: the row is written
    # directly, as the statement service would once it closes).
    pdf = f"%PDF-1.7 {secret} statement".encode()
    statement = Statement(
        subscription=subscription,
        client=client,
        month=SEPTEMBER,
        revision=1,
        checksum=hashlib.sha256(pdf).hexdigest(),
        size=len(pdf),
        figures={"total": f"{price.amount} {currency}"},
    )
    statement.file.save(statement.filename, ContentFile(pdf), save=False)
    statement.save()
    return SimpleNamespace(
        client=client,
        login=login,
        user=login.user,
        subscription=subscription,
        ticket=ticket,
        entry=entry,
        timer=timer,
        event=event,
        item=item,
        alert=alert,
        attachment=attachment,
        dispute=dispute,
        statement=statement,
    )


def world_build() -> SimpleNamespace:
    package = package_with_prices(
        {"EUR": ("500.00", "60.00"), "USD": ("550.00", "70.00")}, name="Gold"
    )
    operator = OperatorFactory(username="operator")
    a = _client_side("a", currency="EUR", package=package, operator=operator)
    b = _client_side("b", currency="USD", package=package, operator=operator)
    finance = FinanceFactory(username="finance")
    administrator = AdminFactory(username="administrator")
    # finance's export of September, still waiting for a worker (no file yet)
    export_job = ExportJob.objects.create(requested_by=finance, period=SEPTEMBER, format="xlsx")
    # The subscriptions' start month: its row exists since they were sold (open).
    period = BillingPeriod.objects.get(month=SEPTEMBER, status=PeriodStatus.OPEN)
    Token.objects.create(user=a.user)
    endpoint = WebhookEndpoint.objects.create(
        url="https://billing.example/hook", events=["period.closed"]
    )
    return SimpleNamespace(
        a=a,
        b=b,
        package=package,
        period=period,
        export_job=export_job,
        users={
            "anonymous": None,
            "client_a": a.user,
            "client_b": b.user,
            "operator": operator,
            "finance": finance,
            "administrator": administrator,
        },
        crontab=CrontabSchedule.objects.first(),
        periodic_task=PeriodicTask.objects.first(),
        interval=IntervalSchedule.objects.create(every=10, period=IntervalSchedule.MINUTES),
        solar=SolarSchedule.objects.create(event="sunrise", latitude=50, longitude=14),
        clocked=ClockedSchedule.objects.create(clocked_time=NOW),
        # sign-in throttling records (django-axes)
        access_attempt=AccessAttempt.objects.create(
            username="guesser", ip_address="127.0.0.9", failures_since_start=2, attempt_time=NOW
        ),
        access_log=AccessLog.objects.create(
            username="guesser", ip_address="127.0.0.9", attempt_time=NOW
        ),
        access_failure=AccessFailureLog.objects.create(
            username="guesser", ip_address="127.0.0.9", attempt_time=NOW
        ),
        webhook_endpoint=endpoint,
        whmcs_client=WhmcsClient.objects.create(client=a.client, whmcs_client_id=7),
        whmcs_push=WhmcsPush.objects.create(item=a.item, status=PushStatus.FAILED),
        webhook_delivery=WebhookDelivery.objects.create(
            endpoint=endpoint,
            event="period.closed",
            object_key="period:2026-09",
            message_id=WebhookDelivery.message_id_new(),
            payload={"type": "period.closed", "data": {"period": "2026-09"}},
            next_attempt_at=NOW,
        ),
        # An e-mail from an unknown sender: in the inbound list and the unmatched one.
        inbound_mail=inbound_mail_receive(
            raw=b"From: someone@unknown.test\r\nSubject: Hello\r\n\r\nWho are you?\r\n",
            mailbox="desk@imap.test:993/INBOX",
        ),
    )


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker):
    """Built once inside a transaction that is rolled back when the module ends; each test's
    ``db`` fixture nests a savepoint in it."""
    import time_machine

    with django_db_blocker.unblock():
        atomic = transaction.atomic()
        atomic.__enter__()
        try:
            # A transactional test run before (the browser tests) leaves a flushed database.
            roles_and_schedule_restore()
            with time_machine.travel(NOW, tick=False):
                built = world_build()
        except BaseException:
            atomic.__exit__(None, None, None)
            raise
    yield built
    with django_db_blocker.unblock():
        transaction.set_rollback(True)
        atomic.__exit__(None, None, None)
