"""Reads of disputes: a client's own (portal, API), all of them for staff (admin, API), and
what one closed month of one subscription shows in the portal during its review."""

import datetime as dt
from dataclasses import dataclass, field

from django.db.models import Count, QuerySet

from billing.models import BillableItem, Dispute, DisputeStatus
from billing.selectors.review import MonthReview, month_review, review_days


def disputes_visible(*, client_id: int | None) -> QuerySet[Dispute]:
    """Every dispute for staff (``client_id`` None), a client's own otherwise; newest first."""
    disputes = Dispute.objects.select_related(
        "client", "subscription__package", "time_entry", "item", "adjustment"
    ).order_by("-opened_at", "-id")
    if client_id is not None:
        disputes = disputes.filter(client_id=client_id)
    return disputes


def open_disputes_per_month() -> dict[dt.date, int]:
    """``{month: open disputes}``; one query."""
    return dict(
        Dispute.objects.filter(status=DisputeStatus.OPEN)
        .order_by()
        .values_list("month")
        .annotate(count=Count("id"))
    )


def dispute_counts() -> dict[str, int]:
    """Disputes per status (every status, zeros included); one query."""
    counts = dict(Dispute.objects.order_by().values_list("status").annotate(count=Count("id")))
    return {status: counts.get(status, 0) for status in DisputeStatus.values}


@dataclass(frozen=True)
class MonthDisputes:
    """A closed month of one subscription as the portal shows it in review: the window, the
    month's items, and the latest dispute of each entry and item (an open one first)."""

    review: MonthReview
    items: list[BillableItem]
    by_entry: dict[int, Dispute] = field(default_factory=dict)
    by_item: dict[int, Dispute] = field(default_factory=dict)

    @property
    def can_dispute(self) -> bool:
        return self.review.in_review


def _latest(disputes: list[Dispute], key: str) -> dict[int, Dispute]:
    latest: dict[int, Dispute] = {}
    for dispute in disputes:  # oldest first: a later one replaces, an open one stays
        object_id = getattr(dispute, key)
        if object_id is None:
            continue
        current = latest.get(object_id)
        if current is None or current.status != DisputeStatus.OPEN:
            latest[object_id] = dispute
    return latest


def client_month_disputes(
    *, client_id: int, subscription_id: int, month: dt.date, now: dt.datetime | None = None
) -> MonthDisputes | None:
    """The review of a closed month for the portal; None without a review window and without
    disputes of the month (the page is then as it always was). Three to four queries."""
    if not review_days():
        return None
    review = month_review(month, now=now)
    items = list(
        BillableItem.objects.filter(
            client_id=client_id, subscription_id=subscription_id, period=month
        ).order_by("kind", "pk")
    )
    disputes = list(
        Dispute.objects.filter(
            client_id=client_id, subscription_id=subscription_id, month=month
        ).order_by("opened_at", "pk")
    )
    return MonthDisputes(
        review=review,
        items=items,
        by_entry=_latest(disputes, "time_entry_id"),
        by_item=_latest(disputes, "item_id"),
    )
