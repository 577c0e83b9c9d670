"""Prepaid top-up blocks of a recurring subscription, the reads (docs/billing-rules.md,
"Top-up blocks"): which blocks serve a month and how many hours each has available for it.
The split itself is ``packages.blocks`` (``billing.calculations.hours_split``)."""

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Q, QuerySet, Sum
from django.db.models.functions import TruncMonth

from packages.blocks import Block, blocks_available
from packages.models import (
    BillingPeriod,
    BlockDraw,
    PeriodStatus,
    Subscription,
    SubscriptionStatus,
)
from supportbilling.periods import period_last_day
from tickets.models import TimeEntry

ZERO = Decimal("0")


@dataclass(frozen=True)
class BlockBalance:
    """One block serving a month: its size, what it has available for the month, its dates."""

    block_id: int
    hours: Decimal
    available: Decimal
    start_date: dt.date
    expires_on: dt.date | None


def blocks_queryset(owners: Q, *, until: dt.date) -> QuerySet[Subscription]:
    """The top-up blocks (not terminated) that start by ``until`` of the subscriptions
    ``owners`` selects (a condition on ``topup_of_id``), in id order, as a query: the one
    filter of ``blocks_of`` and of the rollup's id ranges
    (``billing.selectors.rollup.rollup_range_blocks``)."""
    return (
        Subscription.objects.filter(owners, start_date__lte=until)
        .exclude(status=SubscriptionStatus.TERMINATED)
        .order_by("pk")
    )


def blocks_of(
    subscription_ids: Iterable[int], *, until: dt.date, for_update: bool = False
) -> list[Subscription]:
    """The top-up blocks (not terminated) of the subscriptions that start by ``until``, in
    id order; ``for_update`` locks their rows (the time services, after the subscription's)."""
    blocks = blocks_queryset(Q(topup_of_id__in=list(subscription_ids)), until=until)
    if for_update:
        blocks = blocks.select_for_update()
    return list(blocks)


def _as_block(block: Subscription) -> Block:
    return Block(
        id=block.pk,
        hours=block.bucket_hours or ZERO,
        start_date=block.start_date,
        expires_on=block.expires_on,
    )


def block_balances_of(
    *,
    subscriptions: dict[int, Decimal],
    month: dt.date,
    blocks: list[Subscription] | None = None,
) -> dict[int, list[BlockBalance]]:
    """Per recurring subscription (``{id: included hours}``), its blocks serving ``month`` in
    the order they are drawn, with their available hours. A constant number of queries
    whatever the number of subscriptions: one when none has a block, four otherwise (the
    blocks unless given, their stored draws, the closed months, the hours of the months
    before ``month`` not closed yet)."""
    if blocks is None:
        blocks = blocks_of(subscriptions, until=period_last_day(month))
    if not blocks:
        return {}
    ids = [block.pk for block in blocks]
    drawn: dict[int, Decimal] = {}
    settled: dict[int, set[dt.date]] = {}
    for draw in BlockDraw.objects.filter(block_id__in=ids, month__lt=month).values(
        "block_id", "subscription_id", "month", "hours"
    ):
        drawn[draw["block_id"]] = drawn.get(draw["block_id"], ZERO) + draw["hours"]
        settled.setdefault(draw["subscription_id"], set()).add(draw["month"])
    earliest = min(block.start_date for block in blocks).replace(day=1)
    closed = set(
        BillingPeriod.objects.filter(
            status=PeriodStatus.CLOSED, month__gte=earliest, month__lt=month
        ).values_list("month", flat=True)
    )
    unsettled: dict[int, dict[dt.date, Decimal]] = {}
    owners = {block.topup_of_id for block in blocks if block.topup_of_id is not None}
    rows = (
        TimeEntry.objects.filter(
            subscription_id__in=owners,
            work_date__gte=earliest,
            work_date__lt=month,
            no_charge=False,  # time at no charge never draws a block
        )
        .annotate(month=TruncMonth("work_date"))
        .values("subscription_id", "month")
        .annotate(used=Sum("hours"))
    )
    for row in rows:
        earlier = row["month"]
        if isinstance(earlier, dt.datetime):
            earlier = earlier.date()
        if earlier in closed or earlier in settled.get(row["subscription_id"], set()):
            continue
        unsettled.setdefault(row["subscription_id"], {})[earlier] = row["used"]
    by_owner: dict[int, list[Subscription]] = {}
    for block in blocks:
        if block.topup_of_id is not None:
            by_owner.setdefault(block.topup_of_id, []).append(block)
    result: dict[int, list[BlockBalance]] = {}
    for owner, own_blocks in by_owner.items():
        available = dict(
            blocks_available(
                month=month,
                blocks=[_as_block(block) for block in own_blocks],
                drawn=drawn,
                unsettled_used=unsettled.get(owner, {}),
                included=subscriptions.get(owner, ZERO),
            )
        )
        by_id = {block.pk: block for block in own_blocks}
        result[owner] = [
            BlockBalance(
                block_id=bid,
                hours=by_id[bid].bucket_hours or ZERO,
                available=hours,
                start_date=by_id[bid].start_date,
                expires_on=by_id[bid].expires_on,
            )
            for bid, hours in available.items()
        ]
    return result


def block_balances(
    *, subscription: Subscription, month: dt.date, blocks: list[Subscription] | None = None
) -> list[BlockBalance]:
    """The blocks of one recurring subscription serving ``month`` (reads ``package``)."""
    return block_balances_of(
        subscriptions={subscription.pk: subscription.hours_included}, month=month, blocks=blocks
    ).get(subscription.pk, [])


def block_hours_available(
    *, subscription: Subscription, month: dt.date, blocks: list[Subscription] | None = None
) -> Decimal:
    """The hours the subscription's blocks have available for ``month``, in all."""
    return sum(
        (
            b.available
            for b in block_balances(subscription=subscription, month=month, blocks=blocks)
        ),
        ZERO,
    )
