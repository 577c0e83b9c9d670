"""The count behind the password-reset limit: per e-mail address and per client address, in a
sliding hour, keeping no readable address and only the rows of the last hour."""

import datetime as dt

import pytest

from customers.models import PasswordResetRequest
from customers.services import PASSWORD_RESETS_PER_EMAIL, password_reset_request_record

pytestmark = pytest.mark.django_db
NOW = dt.datetime(2026, 10, 20, 9, 0, tzinfo=dt.UTC)


def _ask(email="jane@acme.test", address="203.0.113.7", now=NOW):
    return password_reset_request_record(email=email, client_address=address, now=now)


def test_requests_over_the_limit_are_refused_and_not_stored():
    answers = [_ask() for _ in range(PASSWORD_RESETS_PER_EMAIL + 2)]
    assert answers == [True] * PASSWORD_RESETS_PER_EMAIL + [False, False]
    # two rows (address, client address) per allowed request, none for refused ones
    assert PasswordResetRequest.objects.count() == 2 * PASSWORD_RESETS_PER_EMAIL
    assert not PasswordResetRequest.objects.filter(key__contains="acme").exists()


def test_the_window_slides_and_old_rows_go():
    for minute in (0, 20, 40):
        assert _ask(now=NOW + dt.timedelta(minutes=minute))
    assert not _ask(now=NOW + dt.timedelta(minutes=59))
    # an hour after the first request, one place is free again, and its rows are gone
    assert _ask(now=NOW + dt.timedelta(minutes=60, seconds=1))
    assert not PasswordResetRequest.objects.filter(created_at=NOW).exists()
