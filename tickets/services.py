"""Writes of tickets and time. Every rule of where, when and how much time can be logged
lives here; the admin, the portal and the API call these functions and nothing else."""

import datetime as dt
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.validators import ProhibitNullCharactersValidator
from django.db import connection, transaction
from django.db.models import Sum
from django.utils import timezone

from customers.models import Client
from packages.models import (
    BillingMode,
    Subscription,
    SubscriptionStatus,
    SupportPackage,
)
from packages.services import period_lock_open, subscription_create
from supportbilling.periods import local_today, period_last_day, period_of
from tickets import signals
from tickets.attachments import Upload, uploads_add, uploads_check
from tickets.blocks import blocks_of
from tickets.hours import hours_clean, hours_round_up_to_step
from tickets.models import (
    MESSAGE_BODY_MAX_LENGTH,
    MESSAGE_BODY_TOO_LONG,
    AuditAction,
    AuditEvent,
    MessageKind,
    Ticket,
    TicketMessage,
    TicketPriority,
    TicketStatus,
    TimeEntry,
    TimeTimer,
)
from tickets.overage import CAP_REACHED, PENDING_APPROVAL, overage_check, overage_state
from tickets.selectors import operators_active

# Which argument of the time services each of their refusals is about (by its code), so a form
# can show the message beside that field; other refusals concern the ticket as a whole.
TIME_ERROR_FIELDS: dict[str, str] = {
    "hours_format": "hours",
    "hours_positive": "hours",
    "hours_max": "hours",
    "hours_step": "hours",
    "bucket_exhausted": "hours",
    "overage_cap": "hours",
    "approval_needed": "hours",
    "future_date": "work_date",
    "outside_subscription": "work_date",
    "period_closed": "work_date",
    "before_billing_start": "work_date",
    "no_charge_reason": "no_charge_reason",
}

NO_CHARGE_PERMISSION = "tickets.mark_no_charge"
NO_CHARGE_FORBIDDEN = (
    "You may not mark time as no charge: it needs the permission "
    '"Can mark time entries as no charge".'
)
NO_CHARGE_REASON_MAX_LENGTH = 200


def audit_record(
    *,
    action: str,
    actor: Any = None,
    ticket: Ticket | None = None,
    subscription_id: int | None = None,
    detail: dict[str, Any] | None = None,
) -> AuditEvent:
    return AuditEvent.objects.create(
        action=action,
        actor=actor if getattr(actor, "is_authenticated", False) else None,
        ticket=ticket,
        subscription_id=subscription_id,
        detail=detail or {},
    )


def subscription_sold_record(
    *, subscription: Subscription, actor: Any, ticket_id: int | None
) -> None:
    """A subscription was sold (packages.services.subscription_create): its audit trail, and
    the ticket's when it was sold from one, show it."""
    audit_record(
        action=AuditAction.SERVICE_ADDED,
        actor=actor,
        ticket=Ticket.objects.get(pk=ticket_id) if ticket_id is not None else None,
        subscription_id=subscription.pk,
        detail={"package": subscription.package.name, "start_date": str(subscription.start_date)},
    )


def subscription_status_record(
    *, subscription: Subscription, old_status: str, new_status: str, actor: Any
) -> None:
    audit_record(
        action=AuditAction.SUBSCRIPTION_STATUS,
        actor=actor,
        subscription_id=subscription.pk,
        detail={"status": [old_status, new_status]},
    )


def _time_entries_changed(*, subscription_id: int, months: Iterable[dt.date]) -> None:
    """Tell upper apps once the time commits (nothing if it rolls back). Robust: the time is
    saved by then, so a failing receiver is logged and must not fail the request."""
    changed = tuple(sorted(set(months)))

    def send() -> None:
        signals.time_entries_changed.send_robust(
            sender=TimeEntry, subscription_id=subscription_id, months=changed
        )

    transaction.on_commit(send, robust=True)


def _subscription_takes_time_check(
    *, subscription: Subscription, client_id: int, foreign: str, inactive: str
) -> None:
    """Only an active subscription of the ticket's own client (``client_id``) takes its time.
    The caller words the refusal; ``inactive`` may name the ``{status}``."""
    if subscription.client_id != client_id:
        raise ValidationError(foreign, code="foreign_subscription")
    if subscription.status != SubscriptionStatus.ACTIVE:
        status = subscription.get_status_display().lower()
        raise ValidationError(inactive.format(status=status), code="inactive_subscription")


def _event_on_commit(signal: Any, sender: type, **kwargs: Any) -> None:
    """Send a ticket event once the transaction commits (never for work rolled back); robust,
    as the change is saved by then: a failing receiver is logged, the request does not fail."""
    transaction.on_commit(lambda: signal.send_robust(sender=sender, **kwargs), robust=True)


