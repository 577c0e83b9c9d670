"""The operator's workspace on the ticket's admin page: logging, changing and deleting time,
refusals shown with what was typed, replies, closing (Django test client)."""

import datetime as dt
import html as html_lib
import re
from decimal import Decimal

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from packages.models import BillingMode, BillingPeriod, PeriodStatus, SubscriptionStatus
from packages.services import subscription_create
from tests.factories import (
    ClientFactory,
    ClientUserFactory,
    OperatorFactory,
    SubscriptionFactory,
    TicketFactory,
    TicketMessageFactory,
    TimeEntryFactory,
    package_with_prices,
)
from tickets.models import (
    MESSAGE_BODY_MAX_LENGTH,
    AuditAction,
    AuditEvent,
    MessageKind,
    Ticket,
    TicketStatus,
    TimeEntry,
)

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
    return TicketFactory(subscription=SubscriptionFactory(package=package), subject="VPN down")


def page_url(ticket):
    return reverse("admin:tickets_ticket_change", args=[ticket.pk])


def action_url(name, ticket, *args):
    return reverse(f"admin:tickets_ticket_{name}", args=[ticket.pk, *args])


def text_of(response) -> str:
    """The page's text without tags, whitespace collapsed: what the operator reads."""
    html = response.content.decode()
    return re.sub(r"\s+", " ", html_lib.unescape(re.sub(r"<[^>]+>", " ", html)))


def actions_of(ticket) -> list[str]:
    return list(AuditEvent.objects.filter(ticket=ticket).values_list("action", flat=True))


# --- saving time -----------------------------------------------------------------------------


def test_save_time_adds_an_entry_and_shows_what_is_left(client, operator, ticket):
    # given a Gold ticket with 10 h a month and nothing used
    # when the operator saves 1.25 h with a note
    response = client.post(action_url("log", ticket), {"hours": "1.25", "note": "Reset VPN"})
    # then an entry is added, the ticket stays open, and the page shows what is left
    assert response.status_code == 302
    entry = TimeEntry.objects.get(ticket=ticket)
    assert (entry.hours, entry.operator, entry.note, entry.work_date) == (
        Decimal("1.25"),
        operator,
        "Reset VPN",
        TODAY,
    )
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.OPEN
    page = text_of(client.get(page_url(ticket)))
    assert "Gold (active) - 8.75 of 10 h left in 2026-11" in page
    assert "Saved 1.25 h." in page
    assert "Reset VPN" in page
    assert actions_of(ticket) == [AuditAction.TIME_LOGGED]


@pytest.mark.parametrize("typed", ["1.25", "1:15", "75m", "1,25"])
def test_hours_typed_as_decimal_clock_or_minutes(client, operator, ticket, typed):
    response = client.post(action_url("log", ticket), {"hours": typed})
    assert response.status_code == 302
    assert TimeEntry.objects.get(ticket=ticket).hours == Decimal("1.25")


def test_each_save_adds_a_new_entry(client, operator, ticket):
    client.post(action_url("log", ticket), {"hours": "0.5"})
    client.post(action_url("log", ticket), {"hours": "0.75"})
    assert sorted(TimeEntry.objects.values_list("hours", flat=True)) == [
        Decimal("0.50"),
        Decimal("0.75"),
    ]
    assert "Entries · 1.25 h" in text_of(client.get(page_url(ticket)))


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("0:10", "Hours must be in steps of 0.25 (15 minutes)"),
        ("abc", "Enter hours as 1.25, 1:15 or 75m."),
        ("", "Enter hours as 1.25, 1:15 or 75m."),
        ("25", "One entry can hold at most 24 hours."),
        ("0", "Hours must be more than zero."),
    ],
)
def test_refused_hours_show_the_message_and_keep_what_was_typed(
    client, operator, ticket, typed, message
):
    response = client.post(action_url("log", ticket), {"hours": typed, "note": "typed note"})
    assert response.status_code == 400
    assert message in text_of(response)
    html = response.content.decode()
    hours_input = html.split('id="log-hours"')[1].split(">")[0]
    assert f'value="{typed}"' in hours_input
    assert 'value="typed note"' in html
    assert not TimeEntry.objects.exists()


