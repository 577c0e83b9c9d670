"""A closed month can never be reopened or deleted: not in the admin, and not in PostgreSQL
(the trigger of tickets/migrations/0002_billingperiod_protect)."""

import datetime as dt

import pytest
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from packages.models import BillingPeriod, PeriodStatus
from tests.factories import AdminFactory, FinanceFactory

SEPTEMBER = dt.date(2026, 9, 1)
OCTOBER = dt.date(2026, 10, 1)


def closed_period(month=SEPTEMBER, closed_by=None) -> BillingPeriod:
    return BillingPeriod.objects.create(
        month=month, status=PeriodStatus.CLOSED, closed_at=timezone.now(), closed_by=closed_by
    )


# --- The admin --------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("user_factory", [AdminFactory, FinanceFactory])
def test_no_one_deletes_or_edits_a_period_in_the_admin(client, user_factory):
    # given a closed September and an administrator (or finance) signed in
    period = closed_period()
    client.force_login(user_factory())
    delete = reverse("admin:packages_billingperiod_delete", args=[period.pk])
    change = reverse("admin:packages_billingperiod_change", args=[period.pk])
    changelist = reverse("admin:packages_billingperiod_changelist")
    # then the delete page is refused, so is a bulk delete, and the change page is read-only
    assert client.get(delete).status_code == 403
    assert client.post(delete, {"post": "yes"}).status_code == 403
    page = client.get(changelist)
    assert page.status_code == 200 and "delete_selected" not in page.content.decode()
    client.post(changelist, {"action": "delete_selected", "_selected_action": [period.pk]})
    assert client.post(change, {"month": "2026-09-01", "status": "open"}).status_code == 403
    period.refresh_from_db()
    assert period.status == PeriodStatus.CLOSED


# --- PostgreSQL -----------------------------------------------------------------------------


def refused(statement) -> str:
    with pytest.raises(IntegrityError) as excinfo, transaction.atomic():
        statement()
    return str(excinfo.value)


@pytest.mark.parametrize("status", [PeriodStatus.CLOSED, PeriodStatus.CLOSING])
def test_postgresql_refuses_to_delete_a_closed_or_closing_month(postgres, status):
    period = BillingPeriod.objects.create(month=SEPTEMBER, status=status)
    # raw SQL, a queryset delete and a model delete are all refused
    with postgres.cursor() as cursor:
        message = refused(
            lambda: cursor.execute("DELETE FROM packages_billingperiod WHERE id = %s", [period.pk])
        )
    assert f"Billing period 2026-09 is {status}: it can never be deleted." in message
    refused(lambda: BillingPeriod.objects.filter(pk=period.pk).delete())
    refused(period.delete)
    assert BillingPeriod.objects.filter(pk=period.pk, status=status).exists()


def test_postgresql_refuses_to_reopen_a_month(postgres):
    closed = closed_period()
    closing = BillingPeriod.objects.create(month=OCTOBER, status=PeriodStatus.CLOSING)
    message = refused(
        lambda: BillingPeriod.objects.filter(pk=closed.pk).update(status=PeriodStatus.OPEN)
    )
    assert "Billing period 2026-09 is closed: it can never be reopened." in message
    refused(lambda: BillingPeriod.objects.filter(pk=closed.pk).update(status=PeriodStatus.CLOSING))
    with postgres.cursor() as cursor:
        refused(
            lambda: cursor.execute(
                "UPDATE packages_billingperiod SET status = 'open' WHERE id = %s", [closing.pk]
            )
        )
    assert list(BillingPeriod.objects.order_by("month").values_list("status", flat=True)) == [
        PeriodStatus.CLOSED,
        PeriodStatus.CLOSING,
    ]


def test_postgresql_refuses_to_move_a_month(postgres):
    closed = closed_period()
    opened = BillingPeriod.objects.create(month=OCTOBER)  # even an open month keeps its date
    message = refused(
        lambda: BillingPeriod.objects.filter(pk=closed.pk).update(month=dt.date(2026, 8, 1))
    )
    assert "The month of billing period 2026-09 cannot change." in message
    refused(lambda: BillingPeriod.objects.filter(pk=opened.pk).update(month=dt.date(2026, 11, 1)))


def test_postgresql_lets_a_month_close_and_its_closer_leave(postgres):
    # given an open October
    period = BillingPeriod.objects.create(month=OCTOBER)
    closer = FinanceFactory()
    # when it closes as the rollup closes it
    BillingPeriod.objects.filter(pk=period.pk).update(status=PeriodStatus.CLOSING)
    BillingPeriod.objects.filter(pk=period.pk).update(
        status=PeriodStatus.CLOSED, closed_at=timezone.now(), closed_by=closer
    )
    # and the user who closed it is deleted later
    User.objects.filter(pk=closer.pk).delete()
    # then the month stays closed, without its closer
    period.refresh_from_db()
    assert (period.status, period.closed_by) == (PeriodStatus.CLOSED, None)


def test_postgresql_refuses_to_delete_even_an_open_month(postgres):
    # given billing began in September (its open row is the billing start)
    period = BillingPeriod.objects.create(month=SEPTEMBER)
    # when someone deletes that row
    message = refused(lambda: BillingPeriod.objects.filter(pk=period.pk).delete())
    # then it is refused: the billing start cannot move forward under unbilled months
    assert "Billing period 2026-09 is open: it can never be deleted." in message
    assert BillingPeriod.objects.filter(pk=period.pk).exists()


def test_postgresql_refuses_to_rewrite_when_and_by_whom_a_month_closed(postgres):
    period = closed_period()
    message = refused(
        lambda: BillingPeriod.objects.filter(pk=period.pk).update(closed_at=timezone.now())
    )
    assert "Billing period 2026-09 is closed: when and by whom cannot change." in message
    refused(lambda: BillingPeriod.objects.filter(pk=period.pk).update(closed_by=FinanceFactory()))
