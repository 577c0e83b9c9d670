"""The dashboard's figures on known data: one card per subscription, as the client reads it."""

import datetime as dt
from decimal import Decimal

import pytest

from packages.models import BillingMode, SubscriptionStatus
from tests.clientarea.conftest import SEPTEMBER, figure, figures, section
from tests.factories import (
    ClientUserFactory,
    OperatorFactory,
    SubscriptionFactory,
    TicketFactory,
    TimeEntryFactory,
    package_with_prices,
)

pytestmark = pytest.mark.django_db


def log(subscription, *hours, day=14, month=10, ticket=None, **fields):
    ticket = ticket or TicketFactory(subscription=subscription)
    for value in hours:
        TimeEntryFactory(
            ticket=ticket,
            subscription=subscription,
            hours=Decimal(value),
            work_date=dt.date(2026, month, day),
            **fields,
        )
    return ticket


def card(signed_in, subscription, **headers):
    response = signed_in.get("/", **headers)
    assert response.status_code == 200
    return section(response.content.decode(), f"subscription-{subscription.pk}")


def test_recurring_under_the_package(signed_in, portal_user):
    # given 10 h included at 500.00 EUR + 60.00 EUR/h, 7.50 h used in October (and 3 h in
    # September, which does not count this month)
    subscription = SubscriptionFactory(
        client=portal_user.client, package=package_with_prices({"EUR": ("500.00", "60.00")})
    )
    log(subscription, "5.00", "2.50")
    log(subscription, "3.00", month=9)
    # when the client opens the dashboard
    html = card(signed_in, subscription)
    # then the card shows the month's usage, a green bar at 75 % and the fee as the total
    shown = figures(html)
    assert shown["included"] == ["10.00 h"]
    assert shown["used"] == ["7.50 h"]
    assert shown["used-clock"] == ["7:30"]
    assert shown["left"] == ["2.50 h"]
    assert shown["overtime"] == ["0.00 h"]
    assert shown["rate"] == ["€60.00"]
    assert shown["overtime-amount"] == ["€0.00"]
    assert shown["fee"] == ["€500.00"]
    assert shown["total"] == ["€500.00"]
    assert 'data-level="ok"' in html
    assert 'role="progressbar"' in html and 'aria-valuenow="75"' in html


def test_bar_turns_amber_from_80_percent_with_a_notice(signed_in, portal_user):
    subscription = SubscriptionFactory(client=portal_user.client)
    log(subscription, "8.00")

    page = signed_in.get("/").content.decode()

    html = section(page, f"subscription-{subscription.pk}")
    assert 'data-level="warning"' in html
    assert figure(html, "percent") == "80%"
    assert f'data-notice="{subscription.pk}"' in page
    assert "You have used 80% of the 10.00 h included" in page


def test_recurring_over_the_package(signed_in, portal_user):
    # given 12.25 h used of 10 h included
    subscription = SubscriptionFactory(
        client=portal_user.client, package=package_with_prices({"EUR": ("500.00", "60.00")})
    )
    log(subscription, "8.00", "4.25")
    # when
    page = signed_in.get("/").content.decode()
    html = section(page, f"subscription-{subscription.pk}")
    # then 2.25 h are outside the package, billed 135.00 on top of the fee; the bar is red
    shown = figures(html)
    assert shown["used"] == ["12.25 h"]
    assert shown["used-clock"] == ["12:15"]
    assert shown["left"] == ["0.00 h"]
    assert shown["overtime"] == ["2.25 h"]
    assert shown["overtime-amount"] == ["€135.00"]
    assert shown["total"] == ["€635.00"]
    assert shown["percent"] == ["122%"]
    assert 'data-level="exhausted"' in html
    assert 'aria-valuenow="100"' in html  # the bar is full; the text says 122 %
    assert "You have used all 10.00 h included" in page


def test_one_time_bucket(signed_in, portal_user):
    # given a 20 h bucket bought for 1,100.00 EUR, 6.50 h used over two months
    bucket = SubscriptionFactory(
        client=portal_user.client,
        package=package_with_prices(
            {"EUR": ("1100.00", "0.00")},
            billing_mode=BillingMode.ONE_TIME,
            included_hours=Decimal("20.00"),
        ),
    )
    log(bucket, "4.00", month=9)
    log(bucket, "2.50")
    # when
    html = card(signed_in, bucket)
    # then the bucket is drawn down across months, with no calculator and no overtime
    shown = figures(html)
    assert shown["included"] == ["20.00 h"]
    assert shown["used"] == ["6.50 h"]
    assert shown["left"] == ["13.50 h"]
    assert shown["fee"] == ["€1,100.00"]
    assert shown["state"] == ["Active"]
    assert "overtime" not in shown
    assert "calculator" not in html
    assert 'aria-valuenow="32"' in html


def test_depleted_bucket_is_said_plainly(signed_in, portal_user):
    bucket = SubscriptionFactory(
        client=portal_user.client,
        status=SubscriptionStatus.DEPLETED,
        package=package_with_prices(
            {"EUR": ("250.00", "0.00")},
            billing_mode=BillingMode.ONE_TIME,
            included_hours=Decimal("5.00"),
        ),
    )
    log(bucket, "3.00", "2.00")

    html = card(signed_in, bucket)

    assert figure(html, "state") == "Depleted"
    assert figure(html, "left") == "0.00 h"
    assert "Depleted: all 5.00 h of this package are used" in html
    assert 'data-level="exhausted"' in html


