"""The review window of closed months and the disputes that hold items back: the one rule of
what may be exported (docs/billing-rules.md, "Review window and disputes").

A closed month is *in review* from its close until ``closed_at + REVIEW_WINDOW_DAYS`` days,
unless finance released it earlier (``PeriodRelease``). With ``REVIEW_WINDOW_DAYS = 0`` no
month is ever in review. An item is *held* while its month is in review, or while an open
dispute names it (or names a time entry of its subscription in its month)."""

import datetime as dt
from dataclasses import dataclass

from django.conf import settings
from django.db.models import BooleanField, Exists, OuterRef, Q, QuerySet, Value
from django.utils import timezone

from billing.models import BillableItem, Dispute, DisputeStatus, PeriodRelease
from packages.models import BillingPeriod, PeriodStatus

# The annotation of ``items_with_hold`` that says an item may not be exported now.
HELD = "held"


def review_days() -> int:
    return settings.REVIEW_WINDOW_DAYS


def review_until(closed_at: dt.datetime | None) -> dt.datetime | None:
    """When the review window of a month closed at ``closed_at`` ends (None: no window)."""
    if not review_days() or closed_at is None:
        return None
    return closed_at + dt.timedelta(days=review_days())


def review_running(until: dt.datetime | None, *, released: bool, now: dt.datetime) -> bool:
    """The rule of a month in review: closed with a window (``until``), not released early by
    finance, and the window not over. Every reader of "in review" asks here."""
    return until is not None and not released and now < until


@dataclass(frozen=True)
class MonthReview:
    """Where a month stands in the review: ``in_review`` until ``until`` unless released."""

    month: dt.date
    closed: bool
    until: dt.datetime | None = None
    released_at: dt.datetime | None = None
    in_review: bool = False


def month_review(month: dt.date, *, now: dt.datetime | None = None) -> MonthReview:
    """The review state of one month; two queries."""
    period = BillingPeriod.objects.filter(month=month, status=PeriodStatus.CLOSED).first()
    if period is None:
        return MonthReview(month=month, closed=False)
    release = PeriodRelease.objects.filter(month=month).first()
    until = review_until(period.closed_at)
    now = now or timezone.now()
    return MonthReview(
        month=month,
        closed=True,
        until=until,
        released_at=release.released_at if release else None,
        in_review=review_running(until, released=release is not None, now=now),
    )


def _months_in_review(now: dt.datetime | None = None) -> QuerySet[BillingPeriod]:
    """The closed months whose window is still running; empty without a window."""
    if not review_days():
        return BillingPeriod.objects.none()
    now = now or timezone.now()
    return BillingPeriod.objects.filter(
        status=PeriodStatus.CLOSED,
        closed_at__gt=now - dt.timedelta(days=review_days()),
    ).exclude(month__in=PeriodRelease.objects.values("month"))


def months_in_review(*, now: dt.datetime | None = None) -> dict[dt.date, dt.datetime]:
    """``{month: review until}`` of every month in review; one query."""
    found = {}
    for month, closed_at in _months_in_review(now).values_list("month", "closed_at"):
        until = review_until(closed_at)
        if until is not None:
            found[month] = until
    return found


def open_disputes_holding(item_ref: str = "pk") -> QuerySet[Dispute]:
    """The open disputes that hold the item at ``OuterRef(item_ref)``: one naming it, or one
    naming a time entry of its subscription in its month."""
    return Dispute.objects.filter(status=DisputeStatus.OPEN).filter(
        Q(item_id=OuterRef(item_ref))
        | Q(
            item__isnull=True,
            subscription_id=OuterRef("subscription_id"),
            month=OuterRef("period"),
        )
    )


def items_with_hold(
    items: QuerySet[BillableItem], *, now: dt.datetime | None = None
) -> QuerySet[BillableItem]:
    """``items`` with ``in_review`` (its month is in review), ``disputed`` (an open dispute
    holds it) and ``held`` (either: it may not be exported now)."""
    if review_days():
        in_review = Exists(_months_in_review(now).filter(month=OuterRef("period")))
        items = items.annotate(in_review=in_review)
    else:
        items = items.annotate(in_review=Value(False, output_field=BooleanField()))
    return items.annotate(disputed=Exists(open_disputes_holding())).annotate(
        **{HELD: Q(in_review=True) | Q(disputed=True)}
    )


def items_held(
    items: QuerySet[BillableItem], *, now: dt.datetime | None = None
) -> QuerySet[BillableItem]:
    """The items of ``items`` that may not be exported now."""
    return items_with_hold(items, now=now).filter(Q(**{HELD: True}))


def items_ready(
    items: QuerySet[BillableItem], *, now: dt.datetime | None = None
) -> QuerySet[BillableItem]:
    """The items of ``items`` that nothing holds back."""
    return items_with_hold(items, now=now).filter(Q(**{HELD: False}))


def item_hold_reason(item: BillableItem, *, now: dt.datetime | None = None) -> str:
    """Why ``item`` may not be exported now ("" when nothing holds it); two queries."""
    review = month_review(item.period, now=now)
    label = f"{item.period:%Y-%m}"
    if review.in_review and review.until is not None:
        return (
            f"{label} is in review until {timezone.localtime(review.until):%Y-%m-%d %H:%M}: "
            "its items are exported after that, or once finance releases the month."
        )
    dispute = (
        Dispute.objects.filter(status=DisputeStatus.OPEN)
        .filter(
            Q(item_id=item.pk)
            | Q(item__isnull=True, subscription_id=item.subscription_id, month=item.period)
        )
        .order_by("pk")
        .first()
    )
    if dispute is not None:
        return (
            f"Dispute #{dispute.pk} of the client is open: the item is exported once finance "
            "has resolved it."
        )
    return ""
