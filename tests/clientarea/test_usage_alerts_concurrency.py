"""Alert checks and sends at the same moment on PostgreSQL: one alert, one e-mail per user."""

import datetime as dt
import threading
from decimal import Decimal

import pytest
from django.core import mail
from django.db import connection

from billing.models import DeliveryStatus, UsageAlert, UsageAlertDelivery
from billing.services.alerts import usage_alert_send, usage_alerts_check
from conftest import need_service
from supportbilling.periods import local_today
from tests.factories import (
    ClientUserFactory,
    SubscriptionFactory,
    TicketFactory,
    TimeEntryFactory,
    UserFactory,
)


@pytest.fixture
def postgres_only(settings):
    """Decided before the database is set up: a skipped transactional test would still flush
    the database (and the groups the migrations create) on its way out."""
    if "postgresql" not in settings.DATABASES["default"]["ENGINE"]:
        need_service("PostgreSQL")


@pytest.fixture(autouse=True)
def _eager(celery_eager):
    pass


def test_concurrent_checks_send_each_alert_once(postgres_only, transactional_db):
    # given a client user whose subscription has just reached 100 % of its 10 h
    member = ClientUserFactory()
    subscription = SubscriptionFactory(client=member.client, start_date=dt.date(2026, 1, 1))
    TimeEntryFactory(
        ticket=TicketFactory(subscription=subscription),
        operator=UserFactory(is_staff=True),
        hours=Decimal("10.00"),
        work_date=local_today(),
    )
    # when four checks run at once, each in its own connection
    barrier = threading.Barrier(4)
    errors = []

    def run():
        try:
            barrier.wait()
            usage_alerts_check()
        except Exception as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # then each threshold is recorded once, and one e-mail (100 %, covering 80 %) goes out
    assert errors == []
    assert sorted(UsageAlert.objects.values_list("threshold", flat=True)) == [80, 100]
    assert len(mail.outbox) == 1
    assert all(message.to == [member.user.email] for message in mail.outbox)


def test_concurrent_sends_of_one_alert_mail_each_user_once(postgres_only, transactional_db):
    # given an alert of a client with two users, not sent yet
    first = ClientUserFactory()
    second = ClientUserFactory(client=first.client)
    subscription = SubscriptionFactory(client=first.client, start_date=dt.date(2026, 1, 1))
    alert = UsageAlert.objects.create(
        subscription=subscription, period=local_today().replace(day=1), threshold=80
    )
    # when four workers send it at once (a task delivered twice, a check re-queuing it)
    barrier = threading.Barrier(4)
    errors = []

    def run():
        try:
            barrier.wait()
            usage_alert_send(alert_id=alert.pk)
        except Exception as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # then each user got it once, and it is done
    assert errors == []
    assert sorted(m.to[0] for m in mail.outbox) == sorted([first.user.email, second.user.email])
    assert UsageAlertDelivery.objects.filter(status=DeliveryStatus.SENT).count() == 2
    alert.refresh_from_db()
    assert alert.sent_at is not None
