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


@pytest.fixture
def celery_eager():
    """Run Celery tasks in the test process, as the embedded default (no REDIS_URL) does."""
    from celery._state import _set_task_join_will_block

    from supportbilling.celery import app

    eager = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = eager
    # Eager tasks run from several threads at once (the concurrency tests) can leave Celery's
    # process-wide "inside a task" flag set: its save-and-restore is not thread-safe. Later
    # tests that wait on a real worker's result would then be refused.
    _set_task_join_will_block(False)


@pytest.fixture(autouse=True, scope="session")
def _media_root(tmp_path_factory):
    """Files the tests store (ticket attachments) go to a temporary directory, never the
    project's media/."""
    from django.conf import settings

    settings.MEDIA_ROOT = str(tmp_path_factory.mktemp("media"))


@pytest.fixture(autouse=True)
def _email_backend(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    # Hashing test passwords with PBKDF2 costs a quarter of a second per user.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _roles_and_schedule_after_flush(request):
    """A transactional test (``transactional_db``, ``live_server``) starts from a flushed
    database: the data migrations' groups and schedule are gone. Put them back, as a fresh
    install has them, so factories such as OperatorFactory work in every kind of test."""
    marker = request.node.get_closest_marker("django_db")
    marked = marker is not None and bool(
        marker.kwargs.get("transaction") or (marker.args and marker.args[0])
    )
    from django.contrib.auth.models import Group

    from supportbilling.roles import OPERATORS_GROUP

    if not marked:
        if {"transactional_db", "live_server"} & set(request.fixturenames):
            request.getfixturevalue("transactional_db")
        elif marker is not None or "db" in request.fixturenames:
            # pytest-django runs tests that reach the database only through a fixture after
            # the transactional ones, which leave a flushed database behind.
            request.getfixturevalue("db")
            if Group.objects.filter(name=OPERATORS_GROUP).exists():
                return
        else:
            return
    from tests.install import roles_and_schedule_restore

    roles_and_schedule_restore()


@pytest.fixture
def smtp_server(settings):
    """A real SMTP server on a free local port, with Django's SMTP backend pointed at it
    (tests/mail.py); ``.received`` holds what it accepted."""
    from tests.mail import mail_server_running

    yield from mail_server_running(settings)
