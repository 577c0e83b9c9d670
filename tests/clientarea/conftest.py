"""Fixtures of the portal tests: a signed-in client user, frozen time, reading figures."""

import datetime as dt
import re
from decimal import Decimal

import pytest
from django.core.cache import caches

from billing.services.rollup import period_close
from tests.factories import (
    ClientUserFactory,
    SubscriptionFactory,
    TicketFactory,
    TimeEntryFactory,
    package_with_prices,
)

# "Now" in every portal test: 20 October 2026, so October is the open month.
NOW = dt.datetime(2026, 10, 20, 9, 0, tzinfo=dt.UTC)
OCTOBER = dt.date(2026, 10, 1)
SEPTEMBER = dt.date(2026, 9, 1)
AUGUST = dt.date(2026, 8, 1)

_FIGURE = re.compile(r'data-figure="([\w-]+)"[^>]*>([^<]*)<')


@pytest.fixture(autouse=True)
def _plain_static_files(settings):
    """Static URLs without the manifest, so these tests do not need collectstatic."""
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.fixture(autouse=True)
def _empty_fragment_cache():
    """Each test starts without cached dashboards and cards (the caches live in the process)."""
    caches["fragments"].clear()
    caches["dashboards"].clear()


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """Factories set a password on every user; a fast hasher keeps these tests quick."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def october(time_machine):
    time_machine.move_to(NOW, tick=False)


@pytest.fixture
def portal_user(db):
    """A client user of an EUR client; ``portal_user.client`` is the Client."""
    return ClientUserFactory(client__currency="EUR")


@pytest.fixture
def signed_in(client, portal_user):
    client.force_login(portal_user.user)
    return client


def section(html: str, element_id: str) -> str:
    """The HTML of the element with ``id`` up to the end of its section."""
    start = html.index(f'id="{element_id}"')
    end = html.find("</section>", start)
    return html[start:end]


def figures(html: str) -> dict[str, list[str]]:
    """Text of every element marked ``data-figure``, by name, in page order."""
    found: dict[str, list[str]] = {}
    for name, text in _FIGURE.findall(html):
        found.setdefault(name, []).append(" ".join(text.split()))
    return found


def figure(html: str, name: str) -> str:
    values = figures(html).get(name)
    assert values, f"no {name} figure on the page"
    return values[0]


def log(subscription, hours, day):
    """Time on a new ticket of the subscription."""
    TimeEntryFactory(
        ticket=TicketFactory(subscription=subscription), hours=Decimal(hours), work_date=day
    )


@pytest.fixture
def gold(portal_user):
    """10 h at 500.00 EUR + 60.00 EUR/h since August: 4 h in August, 12.25 h in September,
    1 h in October (still open). August and September are closed by the rollup."""
    subscription = SubscriptionFactory(
        client=portal_user.client,
        start_date=AUGUST,
        package=package_with_prices({"EUR": ("500.00", "60.00")}, name="Gold"),
    )
    log(subscription, "4.00", dt.date(2026, 8, 10))
    log(subscription, "8.00", dt.date(2026, 9, 3))
    log(subscription, "4.25", dt.date(2026, 9, 4))
    log(subscription, "1.00", dt.date(2026, 10, 2))
    period_close(month=AUGUST)
    period_close(month=SEPTEMBER)
    return subscription
