"""Reads of tickets and time: hours used per subscription, logged per ticket, period state."""

import datetime as dt
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, NamedTuple, Protocol, TypedDict

from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import (
    Count,
    DateField,
    DecimalField,
    Exists,
    F,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
)
from django.db.models.functions import Coalesce, TruncMonth

from packages.models import (
    BillingIncrement,
    BillingMode,
    BillingPeriod,
    BillingRounding,
    OveragePolicy,
    PeriodStatus,
    Subscription,
    SubscriptionStatus,
    SupportPackage,
)
from packages.selectors import closed_months, period_is_closed
from supportbilling.periods import (
    period_current,
    period_label,
    period_last_day,
    period_of,
    period_parse,
)
from supportbilling.roles import OPERATORS_GROUP
from tickets.models import (
    AuditAction,
    AuditEvent,
    MessageKind,
    Ticket,
    TicketMessage,
    TicketNotification,
    TimeEntry,
    TimeTimer,
)
from tickets.overage import OverageState, overage_state

ZERO_HOURS = Decimal("0.00")
HOURS = DecimalField(max_digits=12, decimal_places=2)


def subscription_hours_used(*, subscription: Subscription, month: dt.date) -> Decimal:
    """Recurring: chargeable hours of entries in ``month``. One-time: every chargeable entry
    ever (the bucket). Time at no charge is not deducted; the billing policy's rounding is
    billing's (``billing.selectors.statements.hours_usage``)."""
    entries = TimeEntry.objects.filter(subscription_id=subscription.pk, no_charge=False)
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
    # The month under the subscription's overage policy (None: a bucket).
    overage: OverageState | None = None

    @property
    def overage_summary(self) -> str:
        """Hours still allowed (``cap``) or loggable without approval (``approve``)."""
        return self.overage.summary if self.overage else ""

    @property
    def asks_approval(self) -> bool:
        return self.overage is not None and self.overage.policy == OveragePolicy.APPROVE

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

    @property
    def policy(self) -> str:
        """The package's billing policy when it bills more than is logged (a monthly package;
        docs/billing-rules.md, "Billing increment and minimum"), else ""."""
        package = self.subscription.package
        if self.is_bucket:
            return ""
        parts = []
        if package.billing_increment != BillingIncrement.QUARTER:
            per = (
                "entry"
                if package.billing_rounding == BillingRounding.PER_ENTRY
                else ("ticket and month")
            )
            parts.append(
                f"rounded up to {hours_short(Decimal(package.billing_increment))} h per {per}"
            )
        elif package.billing_rounding == BillingRounding.PER_TICKET_MONTH:
            parts.append("rounded up per ticket and month")
        if package.billing_minimum > 0:
            parts.append(f"at least {hours_short(package.billing_minimum)} h per ticket and month")
        return f"Billed time: {', '.join(parts)}; the hours above are as logged." if parts else ""


def ticket_time_panel(*, ticket: Ticket, now: dt.datetime | None = None) -> TimePanel | None:
    """None when the ticket has no subscription. Two queries, one when the ticket was read
    with its subscription and package (``ticket_for_workspace``)."""
    if ticket.subscription_id is None:
        return None
    subscription = ticket.subscription if _read_with_package(ticket) else None
    if subscription is None:
        subscription = Subscription.objects.select_related("package").get(pk=ticket.subscription_id)
    month = period_current(now)
    return TimePanel(
        subscription=subscription,
        is_bucket=subscription.package.billing_mode == BillingMode.ONE_TIME,
        month=month,
        included=subscription.hours_included,
        used=subscription_hours_used(subscription=subscription, month=month),
        overage=overage_state(subscription=subscription, month=month)
        if subscription.overage_policy != OveragePolicy.BILL
        or subscription.client_cap_hours is not None
        else None,
    )


def _read_with_package(ticket: Ticket) -> bool:
    if not Ticket.subscription.is_cached(ticket) or ticket.subscription is None:
        return False
    return Subscription.package.is_cached(ticket.subscription)


MESSAGE_FIELDS = (
    "id",
    "ticket_id",
    "kind",
    "body",
    "created_at",
    "author__username",
    "author__first_name",
    "author__last_name",
    "author__client_membership__id",
)