def _actor_id(actor: Any) -> int | None:
    return actor.pk if getattr(actor, "is_authenticated", False) else None


def _subscription_for_time(*, ticket: Ticket, for_update: bool) -> Subscription:
    if not ticket.track_time:
        raise ValidationError("This ticket does not track time.", code="not_tracked")
    if ticket.subscription_id is None:
        raise ValidationError(
            "This ticket has no subscription: link one of the client's active subscriptions first.",
            code="no_subscription",
        )
    subscriptions = Subscription.objects.select_related("package")
    if for_update:
        subscriptions = subscriptions.select_for_update(of=("self",))
    subscription = subscriptions.get(pk=ticket.subscription_id)
    if subscription.topup_of_id is not None:
        raise ValidationError(
            f"Subscription #{subscription.pk} is a top-up block of #{subscription.topup_of_id}: "
            f"log the time on a ticket of #{subscription.topup_of_id}, whose time draws the "
            "block's hours.",
            code="topup_block",
        )
    _subscription_takes_time_check(
        subscription=subscription,
        client_id=ticket.client_id,
        foreign="The ticket's subscription belongs to another client.",
        inactive="The subscription is {status}: time can only be logged on an active subscription.",
    )
    return subscription


def _check_work_date(*, subscription: Subscription, work_date: dt.date, today: dt.date) -> None:
    if work_date > today:
        raise ValidationError("The work date cannot be in the future.", code="future_date")

    if work_date < subscription.start_date or (
        subscription.end_date and work_date > subscription.end_date
    ):
        raise ValidationError(
            "The work date is outside the subscription's dates "
            f"({subscription.start_date} to {subscription.end_date or 'open'}).",
            code="outside_subscription",
        )


def _bucket_used(subscription_id: int) -> Decimal:
    """The bucket's hours drawn: every chargeable entry (time at no charge draws nothing)."""
    used = TimeEntry.objects.filter(subscription_id=subscription_id, no_charge=False).aggregate(
        s=Sum("hours")
    )
    return used["s"] or Decimal("0")


def _bucket_check(*, subscription: Subscription, extra_hours: Decimal) -> None:
    """A one-time bucket cannot be overdrawn (the subscription row is locked)."""
    left = subscription.hours_included - _bucket_used(subscription.pk)
    if extra_hours > left:
        raise ValidationError(
            f"Only {max(left, Decimal(0)):.2f} h left in this one-time package.",
            code="bucket_exhausted",
        )


def _bucket_update_status(*, subscription: Subscription, actor: Any) -> None:
    """``depleted`` exactly when nothing is left; back to ``active`` if time was given back."""
    left = subscription.hours_included - _bucket_used(subscription.pk)
    new_status = None
    if left <= 0 and subscription.status == SubscriptionStatus.ACTIVE:
        new_status = SubscriptionStatus.DEPLETED
    elif left > 0 and subscription.status == SubscriptionStatus.DEPLETED:
        new_status = SubscriptionStatus.ACTIVE
    if new_status:
        old_status = subscription.status
        subscription.status = new_status
        subscription.save(update_fields=["status"])
        audit_record(
            action=AuditAction.SUBSCRIPTION_STATUS,
            actor=actor,
            subscription_id=subscription.pk,
            detail={"status": [old_status, new_status]},
        )


def _blocks_lock(*, subscription: Subscription, month: dt.date) -> list[Subscription] | None:
    """Lock the top-up blocks of a recurring subscription (after its own row, in id order),
    so that what they have available cannot change under the cap check; None for a bucket."""
    if subscription.package.billing_mode != BillingMode.RECURRING:
        return None
    return blocks_of([subscription.pk], until=period_last_day(month), for_update=True)


def _overage_record(
    *, outcome: list[str], subscription: Subscription, ticket: Ticket, month: dt.date, actor: Any
) -> None:
    """Audit what an entry did under the overage policy (checked by ``overage_check``); time
    pending approval asks the client's users, once per month (docs/billing-rules.md)."""
    if not outcome:
        return
    state = overage_state(subscription=subscription, month=month)
    if state is None:
        return
    detail = {"month": f"{month:%Y-%m}", "used": str(state.used)}
    if CAP_REACHED in outcome:
        audit_record(
            action=AuditAction.OVERAGE_CAP_REACHED,
            actor=actor,
            ticket=ticket,
            subscription_id=subscription.pk,
            detail={**detail, "cap": str(state.cap)},
        )
    if PENDING_APPROVAL in outcome:
        audit_record(
            action=AuditAction.OVERAGE_PENDING,
            actor=actor,
            ticket=ticket,
            subscription_id=subscription.pk,
            detail={**detail, "pending": str(state.pending), "approved": str(state.approved)},
        )
        asked = AuditEvent.objects.filter(
            action=AuditAction.OVERAGE_REQUESTED,
            subscription_id=subscription.pk,
            detail__month=detail["month"],
        ).exists()
        if not asked:
            audit_record(
                action=AuditAction.OVERAGE_REQUESTED,
                actor=None,
                ticket=ticket,
                subscription_id=subscription.pk,
                detail={**detail, "pending": str(state.pending)},
            )
            _event_on_commit(
                signals.overage_approval_needed,
                Subscription,
                subscription_id=subscription.pk,
                ticket_id=ticket.pk,
                month=month,
            )


