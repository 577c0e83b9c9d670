"""Billable items (what finance hands to the billing system), usage alerts with their
per-recipient deliveries, and the audit of money changes."""

from decimal import Decimal
from typing import ClassVar

from django.conf import settings
from django.db import models
from django.utils import timezone
from djmoney.models.fields import MoneyField

from customers.models import Client
from packages.models import (
    BillingIncrement,
    BillingMode,
    BillingRounding,
    InvoiceAction,
    OveragePolicy,
    Subscription,
    SupportPackage,
)
from tickets.models import TimeEntry


class ItemKind(models.TextChoices):
    FEE = "fee", "Monthly fee"
    OVERTIME = "overtime", "Overtime"
    ONE_TIME = "one_time", "One-time package"
    ADJUSTMENT = "adjustment", "Adjustment"


class ItemUnit(models.TextChoices):
    HOURS = "hours", "Hours"
    QUANTITY = "quantity", "Quantity"


class ItemStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    EXPORTED = "exported", "Exported"
    INVOICED = "invoiced", "Invoiced"
    VOID = "void", "Void"


# The fields of a billable item, in order, as the exports' columns and the API's JSON show
# them (docs/api.md); the rollup's COPY writes the same columns.
BILLABLE_ITEM_COLUMNS = (
    "id",
    "client",
    "subscription",
    "period",
    "kind",
    "description",
    "unit",
    "quantity",
    "unit_price",
    "amount",
    "currency",
    "invoice_action",
    "status",
    "created_at",
)

# The columns of the CSV and XLSX exports: the item's, then the client's name, so that a file
# names whom it bills. Last, so that a reader of the older files finds its columns in place.
BILLABLE_ITEM_EXPORT_COLUMNS = (*BILLABLE_ITEM_COLUMNS, "client_name")

# Amounts an item holds are below this (``BillableItem.amount``: 14 digits, 2 of them decimals).
ITEM_AMOUNT_LIMIT = Decimal("1e12")


class BillableItem(models.Model):
    # The links that lead a composite index below get no index of their own: every index is
    # written for each of the month close's items (docs/performance.md).
    client = models.ForeignKey(
        Client, on_delete=models.PROTECT, related_name="billable_items", db_index=False
    )
    # Empty only for an adjustment that concerns the client as a whole.
    subscription = models.ForeignKey(
        Subscription,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="billable_items",
        db_index=False,
    )
    period = models.DateField(help_text="First day of the month the item bills.")
    kind = models.CharField(max_length=16, choices=ItemKind.choices)
    description = models.CharField(max_length=300)
    unit = models.CharField(max_length=16, choices=ItemUnit.choices, default=ItemUnit.QUANTITY)
    quantity = models.DecimalField(max_digits=10, decimal_places=2)
    # Price of one unit (hourly rate for overtime); exact, as in the price list.
    unit_price = MoneyField(
        max_digits=14,
        decimal_places=2,
        currency_field_name="currency",
        currency_choices=settings.CURRENCY_CHOICES,
    )
    # quantity x unit_price rounded half up to the currency's minor unit; may be negative
    # only for an adjustment.
    amount = MoneyField(
        max_digits=14,
        decimal_places=2,
        currency_field_name="currency",
        currency_choices=settings.CURRENCY_CHOICES,
    )
    # Annotations for mypy only: django-money adds the `currency` column (shared by the money
    # fields) and swaps the default manager's class for one it makes at run time, which
    # django-stubs' plugin can neither see nor resolve; reverse relations read _default_manager.
    currency: str
    objects: ClassVar[models.Manager["BillableItem"]]
    _default_manager: ClassVar[models.Manager["BillableItem"]]
    invoice_action = models.CharField(max_length=16, choices=InvoiceAction.choices)
    status = models.CharField(max_length=16, choices=ItemStatus.choices, default=ItemStatus.PENDING)
    # Empty for the close's items, so only the others enter its (partial) index.
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["period", "client_id", "id"]
        constraints = [
            # The last line of defence against billing twice.
            models.UniqueConstraint(
                fields=["subscription", "period", "kind"],
                condition=models.Q(kind__in=["fee", "overtime", "one_time"]),
                name="item_once_per_subscription_period_kind",
            ),
            models.CheckConstraint(condition=models.Q(period__day=1), name="item_period_month"),
            models.CheckConstraint(
                condition=models.Q(kind="adjustment") | models.Q(amount__gte=0),
                name="item_amount_not_negative_unless_adjustment",
            ),
            models.CheckConstraint(
                condition=models.Q(kind="adjustment") | models.Q(subscription__isnull=False),
                name="item_subscription_unless_adjustment",
            ),
        ]
        indexes = [
            models.Index(fields=["period", "status"]),
            models.Index(fields=["client", "period"]),
            models.Index(fields=["subscription", "period"]),
            models.Index(
                fields=["created_by"],
                condition=models.Q(created_by__isnull=False),
                name="item_created_by",
            ),
        ]

    def __str__(self) -> str:
        return self.description


