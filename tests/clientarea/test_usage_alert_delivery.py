"""Usage alert e-mails through a real SMTP server (aiosmtpd, in a thread): one message per
recipient, each person served once, a refused address given up after a bounded number of
tries, temporary failures retried with back-off, the figures of the moment the threshold was
crossed, links to the portal (docs/decisions.md, "Usage alert delivery")."""

import datetime as dt
from decimal import Decimal
from urllib.parse import urlsplit

import pytest
from django.contrib.auth import get_user_model
from django.core import mail

from billing.models import DeliveryStatus, UsageAlert, UsageAlertDelivery
from billing.services.alerts import usage_alert_send, usage_alerts_check
from customers.models import NotificationPreference
from customers.services import notification_preference_set
from tests.clientarea.conftest import NOW, OCTOBER
from tests.factories import (
    ClientUserFactory,
    FinanceFactory,
    SubscriptionFactory,
    TicketFactory,
    TimeEntryFactory,
)
from tests.mail import free_port

pytestmark = pytest.mark.django_db

ACCEPTED = "ok@client.test"
REFUSED = "gone@client.test"


@pytest.fixture(autouse=True)
def _eager(celery_eager):
    """Queued e-mail tasks run in this process, as the embedded default does."""


@pytest.fixture
def subscription(portal_user):
    """10 h included; the client's two users are ok@client.test and gone@client.test."""
    portal_user.user.email = ACCEPTED
    portal_user.user.save(update_fields=["email"])
    ClientUserFactory(client=portal_user.client, user__email=REFUSED)
    subscription = SubscriptionFactory(client=portal_user.client)
    subscription.ticket = TicketFactory(subscription=subscription)
    return subscription


def log(subscription, hours: str, day: int = 10) -> None:
    TimeEntryFactory(
        ticket=subscription.ticket, hours=Decimal(hours), work_date=dt.date(2026, 10, day)
    )


def check(django_capture_on_commit_callbacks, time_machine, minutes: int = 0) -> None:
    """The periodic check, ``minutes`` after NOW, running the e-mail tasks it queues."""
    time_machine.move_to(NOW + dt.timedelta(minutes=minutes), tick=False)
    with django_capture_on_commit_callbacks(execute=True):
        usage_alerts_check()


def delivery(address: str) -> UsageAlertDelivery:
    return UsageAlertDelivery.objects.get(address=address)


def test_a_refused_address_neither_blocks_nor_repeats_the_others(
    smtp_server, subscription, settings, time_machine, django_capture_on_commit_callbacks
):
    # given a server that refuses gone@client.test at RCPT (550), and 8 h of 10 logged
    smtp_server.refuse[REFUSED] = []
    settings.USAGE_ALERT_REFUSED_MAX_ATTEMPTS = 3
    log(subscription, "8.00")
    # when the periodic check runs every 11 minutes for two hours
    for minutes in range(0, 121, 11):
        check(django_capture_on_commit_callbacks, time_machine, minutes)
    # then the accepted user got exactly one message, addressed to them alone
    [message] = smtp_server.to(ACCEPTED)
    assert [rcpts for rcpts, _ in smtp_server.received] == [[ACCEPTED]]
    assert "80% of your included support hours used" in message["Subject"]
    assert delivery(ACCEPTED).status == DeliveryStatus.SENT
    # and the refused address was tried 3 times, is marked failed, and not tried again
    assert smtp_server.refusals == [REFUSED] * 3
    refused = delivery(REFUSED)
    assert (refused.status, refused.attempts) == (DeliveryStatus.FAILED, 3)
    assert refused.last_error.startswith("550 5.1.1")
    # and the alert counts as done
    assert UsageAlert.objects.get().sent_at is not None
    # and a later check sends nothing to anyone
    check(django_capture_on_commit_callbacks, time_machine, 240)
    assert len(smtp_server.received) == 1 and len(smtp_server.refusals) == 3


def test_a_temporary_refusal_is_retried_with_back_off_and_delivered_once(
    smtp_server, subscription, time_machine, django_capture_on_commit_callbacks
):
    # given a server that answers 451 (try again later) to the first two RCPTs of one user
    smtp_server.refuse[REFUSED] = ["451 4.7.1 Greylisted, try again later"] * 2
    log(subscription, "8.00")
    # when the alert goes out, and checks run 2 and 11 minutes later
    check(django_capture_on_commit_callbacks, time_machine, 0)
    check(django_capture_on_commit_callbacks, time_machine, 2)
    # then the second try waits for its back-off (5 minutes and the check's grace period)
    assert smtp_server.refusals == [REFUSED]
    assert delivery(REFUSED).status == DeliveryStatus.PENDING
    # when later checks run
    for minutes in (11, 22, 33, 44):
        check(django_capture_on_commit_callbacks, time_machine, minutes)
    # then the user got the alert once, on the third try; the other user once too
    assert smtp_server.refusals == [REFUSED] * 2
    assert len(smtp_server.to(REFUSED)) == 1 and len(smtp_server.to(ACCEPTED)) == 1
    assert (delivery(REFUSED).status, delivery(REFUSED).attempts) == (DeliveryStatus.SENT, 3)
    assert UsageAlert.objects.get().sent_at is not None


