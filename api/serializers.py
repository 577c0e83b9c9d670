"""Shapes of the API's JSON (docs/api.md). Decimals are strings with 2 decimals; writes are handed
to the services by the views, so these classes only parse and render."""

from decimal import Decimal
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from billing.calculations import TERMS_BILLED, TERMS_CURRENT
from billing.models import (
    BILLABLE_ITEM_COLUMNS,
    BillableItem,
    Dispute,
    ExportFormat,
    ExportJob,
    ExportStatus,
    ItemStatus,
)
from billing.selectors.review import HELD, items_with_hold
from customers.models import Client
from packages.models import (
    BillingIncrement,
    BillingMode,
    BillingRounding,
    OveragePolicy,
    PackagePrice,
    Subscription,
    SubscriptionStatus,
    SupportPackage,
)
from packages.services import PACKAGE_FIELDS
from supportbilling.periods import (
    PERIOD_YEAR_MAX,
    PERIOD_YEAR_MIN,
    period_current,
    period_label,
    period_parse,
)
from tickets.hours import hours_clean
from tickets.models import (
    HOURS_MAX_PER_ENTRY,
    HOURS_STEP,
    MESSAGE_BODY_MAX_LENGTH,
    Ticket,
    TicketPriority,
    TicketStatus,
    TimeEntry,
)
from tickets.overage import APPROVAL_MAX_HOURS as OVERAGE_MAX_HOURS
from tickets.overage import approved_hours_of
from tickets.selectors import time_entry_is_billed

# Dates far from now are typing mistakes: the years of every period (supportbilling.periods).
MIN_YEAR, MAX_YEAR = PERIOD_YEAR_MIN, PERIOD_YEAR_MAX
ZERO = Decimal("0")


def _money_field(
    *,
    source: str | None = None,
    read_only: bool = False,
    min_value: Decimal | None = None,
    max_digits: int | None = 14,
) -> serializers.DecimalField:
    """An amount of money as the models store it: 14 digits, 2 of them decimals (``max_digits``
    None: a computed amount, which can be larger)."""
    return serializers.DecimalField(
        max_digits=max_digits,
        decimal_places=2,
        source=source,
        read_only=read_only,
        min_value=min_value,
    )


def _hours_total(help_text: str | None = None) -> serializers.DecimalField:
    """A sum of hours the server sends: never negative."""
    return serializers.DecimalField(
        max_digits=12, decimal_places=2, min_value=ZERO, help_text=help_text
    )


def _django_messages(exc: DjangoValidationError) -> list[str]:
    return list(exc.messages)


@extend_schema_field({"type": "string", "pattern": r"^\d{4}-\d{2}$", "example": "2026-10"})
class PeriodField(serializers.Field):
    """A month as ``"YYYY-MM"``; stored as the date of its first day."""

    def to_representation(self, value):
        return period_label(value)

    def to_internal_value(self, data):
        if not isinstance(data, str):
            raise serializers.ValidationError("Enter the period as YYYY-MM, for example 2026-10.")
        try:
            return period_parse(data)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(_django_messages(exc)) from exc


@extend_schema_field({"type": "string", "format": "decimal", "pattern": r"^\d+(\.\d{1,2})?$"})
class HoursField(serializers.Field):
    """Hours as a decimal string ("1.25"); a JSON number is read exactly (the API's JSON parser
    turns numbers into Decimal, never float). The time rules of tickets.hours apply."""

    # Bounds for the schema (api.schema); tickets.hours checks them.
    min_value = HOURS_STEP
    max_value = HOURS_MAX_PER_ENTRY

    def to_representation(self, value):
        return f"{value:.2f}"

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, (str, int, Decimal)):
            raise serializers.ValidationError('Enter hours as a decimal string, e.g. "1.25".')
        try:
            return hours_clean(data)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(_django_messages(exc)) from exc


def _plausible_date(value):
    if not MIN_YEAR <= value.year <= MAX_YEAR:
        raise serializers.ValidationError(f"Enter a date between {MIN_YEAR} and {MAX_YEAR}.")
    return value


