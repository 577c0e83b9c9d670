"""Settings come from the environment, with the embedded default when it is empty."""

import json
import os
import subprocess
import sys

import pytest
from django.conf import settings

SHOW = """
import json, django
from django.conf import settings
print(json.dumps({
    "engine": settings.DATABASES["default"]["ENGINE"],
    "name": str(settings.DATABASES["default"]["NAME"]),
    "eager": settings.CELERY_TASK_ALWAYS_EAGER,
    "broker": settings.CELERY_BROKER_URL,
    "currencies": list(settings.CURRENCIES),
    "time_zone": settings.TIME_ZONE,
    "debug": settings.DEBUG,
    "hosts": settings.ALLOWED_HOSTS,
}))
"""
KEYS = (
    "DATABASE_URL",
    "REDIS_URL",
    "SECRET_KEY",
    "DEBUG",
    "CURRENCIES",
    "TIME_ZONE",
    "ALLOWED_HOSTS",
)


def settings_with(**env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in KEYS}
    return subprocess.run(
        [sys.executable, "-c", SHOW],
        env={**clean, "DJANGO_SETTINGS_MODULE": "supportbilling.settings", **env},
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_embedded_default_is_sqlite_and_eager_celery():
    shown = json.loads(settings_with(SECRET_KEY="k").stdout)
    assert shown["engine"] == "django.db.backends.sqlite3"
    assert shown["name"].endswith("db.sqlite3")
    assert shown["eager"] is True
    assert shown["currencies"] == ["EUR", "USD", "GBP", "PLN"]
    assert shown["time_zone"] == "UTC"
    assert shown["debug"] is False


def test_the_environment_selects_postgresql_redis_currencies_and_zone():
    shown = json.loads(
        settings_with(
            SECRET_KEY="k",
            DATABASE_URL="postgres://u:p@db:5432/support",
            REDIS_URL="redis://cache:6379/2",
            CURRENCIES="chf, eur",
            TIME_ZONE="Europe/Warsaw",
            ALLOWED_HOSTS="support.example.test, admin.example.test",
        ).stdout
    )
    assert shown["engine"] == "django.db.backends.postgresql"
    assert shown["name"] == "support"
    assert (shown["eager"], shown["broker"]) == (False, "redis://cache:6379/2")
    assert shown["currencies"] == ["CHF", "EUR"]
    assert shown["time_zone"] == "Europe/Warsaw"
    assert shown["hosts"] == ["support.example.test", "admin.example.test"]


def test_a_secret_key_is_required_unless_debug_is_on():
    refused = settings_with()
    assert refused.returncode != 0
    assert "SECRET_KEY must be set when DEBUG is off" in refused.stderr
    assert json.loads(settings_with(DEBUG="1").stdout)["debug"] is True


def test_billing_start_and_start_bounds_are_checked_at_startup():
    refused = settings_with(SECRET_KEY="k", BILLING_START="1999-12")
    assert refused.returncode != 0
    assert "BILLING_START: Enter a month from 2000-01 to 2999-12." in refused.stderr
    refused = settings_with(SECRET_KEY="k", SUBSCRIPTION_START_MAX_MONTHS_AHEAD="-1")
    assert refused.returncode != 0
    assert "SUBSCRIPTION_START_MAX_MONTHS_AHEAD must be 0 to 120 months." in refused.stderr
    assert settings_with(SECRET_KEY="k", BILLING_START="2026-05").returncode == 0


@pytest.mark.parametrize(
    ("name", "value", "message", "accepted"),
    [
        ("REVIEW_WINDOW_DAYS", "five", "REVIEW_WINDOW_DAYS must be a whole number of days.", "7"),
        ("REVIEW_WINDOW_DAYS", "-1", "REVIEW_WINDOW_DAYS must be 0 to 90 days.", "7"),
        ("REVIEW_WINDOW_DAYS", "91", "REVIEW_WINDOW_DAYS must be 0 to 90 days.", "7"),
        # amounts are kept with two decimals
        (
            "CURRENCIES",
            "EUR,KWD",
            "CURRENCIES: KWD has 3 decimal places; amounts are kept with at most two",
            "EUR,JPY,CHF",
        ),
        (
            "CURRENCIES",
            "EUR,XYZ",
            "CURRENCIES: XYZ is not an ISO 4217 currency code.",
            "EUR,JPY,CHF",
        ),
    ],
)
def test_a_setting_out_of_its_range_is_refused_at_startup(name, value, message, accepted):
    refused = settings_with(SECRET_KEY="k", **{name: value})
    assert refused.returncode != 0
    assert message in refused.stderr
    assert settings_with(SECRET_KEY="k", **{name: accepted}).returncode == 0
    assert settings_with(SECRET_KEY="k").returncode == 0  # unset: the default


def test_the_health_check_answers_when_the_database_does(client, db):
    response = client.get("/healthz/")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_the_apps_postgresql_connections_run_without_jit(postgres):
    # JIT compiled the CSV export's COPY for 50 ms before its first byte and cost the month
    # close 4 s of 9 (docs/performance.md); the server's own setting is left alone
    with postgres.cursor() as cursor:
        cursor.execute("SHOW jit")
        assert cursor.fetchone() == ("off",)