def _plain_text(value: str, *, what: str) -> str:
    """``value`` stripped, refused with a NUL character, which PostgreSQL cannot store (the
    forms refuse it themselves; the workspace's timer and no-charge buttons post without a
    form)."""
    ProhibitNullCharactersValidator(message=f"The {what} cannot contain NUL characters.")(value)
    return value.strip()


@transaction.atomic
def time_entry_log(
    *,
    ticket: Ticket,
    operator: Any,
    hours: object,
    work_date: dt.date | None = None,
    note: str = "",
    now: dt.datetime | None = None,
    pending_ok: bool = False,
    no_charge: bool = False,
    no_charge_reason: str = "",
) -> TimeEntry:
    """Add a new entry to the ticket's subscription. Never overwrites an earlier entry.
    ``no_charge`` (with a reason, by a user allowed to) logs it at no charge: never billed,
    so neither the bucket nor the overage policy limits it. Under the ``approve`` policy,
    time beyond the included and approved hours is refused unless ``pending_ok`` (the
    operator logs it as pending the client's approval)."""
    hours_value = hours_clean(hours)
    reason = no_charge_check(actor=operator, no_charge=no_charge, reason=no_charge_reason)
    today = local_today(now)
    work_date = work_date or today
    period_lock_open(month=period_of(work_date))
    ticket = Ticket.objects.get(pk=ticket.pk)  # current tracking and subscription
    subscription = _subscription_for_time(ticket=ticket, for_update=True)
    _check_work_date(subscription=subscription, work_date=work_date, today=today)
    is_bucket = subscription.package.billing_mode == BillingMode.ONE_TIME
    if is_bucket and not no_charge:
        _bucket_check(subscription=subscription, extra_hours=hours_value)
    blocks = _blocks_lock(subscription=subscription, month=period_of(work_date))
    outcome: list[str] = []
    if not no_charge:
        outcome = overage_check(
            subscription=subscription,
            month=period_of(work_date),
            new_hours=hours_value,
            pending_ok=pending_ok,
            blocks=blocks,
        )
    entry = TimeEntry.objects.create(
        ticket=ticket,
        subscription=subscription,
        operator=operator,
        hours=hours_value,
        work_date=work_date,
        note=_plain_text(note, what="note"),
        no_charge=no_charge,
        no_charge_reason=reason,
    )
    detail = {"entry": entry.pk, "hours": str(hours_value), "work_date": str(work_date)}
    if no_charge:
        detail["no_charge_reason"] = reason
    audit_record(
        action=AuditAction.TIME_LOGGED,
        actor=operator,
        ticket=ticket,
        subscription_id=subscription.pk,
        detail=detail,
    )
    if is_bucket:
        _bucket_update_status(subscription=subscription, actor=operator)
    _overage_record(
        outcome=outcome,
        subscription=subscription,
        ticket=ticket,
        month=period_of(work_date),
        actor=operator,
    )
    _time_entries_changed(subscription_id=subscription.pk, months=[period_of(work_date)])
    return entry


