"""Finance's admin: billable items with totals per currency, status actions, adjustments,
the periods page (close an ended month) and exports; and the admin of what billing rules
depend on (clients, packages and their prices, subscriptions), registered here because
their writes go through billing's services. Every write goes through a service, and the
change pages show the billing audit."""

import copy
from typing import Any, cast

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import PAGE_VAR
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.forms.models import BaseInlineFormSet
from django.http import (
    FileResponse,
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBase,
    HttpResponseRedirect,
)
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from billing import audit, exports
from billing.admin_views import export_job, export_job_download, export_jobs
from billing.models import (
    BillableItem,
    ItemStatus,
    ItemUnit,
    Statement,
    StatementDelivery,
    UsageAlert,
    UsageAlertDelivery,
)
from billing.selectors.finance import billable_item_totals, item_periods
from billing.services.items import (
    ItemsStatusChange,
    adjustment_create,
    billable_items_status_set,
)
from customers.admin_filters import ClientListFilter, client_filter_link
from customers.models import Client, ClientUser
from customers.services import (
    CLIENT_FIELDS,
    client_create,
    client_update,
    client_update_check,
    client_user_replace,
    client_user_unlink,
)
from packages.models import BillingMode, PackagePrice, Subscription, SupportPackage
from packages.services import (
    PACKAGE_FIELDS,
    package_create,
    package_prices_check,
    package_update,
    package_update_check,
    subscription_create,
    subscription_create_check,
    subscription_status_check,
    subscription_status_set,
)
from supportbilling.admin_prefill import RelatedPrefillAdmin
from supportbilling.admin_readonly import ReadOnlyAdmin
from supportbilling.periods import period_label, period_parse
from tickets import selectors as ticket_selectors
from tickets.overage import cap_hours_clean
from tickets.services_overage import subscription_overage_set


def _errors_on_form(form: forms.BaseForm, error: ValidationError) -> None:
    """Show a service's refusal next to the field it names (or above the form)."""
    if not hasattr(error, "error_dict"):
        form.add_error(None, error.messages)
        return
    for field, errors in error.message_dict.items():
        form.add_error(field if field in form.fields else None, errors)


class BillingAuditAdmin(RelatedPrefillAdmin):
    """Lists the billing audit of the object on its change page (newest first, one query);
    the templates under admin/<app>/<model>/change_form.html include it."""

    audit_key = ""  # which link of BillingEvent points at this model

    def change_view(self, request, object_id, form_url="", extra_context=None):
        context = dict(extra_context or {})
        if object_id and str(object_id).isdigit():
            events = audit.billing_event_list(**{self.audit_key: int(object_id)})
            context["billing_audit"] = [
                {"event": event, "lines": audit.billing_event_lines(event)} for event in events
            ]
            context["audit_links_items"] = self.audit_key != "item_id"
        return super().change_view(request, object_id, form_url, extra_context=context)


class PeriodListFilter(admin.SimpleListFilter):
    """Months as YYYY-MM, newest first."""

    title = "period"
    parameter_name = "period"

    def lookups(self, request, model_admin):
        return [(period_label(month), period_label(month)) for month in item_periods()]

    def queryset(self, request, queryset):
        if not self.value():
            return queryset
        try:
            return queryset.filter(period=period_parse(self.value()))
        except ValidationError:
            return queryset.none()


class SubscriptionChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Subscription) -> str:
        return f"{obj.client.name}: {obj.package.name} #{obj.pk} ({obj.get_status_display()})"