class UsageThreshold(models.IntegerChoices):
    """The share of the included hours used (in %) that alerts, the dashboard's notice and its
    usage bar react to: the one place these numbers live."""

    WARNING = 80, "80%"
    EXHAUSTED = 100, "100%"


class UsageAlert(models.Model):
    """A usage notice for one subscription, threshold and month: recorded once, e-mailed to
    each user of the client once (its deliveries, docs/decisions.md "Usage alert delivery")."""

    subscription = models.ForeignKey(
        Subscription, on_delete=models.CASCADE, related_name="usage_alerts"
    )
    period = models.DateField()
    threshold = models.PositiveSmallIntegerField(choices=UsageThreshold.choices)
    # The figures when the check saw the threshold crossed: the e-mail states these, however
    # much time is logged before it goes out. Empty on alerts recorded before they were kept.
    used_hours = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    included_hours = models.DecimalField(max_digits=6, decimal_places=2, null=True, blank=True)
    # A lower threshold crossed in the same jump as a higher one: the higher alert's e-mail
    # told it, so this one is never sent.
    covered_by = models.ForeignKey(
        "self", on_delete=models.CASCADE, null=True, blank=True, related_name="covers"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    # Done: every recipient was served or given up on (see its deliveries).
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["subscription", "period", "threshold"], name="alert_once_per_month"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.threshold}% of #{self.subscription_id} in {self.period:%Y-%m}"

    @property
    def exhausted(self) -> bool:
        """Every included hour is used (the e-mail says so rather than a percentage)."""
        return self.threshold >= UsageThreshold.EXHAUSTED


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SENDING = "sending", "Sending"  # claimed by a worker; reclaimed if it never reports back
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"  # given up: refused, or too many temporary errors


