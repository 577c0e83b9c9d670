"""The operator's day on the ticket pages: who a ticket is assigned to (list column, filters,
actions, the ticket page), a reply that logs time in the same submit, and the preview of a
reply as the client will see it (Django test client)."""

import datetime as dt
import html as html_lib
import re
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from packages.models import BillingPeriod, PeriodStatus
from tests.factories import (
    AdminFactory,
    FinanceFactory,
    OperatorFactory,
    SubscriptionFactory,
    TicketFactory,
    package_with_prices,
)
from tickets.models import (
    MESSAGE_BODY_MAX_LENGTH,
    AuditAction,
    AuditEvent,
    MessageKind,
    TicketMessage,
    TicketStatus,
    TimeEntry,
)
from tickets.services import ticket_reply_with_time

pytestmark = pytest.mark.django_db
NOW = dt.datetime(2026, 11, 20, 10, 0, tzinfo=dt.UTC)
TODAY = NOW.date()
LIST_URL = "admin:tickets_ticket_changelist"


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
    return TicketFactory(subscription=SubscriptionFactory(package=package), subject="VPN down")


def action_url(name, ticket):
    return reverse(f"admin:tickets_ticket_{name}", args=[ticket.pk])


def page_url(ticket):
    return reverse("admin:tickets_ticket_change", args=[ticket.pk])


def text_of(response) -> str:
    html = response.content.decode()
    return re.sub(r"\s+", " ", html_lib.unescape(re.sub(r"<[^>]+>", " ", html)))


def field_error(response, element_id: str) -> str:
    """The text of the error box beside a field, "" when it is hidden."""
    match = re.search(rf'<p [^>]*id="{element_id}"([^>]*)>(.*?)</p>', response.content.decode())
    assert match, element_id
    return "" if "hidden" in match[1] else html_lib.unescape(match[2]).strip()


# --- the assignee in the ticket list ------------------------------------------------------------


def test_the_list_shows_the_assignee_and_filters_mine_and_unassigned(client, operator):
    # given tickets of olga, of tom and of nobody
    tom = OperatorFactory(username="tom")
    TicketFactory(subject="Olga's", assignee=operator)
    TicketFactory(subject="Tom's", assignee=tom)
    TicketFactory(subject="Nobody's")
    url = reverse(LIST_URL)

    def subjects(query):
        response = client.get(url, query)
        assert response.status_code == 200
        return {t.subject for t in response.context["cl"].result_list}

    # then the list shows who has each, and "My tickets" / "Unassigned" filter it
    html = client.get(url).content.decode()
    assignees = re.findall(r'<td class="field-assignee[^"]*">([^<]*)</td>', html)
    assert sorted(assignees) == ["-", "olga", "tom"]
    assert "My tickets" in html and "Unassigned" in html
    assert subjects({"assigned": "me"}) == {"Olga's"}
    assert subjects({"assigned": "none"}) == {"Nobody's"}
    assert subjects({}) == {"Olga's", "Tom's", "Nobody's"}


def test_the_list_costs_no_more_queries_with_assignees(client, operator, django_assert_num_queries):
    url = reverse(LIST_URL)
    TicketFactory(assignee=operator)
    client.get(url)
    with CaptureQueriesContext(connection) as few:
        client.get(url)
    for _ in range(10):
        TicketFactory(assignee=OperatorFactory())
    with django_assert_num_queries(len(few)):
        client.get(url)


def run_action(client, action, tickets):
    return client.post(
        reverse(LIST_URL),
        {"action": action, "_selected_action": [t.pk for t in tickets]},
        follow=True,
    )


def test_assign_to_me_and_unassign_from_the_list(client, operator):
    tom = OperatorFactory(username="tom")
    first, second = TicketFactory(assignee=tom), TicketFactory()
    response = run_action(client, "assign_to_me", [first, second])
    assert "2 ticket(s) now assigned to you." in text_of(response)
    first.refresh_from_db(), second.refresh_from_db()
    assert (first.assignee, second.assignee) == (operator, operator)
    assert AuditEvent.objects.filter(action=AuditAction.TICKET_ASSIGNED).count() == 2

    response = run_action(client, "unassign", [first])
    assert "1 ticket(s) now assigned to nobody." in text_of(response)
    first.refresh_from_db()
    assert first.assignee is None


def test_assign_to_me_by_someone_who_is_not_an_operator_is_refused(client):
    # given an administrator who is not in the operators group
    client.force_login(AdminFactory(username="ada"))
    ticket = TicketFactory()
    response = run_action(client, "assign_to_me", [ticket])
    assert "ada is not an operator" in text_of(response).lower()
    ticket.refresh_from_db()
    assert ticket.assignee is None


