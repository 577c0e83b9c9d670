"""Fuzzing the pure arithmetic with what tests/billing/test_calculations_properties.py does not
reach: any Python value as hours (what a form, a JSON body or a script may hand over), and
statements over any hours the database can hold and money amounts of any precision."""

import datetime as dt
from decimal import Decimal

from babel.numbers import get_currency_precision
from django.core.exceptions import ValidationError
from hypothesis import given, settings
from hypothesis import strategies as st

from billing.calculations import (
    money_round,
    one_time_item_draft,
    rollup_item_drafts,
    statement_compute,
)
from tickets.hours import hours_clean, hours_parse

QUARTER = Decimal("0.25")
FUZZ = settings(max_examples=300, deadline=None)

any_value = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.decimals(allow_nan=True, allow_infinity=True),
    st.text(),
    st.text(alphabet="0123456789.,:hmin -+eE\u0663\u00b2\u00a0", max_size=16),
    st.binary(max_size=8),
    st.lists(st.integers(), max_size=2),
)
# Non-negative decimals of any precision and size that a database column could hold.
amounts = st.decimals(min_value=0, max_value=10**9, allow_nan=False, allow_infinity=False)
# Hours as the database holds them (two decimals), not only quarter hours.
hours = st.decimals(min_value=0, max_value=9999, places=2, allow_nan=False, allow_infinity=False)
currencies = st.sampled_from(["EUR", "USD", "GBP", "PLN", "JPY", "CHF"])
modes = st.sampled_from(["recurring", "one_time"])


@FUZZ
@given(any_value)
def test_any_value_is_quarter_hours_or_a_refusal(value):
    # when anything at all is handed over as hours
    try:
        cleaned = hours_clean(value)
    except ValidationError as exc:
        # then it is refused with a message a person can read (never another exception)
        assert exc.messages and all(exc.messages)
    else:
        # or it is a quarter-hour multiple between 0.25 and 24, with two decimals
        assert isinstance(cleaned, Decimal)
        assert QUARTER <= cleaned <= Decimal("24")
        assert cleaned % QUARTER == 0
        assert cleaned.as_tuple().exponent == -2
        assert cleaned == hours_parse(value)


@FUZZ
@given(value=any_value)
def test_parsing_never_raises_anything_but_a_refusal(value):
    try:
        parsed = hours_parse(value)
    except ValidationError:
        return
    assert isinstance(parsed, Decimal) and parsed.is_finite()


@FUZZ
@given(
    mode=modes,
    currency=currencies,
    included=hours,
    used=hours,
    fee=amounts,
    rate=amounts,
)
def test_a_statement_of_any_figures_keeps_its_invariants(mode, currency, included, used, fee, rate):
    statement = statement_compute(
        billing_mode=mode,
        currency=currency,
        included_hours=included,
        used_hours=used,
        fee=fee,
        hourly_rate=rate,
    )
    minor = -get_currency_precision(currency)
    # hours are shown with two decimals and never negative
    for figure in (statement.remaining_hours, statement.overtime_hours, statement.used_hours):
        assert figure >= 0
        assert figure.as_tuple().exponent == -2
    # hours are either left over or over the limit, never both
    assert not (statement.remaining_hours > 0 and statement.overtime_hours > 0)
    if mode == "one_time":
        assert statement.overtime_hours == 0 and statement.overtime_amount.amount == 0
    # money is rounded to the currency's minor unit, once, and adds up
    for money in (statement.fee, statement.overtime_amount, statement.total):
        assert money.currency.code == currency
        assert money.amount.as_tuple().exponent == minor
    assert statement.total.amount == statement.fee.amount + statement.overtime_amount.amount
    # the usage bar reads 100 % or more exactly when the included hours are used up
    assert statement.used_percent >= 0
    if included > 0:
        assert (statement.used_percent >= 100) == (used >= included)
    else:
        assert statement.used_percent == 0


@FUZZ
@given(currency=currencies, included=hours, used=hours, fee=amounts, rate=amounts)
def test_the_items_of_a_month_bill_exactly_the_statement(currency, included, used, fee, rate):
    statement = statement_compute(
        billing_mode="recurring",
        currency=currency,
        included_hours=included,
        used_hours=used,
        fee=fee,
        hourly_rate=rate,
    )
    drafts = rollup_item_drafts(statement=statement, package_name="Gold", month=dt.date(2026, 9, 1))
    # the bill is what the client was shown: the items add up to the statement's total
    assert sum((d.amount for d in drafts), Decimal(0)) == statement.total.amount
    # (an hourly rate of 0 bills overtime hours at 0.00: the hours are still on the bill)
    assert all(d.amount >= 0 and d.quantity > 0 for d in drafts)
    assert len({d.kind for d in drafts}) == len(drafts)


@FUZZ
@given(fee=amounts, currency=currencies)
def test_a_bucket_is_billed_its_rounded_fee(fee, currency):
    draft = one_time_item_draft(package_name="Bucket", fee=fee, currency=currency)
    assert draft.amount == money_round(fee, currency).amount
    assert draft.quantity == Decimal("1.00")
    assert abs(draft.amount - fee) <= Decimal(1).scaleb(-get_currency_precision(currency)) / 2
