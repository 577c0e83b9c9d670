"""One range of periods everywhere (supportbilling.periods.period_parse): 2000-01 to 2999-12.
A period outside it is a 4xx or a CommandError through every interface, never a 500."""

import datetime as dt
from io import StringIO

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse

from billing.models import BillableItem
from packages.models import BillingPeriod
from supportbilling.periods import period_parse
from tests.billing.conftest import api_as
from tests.factories import FinanceFactory, SubscriptionFactory

OUTSIDE = ["9999-12", "0000-01", "1999-12", "3000-01"]
RANGE_MESSAGE = "Enter a month from 2000-01 to 2999-12."


@pytest.fixture
def billed_since_2000(db, time_machine):
    """A subscription since December 1999 (as a backdated import could have), billing begun."""
    time_machine.move_to(dt.datetime(2026, 10, 20, 9, 0, tzinfo=dt.UTC), tick=False)
    return SubscriptionFactory(start_date=dt.date(1999, 12, 1))


@pytest.mark.parametrize("value", OUTSIDE)
def test_period_parse_refuses_months_outside_the_range(value):
    with pytest.raises(ValidationError, match=RANGE_MESSAGE):
        period_parse(value)


def test_period_parse_accepts_the_ends_of_the_range():
    assert period_parse("2000-01") == dt.date(2000, 1, 1)
    assert period_parse("2999-12") == dt.date(2999, 12, 1)


@pytest.mark.parametrize("value", OUTSIDE)
def test_the_admin_close_button_refuses_it_with_a_400(billed_since_2000, value):
    # given finance signed in (a 500 would be returned, not raised)
    browser = Client(raise_request_exception=False)
    browser.force_login(FinanceFactory())
    # when a close of that period is posted
    response = browser.post(reverse("admin:billing_period_close", args=[value]))
    # then the periods page says why, and nothing is closed
    assert response.status_code == 400
    assert RANGE_MESSAGE in response.content.decode()
    assert not BillingPeriod.objects.exclude(status="open").exists()
    assert not BillableItem.objects.exists()


@pytest.mark.parametrize("value", OUTSIDE)
def test_the_api_refuses_it_with_a_400(billed_since_2000, value):
    api = api_as(FinanceFactory())
    subscription = billed_since_2000
    requests = [
        api.post("/api/v1/rollups/", {"period": value}, format="json"),
        api.get(f"/api/v1/billable-items/?period={value}"),
        api.get(f"/api/v1/billable-items/export/?period={value}"),
        api.get(f"/api/v1/subscriptions/{subscription.pk}/usage/?period={value}"),
        api.post(
            "/api/v1/billable-items/",
            {
                "client": subscription.client_id,
                "period": value,
                "amount": "10.00",
                "description": "x",
            },
            format="json",
        ),
    ]
    for response in requests:
        assert response.status_code == 400, (response.request["PATH_INFO"], response.content)
        assert RANGE_MESSAGE in response.content.decode()
    assert not BillingPeriod.objects.exclude(status="open").exists()
    assert not BillableItem.objects.exists()


@pytest.mark.parametrize("value", OUTSIDE)
def test_the_rollup_command_refuses_it(billed_since_2000, value):
    with pytest.raises(CommandError, match=RANGE_MESSAGE):
        call_command("rollup", "--period", value, stdout=StringIO())
    assert not BillableItem.objects.exists()


@pytest.mark.parametrize("value", OUTSIDE)
def test_the_admin_export_and_adjustment_refuse_it(billed_since_2000, client, value):
    client.force_login(FinanceFactory())
    export = client.get(reverse("admin:billing_export") + f"?period={value}", follow=True)
    assert RANGE_MESSAGE in export.content.decode()
    adjustment = client.post(
        reverse("admin:billing_adjustment_add"),
        {
            "client": billed_since_2000.client_id,
            "period": value,
            "amount": "-40.00",
            "reason": "SLA credit",
        },
    )
    assert adjustment.status_code == 200
    assert adjustment.context["form"].errors == {"period": [RANGE_MESSAGE]}
    assert not BillableItem.objects.exists()
