"""The helpdesk (tickets and their messages), time entries, live timers and the audit trail.
Time entries obey the month lock (packages.models.BillingPeriod)."""

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models.functions import Cast
from django.db.models.lookups import Exact

from customers.models import Client
from packages.models import Subscription

HOURS_STEP = Decimal("0.25")  # time is logged in quarter hours
HOURS_MAX_PER_ENTRY = Decimal("24")


class TicketStatus(models.TextChoices):
    OPEN = "open", "Open"
    ANSWERED = "answered", "Answered"
    CUSTOMER_REPLY = "customer_reply", "Customer reply"
    ON_HOLD = "on_hold", "On hold"
    CLOSED = "closed", "Closed"


class TicketPriority(models.TextChoices):
    LOW = "low", "Low"
    NORMAL = "normal", "Normal"
    HIGH = "high", "High"
    URGENT = "urgent", "Urgent"


class Ticket(models.Model):
    # Indexed by (client, status), which it leads.
    client = models.ForeignKey(
        Client, on_delete=models.PROTECT, related_name="tickets", db_index=False
    )
    # Where new time is booked; each entry keeps its own copy (TimeEntry.subscription).
    subscription = models.ForeignKey(
        Subscription, on_delete=models.PROTECT, null=True, blank=True, related_name="tickets"
    )
    subject = models.CharField(max_length=200)
    status = models.CharField(
        max_length=16, choices=TicketStatus.choices, default=TicketStatus.OPEN
    )
    priority = models.CharField(
        max_length=8, choices=TicketPriority.choices, default=TicketPriority.NORMAL
    )
    track_time = models.BooleanField(default=True)
    # The operator who answers the ticket (ticket_assign checks they are an active operator).
    # SET_NULL: deleting a user leaves their tickets unassigned rather than blocking the delete
    # (users are normally deactivated, and one with logged time cannot be deleted anyway).
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="assigned_tickets",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-updated_at", "-id"]
        indexes = [
            models.Index(fields=["client", "status"]),
            models.Index(fields=["status", "-updated_at"]),
            # The ticket list in its own order: its first page read from the index, not
            # sorted from all tickets (docs/performance.md, "Admin lists with many clients").
            models.Index(fields=["-updated_at", "-id"], name="ticket_list_order"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.subject}"


class MessageKind(models.TextChoices):
    CLIENT_REPLY = "client_reply", "Client reply"
    OPERATOR_REPLY = "operator_reply", "Operator reply"
    INTERNAL_NOTE = "internal_note", "Internal note"


# The longest message (a client's question or reply, an operator's reply, a note), in
# characters: one limit for the portal, the admin and the API, whose forms and serializers use
# it; the services refuse anything longer whatever the path.
MESSAGE_BODY_MAX_LENGTH = 20_000
MESSAGE_BODY_TOO_LONG = (
    "A message has at most %(limit_value)s characters; this one has %(show_value)s."
)


class TicketMessage(models.Model):
    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="messages")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    kind = models.CharField(max_length=16, choices=MessageKind.choices)
    body = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["ticket", "created_at"])]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} on #{self.ticket_id}"


class TimeEntry(models.Model):
    # The links are indexed by the composite indexes below, which they lead (no index of
    # their own: each would cost every save one more insert, docs/performance.md).
    ticket = models.ForeignKey(
        Ticket, on_delete=models.PROTECT, related_name="time_entries", db_index=False
    )
    # The subscription the ticket was linked to when the time was logged: it pays for it.
    subscription = models.ForeignKey(
        Subscription, on_delete=models.PROTECT, related_name="time_entries", db_index=False
    )
    operator = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="time_entries",
        db_index=False,
    )
    hours = models.DecimalField(max_digits=6, decimal_places=2)
    work_date = models.DateField()
    note = models.CharField(max_length=500, blank=True)
    # No charge (goodwill, our own mistake): still worked time, billed at 0 and not deducted
    # from the included hours; marked by a user with tickets.mark_no_charge, with a reason.
    no_charge = models.BooleanField(default=False)
    no_charge_reason = models.CharField(max_length=200, blank=True)
    # No billed flag: an entry is billed once its month is closed (``tickets.selectors.
    # time_entries_with_billed``), so closing a month writes no row per entry.
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["work_date", "id"]
        verbose_name_plural = "time entries"
        constraints = [
            models.CheckConstraint(condition=models.Q(hours__gt=0), name="entry_hours_positive"),
            models.CheckConstraint(
                condition=models.Q(hours__lte=HOURS_MAX_PER_ENTRY), name="entry_hours_max_24"
            ),
            # hours x 4 is a whole number: the quarter-hour step.
            models.CheckConstraint(
                condition=Exact(
                    models.F("hours") * 4, Cast(models.F("hours") * 4, models.IntegerField())
                ),
                name="entry_hours_quarter_step",
            ),
            models.CheckConstraint(
                condition=models.Q(no_charge=False) | ~models.Q(no_charge_reason=""),
                name="entry_no_charge_has_reason",
            ),
        ]
        permissions = [("mark_no_charge", "Can mark time entries as no charge")]
        indexes = [
            # The rollup: sum per subscription over one month.
            models.Index(
                fields=["subscription", "work_date"], include=["hours"], name="entry_sub_date_hours"
            ),
            models.Index(fields=["ticket", "work_date"]),
            models.Index(fields=["operator", "work_date"]),
            models.Index(fields=["work_date"]),
        ]

    def __str__(self) -> str:
        return f"{self.hours} h on #{self.ticket_id} ({self.work_date})"