class PriceSerializer(serializers.Serializer):
    currency = serializers.ChoiceField(choices=settings.CURRENCY_CHOICES)
    fee = serializers.DecimalField(min_value=Decimal("0"), max_digits=12, decimal_places=2)
    hourly_rate = serializers.DecimalField(min_value=Decimal("0"), max_digits=12, decimal_places=2)

    def to_representation(self, instance: PackagePrice):
        return {
            "currency": str(instance.currency),
            "fee": f"{instance.fee.amount:.2f}",
            "hourly_rate": f"{instance.hourly_rate.amount:.2f}",
        }


class PackageSerializer(serializers.ModelSerializer):
    included_hours = serializers.DecimalField(
        max_digits=6, decimal_places=2, min_value=Decimal("0"), required=False
    )
    prices = PriceSerializer(many=True)
    billing_increment = serializers.ChoiceField(
        choices=BillingIncrement.choices,
        required=False,
        help_text="Billed time is rounded UP to this step, in hours (docs/billing-rules.md, "
        '"Billing increment and minimum"). Default "0.25".',
    )
    billing_rounding = serializers.ChoiceField(
        choices=BillingRounding.choices,
        required=False,
        help_text="entry: each time entry is rounded up; ticket_month: each ticket's time in a "
        "month is summed, then rounded up. Default entry.",
    )
    billing_minimum = serializers.DecimalField(
        max_digits=4,
        decimal_places=2,
        min_value=Decimal("0"),
        max_value=Decimal("24"),
        required=False,
        help_text="Hours billed at least per ticket and month with chargeable time, in steps "
        "of 0.25; 0: no minimum. Changing the policy affects open months only.",
    )

    class Meta:
        model = SupportPackage
        fields = ["id", *PACKAGE_FIELDS, "prices"]

    def validate_prices(self, prices: list[dict[str, Any]]) -> list[dict[str, Any]]:
        # A PATCH makes every field optional, a price's too; but prices are written whole.
        for number, price in enumerate(prices, start=1):
            missing = [name for name in ("currency", "fee", "hourly_rate") if name not in price]
            if missing:
                raise serializers.ValidationError(
                    f"Price {number} has no {' and no '.join(missing)}: a price is given whole."
                )
        return prices


class ClientSerializer(serializers.ModelSerializer):
    currency = serializers.ChoiceField(choices=settings.CURRENCY_CHOICES)
    language = serializers.ChoiceField(
        choices=[code for code, _ in settings.LANGUAGES],
        required=False,
        allow_blank=True,
        help_text="The language of the client's statements; empty: the site's.",
    )

    class Meta:
        model = Client
        fields = ["id", "name", "email", "currency", "language", "active"]


class ClientUserSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    username = serializers.CharField(max_length=150)
    # No default: the schema would declare "" as the default of an e-mail address.
    email = serializers.EmailField(required=False, allow_blank=True, max_length=254)
    password = serializers.CharField(
        write_only=True, max_length=128, style={"input_type": "password"}
    )


def _cap_field(help_text: str) -> serializers.DecimalField:
    return serializers.DecimalField(
        max_digits=6,
        decimal_places=2,
        min_value=ZERO,
        max_value=OVERAGE_MAX_HOURS,
        allow_null=True,
        read_only=True,
        help_text=help_text,
    )


