"""Usage alerts: at 80 % and 100 % of the included hours of a month, each user of the client
gets one e-mail, once per threshold and month; the dashboard shows the same notice."""

import datetime as dt
from decimal import Decimal

import pytest
from django.core import mail

from billing.models import UsageAlert
from billing.selectors.alerts import usage_alert_candidates
from billing.services.alerts import usage_alert_send, usage_alerts_check, usage_alerts_check_queue
from billing.tasks import usage_alerts_check as usage_alerts_check_task
from packages.models import BillingMode, SubscriptionStatus
from tests.clientarea.conftest import NOW, OCTOBER
from tests.factories import (
    ClientUserFactory,
    SubscriptionFactory,
    TicketFactory,
    TimeEntryFactory,
    package_with_prices,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _eager(celery_eager):
    """Run the queued e-mail tasks in this process, as the embedded default does."""


@pytest.fixture
def gold(portal_user):
    """10 h included; the client has two users with e-mail and one without."""
    ClientUserFactory(client=portal_user.client, user__email="second@client.test")
    ClientUserFactory(client=portal_user.client, user__email="")
    subscription = SubscriptionFactory(client=portal_user.client)
    subscription.ticket = TicketFactory(subscription=subscription)
    return subscription


def log(subscription, hours, day=10, month=10):
    TimeEntryFactory(
        ticket=subscription.ticket, hours=Decimal(hours), work_date=dt.date(2026, month, day)
    )


def check(django_capture_on_commit_callbacks, **kwargs):
    with django_capture_on_commit_callbacks(execute=True):
        return usage_alerts_check(**kwargs)


def test_80_percent_sends_one_email_per_user_once(
    gold, portal_user, django_capture_on_commit_callbacks
):
    # given 7.75 h of 10: nothing yet
    log(gold, "7.75")
    assert check(django_capture_on_commit_callbacks) == []
    assert mail.outbox == []
    # when 0.25 h more reach 80 %
    log(gold, "0.25")
    created = check(django_capture_on_commit_callbacks)
    # then each user with an address gets one e-mail
    assert [alert.threshold for alert in created] == [80]
    assert sorted(m.to[0] for m in mail.outbox) == sorted(
        [portal_user.user.email, "second@client.test"]
    )
    assert "80% of your included support hours used" in mail.outbox[0].subject
    assert "Used so far: 8.00 h" in mail.outbox[0].body
    alert = UsageAlert.objects.get()
    assert alert.period == OCTOBER and alert.sent_at is not None
    # and checking again sends nothing more
    check(django_capture_on_commit_callbacks)
    check(django_capture_on_commit_callbacks)
    assert len(mail.outbox) == 2


def test_100_percent_is_a_second_alert(gold, django_capture_on_commit_callbacks):
    log(gold, "8.00")
    check(django_capture_on_commit_callbacks)
    mail.outbox.clear()

    log(gold, "2.00")
    check(django_capture_on_commit_callbacks)
    check(django_capture_on_commit_callbacks)

    assert len(mail.outbox) == 2
    assert "All included support hours used" in mail.outbox[0].subject
    assert sorted(UsageAlert.objects.values_list("threshold", flat=True)) == [80, 100]


def test_jumping_from_50_to_110_percent_sends_one_email_saying_100(
    gold, django_capture_on_commit_callbacks
):
    # given 5 h of 10 (50 %), checked: nothing
    log(gold, "5.00")
    check(django_capture_on_commit_callbacks)
    # when 6 h more take it to 110 % before the next check
    log(gold, "6.00", day=11)
    created = check(django_capture_on_commit_callbacks)
    # then each user gets one e-mail, saying all hours are used
    assert len(mail.outbox) == 2
    assert all("All included support hours used" in m.subject for m in mail.outbox)
    assert "Used so far: 11.00 h" in mail.outbox[0].body
    assert "Overtime so far: 1.00 h" in mail.outbox[0].body
    # and the 80 % threshold is recorded as covered by it, never sent later
    covered = UsageAlert.objects.get(threshold=80)
    assert covered.covered_by == UsageAlert.objects.get(threshold=100)
    assert sorted(alert.threshold for alert in created) == [80, 100]
    mail.outbox.clear()
    check(django_capture_on_commit_callbacks, now=NOW + dt.timedelta(hours=1))
    assert mail.outbox == []


def test_a_new_month_alerts_again(gold, time_machine, django_capture_on_commit_callbacks):
    log(gold, "8.00")
    check(django_capture_on_commit_callbacks)
    time_machine.move_to(dt.datetime(2026, 11, 12, 9, 0, tzinfo=dt.UTC), tick=False)
    check(django_capture_on_commit_callbacks)  # November has no time yet
    assert len(mail.outbox) == 2

    log(gold, "9.00", month=11)
    check(django_capture_on_commit_callbacks)

    assert len(mail.outbox) == 4
    assert UsageAlert.objects.filter(period=dt.date(2026, 11, 1), threshold=80).count() == 1


@pytest.mark.parametrize(
    "package_fields",
    [
        {"included_hours": Decimal("0")},  # pay per hour: nothing to run out of
        {"billing_mode": BillingMode.ONE_TIME, "included_hours": Decimal("10")},
    ],
)
def test_no_alerts_without_monthly_included_hours(
    portal_user, package_fields, django_capture_on_commit_callbacks
):
    subscription = SubscriptionFactory(
        client=portal_user.client, package=package_with_prices(**package_fields)
    )
    subscription.ticket = TicketFactory(subscription=subscription)
    log(subscription, "9.50")

    check(django_capture_on_commit_callbacks)

    assert not UsageAlert.objects.exists() and mail.outbox == []


def test_no_alerts_for_a_suspended_subscription(gold, django_capture_on_commit_callbacks):
    log(gold, "9.00")
    gold.status = SubscriptionStatus.SUSPENDED
    gold.save()
    check(django_capture_on_commit_callbacks)
    assert mail.outbox == []


def test_a_task_delivered_twice_sends_once(gold, django_capture_on_commit_callbacks):
    log(gold, "8.00")
    alert = UsageAlert.objects.create(subscription=gold, period=OCTOBER, threshold=80)

    assert usage_alert_send(alert_id=alert.pk) == 2
    assert usage_alert_send(alert_id=alert.pk) == 0
    assert len(mail.outbox) == 2


def test_an_alert_whose_email_was_lost_is_sent_by_a_later_check(
    gold, time_machine, django_capture_on_commit_callbacks
):
    # given an alert recorded but never sent (the broker was down when it was queued)
    log(gold, "8.00")
    UsageAlert.objects.create(subscription=gold, period=OCTOBER, threshold=80)
    check(django_capture_on_commit_callbacks)
    assert mail.outbox == []  # too recent: its own task may still be on the way
    # when the periodic check runs later
    time_machine.move_to(dt.datetime(2026, 10, 20, 9, 30, tzinfo=dt.UTC), tick=False)
    check(django_capture_on_commit_callbacks)
    # then it goes out, once
    check(django_capture_on_commit_callbacks)
    assert len(mail.outbox) == 2


def test_the_periodic_task_runs_the_check(gold, django_capture_on_commit_callbacks):
    log(gold, "10.00")
    with django_capture_on_commit_callbacks(execute=True):
        assert usage_alerts_check_task.delay().get() == 2  # 100 %, and 80 % covered by it
    assert len(mail.outbox) == 2


def test_the_dashboard_shows_the_same_notice(signed_in, gold, django_capture_on_commit_callbacks):
    log(gold, "8.50")
    check(django_capture_on_commit_callbacks)

    page = signed_in.get("/").content.decode()

    assert "You have used 85% of the 10.00 h included" in page
    assert mail.outbox[0].subject.startswith("80%")


def test_billing_interfaces_can_check_one_subscription_after_logging_time(
    gold, portal_user, django_capture_on_commit_callbacks
):
    other = SubscriptionFactory(client=portal_user.client)
    other.ticket = TicketFactory(subscription=other)
    log(gold, "8.00")
    log(other, "9.00")

    with django_capture_on_commit_callbacks(execute=True):
        usage_alerts_check_queue(subscription_id=gold.pk)

    assert list(UsageAlert.objects.values_list("subscription_id", flat=True)) == [gold.pk]
    assert len(mail.outbox) == 2


def test_a_check_for_one_subscription_reads_and_alerts_only_that_one(
    gold, portal_user, django_capture_on_commit_callbacks, django_assert_num_queries
):
    # given another client's subscription past 80 % as well
    other = SubscriptionFactory()
    other.ticket = TicketFactory(subscription=other)
    log(other, "9")
    log(gold, "8")
    # when time logged on ``gold`` triggers its own check
    with django_assert_num_queries(1):
        candidates = usage_alert_candidates(month=OCTOBER, subscription_ids=[gold.pk])
    assert [usage.subscription.pk for usage in candidates] == [gold.pk]
    created = check(django_capture_on_commit_callbacks, subscription_ids=[gold.pk], now=NOW)
    # then only gold's alert is recorded; the other waits for the periodic check
    assert [alert.subscription_id for alert in created] == [gold.pk]
    assert not UsageAlert.objects.filter(subscription=other).exists()
    assert [a.subscription_id for a in check(django_capture_on_commit_callbacks, now=NOW)] == [
        other.pk
    ]