def test_pay_per_hour(signed_in, portal_user):
    # given no hours included, no fee, 75.00 EUR per hour, 3 h used
    subscription = SubscriptionFactory(
        client=portal_user.client,
        package=package_with_prices({"EUR": ("0.00", "75.00")}, included_hours=Decimal("0")),
    )
    log(subscription, "1.00", "2.00")
    # when
    html = card(signed_in, subscription)
    # then every hour is billed and there is no bar to fill
    shown = figures(html)
    assert shown["used"] == ["3.00 h"]
    assert shown["overtime"] == ["3.00 h"]
    assert shown["overtime-amount"] == ["€225.00"]
    assert shown["fee"] == ["€0.00"]
    assert shown["total"] == ["€225.00"]
    assert "left" not in shown
    assert 'role="progressbar"' not in html
    assert "Pay per hour" in html


@pytest.mark.parametrize(
    ("currency", "language", "fee", "overtime"),
    [
        ("USD", "en", "$550.00", "$97.50"),
        ("GBP", "en", "£430.00", "£78.00"),
        ("PLN", "pl", "2 100,00 zł", "375,00 zł"),
        ("EUR", "de", "500,00 €", "90,00 €"),
    ],
)
def test_money_in_the_clients_currency_and_locale(client, currency, language, fee, overtime):
    # given a client in ``currency`` with 11.50 h used of 10 h
    package = package_with_prices(
        {
            "EUR": ("500.00", "60.00"),
            "USD": ("550.00", "65.00"),
            "GBP": ("430.00", "52.00"),
            "PLN": ("2100.00", "250.00"),
        }
    )
    member = ClientUserFactory(client__currency=currency)
    subscription = SubscriptionFactory(client=member.client, package=package)
    log(subscription, "11.50")
    client.force_login(member.user)
    # when the browser asks for ``language``
    html = card(client, subscription, HTTP_ACCEPT_LANGUAGE=language)
    # then amounts are in the client's currency, written the way its readers write them
    shown = {
        name: [v.replace("\xa0", " ") for v in values] for name, values in figures(html).items()
    }
    assert shown["fee"] == [fee]
    assert shown["overtime-amount"] == [overtime]


def test_tickets_with_time_this_month_expand_to_their_entries(signed_in, portal_user):
    # given two tickets with October time and one with September time only
    subscription = SubscriptionFactory(client=portal_user.client)
    operator = OperatorFactory(first_name="Alice", last_name="Admin")
    busy = log(subscription, "1.00", "0.25", day=3, operator=operator, note="Renewed TLS")
    log(subscription, "2.00", day=9, ticket=busy, operator=operator, note="Moved DNS")
    quiet = log(subscription, "0.50", day=12)
    old = log(subscription, "4.00", month=9)
    # when
    html = card(signed_in, subscription)
    # then the card lists the October tickets, newest activity first, with their totals
    assert f'data-ticket="{busy.pk}"' in html and f'data-ticket="{quiet.pk}"' in html
    assert f'data-ticket="{old.pk}"' not in html
    assert figures(html)["ticket-time"] == ["0.50 h", "3.25 h"]
    assert "3 entries" in html and "1 entry" in html
    assert f'href="/tickets/{busy.pk}/"' in html
    assert figures(html)["badge"] == ["Open", "Open"]
    # and each row expands to its entries, with the work log the package shows
    assert "<details" in html and "Alice Admin" in html and "Renewed TLS" in html
    detail = signed_in.get(f"/tickets/{busy.pk}/").content.decode()
    assert "Alice Admin" in detail and "Moved DNS" in detail


def test_work_log_hidden_when_the_package_hides_it(signed_in, portal_user):
    subscription = SubscriptionFactory(
        client=portal_user.client, package=package_with_prices(show_work_log=False)
    )
    operator = OperatorFactory(first_name="Alice", last_name="Admin")
    ticket = log(subscription, "1.25", operator=operator, note="Secret internal detail")

    dashboard = card(signed_in, subscription)
    detail = signed_in.get(f"/tickets/{ticket.pk}/").content.decode()

    for html in (dashboard, detail):
        assert "1.25 h" in html and "1:15" in html  # date and time are always shown
        assert "2026-10-14" in html
        assert "Alice Admin" not in html
        assert "Secret internal detail" not in html


def test_only_current_subscriptions_of_the_own_client_are_shown(signed_in, portal_user):
    ended = SubscriptionFactory(
        client=portal_user.client, start_date=dt.date(2026, 1, 1), end_date=SEPTEMBER
    )
    foreign = SubscriptionFactory()
    log(foreign, "9.00")
    current = SubscriptionFactory(client=portal_user.client)

    page = signed_in.get("/").content.decode()

    assert f'id="subscription-{current.pk}"' in page
    assert f'id="subscription-{ended.pk}"' not in page
    assert f'id="subscription-{foreign.pk}"' not in page
    assert "9.00 h" not in page


def test_no_subscription_says_so(signed_in):
    page = signed_in.get("/").content.decode()
    assert "You have no support package running this month" in page
