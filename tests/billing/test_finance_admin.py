"""Finance's admin: totals per currency of the filtered items, status actions, no deletes,
adjustments (also after the close), the periods page and its close button, exports."""

import datetime as dt
from decimal import Decimal

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse
from djmoney.money import Money

from billing.models import BillableItem, ExportJob
from packages.models import BillingPeriod
from tests.factories import BillableItemFactory, TimeEntryFactory

CHANGELIST = "/admin/billing/billableitem/"


@pytest.fixture(autouse=True)
def _plain_static_files(settings):
    """Admin pages name their CSS; no collectstatic manifest is needed to test them."""
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.fixture
def finance(client, world):
    client.force_login(world.users["finance"])
    return client


@pytest.fixture
def items(world):
    """October: ACME fee 500.00 EUR, overtime 135.00 EUR, a void 99.00 EUR; Globex 550.00 USD."""
    overtime = BillableItemFactory(
        subscription=world.subscription,
        kind="overtime",
        unit="hours",
        quantity=Decimal("2.25"),
        unit_price=Money(Decimal("60.00"), "EUR"),
        amount=Money(Decimal("135.00"), "EUR"),
    )
    void = BillableItemFactory(
        subscription=None,
        client=world.acme,
        kind="adjustment",
        unit_price=Money(Decimal("99.00"), "EUR"),
        amount=Money(Decimal("99.00"), "EUR"),
        status="void",
    )
    return {"fee": world.item, "overtime": overtime, "void": void, "usd": world.other_item}


def _totals(response):
    return {
        row["currency"]: (row["count"], row["total"]) for row in response.context["currency_totals"]
    }


def test_changelist_totals_per_currency_of_the_filtered_rows(finance, items):
    # when finance opens the items of October
    response = finance.get(CHANGELIST + "?period=2026-10")
    # then each currency has its total, void items left out
    assert response.status_code == 200
    assert _totals(response) == {
        "EUR": (2, Money(Decimal("635.00"), "EUR")),
        "USD": (1, Money(Decimal("550.00"), "USD")),
    }
    assert b"635.00" in response.content
    # and a filter narrows the totals with the rows
    response = finance.get(CHANGELIST + "?period=2026-10&currency=EUR&kind=overtime")
    assert _totals(response) == {"EUR": (1, Money(Decimal("135.00"), "EUR"))}
    assert list(response.context["cl"].queryset) == [items["overtime"]]


def test_the_period_filter_lists_each_month_with_items_once_newest_first(finance, items, world):
    # given October's items, and an adjustment in August and in December
    for month in (dt.date(2026, 8, 1), dt.date(2026, 12, 1)):
        BillableItemFactory(subscription=None, client=world.acme, kind="adjustment", period=month)
    # when finance opens the item list
    response = finance.get(CHANGELIST)
    # then the period filter offers those three months, newest first
    period_filter = next(
        spec for spec in response.context["cl"].filter_specs if spec.title == "period"
    )
    assert [choice for choice, _ in period_filter.lookup_choices] == [
        "2026-12",
        "2026-10",
        "2026-08",
    ]
    # and choosing one lists its items
    august = finance.get(CHANGELIST + "?period=2026-08")
    assert august.context["cl"].result_count == 1


@pytest.mark.parametrize("query", ["status=pending", "kind=fee", "client__id__exact={acme}"])
def test_changelist_filters(finance, items, world, query):
    response = finance.get(CHANGELIST + "?" + query.format(acme=world.acme.pk))
    assert response.status_code == 200
    assert response.context["cl"].result_count >= 1


def test_actions_move_items_along_the_allowed_statuses(finance, items):
    BillableItem.objects.filter(pk=items["usd"].pk).update(status="invoiced")
    selected = [items["fee"].pk, items["overtime"].pk, items["usd"].pk]
    response = finance.post(
        CHANGELIST, {"action": "mark_exported", "_selected_action": selected}, follow=True
    )
    statuses = dict(BillableItem.objects.filter(pk__in=selected).values_list("pk", "status"))
    assert statuses == {
        items["fee"].pk: "exported",
        items["overtime"].pk: "exported",
        items["usd"].pk: "invoiced",
    }
    notes = [str(m) for m in get_messages(response.wsgi_request)]
    assert "2 item(s) marked exported." in notes
    assert (
        "1 item(s) left as they were: an invoiced item cannot change any more; enter an "
        "adjustment instead." in notes
    )

    finance.post(CHANGELIST, {"action": "mark_void", "_selected_action": [items["fee"].pk]})
    finance.post(
        CHANGELIST, {"action": "mark_invoiced", "_selected_action": [items["overtime"].pk]}
    )
    items["fee"].refresh_from_db()
    items["overtime"].refresh_from_db()
    assert (items["fee"].status, items["overtime"].status) == ("void", "invoiced")