def test_close_ticket_and_save_time(client, operator, ticket):
    response = client.post(action_url("log", ticket), {"hours": "0.5", "close": "1"})
    assert response.status_code == 302
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.CLOSED
    assert TimeEntry.objects.get(ticket=ticket).hours == Decimal("0.50")
    assert actions_of(ticket) == [AuditAction.TIME_LOGGED, AuditAction.TICKET_CLOSED]


def test_close_with_no_hours_only_closes(client, operator, ticket):
    response = client.post(action_url("log", ticket), {"hours": " ", "close": "1"}, follow=True)
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.CLOSED
    assert not TimeEntry.objects.exists()
    assert [str(m) for m in response.context["messages"]] == ["Ticket closed."]


def test_close_and_save_refused_leaves_the_ticket_open(client, operator, ticket):
    response = client.post(action_url("log", ticket), {"hours": "0:10", "close": "1"})
    assert response.status_code == 400
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.OPEN
    assert actions_of(ticket) == []


def test_bucket_exhausted_is_refused_with_what_is_left(client, operator):
    bucket = package_with_prices(
        name="Bucket 2", billing_mode=BillingMode.ONE_TIME, included_hours=Decimal("2.00")
    )
    ticket = TicketFactory(subscription=SubscriptionFactory(package=bucket))
    client.post(action_url("log", ticket), {"hours": "1.75"})
    page = text_of(client.get(page_url(ticket)))
    assert "Bucket 2 (active) - 0.25 of 2 h left in the bucket" in page
    response = client.post(action_url("log", ticket), {"hours": "0.5"})
    assert response.status_code == 400
    assert "Only 0.25 h left in this one-time package." in text_of(response)
    assert TimeEntry.objects.count() == 1


def test_the_time_panel_shows_the_bucket_bought_after_the_package_changed(client, operator):
    # given a 10 h bucket bought, then its package cut to 5 h for new buyers
    bucket = package_with_prices(
        name="Bucket 10", billing_mode=BillingMode.ONE_TIME, included_hours=Decimal("10.00")
    )
    subscription = subscription_create(client=ClientFactory(currency="EUR"), package=bucket)
    ticket = TicketFactory(client=subscription.client, subscription=subscription)
    bucket.included_hours = Decimal("5.00")
    bucket.save(update_fields=["included_hours"])
    assert "Bucket 10 (active) - 10 of 10 h left in the bucket" in text_of(
        client.get(page_url(ticket))
    )
    # when 6 h are saved in the workspace
    response = client.post(action_url("log", ticket), {"hours": "6"})
    # then they are accepted and the panel measures the 10 h bought
    assert response.status_code == 302
    page = text_of(client.get(page_url(ticket)))
    assert "Bucket 10 (active) - 4 of 10 h left in the bucket" in page


def test_inactive_subscription_is_refused(client, operator):
    ticket = TicketFactory(subscription=SubscriptionFactory(status=SubscriptionStatus.SUSPENDED))
    response = client.post(action_url("log", ticket), {"hours": "1"})
    assert response.status_code == 400
    assert "The subscription is suspended: time can only be logged on an active subscription." in (
        text_of(response)
    )


def test_closed_period_is_refused_on_log(client, operator, ticket):
    BillingPeriod.objects.create(month=dt.date(2026, 11, 1), status=PeriodStatus.CLOSED)
    response = client.post(action_url("log", ticket), {"hours": "1"})
    assert response.status_code == 400
    assert "2026-11 is closed" in text_of(response)


# --- entries: edit, delete, locked -----------------------------------------------------------


