"""Finance's pages as finance uses them: the items list (badges, void rows, exports of what
is listed, export-and-mark, undo), the one periods page with its confirmation, the
adjustment form that starts with the client, and the status rule shared with the API."""

import csv
import datetime as dt
import io
from decimal import Decimal

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse
from djmoney.money import Money

from billing.exports import copy_csv_chunks, csv_chunks
from billing.models import BILLABLE_ITEM_EXPORT_COLUMNS, BillableItem, BillingEvent
from billing.selectors.finance import billable_items_export_rows
from packages.models import BillingPeriod, PeriodStatus
from supportbilling.prepared import SERVER_BOUND_PARAMS_MAX
from tests.billing.conftest import api_as
from tests.billing.test_exports import insert_items
from tests.factories import (
    BillableItemFactory,
    TimeEntryFactory,
)

CHANGELIST = "/admin/billing/billableitem/"


@pytest.fixture(autouse=True)
def _plain_static_files(settings):
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.fixture
def finance(client, world):
    client.force_login(world.users["finance"])
    return client


@pytest.fixture
def void_item(world):
    return BillableItemFactory(
        subscription=None,
        client=world.acme,
        kind="adjustment",
        description="Billed twice",
        unit_price=Money(Decimal("99.00"), "EUR"),
        amount=Money(Decimal("99.00"), "EUR"),
        status="void",
    )


def _notes(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def _rows(body: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(body.decode(), newline="")))


def _body(response) -> bytes:
    return b"".join(
        part if isinstance(part, bytes) else part.encode() for part in response.streaming_content
    )


# --- The list ------------------------------------------------------------------------------


def test_the_list_shows_statuses_as_badges_and_amounts_with_their_currency(finance, void_item):
    page = finance.get(CHANGELIST + "?period=2026-10").content.decode()
    assert '<span class="sbt-status sbt-status-void">Void</span>' in page
    assert '<span class="sbt-status sbt-status-pending">Pending</span>' in page
    assert "99.00 EUR" in page and "550.00 USD" in page
    assert "billing/admin/finance.css" in page  # greys and strikes void rows, aligns amounts


# --- Status changes: one rule for the admin and the API ------------------------------------

TRANSITIONS = [
    ("pending", "exported", True),
    ("pending", "void", True),
    ("pending", "invoiced", False),
    ("exported", "invoiced", True),
    ("exported", "void", True),
    ("exported", "pending", True),
    ("invoiced", "pending", False),
    ("invoiced", "exported", False),
    ("invoiced", "void", False),
    ("void", "pending", False),
    ("void", "exported", False),
    ("void", "invoiced", False),
]
ACTIONS = {
    "exported": "mark_exported",
    "invoiced": "mark_invoiced",
    "void": "mark_void",
    "pending": "mark_pending",
}


@pytest.mark.parametrize(("old", "new", "allowed"), TRANSITIONS)
def test_each_transition_through_the_admin(finance, world, old, new, allowed):
    BillableItem.objects.filter(pk=world.item.pk).update(status=old)
    response = finance.post(
        CHANGELIST, {"action": ACTIONS[new], "_selected_action": [world.item.pk]}, follow=True
    )
    world.item.refresh_from_db()
    notes = _notes(response)
    if allowed:
        assert world.item.status == new
        assert any(note.startswith("1 item(s) ") for note in notes)
    else:
        assert world.item.status == old
        # no green "0 item(s) ..." next to the refusal, which says why
        assert [n for n in notes if n.startswith("0 item")] == []
        assert len(notes) == 1 and notes[0].startswith("1 item(s) left as they were: ")


@pytest.mark.parametrize(("old", "new", "allowed"), TRANSITIONS)
def test_each_transition_through_the_api(world, old, new, allowed):
    BillableItem.objects.filter(pk=world.item.pk).update(status=old)
    response = api_as(world.users["finance"]).patch(
        f"/api/v1/billable-items/{world.item.pk}/", {"status": new}, format="json"
    )
    world.item.refresh_from_db()
    if allowed:
        assert response.status_code == 200 and world.item.status == new
    else:
        assert response.status_code == 400 and world.item.status == old


def test_a_pending_item_is_not_invoiced_before_it_was_exported(finance, world):
    response = finance.post(
        CHANGELIST, {"action": "mark_invoiced", "_selected_action": [world.item.pk]}, follow=True
    )
    assert _notes(response) == [
        "1 item(s) left as they were: a pending item is invoiced only after it was exported: "
        "export it first."
    ]
    api = api_as(world.users["finance"]).patch(
        f"/api/v1/billable-items/{world.item.pk}/", {"status": "invoiced"}, format="json"
    )
    assert "export it first" in str(api.json())


