"""The client portal's reads of tickets and their time, with where that time stands (open,
billed, invoiced). Each is scoped to one client and runs a fixed number of queries."""

import datetime as dt
from collections.abc import Collection
from dataclasses import dataclass
from decimal import Decimal
from functools import cached_property
from typing import Any

from django.db import models
from django.db.models import (
    Count,
    Max,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
)
from django.db.models.functions import Coalesce

from billing.models import (
    BillableItem,
    ItemKind,
    ItemStatus,
)
from billing.selectors.statements import HOURS, ZERO_HOURS, month_range
from packages.models import BillingMode
from supportbilling.periods import (
    period_of,
)
from tickets.models import (
    MessageKind,
    Ticket,
    TicketMessage,
    TicketStatus,
    TimeEntry,
)
from tickets.selectors import time_entries_with_billed


class TimeBadge(models.TextChoices):
    """Where the time of an entry stands, as the client sees it (in order of progress)."""

    OPEN = "open", "Open"  # its month is still open: it can change
    BILLED = "billed", "Billed"  # its month was closed by the rollup
    INVOICED = "invoiced", "Invoiced"  # the billable item of its month was invoiced


_BADGE_ORDER: list[str] = [TimeBadge.OPEN, TimeBadge.BILLED, TimeBadge.INVOICED]


@dataclass(frozen=True)
class EntryLine:
    """One time entry as the client sees it; operator and note only with the work log."""

    entry_id: int
    ticket_id: int
    subscription_id: int
    work_date: dt.date
    hours: Decimal
    badge: str
    show_work_log: bool
    operator_name: str
    note: str
    # Worked at no charge: shown, never billed (docs/billing-rules.md, "No-charge time").
    no_charge: bool = False


@dataclass(frozen=True)
class TicketTime:
    """The time of one ticket (in one month, or all time): its entries and where they stand."""

    ticket_id: int
    subject: str
    subscription_id: int
    entries: list[EntryLine]

    # Cached: a page reads each of these more than once (cached_property writes the instance's
    # __dict__ directly, which a frozen dataclass allows).
    @cached_property
    def total_hours(self) -> Decimal:
        return sum((entry.hours for entry in self.entries), ZERO_HOURS)

    @cached_property
    def last_work_date(self) -> dt.date:
        return max(entry.work_date for entry in self.entries)

    @cached_property
    def badge(self) -> str:
        """The least advanced state of its entries: one open entry keeps the ticket open."""
        return min((entry.badge for entry in self.entries), key=_BADGE_ORDER.index)

    @cached_property
    def show_work_log(self) -> bool:
        return all(entry.show_work_log for entry in self.entries)


def _entry_badge(
    *,
    subscription_id: int,
    billing_mode: str,
    work_date: dt.date,
    billed_at: dt.datetime | None,
    invoiced: set[tuple[int, dt.date | None]],
) -> str:
    """``billed_at`` as ``time_entries_with_billed`` reads it: billed once its month closed."""
    if billed_at is None:
        return TimeBadge.OPEN
    if billing_mode == BillingMode.ONE_TIME:
        is_invoiced = (subscription_id, None) in invoiced
    else:
        is_invoiced = (subscription_id, period_of(work_date)) in invoiced
    return TimeBadge.INVOICED if is_invoiced else TimeBadge.BILLED


_ENTRY_FIELDS = (
    "pk",
    "ticket_id",
    "subscription_id",
    "work_date",
    "hours",
    "note",
    "billed_at",
    "ticket__subject",
    "subscription__package__billing_mode",
    "subscription__package__show_work_log",
    "operator__username",
    "operator__first_name",
    "operator__last_name",
    "no_charge",
)


