"""Reads of tickets and time: hours used per subscription, logged per ticket, period state."""

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

from django.contrib.auth import get_user_model
from django.db.models import (
    Count,
    DateField,
    DecimalField,
    Exists,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
)
from django.db.models.functions import Coalesce, TruncMonth

from packages.models import (
    BillingMode,
    BillingPeriod,
    PeriodStatus,
    Subscription,
    SubscriptionStatus,
    SupportPackage,
)
from supportbilling.periods import (
    period_current,
    period_label,
    period_last_day,
    period_of,
    period_parse,
    period_previous,
)
from supportbilling.roles import OPERATORS_GROUP
from tickets.models import (
    AuditAction,
    AuditEvent,
    Ticket,
    TicketMessage,
    TicketNotification,
    TimeEntry,
    TimeTimer,
)

ZERO_HOURS = Decimal("0.00")
HOURS = DecimalField(max_digits=12, decimal_places=2)


def subscription_hours_used(*, subscription: Subscription, month: dt.date) -> Decimal:
    """Recurring: hours of entries in ``month``. One-time: every entry ever (the bucket)."""
    entries = TimeEntry.objects.filter(subscription_id=subscription.pk)
    if subscription.package.billing_mode == BillingMode.RECURRING:
        entries = entries.filter(work_date__range=(month, period_last_day(month)))
    return entries.aggregate(total=Sum("hours"))["total"] or ZERO_HOURS


def time_entries_with_billed(entries: QuerySet[TimeEntry]) -> QuerySet[TimeEntry]:
    """``entries`` with ``billed_at``: when their month was closed, None while it is open or
    closing. An entry is billed once the rollup has closed its month; nothing is written per
    entry (docs/billing-rules.md, "Billed time"). Every reader of "billed" (the API's
    ``billed``, the portal's badges, the admin's entries) goes through here."""
    closed_at = BillingPeriod.objects.filter(
        month=OuterRef("entry_month"), status=PeriodStatus.CLOSED
    ).values("closed_at")[:1]
    return entries.annotate(
        entry_month=TruncMonth("work_date", output_field=DateField()),
        billed_at=Subquery(closed_at),
    )


_NOT_READ = object()


def time_entry_is_billed(entry: TimeEntry) -> bool:
    """From the ``billed_at`` of ``time_entries_with_billed`` when the entry was read with it,
    else one query (an entry just written or changed: always in an open month)."""
    billed_at = getattr(entry, "billed_at", _NOT_READ)
    if billed_at is not _NOT_READ:
        return billed_at is not None
    return BillingPeriod.objects.filter(
        month=period_of(entry.work_date), status=PeriodStatus.CLOSED
    ).exists()


# --- The operator's workspace in the admin -------------------------------------------------


def hours_short(hours: Decimal) -> str:
    """``Decimal("10.00")`` -> ``"10"``, ``Decimal("6.50")`` -> ``"6.5"``."""
    text = f"{hours:.2f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


@dataclass(frozen=True)
class TimePanel:
    """What is left on the ticket's subscription: this month (recurring) or in the bucket."""

    subscription: Subscription
    is_bucket: bool
    month: dt.date
    included: Decimal
    used: Decimal

    @property
    def left(self) -> Decimal:
        return max(self.included - self.used, ZERO_HOURS)

    @property
    def over(self) -> Decimal:
        return max(self.used - self.included, ZERO_HOURS)

    @property
    def summary(self) -> str:
        """``Gold (active) - 6.75 of 10 h left in 2026-11``."""
        subscription = self.subscription
        head = f"{subscription.package.name} ({subscription.get_status_display().lower()})"
        where = "in the bucket" if self.is_bucket else f"in {period_label(self.month)}"
        text = f"{head} - {hours_short(self.left)} of {hours_short(self.included)} h left {where}"
        if self.over:
            text += f" ({hours_short(self.over)} h over, billed as overtime)"
        return text


def ticket_time_panel(*, ticket: Ticket, now: dt.datetime | None = None) -> TimePanel | None:
    """None when the ticket has no subscription. Two queries."""
    if ticket.subscription_id is None:
        return None
    subscription = Subscription.objects.select_related("package").get(pk=ticket.subscription_id)
    month = period_current(now)
    return TimePanel(
        subscription=subscription,
        is_bucket=subscription.package.billing_mode == BillingMode.ONE_TIME,
        month=month,
        included=subscription.hours_included,
        used=subscription_hours_used(subscription=subscription, month=month),
    )


def ticket_conversation(*, ticket_id: int) -> list[TicketMessage]:
    return list(
        TicketMessage.objects.filter(ticket_id=ticket_id)
        .select_related("author")
        .prefetch_related("attachments")
        .order_by("created_at", "id")
    )


@dataclass(frozen=True)
class TicketEntries:
    entries: list[TimeEntry]
    locked_ids: frozenset[int]  # entries whose month is closed: shown, never changed
    total: Decimal


