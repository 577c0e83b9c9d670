"""The split of a month's hours between the included hours, the prepaid top-up blocks and
overtime (docs/billing-rules.md, "Top-up blocks"): pure functions, no ORM.

``billing.calculations`` exposes ``hours_split`` with the rest of the statement arithmetic;
it lives here, below tickets, because the time services (``tickets.services``) need the same
rule to check a cap with the blocks counted before it."""

import datetime as dt
from collections.abc import Iterable, Sequence
from decimal import Decimal

ZERO = Decimal("0")


def hours_split(
    used: Decimal, included: Decimal, blocks: Sequence[tuple[int, Decimal]] = ()
) -> tuple[Decimal, list[tuple[int, Decimal]], Decimal]:
    """Split ``used`` hours of one month: first the month's ``included`` hours, then each
    block in the order given (``(id, available hours)``; ``block_order`` sorts them), then
    overtime. Returns ``(from_included, [(id, drawn)], overtime)``: the parts add up to
    ``used`` (when it is not negative), no block gives more than it has available, and a
    block with nothing available (or a negative figure) gives nothing."""
    used = max(used, ZERO)
    from_included = min(used, max(included, ZERO))
    rest = used - from_included
    draws = []
    for block_id, available in blocks:
        drawn = min(rest, max(available, ZERO))
        draws.append((block_id, drawn))
        rest -= drawn
    return from_included, draws, rest


def block_order(
    blocks: Iterable[tuple[int, dt.date | None, dt.date]],
) -> list[int]:
    """The order blocks are drawn in: the one expiring first (no expiry: last), then the
    oldest (start date, then id). ``blocks``: ``(id, expires_on, start_date)``."""
    return [
        block_id
        for block_id, _, _ in sorted(
            blocks, key=lambda b: (b[1] is None, b[1] or dt.date.max, b[2], b[0])
        )
    ]


def block_runs_in(*, month: dt.date, start_date: dt.date, expires_on: dt.date | None) -> bool:
    """A block serves the months from its start month to the month it expires in."""
    if start_date.replace(day=1) > month:
        return False
    return expires_on is None or expires_on.replace(day=1) >= month


class Block:
    """What the split needs of one top-up block (a one-time subscription with ``topup_of``)."""

    __slots__ = ("expires_on", "hours", "id", "start_date")

    def __init__(
        self, *, id: int, hours: Decimal, start_date: dt.date, expires_on: dt.date | None
    ) -> None:
        self.id = id
        self.hours = hours
        self.start_date = start_date
        self.expires_on = expires_on

    def runs_in(self, month: dt.date) -> bool:
        return block_runs_in(month=month, start_date=self.start_date, expires_on=self.expires_on)


def blocks_available(
    *,
    month: dt.date,
    blocks: Sequence[Block],
    drawn: dict[int, Decimal],
    unsettled_used: dict[dt.date, Decimal],
    included: Decimal,
) -> list[tuple[int, Decimal]]:
    """``[(id, available hours)]`` of the blocks serving ``month``, in the order they are
    drawn. A block's available hours are its size, minus ``drawn`` (what the closes of
    earlier months drew, their ``BlockDraw`` rows), minus what the earlier months not closed
    yet draw now (``unsettled_used``: their hours used, split with ``included``)."""
    left = {block.id: block.hours - drawn.get(block.id, ZERO) for block in blocks}
    by_id = {block.id: block for block in blocks}
    order = block_order((block.id, block.expires_on, block.start_date) for block in blocks)
    for earlier in sorted(m for m in unsettled_used if m < month):
        serving = [(bid, left[bid]) for bid in order if by_id[bid].runs_in(earlier)]
        _, draws, _ = hours_split(unsettled_used[earlier], included, serving)
        for bid, hours in draws:
            left[bid] -= hours
    return [(bid, max(left[bid], ZERO)) for bid in order if by_id[bid].runs_in(month)]
