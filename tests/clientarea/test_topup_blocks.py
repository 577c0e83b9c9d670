"""The portal's top-up blocks (docs/billing-rules.md, "Top-up blocks"): the card says what
this month draws from each block and what is left; the history says what each closed month
drew and which block expired unused."""

import datetime as dt
from decimal import Decimal

import pytest

from billing.services.rollup import period_close
from packages.models import BillingMode
from packages.services import subscription_create
from tests.clientarea.conftest import SEPTEMBER, figure, section
from tests.factories import (
    ClientUserFactory,
    SubscriptionFactory,
    TicketFactory,
    TimeEntryFactory,
    package_with_prices,
)

pytestmark = pytest.mark.django_db
OCTOBER = dt.date(2026, 10, 1)


def log(subscription, hours, day):
    TimeEntryFactory(
        ticket=TicketFactory(client=subscription.client, subscription=subscription),
        hours=Decimal(hours),
        work_date=day,
    )


def sell_block(monthly, hours, start, expires_on):
    return subscription_create(
        client=monthly.client,
        package=package_with_prices(
            {"EUR": ("300.00", "0.00")},
            billing_mode=BillingMode.ONE_TIME,
            included_hours=Decimal(hours),
            name=f"Block {hours} h",
        ),
        start_date=start,
        topup_of=monthly,
        expires_on=expires_on,
    )


@pytest.fixture
def gold(portal_user):
    """10 h at 500.00 EUR + 60.00 EUR/h since September; a 5 h block expiring at the end of
    September, a 10 h block expiring 2027-03-31 from October; 12 h in September (closed),
    13.5 h in October."""
    subscription = SubscriptionFactory(
        client=portal_user.client,
        start_date=SEPTEMBER,
        package=package_with_prices({"EUR": ("500.00", "60.00")}, name="Gold"),
    )
    september_block = sell_block(subscription, "5", SEPTEMBER, dt.date(2026, 9, 30))
    october_block = sell_block(subscription, "10", OCTOBER, dt.date(2027, 3, 31))
    log(subscription, "12.00", dt.date(2026, 9, 3))
    log(subscription, "13.50", dt.date(2026, 10, 2))
    period_close(month=SEPTEMBER)
    subscription.september_block = september_block
    subscription.october_block = october_block
    return subscription


def test_the_card_shows_what_the_month_draws_from_each_block(signed_in, gold):
    html = section(signed_in.get("/").content.decode(), f"subscription-{gold.pk}")
    assert (
        f"3.5 h from your 10 h block #{gold.october_block.pk}, 6.5 h left, expires 2027-03-31"
        in html
    )
    assert figure(html, "block-hours") == "3.50 h"
    assert figure(html, "overtime") == "0.00 h"


def test_the_history_shows_the_draw_and_the_block_that_expired_unused(signed_in, gold):
    html = section(signed_in.get("/history/").content.decode(), f"history-{gold.pk}")
    block = gold.september_block.pk
    assert f"2 h from block #{block} (5 h)." in html
    assert f"Block #{block} expired with 3 h unused." in html


def test_another_clients_user_sees_none_of_it(client, gold):
    client.force_login(ClientUserFactory(client__currency="EUR").user)
    assert "from your 10 h block" not in client.get("/").content.decode()
    assert "expired with" not in client.get("/history/").content.decode()