@transaction.atomic
def time_entry_change(
    *,
    entry: TimeEntry,
    actor: Any,
    hours: object = None,
    work_date: dt.date | None = None,
    note: str | None = None,
    now: dt.datetime | None = None,
    pending_ok: bool = False,
) -> TimeEntry:
    """Change hours, date or note of an entry of an open month (and the new month is open).
    More hours in a month pass the overage policy as a new entry does (``pending_ok``)."""
    entry = TimeEntry.objects.select_related("subscription__package").get(pk=entry.pk)
    new_hours = entry.hours if hours is None else hours_clean(hours)
    new_date = work_date or entry.work_date
    for month in sorted({period_of(entry.work_date), period_of(new_date)}):
        period_lock_open(month=month)
    subscription = (
        Subscription.objects.select_for_update(of=("self",))
        .select_related("package")
        .get(pk=entry.subscription_id)
    )
    if new_date != entry.work_date:
        _check_work_date(subscription=subscription, work_date=new_date, today=local_today(now))
    is_bucket = subscription.package.billing_mode == BillingMode.ONE_TIME
    if new_hours > entry.hours:
        if subscription.status not in (SubscriptionStatus.ACTIVE, SubscriptionStatus.DEPLETED):
            raise ValidationError(
                f"The subscription is {subscription.get_status_display().lower()}: its time "
                "can only be reduced.",
                code="inactive_subscription",
            )
        if is_bucket and not entry.no_charge:
            _bucket_check(subscription=subscription, extra_hours=new_hours - entry.hours)
    outcome: list[str] = []
    same_month = period_of(new_date) == period_of(entry.work_date)
    if not entry.no_charge and (new_hours > entry.hours or not same_month):
        outcome = overage_check(
            subscription=subscription,
            month=period_of(new_date),
            new_hours=new_hours,
            old_hours=entry.hours if same_month else Decimal("0"),
            pending_ok=pending_ok,
            blocks=_blocks_lock(subscription=subscription, month=period_of(new_date)),
        )
    changes = {}
    if new_hours != entry.hours:
        changes["hours"] = [str(entry.hours), str(new_hours)]
    if new_date != entry.work_date:
        changes["work_date"] = [str(entry.work_date), str(new_date)]
    if note is not None:
        note = _plain_text(note, what="note")
    if note is not None and note != entry.note:
        changes["note"] = [entry.note, note]
    if not changes:
        return entry
    months = [period_of(entry.work_date), period_of(new_date)]
    entry.hours, entry.work_date = new_hours, new_date
    if note is not None:
        entry.note = note
    entry.save(update_fields=["hours", "work_date", "note", "updated_at"])
    audit_record(
        action=AuditAction.TIME_CHANGED,
        actor=actor,
        ticket=entry.ticket,
        subscription_id=subscription.pk,
        detail={"entry": entry.pk, **changes},
    )
    if is_bucket:
        _bucket_update_status(subscription=subscription, actor=actor)
    _overage_record(
        outcome=outcome,
        subscription=subscription,
        ticket=entry.ticket,
        month=period_of(new_date),
        actor=actor,
    )
    if "hours" in changes or "work_date" in changes:  # a new note changes no figure
        _time_entries_changed(subscription_id=subscription.pk, months=months)
    return entry


def no_charge_check(*, actor: Any, no_charge: bool, reason: str) -> str:
    """The reason, cleaned, of time at no charge; refused without the permission
    (``PermissionDenied``) or without a reason. Charged time has no reason."""
    if not no_charge:
        return ""
    if not actor.has_perm(NO_CHARGE_PERMISSION):
        raise PermissionDenied(NO_CHARGE_FORBIDDEN)
    reason = _plain_text(reason or "", what="reason")
    if not reason:
        raise ValidationError(
            "Give the reason for no charge (goodwill, our own mistake, ...).",
            code="no_charge_reason",
        )
    if len(reason) > NO_CHARGE_REASON_MAX_LENGTH:
        raise ValidationError(
            f"The reason can be at most {NO_CHARGE_REASON_MAX_LENGTH} characters.",
            code="no_charge_reason",
        )
    return reason


@transaction.atomic
def time_entry_no_charge_set(
    *, entry: TimeEntry, actor: Any, no_charge: bool, reason: str = ""
) -> TimeEntry:
    """Mark an entry of an open month as no charge (with a reason) or charge it again; the
    time stays on the ticket and in the work log, is billed at 0 and not deducted from the
    included hours (a bucket: not drawn). Needs ``tickets.mark_no_charge`` both ways;
    audited. Charging a bucket's entry again is refused when the bucket cannot take it."""
    if not actor.has_perm(NO_CHARGE_PERMISSION):
        raise PermissionDenied(NO_CHARGE_FORBIDDEN)
    reason = no_charge_check(actor=actor, no_charge=no_charge, reason=reason)
    entry = TimeEntry.objects.select_related("ticket").get(pk=entry.pk)
    month = period_of(entry.work_date)
    period_lock_open(month=month)
    if entry.no_charge == no_charge and entry.no_charge_reason == reason:
        return entry
    subscription = (
        Subscription.objects.select_for_update(of=("self",))
        .select_related("package")
        .get(pk=entry.subscription_id)
    )
    is_bucket = subscription.package.billing_mode == BillingMode.ONE_TIME
    if is_bucket and entry.no_charge and not no_charge:
        _bucket_check(subscription=subscription, extra_hours=entry.hours)
    outcome: list[str] = []
    if entry.no_charge and not no_charge:
        # Charged again, the time counts towards the month's overage like a new entry: the
        # same check, with the blocks locked, and the same audit when it reaches the cap.
        outcome = overage_check(
            subscription=subscription,
            month=month,
            new_hours=entry.hours,
            blocks=_blocks_lock(subscription=subscription, month=month),
        )
    detail: dict[str, Any] = {"entry": entry.pk, "hours": str(entry.hours)}
    if no_charge:
        detail["no_charge_reason"] = reason
        if entry.no_charge:
            detail["no_charge_reason"] = [entry.no_charge_reason, reason]
    else:
        detail["no_charge_reason"] = [entry.no_charge_reason, ""]
    entry.no_charge, entry.no_charge_reason = no_charge, reason
    entry.save(update_fields=["no_charge", "no_charge_reason", "updated_at"])
    audit_record(
        action=AuditAction.TIME_NO_CHARGE if no_charge else AuditAction.TIME_CHARGED,
        actor=actor,
        ticket=entry.ticket,
        subscription_id=subscription.pk,
        detail=detail,
    )
    if is_bucket:
        _bucket_update_status(subscription=subscription, actor=actor)
    _overage_record(
        outcome=outcome, subscription=subscription, ticket=entry.ticket, month=month, actor=actor
    )
    _time_entries_changed(subscription_id=subscription.pk, months=[month])
    return entry