def ticket_conversation(*, ticket_id: int) -> list[TicketMessage]:
    """The messages, oldest first, with what ``message_author_label`` reads. One query (and
    one for the files)."""
    return list(
        TicketMessage.objects.filter(ticket_id=ticket_id)
        .select_related("author__client_membership")
        # Only what the page shows: fifty full users (password hash and all) cost as much as
        # writing their messages.
        .only(*MESSAGE_FIELDS)
        .prefetch_related("attachments")
        .order_by("created_at", "id")
    )


def message_author_label(*, message: TicketMessage, client_name: str) -> str:
    """Who wrote the message, as the workspace names them. A client's message is signed by
    the client's contact (their name) or, when staff typed it in for the client (the API, the
    admin, no portal login), by the client's name with who entered it; staff's messages by
    their username."""
    author = message.author
    if message.kind != MessageKind.CLIENT_REPLY:
        return author.get_username() if author is not None else "(unknown)"
    if author is None:
        return client_name
    membership = getattr(author, "client_membership", None)
    if membership is not None:
        return author.get_full_name() or author.get_username()
    return f"{client_name} (entered by {author.get_username()})"


@dataclass(frozen=True)
class ClosedMonthEntries:
    """A closed month of the ticket's entries, summarised: they can no longer change, so the
    workspace lists them only when asked (``ticket_month_entries``)."""

    month: dt.date
    entries: int
    hours: Decimal

    @property
    def label(self) -> str:
        return period_label(self.month)


class EntryRow(TypedDict):
    """An entry as the workspace lists it: plain values, not a model (a hundred entries are
    built ten times faster)."""

    id: int
    work_date: dt.date
    hours: Decimal
    note: str
    billed_at: dt.datetime | None
    operator_name: str
    no_charge: bool
    no_charge_reason: str


ENTRY_ROW_FIELDS = (
    "id",
    "work_date",
    "hours",
    "note",
    "billed_at",
    "no_charge",
    "no_charge_reason",
)


@dataclass(frozen=True)
class TicketEntries:
    entries: list[EntryRow]  # of the months still open: these can be changed
    closed_months: list[ClosedMonthEntries]  # newest first
    total: Decimal


def ticket_entries(*, ticket_id: int) -> TicketEntries:
    """The entries of the ticket's open months, newest first, and a summary (entries, hours)
    per closed month. Three queries, and the page's cost does not grow with the entries of
    closed months (a retainer ticket collects them for years)."""
    months = list(
        TimeEntry.objects.filter(ticket_id=ticket_id)
        .annotate(month=TruncMonth("work_date"))
        .values("month")
        .annotate(entries=Count("id"), hours=Sum("hours"))
        .order_by("-month")
    )
    closed = closed_months(months=[row["month"] for row in months]) if months else set()
    open_months = [row["month"] for row in months if row["month"] not in closed]
    entries: list[EntryRow] = []
    if open_months:
        in_open_month = Q()
        for month in open_months:
            in_open_month |= Q(work_date__range=(month, period_last_day(month)))
        entries = list(
            time_entries_with_billed(TimeEntry.objects.filter(in_open_month, ticket_id=ticket_id))
            .values(*ENTRY_ROW_FIELDS, operator_name=F("operator__username"))
            .order_by("-work_date", "-id")
        )
    return TicketEntries(
        entries=entries,
        closed_months=[
            ClosedMonthEntries(month=row["month"], entries=row["entries"], hours=row["hours"])
            for row in months
            if row["month"] in closed
        ],
        total=sum((row["hours"] for row in months), ZERO_HOURS),
    )


MONTH_ENTRIES_PAGE = 50


@dataclass(frozen=True)
class MonthEntriesPage:
    month: dt.date
    entries: list[EntryRow]
    page: int
    has_next: bool

    @property
    def label(self) -> str:
        return period_label(self.month)