def test_an_unreachable_server_is_retried_not_given_up_after_three_tries(
    subscription, settings, time_machine, django_capture_on_commit_callbacks
):
    # given nothing listening on the SMTP port (connection refused)
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", free_port()
    settings.USAGE_ALERT_REFUSED_MAX_ATTEMPTS, settings.USAGE_ALERT_MAX_ATTEMPTS = 3, 5
    log(subscription, "8.00")
    # when four attempts fail
    for minutes in (0, 11, 22, 44):
        check(django_capture_on_commit_callbacks, time_machine, minutes)
    # then nobody is given up on yet: a temporary failure, retried later
    assert set(UsageAlertDelivery.objects.values_list("status", "attempts")) == {
        (DeliveryStatus.PENDING, 4)
    }
    assert "ConnectionRefusedError" in delivery(ACCEPTED).last_error
    assert UsageAlert.objects.get().sent_at is None
    # when the fifth fails too, after its back-off
    check(django_capture_on_commit_callbacks, time_machine, 44 + 41)
    # then they are given up (USAGE_ALERT_MAX_ATTEMPTS) and the alert is done
    assert set(UsageAlertDelivery.objects.values_list("status", "attempts")) == {
        (DeliveryStatus.FAILED, 5)
    }
    assert UsageAlert.objects.get().sent_at is not None


def test_jumping_from_50_to_110_percent_sends_one_email(
    smtp_server, subscription, time_machine, django_capture_on_commit_callbacks
):
    # given 5 h of 10, checked
    log(subscription, "5.00")
    check(django_capture_on_commit_callbacks, time_machine, 0)
    # when 6 h more reach 110 %, and checks run
    log(subscription, "6.00", day=11)
    for minutes in (5, 16, 27):
        check(django_capture_on_commit_callbacks, time_machine, minutes)
    # then each user got one e-mail, saying all hours are used, with the figures
    assert len(smtp_server.received) == 2
    [message] = smtp_server.to(ACCEPTED)
    assert message["Subject"].startswith("All included support hours used")
    text = message.get_payload()[0].get_payload(decode=True).decode()
    assert "Used so far: 11.00 h" in text and "Overtime so far: 1.00 h" in text


def test_the_email_states_the_figures_of_the_moment_the_threshold_was_crossed(
    subscription, time_machine, django_capture_on_commit_callbacks
):
    # given a check that records the 80 % alert at 8 h, its e-mail not sent yet
    log(subscription, "8.00")
    with django_capture_on_commit_callbacks(execute=False):
        usage_alerts_check()
    # when 1.5 h more are logged before it goes out
    log(subscription, "1.50", day=11)
    usage_alert_send(alert_id=UsageAlert.objects.get().pk)
    # then it tells the figures the threshold was crossed with
    body = mail.outbox[0].body
    assert "Used so far: 8.00 h" in body and "Left: 2.00 h" in body
    assert "80% used" in body


def test_the_email_has_portal_links_a_configured_sender_and_an_html_part(
    subscription, settings, django_capture_on_commit_callbacks
):
    settings.SITE_URL = "https://support.example.com"
    settings.USAGE_ALERT_FROM_EMAIL = "Support alerts <alerts@support.example.com>"
    log(subscription, "8.00")

    with django_capture_on_commit_callbacks(execute=True):
        usage_alerts_check()

    message = mail.outbox[0]
    link = f"https://support.example.com/subscriptions/{subscription.pk}/"
    assert message.from_email == "Support alerts <alerts@support.example.com>"
    assert link in message.body
    [(html, mimetype)] = message.alternatives
    assert mimetype == "text/html"
    assert f'href="{link}"' in html and "<strong>80%</strong>" in html