class TimeTimer(models.Model):
    """A running stopwatch of an operator on a ticket, anchored on the server."""

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="timers")
    operator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="time_timers"
    )
    started_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["ticket", "operator"], name="one_timer_per_ticket"),
        ]

    def __str__(self) -> str:
        return f"Timer of {self.operator} on #{self.ticket_id}"


class AuditAction(models.TextChoices):
    TIME_LOGGED = "time_logged", "Time logged"
    TIME_CHANGED = "time_changed", "Time changed"
    TIME_DELETED = "time_deleted", "Time deleted"
    TIME_NO_CHARGE = "time_no_charge", "Time marked no charge"
    TIME_CHARGED = "time_charged", "Time charged again"
    TIMER_STARTED = "timer_started", "Timer started"
    TIMER_STOPPED = "timer_stopped", "Timer stopped"
    TIMER_CANCELLED = "timer_cancelled", "Timer cancelled"
    SERVICE_ADDED = "service_added", "Support service added"
    SUBSCRIPTION_LINKED = "subscription_linked", "Subscription linked"
    SUBSCRIPTION_STATUS = "subscription_status", "Subscription status changed"
    TRACKING_SWITCHED = "tracking_switched", "Time tracking switched"
    TICKET_CLOSED = "ticket_closed", "Ticket closed"
    TICKET_REOPENED = "ticket_reopened", "Ticket reopened"
    TICKET_ASSIGNED = "ticket_assigned", "Ticket assigned"
    PERIOD_BILLED = "period_billed", "Period billed"
    OVERAGE_POLICY = "overage_policy", "Overage policy changed"
    OVERAGE_CAP = "overage_cap", "Client's overage cap changed"
    OVERAGE_CAP_REACHED = "overage_cap_reached", "Overage cap reached"
    OVERAGE_PENDING = "overage_pending", "Time logged pending approval"
    OVERAGE_REQUESTED = "overage_requested", "Approval of extra hours asked"
    OVERAGE_APPROVED = "overage_approved", "Extra hours approved"
    BLOCK_EXPIRED = "block_expired", "Top-up block expired unused"