def ticket_entries(*, ticket_id: int) -> TicketEntries:
    """The ticket's entries, newest first, whether each is billed (``billed_at``) and which
    of them are locked (their month is closed or closing). One query whatever the number of
    entries."""
    month_status = BillingPeriod.objects.filter(month=OuterRef("entry_month")).values("status")
    entries: list[TimeEntry] = list(
        time_entries_with_billed(TimeEntry.objects.filter(ticket_id=ticket_id))
        .annotate(month_status=Subquery(month_status[:1]))
        .select_related("operator")
        .order_by("-work_date", "-id")
    )
    return TicketEntries(
        entries=entries,
        locked_ids=frozenset(
            entry.pk
            for entry in entries
            if getattr(entry, "month_status", None) not in (None, PeriodStatus.OPEN)
        ),
        total=sum((e.hours for e in entries), ZERO_HOURS),
    )


def ticket_audit_trail(*, ticket_id: int) -> list[AuditEvent]:
    """What happened on the ticket, plus what happened to the subscriptions its time is
    booked to without a ticket (a bucket depleted, the close of a month of the ticket's time
    that billed them). Three queries."""
    booked = set(
        TimeEntry.objects.filter(ticket_id=ticket_id)
        .annotate(month=TruncMonth("work_date", output_field=DateField()))
        .values_list("subscription_id", "month", "subscription__package__billing_mode")
        .distinct()
    )
    subscription_ids = {subscription_id for subscription_id, _, _ in booked}
    events = AuditEvent.objects.filter(
        Q(ticket_id=ticket_id)
        | Q(
            ticket__isnull=True,
            # period_billed with a subscription: the rollup's rows before it wrote one per batch
            action__in=[AuditAction.PERIOD_BILLED, AuditAction.SUBSCRIPTION_STATUS],
            subscription_id__in=subscription_ids,
        )
    ).select_related("actor")
    # The rollup bills recurring subscriptions only (a bucket's item is written when sold).
    billed = {(pk, month) for pk, month, mode in booked if mode == BillingMode.RECURRING}
    batches = [
        batch
        for batch in _rollup_batches_of(subscription_ids={pk for pk, _ in billed})
        if any(
            _batch_billed(batch, subscription_id=subscription_id, month=month)
            for subscription_id, month in billed
        )
    ]
    return sorted([*events, *batches], key=_in_order_of_time)


def _in_order_of_time(event: AuditEvent) -> tuple[dt.datetime, int]:
    return (event.created_at, event.pk or 0)


def _rollup_batches_of(*, subscription_ids: set[int]) -> list[AuditEvent]:
    """The rollup's ``period_billed`` rows (one per batch of subscriptions and month, written
    by ``billing.services.rollup``) whose id range holds one of ``subscription_ids``. One
    query, on the rows without ticket and subscription (index ``audit_batch_action``)."""
    if not subscription_ids:
        return []
    covering = Q()
    for subscription_id in subscription_ids:
        covering |= Q(
            detail__first_subscription__lte=subscription_id,
            detail__last_subscription__gte=subscription_id,
        )
    return list(
        AuditEvent.objects.filter(
            covering,
            action=AuditAction.PERIOD_BILLED,
            ticket__isnull=True,
            subscription__isnull=True,
        ).select_related("actor")
    )


def _batch_billed(batch: AuditEvent, *, subscription_id: int, month: dt.date) -> bool:
    """The rollup row ``batch`` is the close of ``month`` for ``subscription_id``'s range."""
    return (
        batch.detail["period"] == period_label(month)
        and batch.detail["first_subscription"] <= subscription_id
        and subscription_id <= batch.detail["last_subscription"]
    )


def ticket_mail_log(*, ticket_id: int) -> list[TicketNotification]:
    """The e-mails about the ticket: to whom, what, when sent, failures. One query."""
    return list(TicketNotification.objects.filter(ticket_id=ticket_id).order_by("created_at", "id"))


def subscription_audit_trail(*, subscription_id: int) -> list[AuditEvent]:
    """What happened to the subscription and its time, with the close of every month that
    billed it (its batch's row from the rollup). Four queries."""
    events = list(
        AuditEvent.objects.filter(subscription_id=subscription_id).select_related("actor", "ticket")
    )
    subscription = Subscription.objects.filter(pk=subscription_id).select_related("package").first()
    if subscription is None or subscription.package.billing_mode != BillingMode.RECURRING:
        return sorted(events, key=_in_order_of_time)  # the rollup bills recurring ones only
    entry_months = set(
        TimeEntry.objects.filter(subscription_id=subscription_id)
        .annotate(month=TruncMonth("work_date", output_field=DateField()))
        .values_list("month", flat=True)
        .distinct()
    )

    def billed_in(month: dt.date) -> bool:
        # Which months the rollup bills it in: those its dates overlap and those it has
        # time in (billing.selectors.rollup.subscriptions_billed_in).
        return month in entry_months or (
            period_of(subscription.start_date) <= month
            and (subscription.end_date is None or month <= subscription.end_date)
        )

    batches = [
        batch
        for batch in _rollup_batches_of(subscription_ids={subscription_id})
        if billed_in(period_parse(batch.detail["period"]))
    ]
    return sorted([*events, *batches], key=_in_order_of_time)


