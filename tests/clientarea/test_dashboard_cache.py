"""The dashboard's cards come from the fragment cache only while what they show is unchanged:
every change a client can notice is on the next view."""

import datetime as dt
from decimal import Decimal

import pytest
from djmoney.money import Money

from packages.models import PackagePrice, SubscriptionStatus
from tests.clientarea.conftest import figure, figures, section
from tests.factories import SubscriptionFactory, TicketFactory, TimeEntryFactory
from tickets.models import TimeEntry

pytestmark = pytest.mark.django_db
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
