"""When billing began, and how far back or ahead a subscription may start: the bounds of
``subscription_create_check`` (API, admin, ticket page) and the catch-up that never closes a
month before the billing start."""

import datetime as dt
import importlib
import re
from io import StringIO

import pytest
from django.apps import apps
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.urls import reverse

from billing.models import BillableItem, ItemKind
from billing.selectors.periods import periods_to_close
from billing.services.rollup import period_close
from packages.models import BillingMode, BillingPeriod, PeriodStatus, Subscription
from packages.selectors import billing_start
from packages.services import subscription_create
from tests.billing.conftest import api_as
from tests.factories import (
    ClientFactory,
    FinanceFactory,
    OperatorFactory,
    SubscriptionFactory,
    TicketFactory,
    package_with_prices,
)
from tickets.services import time_entry_log

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 10, 20, 9, 0, tzinfo=dt.UTC)
SUBSCRIPTIONS = "/api/v1/subscriptions/"


@pytest.fixture(autouse=True)
def october(time_machine):
    time_machine.move_to(NOW, tick=False)


@pytest.fixture
def bucket():
    return package_with_prices(
        {"EUR": ("1100.00", "0.00")}, name="20 h", billing_mode=BillingMode.ONE_TIME
    )


def legacy_subscription(start: dt.date) -> Subscription:
    """A subscription written before billing start was recorded (no BillingPeriod row)."""
    return Subscription.objects.create(
        client=ClientFactory(), package=package_with_prices(), start_date=start
    )


# --- Subscription dates ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start_date", "message"),
    [
        ("2000-01-01", "The start date cannot be before 2026-10-01"),
        ("2026-09-30", "The start date cannot be before 2026-10-01"),
        ("2999-01-01", "at most 12 months ahead: 2027-10-31 at the latest"),
        ("2027-11-01", "at most 12 months ahead: 2027-10-31 at the latest"),
    ],
)
def test_the_api_refuses_a_backdated_or_far_future_start(bucket, start_date, message):
    # given an operator and no month billed yet (billing begins with the first sale)
    acme = ClientFactory(currency="EUR")
    # when a subscription is posted starting long ago or far ahead
    response = api_as(OperatorFactory()).post(
        SUBSCRIPTIONS,
        {"client": acme.pk, "package": bucket.pk, "start_date": start_date},
        format="json",
    )
    # then it is a 400 saying why, and nothing is written
    assert response.status_code == 400, response.content
    assert message in response.json()["detail"]
    assert not Subscription.objects.exists()
    assert not BillableItem.objects.exists()
    assert not BillingPeriod.objects.exists()


def test_the_first_subscription_records_that_billing_began_in_its_month(bucket):
    # given nothing sold yet
    assert billing_start() is None
    # when a bucket is sold starting next month, and another one at the furthest month allowed
    subscription_create(client=ClientFactory(), package=bucket, start_date=dt.date(2026, 11, 3))
    subscription_create(client=ClientFactory(), package=bucket, start_date=dt.date(2027, 10, 31))
    # then their months are open periods, billing began with the first, and each fee lands in
    # its month
    assert list(BillingPeriod.objects.order_by("month").values_list("month", "status")) == [
        (dt.date(2026, 11, 1), PeriodStatus.OPEN),
        (dt.date(2027, 10, 1), PeriodStatus.OPEN),
    ]
    assert billing_start() == dt.date(2026, 11, 1)
    assert sorted(BillableItem.objects.values_list("period", flat=True)) == [
        dt.date(2026, 11, 1),
        dt.date(2027, 10, 1),
    ]
    # and a sale starting this month is still possible (billing then begins this month)
    subscription_create(client=ClientFactory(), package=bucket)
    assert billing_start() == dt.date(2026, 10, 1)


def test_a_start_before_the_billing_start_is_refused(bucket):
    # given billing began in August (a subscription sold then)
    SubscriptionFactory(start_date=dt.date(2026, 8, 10))
    # then a start in August is accepted, and in July refused
    subscription_create(client=ClientFactory(), package=bucket, start_date=dt.date(2026, 8, 1))
    with pytest.raises(ValidationError, match="cannot be before 2026-08-01"):
        subscription_create(client=ClientFactory(), package=bucket, start_date=dt.date(2026, 7, 31))
    assert Subscription.objects.count() == 2