def test_edit_an_entry(client, operator, ticket):
    entry = TimeEntryFactory(ticket=ticket, hours=Decimal("1.00"), work_date=TODAY, note="a")
    response = client.post(
        action_url("entry_change", ticket, entry.pk),
        {"hours": "2:00", "work_date": "2026-11-19", "note": "b"},
    )
    assert response.status_code == 302
    entry.refresh_from_db()
    assert (entry.hours, entry.work_date, entry.note) == (
        Decimal("2.00"),
        dt.date(2026, 11, 19),
        "b",
    )
    event = AuditEvent.objects.get(ticket=ticket, action=AuditAction.TIME_CHANGED)
    assert event.detail["hours"] == ["1.00", "2.00"]
    assert event.actor == operator
    assert "hours 1 h → 2 h" in text_of(client.get(page_url(ticket)))


def test_refused_edit_keeps_what_was_typed(client, operator, ticket):
    entry = TimeEntryFactory(ticket=ticket, hours=Decimal("1.00"), work_date=TODAY)
    response = client.post(
        action_url("entry_change", ticket, entry.pk),
        {"hours": "0:10", "work_date": "2026-11-19", "note": "typed"},
    )
    assert response.status_code == 400
    # the refusal shows beside the hours box of the one edit form, with what was typed
    html = response.content.decode()
    assert re.search(r'id="entry-edit-hours"[^>]*value="0:10"', html)
    assert re.search(r'id="entry-edit-work-date"[^>]*value="2026-11-19"', html)
    beside = html.split('id="entry-edit-hours-error"')[1].split("</p>")[0]
    assert "Hours must be in steps of 0.25" in beside and "hidden" not in beside
    entry.refresh_from_db()
    assert entry.hours == Decimal("1.00")


def test_edit_with_a_bad_date_is_a_message_not_an_error(client, operator, ticket):
    entry = TimeEntryFactory(ticket=ticket, work_date=TODAY)
    response = client.post(
        action_url("entry_change", ticket, entry.pk), {"hours": "1", "work_date": "soon"}
    )
    assert response.status_code == 400
    beside = response.content.decode().split('id="entry-edit-work-date-error"')[1].split("</p>")[0]
    assert "Enter a valid date." in beside and "hidden" not in beside


def test_delete_an_entry(client, operator, ticket):
    entry = TimeEntryFactory(ticket=ticket, hours=Decimal("1.50"), work_date=TODAY)
    response = client.post(action_url("entry_delete", ticket, entry.pk))
    assert response.status_code == 302
    assert not TimeEntry.objects.exists()
    event = AuditEvent.objects.get(action=AuditAction.TIME_DELETED)
    assert (event.ticket, event.detail["hours"]) == (ticket, "1.50")


def test_entries_of_a_closed_period_are_locked(client, operator, ticket):
    # given two entries of October (closed) and one of November (open)
    BillingPeriod.objects.create(month=dt.date(2026, 10, 1), status=PeriodStatus.CLOSED)
    october = TimeEntryFactory(ticket=ticket, work_date=dt.date(2026, 10, 14), hours="1.00")
    TimeEntryFactory(ticket=ticket, work_date=dt.date(2026, 10, 15), hours="0.50")
    november = TimeEntryFactory(ticket=ticket, work_date=TODAY)
    # when the operator opens the ticket
    html = client.get(page_url(ticket)).content.decode()
    # then October is one locked summary row (entries, hours) with a link to its entries;
    # November's entry is listed with an "Edit" link
    month_row = html.split('id="month-2026-10"')[1].split("</tr>")[0]
    assert "2 entries" in month_row and ">1.5<" in month_row and "locked" in month_row
    assert f'id="entry-{october.pk}"' not in html
    november_row = html.split(f'id="entry-{november.pk}"')[1].split("</tr>")[0]
    assert f'href="?edit={november.pk}#entry-edit"' in november_row
    # when she asks for October's entries, they are listed, with no way to change them
    html = client.get(page_url(ticket), {"month": "2026-10"}).content.decode()
    october_row = html.split(f'id="entry-{october.pk}"')[1].split("</tr>")[0]
    assert "Edit" not in october_row and "Delete" not in october_row
    # and asking to edit it shows no form, but says why
    response = client.get(page_url(ticket), {"edit": october.pk})
    assert 'id="entry-edit-form"' not in response.content.decode()
    assert "its month is closed" in text_of(response)
    # and a forged delete of the locked entry is refused with the service's message
    response = client.post(action_url("entry_delete", ticket, october.pk))
    assert response.status_code == 400
    assert "2026-10 is closed" in text_of(response)
    assert TimeEntry.objects.filter(pk=october.pk).exists()