class AdjustmentForm(forms.Form):
    """The client is chosen first (a GET reloads the form with it): the subscriptions are
    then the client's, and the amount is in the client's currency."""

    client = forms.ModelChoiceField(queryset=Client.objects.order_by("name"))
    subscription = SubscriptionChoiceField(
        queryset=Subscription.objects.select_related("package", "client").order_by("pk"),
        required=False,
        help_text="Optional: the subscription the correction concerns.",
        error_messages={"invalid_choice": "Choose one of the client's subscriptions."},
    )
    period = forms.CharField(max_length=7, help_text="YYYY-MM, open or closed.")
    amount = forms.DecimalField(
        max_digits=14, decimal_places=2, help_text="In the client's currency; negative credits."
    )
    reason = forms.CharField(max_length=300, help_text="Shown on the bill as the description.")

    def __init__(self, *args: Any, client: Client | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.chosen_client = client
        if client is not None:
            subscriptions = cast(forms.ModelChoiceField, self.fields["subscription"])
            subscriptions.queryset = Subscription.objects.select_related(
                "package", "client"
            ).filter(client=client)
            self.fields[
                "amount"
            ].help_text = f"In {client.currency}, {client.name}'s currency; negative for a credit."

    def clean_period(self):
        try:
            return period_parse(self.cleaned_data["period"])
        except ValidationError as exc:
            raise forms.ValidationError(exc.messages) from exc


# What the admin says once items moved, per target status.
_STATUS_DONE: dict[str, str] = {
    ItemStatus.EXPORTED: "marked exported",
    ItemStatus.INVOICED: "marked invoiced",
    ItemStatus.VOID: "marked void",
    ItemStatus.PENDING: "back to pending (export undone)",
}


def status_change_report(modeladmin, request, change: ItemsStatusChange) -> None:
    """Success only when something changed; each refused status with its reason."""
    if change.changed:
        modeladmin.message_user(
            request, f"{change.changed} item(s) {_STATUS_DONE[change.status]}.", messages.SUCCESS
        )
    if change.unchanged:
        modeladmin.message_user(
            request, f"{change.unchanged} item(s) were {change.status} already.", messages.INFO
        )
    for refusal in change.refusals():
        modeladmin.message_user(request, refusal, messages.WARNING)


def _status_action(status: str, label: str):
    def mark(modeladmin, request, queryset):
        change = billable_items_status_set(
            item_ids=queryset.values_list("pk", flat=True), status=status, actor=request.user
        )
        status_change_report(modeladmin, request, change)

    mark.__name__ = f"mark_{status}"
    return admin.action(description=label, permissions=["change"])(mark)


@admin.register(BillableItem)
class BillableItemAdmin(BillingAuditAdmin):
    audit_key = "item_id"
    # Narrow enough for a 1400 px screen beside the filters: the subscription under the
    # client, the kind under the description, numbers on the right, the status as a badge.
    list_display = [
        "id",
        "period_label",
        "client_display",
        "item_display",
        "quantity_display",
        "amount_display",
        "status_display",
    ]
    list_filter = [
        PeriodListFilter,
        "status",
        "kind",
        ClientListFilter,
        "currency",
    ]
    list_select_related = ["client", "subscription__package"]
    search_fields = ["client__name", "description"]
    actions = [
        _status_action(ItemStatus.EXPORTED, "Mark as exported"),
        _status_action(ItemStatus.INVOICED, "Mark as invoiced"),
        _status_action(ItemStatus.VOID, "Void (the row stays)"),
        _status_action(ItemStatus.PENDING, "Undo export (exported back to pending)"),
    ]
    change_list_template = "admin/billing/billableitem/change_list.html"

    def get_list_display(self, request):
        columns = super().get_list_display(request)
        # One month listed: its label on every row is noise, and the room is the status's.
        if request.GET.get(PeriodListFilter.parameter_name):
            return [column for column in columns if column != "period_label"]
        return columns

    @admin.display(description="period", ordering="period")
    def period_label(self, item: BillableItem) -> str:
        return period_label(item.period)

    @admin.display(description="client", ordering="client__name")
    def client_display(self, item: BillableItem) -> str:
        client = client_filter_link(item.client)
        if item.subscription is None:
            return client
        package = item.subscription.package.name
        return format_html(
            '{}<span class="sbt-sub">{} #{}</span>', client, package, item.subscription_id
        )

    @admin.display(description="item", ordering="description")
    def item_display(self, item: BillableItem) -> str:
        return format_html(
            '{}<span class="sbt-sub">{}</span>', item.description, item.get_kind_display()
        )

    @admin.display(description="quantity \u00d7 price", ordering="quantity")
    def quantity_display(self, item: BillableItem) -> str:
        unit = " h" if item.unit == ItemUnit.HOURS else ""
        return f"{item.quantity}{unit} \u00d7 {item.unit_price.amount}"

    @admin.display(description="amount", ordering="amount")
    def amount_display(self, item: BillableItem) -> str:
        return f"{item.amount.amount} {item.currency}"

    @admin.display(description="status", ordering="status")
    def status_display(self, item: BillableItem) -> str:
        return format_html(
            '<span class="sbt-status sbt-status-{}">{}</span>',
            item.status,
            item.get_status_display(),
        )

    # Items are written by the rollup and by adjustments, changed by actions, never deleted.
    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in BillableItem._meta.fields]

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    def changelist_view(self, request, extra_context=None):
        response = super().changelist_view(request, extra_context)
        changelist = getattr(response, "context_data", {}).get("cl")
        if changelist is not None:
            query = request.GET.copy()
            query.pop(PAGE_VAR, None)
            response.context_data.update(
                currency_totals=billable_item_totals(items=changelist.queryset),
                period_filter=request.GET.get("period", ""),
                # The exports take the list's own query string: what is shown is exported.
                export_query=f"?{query.urlencode()}" if query else "",
                listed_count=changelist.result_count,
                pending_count=changelist.queryset.filter(status=ItemStatus.PENDING).count(),
            )
        return response

    def get_urls(self):
        own = [
            path(
                "adjustment/",
                self.admin_site.admin_view(self.adjustment_view),
                name="billing_adjustment_add",
            ),
            path("export/", self.admin_site.admin_view(self.export_view), name="billing_export"),
            path("exports/", self.admin_site.admin_view(export_jobs), name="billing_export_jobs"),
            path(
                "exports/<int:job_id>/",
                self.admin_site.admin_view(export_job),
                name="billing_export_job",
            ),
            path(
                "exports/<int:job_id>/download/",
                self.admin_site.admin_view(export_job_download),
                name="billing_export_job_download",
            ),
        ]
        return own + super().get_urls()

    # --- finance pages ------------------------------------------------------------------

    def _require(self, request: HttpRequest, perm: str) -> None:
        if not request.user.has_perm(perm):
            raise PermissionDenied

    def adjustment_view(self, request: HttpRequest) -> HttpResponse:
        self._require(request, "billing.add_billableitem")
        source = request.POST if request.method == "POST" else request.GET
        client_id = source.get("client", "")
        client = Client.objects.filter(pk=client_id).first() if client_id.isdigit() else None
        initial = {key: request.GET[key] for key in ("client", "period") if request.GET.get(key)}
        form = AdjustmentForm(request.POST or None, initial=initial, client=client)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                item = adjustment_create(
                    client=data["client"],
                    month=data["period"],
                    amount=data["amount"],
                    reason=data["reason"],
                    subscription=data["subscription"],
                    actor=request.user,
                )
            except ValidationError as exc:
                for field, errors in exc.message_dict.items():
                    field = {"description": "reason"}.get(field, field)
                    form.add_error(field if field in form.fields else None, errors)
            else:
                self.message_user(
                    request,
                    f"Adjustment #{item.pk} of {item.amount} for {item.client.name} added.",
                    messages.SUCCESS,
                )
                # Back to the list, on the month the adjustment was added to.
                changelist = reverse("admin:billing_billableitem_changelist")
                return HttpResponseRedirect(f"{changelist}?period={period_label(item.period)}")
        context = {
            **self.admin_site.each_context(request),
            "title": "Add an adjustment",
            "opts": self.model._meta,
            "form": form,
            "client": client,
            "clients": Client.objects.order_by("name"),
            "period": request.GET.get("period", ""),
        }
        return TemplateResponse(request, "admin/billing/adjustment_form.html", context)

    def _listed_items(self, request: HttpRequest) -> QuerySet[BillableItem]:
        """The items the list shows for the query string of ``request``: every filter and the
        search, all pages. Raises IncorrectLookupParameters for a query the list refuses."""
        query = request.GET.copy()
        query.pop("format", None)
        listed = copy.copy(request)
        cast(Any, listed).GET = query  # a mutable copy where Django's type says immutable
        return self.get_changelist_instance(listed).get_queryset(listed)

    def export_view(self, request: HttpRequest) -> HttpResponseBase:
        """GET: the items the list shows, as CSV or XLSX. POST: the pending ones among them,
        marked exported and exported in the same step."""
        self._require(request, "billing.view_billableitem")
        back = reverse("admin:billing_billableitem_changelist")
        query = request.GET.copy()
        file_format = request.GET.get("format", "csv")
        query.pop("format", None)
        period = request.GET.get("period", "")
        try:
            month = period_parse(period) if period else None
            items = self._listed_items(request)
        except ValidationError as exc:
            self.message_user(request, "Choose a period to export: " + " ".join(exc.messages))
            return HttpResponseRedirect(back)
        except IncorrectLookupParameters:
            self.message_user(request, "The list cannot be filtered that way.", messages.ERROR)
            return HttpResponseRedirect(back)
        name = "filtered" if set(query) - {"period", "o", "p"} else ""
        if request.method == "POST":
            self._require(request, "billing.change_billableitem")
            change = billable_items_status_set(
                item_ids=items.filter(status=ItemStatus.PENDING).values_list("pk", flat=True),
                status=ItemStatus.EXPORTED,
                actor=request.user,
            )
            if not change.changed:
                if change.held:
                    for refusal in change.refusals():
                        self.message_user(request, "Nothing exported: " + refusal, messages.ERROR)
                else:
                    self.message_user(
                        request, "Nothing to export: none of the listed items is pending."
                    )
                return HttpResponseRedirect(f"{back}?{query.urlencode()}")
            status_change_report(self, request, change)
            items = BillableItem.objects.filter(pk__in=change.changed_ids)
            name = f"exported-{timezone.localtime():%Y%m%d-%H%M%S}"
        if file_format == "xlsx":
            # Never written inside a request: an export job writes the month in the background.
            jobs = reverse("admin:billing_export_jobs")
            if month is not None:
                jobs += f"?period={period_label(month)}&format=xlsx"
            return HttpResponseRedirect(jobs)
        return exports.billable_items_csv_response(month=month, items=items, name=name)


