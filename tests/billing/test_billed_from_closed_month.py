"""An entry is billed once its month is closed: the close writes nothing per time entry, and
every reader (the API's ``billed``, the portal's badges, the admin's entries, the locks) reads
the month's state (docs/billing-rules.md, "Closing a month")."""

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from billing.services.rollup import period_close, period_close_begin
from tests.billing.conftest import api_as
from tests.factories import (
    AdminFactory,
    ClientUserFactory,
    OperatorFactory,
    SubscriptionFactory,
    TicketFactory,
    TimeEntryFactory,
)
from tickets.models import AuditAction, TimeEntry

OCTOBER = dt.date(2026, 10, 1)
pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def november(time_machine, settings):
    time_machine.move_to(dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.UTC), tick=False)
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.fixture
def month_of_time():
    """A client's ticket with 2 h in October and 1 h in November (the open month)."""
    portal_user = ClientUserFactory(client__currency="EUR")
    subscription = SubscriptionFactory(client=portal_user.client)
    ticket = TicketFactory(client=portal_user.client, subscription=subscription)
    october = TimeEntryFactory(ticket=ticket, hours=Decimal("2"), work_date=dt.date(2026, 10, 9))
    november = TimeEntryFactory(ticket=ticket, hours=Decimal("1"), work_date=dt.date(2026, 11, 2))
    return portal_user, subscription, ticket, october, november


def api_billed(ticket) -> dict[int, bool]:
    entries = api_as(OperatorFactory()).get(f"/api/v1/tickets/{ticket.pk}/time-entries/")
    assert entries.status_code == 200
    by_list = {row["id"]: row["billed"] for row in entries.json()["results"]}
    # the entry's own resource says the same
    for entry_id, billed in by_list.items():
        one = api_as(OperatorFactory()).get(f"/api/v1/time-entries/{entry_id}/")
        assert one.json()["billed"] == billed
    return by_list


def portal_badges(client, portal_user, ticket, *entries: TimeEntry) -> dict[int, str]:
    client.force_login(portal_user.user)
    html = client.get(f"/tickets/{ticket.pk}/").content.decode()
    badges = {}
    for entry in entries:
        row = html[html.index(f'data-entry="{entry.pk}"') :]
        start = row.index("badge-") + len("badge-")
        badges[entry.pk] = row[start : row.index('"', start)]
    return badges


def workspace_rows(client, ticket, *entries: TimeEntry) -> dict[int, str]:
    # October's entries opened on the page (a closed month's are listed on demand)
    client.force_login(OperatorFactory())
    page = reverse("admin:tickets_ticket_change", args=[ticket.pk]) + "?month=2026-10"
    html = client.get(page).content.decode()
    return {
        entry.pk: html.split(f'id="entry-{entry.pk}"')[1].split("</tr>")[0] for entry in entries
    }


def test_closing_a_month_writes_nothing_per_time_entry(month_of_time):
    # when October is closed
    with CaptureQueriesContext(connection) as captured:
        period_close(month=OCTOBER)
    # then no statement wrote to the time entries
    writes = [
        query["sql"]
        for query in captured.captured_queries
        if "tickets_timeentry" in query["sql"]
        and query["sql"].lstrip().upper().startswith(("UPDATE", "INSERT", "DELETE"))
    ]
    assert writes == []


def test_every_reader_shows_the_closed_months_time_billed(client, month_of_time):
    portal_user, subscription, ticket, october, november = month_of_time
    # given October open: nothing is billed anywhere
    assert api_billed(ticket) == {october.pk: False, november.pk: False}
    assert portal_badges(client, portal_user, ticket, october, november) == {
        october.pk: "open",
        november.pk: "open",
    }
    # when October is closed
    period_close(month=OCTOBER)
    # then the API, the portal and the operator's workspace show October's time billed
    assert api_billed(ticket) == {october.pk: True, november.pk: False}
    assert portal_badges(client, portal_user, ticket, october, november) == {
        october.pk: "billed",
        november.pk: "open",
    }
    rows = workspace_rows(client, ticket, october, november)
    assert "not billed" not in rows[october.pk] and "locked" in rows[october.pk]
    assert "not billed" in rows[november.pk] and "locked" not in rows[november.pk]
    # and the admin's list of entries says when (the month's close)
    client.force_login(AdminFactory())
    listing = client.get(reverse("admin:tickets_timeentry_changelist")).content.decode()
    assert "Nov. 2, 2026, 9 a.m." in listing
    # and October's time can no longer be changed through the API
    refused = api_as(OperatorFactory()).patch(
        f"/api/v1/time-entries/{october.pk}/", {"hours": "3"}, format="json"
    )
    assert refused.status_code == 400
    assert TimeEntry.objects.get(pk=october.pk).hours == Decimal("2.00")


def test_a_month_being_closed_is_locked_but_not_yet_billed(client, month_of_time):
    # given October's close begun and not finished (a rollup that was stopped)
    portal_user, subscription, ticket, october, november = month_of_time
    assert period_close_begin(month=OCTOBER)
    # then its time is locked, and not billed until the month is closed
    assert "locked" in workspace_rows(client, ticket, october)[october.pk]
    assert api_billed(ticket)[october.pk] is False
    assert portal_badges(client, portal_user, ticket, october)[october.pk] == "open"
    # when the close finishes, it is billed
    period_close(month=OCTOBER)
    assert api_billed(ticket)[october.pk] is True


def test_the_subscriptions_trail_page_shows_the_month_billed(client, month_of_time):
    _, subscription, _, _, _ = month_of_time
    period_close(month=OCTOBER)
    client.force_login(AdminFactory())
    page = client.get(reverse("admin:packages_subscription_change", args=[subscription.pk]))
    trail = page.content.decode().split("Audit trail")[1].split("</table>")[0]
    assert f"sbt-audit-{AuditAction.PERIOD_BILLED}" in trail
    assert "Period billed" in trail and "period 2026-10" in trail
