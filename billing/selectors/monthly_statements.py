"""What a monthly statement PDF states (docs/statements.md): one subscription in one closed
month, read with the portal's own selectors (the history's row, the month's tickets), so the
PDF and the portal's pages never disagree, and a figure added to them reaches the PDF."""

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.db.models import Max, QuerySet
from djmoney.money import Money

from billing.calculations import Statement as Usage
from billing.models import BillableItem, BilledTerms, ItemKind, ItemStatus, Statement
from billing.selectors.portal import client_history
from billing.selectors.portal_tickets import TicketTime, client_ticket_times
from billing.selectors.statements import billed_terms_get
from customers.models import Client
from packages.models import BillingMode, BillingPeriod, PeriodStatus, Subscription


@dataclass(frozen=True)
class MonthlyStatementData:
    """The closed month of one subscription as its statement shows it."""

    subscription: Subscription
    client: Client
    month: dt.date
    usage: Usage | None  # included / used / left / overtime with the stored terms
    terms: BilledTerms | None
    items: list[BillableItem] = field(default_factory=list)  # void items left out
    tickets: list[TicketTime] = field(default_factory=list)

    @property
    def show_work_log(self) -> bool:
        return self.subscription.package.show_work_log

    @property
    def billed_items(self) -> list[BillableItem]:
        return [item for item in self.items if item.kind != ItemKind.ADJUSTMENT]

    @property
    def adjustments(self) -> list[BillableItem]:
        return [item for item in self.items if item.kind == ItemKind.ADJUSTMENT]

    @property
    def total(self) -> Money:
        return sum((item.amount for item in self.items), Money(0, self.client.currency))

    @property
    def is_recurring(self) -> bool:
        return self.subscription.package.billing_mode == BillingMode.RECURRING


def statement_data(*, subscription_id: int, month: dt.date) -> MonthlyStatementData:
    """The statement of a closed month. ``Subscription.DoesNotExist`` for an unknown
    subscription, ``BillingPeriod.DoesNotExist`` when the month is not closed."""
    subscription = Subscription.objects.select_related("package", "client").get(pk=subscription_id)
    histories = client_history(client_id=subscription.client_id, subscription_id=subscription.pk)
    row = (
        next((row for row in histories[0].rows if row.month == month), None) if histories else None
    )
    closed = BillingPeriod.objects.filter(month=month, status=PeriodStatus.CLOSED)
    if row is None and not closed.exists():
        raise BillingPeriod.DoesNotExist(f"{month} is not a closed month.")
    tickets = client_ticket_times(
        client_id=subscription.client_id, month=month, subscription_id=subscription.pk
    )
    return MonthlyStatementData(
        subscription=subscription,
        client=subscription.client,
        month=month,
        usage=row.statement if row else None,
        terms=billed_terms_get(subscription_id=subscription.pk, month=month),
        items=[item for item in (row.items if row else []) if item.status != ItemStatus.VOID],
        tickets=sorted(tickets, key=lambda time: time.ticket_id),
    )


def _text(value: Any) -> str:
    if isinstance(value, Money):
        return f"{value.amount} {value.currency}"
    return str(value)


def statement_figures(data: MonthlyStatementData) -> dict[str, Any]:
    """The figures a statement states, as plain JSON (money as "500.00 EUR"): stored with each
    revision, and compared to tell what the next revision changed."""
    usage = data.usage
    figures: dict[str, Any] = {
        "items": {
            str(item.pk): {
                "kind": item.kind,
                "description": item.description,
                "amount": _text(item.amount),
            }
            for item in data.items
        },
        "total": _text(data.total),
        "hours_logged": _text(sum((t.total_hours for t in data.tickets), Decimal("0.00"))),
    }
    if usage is not None:
        figures.update(
            included_hours=_text(usage.included_hours),
            used_hours=_text(usage.used_hours),
            left_hours=_text(usage.remaining_hours),
            overtime_hours=_text(usage.overtime_hours),
            fee=_text(usage.fee),
            overtime_amount=_text(usage.overtime_amount),
        )
    return figures