class MailDeliveryInline(admin.TabularInline):
    """Who a record's e-mail reached, read-only: the sending service alone writes deliveries.
    Part of the record: whoever may see it (``view_permission``) sees where it went."""

    view_permission = ""
    fields = readonly_fields = (
        "address",
        "status",
        "attempts",
        "last_error",
        "next_attempt_at",
        "sent_at",
    )
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_view_permission(self, request, obj=None):
        return request.user.has_perm(self.view_permission)


class UsageAlertDeliveryInline(MailDeliveryInline):
    model = UsageAlertDelivery
    view_permission = "billing.view_usagealert"


@admin.register(UsageAlert)
class UsageAlertAdmin(ReadOnlyAdmin):
    """Read-only: an alert is the record that its e-mail went out; editing or deleting it would
    send the e-mail again at the next check."""

    list_display = [
        "subscription",
        "period",
        "threshold",
        "used_hours",
        "included_hours",
        "covered_by",
        "sent_at",
    ]
    list_filter = ["threshold", "period"]
    list_select_related = ["subscription__package", "covered_by"]
    readonly_fields = ["used_hours", "included_hours", "covered_by", "created_at", "sent_at"]
    inlines = [UsageAlertDeliveryInline]


class StatementDeliveryInline(MailDeliveryInline):
    model = StatementDelivery
    view_permission = "billing.view_statement"


