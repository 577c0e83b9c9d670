"""Properties of the pure arithmetic: parsing hours and computing statements (no database)."""

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal

import pytest
from django.core.exceptions import ValidationError
from hypothesis import given, settings
from hypothesis import strategies as st

from billing.calculations import hours_split, money_round, rollup_item_drafts, statement_compute
from packages.blocks import Block, blocks_available
from tickets.hours import hours_clean, hours_clock, hours_parse

QUARTER = Decimal("0.25")
quarters = st.integers(min_value=1, max_value=96)  # 0.25 h .. 24 h
hours_amounts = st.integers(min_value=0, max_value=4 * 400).map(lambda q: q * QUARTER)
money_amounts = st.integers(min_value=0, max_value=10**8).map(lambda c: Decimal(c) / 100)
currencies = st.sampled_from(["EUR", "USD", "GBP", "PLN", "JPY"])

OCTOBER = dt.date(2026, 10, 1)
PROPERTY = settings(max_examples=40, deadline=None)


@PROPERTY
@given(quarters)
def test_every_way_of_typing_a_quarter_hour_multiple_gives_the_same_hours(count):
    hours = count * QUARTER
    minutes = count * 15
    typed = [
        f"{hours}",
        f"{hours}".replace(".", ","),
        f"{minutes // 60}:{minutes % 60:02d}",
        f"{minutes}m",
        f"{minutes // 60}h {minutes % 60}m",
        hours,
    ]
    assert {hours_clean(value) for value in typed} == {hours.quantize(Decimal("0.01"))}
    assert hours_clock(hours_clean(f"{hours}")) == f"{minutes // 60}:{minutes % 60:02d}"


@PROPERTY
@given(st.integers(min_value=1, max_value=24 * 60).filter(lambda m: m % 15))
def test_minutes_off_the_quarter_hour_are_refused(minutes):
    with pytest.raises(ValidationError, match="steps of 0.25"):
        hours_clean(f"{minutes}m")


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.text(max_size=12), st.from_regex(r"-?\d{0,4}([.,:]\d{0,4})?\s*[hm]?")))
def test_any_text_is_either_valid_hours_or_a_clear_refusal(text):
    # never another exception (which an interface would turn into a 500)
    try:
        hours = hours_clean(text)
    except ValidationError as exc:
        assert exc.messages
    else:
        assert Decimal("0.25") <= hours <= Decimal("24")
        assert hours % QUARTER == 0
        assert hours == hours_parse(text).quantize(Decimal("0.01"))


@PROPERTY
@given(
    included=hours_amounts,
    used=hours_amounts,
    fee=money_amounts,
    rate=money_amounts,
    currency=currencies,
)
def test_a_recurring_statement_splits_used_hours_into_included_and_overtime(
    included, used, fee, rate, currency
):
    statement = statement_compute(
        billing_mode="recurring",
        currency=currency,
        included_hours=included,
        used_hours=used,
        fee=fee,
        hourly_rate=rate,
    )
    assert statement.overtime_hours >= 0
    assert statement.remaining_hours >= 0
    assert statement.overtime_hours == max(used - included, 0)
    assert min(used, included) + statement.overtime_hours == used
    # the amount is rounded once, half up, to the currency's minor unit
    exponent = 0 if currency == "JPY" else -2
    expected = (statement.overtime_hours * rate).quantize(
        Decimal(1).scaleb(exponent), rounding=ROUND_HALF_UP
    )
    assert statement.overtime_amount.amount == expected
    assert statement.overtime_amount.amount.as_tuple().exponent == exponent
    assert statement.total == statement.fee + statement.overtime_amount
    # and the items the rollup writes carry exactly these figures
    drafts = {
        d.kind: d for d in rollup_item_drafts(statement=statement, package_name="P", month=OCTOBER)
    }
    assert ("overtime" in drafts) == (statement.overtime_hours > 0)
    assert ("fee" in drafts) == (statement.fee.amount > 0)
    if "overtime" in drafts:
        assert drafts["overtime"].quantity == statement.overtime_hours
        assert drafts["overtime"].amount == statement.overtime_amount.amount