def test_one_edit_form_opens_on_demand(client, operator, ticket):
    # given three entries of this month
    entries = [TimeEntryFactory(ticket=ticket, work_date=TODAY, note=f"n{i}") for i in range(3)]
    # when the operator opens the ticket, there is no edit or delete form, one link per entry
    html = client.get(page_url(ticket)).content.decode()
    assert 'id="entry-edit-form"' not in html and "tickets_ticket_entry" not in html
    assert html.count('class="sbt-edit-link"') == 3
    assert "/time/" not in html.split('id="entries"')[1].split("</section>")[0]
    # when she follows "Edit" of the second, the one form is loaded with that entry
    response = client.get(page_url(ticket), {"edit": entries[1].pk})
    html = response.content.decode()
    assert html.count('id="entry-edit-form"') == 1
    form = html.split('id="entry-edit"')[1].split('id="entries-table"')[0]
    assert re.search(r'id="entry-edit-note"[^>]*value="n1"', form)
    assert action_url("entry_change", ticket, entries[1].pk) in form
    assert action_url("entry_delete", ticket, entries[1].pk) in form
    # and an entry of another ticket, or nonsense, opens nothing and is not an error
    other = TimeEntryFactory(work_date=TODAY)
    for wanted in [other.pk, "abc", "9" * 30, -1]:
        response = client.get(page_url(ticket), {"edit": wanted})
        assert response.status_code == 200
        assert 'id="entry-edit-form"' not in response.content.decode()


def test_a_closed_month_is_listed_in_pages(client, operator, ticket):
    # given 60 entries in closed October
    BillingPeriod.objects.create(month=dt.date(2026, 10, 1), status=PeriodStatus.CLOSED)
    for day in range(60):
        TimeEntryFactory(ticket=ticket, work_date=dt.date(2026, 10, 1 + day % 31))
    # when she lists October: the first page has 50 entries and a link to the next
    html = client.get(page_url(ticket), {"month": "2026-10"}).content.decode()
    assert html.count('class="sbt-entry sbt-locked"') == 50
    assert "?month=2026-10&amp;page=2" in html
    html = client.get(page_url(ticket), {"month": "2026-10", "page": "2"}).content.decode()
    assert html.count('class="sbt-entry sbt-locked"') == 10
    # and a month that is not closed, or not a month, lists nothing and is not an error
    for month, page in [("2026-11", "1"), ("2026-13", "1"), ("soon", "1"), ("2026-10", "x")]:
        response = client.get(page_url(ticket), {"month": month, "page": page})
        assert response.status_code == 200
        assert 'class="sbt-entry sbt-locked"' not in response.content.decode()


def test_an_entry_of_another_ticket_answers_404(client, operator, ticket):
    other = TimeEntryFactory(work_date=TODAY)
    assert client.post(action_url("entry_delete", ticket, other.pk)).status_code == 404
    assert client.post(action_url("log", ticket).replace(str(ticket.pk), "999999")).status_code == (
        404
    )


def test_actions_answer_only_post(client, operator, ticket):
    assert client.get(action_url("log", ticket)).status_code == 405


# --- conversation and status -----------------------------------------------------------------


def test_conversation_in_order_with_internal_notes_marked(client, operator, ticket):
    TicketMessageFactory(ticket=ticket, body="My VPN is down")
    client.post(
        action_url("reply", ticket),
        {"kind": MessageKind.INTERNAL_NOTE, "body": "Check the firewall", "status_after": ""},
    )
    response = client.post(
        action_url("reply", ticket),
        {"kind": MessageKind.OPERATOR_REPLY, "body": "Fixed, please retry", "status_after": ""},
    )
    assert response.status_code == 302
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.ANSWERED
    page = text_of(client.get(page_url(ticket)))
    assert page.index("My VPN is down") < page.index("Check the firewall")
    assert page.index("Check the firewall") < page.index("Fixed, please retry")
    assert "Internal note" in page.split("Check the firewall")[0].rsplit("olga", 1)[1]