@admin.register(Statement)
class StatementAdmin(ReadOnlyAdmin):
    """The monthly statement PDFs, every revision, for finance and administrators (operators
    do not see money). Read-only: a statement is rendered once and never changed; a
    correction is an adjustment, which adds the next revision (docs/statements.md)."""

    list_display = [
        "client",
        "subscription",
        "month",
        "revision",
        "created_at",
        "mailed_at",
        "download",
    ]
    list_filter = ["month"]
    list_select_related = ["client", "subscription__package"]
    search_fields = ["client__name"]
    date_hierarchy = "month"
    fields = readonly_fields = (
        "client",
        "subscription",
        "month",
        "revision",
        "download",
        "checksum",
        "size",
        "changes_list",
        "created_at",
        "mailed_at",
    )
    inlines = [StatementDeliveryInline]

    def get_urls(self):
        own = [
            path(
                "<int:statement_id>/download/",
                self.admin_site.admin_view(self.download_view),
                name="billing_statement_download",
            ),
        ]
        return own + super().get_urls()

    @admin.display(description="PDF")
    def download(self, obj: Statement) -> str:
        url = reverse("admin:billing_statement_download", args=[obj.pk])
        return format_html('<a href="{}" download>{}</a>', url, obj.filename)

    @admin.display(description="Changes since the previous revision")
    def changes_list(self, obj: Statement) -> str:
        if not obj.changes:
            return "—"
        return format_html_join("\n", "<p>{}</p>", ((change,) for change in obj.changes))

    def download_view(self, request: HttpRequest, statement_id: int) -> FileResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        try:
            statement = Statement.objects.get(pk=statement_id)
        except Statement.DoesNotExist as exc:
            raise Http404("No such statement.") from exc
        return exports.statement_pdf_response(statement)