class SubscriptionSerializer(serializers.ModelSerializer):
    client = serializers.PrimaryKeyRelatedField(queryset=Client.objects.all())
    package = serializers.PrimaryKeyRelatedField(queryset=SupportPackage.objects.all())
    overage_policy = serializers.ChoiceField(
        choices=OveragePolicy.choices,
        read_only=True,
        help_text="Time beyond the included hours: bill (billed at the hourly rate), cap (no "
        "time beyond the included hours plus overage_cap_hours a month), approve (billed only "
        "up to the extra hours the client approves for the month). Staff set it with POST "
        ".../overage/.",
    )
    overage_cap_hours = _cap_field(
        "Under cap: the hours a month may take beyond the included ones (null: none)."
    )
    client_cap_hours = _cap_field(
        "The client's own monthly cap on hours beyond the included ones, under any policy "
        "(null: none); never above overage_cap_hours under cap."
    )
    approved_extra_hours = serializers.SerializerMethodField(
        help_text="Extra hours the client approved for the current month (policy approve; "
        "zero under the others)."
    )
    topup_of = serializers.PrimaryKeyRelatedField(
        queryset=Subscription.objects.all(),
        allow_null=True,
        required=False,
        help_text="A prepaid top-up block: the monthly (recurring) subscription of the same "
        "client whose time draws its hours, after the month's included hours and before "
        "overtime (the package must be one-time); null: not a block.",
    )
    expires_on = serializers.DateField(
        allow_null=True,
        required=False,
        help_text="A top-up block: the last day its hours can be drawn (its whole month "
        "counts); null: no expiry. Only with topup_of.",
    )

    class Meta:
        model = Subscription
        fields = [
            "id",
            "client",
            "package",
            "status",
            "start_date",
            "end_date",
            "overage_policy",
            "overage_cap_hours",
            "client_cap_hours",
            "approved_extra_hours",
            "topup_of",
            "expires_on",
        ]
        read_only_fields = ["status", "end_date"]
        extra_kwargs = {"start_date": {"required": False}}

    def validate_start_date(self, value):
        return _plausible_date(value)

    @extend_schema_field(serializers.DecimalField(max_digits=12, decimal_places=2, min_value=ZERO))
    def get_approved_extra_hours(self, subscription: Subscription) -> str:
        approved = getattr(subscription, "approved_in_month", None)
        if approved is None:
            approved = (
                approved_hours_of(subscription_id=subscription.pk, month=period_current())
                if subscription.overage_policy == OveragePolicy.APPROVE
                else Decimal("0.00")
            )
        return f"{approved:.2f}"


class SubscriptionOverageSerializer(serializers.Serializer):
    """What staff set: the policy and, under cap, the monthly ceiling."""

    policy = serializers.ChoiceField(choices=OveragePolicy.choices)
    cap_hours = serializers.DecimalField(
        max_digits=6,
        decimal_places=2,
        min_value=ZERO,
        max_value=OVERAGE_MAX_HOURS,
        allow_null=True,
        required=False,
        help_text="Under cap: hours a month may take beyond the included ones, in steps of "
        "0.25 (null or left out: none, so no extra hour).",
    )


class OverageApprovalRequestSerializer(serializers.Serializer):
    """Extra hours a client's user approves for the current month."""

    hours = serializers.DecimalField(
        max_digits=6,
        decimal_places=2,
        min_value=Decimal("0.25"),
        max_value=OVERAGE_MAX_HOURS,
        help_text="Extra hours to approve for the current month, in steps of 0.25; added to "
        "those approved already.",
    )


class SubscriptionStatusSerializer(serializers.Serializer):
    whole_on_patch = True  # PATCH needs the status (api.schema)

    status = serializers.ChoiceField(choices=SubscriptionStatus.choices)


class BlockUsageSerializer(serializers.Serializer):
    """One top-up block in one month of the subscription it tops up."""

    block = serializers.IntegerField(help_text="The block's subscription id.")
    hours = serializers.DecimalField(
        max_digits=12, decimal_places=2, min_value=ZERO, help_text="Its size, as bought."
    )
    available = serializers.DecimalField(
        max_digits=12,
        decimal_places=2,
        min_value=ZERO,
        help_text="What it had for the month (its size less what earlier months drew).",
    )
    drawn = serializers.DecimalField(
        max_digits=12,
        decimal_places=2,
        min_value=ZERO,
        help_text="What the month draws from it (open) or drew (closed).",
    )
    left = serializers.DecimalField(
        max_digits=12, decimal_places=2, min_value=ZERO, help_text="What it has left after."
    )
    expires_on = serializers.DateField(allow_null=True, help_text="Null: no expiry.")