@transaction.atomic
def time_entry_delete(*, entry: TimeEntry, actor: Any) -> None:
    entry = TimeEntry.objects.select_related("ticket").get(pk=entry.pk)
    period_lock_open(month=period_of(entry.work_date))
    subscription = (
        Subscription.objects.select_for_update(of=("self",))
        .select_related("package")
        .get(pk=entry.subscription_id)
    )
    audit_record(
        action=AuditAction.TIME_DELETED,
        actor=actor,
        ticket=entry.ticket,
        subscription_id=subscription.pk,
        detail={"entry": entry.pk, "hours": str(entry.hours), "work_date": str(entry.work_date)},
    )
    entry.delete()
    if subscription.package.billing_mode == BillingMode.ONE_TIME:
        _bucket_update_status(subscription=subscription, actor=actor)
    _time_entries_changed(subscription_id=subscription.pk, months=[period_of(entry.work_date)])


@transaction.atomic
def ticket_subscription_set(
    *, ticket: Ticket, subscription: Subscription | None, actor: Any
) -> Ticket:
    """Link the subscription new time on the ticket is booked to (existing entries keep
    theirs). Only an active subscription of the ticket's own client can be chosen."""
    if subscription is not None:
        _subscription_takes_time_check(
            subscription=subscription,
            client_id=ticket.client_id,
            foreign="That subscription belongs to another client.",
            inactive="That subscription is {status}; choose an active one.",
        )
    ticket.subscription = subscription
    ticket.save(update_fields=["subscription", "updated_at"])
    audit_record(
        action=AuditAction.SUBSCRIPTION_LINKED,
        actor=actor,
        ticket=ticket,
        subscription_id=subscription.pk if subscription else None,
        detail={"subscription": subscription.pk if subscription else None},
    )
    return ticket


@transaction.atomic
def ticket_service_add(
    *,
    ticket: Ticket,
    package: SupportPackage,
    actor: Any,
    start_date: dt.date | None = None,
    now: dt.datetime | None = None,
) -> Subscription:
    """Sell the ticket's client a support package from the ticket's page and book the ticket's
    new time to it: both or neither."""
    subscription = subscription_create(
        client=ticket.client,
        package=package,
        start_date=start_date,
        actor=actor,
        ticket_id=ticket.pk,
        now=now,
    )
    ticket_subscription_set(ticket=ticket, subscription=subscription, actor=actor)
    return subscription


@transaction.atomic
def ticket_tracking_set(*, ticket: Ticket, track_time: bool, actor: Any) -> Ticket:
    if ticket.track_time == track_time:
        return ticket
    ticket.track_time = track_time
    ticket.save(update_fields=["track_time", "updated_at"])
    audit_record(
        action=AuditAction.TRACKING_SWITCHED,
        actor=actor,
        ticket=ticket,
        detail={"track_time": track_time},
    )
    return ticket


# --- The conversation ----------------------------------------------------------------------

# The status a ticket takes after a message, unless the writer chooses another.
STATUS_AFTER_MESSAGE: dict[str, str] = {
    MessageKind.CLIENT_REPLY: TicketStatus.CUSTOMER_REPLY,
    MessageKind.OPERATOR_REPLY: TicketStatus.ANSWERED,
}


def _message_body_check(body: str) -> None:
    if len(body) > MESSAGE_BODY_MAX_LENGTH:
        params = {"limit_value": MESSAGE_BODY_MAX_LENGTH, "show_value": len(body)}
        raise ValidationError({"body": MESSAGE_BODY_TOO_LONG % params})


