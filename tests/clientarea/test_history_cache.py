"""The History pages come from the cache only while what they show is unchanged: every change a
client can notice is on the next view, and so is the end of a review window, which no write
marks (docs/decisions.md, "Portal history")."""

import datetime as dt
from decimal import Decimal

import pytest
from django.db.models import F
from djmoney.money import Money

from billing.models import BillableItem, ItemStatus, Statement
from billing.services.disputes import period_release
from billing.services.items import adjustment_create
from billing.services.rollup import period_close
from clientarea import views
from packages.models import PackagePrice, SubscriptionStatus
from tests.clientarea.conftest import AUGUST, SEPTEMBER, figures, log, section
from tests.factories import (
    ClientUserFactory,
    FinanceFactory,
    SubscriptionFactory,
)
from tests.races import committed_after_read
from tickets.models import TimeEntry
from tickets.services_overage import overage_approve, subscription_overage_set

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("postgres")]
CONTENT = "clientarea/_history.html"
PAGES = ["/history/", "/subscriptions/{pk}/"]


def view(signed_in, subscription, path: str = "/history/") -> tuple[str, int]:
    """The subscription's section of the page and how many times its content was rendered."""
    response = signed_in.get(path.format(pk=subscription.pk))
    assert response.status_code == 200
    rendered = [template.name for template in response.templates].count(CONTENT)
    return section(response.content.decode(), f"history-{subscription.pk}"), rendered


@pytest.mark.parametrize("path", PAGES)
def test_an_unchanged_page_is_not_rendered_again(signed_in, gold, path):
    first, rendered_first = view(signed_in, gold, path)
    second, rendered_second = view(signed_in, gold, path)

    assert (rendered_first, rendered_second) == (1, 0)
    assert second == first
    assert figures(first)["used"] == ["12.25 h", "4.00 h"]


@pytest.mark.parametrize("path", PAGES)
def test_an_invoiced_item_and_an_adjustment_show_on_the_next_view(signed_in, gold, path):
    view(signed_in, gold, path)
    BillableItem.objects.filter(subscription=gold, period=SEPTEMBER, kind="overtime").update(
        status=ItemStatus.INVOICED
    )
    adjustment_create(
        client=gold.client,
        subscription=gold,
        month=SEPTEMBER,
        amount=Decimal("-25.00"),
        reason="Goodwill credit",
        actor=FinanceFactory(),
    )

    html, rendered = view(signed_in, gold, path)

    assert rendered == 1
    # (September's adjustment, fee and overtime, then August's fee)
    assert figures(html)["item-status"] == ["Pending", "Pending", "Invoiced", "Pending"]
    assert "Adjustment: Goodwill credit" in html


def test_time_logged_this_month_shows_in_the_chart_on_the_next_view(signed_in, gold):
    before, _ = view(signed_in, gold)
    log(gold, "6.50", dt.date(2026, 10, 5))

    after, rendered = view(signed_in, gold)

    assert rendered == 1
    assert after != before
    assert "7.50 h" in after and "7.50 h" not in before


def test_a_renamed_package_a_new_status_and_price_show_on_the_next_view(signed_in, gold):
    view(signed_in, gold)
    gold.package.name = "Platinum"
    gold.package.save()
    gold.status = SubscriptionStatus.SUSPENDED
    gold.save()
    PackagePrice.objects.filter(package=gold.package).update(fee=Money("650.00", "EUR"))

    html, rendered = view(signed_in, gold)

    assert rendered == 1
    assert "Platinum" in html and "Suspended" in html
    # a closed month keeps the terms it was billed with
    assert figures(html)["fee"] == ["€500.00", "€500.00"]


def test_a_statement_shows_its_link_on_the_next_view(signed_in, gold):
    before, _ = view(signed_in, gold)
    Statement.objects.create(
        subscription=gold,
        client=gold.client,
        month=SEPTEMBER,
        file="statements/september.pdf",
        checksum="0" * 64,
    )

    after, rendered = view(signed_in, gold)

    assert rendered == 1
    assert 'data-link="statement"' not in before
    assert after.count('data-link="statement"') == 1


def test_an_overage_decision_shows_on_the_next_view(signed_in, gold, portal_user, time_machine):
    view(signed_in, gold)
    subscription_overage_set(subscription=gold, policy="approve", cap_hours=None, actor=None)
    overage_approve(subscription=gold, hours="2", user=portal_user.user)

    html, rendered = view(signed_in, gold)

    assert rendered == 1
    assert 'data-list="decisions"' in html