@PROPERTY
@given(included=hours_amounts, used=hours_amounts, fee=money_amounts, currency=currencies)
def test_a_bucket_never_has_overtime(included, used, fee, currency):
    statement = statement_compute(
        billing_mode="one_time",
        currency=currency,
        included_hours=included,
        used_hours=used,
        fee=fee,
        hourly_rate=Decimal("99.00"),
    )
    assert statement.overtime_hours == 0
    assert statement.overtime_amount.amount == 0
    assert statement.remaining_hours == max(included - used, 0)


@PROPERTY
@given(units=st.integers(min_value=0, max_value=10**6), currency=currencies)
def test_rounding_is_half_up_never_to_even(units, currency):
    # given an amount exactly half way between two minor units (two yen, two cents)
    minor = Decimal(1) if currency == "JPY" else Decimal("0.01")
    amount = units * minor + minor / 2
    # then it rounds up, to the currency's minor unit
    assert money_round(amount, currency).amount == (units + 1) * minor
    assert money_round(amount - minor / 10, currency).amount == units * minor


# --- top-up blocks (docs/billing-rules.md, "Top-up blocks") --------------------------------------

block_lists = st.lists(
    st.tuples(st.integers(min_value=1, max_value=10**6), hours_amounts),
    max_size=5,
    unique_by=lambda b: b[0],
)


@PROPERTY
@given(hours_amounts, hours_amounts, block_lists)
def test_the_split_of_a_month_adds_up_to_the_hours_used(used, included, blocks):
    from_included, draws, overtime = hours_split(used, included, blocks)
    assert from_included + sum(drawn for _, drawn in draws) + overtime == used
    assert from_included == min(used, included) and overtime >= 0
    # each block in its turn: a later one only when the earlier ones are empty
    assert [block_id for block_id, _ in draws] == [block_id for block_id, _ in blocks]
    for (_, available), (_, drawn) in zip(blocks, draws, strict=True):
        assert 0 <= drawn <= available
    assert overtime == 0 or all(d == a for (_, a), (_, d) in zip(blocks, draws, strict=True))


@PROPERTY
@given(st.lists(hours_amounts, min_size=1, max_size=6), hours_amounts, block_lists)
def test_a_block_never_goes_below_zero_month_after_month(months_used, included, blocks):
    left = dict(blocks)
    for used in months_used:
        _, draws, _ = hours_split(used, included, list(left.items()))
        for block_id, drawn in draws:
            left[block_id] -= drawn
            assert left[block_id] >= 0
    assert sum(left.values()) >= 0


@PROPERTY
@given(hours_amounts, hours_amounts, hours_amounts, money_amounts, currencies)
def test_blocks_only_ever_lower_the_overtime_billed(used, included, block_hours, rate, currency):
    kwargs = dict(
        billing_mode="recurring",
        currency=currency,
        included_hours=included,
        used_hours=used,
        fee=Decimal("0"),
        hourly_rate=rate,
    )
    without = statement_compute(**kwargs)
    with_blocks = statement_compute(**kwargs, block_hours=block_hours)
    assert with_blocks.overtime_hours + with_blocks.block_hours_used == without.overtime_hours
    assert with_blocks.block_hours_used <= block_hours
    assert with_blocks.overtime_amount <= without.overtime_amount


@PROPERTY
@given(
    st.lists(
        st.tuples(hours_amounts, st.integers(0, 5), st.one_of(st.none(), st.integers(0, 5))),
        max_size=4,
    ),
    st.lists(hours_amounts, min_size=6, max_size=6),
    hours_amounts,
)
def test_a_blocks_balance_never_goes_below_zero_nor_above_its_size(specs, used, included):
    # blocks starting in month ``start`` (0..5 after October), expiring ``expiry`` months
    # after their start (None: never); six months of hours, none of them closed yet
    months = [dt.date(2026 + (9 + i) // 12, (9 + i) % 12 + 1, 1) for i in range(7)]
    blocks = [
        Block(
            id=index,
            hours=hours,
            start_date=months[start],
            expires_on=None
            if expiry is None
            else months[min(start + expiry, 6)] - dt.timedelta(days=1),
        )
        for index, (hours, start, expiry) in enumerate(specs)
    ]
    sizes = {block.id: block.hours for block in blocks}
    for month in months:
        available = blocks_available(
            month=month,
            blocks=blocks,
            drawn={},
            unsettled_used=dict(zip(months[:6], used, strict=True)),
            included=included,
        )
        for block_id, hours in available:
            assert 0 <= hours <= sizes[block_id]
            assert blocks[block_id].runs_in(month)
