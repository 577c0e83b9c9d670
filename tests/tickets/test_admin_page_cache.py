"""The ticket page's lists come from the fragment cache only while nothing they show has
changed: every change shows on the next view, at the same frozen moment too."""

import datetime as dt
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from packages.models import BillingPeriod, PeriodStatus
from tests.factories import OperatorFactory, TicketFactory, TicketMessageFactory, TimeEntryFactory
from tickets import services
from tickets.models import AuditAction, NotificationEvent, TicketNotification, TimeEntry

pytestmark = pytest.mark.django_db
NOW = dt.datetime(2026, 11, 20, 10, 0, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def frozen(time_machine):
    time_machine.move_to(NOW, tick=False)  # every change shares one timestamp


@pytest.fixture
def page(client):
    operator = OperatorFactory(username="olga")
    client.force_login(operator)
    ticket = TicketFactory()
    entry = TimeEntryFactory(
        ticket=ticket, operator=operator, work_date=dt.date(2026, 11, 10), note="First look"
    )
    url = reverse("admin:tickets_ticket_change", args=[ticket.pk])

    def html() -> str:
        response = client.get(url)
        assert response.status_code == 200
        return response.content.decode()

    assert "First look" in html()  # written and cached
    return {"ticket": ticket, "entry": entry, "operator": operator, "html": html}


def test_a_new_message_shows_on_the_next_view(page):
    TicketMessageFactory(ticket=page["ticket"], body="Any news on the VPN?")
    assert "Any news on the VPN?" in page["html"]()


def test_an_entry_changed_at_the_same_moment_shows_changed(page):
    services.time_entry_change(
        entry=page["entry"], actor=page["operator"], hours="2.5", note="Found the cause"
    )
    html = page["html"]()
    row = html.split(f'<tr id="entry-{page["entry"].pk}"')[1].split("</tr>")[0]
    assert "Found the cause" in row and "First look" not in row
    assert '<span id="entries-total">2.5</span>' in html


def test_a_deleted_entry_is_gone_and_a_logged_one_shows(page):
    services.time_entry_delete(entry=page["entry"], actor=page["operator"])
    html = page["html"]()
    assert f'<tr id="entry-{page["entry"].pk}"' not in html and "No time logged yet." in html
    assert AuditAction.TIME_DELETED.label in html  # the audit trail
    services.time_entry_log(
        ticket=page["ticket"],
        operator=page["operator"],
        hours="0.75",
        work_date=dt.date(2026, 11, 12),
        note="Second look",
    )
    html = page["html"]()
    assert "Second look" in html and '<span id="entries-total">0.75</span>' in html


def test_an_e_mail_sent_shows_its_new_status(page):
    mail = TicketNotification.objects.create(
        ticket=page["ticket"],
        event=NotificationEvent.CLIENT_REPLY,
        event_key="test:cache",
        user=page["operator"],
        address="olga@desk.test",
        next_attempt_at=timezone.now(),
    )
    assert "olga@desk.test" in page["html"]()
    TicketNotification.objects.filter(pk=mail.pk).update(status="sent", sent_at=timezone.now())
    row = page["html"]().split(f'id="mail-{mail.pk}"')[1].split("</tr>")[0]
    assert "Sent" in row and "2026-11-20" in row


def test_a_closed_month_locks_its_entries_on_the_next_view(page):
    BillingPeriod.objects.create(month=dt.date(2026, 11, 1), status=PeriodStatus.CLOSED)
    html = page["html"]()
    assert 'id="month-2026-11"' in html and f'id="entry-{page["entry"].pk}"' not in html


def test_the_cached_lists_are_the_same_for_the_same_ticket(page):
    # a second view serves the cached lists: the same rows, the same total
    first, second = page["html"](), page["html"]()
    for html in (first, second):
        assert html.count('<tr id="entry-') == 1
    total = first.split('<span id="entries-total">')[1].split("<")[0]
    assert f'<span id="entries-total">{total}</span>' in second
    assert TimeEntry.objects.get(pk=page["entry"].pk).hours == Decimal(total)