class AuditEvent(models.Model):
    """Append-only timeline of what happened to a ticket's time and a subscription."""

    # Ticket and subscription lead the composite indexes below, which serve their lookups.
    ticket = models.ForeignKey(
        Ticket,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="audit_events",
        db_index=False,
    )
    subscription = models.ForeignKey(
        Subscription,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="audit_events",
        db_index=False,
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    action = models.CharField(max_length=24, choices=AuditAction.choices)
    # What changed, e.g. {"hours": ["1.00", "1.25"]}; strings only, never floats.
    detail = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [
            models.Index(fields=["ticket", "created_at"]),
            models.Index(fields=["subscription", "created_at"]),
            # The rollup's rows, one per batch of subscriptions (neither ticket nor subscription):
            # the trails read them by action.
            models.Index(
                fields=["action", "created_at"],
                condition=models.Q(ticket__isnull=True, subscription__isnull=True),
                name="audit_batch_action",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_action_display()} at {self.created_at:%Y-%m-%d %H:%M}"


class NotificationEvent(models.TextChoices):
    TICKET_OPENED = "ticket_opened", "Ticket opened"
    RECEIPT = "receipt", "Receipt"  # to the client's users who opened it
    OPERATOR_REPLY = "operator_reply", "Operator reply"
    CLIENT_REPLY = "client_reply", "Client reply"
    TICKET_CLOSED = "ticket_closed", "Ticket closed"
    TICKET_REOPENED = "ticket_reopened", "Ticket reopened"
    # To the client's users: time beyond the included hours needs their approval.
    OVERAGE_REQUEST = "overage_request", "Approval of extra hours"


class NotificationStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SENDING = "sending", "Sending"  # claimed by a worker; lapses after a timeout
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"  # given up
    SKIPPED = "skipped", "Skipped"  # the recipient turned ticket e-mails off meanwhile


class TicketNotification(models.Model):
    """One e-mail about one event of a ticket to one recipient, and its delivery: recorded
    when the event commits, claimed before it is sent, marked sent right after
    (docs/decisions.md, "Ticket e-mail notifications")."""

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="notifications")
    # The reply the e-mail carries, if any.
    ticket_message = models.ForeignKey(
        TicketMessage, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    event = models.CharField(max_length=16, choices=NotificationEvent.choices)
    # What happened, once: "opened:<ticket>", "message:<message>" or "status:<audit event>".
    event_key = models.CharField(max_length=40)
    # True: to the helpdesk (links to the admin); False: to the client's users (the portal).
    to_operator = models.BooleanField(default=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    address = models.CharField(max_length=254)
    # The e-mail's Message-ID header, the same for every attempt (set at the first one).
    message_id = models.CharField(max_length=200, blank=True)
    status = models.CharField(
        max_length=8, choices=NotificationStatus.choices, default=NotificationStatus.PENDING
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    last_error = models.CharField(max_length=500, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            # The same event never mails one address twice (two users sharing it included).
            models.UniqueConstraint(
                fields=["event_key", "address"], name="ticket_notification_once"
            ),
        ]
        indexes = [
            models.Index(fields=["ticket", "created_at"]),
            models.Index(
                fields=["next_attempt_at"],
                condition=models.Q(status__in=["pending", "sending"]),
                name="ticket_notification_due",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_event_display()} on #{self.ticket_id} to {self.address}"


class InboundStatus(models.TextChoices):
    PROCESSED = "processed", "Processed"  # it opened a ticket or became a reply
    UNMATCHED = "unmatched", "Unmatched"  # waits for an operator: unknown sender, error, ...
    REFUSED = "refused", "Refused"  # over MAIL_INTAKE_MAX_BYTES: only its headers are kept
    DISCARDED = "discarded", "Discarded"  # an operator set it aside
    AUTO = "auto", "Automatic"  # an auto-reply, a bounce, list mail: never answered


# What still waits for an operator (the "Unmatched mail" list).
INBOUND_TO_REVIEW = (InboundStatus.UNMATCHED, InboundStatus.AUTO, InboundStatus.REFUSED)


class InboundMail(models.Model):
    """One e-mail read from the helpdesk's mailbox, kept as it came, and what it became
    (docs/email.md). The unique Message-ID is what makes a second poll, a crash between the
    commit and the move, or a second copy of the mail create nothing more."""

    # Normalised (no <>, no spaces); "sha256:<hash of the raw bytes>" when the mail has none.
    message_id = models.CharField(max_length=255, unique=True)
    # user@host:port/folder, and the IMAP position the mail had there.
    mailbox = models.CharField(max_length=300)
    uidvalidity = models.BigIntegerField(null=True, blank=True)
    uid = models.BigIntegerField(null=True, blank=True)
    sender = models.CharField(max_length=320, blank=True)
    subject = models.CharField(max_length=500, blank=True)
    size = models.PositiveIntegerField(default=0, help_text="Bytes, as the server counted them.")
    # The mail as received (only its headers when refused), to reprocess or inspect it.
    raw = models.BinaryField()
    raw_sha256 = models.CharField(max_length=64)
    received_at = models.DateTimeField()
    status = models.CharField(max_length=12, choices=InboundStatus.choices)
    reason = models.CharField(max_length=500, blank=True)
    ticket = models.ForeignKey(
        Ticket, on_delete=models.SET_NULL, null=True, blank=True, related_name="inbound_mails"
    )
    ticket_message = models.ForeignKey(
        TicketMessage, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # The operator who assigned or discarded it.
    handled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["-received_at", "-id"]
        verbose_name = "inbound e-mail"
        constraints = [
            models.UniqueConstraint(
                fields=["mailbox", "uidvalidity", "uid"], name="inbound_mail_one_per_uid"
            ),
        ]
        indexes = [models.Index(fields=["status", "-received_at"])]

    def __str__(self) -> str:
        return f"{self.sender or 'unknown sender'}: {self.subject or '(no subject)'}"


class UnmatchedMail(InboundMail):
    """The inbound e-mails that wait for an operator (the admin's "Unmatched mail" list)."""

    class Meta:
        proxy = True
        verbose_name = "unmatched e-mail"
        verbose_name_plural = "unmatched mail"


def _attachment_path(instance: "TicketAttachment", filename: str) -> str:
    # A random name: the sender's file name is never a path (it is kept in ``filename``).
    import secrets

    return f"attachments/{secrets.token_hex(16)}"


class TicketAttachment(models.Model):
    """A file that came with a message (an e-mail's attachment), in the default storage under
    a random name; served only through the download view, which checks who may see the
    message (tickets.attachments)."""

    message = models.ForeignKey(TicketMessage, on_delete=models.CASCADE, related_name="attachments")
    file = models.FileField(upload_to=_attachment_path, max_length=200)
    filename = models.CharField(max_length=255)  # as the sender named it, for display only
    content_type = models.CharField(max_length=100)  # as declared by the sender
    size = models.PositiveIntegerField()  # bytes
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["message", "id"]

    def __str__(self) -> str:
        return self.filename