def ticket_month_entries(*, ticket_id: int, month: dt.date, page: int = 1) -> MonthEntriesPage:
    """One page of the ticket's entries in ``month`` (a closed month the workspace shows on
    demand), newest first. One query: it reads one entry more than the page to know whether
    another page follows."""
    start = (page - 1) * MONTH_ENTRIES_PAGE
    rows = list(
        time_entries_with_billed(
            TimeEntry.objects.filter(
                ticket_id=ticket_id, work_date__range=(month, period_last_day(month))
            )
        )
        .values(*ENTRY_ROW_FIELDS, operator_name=F("operator__username"))
        .order_by("-work_date", "-id")[start : start + MONTH_ENTRIES_PAGE + 1]
    )
    return MonthEntriesPage(
        month=month,
        entries=rows[:MONTH_ENTRIES_PAGE],
        page=page,
        has_next=len(rows) > MONTH_ENTRIES_PAGE,
    )


def ticket_entry_editable(*, ticket_id: int, entry_id: int) -> TimeEntry | None:
    """The entry the workspace's single edit form loads: one of the ticket's, in an open
    month; None otherwise (the services would refuse a change anyway)."""
    entry = TimeEntry.objects.filter(pk=entry_id, ticket_id=ticket_id).first()
    if entry is None or period_is_closed(month=period_of(entry.work_date)):
        return None
    return entry


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


# What the operator report can group by: the label of each view and the fields it reads.
REPORT_VIEWS: dict[str, tuple[str, str, str]] = {
    "operator": ("Operator", "operator_id", "operator__username"),
    "client": ("Client", "ticket__client_id", "ticket__client__name"),
}


@dataclass(frozen=True)
class ReportRow:
    name: str
    hours: Decimal
    entries: int


@dataclass(frozen=True)
class OperatorReport:
    date_from: dt.date
    date_to: dt.date
    view: str  # a key of REPORT_VIEWS
    rows: list[ReportRow]  # most hours first

    @property
    def hours(self) -> Decimal:
        return sum((row.hours for row in self.rows), ZERO_HOURS)

    @property
    def entries(self) -> int:
        return sum(row.entries for row in self.rows)

    @property
    def label(self) -> str:
        return REPORT_VIEWS[self.view][0]


def operator_report(*, date_from: dt.date, date_to: dt.date, view: str) -> OperatorReport:
    """Hours and number of entries per operator or per client, of the entries whose work date
    is from ``date_from`` to ``date_to`` (both included). One GROUP BY query."""
    _, key, name = REPORT_VIEWS[view]
    rows = (
        TimeEntry.objects.filter(work_date__range=(date_from, date_to))
        .values(key, name)
        .annotate(hours=Sum("hours"), entries=Count("id"))
        .order_by("-hours", name, key)
    )
    return OperatorReport(
        date_from=date_from,
        date_to=date_to,
        view=view,
        rows=[
            ReportRow(name=row[name], hours=row["hours"], entries=row["entries"]) for row in rows
        ],
    )


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


# --- what the ticket page's cached parts depend on ---------------------------------------------

