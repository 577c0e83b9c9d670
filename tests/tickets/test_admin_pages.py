"""Who may use the workspace, CSRF, constant query counts, the ticket list, the audit trail
on the subscription's page and the operator report."""

import datetime as dt
import html as html_lib
import re
from decimal import Decimal

import pytest
from django.core.cache import caches
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from billing.services.rollup import period_close
from packages.models import BillingPeriod, PeriodStatus
from tests.factories import (
    AdminFactory,
    ClientFactory,
    FinanceFactory,
    OperatorFactory,
    SubscriptionFactory,
    TicketFactory,
    TicketMessageFactory,
    TimeEntryFactory,
    UserFactory,
)
from tests.prepared import prepared_runs
from tickets.models import AuditAction, AuditEvent, NotificationEvent, TicketNotification, TimeEntry
from tickets.services import audit_record

pytestmark = pytest.mark.django_db
NOW = dt.datetime(2026, 11, 20, 10, 0, tzinfo=dt.UTC)
NOVEMBER = dt.date(2026, 11, 10)
OCTOBER = dt.date(2026, 10, 10)


@pytest.fixture(autouse=True)
def frozen(time_machine):
    time_machine.move_to(NOW, tick=False)


def text(response) -> str:
    html = response.content.decode()
    return re.sub(r"\s+", " ", html_lib.unescape(re.sub(r"<[^>]+>", " ", html)))


def change_url(ticket):
    return reverse("admin:tickets_ticket_change", args=[ticket.pk])


# --- who may do what -------------------------------------------------------------------------


def test_finance_sees_the_ticket_but_cannot_log_time(client):
    ticket = TicketFactory()
    TimeEntryFactory(ticket=ticket, work_date=NOVEMBER)
    client.force_login(FinanceFactory())
    response = client.get(change_url(ticket))
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="entries"' in html
    for control in ('id="log-form"', 'id="timer-start"', 'id="reply-form"', ">Delete<"):
        assert control not in html
    for name in ("log", "timer_start", "reply", "tracking", "subscription", "status"):
        response = client.post(reverse(f"admin:tickets_ticket_{name}", args=[ticket.pk]))
        assert response.status_code == 403, name
    service = reverse("admin:tickets_ticket_service_add", args=[ticket.pk])
    assert client.post(service, {"package": 1}).status_code == 403
    assert TimeEntry.objects.count() == 1


def test_non_staff_and_anonymous_are_sent_to_the_login(client):
    ticket = TicketFactory()
    log = reverse("admin:tickets_ticket_log", args=[ticket.pk])
    assert client.post(log, {"hours": "1"}).status_code == 302
    client.force_login(UserFactory())
    response = client.post(log, {"hours": "1"})
    assert response.status_code == 302 and "/login/" in response["Location"]
    assert not TimeEntry.objects.exists()


def test_superuser_can_log_time(client):
    ticket = TicketFactory()
    client.force_login(AdminFactory())
    response = client.post(reverse("admin:tickets_ticket_log", args=[ticket.pk]), {"hours": "1"})
    assert response.status_code == 302
    assert TimeEntry.objects.get().hours == Decimal("1.00")


def test_every_action_needs_the_csrf_token():
    ticket = TicketFactory()
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(OperatorFactory())
    urls = [
        reverse(f"admin:tickets_ticket_{name}", args=[ticket.pk])
        for name in ("log", "timer_start", "reply", "tracking", "subscription", "status")
    ]
    urls.append(reverse("admin:tickets_ticket_service_add", args=[ticket.pk]))
    for url in urls:
        assert browser.post(url, {"hours": "1"}).status_code == 403, url
    assert not TimeEntry.objects.exists()
    assert 'name="csrfmiddlewaretoken"' in browser.get(change_url(ticket)).content.decode()