def test_assign_to_me_is_offered_only_to_operators(client):
    client.force_login(AdminFactory(username="ada"))
    html = client.get(page_url(TicketFactory())).content.decode()
    assert 'id="assign-form"' in html and 'id="assign-me"' not in html


def test_finance_has_no_assign_actions(client):
    client.force_login(FinanceFactory())
    TicketFactory()
    response = client.get(reverse(LIST_URL))
    assert response.status_code == 200
    assert "assign_to_me" not in response.content.decode()


# --- the assignee on the ticket page ---------------------------------------------------------


def test_the_ticket_page_assigns_to_an_operator_or_to_me(client, operator, ticket):
    tom = OperatorFactory(username="tom")
    page = client.get(page_url(ticket))
    assert 'id="assignee-name">Unassigned' in page.content.decode()
    assert f'<option value="{tom.pk}">tom</option>' in page.content.decode()

    response = client.post(action_url("assign", ticket), {"assignee": tom.pk}, follow=True)
    assert "The ticket is assigned to tom." in text_of(response)
    ticket.refresh_from_db()
    assert ticket.assignee == tom

    assert 'id="assign-me"' in client.get(page_url(ticket)).content.decode()
    client.post(action_url("assign", ticket), {"assignee": operator.pk})
    ticket.refresh_from_db()
    assert ticket.assignee == operator
    assert 'id="assign-me"' not in client.get(page_url(ticket)).content.decode()
    client.post(action_url("assign", ticket), {"assignee": ""})
    ticket.refresh_from_db()
    assert ticket.assignee is None


@pytest.mark.parametrize("who", ["finance", "missing", "text"])
def test_the_ticket_page_refuses_an_assignee_who_is_not_an_operator(client, operator, ticket, who):
    value = {"finance": lambda: FinanceFactory(username="fay").pk, "missing": lambda: 999999}
    value["text"] = lambda: "olga"
    response = client.post(action_url("assign", ticket), {"assignee": value[who]()})
    assert response.status_code == 400
    page = text_of(response).lower()
    assert (
        "fay is not an operator" in page
        or "choose one of the operators." in page
        or "enter a whole number." in page
    )
    ticket.refresh_from_db()
    assert ticket.assignee is None


# --- reply and log time in one submit ----------------------------------------------------------


def reply(client, ticket, **fields):
    data = {"kind": MessageKind.OPERATOR_REPLY, "body": "Restarted the tunnel.", **fields}
    return client.post(action_url("reply", ticket), data)


def test_a_reply_with_hours_adds_the_message_and_the_entry(client, operator, ticket):
    # when olga replies with 0.75 h
    response = reply(client, ticket, hours="0:45", work_date=TODAY.isoformat())
    # then the reply and the entry are saved, and she is told both
    assert response.status_code == 302
    assert list(ticket.messages.values_list("kind", "body")) == [
        (MessageKind.OPERATOR_REPLY, "Restarted the tunnel.")
    ]
    entry = TimeEntry.objects.get(ticket=ticket)
    assert (entry.hours, entry.operator, entry.work_date, entry.note) == (
        Decimal("0.75"),
        operator,
        TODAY,
        "",
    )
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.ANSWERED
    page = text_of(client.get(page_url(ticket)))
    assert "Operator reply added. Saved 0.75 h." in page
    assert "9.25 of 10 h left" in page


def test_a_reply_with_no_hours_is_a_reply_only(client, operator, ticket):
    response = reply(client, ticket, hours="", work_date=TODAY.isoformat())
    assert response.status_code == 302
    assert ticket.messages.count() == 1
    assert not TimeEntry.objects.exists()


def test_a_note_with_hours_on_an_earlier_day_and_then_closed(client, operator, ticket):
    day = TODAY - dt.timedelta(days=2)
    response = reply(
        client,
        ticket,
        kind=MessageKind.INTERNAL_NOTE,
        body="Checked the logs.",
        hours="1",
        work_date=day.isoformat(),
        status_after="closed",
    )
    assert response.status_code == 302
    assert TimeEntry.objects.get().work_date == day
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.CLOSED
    assert f"Saved 1 h on {day:%Y-%m-%d}." in text_of(client.get(page_url(ticket)))