def test_the_billing_start_setting_wins_for_imported_data(bucket, settings):
    # given older data imported with BILLING_START = 2026-05
    settings.BILLING_START = "2026-05"
    # then subscriptions may start from May, not before
    subscription_create(client=ClientFactory(), package=bucket, start_date=dt.date(2026, 5, 1))
    with pytest.raises(ValidationError, match="cannot be before 2026-05-01"):
        subscription_create(client=ClientFactory(), package=bucket, start_date=dt.date(2026, 4, 30))
    assert billing_start() == dt.date(2026, 5, 1)


def test_the_distance_ahead_is_a_setting(bucket, settings):
    settings.SUBSCRIPTION_START_MAX_MONTHS_AHEAD = 2
    subscription_create(client=ClientFactory(), package=bucket, start_date=dt.date(2026, 12, 31))
    with pytest.raises(ValidationError, match="at most 2 months ahead: 2026-12-31 at the latest"):
        subscription_create(client=ClientFactory(), package=bucket, start_date=dt.date(2027, 1, 1))


def test_the_admin_form_shows_the_refusal(client, bucket):
    client.force_login(OperatorFactory())
    acme = ClientFactory(currency="EUR")
    response = client.post(
        reverse("admin:packages_subscription_add"),
        {"client": acme.pk, "package": bucket.pk, "start_date": "2000-01-01"},
    )
    assert response.status_code == 200
    assert "The start date cannot be before 2026-10-01" in response.content.decode()
    assert not Subscription.objects.exists()


def test_the_ticket_page_shows_the_refusal(client, bucket, settings):
    # given billing is set to begin next year, so a service cannot start today
    settings.BILLING_START = "2027-01"
    client.force_login(OperatorFactory())
    ticket = TicketFactory(subscription=None, client=ClientFactory(currency="EUR"))
    # when the operator adds a support service on the ticket page
    response = client.post(
        reverse("admin:tickets_ticket_service_add", args=[ticket.pk]), {"package": bucket.pk}
    )
    # then the page says why, and nothing is sold
    assert response.status_code == 400
    assert "The start date cannot be before 2027-01-01" in response.content.decode()
    assert not Subscription.objects.exists()


# --- The catch-up and closing ---------------------------------------------------------------


def test_the_catch_up_starts_at_the_billing_start():
    # given a subscription backdated to 2000 before start dates were checked, and billing that
    # began in August 2026
    legacy = legacy_subscription(dt.date(2000, 1, 1))
    SubscriptionFactory(start_date=dt.date(2026, 8, 1))
    # when every ended month is closed
    out = StringIO()
    call_command("rollup", "--all-ended", stdout=out)
    # then August to September are closed, nothing earlier, and the backdated one is billed
    # from August only
    assert [line.split(":")[0] for line in out.getvalue().splitlines()] == [
        "2026-08 closed",
        "2026-09 closed",
    ]
    assert set(
        BillableItem.objects.filter(subscription=legacy).values_list("period", flat=True)
    ) == {dt.date(2026, 8, 1), dt.date(2026, 9, 1)}
    assert not BillingPeriod.objects.filter(month__lt=dt.date(2026, 8, 1)).exists()


def test_time_before_the_billing_start_is_refused_and_does_not_move_it():
    # given a subscription backdated to 2000 and billing that began in August 2026
    legacy = legacy_subscription(dt.date(2000, 1, 1))
    SubscriptionFactory(start_date=dt.date(2026, 8, 1))
    ticket = TicketFactory(subscription=legacy)
    # when time is logged in July 2026, then it is refused and billing still began in August
    with pytest.raises(
        ValidationError, match=re.escape("2026-07 is before billing began (2026-08)")
    ):
        time_entry_log(
            ticket=ticket, operator=OperatorFactory(), hours="1", work_date=dt.date(2026, 7, 15)
        )
    assert billing_start() == dt.date(2026, 8, 1)
    # and time in August is accepted
    time_entry_log(
        ticket=ticket, operator=OperatorFactory(), hours="1", work_date=dt.date(2026, 8, 15)
    )


def test_nothing_is_closed_before_billing_began():
    legacy_subscription(dt.date(2026, 1, 1))
    assert periods_to_close() == []
    with pytest.raises(CommandError, match="Billing has not begun"):
        call_command("rollup", "--period", "2026-09", stdout=StringIO())
    assert not BillingPeriod.objects.exists()