@transaction.atomic
def ticket_create(
    *,
    client: Client,
    subject: str,
    body: str | None,
    author: Any,
    kind: str = MessageKind.CLIENT_REPLY,
    subscription: Subscription | None = None,
    priority: str = TicketPriority.NORMAL,
    assignee: Any = None,
    attachments: Sequence[Upload] = (),
) -> Ticket:
    """Open a ticket with its first message (``body``; None opens it without one, as an
    integration may). A subscription, when given, must be an active one of the same client
    (time will be booked to it). The ticket goes to ``assignee`` when given, else to the
    operator whose turn it is under ``settings.TICKET_AUTO_ASSIGN`` (none: unassigned).
    ``attachments`` are kept with the first message; one refused file saves nothing."""
    subject = subject.strip()
    if not subject:
        raise ValidationError({"subject": "Enter a subject."})
    if body is not None:
        body = body.strip()
        if not body:
            raise ValidationError({"body": "Describe what you need."})
        _message_body_check(body)
    elif attachments:
        raise ValidationError({"body": "Describe what the files are about."})
    uploads_check(uploads=attachments)
    if subscription is not None:
        try:
            _subscription_takes_time_check(
                subscription=subscription, client_id=client.pk, foreign="", inactive=""
            )
        except ValidationError as exc:
            # The form's field: one message for either reason.
            raise ValidationError(
                {"subscription": "Choose one of the client's active subscriptions."}
            ) from exc
    ticket = Ticket.objects.create(
        client=client, subject=subject, subscription=subscription, priority=priority
    )
    message = None
    if body is not None:
        message = TicketMessage.objects.create(ticket=ticket, author=author, kind=kind, body=body)
        uploads_add(message=message, uploads=attachments)
    if assignee is not None:
        ticket_assign(ticket=ticket, assignee=assignee, actor=author)
    else:
        turn = _round_robin_next()
        if turn is not None:
            ticket_assign(ticket=ticket, assignee=turn, actor=None, auto=True)
    # After the assignment, so the notification goes to the assignee when there is one.
    _event_on_commit(
        signals.ticket_opened,
        Ticket,
        ticket_id=ticket.pk,
        message_id=message.pk if message else None,
        actor_id=_actor_id(author),
    )
    return ticket


# Serialises round-robin turns (pg_advisory_xact_lock), so two tickets opened at once go to
# two operators.
_ROUND_ROBIN_LOCK = 0x5B7A5516


def _round_robin_next() -> Any:
    """The active operator after the one who got the last automatic assignment (by id, wrapping
    round), or None when auto-assignment is off or there is no active operator. Manual
    assignments do not move the turn."""
    if settings.TICKET_AUTO_ASSIGN != "round_robin":
        return None
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_ROUND_ROBIN_LOCK])
    operators = list(operators_active().order_by("id"))
    if not operators:
        return None
    last = (
        AuditEvent.objects.filter(action=AuditAction.TICKET_ASSIGNED, detail__auto=True)
        .order_by("-id")
        .values_list("detail", flat=True)
        .first()
    )
    last_id = int(last.get("assignee_id") or 0) if last else 0
    return next((user for user in operators if user.pk > last_id), operators[0])


@transaction.atomic
def ticket_assign(*, ticket: Ticket, assignee: Any, actor: Any, auto: bool = False) -> Ticket:
    """Give the ticket to ``assignee`` (None: nobody). Only an active operator can be
    assigned; the change is audited (an unchanged assignee records nothing)."""
    if assignee is not None and not operators_active().filter(pk=assignee.pk).exists():
        name = assignee.get_username()
        reason = "is not active" if not assignee.is_active else "is not an operator"
        raise ValidationError(
            {
                "assignee": ValidationError(
                    f"{name} {reason}: a ticket can only be assigned to an active operator.",
                    code="not_an_operator",
                )
            }
        )
    # The row lock orders two changes at once, so each audit row names the assignee it replaced.
    tickets = Ticket.objects.select_for_update(of=("self",)).select_related("assignee")
    old = tickets.get(pk=ticket.pk).assignee
    if (old.pk if old else None) == (assignee.pk if assignee else None):
        ticket.assignee = assignee
        return ticket
    ticket.assignee = assignee
    ticket.save(update_fields=["assignee", "updated_at"])
    detail: dict[str, Any] = {
        "assignee": [
            old.get_username() if old else "",
            assignee.get_username() if assignee else "",
        ],
        "assignee_id": assignee.pk if assignee else None,
    }
    if auto:
        detail["auto"] = True
    audit_record(action=AuditAction.TICKET_ASSIGNED, actor=actor, ticket=ticket, detail=detail)
    return ticket


