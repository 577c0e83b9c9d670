"""The arithmetic of statements and billable items: pure functions, no ORM.

The rollup, the portal's running figures, its cost calculator and the API all call
``statement_compute``, so a client never sees a figure that the bill later contradicts.
"""

import datetime as dt
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from babel.numbers import get_currency_precision
from djmoney.money import Money

from packages.blocks import block_order, hours_split
from packages.models import BillingMode, OveragePolicy

__all__ = ["block_order", "hours_split"]  # the split of a month's hours (packages/blocks.py)

ZERO = Decimal("0")
HOURS_QUANTUM = Decimal("0.01")

# Which terms a statement's figures use: those stored when its month was billed (a closed
# month, a one-time bucket), or the package's prices today (the open month).
TERMS_BILLED = "billed"
TERMS_CURRENT = "current"


def money_round(amount: Decimal, currency: str) -> Money:
    """Round once, half up, to the currency's minor unit (2 for EUR, 0 for JPY)."""
    quantum = Decimal(1).scaleb(-get_currency_precision(currency))
    return Money(amount.quantize(quantum, rounding=ROUND_HALF_UP), currency)


@dataclass(frozen=True)
class Statement:
    """Usage and cost of one subscription in one period (or of a bucket, all time)."""

    billing_mode: str
    currency: str
    included_hours: Decimal
    used_hours: Decimal
    remaining_hours: Decimal
    overtime_hours: Decimal
    fee: Money
    hourly_rate: Money
    overtime_amount: Money
    terms: str = TERMS_CURRENT
    # Overage control (docs/billing-rules.md, "Overage policies"): the policy, the extra
    # hours the client approved for the month (``approve``), and the overtime left unbilled
    # because it was not approved (pending while the month is open, unbilled once closed).
    overage_policy: str = OveragePolicy.BILL
    approved_hours: Decimal = ZERO
    unapproved_hours: Decimal = ZERO
    # Prepaid top-up blocks (docs/billing-rules.md, "Top-up blocks"): the hours the
    # subscription's blocks had available for the period, and how many of them the hours
    # beyond the included ones drew (before any overtime).
    block_hours_available: Decimal = ZERO
    block_hours_used: Decimal = ZERO

    @property
    def block_hours_left(self) -> Decimal:
        return self.block_hours_available - self.block_hours_used

    @property
    def total(self) -> Money:
        return self.fee + self.overtime_amount

    @property
    def used_percent(self) -> int:
        """Share of the included hours used, for bars and alerts (0 when none are included)."""
        if self.included_hours <= 0:
            return 0
        return int(self.used_hours * 100 // self.included_hours)


def statement_compute(
    *,
    billing_mode: str,
    currency: str,
    included_hours: Decimal,
    used_hours: Decimal,
    fee: Decimal,
    hourly_rate: Decimal,
    terms: str = TERMS_CURRENT,
    overage_policy: str = OveragePolicy.BILL,
    approved_hours: Decimal = ZERO,
    block_hours: Decimal = ZERO,
) -> Statement:
    """The billing rules (docs/billing-rules.md) for one subscription and period; ``terms``
    says where the included hours, fee and rate come from (TERMS_BILLED or TERMS_CURRENT).

    Recurring: overtime = max(0, used - included), charged at the hourly rate; under the
    ``approve`` overage policy only up to ``approved_hours`` of it, the rest is unapproved.
    ``block_hours``: the hours the subscription's top-up blocks have available for the
    period (their total; ``hours_split`` splits it per block): time beyond the included
    hours draws them first, only the rest is overtime (and then meets the policy).
    One-time: the bucket is drawn down; never any overtime.
    """
    remaining = max(included_hours - used_hours, ZERO)
    overtime = ZERO
    unapproved = ZERO
    from_blocks = ZERO
    if billing_mode == BillingMode.RECURRING:
        _, draws, overtime = hours_split(used_hours, included_hours, [(0, block_hours)])
        from_blocks = draws[0][1]
        if overage_policy == OveragePolicy.APPROVE:
            unapproved = max(overtime - approved_hours, ZERO)
            overtime -= unapproved
    return Statement(
        billing_mode=billing_mode,
        currency=currency,
        included_hours=included_hours.quantize(HOURS_QUANTUM),
        used_hours=used_hours.quantize(HOURS_QUANTUM),
        remaining_hours=remaining.quantize(HOURS_QUANTUM),
        overtime_hours=overtime.quantize(HOURS_QUANTUM),
        fee=money_round(fee, currency),
        hourly_rate=Money(hourly_rate, currency),
        overtime_amount=money_round(overtime * hourly_rate, currency),
        terms=terms,
        overage_policy=overage_policy,
        approved_hours=approved_hours.quantize(HOURS_QUANTUM),
        unapproved_hours=unapproved.quantize(HOURS_QUANTUM),
        block_hours_available=max(block_hours, ZERO).quantize(HOURS_QUANTUM)
        if billing_mode == BillingMode.RECURRING
        else ZERO,
        block_hours_used=from_blocks.quantize(HOURS_QUANTUM),
    )


@dataclass(frozen=True)
class ItemDraft:
    """A billable item before it is written: what the rollup would bill."""

    kind: str
    description: str
    unit: str
    quantity: Decimal
    unit_price: Decimal
    amount: Decimal


def rollup_item_drafts(
    *, statement: Statement, package_name: str, month: dt.date
) -> list[ItemDraft]:
    """The fee (when above zero) and the overtime (when above zero) of a recurring month."""
    label = f"{month:%Y-%m}"
    drafts = []
    if statement.fee.amount > 0:
        drafts.append(
            ItemDraft(
                kind="fee",
                description=f"Support package {package_name} {label}",
                unit="quantity",
                quantity=Decimal("1.00"),
                unit_price=statement.fee.amount,
                amount=statement.fee.amount,
            )
        )
    if statement.overtime_hours > 0:
        drafts.append(
            ItemDraft(
                kind="overtime",
                description=(
                    f"Support overtime {label}: {statement.overtime_hours} h x "
                    f"{money_round(statement.hourly_rate.amount, statement.currency).amount} "
                    f"{statement.currency}"
                ),
                unit="hours",
                quantity=statement.overtime_hours,
                unit_price=statement.hourly_rate.amount,
                amount=statement.overtime_amount.amount,
            )
        )
    return drafts


def one_time_item_draft(*, package_name: str, fee: Decimal, currency: str) -> ItemDraft:
    amount = money_round(fee, currency).amount
    return ItemDraft(
        kind="one_time",
        description=f"Support hours package {package_name}",
        unit="quantity",
        quantity=Decimal("1.00"),
        unit_price=fee,
        amount=amount,
    )