def test_the_admin_cannot_edit_or_delete_entries_timers_or_the_audit_trail(client):
    entry = TimeEntryFactory(work_date=NOVEMBER)
    event = audit_record(action=AuditAction.TIME_LOGGED, ticket=entry.ticket)
    client.force_login(AdminFactory())
    assert (
        client.post(reverse("admin:tickets_auditevent_delete", args=[event.pk])).status_code == 403
    )
    assert (
        client.post(
            reverse("admin:tickets_auditevent_change", args=[event.pk]), {"action": "time_deleted"}
        ).status_code
        == 403
    )
    assert (
        client.post(
            reverse("admin:tickets_timeentry_delete", args=[entry.pk]), {"post": "yes"}
        ).status_code
        == 403
    )
    assert AuditEvent.objects.get(pk=event.pk).action == AuditAction.TIME_LOGGED
    assert TimeEntry.objects.filter(pk=entry.pk).exists()


# --- query counts ----------------------------------------------------------------------------


def ticket_with(size: int):
    ticket = TicketFactory()
    operators = [OperatorFactory() for _ in range(3)]
    for index in range(size):
        TicketMessageFactory(ticket=ticket, body=f"message {index}")
        TimeEntryFactory(
            ticket=ticket,
            operator=operators[index % 3],
            work_date=OCTOBER if index % 2 else NOVEMBER,
        )
        audit_record(action=AuditAction.TIME_LOGGED, actor=operators[index % 3], ticket=ticket)
        TicketNotification.objects.create(
            ticket=ticket,
            event=NotificationEvent.CLIENT_REPLY,
            event_key=f"test:{ticket.pk}:{index}",
            user=operators[index % 3],
            address=f"mail{index}@desk.test",
            next_attempt_at=timezone.now(),
        )
    return ticket


def test_ticket_page_queries_do_not_grow_with_messages_or_entries(
    postgres, client, django_assert_num_queries
):
    # given a ticket with 5 and one with 200 messages, entries (in two months) and events
    client.force_login(OperatorFactory())
    small, large = ticket_with(5), ticket_with(200)
    client.get(change_url(small))  # warm the session and permission caches alike
    caches["fragments"].clear()
    with CaptureQueriesContext(connection) as small_queries:
        assert client.get(change_url(small)).status_code == 200
    # with the trail's month-close rows (two queries) and the stamp of the cached lists (read
    # again in the snapshot they are written in: two)
    assert len(small_queries) <= 23
    # then the page of 200 costs exactly as many queries as the page of 5
    with django_assert_num_queries(len(small_queries)):
        response = client.get(change_url(large))
    html = response.content.decode()
    assert "message 199" in html
    assert html.count('<tr id="entry-') == 200
    assert html.count('<tr id="mail-') == 200  # the mail log
    # and shown again, its lists and choices come from the fragment cache: none of their
    # queries (conversation and files, entries and closed months, trail, mail log: 9;
    # operators, the client's subscriptions, packages offered: 3), nor the stamp read again
    # in their snapshot, is run again
    with django_assert_num_queries(len(small_queries) - 13):
        again = client.get(change_url(large)).content.decode()
    assert _without_csrf_tokens(again) == _without_csrf_tokens(html)


def _without_csrf_tokens(html: str) -> str:
    return re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", html)


def test_ticket_page_shown_again_costs_exactly_this_many_queries(
    postgres, client, django_assert_num_queries
):
    # given an operator on a ticket's page shown once (its lists written and cached)
    client.force_login(OperatorFactory())
    ticket = ticket_with(20)
    client.get(change_url(ticket))
    # then showing it again costs: session, user, ticket (with its subscription), the stamp
    # of its lists and choices, the user's and the groups' permissions (one query,
    # supportbilling.auth), the subscription's hours of the month (time panel), the
    # operator's timers (header and panel)
    with django_assert_num_queries(7):
        assert client.get(change_url(ticket)).status_code == 200


