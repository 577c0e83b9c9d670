"""The cost calculator answers with the rollup's own arithmetic (statement_compute)."""

import datetime as dt
from decimal import Decimal

import pytest

from billing.calculations import statement_compute
from clientarea.templatetags.portal import money
from packages.models import BillingMode
from tests.clientarea.conftest import figures, section
from tests.factories import (
    SubscriptionFactory,
    TicketFactory,
    TimeEntryFactory,
    package_with_prices,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def gold(portal_user):
    """10 h included, 500.00 EUR a month, 60.00 EUR per extra hour; 8.75 h used in October."""
    subscription = SubscriptionFactory(
        client=portal_user.client, package=package_with_prices({"EUR": ("500.00", "60.00")})
    )
    ticket = TicketFactory(subscription=subscription)
    for hours in ("5.00", "3.75"):
        TimeEntryFactory(ticket=ticket, hours=Decimal(hours), work_date=dt.date(2026, 10, 5))
    return subscription


@pytest.mark.parametrize(
    ("typed", "extra"),
    [
        ("", "0"),
        ("1", "1"),
        ("1.25", "1.25"),
        ("2:30", "2.5"),
        ("150m", "2.5"),
        ("3,75", "3.75"),
        ("40", "40"),
    ],
)
def test_the_estimate_is_the_rollups_arithmetic(signed_in, gold, typed, extra):
    # given the statement the rollup would compute with the extra hours
    expected = statement_compute(
        billing_mode=BillingMode.RECURRING,
        currency="EUR",
        included_hours=Decimal("10.00"),
        used_hours=Decimal("8.75") + Decimal(extra),
        fee=Decimal("500.00"),
        hourly_rate=Decimal("60.00"),
    )
    # when the calculator asks the server
    response = signed_in.get(f"/subscriptions/{gold.pk}/estimate/", {"extra": typed})
    # then every figure is the same, to the cent
    assert response.status_code == 200
    data = response.json()
    assert Decimal(data["used_hours"]) == expected.used_hours
    assert Decimal(data["overtime_hours"]) == expected.overtime_hours
    assert Decimal(data["overtime_amount"]) == expected.overtime_amount.amount
    assert Decimal(data["fee"]) == expected.fee.amount
    assert Decimal(data["total"]) == expected.total.amount
    assert data["display"]["total"] == money(expected.total)
    assert data["period"] == "2026-10"


def test_a_worked_example(signed_in, gold):
    # 8.75 h used + 2.50 h more = 11.25 h: 1.25 h over at 60.00 = 75.00, total 575.00
    data = signed_in.get(f"/subscriptions/{gold.pk}/estimate/?extra=2.5").json()
    assert data["overtime_hours"] == "1.25"
    assert data["display"]["overtime_amount"] == "€75.00"
    assert data["display"]["total"] == "€575.00"


def test_without_javascript_the_page_shows_the_same_estimate(signed_in, gold):
    response = signed_in.get("/", {"subscription": gold.pk, "extra": "2.5"})

    html = section(response.content.decode(), f"subscription-{gold.pk}")
    assert 'data-field="total">€575.00<' in html
    assert 'data-field="overtime_amount">€75.00<' in html
    assert figures(html)["total"] == ["€500.00"]  # the month so far is unchanged


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("abc", "Enter hours as 1.25, 1:15 or 75m."),
        ("0.1", "quarter hours"),
        ("800", "at most 744 hours"),
        ("-1", "Enter hours"),
        ("1e3", "Enter hours"),
        ("NaN", "Enter hours"),
    ],
)
def test_nonsense_is_refused_with_a_message(signed_in, gold, typed, message):
    response = signed_in.get(f"/subscriptions/{gold.pk}/estimate/", {"extra": typed})

    assert response.status_code == 400
    assert message in " ".join(response.json()["extra"])


def test_nonsense_on_the_page_is_shown_next_to_the_field(signed_in, gold):
    response = signed_in.get("/", {"subscription": gold.pk, "extra": "0.1"})

    assert response.status_code == 200
    assert "Time is billed in quarter hours" in response.content.decode()


def test_a_bucket_has_no_calculator(signed_in, portal_user):
    bucket = SubscriptionFactory(
        client=portal_user.client,
        package=package_with_prices({"EUR": ("900.00", "0.00")}, billing_mode=BillingMode.ONE_TIME),
    )
    response = signed_in.get(f"/subscriptions/{bucket.pk}/estimate/?extra=1")
    assert response.status_code == 400


def test_another_clients_subscription_is_not_found(signed_in):
    foreign = SubscriptionFactory()
    response = signed_in.get(f"/subscriptions/{foreign.pk}/estimate/?extra=1")
    assert response.status_code == 404