def test_a_claim_whose_worker_died_is_sent_again_only_after_it_lapses(
    subscription, time_machine, django_capture_on_commit_callbacks
):
    # given a worker that claimed the deliveries and died before reporting (the one window)
    alert = UsageAlert.objects.create(subscription=subscription, period=OCTOBER, threshold=80)
    for address in (ACCEPTED, REFUSED):
        UsageAlertDelivery.objects.create(
            alert=alert,
            address=address,
            status=DeliveryStatus.SENDING,
            attempts=1,
            next_attempt_at=NOW + dt.timedelta(minutes=10),
        )
    # when checks run while its claim holds, and after it lapsed
    check(django_capture_on_commit_callbacks, time_machine, 9)
    assert mail.outbox == []
    check(django_capture_on_commit_callbacks, time_machine, 11)
    check(django_capture_on_commit_callbacks, time_machine, 22)
    # then each address is tried once more, and no more
    assert sorted(m.to[0] for m in mail.outbox) == [REFUSED, ACCEPTED]
    assert set(UsageAlertDelivery.objects.values_list("status", "attempts")) == {
        (DeliveryStatus.SENT, 2)
    }


def test_finance_sees_each_recipient_of_an_alert_in_the_admin(
    client, subscription, settings, django_capture_on_commit_callbacks
):
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    log(subscription, "8.00")
    with django_capture_on_commit_callbacks(execute=True):
        usage_alerts_check()
    alert = UsageAlert.objects.get()
    UsageAlertDelivery.objects.filter(address=REFUSED).update(
        status=DeliveryStatus.FAILED, attempts=3, last_error="550 5.1.1 Recipient address rejected"
    )
    client.force_login(FinanceFactory())

    page = client.get(f"/admin/billing/usagealert/{alert.pk}/change/").content.decode()

    for text in (ACCEPTED, REFUSED, "Sent", "Failed", "550 5.1.1 Recipient address rejected"):
        assert text in page


def test_a_claim_that_keeps_lapsing_is_given_up(
    subscription, settings, time_machine, django_capture_on_commit_callbacks
):
    # given a delivery whose workers died before reporting as many times as it may be tried
    settings.USAGE_ALERT_MAX_ATTEMPTS = 4
    alert = UsageAlert.objects.create(subscription=subscription, period=OCTOBER, threshold=80)
    UsageAlertDelivery.objects.create(
        alert=alert,
        address=ACCEPTED,
        status=DeliveryStatus.SENDING,
        attempts=4,
        next_attempt_at=NOW + dt.timedelta(minutes=10),
    )
    # when a check runs after the last claim lapsed
    check(django_capture_on_commit_callbacks, time_machine, 11)
    # then it is given up rather than tried for ever, and the alert is done
    assert mail.outbox == []
    assert delivery(ACCEPTED).status == DeliveryStatus.FAILED
    assert UsageAlert.objects.get().sent_at is not None


def test_an_address_that_cannot_be_a_header_is_given_up_without_a_crash(
    subscription, settings, time_machine, django_capture_on_commit_callbacks
):
    # given a user whose stored address would inject a header
    ClientUserFactory(client=subscription.client, user__email="x@client.test\nBcc: a@b.test")
    settings.USAGE_ALERT_REFUSED_MAX_ATTEMPTS = 1
    log(subscription, "8.00")
    # when the alert goes out
    check(django_capture_on_commit_callbacks, time_machine, 0)
    # then the others get it, and that address is failed
    assert sorted(m.to[0] for m in mail.outbox) == [REFUSED, ACCEPTED]
    bad = UsageAlertDelivery.objects.get(address__startswith="x@")
    assert bad.status == DeliveryStatus.FAILED and "Invalid address" in bad.last_error
    assert UsageAlert.objects.get().sent_at is not None


def test_a_user_who_turned_usage_alerts_off_gets_none_and_the_others_a_way_out(
    client, smtp_server, subscription, time_machine, django_capture_on_commit_callbacks
):
    # given one of the client's two users turned usage alerts off
    refused_user = get_user_model().objects.get(email=REFUSED)
    notification_preference_set(user=refused_user, usage_alerts=False)
    log(subscription, "8.00")
    # when the alert goes out
    check(django_capture_on_commit_callbacks, time_machine, 0)
    # then only the other user gets it, with a one-click link that works without signing in
    assert smtp_server.refusals == [] and smtp_server.to(REFUSED) == []
    [message] = smtp_server.to(ACCEPTED)
    text = next(p for p in message.walk() if p.get_content_type() == "text/plain")
    link = next(w for w in text.get_payload(decode=True).decode().split() if "/unsubscribe/" in w)
    assert client.post(urlsplit(link).path).status_code == 200
    assert not NotificationPreference.objects.get(user__email=ACCEPTED).usage_alerts