@pytest.mark.parametrize(
    "fragment",
    [
        # its stamp, and its read of the ticket with client, subscription and assignee: each
        # planned in more time than it runs, prepared once it has run five times
        "tickets_ticketnotification",
        'FROM "tickets_ticket" INNER JOIN "customers_client"',
    ],
)
def test_the_ticket_pages_queries_are_planned_once_per_connection(postgres, client, fragment):
    # given an operator viewing a ticket's page seven times
    client.force_login(OperatorFactory())
    ticket = ticket_with(3)
    for _ in range(7):
        assert client.get(change_url(ticket)).status_code == 200
    # then the query is one prepared statement of the connection, run as such from the view
    # it was prepared on (and by the tests before on the same connection)
    runs = prepared_runs(postgres, fragment)
    assert len(runs) == 1 and runs[0] >= 2


def test_ticket_page_does_not_grow_with_entries_of_closed_months(client):
    # given a ticket with 3 and one with 300 entries in closed months (August, September)
    client.force_login(OperatorFactory())
    for month in (dt.date(2026, 8, 1), dt.date(2026, 9, 1)):
        BillingPeriod.objects.create(month=month, status=PeriodStatus.CLOSED)
    pages = {}
    for size in (3, 300):
        ticket = TicketFactory(subject="Retainer")
        operator = OperatorFactory()
        TimeEntry.objects.bulk_create(
            TimeEntry(
                ticket=ticket,
                subscription=ticket.subscription,
                operator=operator,
                hours=Decimal("0.25"),
                work_date=dt.date(2026, 8 + index % 2, 1 + index % 28),
            )
            for index in range(size)
        )
        client.get(change_url(ticket))
        with CaptureQueriesContext(connection) as queries:
            html = client.get(change_url(ticket)).content.decode()
        pages[size] = (len(queries), html)
    # then both pages cost as many queries and show one summary row per month, no entry row
    assert pages[3][0] == pages[300][0]
    for size, (_, html) in pages.items():
        assert html.count('class="sbt-locked sbt-month"') == 2
        assert '<tr id="entry-' not in html
    assert "150 entries" in pages[300][1] and "37.5" in pages[300][1]
    # and the page of 300 is no larger than the page of 3 but for the figures and ids
    assert abs(len(pages[300][1]) - len(pages[3][1])) < 200


# --- the ticket list -------------------------------------------------------------------------


def test_ticket_list_shows_client_subscription_status_and_hours_this_period(client):
    client.force_login(OperatorFactory())
    ticket = TicketFactory(client=ClientFactory(name="Acme"), subject="Backup")
    TimeEntryFactory(ticket=ticket, hours=Decimal("1.25"), work_date=NOVEMBER)
    TimeEntryFactory(ticket=ticket, hours=Decimal("0.50"), work_date=NOVEMBER)
    TimeEntryFactory(ticket=ticket, hours=Decimal("8.00"), work_date=OCTOBER)  # not this period
    response = client.get(reverse("admin:tickets_ticket_changelist"))
    row = text(response).split("Backup")[1]
    assert "Acme" in row
    assert str(ticket.subscription) in row
    assert "Open" in row
    assert "1.75" in row and "9.75" not in row


def test_ticket_list_queries_do_not_grow_with_tickets(client):
    operator = OperatorFactory()
    client.force_login(operator)
    url = reverse("admin:tickets_ticket_changelist")
    for _ in range(3):
        TimeEntryFactory(work_date=NOVEMBER, operator=operator)
    client.get(url)
    with CaptureQueriesContext(connection) as few:
        client.get(url)
    for _ in range(30):
        TimeEntryFactory(work_date=NOVEMBER, operator=operator)
    with CaptureQueriesContext(connection) as many:
        client.get(url)
    assert len(many) == len(few)