@transaction.atomic
def ticket_message_add(
    *,
    ticket: Ticket,
    author: Any,
    body: str,
    kind: str,
    status_after: str | None = None,
    attachments: Sequence[Upload] = (),
) -> TicketMessage:
    """Reply or add an internal note, with ``attachments`` kept with it (one refused file
    saves nothing). A client reply reopens a closed ticket."""
    body = body.strip()
    if not body:
        raise ValidationError({"body": "The message is empty."})
    _message_body_check(body)
    if kind not in MessageKind.values:
        raise ValidationError({"kind": f"Unknown message kind {kind!r}."})
    if status_after is not None and status_after not in TicketStatus.values:
        raise ValidationError({"status": f"Unknown status {status_after!r}."})
    uploads_check(uploads=attachments)
    message = TicketMessage.objects.create(ticket=ticket, author=author, kind=kind, body=body)
    uploads_add(message=message, uploads=attachments)
    _event_on_commit(
        signals.ticket_message_added,
        TicketMessage,
        ticket_id=ticket.pk,
        message_id=message.pk,
        kind=kind,
        actor_id=_actor_id(author),
    )
    new_status = status_after or STATUS_AFTER_MESSAGE.get(kind)
    if new_status:
        ticket_status_set(ticket=ticket, status=new_status, actor=author)
    else:
        ticket.save(update_fields=["updated_at"])
    return message


@transaction.atomic
def ticket_status_set(*, ticket: Ticket, status: str, actor: Any) -> Ticket:
    if status not in TicketStatus.values:
        raise ValidationError({"status": f"Unknown status {status!r}."})
    old_status = ticket.status
    if old_status == status:
        return ticket
    ticket.status = status
    ticket.save(update_fields=["status", "updated_at"])
    event = None
    if status == TicketStatus.CLOSED:
        event = audit_record(action=AuditAction.TICKET_CLOSED, actor=actor, ticket=ticket)
    elif old_status == TicketStatus.CLOSED:
        event = audit_record(
            action=AuditAction.TICKET_REOPENED,
            actor=actor,
            ticket=ticket,
            detail={"status": status},
        )
    _event_on_commit(
        signals.ticket_status_changed,
        Ticket,
        ticket_id=ticket.pk,
        old_status=old_status,
        new_status=status,
        actor_id=_actor_id(actor),
        audit_event_id=event.pk if event else None,
    )
    return ticket


# --- Whole actions of the interfaces --------------------------------------------------------


class _Unchanged:
    """The value of an argument left out of ticket_update (None unlinks the subscription)."""


UNCHANGED = _Unchanged()


@transaction.atomic
def ticket_open(
    *,
    client: Client,
    subject: str,
    body: str | None,
    author: Any,
    subscription: Subscription | None = None,
    priority: str = TicketPriority.NORMAL,
    track_time: bool = True,
    status: str = TicketStatus.OPEN,
    assignee: Any = None,
) -> Ticket:
    """Open a ticket with its first message and, in the same transaction, its assignee, time
    tracking and status when they are not the defaults (each change audited as its own
    service does)."""
    ticket = ticket_create(
        client=client,
        subject=subject,
        body=body,
        author=author,
        subscription=subscription,
        priority=priority,
        assignee=assignee,
    )
    if not track_time:
        ticket_tracking_set(ticket=ticket, track_time=False, actor=author)
    if status != TicketStatus.OPEN:
        ticket_status_set(ticket=ticket, status=status, actor=author)
    return ticket


@transaction.atomic
def ticket_update(
    *,
    ticket: Ticket,
    actor: Any,
    subscription: Subscription | None | _Unchanged = UNCHANGED,
    track_time: bool | None = None,
    status: str | None = None,
    assignee: Any = UNCHANGED,
) -> Ticket:
    """Change the subscription, the time tracking, the status and the assignee of a ticket,
    those given, in this order and all or nothing."""
    if not isinstance(subscription, _Unchanged):
        ticket_subscription_set(ticket=ticket, subscription=subscription, actor=actor)
    if track_time is not None:
        ticket_tracking_set(ticket=ticket, track_time=track_time, actor=actor)
    if status is not None:
        ticket_status_set(ticket=ticket, status=status, actor=actor)
    if not isinstance(assignee, _Unchanged):
        ticket_assign(ticket=ticket, assignee=assignee, actor=actor)
    return ticket


@transaction.atomic
def ticket_close(
    *,
    ticket: Ticket,
    actor: Any,
    hours: object = "",
    work_date: dt.date | None = None,
    note: str = "",
    now: dt.datetime | None = None,
    pending_ok: bool = False,
) -> TimeEntry | None:
    """Close the ticket, first logging ``hours`` of the operator's time on it when given (the
    workspace's "close the ticket and save"). Both or neither: a refused entry leaves the ticket
    open. Returns the entry logged, if any."""
    entry = None
    if hours is not None and str(hours).strip():
        entry = time_entry_log(
            ticket=ticket,
            operator=actor,
            hours=hours,
            work_date=work_date,
            note=note,
            now=now,
            pending_ok=pending_ok,
        )
    ticket_status_set(ticket=ticket, status=TicketStatus.CLOSED, actor=actor)
    return entry