class MailDelivery(models.Model):
    """The e-mail of one record (an alert, a statement) to one address: the unit that is sent
    once, retried, or given up on, whatever happens to the other recipients
    (supportbilling/mail.py has the retry rules and the loop that sends it)."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    address = models.EmailField()
    status = models.CharField(
        max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    # Pending: not before this (back-off). Sending: the claim lapses then and the delivery may
    # be attempted again (the worker that claimed it died).
    next_attempt_at = models.DateTimeField()
    last_error = models.CharField(max_length=500, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


class UsageAlertDelivery(MailDelivery):
    alert = models.ForeignKey(UsageAlert, on_delete=models.CASCADE, related_name="deliveries")

    class Meta:
        ordering = ["alert_id", "address"]
        verbose_name_plural = "usage alert deliveries"
        constraints = [
            models.UniqueConstraint(fields=["alert", "address"], name="alert_delivery_once"),
        ]
        indexes = [models.Index(fields=["status", "next_attempt_at"])]

    def __str__(self) -> str:
        return f"{self.alert} to {self.address}"


class BillingAction(models.TextChoices):
    ITEM_STATUS = "item_status", "Item status changed"
    ADJUSTMENT_ADDED = "adjustment_added", "Adjustment added"
    PACKAGE_CREATED = "package_created", "Package created"
    PACKAGE_CHANGED = "package_changed", "Package changed"
    CLIENT_CREATED = "client_created", "Client created"
    CLIENT_CHANGED = "client_changed", "Client changed"
    PORTAL_LOGIN_ADDED = "portal_login_added", "Portal login added"
    PORTAL_LOGIN_REMOVED = "portal_login_removed", "Portal login removed"
    DISPUTE_OPENED = "dispute_opened", "Dispute opened"
    DISPUTE_ADJUSTED = "dispute_adjusted", "Dispute resolved by an adjustment"
    DISPUTE_REJECTED = "dispute_rejected", "Dispute rejected"
    PERIOD_RELEASED = "period_released", "Month released for export"


class BillingEvent(models.Model):
    """Append-only audit of every change that affects money: who, when, old and new values.

    Written by the billing service that makes the change, in its transaction. PostgreSQL
    refuses UPDATE and DELETE on the table (migration 0004); the links PROTECT, so an audited
    item, subscription, package or client cannot be deleted under its history."""

    # Each link leads one of the composite indexes below, which serve its lookups too.
    item = models.ForeignKey(
        BillableItem,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
    )
    subscription = models.ForeignKey(
        Subscription,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
    )
    package = models.ForeignKey(
        SupportPackage,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
    )
    client = models.ForeignKey(
        Client, on_delete=models.PROTECT, null=True, blank=True, related_name="+", db_index=False
    )
    # Plain values, not a foreign key: deleting the user must neither change the row (it is
    # append-only) nor lose who it was. Empty for the system (rollup, commands without a user).
    actor_user_id = models.PositiveIntegerField(null=True, blank=True)
    actor_username = models.CharField(max_length=150, blank=True)
    action = models.CharField(max_length=24, choices=BillingAction.choices)
    # What changed as {"field": [old, new]} with strings (money as "500.00"), never floats.
    detail = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["item", "created_at"]),
            models.Index(fields=["subscription", "created_at"]),
            models.Index(fields=["package", "created_at"]),
            models.Index(fields=["client", "created_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.get_action_display()} at {self.created_at:%Y-%m-%d %H:%M}"


class BilledTerms(models.Model):
    """The terms one subscription was billed with in one month, stored when the rollup closes
    the month (a one-time bucket: when it is bought, in its start month). Append-only: later
    price or package changes never reach a closed month (docs/decisions.md)."""

    # Its lookups use the unique (subscription, month) index.
    subscription = models.ForeignKey(
        Subscription, on_delete=models.PROTECT, related_name="billed_terms", db_index=False
    )
    month = models.DateField(help_text="First day of the month these terms billed.")
    billing_mode = models.CharField(max_length=16, choices=BillingMode.choices)
    # Recurring: hours included in the month. One-time: the size of the bucket bought.
    included_hours = models.DecimalField(max_digits=6, decimal_places=2)
    # The monthly fee (one-time: the bucket's price), exact as in the price list then.
    fee = MoneyField(
        max_digits=12,
        decimal_places=2,
        currency_field_name="currency",
        currency_choices=settings.CURRENCY_CHOICES,
    )
    # Price of one hour beyond the included hours (recurring only).
    hourly_rate = MoneyField(
        max_digits=12,
        decimal_places=2,
        currency_field_name="currency",
        currency_choices=settings.CURRENCY_CHOICES,
    )
    # The billing policy the month was billed with (SupportPackage's fields then); months
    # stored before the policy existed were billed as the defaults say.
    billing_increment = models.CharField(
        max_length=4, choices=BillingIncrement.choices, default=BillingIncrement.QUARTER
    )
    billing_rounding = models.CharField(
        max_length=16, choices=BillingRounding.choices, default=BillingRounding.PER_ENTRY
    )
    billing_minimum = models.DecimalField(max_digits=4, decimal_places=2, default=Decimal("0"))
    # The overage policy of the subscription at the close and the extra hours approved for
    # the month (``approve``; zero under the others), so a later policy change never changes
    # a closed month's statement; months stored before overage control billed every hour.
    # (Defaults in the database too: raw inserts such as the bench's seed may omit them.)
    overage_policy = models.CharField(
        max_length=8,
        choices=OveragePolicy.choices,
        default=OveragePolicy.BILL,
        db_default=OveragePolicy.BILL,
    )
    approved_hours = models.DecimalField(
        max_digits=8, decimal_places=2, default=Decimal("0"), db_default=Decimal("0")
    )
    # The month's hours as the close billed them (recurring): chargeable as logged, billed
    # under the policy, at no charge. The portal's history reads closed months from them
    # instead of their time entries; empty for terms stored before they were kept, and for
    # a bucket's terms, which serve all its months (docs/decisions.md).
    logged_hours = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    billed_hours = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    no_charge_hours = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    # Annotations for mypy only, as on BillableItem.
    currency: str
    objects: ClassVar[models.Manager["BilledTerms"]]
    _default_manager: ClassVar[models.Manager["BilledTerms"]]
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "billed terms"
        ordering = ["month", "subscription_id"]
        constraints = [
            models.UniqueConstraint(fields=["subscription", "month"], name="terms_once_per_month"),
            models.CheckConstraint(condition=models.Q(month__day=1), name="terms_month_first_day"),
            models.CheckConstraint(
                condition=models.Q(included_hours__gte=0, fee__gte=0, hourly_rate__gte=0),
                name="terms_not_negative",
            ),
        ]

    def __str__(self) -> str:
        return f"Terms of #{self.subscription_id} in {self.month:%Y-%m}"


class ExportFormat(models.TextChoices):
    CSV = "csv", "CSV"
    XLSX = "xlsx", "XLSX"


class ExportStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"
    # Its file was deleted EXPORT_JOB_KEEP_DAYS after it was written (docs/decisions.md).
    EXPIRED = "expired", "Expired (file deleted)"


def _export_path(instance: "ExportJob", filename: str) -> str:
    # One folder per job: the file keeps the export's own name (billable-items-2026-10.xlsx).
    return f"exports/{instance.pk}/{filename}"


class ExportJob(models.Model):
    """A month's billable items written to a file by a Celery task (billing.services.exports),
    for finance to download from the admin or the API when it is done. The file is in the
    default storage under MEDIA_ROOT and is only served through the views, which check who
    asks (billing.selectors.exports)."""

    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    format = models.CharField(max_length=8, choices=ExportFormat.choices)
    period = models.DateField()  # the first day of the month the export covers
    status = models.CharField(
        max_length=16, choices=ExportStatus.choices, default=ExportStatus.QUEUED
    )
    rows_done = models.PositiveIntegerField(default=0)
    rows_total = models.PositiveIntegerField(null=True, blank=True)  # counted when it starts
    file = models.FileField(upload_to=_export_path, max_length=200, blank=True)
    error = models.TextField(blank=True)  # why it failed, in words for finance
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["requested_by", "-created_at"])]

    def __str__(self) -> str:
        return f"Export #{self.pk} ({self.format})"

    @property
    def percent(self) -> int:
        """Progress in whole per cent: 100 once done, whatever was counted."""
        if self.status in (ExportStatus.DONE, ExportStatus.EXPIRED):
            return 100
        if not self.rows_total:
            return 0
        return min(99, self.rows_done * 100 // self.rows_total)


class DisputeStatus(models.TextChoices):
    OPEN = "open", "Open"
    ADJUSTED = "adjusted", "Resolved by an adjustment"
    REJECTED = "rejected", "Rejected"


class Dispute(models.Model):
    """A client's objection to one time entry or one billable item of a closed month, raised in
    the review window (docs/billing-rules.md, "Review window and disputes"). While open it holds
    back from export the item it names, or for a time entry the items of the entry's
    subscription in that month. Finance resolves it by an adjustment or rejects it with an
    answer the client reads in the portal."""

    client = models.ForeignKey(Client, on_delete=models.PROTECT, related_name="disputes")
    subscription = models.ForeignKey(
        Subscription, on_delete=models.PROTECT, null=True, blank=True, related_name="disputes"
    )
    month = models.DateField(help_text="First day of the closed month disputed.")
    time_entry = models.ForeignKey(
        TimeEntry, on_delete=models.PROTECT, null=True, blank=True, related_name="disputes"
    )
    item = models.ForeignKey(
        BillableItem, on_delete=models.PROTECT, null=True, blank=True, related_name="disputes"
    )
    reason = models.TextField(max_length=2000)
    status = models.CharField(
        max_length=16, choices=DisputeStatus.choices, default=DisputeStatus.OPEN
    )
    answer = models.TextField(max_length=2000, blank=True, help_text="Shown to the client.")
    # The adjustment that resolved it (status adjusted).
    adjustment = models.ForeignKey(
        BillableItem, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    opened_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    opened_at = models.DateTimeField(auto_now_add=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-opened_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(time_entry__isnull=False, item__isnull=True)
                | models.Q(time_entry__isnull=True, item__isnull=False),
                name="dispute_one_object",
            ),
            models.CheckConstraint(condition=models.Q(month__day=1), name="dispute_month"),
            models.UniqueConstraint(
                fields=["time_entry"],
                condition=models.Q(status="open"),
                name="dispute_one_open_per_entry",
            ),
            models.UniqueConstraint(
                fields=["item"], condition=models.Q(status="open"), name="dispute_one_open_per_item"
            ),
        ]
        indexes = [models.Index(fields=["status", "month"])]

    def __str__(self) -> str:
        return f"Dispute #{self.pk}"

    @property
    def object_label(self) -> str:
        if self.item_id is not None:
            return f"item #{self.item_id}"
        return f"time entry #{self.time_entry_id}"


class PeriodRelease(models.Model):
    """Finance ended a closed month's review window early: its items may be exported (those
    held by an open dispute still wait)."""

    month = models.DateField(unique=True)
    released_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    released_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-month"]
        constraints = [
            models.CheckConstraint(condition=models.Q(month__day=1), name="release_month"),
        ]

    def __str__(self) -> str:
        return f"{self.month:%Y-%m} released"


def _statement_path(instance: "Statement", filename: str) -> str:
    # One folder per client and month: statements/<client>/2026-10/statement-...-r2.pdf
    return f"statements/{instance.client_id}/{instance.month:%Y-%m}/{filename}"


class Statement(models.Model):
    """The monthly statement PDF of one subscription and one closed month, rendered once and
    never changed (docs/statements.md). An adjustment of that month after the close adds the
    next revision, which says what changed; older revisions stay as they were. The file is in
    the default storage and is only served through the views, which check who asks."""

    subscription = models.ForeignKey(
        Subscription, on_delete=models.PROTECT, related_name="statements"
    )
    # The subscription's client, kept on the row: the portal's check and the admin's filter.
    client = models.ForeignKey(Client, on_delete=models.PROTECT, related_name="statements")
    month = models.DateField(help_text="First day of the month the statement covers.")
    revision = models.PositiveSmallIntegerField(default=1)
    file = models.FileField(upload_to=_statement_path, max_length=200)
    checksum = models.CharField(max_length=64, help_text="SHA-256 of the PDF, in hex.")
    size = models.PositiveIntegerField(default=0)
    # The figures the PDF states (money as strings), to tell the next revision what changed.
    figures = models.JSONField(default=dict)
    # What changed since the previous revision, in sentences (empty for the first).
    changes = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    # Its e-mails are done: every recipient was served or given up on (its deliveries).
    mailed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-month", "subscription_id", "-revision"]
        constraints = [
            models.UniqueConstraint(
                fields=["subscription", "month", "revision"], name="statement_revision_once"
            ),
            models.CheckConstraint(
                condition=models.Q(month__day=1), name="statement_month_first_day"
            ),
            models.CheckConstraint(condition=models.Q(revision__gte=1), name="statement_revision"),
        ]
        indexes = [models.Index(fields=["client", "month"])]

    def __str__(self) -> str:
        return f"Statement of #{self.subscription_id} for {self.month:%Y-%m} (r{self.revision})"

    @property
    def filename(self) -> str:
        suffix = f"-r{self.revision}" if self.revision > 1 else ""
        return f"statement-{self.month:%Y-%m}-{self.subscription_id}{suffix}.pdf"


class StatementDelivery(MailDelivery):
    """One statement revision to one address (billing.services.statement_mail)."""

    statement = models.ForeignKey(Statement, on_delete=models.CASCADE, related_name="deliveries")

    class Meta:
        ordering = ["statement_id", "address"]
        verbose_name_plural = "statement deliveries"
        constraints = [
            models.UniqueConstraint(
                fields=["statement", "address"], name="statement_delivery_once"
            ),
        ]
        indexes = [models.Index(fields=["status", "next_attempt_at"])]

    def __str__(self) -> str:
        return f"{self.statement} to {self.address}"
