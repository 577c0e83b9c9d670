"""Fixtures of the portal tests: a signed-in client user, frozen time, reading figures."""

import datetime as dt
import re

import pytest
from django.core.cache import caches

from tests.factories import ClientUserFactory

# "Now" in every portal test: 20 October 2026, so October is the open month.
NOW = dt.datetime(2026, 10, 20, 9, 0, tzinfo=dt.UTC)
OCTOBER = dt.date(2026, 10, 1)
SEPTEMBER = dt.date(2026, 9, 1)

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