_FIGURE_LABELS = {
    "included_hours": "Hours included",
    "used_hours": "Hours used",
    "left_hours": "Hours left",
    "overtime_hours": "Overtime hours",
    "fee": "Fee",
    "overtime_amount": "Overtime amount",
    "hours_logged": "Hours logged",
    "total": "Total",
}


def statement_changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """What changed from the figures ``old`` to ``new``, one sentence each: items added and
    removed (voided), then each figure that moved."""
    changes = []
    old_items, new_items = old.get("items", {}), new.get("items", {})
    for key, item in new_items.items():
        if key not in old_items:
            what = "Adjustment" if item["kind"] == ItemKind.ADJUSTMENT else "Item"
            changes.append(f"{what} added: {item['description']} ({item['amount']}).")
    for key, item in old_items.items():
        if key not in new_items:
            changes.append(f"Item removed: {item['description']} ({item['amount']}).")
    for name, label in _FIGURE_LABELS.items():
        if name in old and name in new and old[name] != new[name]:
            changes.append(f"{label}: {old[name]} before, {new[name]} now.")
    return changes


def statement_latest(*, subscription_id: int, month: dt.date) -> Statement | None:
    return (
        Statement.objects.filter(subscription_id=subscription_id, month=month)
        .order_by("-revision")
        .first()
    )


def subscriptions_billed_in(month: dt.date) -> list[int]:
    """The subscriptions a closed month billed: its stored terms (recurring) or an item of
    that month."""
    with_terms = BilledTerms.objects.filter(
        month=month, billing_mode=BillingMode.RECURRING
    ).values_list("subscription_id", flat=True)
    with_items = BillableItem.objects.filter(period=month, subscription__isnull=False).values_list(
        "subscription_id", flat=True
    )
    return sorted(set(with_terms) | {pk for pk in with_items if pk is not None})


def statements_missing(*, closed_since: dt.datetime) -> list[tuple[int, dt.date]]:
    """(subscription, month) of months closed since ``closed_since`` that lack a statement, and
    of those whose latest revision is older than an item of their month (an adjustment whose
    revision was not rendered): the catch-up's work."""
    months = BillingPeriod.objects.filter(
        status=PeriodStatus.CLOSED, closed_at__gte=closed_since
    ).values_list("month", flat=True)
    found: list[tuple[int, dt.date]] = []
    for month in months:
        done = dict(
            Statement.objects.filter(month=month)
            .order_by()
            .values_list("subscription_id")
            .annotate(latest=Max("created_at"))
        )
        newest_item = dict(
            BillableItem.objects.filter(period=month, subscription__isnull=False)
            .order_by()
            .values_list("subscription_id")
            .annotate(newest=Max("created_at"))
        )
        for subscription_id in subscriptions_billed_in(month):
            latest = done.get(subscription_id)
            newest = newest_item.get(subscription_id)
            if latest is None or (newest is not None and newest > latest):
                found.append((subscription_id, month))
    return found


def client_statement_months(*, client_id: int) -> set[str]:
    """``"<subscription id>:<YYYY-MM>"`` of every month of the client that has a statement
    PDF, for the History page's links (one query)."""
    return {
        f"{subscription_id}:{month:%Y-%m}"
        for subscription_id, month in Statement.objects.filter(client_id=client_id)
        .order_by()
        .values_list("subscription_id", "month")
        .distinct()
    }


def client_statements(
    *, client_id: int, subscription_id: int, month: dt.date
) -> QuerySet[Statement]:
    """The revisions of one month's statement of the client's subscription, newest first;
    none for another client's subscription."""
    return Statement.objects.filter(
        client_id=client_id, subscription_id=subscription_id, month=month
    ).order_by("-revision")


def client_statement_get(
    *, client_id: int, subscription_id: int, month: dt.date, revision: int | None = None
) -> Statement:
    """One revision (None: the latest) of the client's statement; ``Statement.DoesNotExist``
    for another client's, an unknown revision, or a month without one."""
    statements = client_statements(
        client_id=client_id, subscription_id=subscription_id, month=month
    )
    if revision is not None:
        statements = statements.filter(revision=revision)
    statement = statements.first()
    if statement is None:
        raise Statement.DoesNotExist("No such statement.")
    return statement
