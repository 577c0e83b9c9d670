"""The history chart as a client reads it: an hours axis in round steps, only the months the
subscription ran, and a legend that says what a red bar means."""

import datetime as dt
import re
from decimal import Decimal

import pytest
from django.core.cache import caches

from billing.services.rollup import period_close
from clientarea.charts import FRAGMENTS_CACHE, axis_ticks
from tests.clientarea.conftest import SEPTEMBER
from tests.factories import (
    SubscriptionFactory,
    TicketFactory,
    TimeEntryFactory,
    package_with_prices,
)

pytestmark = pytest.mark.django_db

ROUND = {Decimal("1"), Decimal("2"), Decimal("2.5"), Decimal("5")}
_TICK = re.compile(r'<text class="axis"[^>]*text-anchor="end"[^>]*>([^<]*)</text>')


def chart_of(client, subscription) -> str:
    html = client.get(f"/subscriptions/{subscription.pk}/").content.decode()
    start = html.index('<figure class="chart">')
    return html[start : html.index("</figure>", start)]


def axis_labels(chart: str) -> list[Decimal]:
    return [Decimal(label) for label in _TICK.findall(chart)]


def is_round(step: Decimal) -> bool:
    """1, 2, 2.5 or 5 times a power of ten."""
    return step.scaleb(-step.adjusted()).normalize() in ROUND


@pytest.fixture
def busy(portal_user):
    """Gold since September: 12.25 h in September (over its 10 h), 9.5 h in October."""
    subscription = SubscriptionFactory(
        client=portal_user.client,
        start_date=SEPTEMBER,
        package=package_with_prices({"EUR": ("500.00", "60.00")}, name="Gold"),
    )
    for hours, day in (("12.25", dt.date(2026, 9, 3)), ("9.50", dt.date(2026, 10, 2))):
        TimeEntryFactory(
            ticket=TicketFactory(subscription=subscription),
            hours=Decimal(hours),
            work_date=day,
        )
    period_close(month=SEPTEMBER)
    return subscription


def test_the_axis_counts_in_round_steps(signed_in, busy):
    labels = axis_labels(chart_of(signed_in, busy))
    # 12.25 h at most: 0, 5, 10, 15 (not 0, 3.1, 6.1, 9.2, 12.2)
    assert labels == [Decimal("0"), Decimal("5"), Decimal("10"), Decimal("15")]


@pytest.mark.parametrize(
    ("highest", "ticks"),
    [
        ("1", ["0", "0.25", "0.5", "0.75", "1"]),
        ("3", ["0", "1", "2", "3"]),
        ("7.5", ["0", "2", "4", "6", "8"]),
        ("10", ["0", "2.5", "5", "7.5", "10"]),
        ("12.2", ["0", "5", "10", "15"]),
        ("15.75", ["0", "5", "10", "15", "20"]),
        ("40", ["0", "10", "20", "30", "40"]),
        ("160", ["0", "50", "100", "150", "200"]),
    ],
)
def test_axis_steps_are_1_2_2_5_or_5_times_a_power_of_ten(highest, ticks):
    assert axis_ticks(Decimal(highest)) == [Decimal(tick) for tick in ticks]


@pytest.mark.parametrize("highest", ["0.25", "1.1", "6.1", "9.2", "12.2", "33.3", "99", "744"])
def test_any_axis_starts_at_zero_reaches_the_top_in_at_most_4_round_steps(highest):
    ticks = axis_ticks(Decimal(highest))
    steps = {b - a for a, b in zip(ticks, ticks[1:], strict=False)}
    assert ticks[0] == 0 and ticks[-1] >= Decimal(highest)
    assert len(steps) == 1 and len(ticks) <= 5
    assert is_round(steps.pop())


def test_months_before_the_start_are_not_drawn(signed_in, busy):
    chart = chart_of(signed_in, busy)
    # October 2026 is "now": of the last 12 months Gold ran in September and October only
    assert re.findall(r'data-month="([\d-]+)"', chart) == ["2026-09", "2026-10"]


def test_the_legend_says_what_a_red_bar_means(signed_in, busy):
    chart = chart_of(signed_in, busy)
    assert '<g class="month over" data-month="2026-09"' in chart
    legend = chart[chart.index("<figcaption") :]
    assert 'class="key key-over"' in legend
    assert "more than included" in legend and "overtime" in legend


def drawn(client, subscription) -> bool:
    """Whether the view drew the chart (its template rendered) rather than reuse it."""
    response = client.get(f"/subscriptions/{subscription.pk}/")
    return "clientarea/_usage_chart.svg" in [template.name for template in response.templates]


def test_time_logged_in_the_open_month_shows_on_the_next_view_of_the_chart(signed_in, busy):
    caches[FRAGMENTS_CACHE].clear()
    # given the chart was drawn once, and kept: the next view of the same figures reuses it
    assert 'data-month="2026-10" data-used="9.50"' in chart_of(signed_in, busy)
    assert not drawn(signed_in, busy)
    # when 2 more hours are logged in October
    TimeEntryFactory(
        ticket=TicketFactory(subscription=busy),
        hours=Decimal("2.00"),
        work_date=dt.date(2026, 10, 5),
    )
    # then the next view draws October's bar with them, and over the included hours
    assert drawn(signed_in, busy)
    chart = chart_of(signed_in, busy)
    assert 'data-month="2026-10" data-used="11.50"' in chart
    assert '<g class="month over" data-month="2026-10"' in chart


def test_a_chart_in_german_keeps_its_coordinates_as_numbers(signed_in, busy):
    # when a browser that asks for German opens the chart
    html = signed_in.get(f"/subscriptions/{busy.pk}/", HTTP_ACCEPT_LANGUAGE="de").content.decode()
    chart = html[html.index('<figure class="chart">') : html.index("</figure>")]
    # then its geometry and figures are written with a decimal point, which SVG reads
    assert 'data-month="2026-10" data-used="9.50"' in chart
    assert not re.search(r'(?:x|y|y1|y2|width|height)="-?[0-9]+,[0-9]', chart)
