"""The arithmetic of statements and billable items: pure functions, no ORM.

The rollup, the portal's running figures, its cost calculator and the API all call
``statement_compute``, so a client never sees a figure that the bill later contradicts.
"""

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal

from djmoney.money import Money

from packages.blocks import block_order, hours_split
from packages.models import BillingIncrement, BillingMode, BillingRounding, OveragePolicy
from supportbilling.money import minor_unit_places

__all__ = ["block_order", "hours_split"]  # the split of a month's hours (packages/blocks.py)

ZERO = Decimal("0")
HOURS_QUANTUM = Decimal("0.01")

# Which terms a statement's figures use: those stored when its month was billed (a closed
# month, a one-time bucket), or the package's prices today (the open month).
TERMS_BILLED = "billed"
TERMS_CURRENT = "current"


def money_round(amount: Decimal, currency: str) -> Money:
    """Round once, half up, to the currency's minor unit (2 for EUR, 0 for JPY)."""
    quantum = Decimal(1).scaleb(-minor_unit_places(currency))
    return Money(amount.quantize(quantum, rounding=ROUND_HALF_UP), currency)


@dataclass(frozen=True)
class BillingPolicy:
    """How logged time becomes billed time (a package's terms, docs/billing-rules.md,
    "Billing increment and minimum"): ``increment`` is a ``BillingIncrement`` value ("0.25",
    "0.50", "1.00"), ``rounding`` a ``BillingRounding`` value, ``minimum`` the hours billed at
    least per ticket and month with chargeable time. Plain strings and a Decimal: hashable."""

    increment: str = BillingIncrement.QUARTER.value
    rounding: str = BillingRounding.PER_ENTRY.value
    minimum: Decimal = ZERO


def hours_round_up(hours: Decimal, increment: str | Decimal) -> Decimal:
    """``hours`` rounded UP to a multiple of ``increment`` (1.25 at 0.5 -> 1.50)."""
    step = Decimal(increment)
    return ((hours / step).to_integral_value(rounding=ROUND_CEILING) * step).quantize(HOURS_QUANTUM)


def ticket_month_billed(
    *, logged: Decimal, entries_rounded: Decimal, policy: BillingPolicy
) -> Decimal:
    """The billed hours of one ticket in one month, from the sum of its chargeable entries
    (``logged``) and the sum of those entries each rounded up to the policy's increment
    (``entries_rounded``; the rollup and the portal sum both in SQL).

    Per entry: the entries rounded up, summed. Per ticket-month: the sum rounded up. Then at
    least the minimum, when the ticket has chargeable time in the month (none: 0)."""
    if logged <= 0:
        return ZERO.quantize(HOURS_QUANTUM)
    if policy.rounding == BillingRounding.PER_TICKET_MONTH:
        billed = hours_round_up(logged, policy.increment)
    else:
        billed = entries_rounded
    return max(billed, policy.minimum).quantize(HOURS_QUANTUM)


def entries_billed(entry_hours: Iterable[Decimal], policy: BillingPolicy) -> Decimal:
    """The billed hours of one ticket's chargeable entries of one month: the rule on the
    entries themselves (what the SQL sums of ``ticket_month_billed`` must agree with)."""
    hours = list(entry_hours)
    return ticket_month_billed(
        logged=sum(hours, ZERO),
        entries_rounded=sum((hours_round_up(h, policy.increment) for h in hours), ZERO),
        policy=policy,
    )


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

    # The billing policy: ``used_hours`` are the hours billed (rounded up, at least the
    # minimum per ticket and month), ``logged_hours`` the chargeable hours as logged, and
    # ``no_charge_hours`` the hours worked at no charge (never billed nor deducted).
    logged_hours: Decimal = ZERO
    no_charge_hours: Decimal = ZERO

    @property
    def billed_hours(self) -> Decimal:
        return self.used_hours

    @property
    def rounded(self) -> bool:
        """The policy billed more than was logged (increment or minimum)."""
        return self.used_hours != self.logged_hours

    @property
    def hours_label(self) -> str:
        """ "1.25 h logged, 1.50 h billed" (the same figure once when nothing was rounded),
        and the hours at no charge when there are any."""
        text = (
            f"{self.logged_hours} h logged, {self.used_hours} h billed"
            if self.rounded
            else f"{self.used_hours} h"
        )
        if self.no_charge_hours > 0:
            text += f", {self.no_charge_hours} h no charge"
        return text

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
    logged_hours: Decimal | None = None,
    no_charge_hours: Decimal = ZERO,
) -> Statement:
    """The billing rules (docs/billing-rules.md) for one subscription and period; ``terms``
    says where the included hours, fee and rate come from (TERMS_BILLED or TERMS_CURRENT).
    ``used_hours`` are the hours billed under the package's policy (``ticket_month_billed``
    summed), ``logged_hours`` the chargeable hours as logged (default: ``used_hours``),
    ``no_charge_hours`` those worked at no charge: shown, never billed nor deducted.

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
        logged_hours=(used_hours if logged_hours is None else logged_hours).quantize(HOURS_QUANTUM),
        no_charge_hours=no_charge_hours.quantize(HOURS_QUANTUM),
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
    worked = ""
    if statement.rounded or statement.no_charge_hours > 0:
        worked = f" ({statement.hours_label})"
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
                    f"{statement.currency}{worked}"
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