def test_ticket_list_filters(client):
    client.force_login(OperatorFactory())
    olga, tom = OperatorFactory(username="olga"), OperatorFactory(username="tom")
    acme = ClientFactory(name="Acme")
    by_olga = TicketFactory(subject="By Olga", subscription=SubscriptionFactory(client=acme))
    by_both = TicketFactory(subject="By both")
    untracked = TicketFactory(subject="Untracked", track_time=False, status="closed")
    TimeEntryFactory(ticket=by_olga, operator=olga, hours=Decimal("1.00"), work_date=NOVEMBER)
    TimeEntryFactory(ticket=by_both, operator=olga, hours=Decimal("1.00"), work_date=NOVEMBER)
    TimeEntryFactory(ticket=by_both, operator=tom, hours=Decimal("2.00"), work_date=NOVEMBER)
    url = reverse("admin:tickets_ticket_changelist")

    def subjects(query):
        response = client.get(url, query)
        assert response.status_code == 200
        return {t.subject for t in response.context["cl"].result_list}

    assert subjects({"operator": olga.pk}) == {"By Olga", "By both"}
    assert subjects({"operator": tom.pk}) == {"By both"}
    assert subjects({"client__id__exact": acme.pk}) == {"By Olga"}
    assert subjects({"track_time__exact": "0"}) == {"Untracked"}
    assert subjects({"status__exact": "closed"}) == {"Untracked"}
    # filtering by an operator does not change the ticket's hours (3.00, not 1.00 or 6.00)
    response = client.get(url, {"operator": tom.pk})
    assert [t.hours_this_period for t in response.context["cl"].result_list] == [Decimal("3.00")]
    assert untracked.pk not in {t.pk for t in response.context["cl"].result_list}


# --- audit trail on the ticket and the subscription ------------------------------------------


def test_audit_trail_on_the_ticket_and_the_subscription(client):
    operator = OperatorFactory(username="olga")
    client.force_login(operator)
    ticket = TicketFactory()
    client.post(reverse("admin:tickets_ticket_log", args=[ticket.pk]), {"hours": "1.5"})
    entry = TimeEntry.objects.get()
    client.post(
        reverse("admin:tickets_ticket_entry_change", args=[ticket.pk, entry.pk]),
        {"hours": "2", "work_date": "2026-11-20", "note": ""},
    )
    ticket_page = text(client.get(change_url(ticket)))
    timeline = ticket_page.split("Audit trail")[1]
    assert "olga Time logged" in timeline
    assert "olga Time changed" in timeline and "hours 1.5 h → 2 h" in timeline
    # the subscription's admin page has the same events (the admin needs view permission)
    client.force_login(AdminFactory())
    subscription_page = text(
        client.get(reverse("admin:packages_subscription_change", args=[ticket.subscription_id]))
    )
    timeline = subscription_page.split("Audit trail")[1]
    assert "Time logged" in timeline and "Time changed" in timeline
    assert f"#{ticket.pk}" in timeline


# --- the operator report ---------------------------------------------------------------------


@pytest.fixture
def report_entries():
    """Entries of two operators on two clients in November, October and September."""
    olga, tom = OperatorFactory(username="olga"), OperatorFactory(username="tom")
    acme = TicketFactory(subscription=SubscriptionFactory(client=ClientFactory(name="Acme")))
    globex = TicketFactory(subscription=SubscriptionFactory(client=ClientFactory(name="=Globex")))
    for ticket, operator, hours, day in [
        (acme, olga, "1.25", NOVEMBER),
        (acme, olga, "0.75", NOVEMBER),
        (globex, olga, "3.00", NOVEMBER),
        (globex, tom, "0.50", NOVEMBER),
        (acme, tom, "4.00", OCTOBER),
        (acme, tom, "9.00", dt.date(2026, 9, 30)),
    ]:
        TimeEntryFactory(ticket=ticket, operator=operator, hours=Decimal(hours), work_date=day)


def report_rows(response) -> list[tuple[str, str, str]]:
    html = response.content.decode()
    rows = re.findall(
        r'<tr class="report-row"[^>]*><td>(.*?)</td><td[^>]*>(.*?)</td>'
        r"<td[^>]*>(.*?)</td>",
        html,
    )
    return [(html_lib.unescape(name), hours, entries) for name, hours, entries in rows]


