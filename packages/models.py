"""The catalogue (support packages and their prices per currency), subscriptions, and the
billing calendar (BillingPeriod: which months are still open).

BillingPeriod lives here, below tickets and billing, because both of its rules are kept below
billing: a subscription starts only in an open month (packages.services) and no time entry of
a closed month can be created, changed or deleted (tickets.services). Billing closes months."""

from decimal import Decimal
from typing import ClassVar

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from djmoney.models.fields import MoneyField
from djmoney.models.validators import MinMoneyValidator  # Django's compares Money with int

from customers.models import Client


class BillingMode(models.TextChoices):
    RECURRING = "recurring", "Recurring (hours included each month)"
    ONE_TIME = "one_time", "One-time bucket of hours"


class InvoiceAction(models.TextChoices):
    NO_INVOICE = "no_invoice", "Do not invoice"
    NEXT_CRON = "next_cron", "Invoice on the next billing run"
    NEXT_INVOICE = "next_invoice", "Add to the next invoice"
    DUE_DATE = "due_date", "Invoice on the due date"


class BillingRounding(models.TextChoices):
    """What the billing increment rounds up (docs/billing-rules.md, "Billing increment")."""

    PER_ENTRY = "entry", "Each time entry"
    PER_TICKET_MONTH = "ticket_month", "Each ticket's time in a month"


class BillingIncrement(models.TextChoices):
    """The step billed time is rounded up to, in hours (a string: Decimal choices)."""

    QUARTER = "0.25", "0.25 h (15 minutes)"
    HALF = "0.50", "0.50 h (30 minutes)"
    HOUR = "1.00", "1 h"


def validate_quarter_hours(value: Decimal) -> None:
    """Hours in steps of 0.25 (a minimum billed, as time is logged)."""
    if (value * 4) % 1:
        raise ValidationError("Hours must be in steps of 0.25.", code="hours_step")