class SubscriptionAdminForm(forms.ModelForm):
    """Adds and status changes go through the billing services; this form only asks them
    whether they would refuse, so the message shows next to the fields."""

    class Meta:
        model = Subscription
        fields = [
            "client",
            "package",
            "start_date",
            "topup_of",
            "expires_on",
            "status",
            "overage_policy",
            "overage_cap_hours",
        ]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if "overage_policy" in self.fields:  # left out: unchanged
            self.fields["overage_policy"].required = False

    def clean(self):
        data = super().clean()
        try:
            if self.instance.pk is not None and data.get("overage_cap_hours") is not None:
                data["overage_cap_hours"] = cap_hours_clean(data["overage_cap_hours"])
            if self.instance.pk is None:
                if data.get("client") and data.get("package") and data.get("start_date"):
                    subscription_create_check(
                        client=data["client"],
                        package=data["package"],
                        start_date=data["start_date"],
                        topup_of=data.get("topup_of"),
                        expires_on=data.get("expires_on"),
                    )
            elif data.get("status"):
                current = Subscription.objects.get(pk=self.instance.pk)
                subscription_status_check(subscription=current, status=data["status"])
        except ValidationError as exc:
            raise forms.ValidationError(exc.messages) from exc
        return data


@admin.register(Subscription)
class SubscriptionAdmin(BillingAuditAdmin):
    audit_key = "subscription_id"
    form = SubscriptionAdminForm
    list_display = ["id", "client", "package", "status", "start_date", "end_date"]
    list_filter = ["status", "package__billing_mode", "package"]
    list_select_related = ["client", "package"]
    search_fields = ["client__name", "package__name", "id"]
    autocomplete_fields = ["client", "package", "topup_of"]
    date_hierarchy = "start_date"

    def change_view(self, request, object_id, form_url="", extra_context=None):
        # The subscription's own trail (sales, status changes, time logged) is the helpdesk's.
        context = dict(extra_context or {})
        if object_id and str(object_id).isdigit():
            context["audit_trail"] = ticket_selectors.subscription_audit_trail(
                subscription_id=int(object_id)
            )
            context["show_ticket"] = True
        return super().change_view(request, object_id, form_url, extra_context=context)

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["client", "package", "start_date", "topup_of", "expires_on"]
        fields = ["client", "package", "bucket_hours", "start_date", "end_date", "status"]
        if obj.topup_of_id is not None:
            fields += ["topup_of", "expires_on"]
        if obj.package.billing_mode == BillingMode.RECURRING:
            fields += ["overage_policy", "overage_cap_hours", "client_cap_hours"]
        return fields

    def get_readonly_fields(self, request, obj=None):
        return (
            []
            if obj is None
            else [
                "client",
                "package",
                "bucket_hours",
                "start_date",
                "end_date",
                "client_cap_hours",
                "topup_of",
                "expires_on",
            ]
        )

    def has_delete_permission(self, request, obj=None):  # billed history keeps its rows
        return False

    def save_model(self, request, obj, form, change):
        if change:
            with transaction.atomic():
                subscription_status_set(
                    subscription=Subscription.objects.get(pk=obj.pk),
                    status=form.cleaned_data["status"],
                    actor=request.user,
                )
                if form.cleaned_data.get("overage_policy"):
                    subscription_overage_set(
                        subscription=obj,
                        policy=form.cleaned_data["overage_policy"],
                        cap_hours=form.cleaned_data.get("overage_cap_hours"),
                        actor=request.user,
                    )
            return
        created = subscription_create(
            client=form.cleaned_data["client"],
            package=form.cleaned_data["package"],
            start_date=form.cleaned_data["start_date"],
            actor=request.user,
            topup_of=form.cleaned_data.get("topup_of"),
            expires_on=form.cleaned_data.get("expires_on"),
        )
        obj.pk, obj.status = created.pk, created.status
        obj._state.adding = False