def test_reply_with_status_after(client, operator, ticket):
    client.post(
        action_url("reply", ticket),
        {"kind": MessageKind.OPERATOR_REPLY, "body": "Done", "status_after": "closed"},
    )
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.CLOSED
    assert actions_of(ticket) == [AuditAction.TICKET_CLOSED]


def test_empty_reply_is_refused_and_keeps_the_choice(client, operator, ticket):
    response = client.post(
        action_url("reply", ticket),
        {"kind": MessageKind.INTERNAL_NOTE, "body": "   ", "status_after": "on_hold"},
    )
    assert response.status_code == 400
    assert "Message: write something first." in text_of(response)
    html = response.content.decode()
    assert '<option value="internal_note" selected>' in html
    assert '<option value="on_hold" selected>' in html


def test_close_and_reopen(client, operator, ticket):
    client.post(action_url("status", ticket), {"status": "closed"})
    client.post(action_url("status", ticket), {"status": "open"})
    assert actions_of(ticket) == [AuditAction.TICKET_CLOSED, AuditAction.TICKET_REOPENED]
    response = client.post(action_url("status", ticket), {"status": "gone"})
    assert response.status_code == 400
    assert "Unknown status" in text_of(response)


def test_plain_fields_save_without_touching_status_or_subscription(client, operator, ticket):
    response = client.post(page_url(ticket), {"subject": "VPN down again", "priority": "high"})
    assert response.status_code == 302
    ticket.refresh_from_db()
    assert (ticket.subject, ticket.priority, ticket.status) == ("VPN down again", "high", "open")


def test_operator_opens_a_ticket_with_its_first_message(client, operator, ticket):
    response = client.post(
        reverse("admin:tickets_ticket_add"),
        {"client": ticket.client.pk, "subject": "Printer", "priority": "normal", "body": "Hi"},
    )
    assert response.status_code == 302
    new = ticket.client.tickets.get(subject="Printer")
    assert list(new.messages.values_list("kind", "body")) == [("operator_reply", "Hi")]


def test_a_reply_longer_than_the_message_limit_is_refused(client, operator, ticket):
    # when an operator pastes a reply one character over the limit of every message
    response = client.post(
        action_url("reply", ticket),
        {"kind": MessageKind.OPERATOR_REPLY, "body": "x" * (MESSAGE_BODY_MAX_LENGTH + 1)},
    )
    # then the ticket page says so and the conversation is unchanged
    assert response.status_code == 400
    assert "Message: A message has at most 20000 characters; this one has 20001." in text_of(
        response
    )
    assert not ticket.messages.exists()


# --- what the page says ----------------------------------------------------------------------


def test_a_ticket_opened_through_the_api_names_the_client_as_its_author(client, operator):
    # given a ticket an operator opened through the API for Acme, and Jane's reply in the portal
    acme = ClientFactory(name="Acme")
    api = APIClient()
    api.force_authenticate(operator)
    body = {"client": acme.pk, "subject": "Printer", "body": "The printer is jammed."}
    response = api.post("/api/v1/tickets/", body, format="json")
    assert response.status_code == 201
    ticket = Ticket.objects.get(pk=response.json()["id"])
    jane = ClientUserFactory(client=acme, user__first_name="Jane", user__last_name="Doe")
    TicketMessageFactory(ticket=ticket, author=jane.user, kind=MessageKind.CLIENT_REPLY)
    # when the operator opens it
    page = text_of(client.get(page_url(ticket)))
    # then the first message is the client's, entered by the operator; Jane's reply is hers
    assert "Acme (entered by olga) · Client reply" in page
    assert "Jane Doe · Client reply" in page
    assert "olga · Client reply" not in page