class UsageSerializer(serializers.Serializer):
    subscription = serializers.IntegerField()
    period = PeriodField()
    billing_mode = serializers.ChoiceField(choices=BillingMode.choices)
    included_hours = _hours_total()
    used_hours = _hours_total(
        help_text="The hours billed (counted against the included hours): the chargeable "
        "hours under the package's billing policy (rounded up, at least the minimum per ticket "
        "and month)."
    )
    logged_hours = _hours_total(
        help_text="The chargeable hours as logged, before the billing policy's rounding."
    )
    billed_hours = _hours_total(help_text="The same as used_hours.")
    no_charge_hours = _hours_total(
        help_text="Hours worked at no charge: neither billed nor counted against the included "
        "hours."
    )
    remaining_hours = _hours_total()
    overtime_hours = _hours_total()
    currency = serializers.ChoiceField(choices=settings.CURRENCY_CHOICES)
    hourly_rate = _money_field(min_value=ZERO)
    fee = _money_field(min_value=ZERO)
    # Computed from the hours and the rate, so larger than an item holds when the price is
    # wrong: shown as it is (the close refuses to bill it, docs/billing-rules.md).
    overtime_amount = _money_field(min_value=ZERO, max_digits=None)
    closed = serializers.BooleanField()
    overage_policy = serializers.ChoiceField(choices=OveragePolicy.choices)
    approved_hours = serializers.DecimalField(
        max_digits=12,
        decimal_places=2,
        min_value=ZERO,
        help_text="Extra hours the client approved for the month (policy approve).",
    )
    unapproved_hours = serializers.DecimalField(
        max_digits=12,
        decimal_places=2,
        min_value=ZERO,
        help_text="Policy approve: hours beyond the included and approved ones, not in "
        "overtime_hours: pending approval while the month is open, never billed once closed.",
    )
    terms = serializers.ChoiceField(
        choices=[TERMS_BILLED, TERMS_CURRENT],
        help_text="billed: the terms stored when the month was closed (a one-time package: "
        "when it was bought); current: the package's prices today, which apply to the open "
        "month.",
    )
    block_hours_available = serializers.DecimalField(
        max_digits=12,
        decimal_places=2,
        min_value=ZERO,
        help_text="Hours the subscription's top-up blocks had available for the month (a "
        "closed month: what its close drew from them); zero without blocks.",
    )
    block_hours_used = serializers.DecimalField(
        max_digits=12,
        decimal_places=2,
        min_value=ZERO,
        help_text="Hours beyond the included ones drawn from the top-up blocks, not in "
        "overtime_hours.",
    )
    blocks = BlockUsageSerializer(
        many=True, help_text="The top-up blocks serving the month, in the order they are drawn."
    )


def _assignee_field() -> serializers.PrimaryKeyRelatedField:
    # Any user id is read here; ticket_assign refuses one who is not an active operator.
    return serializers.PrimaryKeyRelatedField(
        queryset=get_user_model().objects.all(),
        allow_null=True,
        required=False,
        help_text="The id of the operator who answers the ticket; null: nobody. Only an active "
        "operator can be assigned. Left out when opening a ticket: the automatic assignment "
        "rule decides (docs/decisions.md).",
    )


class TicketSerializer(serializers.ModelSerializer):
    client = serializers.PrimaryKeyRelatedField(queryset=Client.objects.all())
    subscription = serializers.PrimaryKeyRelatedField(
        queryset=Subscription.objects.all(), allow_null=True, required=False
    )
    status = serializers.ChoiceField(choices=TicketStatus.choices, required=False)
    track_time = serializers.BooleanField(required=False)
    hours_logged = serializers.DecimalField(
        max_digits=12, decimal_places=2, read_only=True, min_value=ZERO
    )
    body = serializers.CharField(
        write_only=True,
        required=False,
        max_length=MESSAGE_BODY_MAX_LENGTH,
        help_text="The first message, recorded as the client's request; none when left out.",
    )
    priority = serializers.ChoiceField(choices=TicketPriority.choices, required=False)
    assignee = _assignee_field()

    class Meta:
        model = Ticket
        fields = [
            "id",
            "client",
            "subscription",
            "subject",
            "status",
            "track_time",
            "hours_logged",
            "priority",
            "body",
            "assignee",
        ]


class TicketUpdateSerializer(serializers.Serializer):
    """What a PATCH may change: each through its own service."""

    status = serializers.ChoiceField(choices=TicketStatus.choices, required=False)
    subscription = serializers.PrimaryKeyRelatedField(
        queryset=Subscription.objects.all(), allow_null=True, required=False
    )
    track_time = serializers.BooleanField(required=False)
    assignee = _assignee_field()


