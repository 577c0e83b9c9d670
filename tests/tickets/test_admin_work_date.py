"""The workspace's log form has a work date (today by default, in TIME_ZONE), so time is
back-dated in one step; the time service's date rules refuse it beside the field."""

import datetime as dt
import html as html_lib
import re
from decimal import Decimal

import pytest
from django.urls import reverse

from packages.models import BillingPeriod, PeriodStatus, SubscriptionStatus
from tests.factories import OperatorFactory, SubscriptionFactory, TicketFactory, package_with_prices
from tickets.models import AuditAction, AuditEvent, TimeEntry

pytestmark = pytest.mark.django_db
NOW = dt.datetime(2026, 11, 20, 10, 0, tzinfo=dt.UTC)
TODAY = NOW.date()


@pytest.fixture(autouse=True)
def frozen(time_machine):
    time_machine.move_to(NOW, tick=False)


@pytest.fixture
def operator(client):
    user = OperatorFactory(username="olga")
    client.force_login(user)
    return user


@pytest.fixture
def ticket():
    package = package_with_prices(name="Gold", included_hours=Decimal("10.00"))
    subscription = SubscriptionFactory(package=package, start_date=dt.date(2026, 9, 1))
    return TicketFactory(subscription=subscription, subject="VPN down")


def log(client, ticket, **fields):
    url = reverse("admin:tickets_ticket_log", args=[ticket.pk])
    return client.post(url, {"hours": "1", "note": "typed", **fields})


def text(html: str) -> str:
    return re.sub(r"\s+", " ", html_lib.unescape(re.sub(r"<[^>]+>", " ", html))).strip()


def beside_work_date(response) -> str:
    """The message shown right under the work-date field ("" when there is none)."""
    html = response.content.decode()
    match = re.search(r'<p [^>]*id="log-work-date-error"([^>]*)>(.*?)</p>', html, re.S)
    assert match, "no place for the work date's message"
    return "" if " hidden" in match[1] else text(match[2])


def top_messages(response) -> str:
    html = response.content.decode()
    match = re.search(r'<ul class="messagelist">(.*?)</ul>', html, re.S)
    return text(match[1]) if match else ""


def work_date_value(response) -> str:
    html = response.content.decode()
    return re.search(
        r'<input type="date" name="work_date" id="log-work-date" value="([^"]*)"', html
    )[1]


def test_the_work_date_is_today_by_default(client, operator, ticket):
    page = client.get(reverse("admin:tickets_ticket_change", args=[ticket.pk]))
    assert work_date_value(page) == "2026-11-20"
    assert beside_work_date(page) == ""


def test_today_is_the_day_in_the_projects_time_zone(client, operator, ticket, settings):
    # given a project whose day has already turned (10:00 UTC is midnight in Kiritimati)
    settings.TIME_ZONE = "Pacific/Kiritimati"
    page = client.get(reverse("admin:tickets_ticket_change", args=[ticket.pk]))
    assert work_date_value(page) == "2026-11-21"
    # and time logged with no date goes to that day
    assert log(client, ticket, work_date="").status_code == 302
    assert TimeEntry.objects.get().work_date == dt.date(2026, 11, 21)


def test_back_dating_in_one_step(client, operator, ticket):
    # when the operator logs time on an earlier day of an open month
    response = log(client, ticket, work_date="2026-10-28")
    # then the entry has that date, and the message says so
    assert response.status_code == 302
    entry = TimeEntry.objects.get()
    assert (entry.work_date, entry.hours, entry.note) == (
        dt.date(2026, 10, 28),
        Decimal("1.00"),
        "typed",
    )
    assert "Saved 1 h on 2026-10-28." in text(client.get(response["Location"]).content.decode())
    event = AuditEvent.objects.get(action=AuditAction.TIME_LOGGED)
    assert event.detail["work_date"] == "2026-10-28"


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("2026-11-21", "The work date cannot be in the future."),
        ("2026-08-31", "The work date is outside the subscription's dates (2026-09-01 to open)."),
        ("2026-07-31", "2026-07 is before billing began (2026-08)"),
        ("2026-10-14", "2026-10 is closed: its time can no longer be logged"),
        ("soon", "Enter a valid date."),
    ],
)
def test_a_refused_work_date_is_shown_beside_the_field(client, operator, ticket, typed, message):
    # given billing began in August and October closed
    BillingPeriod.objects.get_or_create(month=dt.date(2026, 8, 1))
    BillingPeriod.objects.create(month=dt.date(2026, 10, 1), status=PeriodStatus.CLOSED)
    # when the operator logs time on a date the rules refuse
    response = log(client, ticket, work_date=typed)
    # then nothing is saved, the message is beside the date, and what was typed stays
    assert response.status_code == 400
    assert not TimeEntry.objects.exists()
    assert message in beside_work_date(response)
    assert message not in top_messages(response)
    assert work_date_value(response) == typed
    assert 'value="typed"' in response.content.decode()


def test_a_refused_date_of_a_subscription_that_ended(client, operator, ticket):
    ticket.subscription.end_date = dt.date(2026, 11, 10)
    ticket.subscription.save()
    response = log(client, ticket, work_date="2026-11-12")
    assert response.status_code == 400
    assert "outside the subscription's dates (2026-09-01 to 2026-11-10)" in beside_work_date(
        response
    )


def test_refusals_about_the_ticket_stay_at_the_top(client, operator, ticket):
    # given a suspended subscription
    ticket.subscription.status = SubscriptionStatus.SUSPENDED
    ticket.subscription.save()
    response = log(client, ticket, work_date="2026-11-18")
    assert response.status_code == 400
    assert "The subscription is suspended" in top_messages(response)
    assert beside_work_date(response) == ""