def test_refused_hours_save_no_reply_and_keep_what_was_typed(client, operator, ticket):
    # when olga replies with hours off the quarter-hour step
    response = reply(client, ticket, body="Line one\nLine <two>", hours="0:10")
    # then neither is saved, the message is beside the hours, and both are still typed
    assert response.status_code == 400
    assert not TicketMessage.objects.exists()
    assert not TimeEntry.objects.exists()
    assert "steps of 0.25" in field_error(response, "reply-hours-error")
    assert field_error(response, "reply-body-error") == ""
    html = response.content.decode()
    assert ">Line one\nLine &lt;two&gt;</textarea>" in html
    assert 'id="reply-hours" inputmode="decimal"' in html
    assert 'value="0:10"' in html


def test_a_closed_month_is_refused_beside_the_work_date(client, operator, ticket):
    BillingPeriod.objects.create(month=dt.date(2026, 10, 1), status=PeriodStatus.CLOSED)
    response = reply(client, ticket, hours="1", work_date="2026-10-30")
    assert response.status_code == 400
    assert "2026-10 is closed" in field_error(response, "reply-work-date-error")
    assert 'value="2026-10-30"' in response.content.decode()
    assert not TicketMessage.objects.exists()
    assert not TimeEntry.objects.exists()


def test_a_refused_reply_logs_no_time_and_keeps_the_hours(client, operator, ticket):
    # when the reply is one character too long but the hours are fine
    response = reply(client, ticket, body="x" * (MESSAGE_BODY_MAX_LENGTH + 1), hours="0.75")
    # then no time is logged either, the message is beside the reply, the hours stay
    assert response.status_code == 400
    assert not TimeEntry.objects.exists()
    assert not TicketMessage.objects.exists()
    assert "at most 20000 characters" in field_error(response, "reply-body-error")
    assert 'value="0.75"' in response.content.decode()


def test_the_service_refusing_the_message_after_the_time_rolls_the_time_back(operator, ticket):
    # the time is logged first inside the transaction: a refused message must undo it
    with pytest.raises(ValidationError):
        ticket_reply_with_time(
            ticket=ticket, author=operator, body="Hi", kind="bogus", hours="0.75"
        )
    assert not TimeEntry.objects.exists()
    assert not TicketMessage.objects.exists()
    assert not AuditEvent.objects.filter(action=AuditAction.TIME_LOGGED).exists()


def test_the_separate_log_form_and_close_and_save_still_work(client, operator, ticket):
    client.post(action_url("log", ticket), {"hours": "0.5"})
    client.post(action_url("log", ticket), {"hours": "0.25", "close": "1"})
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.CLOSED
    assert TimeEntry.objects.count() == 2


def test_the_reply_has_no_hours_box_where_time_cannot_be_logged(client, operator):
    untracked = TicketFactory(track_time=False)
    html = client.get(page_url(untracked)).content.decode()
    assert 'id="reply-form"' in html and 'id="reply-hours"' not in html


# --- the preview of a reply ---------------------------------------------------------------------


def test_the_preview_shows_the_reply_as_the_portal_does_escaped(client, operator, ticket):
    operator.first_name, operator.last_name = "Olga", "Berg"
    operator.save()
    body = "Hello <script>alert(1)</script>\n\nSecond paragraph"
    response = client.post(
        action_url("reply_preview", ticket), {"kind": MessageKind.OPERATOR_REPLY, "body": body}
    )
    assert response.status_code == 200
    answer = response.json()
    assert answer["shown_to_client"] is True
    assert "Support (Olga Berg)" in answer["html"]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in answer["html"]
    assert "<script>" not in answer["html"]
    assert "<p>Second paragraph</p>" in answer["html"]
    assert not TicketMessage.objects.exists()


def test_the_preview_of_an_internal_note_says_the_client_never_sees_it(client, operator, ticket):
    response = client.post(
        action_url("reply_preview", ticket), {"kind": MessageKind.INTERNAL_NOTE, "body": "Psst"}
    )
    answer = response.json()
    assert answer["shown_to_client"] is False
    assert "never shown to the client" in answer["html"]
    assert "Psst" not in answer["html"]


def test_the_preview_of_nothing_is_a_400_with_a_message(client, operator, ticket):
    response = client.post(
        action_url("reply_preview", ticket), {"kind": MessageKind.OPERATOR_REPLY, "body": ""}
    )
    assert response.status_code == 400
    assert response.json() == {"error": "Nothing to preview yet."}


def test_the_page_has_the_preview_button_and_no_inline_script(client, operator, ticket):
    html = client.get(page_url(ticket)).content.decode()
    assert f'data-url="{action_url("reply_preview", ticket)}"' in html
    assert "<script>" not in html and " onclick=" not in html and "style=" not in html