def _pending_approval_field() -> serializers.BooleanField:
    return serializers.BooleanField(
        write_only=True,
        required=False,
        default=False,
        help_text="Overage policy approve: log hours beyond the included and approved ones "
        "as pending the client's approval (without it they are refused); billed only once "
        "approved (docs/billing-rules.md).",
    )


class TimeEntrySerializer(serializers.ModelSerializer):
    operator = serializers.CharField(source="operator.username", read_only=True)
    hours = HoursField()
    work_date = serializers.DateField(required=False)
    note = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")
    billed = serializers.SerializerMethodField()
    pending_approval = _pending_approval_field()
    no_charge = serializers.BooleanField(
        required=False,
        default=False,
        help_text="Worked time that is not billed nor deducted from the included hours "
        "(goodwill, our own mistake). Needs the permission tickets.mark_no_charge (a 403 "
        "without it) and a no_charge_reason.",
    )
    no_charge_reason = serializers.CharField(
        max_length=200,
        required=False,
        allow_blank=True,
        default="",
        help_text="Why the time is at no charge; required with no_charge.",
    )

    class Meta:
        model = TimeEntry
        fields = [
            "id",
            "ticket",
            "subscription",
            "operator",
            "hours",
            "work_date",
            "note",
            "billed",
            "pending_approval",
            "no_charge",
            "no_charge_reason",
        ]
        read_only_fields = ["ticket", "subscription"]

    def get_billed(self, entry: TimeEntry) -> bool:
        return time_entry_is_billed(entry)

    def validate_work_date(self, value):
        return _plausible_date(value)


class TimeEntryUpdateSerializer(serializers.Serializer):
    hours = HoursField(required=False)
    work_date = serializers.DateField(required=False)
    note = serializers.CharField(max_length=500, required=False, allow_blank=True)
    pending_approval = _pending_approval_field()
    no_charge = serializers.BooleanField(
        required=False,
        help_text="Mark the entry no charge (true, with no_charge_reason) or charge it again "
        "(false). Needs the permission tickets.mark_no_charge (a 403 without it); refused in "
        "a closed month.",
    )
    no_charge_reason = serializers.CharField(max_length=200, required=False, allow_blank=True)

    def validate_work_date(self, value):
        return _plausible_date(value)


class RollupSerializer(serializers.Serializer):
    period = PeriodField()
    closed = serializers.BooleanField(read_only=True)
    items_created = serializers.IntegerField(read_only=True)


class BillableItemSerializer(serializers.ModelSerializer):
    period = PeriodField()
    quantity = serializers.DecimalField(
        max_digits=10, decimal_places=2, read_only=True, min_value=ZERO
    )
    unit_price = _money_field(source="unit_price.amount", read_only=True)
    amount = _money_field(source="amount.amount", read_only=True)
    currency = serializers.ChoiceField(choices=settings.CURRENCY_CHOICES, read_only=True)

    in_review = serializers.SerializerMethodField(
        help_text="Its month is in the review window (docs/billing-rules.md)."
    )
    held = serializers.SerializerMethodField(
        help_text="It may not be exported now: its month is in review or an open dispute holds it."
    )

    class Meta:
        model = BillableItem
        # The export's columns (docs/api.md), then where the item stands in the review.
        fields = [*BILLABLE_ITEM_COLUMNS, "in_review", "held"]
        read_only_fields = fields

    def _hold(self, item: BillableItem) -> tuple[bool, bool]:
        """(in_review, held): read by the view's query, else (a single item just written)
        in one query."""
        in_review, held = getattr(item, "in_review", None), getattr(item, HELD, None)
        if in_review is None or held is None:
            found = (
                items_with_hold(BillableItem.objects.filter(pk=item.pk))
                .values_list("in_review", HELD)
                .first()
            )
            in_review, held = found or (False, False)
        return bool(in_review), bool(held)

    @extend_schema_field(bool)
    def get_in_review(self, item: BillableItem) -> bool:
        return self._hold(item)[0]

    @extend_schema_field(bool)
    def get_held(self, item: BillableItem) -> bool:
        return self._hold(item)[1]