@transaction.atomic
def ticket_reply_with_time(
    *,
    ticket: Ticket,
    author: Any,
    body: str,
    kind: str,
    status_after: str | None = None,
    hours: object = None,
    work_date: dt.date | None = None,
    now: dt.datetime | None = None,
    attachments: Sequence[Upload] = (),
    pending_ok: bool = False,
) -> tuple[TicketMessage, TimeEntry | None]:
    """The workspace's reply with the author's time on it: the time (when ``hours`` is not
    empty) is logged with ``time_entry_log``'s rules and the message added with
    ``ticket_message_add``'s, both or neither. The entry has no note: the reply may be an
    internal note, and an entry's note can be shown to the client in the work log."""
    uploads_check(uploads=attachments)
    entry = None
    if hours is not None and str(hours).strip():
        entry = time_entry_log(
            ticket=ticket,
            operator=author,
            hours=hours,
            work_date=work_date,
            now=now,
            pending_ok=pending_ok,
        )
    message = ticket_message_add(
        ticket=ticket,
        author=author,
        body=body,
        kind=kind,
        status_after=status_after,
        attachments=attachments,
    )
    return message, entry


# --- Live timers ---------------------------------------------------------------------------


@transaction.atomic
def timer_start(*, ticket: Ticket, operator: Any, now: dt.datetime | None = None) -> TimeTimer:
    """Start the operator's stopwatch on the ticket. The start is stored on the server, so the
    timer survives a reload, another tab or another browser. Refused where time cannot be
    logged (not tracked, no active subscription), so Stop does not fail an hour later."""
    ticket = Ticket.objects.get(pk=ticket.pk)
    _subscription_for_time(ticket=ticket, for_update=False)
    timer, created = TimeTimer.objects.get_or_create(
        ticket=ticket, operator=operator, defaults={"started_at": now or timezone.now()}
    )
    if not created:
        raise ValidationError("Your timer on this ticket is already running.", code="timer_running")
    audit_record(
        action=AuditAction.TIMER_STARTED,
        actor=operator,
        ticket=ticket,
        subscription_id=ticket.subscription_id,
        detail={"started_at": timer.started_at.isoformat()},
    )
    return timer


def _timer_running(*, ticket: Ticket, operator: Any) -> TimeTimer:
    timer = (
        TimeTimer.objects.select_for_update()
        .filter(ticket_id=ticket.pk, operator_id=operator.pk)
        .first()
    )
    if timer is None:
        raise ValidationError("You have no timer running on this ticket.", code="no_timer")
    return timer


def timer_elapsed_minutes(*, timer: TimeTimer, now: dt.datetime | None = None) -> Decimal:
    seconds = max((now or timezone.now()) - timer.started_at, dt.timedelta(0)).total_seconds()
    return Decimal(int(seconds)) / Decimal(60)


@transaction.atomic
def timer_stop(
    *, ticket: Ticket, operator: Any, note: str = "", now: dt.datetime | None = None
) -> TimeEntry:
    """Stop the timer and log the elapsed time rounded up to the next quarter hour (at least
    0.25 h) as a new entry, through the same rules as any entry. If the entry is refused,
    the timer keeps running (the transaction rolls back)."""
    timer = _timer_running(ticket=ticket, operator=operator)
    minutes = timer_elapsed_minutes(timer=timer, now=now)
    hours = hours_round_up_to_step(minutes)
    entry = time_entry_log(ticket=ticket, operator=operator, hours=hours, note=note, now=now)
    audit_record(
        action=AuditAction.TIMER_STOPPED,
        actor=operator,
        ticket=entry.ticket,
        subscription_id=entry.subscription_id,
        detail={
            "started_at": timer.started_at.isoformat(),
            "minutes": str(minutes.quantize(Decimal("0.1"))),
            "hours": str(entry.hours),
            "entry": entry.pk,
        },
    )
    timer.delete()
    return entry


@transaction.atomic
def timer_cancel(*, ticket: Ticket, operator: Any, now: dt.datetime | None = None) -> None:
    """Discard the running timer: nothing is logged."""
    timer = _timer_running(ticket=ticket, operator=operator)
    audit_record(
        action=AuditAction.TIMER_CANCELLED,
        actor=operator,
        ticket=ticket,
        subscription_id=ticket.subscription_id,
        detail={
            "started_at": timer.started_at.isoformat(),
            "minutes": str(timer_elapsed_minutes(timer=timer, now=now).quantize(Decimal("0.1"))),
        },
    )
    timer.delete()