# Per list of the ticket page, what it shows changes: the number of rows and the newest id
# (messages and audit events are only ever added), and for what can change (the entries of
# open months, the e-mails' delivery) a digest of the shown columns; never a timestamp, which
# two changes can share. The entries of closed months cannot change: their count and newest
# id cover them, so the digest reads only the open months' rows. Written as SQL: the same
# statement through the ORM cost about 10 ms of CPU to build per request, more than the rest
# of the page's reads together.
WORKSPACE_STAMP_SQL = """
SELECT
  (SELECT COUNT(*) || ':' || COALESCE(MAX(id), 0)
     FROM tickets_ticketmessage WHERE ticket_id = %(ticket)s),
  (SELECT COUNT(*) || ':' || COALESCE(MAX(id), 0)
     FROM tickets_timeentry WHERE ticket_id = %(ticket)s),
  (SELECT MD5(COALESCE(STRING_AGG(
            CONCAT_WS('|', e.id, e.hours, e.work_date, e.note, e.operator_id, e.subscription_id,
                      e.no_charge, e.no_charge_reason),
            ',' ORDER BY e.id), ''))
     FROM tickets_timeentry e
    WHERE e.ticket_id = %(ticket)s
      AND NOT EXISTS (
        SELECT 1 FROM packages_billingperiod p
         WHERE p.month = CAST(DATE_TRUNC('month', e.work_date) AS date)
           AND p.status IN (%(closing)s, %(closed)s))),
  (SELECT COUNT(*) || ':' || COALESCE(MAX(id), 0)
     FROM tickets_auditevent WHERE ticket_id = %(ticket)s),
  (SELECT COUNT(*) || ':' || COALESCE(MAX(id), 0)
     FROM tickets_auditevent
    WHERE ticket_id IS NULL AND action IN (%(billed)s, %(status)s)
      AND subscription_id IN (
        SELECT subscription_id FROM tickets_timeentry WHERE ticket_id = %(ticket)s)),
  (SELECT COUNT(*) || ':' || COALESCE(MAX(id), 0)
     FROM tickets_auditevent
    WHERE action = %(billed)s AND ticket_id IS NULL AND subscription_id IS NULL),
  (SELECT STRING_AGG(CONCAT_WS('|', month, status), ',' ORDER BY month)
     FROM packages_billingperiod WHERE status IN (%(closing)s, %(closed)s)),
  (SELECT MD5(COALESCE(STRING_AGG(
            CONCAT_WS('|', id, status, attempts, sent_at, last_error, address),
            ',' ORDER BY id), ''))
     FROM tickets_ticketnotification WHERE ticket_id = %(ticket)s),
  (SELECT MD5(COALESCE(STRING_AGG(CONCAT_WS('|', u.id, u.username), ',' ORDER BY u.id), ''))
     FROM auth_user u
    WHERE u.is_active AND u.is_staff AND EXISTS (
      SELECT 1 FROM auth_user_groups ug JOIN auth_group g ON g.id = ug.group_id
       WHERE ug.user_id = u.id AND g.name = %(operators)s)),
  (SELECT MD5(COALESCE(STRING_AGG(
            CONCAT_WS('|', s.id, s.status, s.start_date, p.name), ',' ORDER BY s.id), ''))
     FROM packages_subscription s JOIN packages_supportpackage p ON p.id = s.package_id
    WHERE s.client_id = %(client)s),
  (SELECT MD5(COALESCE(STRING_AGG(
            CONCAT_WS('|', id, name, billing_mode, included_hours), ',' ORDER BY id), ''))
     FROM packages_supportpackage WHERE active)
"""
STAMP_LISTS = 8  # the first columns: the lists; the last three: the side panel's choices


def ticket_for_workspace(*, ticket_id: int) -> Ticket | None:
    """The ticket with what its page shows beside it (client, subscription, assignee)."""
    return (
        Ticket.objects.filter(pk=ticket_id)
        .select_related("client", "subscription__package", "assignee")
        .first()
    )


class WorkspaceStamp(NamedTuple):
    lists: tuple[Any, ...]  # conversation, entries, audit trail, mail log
    choices: tuple[Any, ...]  # operators, the client's subscriptions, packages offered


def workspace_stamp(*, ticket: Ticket) -> WorkspaceStamp:
    """What the ticket page's lists (conversation, entries, audit trail, mail log) and the
    side panel's choices (operators, the client's subscriptions, packages offered) depend on.
    The lists' part changes with every message, entry (added, changed, deleted), audit event
    of the ticket or of the subscriptions its time is booked to, rollup batch, month being
    closed or closed, and e-mail (queued, sent, failed); the choices' with every column they
    show. One query.

    The stamp is PostgreSQL's SQL; elsewhere (SQLite, the laptop fallback) every view gets a
    stamp of its own, so the lists are always rebuilt: slower, never stale."""
    if connection.vendor != "postgresql":
        fresh = (uuid.uuid4().hex,)
        return WorkspaceStamp(lists=fresh, choices=fresh)
    params: dict[str, int | str] = {
        "ticket": ticket.pk,
        "client": ticket.client_id,
        "billed": AuditAction.PERIOD_BILLED.value,
        "status": AuditAction.SUBSCRIPTION_STATUS.value,
        "closing": PeriodStatus.CLOSING.value,
        "closed": PeriodStatus.CLOSED.value,
        "operators": OPERATORS_GROUP,
    }
    with connection.cursor() as cursor:
        cursor.execute(WORKSPACE_STAMP_SQL, params)
        row = tuple(cursor.fetchone() or ())
    return WorkspaceStamp(lists=row[:STAMP_LISTS], choices=row[STAMP_LISTS:])