def test_a_refused_void_shows_no_success(finance, world):
    BillableItem.objects.filter(pk=world.item.pk).update(status="invoiced")
    response = finance.post(
        CHANGELIST, {"action": "mark_void", "_selected_action": [world.item.pk]}, follow=True
    )
    notes = _notes(response)
    assert "0 item(s) marked void." not in notes
    assert notes == [
        "1 item(s) left as they were: an invoiced item cannot change any more; enter an "
        "adjustment instead."
    ]


def test_undo_export_puts_exported_items_back_to_pending(finance, world):
    BillableItem.objects.filter(pk=world.item.pk).update(status="exported")
    response = finance.post(
        CHANGELIST, {"action": "mark_pending", "_selected_action": [world.item.pk]}, follow=True
    )
    world.item.refresh_from_db()
    assert world.item.status == "pending"
    assert _notes(response) == ["1 item(s) back to pending (export undone)."]


# --- Exports of what the list shows --------------------------------------------------------


def test_the_export_keeps_every_filter_of_the_list(finance, world, void_item):
    BillableItem.objects.filter(pk=world.item.pk).update(status="exported")
    BillableItem.objects.filter(pk=world.other_item.pk).update(status="exported")
    # a list of October's pending items is empty: so is its export
    url = reverse("admin:billing_export")
    listed = finance.get(CHANGELIST + "?period=2026-10&status=pending")
    assert listed.context["cl"].result_count == 0
    assert _rows(_body(finance.get(url + "?period=2026-10&status=pending&format=csv"))) == []
    # the search and the currency filter narrow it as they narrow the list
    rows = _rows(_body(finance.get(url + "?period=2026-10&q=Globex&format=csv")))
    assert [row["id"] for row in rows] == [str(world.other_item.pk)]
    rows = _rows(_body(finance.get(url + "?period=2026-10&currency=EUR&format=csv")))
    assert sorted(row["id"] for row in rows) == sorted([str(world.item.pk), str(void_item.pk)])


def test_the_csv_names_the_client_in_the_admin_and_the_api(finance, world):
    admin_rows = _rows(_body(finance.get(reverse("admin:billing_export") + "?period=2026-10")))
    api = api_as(world.users["finance"]).get("/api/v1/billable-items/export/csv/?period=2026-10")
    api_rows = _rows(_body(api))
    for rows in (admin_rows, api_rows):
        assert {row["client"]: row["client_name"] for row in rows} == {
            str(world.acme.pk): "ACME",
            str(world.globex.pk): "Globex",
        }


def test_export_pending_and_mark_them_exported_in_one_step(finance, world):
    BillableItem.objects.filter(pk=world.other_item.pk).update(status="invoiced")
    response = finance.post(reverse("admin:billing_export") + "?period=2026-10&format=csv")
    assert response.status_code == 200
    assert "billable-items-2026-10-exported-" in response["Content-Disposition"]
    rows = _rows(_body(response))
    assert [(row["id"], row["status"]) for row in rows] == [(str(world.item.pk), "exported")]
    world.item.refresh_from_db()
    assert world.item.status == "exported"
    # a second press finds nothing pending and writes nothing
    again = finance.post(reverse("admin:billing_export") + "?period=2026-10&format=csv")
    assert again.status_code == 302
    assert "Nothing to export: none of the listed items is pending." in _notes(
        finance.get(again["Location"])
    )
    assert BillableItem.objects.filter(status="exported").count() == 1


def test_export_pending_and_mark_exported_a_month_of_70000_items(finance, world, postgres):
    # given a month with 70,000 pending items more than world's: more ids than PostgreSQL's
    # protocol carries as parameters of one statement (supportbilling.prepared)
    insert_items(client_id=world.acme.pk, count=70_000)
    pending = BillableItem.objects.filter(period="2026-10-01", status="pending").count()
    assert pending > SERVER_BOUND_PARAMS_MAX
    # when finance exports the pending ones and marks them exported in one step
    response = finance.post(reverse("admin:billing_export") + "?period=2026-10&format=csv")
    # then every one is in the file and marked exported, each with its audit row
    assert response.status_code == 200
    assert _body(response).count(b"\r\n") == pending + 1  # the header
    assert BillableItem.objects.filter(period="2026-10-01", status="exported").count() == pending
    events = BillingEvent.objects.filter(
        action="item_status", detail__status=["pending", "exported"]
    )
    assert events.count() == pending


def test_the_list_offers_exports_of_what_it_shows(finance, world):
    page = finance.get(CHANGELIST + "?period=2026-10&currency=EUR").content.decode()
    assert "export/?period=2026-10&amp;currency=EUR&amp;format=csv" in page
    assert "Export 1 pending &amp; mark exported" in page