def client_subscriptions(*, client_id: int) -> list[Subscription]:
    """Every subscription of the client, active ones first (only those can be chosen)."""
    subscriptions = Subscription.objects.filter(client_id=client_id).select_related("package")
    return sorted(subscriptions, key=lambda s: (s.status != SubscriptionStatus.ACTIVE, -s.pk))


def packages_offered() -> list[SupportPackage]:
    return list(SupportPackage.objects.filter(active=True).order_by("name", "id"))


def operator_timers(*, operator_id: int) -> list[TimeTimer]:
    return list(
        TimeTimer.objects.filter(operator_id=operator_id)
        .select_related("ticket")
        .order_by("started_at")
    )


class TicketWithHours(Protocol):
    """A ticket of ``tickets_with_hours``: it carries the annotation."""

    hours_this_period: Decimal


def tickets_with_hours(*, tickets: QuerySet[Ticket], month: dt.date) -> QuerySet[Ticket]:
    """Annotate ``hours_this_period``: hours logged on each ticket in ``month``. A subquery,
    not a join, so other filters on entries (by operator) cannot multiply the sum."""
    hours = (
        TimeEntry.objects.filter(
            ticket_id=OuterRef("pk"), work_date__range=(month, period_last_day(month))
        )
        .order_by()
        .values("ticket_id")
        .annotate(total=Sum("hours"))
        .values("total")
    )
    return tickets.annotate(
        hours_this_period=Coalesce(Subquery(hours, output_field=HOURS), Value(ZERO_HOURS))
    )


def operators_with_entries() -> list[Any]:
    """Users who logged time at least once (the ticket list's operator filter)."""
    logged = TimeEntry.objects.filter(operator_id=OuterRef("pk"))
    return list(get_user_model().objects.filter(Exists(logged)).order_by("username"))


def operators_active() -> QuerySet[Any]:
    """The users a ticket can be assigned to: active staff in the operators group
    (supportbilling.roles), by username."""
    return (
        get_user_model()
        .objects.filter(is_active=True, is_staff=True, groups__name=OPERATORS_GROUP)
        .distinct()
        .order_by("username", "id")
    )


def tickets_with_entries_by(*, tickets: QuerySet[Ticket], operator_id: int) -> QuerySet[Ticket]:
    return tickets.filter(
        pk__in=TimeEntry.objects.filter(operator_id=operator_id).values("ticket_id")
    )


@dataclass(frozen=True)
class ReportMonth:
    month: dt.date
    by_operator: Sequence[Mapping[str, Any]]  # operator__username, hours, entries
    by_client: Sequence[Mapping[str, Any]]  # ticket__client__name, hours, entries
    hours: Decimal
    entries: int

    @property
    def label(self) -> str:
        return period_label(self.month)


def operator_report(*, now: dt.datetime | None = None) -> list[ReportMonth]:
    """Hours and number of entries per operator and per client, for the current and the
    previous month; aggregated in SQL (GROUP BY), two queries per month."""
    current = period_current(now)
    report = []
    for month in (current, period_previous(current)):
        entries = TimeEntry.objects.filter(work_date__range=(month, period_last_day(month)))
        by_operator = list(
            entries.values("operator_id", "operator__username")
            .annotate(hours=Sum("hours"), entries=Count("id"))
            .order_by("-hours", "operator__username")
        )
        by_client = list(
            entries.values("ticket__client_id", "ticket__client__name")
            .annotate(hours=Sum("hours"), entries=Count("id"))
            .order_by("-hours", "ticket__client__name")
        )
        report.append(
            ReportMonth(
                month=month,
                by_operator=by_operator,
                by_client=by_client,
                hours=sum((row["hours"] for row in by_operator), ZERO_HOURS),
                entries=sum(row["entries"] for row in by_operator),
            )
        )
    return report


def client_users_by_address(*, address: str) -> list[Any]:
    """The active portal users (a ClientUser) whose e-mail address is ``address``, ignoring
    case, with their client membership."""
    return list(
        get_user_model()
        .objects.filter(email__iexact=address.strip(), is_active=True)
        .filter(client_membership__isnull=False)
        .select_related("client_membership")
        .order_by("pk")
    )


def client_single_active_subscription(*, client_id: int) -> Subscription | None:
    """The client's active subscription when it has exactly one (where a ticket opened by
    e-mail books its time); None when it has none or several (an operator chooses)."""
    active = list(
        Subscription.objects.filter(client_id=client_id, status=SubscriptionStatus.ACTIVE)[:2]
    )
    return active[0] if len(active) == 1 else None