class AdjustmentSerializer(serializers.Serializer):
    """POST /billable-items/: an adjustment (amount may be negative; a reason is required)."""

    client = serializers.PrimaryKeyRelatedField(queryset=Client.objects.all())
    subscription = serializers.PrimaryKeyRelatedField(
        queryset=Subscription.objects.all(), allow_null=True, required=False
    )
    period = PeriodField()
    amount = serializers.DecimalField(max_digits=14, decimal_places=2)
    currency = serializers.ChoiceField(choices=settings.CURRENCY_CHOICES, required=False)
    description = serializers.CharField(max_length=300)

    def validate(self, attrs):
        currency = attrs.get("currency")
        if currency and currency != attrs["client"].currency:
            expected = attrs["client"].currency
            raise serializers.ValidationError(
                {"currency": f"Adjustments are in the client's currency, {expected}."}
            )
        return attrs


class BillableItemStatusSerializer(serializers.Serializer):
    whole_on_patch = True  # PATCH needs the status (api.schema)

    status = serializers.ChoiceField(choices=ItemStatus.choices)


class TokenRequestSerializer(serializers.Serializer):
    username = serializers.CharField()
    password = serializers.CharField(style={"input_type": "password"})


class TokenSerializer(serializers.Serializer):
    token = serializers.CharField()


class ExportRequestSerializer(serializers.Serializer):
    period = PeriodField()
    format = serializers.ChoiceField(choices=["csv", "xlsx"], required=False, default="csv")


class ExportJobRequestSerializer(serializers.Serializer):
    """POST /export-jobs/: the month and the file's format."""

    period = PeriodField()
    format = serializers.ChoiceField(choices=ExportFormat.choices)


class ExportJobSerializer(serializers.ModelSerializer):
    """An export job and where it stands; ``download`` is its file's address once it is done."""

    period = PeriodField(read_only=True)
    url = serializers.SerializerMethodField()
    download = serializers.SerializerMethodField()
    percent = serializers.IntegerField(read_only=True, min_value=0, max_value=100)

    class Meta:
        model = ExportJob
        fields = [
            "id",
            "url",
            "period",
            "format",
            "status",
            "rows_done",
            "rows_total",
            "percent",
            "error",
            "download",
            "requested_by",
            "created_at",
            "started_at",
            "finished_at",
        ]
        read_only_fields = fields

    def _address(self, name: str, job: ExportJob) -> str:
        from django.urls import reverse

        path = reverse(f"api:export-job-{name}", args=[job.pk])
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request is not None else path

    def get_url(self, job: ExportJob) -> str:
        return self._address("detail", job)

    @extend_schema_field({"type": "string", "format": "uri", "nullable": True})
    def get_download(self, job: ExportJob) -> str | None:
        return self._address("download", job) if job.status == ExportStatus.DONE else None


class UsageRequestSerializer(serializers.Serializer):
    period = PeriodField(required=False)


class DisputeSerializer(serializers.ModelSerializer):
    """A client's dispute of a time entry or a billable item of a month in review."""

    period = PeriodField(source="month", read_only=True)

    class Meta:
        model = Dispute
        fields = [
            "id",
            "client",
            "subscription",
            "period",
            "time_entry",
            "item",
            "reason",
            "status",
            "answer",
            "adjustment",
            "opened_at",
            "resolved_at",
        ]
        read_only_fields = fields


class DisputeCreateSerializer(serializers.Serializer):
    """POST /disputes/ (client users): one of ``time_entry`` or ``item``, and the reason."""

    time_entry = serializers.IntegerField(required=False, min_value=1)
    item = serializers.IntegerField(required=False, min_value=1)
    reason = serializers.CharField(max_length=2000)

    def validate(self, attrs):
        if ("time_entry" in attrs) == ("item" in attrs):
            raise serializers.ValidationError(
                "Give either time_entry or item: one object per dispute."
            )
        return attrs


class DisputeResolveSerializer(serializers.Serializer):
    """POST /disputes/{id}/resolve/ (finance): adjust with an amount, or reject."""

    decision = serializers.ChoiceField(choices=["adjust", "reject"])
    answer = serializers.CharField(max_length=2000)
    amount = serializers.DecimalField(max_digits=14, decimal_places=2, required=False)

    def validate(self, attrs):
        if attrs["decision"] == "adjust" and attrs.get("amount") is None:
            raise serializers.ValidationError({"amount": "An adjustment needs its amount."})
        return attrs