def test_audit_details_show_local_times_and_hours(client, operator, ticket, settings):
    # given a timer started and cancelled six seconds later, in Warsaw's time zone
    settings.TIME_ZONE = "Europe/Warsaw"
    AuditEvent.objects.create(
        ticket=ticket,
        action=AuditAction.TIMER_CANCELLED,
        detail={"started_at": "2026-11-20T09:59:54.577973+00:00", "minutes": "0.1"},
    )
    AuditEvent.objects.create(
        ticket=ticket,
        action=AuditAction.TIMER_STOPPED,
        detail={"started_at": "2026-11-20T08:00:00+00:00", "minutes": "75.4", "hours": "1.50"},
    )
    # when the operator reads the audit trail
    trail = text_of(client.get(page_url(ticket))).split("Audit trail")[1]
    # then the times are Warsaw's, the durations and hours are as the page writes them
    cancelled, stopped = trail.split("Timer cancelled")[1].split("Timer stopped")
    assert "started 2026-11-20 10:59" in cancelled and "ran under a minute" in cancelled
    assert "started 2026-11-20 09:00" in stopped and "ran 1 h 15 min" in stopped
    assert "hours 1.5 h" in stopped
    assert "+00:00" not in trail and "minutes" not in trail


def test_a_ticket_without_messages_says_so(client, operator, ticket):
    html = client.get(page_url(ticket)).content.decode()
    empty = html.split('id="conversation-empty"')[1].split("</div>")[0]
    assert "No messages yet." in empty and "Write the first message below" in empty


def test_the_ticket_details_are_folded_with_their_own_button(client, operator, ticket):
    # given the ticket's page
    html = client.get(page_url(ticket)).content.decode()
    # then subject and priority sit in a closed "Ticket details" section with one button, and
    # the admin's "Save and add another" / "Save and continue editing" bar is gone
    details = html.split('<details id="ticket-details"')[1].split("</details>")[0]
    assert details.startswith(' class="module">')  # closed
    assert 'name="subject"' in details and 'id="ticket-details-save"' in details
    assert "_addanother" not in html and 'value="Save and continue editing"' not in html
    assert html.count('type="submit" value="Save') == 1
    # when she saves a new subject, she stays on the ticket
    button = {"_continue": "Save ticket details"}
    response = client.post(page_url(ticket), {"subject": "VPN flaky", "priority": "high", **button})
    assert response.status_code == 302 and response["Location"] == page_url(ticket)
    ticket.refresh_from_db()
    assert (ticket.subject, ticket.priority) == ("VPN flaky", "high")
    # and a refused subject opens the section with the error
    response = client.post(page_url(ticket), {"subject": "", "priority": "high", **button})
    assert '<details id="ticket-details" class="module" open>' in response.content.decode()


def test_the_hours_box_hint_is_not_a_value(client, operator, ticket):
    html = client.get(page_url(ticket)).content.decode()
    box = re.search(r'<input[^>]*id="log-hours"[^>]*>', html)[0]
    assert 'placeholder="e.g. 1:15"' in box and 'value=""' in box


def test_refusals_of_the_time_panel_show_beside_their_field(client, operator, ticket):
    # a closed month is about the work date, a too-long note about the note
    BillingPeriod.objects.create(month=dt.date(2026, 10, 1), status=PeriodStatus.CLOSED)
    response = client.post(action_url("log", ticket), {"hours": "1", "work_date": "2026-10-05"})
    assert response.status_code == 400
    html = response.content.decode()
    beside = html.split('id="log-work-date-error"')[1].split("</p>")[0]
    assert "2026-10 is closed" in beside and "hidden" not in beside
    response = client.post(action_url("log", ticket), {"hours": "1", "note": "x" * 501})
    beside = response.content.decode().split('id="log-note-error"')[1].split("</p>")[0]
    assert "at most 500 characters" in beside and "hidden" not in beside
    assert not TimeEntry.objects.exists()