def client_ticket_times(
    *,
    client_id: int,
    month: dt.date | None = None,
    ticket_ids: Collection[int] | None = None,
    subscription_id: int | None = None,
) -> list[TicketTime]:
    """Tickets of the client with time (in ``month``, or all time; on one subscription or
    all), one group per ticket and subscription, newest activity first. Two queries: entries
    (with whether their month is closed), invoiced items.

    Badges: ``Invoiced`` when the subscription's billable item for the entry's month (for a
    one-time bucket: its one-time item) is invoiced, ``Billed`` when the month is closed,
    ``Open`` otherwise.
    """
    # The subscription's client too (the same one: the time services refuse another client's
    # subscription), so PostgreSQL reaches the month's entries through the client's few
    # subscriptions instead of scanning every client's month (docs/performance.md, Portal).
    entries = time_entries_with_billed(
        TimeEntry.objects.filter(ticket__client_id=client_id, subscription__client_id=client_id)
    )
    if month is not None:
        entries = entries.filter(work_date__range=month_range(month))
    if ticket_ids is not None:
        entries = entries.filter(ticket_id__in=list(ticket_ids))
    if subscription_id is not None:
        entries = entries.filter(subscription_id=subscription_id)
    # Plain rows, not model instances: five models per entry cost more than the query itself.
    rows = list(entries.order_by("work_date", "pk").values_list(*_ENTRY_FIELDS))
    if not rows:
        return []
    months = sorted({period_of(row[3]) for row in rows})
    invoiced: set[tuple[int, dt.date | None]] = set()
    items = BillableItem.objects.filter(
        subscription_id__in={row[2] for row in rows},
        status=ItemStatus.INVOICED,
    ).filter(
        Q(kind=ItemKind.ONE_TIME) | Q(kind__in=[ItemKind.FEE, ItemKind.OVERTIME], period__in=months)
    )
    for subscription_pk, period, kind in items.values_list("subscription_id", "period", "kind"):
        invoiced.add((subscription_pk, None if kind == ItemKind.ONE_TIME else period))
    groups: dict[tuple[int, int], list[EntryLine]] = {}
    subjects: dict[int, str] = {}
    for (
        entry_pk,
        ticket_pk,
        subscription_pk,
        work_date,
        hours,
        note,
        billed_at,
        subject,
        billing_mode,
        show,
        username,
        first_name,
        last_name,
        no_charge,
    ) in rows:
        subjects[ticket_pk] = subject
        # The operator's name as User.get_full_name() writes it, else the username.
        full_name = f"{first_name} {last_name}".strip()
        groups.setdefault((ticket_pk, subscription_pk), []).append(
            EntryLine(
                entry_id=entry_pk,
                ticket_id=ticket_pk,
                subscription_id=subscription_pk,
                work_date=work_date,
                hours=hours,
                badge=_entry_badge(
                    subscription_id=subscription_pk,
                    billing_mode=billing_mode,
                    work_date=work_date,
                    billed_at=billed_at,
                    invoiced=invoiced,
                ),
                show_work_log=show,
                operator_name=(full_name or username) if show else "",
                note=note if show else "",
                no_charge=no_charge,
            )
        )
    times = [
        TicketTime(
            ticket_id=ticket_pk,
            subject=subjects[ticket_pk],
            subscription_id=subscription_pk,
            entries=lines,
        )
        for (ticket_pk, subscription_pk), lines in groups.items()
    ]
    times.sort(key=lambda time: (time.last_work_date, time.ticket_id), reverse=True)
    return times


def client_ticket_badges(*, client_id: int, ticket_ids: Collection[int]) -> dict[int, str]:
    """The time badge of each ticket that has time (least advanced of its entries)."""
    badges: dict[int, str] = {}
    for time in client_ticket_times(client_id=client_id, ticket_ids=ticket_ids):
        known = badges.get(time.ticket_id, time.badge)
        badges[time.ticket_id] = min(known, time.badge, key=_BADGE_ORDER.index)
    return badges


def client_tickets(*, client_id: int, status: str = "") -> QuerySet[Ticket]:
    """The client's tickets with their logged time (total, entries, last work date), newest
    activity first; ``status`` is a ticket status, ``active`` (not closed) or empty (all)."""
    tickets = Ticket.objects.filter(client_id=client_id).select_related("subscription__package")
    if status == "active":
        tickets = tickets.exclude(status=TicketStatus.CLOSED)
    elif status in TicketStatus.values:
        tickets = tickets.filter(status=status)
    # Per-ticket subqueries (the entry index by ticket) rather than a join and GROUP BY: the
    # join made PostgreSQL scan every client's entries, and the page's COUNT repeat it.
    entries = TimeEntry.objects.filter(ticket=OuterRef("pk")).order_by().values("ticket")

    def per_ticket(aggregate: Any, output_field: models.Field) -> Subquery:
        return Subquery(
            entries.annotate(value=aggregate).values("value"), output_field=output_field
        )

    return tickets.annotate(
        hours_total=Coalesce(
            per_ticket(Sum("hours"), HOURS), Value(ZERO_HOURS), output_field=HOURS
        ),
        entry_count=Coalesce(
            per_ticket(Count("pk"), models.IntegerField()),
            Value(0),
            output_field=models.IntegerField(),
        ),
        last_work_date=per_ticket(Max("work_date"), models.DateField()),
    ).order_by("-updated_at", "-pk")


def client_ticket_get(*, client_id: int, ticket_id: int) -> Ticket:
    """A ticket of the client; another client's ticket does not exist (Ticket.DoesNotExist)."""
    return Ticket.objects.select_related("subscription__package").get(
        pk=ticket_id, client_id=client_id
    )


def client_ticket_conversation(*, ticket: Ticket) -> QuerySet[TicketMessage]:
    """What the client may read of a ticket: replies, never internal notes."""
    return (
        TicketMessage.objects.filter(ticket=ticket)
        .exclude(kind=MessageKind.INTERNAL_NOTE)
        .select_related("author")
        .prefetch_related("attachments")
        .order_by("created_at", "pk")
    )
