"""Hours helpers: rounding a timer up to the quarter hour, and showing hours."""

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tickets.hours import hours_clock, hours_display, hours_round_up_to_step


@pytest.mark.parametrize(
    ("minutes", "hours"),
    [
        ("0", "0.25"),  # a timer always books at least one step
        ("1", "0.25"),
        ("15", "0.25"),
        ("16", "0.50"),
        ("29", "0.50"),
        ("30", "0.50"),
        ("31", "0.75"),
        ("44.5", "0.75"),
        ("60", "1.00"),
        ("61", "1.25"),
    ],
)
def test_a_timer_rounds_up_to_the_next_quarter_hour(minutes, hours):
    assert hours_round_up_to_step(Decimal(minutes)) == Decimal(hours)


@settings(max_examples=40, deadline=None)
@given(st.integers(min_value=1, max_value=24 * 60))
def test_rounding_up_never_loses_time_and_adds_less_than_a_step(minutes):
    hours = hours_round_up_to_step(Decimal(minutes))
    assert hours % Decimal("0.25") == 0
    assert Decimal(minutes) <= hours * 60 < Decimal(minutes) + 15


def test_hours_are_shown_with_two_decimals_and_as_a_clock():
    assert hours_display(Decimal("1.5")) == "1.50 h"
    assert hours_clock(Decimal("1.25")) == "1:15"
    assert hours_clock(Decimal("0.75")) == "0:45"
