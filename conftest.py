"""Shared pytest set-up: services the tests need, the browser, and common fixtures."""

import os

import pytest

# Playwright's sync API runs an event loop in the test thread; Django's ORM must still work.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

IN_CI = os.environ.get("CI", "").lower() == "true"
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")


def need_service(what: str) -> None:
    """A test that needs a service it cannot reach fails in CI and is skipped on a laptop."""
    if IN_CI:
        pytest.fail(f"{what} is required in CI but not available.")
    pytest.skip(f"{what} not available here (set DATABASE_URL/REDIS_URL to run it).")


@pytest.fixture
def postgres(db):
    """The test needs real PostgreSQL (row locks, concurrent connections)."""
    from django.db import connection

    if connection.vendor != "postgresql":
        need_service("PostgreSQL")
    return connection


@pytest.fixture
def redis_url():
    from django.conf import settings

    if not settings.REDIS_URL:
        need_service("Redis")
    import redis

    try:
        redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError:
        need_service(f"Redis at {settings.REDIS_URL}")
    return settings.REDIS_URL


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    if not os.path.exists(CHROMIUM):
        need_service(f"Chromium at {CHROMIUM}")
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM,
        "headless": True,
        "args": [
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
        ],
    }


@pytest.fixture(autouse=True)
def _email_backend(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