# --- Clients -----------------------------------------------------------------------------------


class ClientAdminForm(forms.ModelForm):
    """Saved by client_create / client_update; asks client_update_check first so a refusal
    (a currency change under existing subscriptions) shows on the form."""

    class Meta:
        model = Client
        fields = list(CLIENT_FIELDS)

    def clean(self):
        data = super().clean()
        if self.instance.pk is not None:
            try:
                client_update_check(client=Client.objects.get(pk=self.instance.pk), fields=data)
            except ValidationError as exc:
                _errors_on_form(self, exc)
        return data


class ClientUserInline(admin.TabularInline):
    model = ClientUser
    extra = 0
    autocomplete_fields = ["user"]


def _client_fields(form: forms.ModelForm) -> dict[str, Any]:
    return {key: form.cleaned_data[key] for key in CLIENT_FIELDS}


@admin.register(Client)
class ClientAdmin(BillingAuditAdmin):
    audit_key = "client_id"
    form = ClientAdminForm
    list_display = ["name", "email", "currency", "active", "created_at"]
    list_filter = ["active", "currency"]
    search_fields = ["name", "email"]
    inlines = [ClientUserInline]

    def save_model(self, request, obj, form, change):
        if change:
            client_update(client=obj, fields=_client_fields(form), actor=request.user)
            return
        created = client_create(fields=_client_fields(form), actor=request.user)
        obj.pk, obj.created_at = created.pk, created.created_at
        obj._state.adding = False

    def save_formset(self, request, form, formset, change):
        """Portal logins are added, replaced and removed through the services, which record
        them in the client's billing audit."""
        memberships = formset.save(commit=False)
        for removed in formset.deleted_objects:
            client_user_unlink(client=form.instance, user=removed.user, actor=request.user)
        for membership in memberships:
            # a row with a pk now names another user: it replaces that login
            client_user_replace(
                replaced_id=membership.pk,
                client=form.instance,
                user=membership.user,
                actor=request.user,
            )


