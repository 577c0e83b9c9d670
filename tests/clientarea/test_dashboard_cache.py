"""The dashboard's cards come from the fragment cache only while what they show is unchanged:
every change a client can notice is on the next view."""

import datetime as dt
import re
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from djmoney.money import Money

from billing.selectors.portal_stamp import dashboard_stamp
from billing.services.rollup import period_close
from packages.models import BillingMode, OveragePolicy, PackagePrice, SubscriptionStatus
from packages.services import subscription_create
from tests.clientarea.conftest import OCTOBER, SEPTEMBER, figure, figures, section
from tests.factories import (
    AdminFactory,
    SubscriptionFactory,
    TicketFactory,
    TimeEntryFactory,
    package_with_prices,
)
from tickets.models import TimeEntry
from tickets.services_overage import overage_approve, subscription_overage_set

pytestmark = pytest.mark.django_db
SEPT_10 = dt.date(2026, 9, 10)
CARD = "clientarea/_dashboard_card.html"


def view(signed_in, subscription):
    response = signed_in.get("/")
    assert response.status_code == 200
    rendered = [template.name for template in response.templates].count(CARD)
    return section(response.content.decode(), f"subscription-{subscription.pk}"), rendered


@pytest.fixture
def subscription(portal_user):
    subscription = SubscriptionFactory(client=portal_user.client)
    ticket = TicketFactory(subscription=subscription, subject="Mail server down")
    TimeEntryFactory(ticket=ticket, hours=Decimal("1.00"), work_date=dt.date(2026, 10, 5))
    return subscription


def test_an_unchanged_card_is_not_rendered_again(signed_in, subscription):
    first, rendered_first = view(signed_in, subscription)
    second, rendered_second = view(signed_in, subscription)

    assert (rendered_first, rendered_second) == (1, 0)
    assert second == first


def test_new_time_shows_on_the_next_view(signed_in, subscription):
    view(signed_in, subscription)
    ticket = TicketFactory(subscription=subscription, subject="Backup failed")
    TimeEntryFactory(ticket=ticket, hours=Decimal("2.25"), work_date=dt.date(2026, 10, 6))

    html, rendered = view(signed_in, subscription)

    assert rendered == 1
    assert figure(html, "used") == "3.25 h"
    assert "Backup failed" in html


def test_changed_and_deleted_entries_show_on_the_next_view(signed_in, subscription):
    view(signed_in, subscription)
    entry = TimeEntry.objects.get(subscription=subscription)
    entry.hours = Decimal("4.50")
    entry.note = "Replaced the disk"
    entry.save()
    entry.ticket.subject = "Disk replaced"
    entry.ticket.save()

    html, _ = view(signed_in, subscription)
    assert figure(html, "used") == "4.50 h"
    assert "Disk replaced" in html and "Replaced the disk" in html

    entry.delete()
    html, _ = view(signed_in, subscription)
    assert figure(html, "used") == "0.00 h"
    assert "No time logged this month." in html


def test_a_new_price_and_status_show_on_the_next_view(signed_in, subscription):
    view(signed_in, subscription)
    PackagePrice.objects.filter(package=subscription.package, currency="EUR").update(
        fee=Money("650.00", "EUR")
    )
    subscription.status = SubscriptionStatus.SUSPENDED
    subscription.save()

    html, _ = view(signed_in, subscription)

    assert figure(html, "fee") == "€650.00"
    assert figure(html, "state") == "Suspended"


def test_the_language_asked_for_is_not_served_from_another_languages_card(signed_in, subscription):
    view(signed_in, subscription)

    german = signed_in.get("/", HTTP_ACCEPT_LANGUAGE="de")

    html = section(german.content.decode(), f"subscription-{subscription.pk}")
    assert figures(html)["fee"] == ["500,00 €"]  # (the no-break space read as a space)


def test_a_typed_estimate_is_computed_each_time(signed_in, subscription):
    view(signed_in, subscription)
    url = f"/?subscription={subscription.pk}&extra=2.5"

    first = signed_in.get(url).content.decode()
    TimeEntryFactory(
        ticket=TicketFactory(subscription=subscription),
        hours=Decimal("1.00"),
        work_date=dt.date(2026, 10, 7),
    )
    second = signed_in.get(url).content.decode()

    assert 'data-field="used_hours">3.50 h (3:30)' in first
    assert 'data-field="used_hours">4.50 h (4:30)' in second


# The whole dashboard is kept under its stamp (billing.selectors.portal_stamp): a view that
# finds it unchanged reads only the session, the user, the client and the stamp. The stamp is
# PostgreSQL's SQL; on SQLite every view computes the cards (tests/test_demo_sqlite.py).
KEPT_VIEW_QUERIES = 4