class SupportPackage(models.Model):
    name = models.CharField(max_length=120)
    billing_mode = models.CharField(max_length=16, choices=BillingMode.choices)
    # Recurring: hours included each month (no rollover). One-time: the size of the bucket.
    included_hours = models.DecimalField(
        max_digits=6, decimal_places=2, default=Decimal("0"), validators=[MinValueValidator(0)]
    )
    invoice_action = models.CharField(
        max_length=16, choices=InvoiceAction.choices, default=InvoiceAction.NEXT_INVOICE
    )
    show_work_log = models.BooleanField(
        default=True, help_text="Show operators and notes of time entries to the client."
    )
    active = models.BooleanField(default=True, help_text="Offered for new subscriptions.")
    # The billing policy (part of the terms, stored with the prices when a month is closed):
    # billed time is rounded UP to the increment, per entry or per ticket and month, and a
    # ticket with chargeable time in a month is billed at least the minimum.
    billing_increment = models.CharField(
        max_length=4,
        choices=BillingIncrement.choices,
        default=BillingIncrement.QUARTER,
        help_text="Billed time is rounded up to this step.",
    )
    billing_rounding = models.CharField(
        max_length=16,
        choices=BillingRounding.choices,
        default=BillingRounding.PER_ENTRY,
        help_text="Round each time entry up, or each ticket's time in a month.",
    )
    billing_minimum = models.DecimalField(
        max_digits=4,
        decimal_places=2,
        default=Decimal("0"),
        validators=[MinValueValidator(0), MaxValueValidator(24), validate_quarter_hours],
        help_text="Hours billed at least per ticket and month with chargeable time (0: none).",
    )

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(included_hours__gte=0), name="package_included_hours_gte_0"
            ),
            models.CheckConstraint(
                condition=models.Q(billing_minimum__gte=0, billing_minimum__lte=24),
                name="package_billing_minimum_range",
            ),
            models.CheckConstraint(
                condition=models.Q(billing_increment__in=BillingIncrement.values),
                name="package_billing_increment_valid",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class PackagePrice(models.Model):
    """The price of a package in one currency."""

    package = models.ForeignKey(SupportPackage, on_delete=models.CASCADE, related_name="prices")
    # Monthly fee (recurring) or the price of the bucket (one-time); shares the currency column.
    fee = MoneyField(
        max_digits=12,
        decimal_places=2,
        currency_field_name="currency",
        currency_choices=settings.CURRENCY_CHOICES,
        validators=[MinMoneyValidator(0)],
    )
    # Price of one hour beyond the included hours (recurring only).
    hourly_rate = MoneyField(
        max_digits=12,
        decimal_places=2,
        currency_field_name="currency",
        currency_choices=settings.CURRENCY_CHOICES,
        validators=[MinMoneyValidator(0)],
    )
    # Annotations for mypy only: django-money adds the `currency` column (shared by the money
    # fields) and swaps the default manager's class for one it makes at run time, which
    # django-stubs' plugin can neither see nor resolve; reverse relations read _default_manager.
    currency: str
    objects: ClassVar[models.Manager["PackagePrice"]]
    _default_manager: ClassVar[models.Manager["PackagePrice"]]

    class Meta:
        ordering = ["package", "currency"]
        constraints = [
            models.UniqueConstraint(fields=["package", "currency"], name="price_unique_currency"),
            models.CheckConstraint(
                condition=models.Q(fee__gte=0, hourly_rate__gte=0), name="price_not_negative"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.package}: {self.fee} + {self.hourly_rate}/h"


class SubscriptionStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    SUSPENDED = "suspended", "Suspended"
    TERMINATED = "terminated", "Terminated"
    DEPLETED = "depleted", "Depleted"


class OveragePolicy(models.TextChoices):
    """What happens to time beyond a recurring subscription's included hours in a month
    (docs/billing-rules.md, "Overage policies")."""

    BILL = "bill", "Bill every hour beyond the included hours"
    CAP = "cap", "Cap: no time beyond the included hours plus the monthly overage cap"
    APPROVE = "approve", "Approve: the client approves extra hours each month"


class Subscription(models.Model):
    """A client's instance of a package. Billed for every month its dates overlap."""

    client = models.ForeignKey(Client, on_delete=models.PROTECT, related_name="subscriptions")
    package = models.ForeignKey(
        SupportPackage, on_delete=models.PROTECT, related_name="subscriptions"
    )
    status = models.CharField(
        max_length=16, choices=SubscriptionStatus.choices, default=SubscriptionStatus.ACTIVE
    )
    start_date = models.DateField()
    end_date = models.DateField(null=True, blank=True)
    # One-time: the size of the bucket as bought (the package's hours then); later changes
    # of the package do not reach it. Null for a recurring subscription.
    bucket_hours = models.DecimalField(
        "hours bought",
        max_digits=6,
        decimal_places=2,
        null=True,
        blank=True,
        help_text="One-time package: the size of the bucket when it was bought.",
    )
    # Overage control (recurring only), set by staff: the policy, and under ``cap`` the
    # hours a month may take beyond the included ones (the ceiling; none: no extra hour).
    # db_default too: bulk loads that write rows with COPY (bench/seed.py) get ``bill``.
    overage_policy = models.CharField(
        max_length=8,
        choices=OveragePolicy.choices,
        default=OveragePolicy.BILL,
        db_default=OveragePolicy.BILL,
    )
    overage_cap_hours = models.DecimalField(
        "overage cap (hours a month)",
        max_digits=6,
        decimal_places=2,
        null=True,
        blank=True,
        validators=[MinValueValidator(0)],
        help_text="Cap policy: hours a month may take beyond the included hours (staff's "
        "ceiling; empty: none).",
    )
    # The client's own monthly cap on hours beyond the included ones (the portal), under
    # any policy; never above staff's ceiling under ``cap``. None: no cap of theirs.
    client_cap_hours = models.DecimalField(
        "client's overage cap (hours a month)",
        max_digits=6,
        decimal_places=2,
        null=True,
        blank=True,
        validators=[MinValueValidator(0)],
    )
    # A prepaid top-up block (docs/billing-rules.md, "Top-up blocks"): a one-time bucket
    # sold as extra hours OF a recurring subscription of the same client. Its hours are
    # drawn by the time logged on that subscription, after the month's included hours and
    # before overtime; from its start month to the month of ``expires_on`` (none: no end).
    topup_of = models.ForeignKey(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="topups",
        verbose_name="top-up of",
        help_text="One-time package sold as a prepaid block of hours of this monthly subscription.",
    )
    expires_on = models.DateField(
        "block expires on",
        null=True,
        blank=True,
        help_text="Top-up block: the last day its hours can be drawn (its month included); "
        "empty: no expiry.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(expires_on__isnull=True) | models.Q(topup_of__isnull=False),
                name="subscription_expiry_only_on_blocks",
            ),
            models.CheckConstraint(
                condition=models.Q(bucket_hours__isnull=True) | models.Q(bucket_hours__gt=0),
                name="subscription_bucket_hours_gt_0",
            ),
            models.CheckConstraint(
                condition=(
                    models.Q(overage_cap_hours__isnull=True) | models.Q(overage_cap_hours__gte=0)
                )
                & (models.Q(client_cap_hours__isnull=True) | models.Q(client_cap_hours__gte=0)),
                name="subscription_overage_caps_gte_0",
            ),
            models.CheckConstraint(
                condition=models.Q(end_date__isnull=True)
                | models.Q(end_date__gte=models.F("start_date")),
                name="subscription_end_after_start",
            ),
        ]
        indexes = [
            models.Index(fields=["client", "status"]),
            models.Index(fields=["start_date", "end_date"]),
        ]

    def __str__(self) -> str:
        return f"{self.package.name} #{self.pk} ({self.get_status_display().lower()})"

    @property
    def hours_included(self) -> Decimal:
        """The hours the subscription includes: a bucket's size as bought; a recurring
        subscription's monthly hours as the package has them now (a closed month keeps its
        own in billing's stored terms). A bucket without a size (a package of no hours, sold
        before such sales were refused) holds nothing. Reads ``package``: select it with the
        subscription."""
        if self.package.billing_mode == BillingMode.ONE_TIME:
            return self.bucket_hours or Decimal("0")
        return self.package.included_hours


class ApprovalChannel(models.TextChoices):
    PORTAL = "portal", "Portal"
    EMAIL = "email", "E-mail reply"


class OverageApproval(models.Model):
    """Extra hours beyond the included ones that a client's portal user approved for one
    month of a subscription under the ``approve`` policy. Append-only; a month's approved
    hours are the sum of its rows."""

    subscription = models.ForeignKey(
        Subscription, on_delete=models.PROTECT, related_name="overage_approvals"
    )
    month = models.DateField(help_text="First day of the month.")
    hours = models.DecimalField(max_digits=6, decimal_places=2)
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    channel = models.CharField(max_length=8, choices=ApprovalChannel.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["month", "id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(month__day=1), name="overage_approval_first_of_month"
            ),
            models.CheckConstraint(
                condition=models.Q(hours__gt=0), name="overage_approval_hours_gt_0"
            ),
        ]
        indexes = [models.Index(fields=["subscription", "month"])]

    def __str__(self) -> str:
        return f"{self.hours} h approved for {self.month:%Y-%m} (#{self.subscription_id})"


class BlockDraw(models.Model):
    """What the close of one month drew from one top-up block (``hours``), and the hours it
    left unused when the month is the one the block expires in (``expired_hours``). Written
    by the rollup (``billing.services.rollup``), one row per block and month (only when
    either is above zero); a block's remaining hours are its size minus its rows' draws
    minus what the months not closed yet draw (``tickets.blocks``)."""

    block = models.ForeignKey(Subscription, on_delete=models.PROTECT, related_name="block_draws")
    subscription = models.ForeignKey(
        Subscription,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="The monthly subscription whose time drew the block.",
    )
    month = models.DateField(help_text="First day of the month.")
    hours = models.DecimalField(max_digits=6, decimal_places=2, default=Decimal("0"))
    expired_hours = models.DecimalField(max_digits=6, decimal_places=2, default=Decimal("0"))
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["month", "block_id"]
        constraints = [
            models.UniqueConstraint(fields=["block", "month"], name="block_draw_unique_month"),
            models.CheckConstraint(
                condition=models.Q(month__day=1), name="block_draw_first_of_month"
            ),
            models.CheckConstraint(
                condition=models.Q(hours__gte=0, expired_hours__gte=0),
                name="block_draw_hours_gte_0",
            ),
        ]
        indexes = [models.Index(fields=["subscription", "month"])]

    def __str__(self) -> str:
        return f"{self.hours} h drawn from block #{self.block_id} in {self.month:%Y-%m}"


class PeriodStatus(models.TextChoices):
    OPEN = "open", "Open"
    CLOSING = "closing", "Closing"  # the rollup is running: time entries are already refused
    CLOSED = "closed", "Closed"


class BillingPeriod(models.Model):
    """One calendar month and whether its time entries are still open to change."""

    month = models.DateField(unique=True, help_text="First day of the month.")
    status = models.CharField(max_length=8, choices=PeriodStatus.choices, default=PeriodStatus.OPEN)
    closed_at = models.DateTimeField(null=True, blank=True)
    closed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )

    class Meta:
        ordering = ["-month"]
        constraints = [
            models.CheckConstraint(condition=models.Q(month__day=1), name="period_first_of_month"),
        ]

    def __str__(self) -> str:
        return f"{self.month:%Y-%m} ({self.status})"