@admin.register(ClientUser)
class ClientUserAdmin(RelatedPrefillAdmin):
    list_display = ["user", "client"]
    list_select_related = ["user", "client"]
    search_fields = ["user__username", "user__email", "client__name"]
    autocomplete_fields = ["user", "client"]

    def save_model(self, request, obj, form, change):
        if change and not form.changed_data:
            return
        client_user_replace(
            replaced_id=obj.pk if change else None,
            client=obj.client,
            user=obj.user,
            actor=request.user,
        )
        obj.pk = ClientUser.objects.get(user=obj.user).pk
        obj._state.adding = False

    def delete_model(self, request, obj):
        client_user_unlink(client=obj.client, user=obj.user, actor=request.user)

    def delete_queryset(self, request, queryset):
        for membership in queryset.select_related("user", "client"):
            self.delete_model(request, membership)


# --- Packages and their prices -----------------------------------------------------------------


class SupportPackageAdminForm(forms.ModelForm):
    """Saved with its prices by package_create / package_update; asks package_update_check
    first so a refusal (the billing mode of a package with subscriptions) shows on the form."""

    # The billing policy: left out of a post (a form of before the policy), it stays as it is.
    POLICY_FIELDS = ("billing_increment", "billing_rounding", "billing_minimum")

    class Meta:
        model = SupportPackage
        fields = list(PACKAGE_FIELDS)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name in self.POLICY_FIELDS:
            if name in self.fields:  # a view-only page has none
                self.fields[name].required = False

    def clean(self):
        data = super().clean()
        for name in self.POLICY_FIELDS:
            if name in self.fields and data.get(name) in (None, "") and name not in self.errors:
                data[name] = getattr(self.instance, name)
        if self.instance.pk is not None:
            try:
                package_update_check(
                    package=SupportPackage.objects.get(pk=self.instance.pk), fields=data
                )
            except ValidationError as exc:
                _errors_on_form(self, exc)
        return data


class PackagePriceFormSet(BaseInlineFormSet):
    """The price rows as the service takes them; package_prices_check refuses what the
    service would (a currency a live subscription is billed in must keep its price)."""

    def prices(self) -> list[dict[str, Any]]:
        prices = []
        for form in self.forms:
            data = getattr(form, "cleaned_data", None)
            if not data or data.get("DELETE"):
                continue
            fee, hourly_rate = data.get("fee"), data.get("hourly_rate")
            if fee is None or hourly_rate is None:
                continue
            prices.append(
                {
                    "currency": fee.currency.code,
                    "fee": fee.amount,
                    "hourly_rate": hourly_rate.amount,
                    "hourly_rate_currency": hourly_rate.currency.code,
                }
            )
        return prices

    def clean(self):
        super().clean()
        if any(self.errors):
            return
        prices = self.prices()
        if any(price.pop("hourly_rate_currency") != price["currency"] for price in prices):
            raise forms.ValidationError("A price's fee and hourly rate are in one currency.")
        try:
            package_prices_check(package=self.instance, prices=prices)
        except ValidationError as exc:
            raise forms.ValidationError(exc.messages) from exc


class PackagePriceInline(admin.TabularInline):
    model = PackagePrice
    formset = PackagePriceFormSet
    extra = 1


@admin.register(SupportPackage)
class SupportPackageAdmin(BillingAuditAdmin):
    audit_key = "package_id"
    form = SupportPackageAdminForm
    list_display = list(PACKAGE_FIELDS)
    list_filter = ["billing_mode", "active", "invoice_action"]
    search_fields = ["name"]
    inlines = [PackagePriceInline]

    def save_model(self, request, obj, form, change):
        """Nothing yet: the package is written with its prices in save_related."""

    def save_related(self, request, form, formsets, change):
        price_formset = next(fs for fs in formsets if isinstance(fs, PackagePriceFormSet))
        # Only for the admin's change message; the service writes the prices.
        price_formset.save(commit=False)
        prices = [
            {key: price[key] for key in ("currency", "fee", "hourly_rate")}
            for price in price_formset.prices()
        ]
        fields = {key: form.cleaned_data[key] for key in PACKAGE_FIELDS}
        if change:
            package_update(package=form.instance, fields=fields, prices=prices, actor=request.user)
            return
        created = package_create(fields=fields, prices=prices, actor=request.user)
        form.instance.pk = created.pk
        form.instance._state.adding = False