def test_nothing_is_ever_deleted(finance, items, world):
    response = finance.get(CHANGELIST)
    assert (
        "delete_selected" not in response.context["action_form"].fields["action"].choices.__repr__()
    )
    assert finance.get(f"{CHANGELIST}{items['fee'].pk}/delete/").status_code == 403
    admin_client = finance
    admin_client.force_login(world.users["administrator"])
    assert admin_client.get(f"{CHANGELIST}{items['fee'].pk}/delete/").status_code == 403
    assert BillableItem.objects.count() == 4


def test_adjustment_after_the_close(finance, world, time_machine):
    # given September is closed
    time_machine.move_to(dt.datetime(2026, 10, 20, 9, 0, tzinfo=dt.UTC), tick=False)
    BillingPeriod.objects.filter(month=dt.date(2026, 9, 1)).update(status="closed")
    # when finance enters a credit for ACME in September
    response = finance.post(
        reverse("admin:billing_adjustment_add"),
        {"client": world.acme.pk, "period": "2026-09", "amount": "-40.00", "reason": "SLA credit"},
    )
    # then it is an adjustment item in EUR with the reason as description
    assert response.status_code == 302
    credit = BillableItem.objects.get(kind="adjustment")
    assert (credit.period, credit.amount, credit.description, credit.created_by) == (
        dt.date(2026, 9, 1),
        Money(Decimal("-40.00"), "EUR"),
        "SLA credit",
        world.users["finance"],
    )


def test_adjustment_needs_a_reason_and_the_right_subscription(finance, world):
    url = reverse("admin:billing_adjustment_add")
    response = finance.post(
        url, {"client": world.acme.pk, "period": "2026-09", "amount": "10.00", "reason": ""}
    )
    assert response.status_code == 200
    assert response.context["form"].errors == {"reason": ["This field is required."]}
    response = finance.post(
        url,
        {
            "client": world.acme.pk,
            "subscription": world.other_subscription.pk,
            "period": "2026-09",
            "amount": "10.00",
            "reason": "x",
        },
    )
    assert response.context["form"].errors == {
        "subscription": ["Choose one of the client's subscriptions."]
    }
    assert not BillableItem.objects.filter(kind="adjustment").exists()


def test_periods_page_lists_months_and_closes_an_ended_one(finance, world, time_machine):
    # given October has ended and has time over the package
    TimeEntryFactory(ticket=world.ticket, hours=Decimal("11.25"), work_date=dt.date(2026, 10, 2))
    time_machine.move_to(dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.UTC), tick=False)
    page = finance.get(reverse("admin:billing_periods"))
    labels = [(p.label, p.status, p.can_close) for p in page.context["periods"]]
    assert labels == [
        ("2026-11", "open", False),
        ("2026-10", "open", True),
        ("2026-09", "open", True),
    ]
    assert b"Close 2026-10" in page.content
    assert b"Close 2026-11" not in page.content
    # when finance presses "Close 2026-10"
    response = finance.post(reverse("admin:billing_period_close", args=["2026-10"]), follow=True)
    # then October is closed and its overtime billed (the fees exist already in the world)
    assert "2026-10 closed: 1 billable item(s) written." in [
        str(m) for m in get_messages(response.wsgi_request)
    ]
    october = next(p for p in response.context["periods"] if p.label == "2026-10")
    assert october.status == "closed" and not october.can_close
    assert {row["currency"]: row["total"] for row in october.totals} == {
        "EUR": Money(Decimal("635.00"), "EUR"),
        "USD": Money(Decimal("550.00"), "USD"),
    }


def test_closing_a_running_month_is_refused_with_the_reason(finance):
    response = finance.post(reverse("admin:billing_period_close", args=["2026-10"]), follow=True)
    assert [str(m) for m in get_messages(response.wsgi_request)] == [
        "2026-10 has not ended yet; it can be closed from 2026-11-01."
    ]


def test_operators_cannot_use_the_finance_pages(client, world):
    client.force_login(world.users["operator"])
    assert client.get(reverse("admin:billing_periods")).status_code == 200  # months, no money
    assert client.get(reverse("admin:billing_period_close", args=["2026-09"])).status_code == 403
    assert client.post(reverse("admin:billing_period_close", args=["2026-09"])).status_code == 403
    assert client.get(reverse("admin:billing_adjustment_add")).status_code == 403
    assert client.get(reverse("admin:billing_export") + "?period=2026-10").status_code == 403


def test_csv_export_from_the_admin_streams_at_once(finance, items):
    response = finance.get(reverse("admin:billing_export") + "?period=2026-10&format=csv")
    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    body = b"".join(response.streaming_content)
    assert body.decode().count("\n") == 5  # header and four items


def test_xlsx_export_from_the_admin_is_an_export_job_never_built_in_the_request(finance, items):
    # the XLSX address leads to the export jobs page, its form filled in; no file is written
    response = finance.get(reverse("admin:billing_export") + "?period=2026-10&format=xlsx")
    assert response.status_code == 302
    assert response["Location"] == (
        reverse("admin:billing_export_jobs") + "?period=2026-10&format=xlsx"
    )
    assert not ExportJob.objects.exists()