def test_an_unchanged_dashboard_is_served_without_reading_it_again(
    postgres, signed_in, subscription
):
    first = signed_in.get("/").content.decode()
    with CaptureQueriesContext(connection) as context:
        second = signed_in.get("/").content.decode()

    assert len(context.captured_queries) == KEPT_VIEW_QUERIES
    assert _without_csrf(second) == _without_csrf(first)
    assert "Mail server down" in second


def _without_csrf(html: str) -> str:
    return re.sub(r'name="csrfmiddlewaretoken" value="[^"]*"', "", html)


def test_time_of_an_earlier_open_month_shows_on_a_buckets_card(signed_in, portal_user):
    bucket = SubscriptionFactory(
        client=portal_user.client,
        start_date=SEPTEMBER,
        package=package_with_prices(
            {"EUR": ("900.00", "0.00")},
            billing_mode=BillingMode.ONE_TIME,
            included_hours=Decimal("20"),
        ),
    )
    TimeEntryFactory(ticket=TicketFactory(subscription=bucket), hours=Decimal("1.00"))
    view(signed_in, bucket)
    # September is not closed: its time can still be logged, and counts in the bucket
    TimeEntryFactory(
        ticket=TicketFactory(subscription=bucket), hours=Decimal("2.50"), work_date=SEPT_10
    )

    html, _ = view(signed_in, bucket)

    assert figure(html, "used") == "3.50 h"


def test_a_renamed_operator_and_ticket_show_on_the_next_view(signed_in, subscription):
    entry = TimeEntry.objects.get(subscription=subscription)
    view(signed_in, subscription)
    entry.operator.first_name, entry.operator.last_name = "Grace", "Hopper"
    entry.operator.save()

    html, _ = view(signed_in, subscription)

    assert "Grace Hopper" in html


# Transactional: within one transaction every write has the same xmin.
@pytest.mark.django_db(transaction=True)
def test_a_renamed_ticket_shows_and_an_operator_signing_in_keeps_the_card(
    postgres, signed_in, subscription
):
    entry = TimeEntry.objects.get(subscription=subscription)
    view(signed_in, subscription)
    entry.operator.last_login = dt.datetime(2026, 10, 20, 8, 0, tzinfo=dt.UTC)
    entry.operator.save()
    entry.ticket.save()  # (a message on it saves it: its updated_at)

    # (the cards kept: session, user, client and the stamp)
    with CaptureQueriesContext(connection) as queries:
        view(signed_in, subscription)
    assert len(queries) == 4

    entry.ticket.subject = "Mail server replaced"
    entry.ticket.save()
    html, rendered = view(signed_in, subscription)
    assert rendered == 1 and "Mail server replaced" in html


def test_approved_extra_hours_show_on_the_next_view(signed_in, portal_user, subscription):
    subscription_overage_set(
        subscription=subscription,
        policy=OveragePolicy.APPROVE,
        cap_hours=None,
        actor=AdminFactory(),
    )
    signed_in.get("/")

    overage_approve(subscription=subscription, hours="2.5", user=portal_user.user)

    html = section(signed_in.get("/").content.decode(), f"overage-{subscription.pk}")
    assert figure(html, "approved") == "2.50 h"
    assert "approved" in html.split('data-list="decisions"')[1]


def test_a_new_block_and_a_renamed_package_show_on_the_next_view(signed_in, subscription):
    view(signed_in, subscription)
    block = subscription_create(
        client=subscription.client,
        package=package_with_prices(
            {"EUR": ("300.00", "0.00")},
            billing_mode=BillingMode.ONE_TIME,
            included_hours=Decimal("5"),
            name="Block 5 h",
        ),
        start_date=OCTOBER,
        topup_of=subscription,
    )
    subscription.package.name = "Platinum"
    subscription.package.save()

    html, _ = view(signed_in, subscription)

    assert f"from your 5 h block #{block.pk}, 5 h left" in html
    assert "Platinum" in html


def test_the_stamp_changes_when_a_month_closes(postgres, portal_user, subscription):
    # September's entries leave the stamp once September is closed (they cannot change then),
    # so the closing itself must change it
    TimeEntryFactory(
        ticket=TicketFactory(subscription=subscription), hours=Decimal("1.00"), work_date=SEPT_10
    )
    before = dashboard_stamp(client_id=portal_user.client.pk, month=OCTOBER)

    period_close(month=SEPTEMBER)

    assert dashboard_stamp(client_id=portal_user.client.pk, month=OCTOBER) != before


@pytest.mark.django_db(transaction=True)
def test_a_change_put_back_still_changes_the_stamp(postgres, portal_user, subscription):
    # cards computed while a change was committed are kept under the stamp read before it;
    # that stamp must never come back, even when the change is undone (each save commits)
    before = dashboard_stamp(client_id=portal_user.client.pk, month=OCTOBER)
    subscription.status = SubscriptionStatus.SUSPENDED
    subscription.save()
    subscription.status = SubscriptionStatus.ACTIVE
    subscription.save()

    assert dashboard_stamp(client_id=portal_user.client.pk, month=OCTOBER) != before
