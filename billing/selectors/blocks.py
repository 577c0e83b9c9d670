"""Prepaid top-up blocks as statements show them (docs/billing-rules.md, "Top-up blocks"):
per recurring subscription and month, what each block gives and has left, and the blocks
that expired unused. A constant number of queries whatever the number of subscriptions
(one when none has a block)."""

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from billing.calculations import hours_split
from packages.models import BlockDraw
from supportbilling.periods import period_label, period_last_day
from tickets.blocks import block_balances_of, blocks_of
from tickets.overage import hours_short

ZERO = Decimal("0")


@dataclass(frozen=True)
class BlockLine:
    """One block in one month of the subscription it tops up."""

    block_id: int
    hours: Decimal  # its size, as bought
    available: Decimal  # what it had for the month
    drawn: Decimal  # what the month draws from it (open) or drew (closed)
    expires_on: dt.date | None

    @property
    def left(self) -> Decimal:
        return self.available - self.drawn

    @property
    def text(self) -> str:
        """The card's line: "3.5 h from your 10 h block, 6.5 h left, expires 2027-03-31"."""
        text = (
            f"{hours_short(self.drawn)} h from your {hours_short(self.hours)} h block "
            f"#{self.block_id}, {hours_short(self.left)} h left"
        )
        if self.expires_on is not None:
            text += f", expires {self.expires_on:%Y-%m-%d}"
        return text


def block_lines_of(
    *,
    month: dt.date,
    included: dict[int, Decimal],
    used: dict[int, Decimal],
    closed: frozenset[int] | set[int] = frozenset(),
) -> dict[int, list[BlockLine]]:
    """Per recurring subscription (``included``: its included hours for ``month``; ``used``:
    its hours used), its blocks serving the month. For a subscription in ``closed`` (the
    month was billed) the draws are those the close stored; otherwise they are split now
    (``hours_split``) from what each block has available."""
    blocks = blocks_of(included, until=period_last_day(month))
    if not blocks:
        return {}
    balances = block_balances_of(subscriptions=included, month=month, blocks=blocks)
    stored: dict[int, Decimal] = {}
    if closed:
        stored = {
            row["block_id"]: row["hours"]
            for row in BlockDraw.objects.filter(
                subscription_id__in=list(closed), month=month
            ).values("block_id", "hours")
        }
    result: dict[int, list[BlockLine]] = {}
    for subscription_id, own in balances.items():
        if subscription_id in closed:
            draws = {b.block_id: stored.get(b.block_id, ZERO) for b in own}
        else:
            _, split, _ = hours_split(
                used.get(subscription_id, ZERO),
                included.get(subscription_id, ZERO),
                [(b.block_id, b.available) for b in own],
            )
            draws = dict(split)
        result[subscription_id] = [
            BlockLine(
                block_id=b.block_id,
                hours=b.hours,
                available=b.available,
                drawn=draws.get(b.block_id, ZERO),
                expires_on=b.expires_on,
            )
            for b in own
        ]
    return result


def block_hours_of(lines: list[BlockLine], *, closed: bool) -> Decimal:
    """The ``block_hours`` a statement computes with: what the blocks have available (an
    open month), or what the close drew from them (a closed month: the statement then shows
    exactly the billed split, whatever was logged or bought since)."""
    return sum((line.drawn if closed else line.available for line in lines), ZERO)


def block_draw_notes(draws: Iterable[BlockDraw]) -> list[str]:
    """The lines of a closed month's statement for its stored draws (select ``block``):
    "3.5 h from block #12 (10 h)", "Block #12 expired with 2.5 h unused"."""
    notes = []
    for draw in draws:
        if draw.hours > 0:
            notes.append(
                f"{hours_short(draw.hours)} h from block #{draw.block_id} "
                f"({hours_short(draw.block.bucket_hours or ZERO)} h)."
            )
        if draw.expired_hours > 0:
            notes.append(
                f"Block #{draw.block_id} expired with {hours_short(draw.expired_hours)} h unused."
            )
    return notes


@dataclass(frozen=True)
class BlockExpiry:
    subscription_id: int
    block_id: int
    month: dt.date
    hours: Decimal

    @property
    def text(self) -> str:
        return (
            f"Block #{self.block_id} expired with {hours_short(self.hours)} h unused "
            f"({period_label(self.month)})."
        )


def block_expiries(*, subscription_ids: list[int], months: list[dt.date]) -> list[BlockExpiry]:
    """The blocks that expired unused at the closes of ``months`` (one query)."""
    if not subscription_ids or not months:
        return []
    return [
        BlockExpiry(
            subscription_id=row["subscription_id"],
            block_id=row["block_id"],
            month=row["month"],
            hours=row["expired_hours"],
        )
        for row in BlockDraw.objects.filter(
            subscription_id__in=subscription_ids, month__in=months, expired_hours__gt=0
        )
        .order_by("month", "block_id")
        .values("subscription_id", "block_id", "month", "expired_hours")
    ]