def test_operator_report_figures(client, report_entries):
    client.force_login(OperatorFactory())
    url = reverse("admin:tickets_timeentry_report")
    # when the report is opened without a range: from the start of last month to today
    response = client.get(url)
    assert response.status_code == 200
    assert report_rows(response) == [("olga", "5", "3"), ("tom", "4.5", "2")]
    page = text(response)
    assert "2026-10-01 to 2026-11-20: 9.5 h in 5 entries" in page
    assert "Total 9.5 5" in page
    # when she chooses November only, per client: one hours format, correct plurals
    response = client.get(url, {"from": "2026-11-01", "to": "2026-11-30", "view": "client"})
    assert report_rows(response) == [("=Globex", "3.5", "2"), ("Acme", "2", "2")]
    assert "2026-11-01 to 2026-11-30: 5.5 h in 4 entries" in text(response)
    response = client.get(url, {"from": "2026-10-01", "to": "2026-10-31"})
    assert report_rows(response) == [("tom", "4", "1")]
    assert "4 h in 1 entry" in text(response) and "1 entries" not in text(response)
    # and a range of September to November covers all six entries
    response = client.get(url, {"from": "2026-09-01", "to": "2026-11-30"})
    assert "18.5 h in 6 entries" in text(response)
    # and the time entries list links to it
    changelist = client.get(reverse("admin:tickets_timeentry_changelist")).content.decode()
    assert reverse("admin:tickets_timeentry_report") in changelist


def test_operator_report_csv_has_the_same_rows(client, report_entries):
    client.force_login(OperatorFactory())
    url = reverse("admin:tickets_timeentry_report")
    query = {"from": "2026-11-01", "to": "2026-11-30", "view": "client"}
    response = client.get(url, {**query, "format": "csv"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert "operator-report-client-2026-11-01-2026-11-30.csv" in response["Content-Disposition"]
    lines = response.content.decode().splitlines()
    # a client named "=Globex" is text, never a formula
    assert lines == ["Client,Hours,Entries", "'=Globex,3.5,2", "Acme,2,2"]


@pytest.mark.parametrize(
    "query, message",
    [
        ({"from": "2026-13-01"}, "Enter a date as YYYY-MM-DD"),
        ({"to": "yesterday"}, "Enter a date as YYYY-MM-DD"),
        ({"from": "2026-11-02", "to": "2026-11-01"}, "The end date is before the start date."),
        ({"from": "1990-01-01", "to": "2026-11-01"}, "at most ten years"),
        ({"view": "everyone"}, "Select a valid choice"),
        ({"from": "9" * 40}, "Enter a date as YYYY-MM-DD"),
    ],
)
def test_operator_report_refuses_a_bad_range_with_a_clear_message(
    client, report_entries, query, message
):
    client.force_login(OperatorFactory())
    url = reverse("admin:tickets_timeentry_report")
    for extra in ({}, {"format": "csv"}):
        response = client.get(url, {**query, **extra})
        assert response.status_code == 400
        assert message in text(response)
        assert 'class="report-row"' not in response.content.decode()


def test_operator_report_needs_staff(client):
    client.force_login(UserFactory())
    assert client.get(reverse("admin:tickets_timeentry_report")).status_code == 302


def test_a_billed_period_shows_on_the_ticket_and_locks_its_entries(client):
    # given October time on a ticket, and October closed by the rollup
    ticket = TicketFactory()
    entry = TimeEntryFactory(ticket=ticket, hours=Decimal("2.00"), work_date=OCTOBER)
    period_close(month=dt.date(2026, 10, 1))
    client.force_login(OperatorFactory())
    # when the operator opens the ticket
    response = client.get(change_url(ticket))
    # then the timeline says the period was billed, and the entry is billed and locked
    timeline = text(response).split("Audit trail")[1]
    assert "system Period billed" in timeline and "period 2026-10" in timeline
    # (a closed month is one summary row; its entries are listed on demand)
    html = response.content.decode()
    assert f'id="entry-{entry.pk}"' not in html
    month_row = html.split('id="month-2026-10"')[1].split("</tr>")[0]
    assert "1 entry" in month_row and "locked" in month_row and ">2<" in month_row
    listed = client.get(change_url(ticket), {"month": "2026-10"}).content.decode()
    row = listed.split(f'id="entry-{entry.pk}"')[1].split("</tr>")[0]
    assert "not billed" not in row and "billed" in row and "Edit" not in row