def test_a_month_closing_shows_on_the_next_view(signed_in, gold, time_machine):
    view(signed_in, gold)
    time_machine.move_to(dt.datetime(2026, 11, 1, 0, 5, tzinfo=dt.UTC), tick=False)
    period_close(month=dt.date(2026, 10, 1))

    html, rendered = view(signed_in, gold)

    assert rendered == 1
    assert 'data-month="2026-10"' in html


def test_the_end_of_a_review_window_shows_with_nothing_written(
    signed_in, gold, settings, time_machine
):
    # given August and September closed on 20 October 09:00 (the portal's "now") with a 5-day
    # review window
    settings.REVIEW_WINDOW_DAYS = 5
    time_machine.move_to(dt.datetime(2026, 10, 25, 8, 59, tzinfo=dt.UTC), tick=False)
    html, _ = view(signed_in, gold)
    assert html.count('data-review="in-review"') == 2
    assert view(signed_in, gold)[1] == 0  # kept while the window runs

    # when the window ends (nothing is written)
    time_machine.move_to(dt.datetime(2026, 10, 25, 9, 1, tzinfo=dt.UTC), tick=False)
    html, rendered = view(signed_in, gold)

    # then no month is shown in review
    assert rendered == 1
    assert 'data-review="in-review"' not in html


def test_a_month_released_early_shows_on_the_next_view(signed_in, gold, settings):
    settings.REVIEW_WINDOW_DAYS = 5
    html, _ = view(signed_in, gold)
    assert html.count('data-review="in-review"') == 2

    period_release(month=SEPTEMBER, actor=FinanceFactory())

    html, rendered = view(signed_in, gold)
    assert rendered == 1
    assert html.count('data-review="in-review"') == 1


def test_another_clients_change_keeps_the_page(signed_in, gold):
    view(signed_in, gold)
    other = SubscriptionFactory(start_date=AUGUST)
    log(other, "3.00", dt.date(2026, 10, 3))
    BillableItem.objects.filter(subscription=other).update(amount=F("amount") + 1)

    _, rendered = view(signed_in, gold)

    assert rendered == 0


def test_a_ticket_renamed_and_an_operator_signing_in_keep_the_page(signed_in, gold):
    # (the History page names no ticket and no operator)
    view(signed_in, gold)
    entry = TimeEntry.objects.get(subscription=gold, work_date=dt.date(2026, 10, 2))
    entry.ticket.subject = "Renamed"
    entry.ticket.save()
    entry.operator.last_login = dt.datetime(2026, 10, 20, 8, 0, tzinfo=dt.UTC)
    entry.operator.save()

    _, rendered = view(signed_in, gold)

    assert rendered == 0


def test_the_language_asked_for_is_not_served_from_another_languages_page(signed_in, gold):
    view(signed_in, gold)

    german = signed_in.get("/history/", HTTP_ACCEPT_LANGUAGE="de")

    html = section(german.content.decode(), f"history-{gold.pk}")
    assert figures(html)["fee"] == ["500,00 €", "500,00 €"]


def test_another_clients_subscription_is_not_served_from_the_cache(signed_in, gold, client):
    # given the owner's page of the subscription was kept
    view(signed_in, gold, "/subscriptions/{pk}/")
    # when another client's user asks for it
    stranger = ClientUserFactory(client__currency="EUR")
    client.force_login(stranger.user)

    # then it is not found
    assert client.get(f"/subscriptions/{gold.pk}/").status_code == 404


# Time committed by another connection right after the page read its stamp (the first read),
# or after it read it again in the snapshot the page is computed in (the second).
@pytest.mark.parametrize("after_read", [1, 2])
@pytest.mark.django_db(transaction=True)
def test_time_committed_while_the_page_is_computed_and_deleted_is_not_shown(
    signed_in, gold, monkeypatch, after_read
):
    stamp_then_time_committed_elsewhere = committed_after_read(
        views.history_stamp,
        after_read=after_read,
        commit=lambda: log(gold, "6.50", dt.date(2026, 10, 5)),
    )
    monkeypatch.setattr(views, "history_stamp", stamp_then_time_committed_elsewhere)
    html, _ = view(signed_in, gold)
    # the page shows it when it came before its snapshot, not when it came after
    assert ("7.50 h" in html) == (after_read == 1)
    # when it is deleted again
    TimeEntry.objects.filter(work_date=dt.date(2026, 10, 5)).delete()
    # then the page shows the hours without it
    html, _ = view(signed_in, gold)
    assert "7.50 h" not in html and "1.00 h" in html
    # and while it stands, the next view shows it
    log(gold, "6.50", dt.date(2026, 10, 5))
    html, _ = view(signed_in, gold)
    assert "7.50 h" in html