def test_closing_a_month_before_the_billing_start_is_refused_everywhere(settings):
    # given billing began in August
    SubscriptionFactory(start_date=dt.date(2026, 8, 1))
    message = "2026-07 is before billing began (2026-08): it is never closed or billed."
    # then the service, the command and the API refuse July
    with pytest.raises(ValidationError, match=re.escape(message)):
        period_close(month=dt.date(2026, 7, 1))
    with pytest.raises(CommandError, match="2026-07 is before billing began"):
        call_command("rollup", "--period", "2026-07", stdout=StringIO())
    response = api_as(FinanceFactory()).post(
        "/api/v1/rollups/", {"period": "2026-07"}, format="json"
    )
    assert response.status_code == 400
    assert response.json() == {"detail": message}
    assert not BillingPeriod.objects.filter(month=dt.date(2026, 7, 1)).exists()
    assert not BillableItem.objects.filter(kind=ItemKind.FEE).exists()


def test_the_periods_page_starts_at_the_billing_start(client):
    legacy_subscription(dt.date(2025, 1, 1))
    SubscriptionFactory(start_date=dt.date(2026, 8, 1))
    client.force_login(FinanceFactory())
    page = client.get(reverse("admin:billing_periods"))
    assert [(p.label, p.can_close) for p in page.context["periods"]] == [
        ("2026-10", False),
        ("2026-09", True),
        ("2026-08", True),
    ]


# --- Existing installs ------------------------------------------------------------------------


class _RegistryOfThatTime:
    """The models as that migration names them: BillingPeriod was in tickets then (it moved to
    packages in packages/migrations/0004_billingperiod_from_tickets)."""

    def get_model(self, app_label, model_name):
        if (app_label, model_name) == ("tickets", "BillingPeriod"):
            return BillingPeriod
        return apps.get_model(app_label, model_name)


def test_the_migration_records_the_billing_start_of_an_existing_install():
    # given an install with subscriptions and no period row yet
    migration = importlib.import_module("tickets.migrations.0003_billingperiod_billing_start")
    legacy_subscription(dt.date(2026, 3, 17))
    legacy_subscription(dt.date(2026, 5, 2))
    # when the migration runs
    migration.billing_start_record(_RegistryOfThatTime(), None)
    # then billing began in the month of the first subscription, and the catch-up closes from it
    assert list(BillingPeriod.objects.values_list("month", "status")) == [
        (dt.date(2026, 3, 1), PeriodStatus.OPEN)
    ]
    assert periods_to_close()[0] == dt.date(2026, 3, 1)
    # and running it again (rows exist) changes nothing
    migration.billing_start_record(_RegistryOfThatTime(), None)
    assert BillingPeriod.objects.count() == 1


# --- Months closed out of order ------------------------------------------------------------


def test_a_sale_cannot_start_in_an_open_month_before_a_closed_one():
    # given billing began in August, September held open (say, a missing price) and October
    # closed before it; it is now November
    BillingPeriod.objects.create(month=dt.date(2026, 8, 1), status=PeriodStatus.CLOSED)
    BillingPeriod.objects.create(month=dt.date(2026, 9, 1))
    BillingPeriod.objects.create(month=dt.date(2026, 10, 1), status=PeriodStatus.CLOSED)
    now = dt.datetime(2026, 11, 5, 9, 0, tzinfo=dt.UTC)
    client = ClientFactory()
    # when a subscription is sold to start in September
    with pytest.raises(ValidationError) as refused:
        subscription_create(
            client=client, package=package_with_prices(), start_date=dt.date(2026, 9, 15), now=now
        )
    # then it is refused, naming the closed month it would never be billed in
    assert "2026-10 is already closed: start the subscription after it, in 2026-11" in str(
        refused.value
    )
    assert not Subscription.objects.filter(client=client).exists()
    # and November is still possible
    subscription_create(
        client=client, package=package_with_prices(), start_date=dt.date(2026, 11, 1), now=now
    )


def test_the_api_refuses_a_start_before_a_closed_month():
    BillingPeriod.objects.create(month=dt.date(2026, 9, 1))
    BillingPeriod.objects.create(month=dt.date(2026, 10, 1), status=PeriodStatus.CLOSED)
    customer = ClientFactory()
    response = api_as(OperatorFactory()).post(
        SUBSCRIPTIONS,
        {"client": customer.pk, "package": package_with_prices().pk, "start_date": "2026-09-20"},
        format="json",
    )
    assert response.status_code == 400
    assert "2026-10 is already closed" in str(response.json())
    assert not Subscription.objects.filter(client=customer).exists()
