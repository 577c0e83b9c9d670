"""The API's top-up blocks: sold through POST /subscriptions/ (topup_of, expires_on), shown
on the subscription and in its month's usage (block_hours_*, blocks); refusals are 400s that
change nothing (docs/api.md, docs/billing-rules.md "Top-up blocks")."""

import datetime as dt
from decimal import Decimal

import pytest

from packages.models import BillingMode, Subscription
from tests.api.conftest import api_as
from tests.factories import TimeEntryFactory, package_with_prices

pytestmark = pytest.mark.django_db


@pytest.fixture
def block_package():
    return package_with_prices(
        {"EUR": ("400.00", "0.00"), "USD": ("450.00", "0.00")},
        billing_mode=BillingMode.ONE_TIME,
        included_hours=Decimal("10"),
        name="Block 10 h",
    )


def test_staff_sell_a_block_and_the_usage_shows_the_split(world, block_package):
    api = api_as(world.users["administrator"])
    month = world.entry.work_date.replace(day=1)
    response = api.post(
        "/api/v1/subscriptions/",
        {
            "client": world.acme.pk,
            "package": block_package.pk,
            "start_date": str(month),
            "topup_of": world.subscription.pk,
            "expires_on": "2027-03-31",
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    assert response.json()["topup_of"] == world.subscription.pk
    assert response.json()["expires_on"] == "2027-03-31"
    block_id = response.json()["id"]
    # 1 h logged already (the world's entry) + 12.5 h: 10 h included, 3.5 h from the block
    TimeEntryFactory(ticket=world.ticket, hours=Decimal("12.50"), work_date=world.entry.work_date)
    usage = api.get(
        f"/api/v1/subscriptions/{world.subscription.pk}/usage/?period={month:%Y-%m}"
    ).json()
    assert (usage["block_hours_available"], usage["block_hours_used"]) == ("10.00", "3.50")
    assert usage["overtime_hours"] == "0.00"
    assert usage["blocks"] == [
        {
            "block": block_id,
            "hours": "10.00",
            "available": "10.00",
            "drawn": "3.50",
            "left": "6.50",
            "expires_on": "2027-03-31",
        }
    ]
    # a client's user sees them on its own subscription
    client = api_as(world.users["client"])
    assert client.get(f"/api/v1/subscriptions/{block_id}/").json()["topup_of"] == (
        world.subscription.pk
    )


def test_a_sale_that_is_not_a_valid_block_is_refused_and_writes_nothing(world, block_package):
    api = api_as(world.users["administrator"])
    month = str(world.entry.work_date.replace(day=1))
    count = Subscription.objects.count()
    bodies = [
        # another client's subscription
        {
            "client": world.acme.pk,
            "package": block_package.pk,
            "topup_of": world.other_subscription.pk,
        },
        # a monthly package as a block
        {"client": world.acme.pk, "package": world.package.pk, "topup_of": world.subscription.pk},
        # an expiry without a block
        {"client": world.acme.pk, "package": block_package.pk, "expires_on": "2027-01-31"},
        # an expiry before the start
        {
            "client": world.acme.pk,
            "package": block_package.pk,
            "topup_of": world.subscription.pk,
            "expires_on": "2020-01-31",
        },
        # no such subscription
        {"client": world.acme.pk, "package": block_package.pk, "topup_of": 999999},
    ]
    for body in bodies:
        response = api.post("/api/v1/subscriptions/", {**body, "start_date": month}, format="json")
        assert response.status_code == 400, (body, response.content)
    assert Subscription.objects.count() == count


def test_usage_of_a_subscription_without_blocks_says_zero(world):
    api = api_as(world.users["client"])
    usage = api.get(f"/api/v1/subscriptions/{world.subscription.pk}/usage/").json()
    assert (usage["block_hours_available"], usage["block_hours_used"], usage["blocks"]) == (
        "0.00",
        "0.00",
        [],
    )


def test_the_day_after_the_expiry_month_the_block_no_longer_serves(world, block_package):
    # a block that expired before the month asked for serves nothing in it
    expired = Subscription.objects.create(
        client=world.acme,
        package=block_package,
        start_date=dt.date(2026, 9, 1),
        bucket_hours=Decimal("10"),
        topup_of=world.subscription,
        expires_on=dt.date(2026, 9, 30),
    )
    api = api_as(world.users["administrator"])
    month = world.entry.work_date.replace(day=1)
    usage = api.get(
        f"/api/v1/subscriptions/{world.subscription.pk}/usage/?period={month:%Y-%m}"
    ).json()
    assert expired.pk not in [b["block"] for b in usage["blocks"]]