def test_copy_of_a_filtered_list_is_the_python_writers_file(world, void_item, postgres):
    items = BillableItem.objects.filter(
        client__name__icontains="acm", status__in=["pending", "void"]
    )
    python = "".join(csv_chunks(billable_items_export_rows(items=items))).encode()
    assert python.count(b"\r\n") == 3
    assert b"".join(copy_csv_chunks(items=items)) == python
    assert python.splitlines()[0].decode() == ",".join(BILLABLE_ITEM_EXPORT_COLUMNS)


# --- The periods page ----------------------------------------------------------------------


def test_the_index_links_the_one_periods_page(finance, world, time_machine):
    index = finance.get(reverse("admin:index")).content.decode()
    url = reverse("admin:billing_periods")
    assert f'href="{url}"' in index
    assert url == reverse("admin:packages_billingperiod_changelist")


def test_the_periods_page_shows_items_per_status_who_closed_and_the_next_step(
    finance, world, void_item, time_machine
):
    time_machine.move_to(dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.UTC), tick=False)
    BillingPeriod.objects.update_or_create(
        month=dt.date(2026, 10, 1),
        defaults={
            "status": PeriodStatus.CLOSED,
            "closed_at": dt.datetime(2026, 11, 1, 0, 5, tzinfo=dt.UTC),
            "closed_by": world.users["finance"],
        },
    )
    page = finance.get(reverse("admin:billing_periods"))
    october = next(p for p in page.context["periods"] if p.label == "2026-10")
    assert october.closed_by == world.users["finance"].username
    eur = next(row for row in october.by_status if row["currency"] == "EUR")
    assert [(s["label"], s["count"]) for s in eur["statuses"]] == [
        ("pending", 1),
        ("exported", 0),
        ("invoiced", 0),
        ("void", 1),
    ]
    assert october.next_step == ("Export the 2 pending item(s) to the billing system.", "pending")
    html = page.content.decode()
    assert "2026-11-01 00:05" in html and "pending" in html and "void" in html
    september = next(p for p in page.context["periods"] if p.label == "2026-09")
    assert (
        september.next_step[0] == "Close the month: its items are written and its time is locked."
    )


def test_closing_asks_for_a_confirmation_that_says_what_is_written(finance, world, time_machine):
    TimeEntryFactory(ticket=world.ticket, hours=Decimal("11.25"), work_date=dt.date(2026, 10, 2))
    time_machine.move_to(dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.UTC), tick=False)
    url = reverse("admin:billing_period_close", args=["2026-10"])
    confirm = finance.get(url)
    assert confirm.status_code == 200
    preview = confirm.context["preview"]
    # the fees exist already in the world: the overtime of ACME is what the close writes
    assert (preview.subscriptions, preview.items) == (2, 1)
    assert preview.expected == [
        {"kind": "Overtime", "currency": "EUR", "count": 1, "total": Money("135.00", "EUR")}
    ]
    assert "Close 2026-10 and write 1 item(s)" in confirm.content.decode()
    assert not BillingPeriod.objects.filter(status=PeriodStatus.CLOSED).exists()
    response = finance.post(url, follow=True)
    assert "2026-10 closed: 1 billable item(s) written." in _notes(response)


def test_operators_see_the_months_but_no_money_and_no_close(client, world, time_machine):
    client.force_login(world.users["operator"])
    page = client.get(reverse("admin:billing_periods"))
    assert page.status_code == 200 and b"550.00" not in page.content
    assert client.get(reverse("admin:billing_period_close", args=["2026-09"])).status_code == 403


# --- The adjustment form -------------------------------------------------------------------


def test_the_adjustment_form_starts_with_the_client(finance, world):
    url = reverse("admin:billing_adjustment_add")
    first = finance.get(url + "?period=2026-10")
    assert b'id="adjustment-form"' not in first.content  # the client comes first
    page = finance.get(url + f"?client={world.globex.pk}&period=2026-10")
    choices = [label for _, label in page.context["form"].fields["subscription"].choices]
    assert choices == ["---------", f"Globex: Gold #{world.other_subscription.pk} (Active)"]
    html = page.content.decode()
    assert '<span class="sbt-currency" id="adjustment-currency">USD</span>' in html
    assert 'value="2026-10"' in html


def test_after_an_adjustment_the_list_keeps_the_month(finance, world):
    response = finance.post(
        reverse("admin:billing_adjustment_add"),
        {"client": world.acme.pk, "period": "2026-09", "amount": "-40.00", "reason": "SLA credit"},
    )
    assert response["Location"] == CHANGELIST + "?period=2026-09"
