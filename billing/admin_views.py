"""Billing's admin pages that are not the items' list (billing/admin.py): the periods page,
the admin of the month model (packages.models.BillingPeriod, named once here as
``PERIOD_MODEL``), registered by billing because closing a month is billing's work, so the
admin index's "Billing periods" link leads to it; and finance's export jobs, routed by
BillableItemAdmin (``exports/...``)."""

import dataclasses
import datetime as dt
from collections.abc import Callable

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.auth import get_permission_codename
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.views.decorators.http import require_POST

from billing import audit, exports
from billing.models import (
    BillableItem,
    BillingEvent,
    Dispute,
    DisputeStatus,
    ExportFormat,
    ExportJob,
    ExportStatus,
)
from billing.selectors.disputes import dispute_counts
from billing.selectors.exports import (
    RECENT_EXPORT_JOBS,
    export_job_visible_to,
    export_jobs_visible_to,
)
from billing.selectors.finance import periods_overview
from billing.selectors.rollup import period_close_preview
from billing.services.disputes import DisputeDecision, dispute_resolve, period_release
from billing.services.exports import export_job_create
from billing.services.rollup import period_close, period_close_check
from packages.models import BillingPeriod, PeriodStatus
from supportbilling.admin_readonly import ReadOnlyAdmin
from supportbilling.periods import period_label, period_parse
from supportbilling.roles import is_administrator

EXPORT_JOB_REFRESH_SECONDS = 2  # the job page reloads itself this often while the job runs


# --- The periods page ---------------------------------------------------------------------------

# What interface apps above billing add to each month of the periods page (billing may not
# import them, tests/test_layers.py): each provider, registered in its AppConfig.ready with
# ``period_lines_register``, takes the months shown and returns ``{month: [(text, url)]}``
# (url may be ""). Shown to those who see the items.
PeriodLinesProvider = Callable[[list[dt.date]], dict[dt.date, list[tuple[str, str]]]]
PERIOD_LINES: list[PeriodLinesProvider] = []


def period_lines_register(provider: PeriodLinesProvider) -> None:
    if provider not in PERIOD_LINES:
        PERIOD_LINES.append(provider)


def _with_extra_lines(periods: list) -> list:
    months = [period.month for period in periods]
    lines: dict[dt.date, list[tuple[str, str]]] = {}
    for provider in PERIOD_LINES:
        for month, extra in provider(months).items():
            lines.setdefault(month, []).extend(extra)
    return [
        dataclasses.replace(period, extra_lines=tuple(lines[period.month]))
        if lines.get(period.month)
        else period
        for period in periods
    ]


# The one place billing's admin names the month model: the periods page is its admin.
PERIOD_MODEL = BillingPeriod


def _perm(action: str) -> str:
    opts = PERIOD_MODEL._meta
    return f"{opts.app_label}.{get_permission_codename(action, opts)}"


@admin.register(PERIOD_MODEL)
class BillingPeriodAdmin(ReadOnlyAdmin):
    """The periods page: every month with its state, who closed it and when, its items per
    status and currency, and the next step; closing asks for a confirmation that states what
    will be written. Months are closed by the rollup only and never reopened or deleted (the
    database refuses it too)."""

    list_display = ["month", "status", "closed_at", "closed_by"]

    def get_urls(self):
        own = [
            # The admin index's link (the changelist) is the periods page.
            path("", self.admin_site.admin_view(self.changelist_view), name="billing_periods"),
            path(
                "<str:period>/close/",
                self.admin_site.admin_view(self.close_view),
                name="billing_period_close",
            ),
            path(
                "<str:period>/release/",
                self.admin_site.admin_view(require_POST(self.release_view)),
                name="billing_period_release",
            ),
        ]
        return own + super().get_urls()

    def changelist_view(self, request, extra_context=None):
        return self._periods_page(request)

    def _periods_page(self, request: HttpRequest, status: int = 200) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        show_items = request.user.has_perm("billing.view_billableitem")
        periods = periods_overview()
        context = {
            **self.admin_site.each_context(request),
            "title": "Billing periods",
            "opts": self.opts,
            "periods": _with_extra_lines(periods) if show_items else periods,
            "show_items": show_items,
            "show_disputes": request.user.has_perm("billing.view_dispute"),
            "can_close": request.user.has_perm(_perm("change")),
        }
        return TemplateResponse(request, "admin/billing/periods.html", context, status=status)

    def close_view(self, request: HttpRequest, period: str) -> HttpResponse:
        """GET: what closing the month will write, and a button; POST: close it."""
        if not request.user.has_perm(_perm("change")):
            raise PermissionDenied
        try:
            month = period_parse(period)
        except ValidationError as exc:
            # An address no button of the periods page leads to: the page, with the reason.
            self.message_user(request, " ".join(exc.messages), messages.ERROR)
            return self._periods_page(request, status=400)
        if request.method != "POST":
            return self._confirm_page(request, month)
        try:
            result = period_close(month=month, actor=request.user)
        except ValidationError as exc:
            self.message_user(request, " ".join(exc.messages), messages.ERROR)
        else:
            if result.already_closed:
                self.message_user(request, f"{result.period} was already closed.", messages.INFO)
            else:
                self.message_user(
                    request,
                    f"{result.period} closed: {result.items_created} billable item(s) written.",
                    messages.SUCCESS,
                )
        return HttpResponseRedirect(reverse("admin:billing_periods"))

    def release_view(self, request: HttpRequest, period: str) -> HttpResponse:
        """POST: end the review window of a closed month now (audited)."""
        if not request.user.has_perm(_perm("change")):
            raise PermissionDenied
        try:
            result = period_release(month=period_parse(period), actor=request.user)
        except ValidationError as exc:
            self.message_user(request, " ".join(exc.messages), messages.ERROR)
        else:
            self.message_user(
                request,
                f"{result.period} released: its items are exportable, except those an open "
                "dispute holds.",
                messages.SUCCESS,
            )
        return HttpResponseRedirect(reverse("admin:billing_periods"))

    def _confirm_page(self, request: HttpRequest, month: dt.date) -> HttpResponse:
        refusal, preview = "", None
        closed = PERIOD_MODEL.objects.filter(month=month, status=PeriodStatus.CLOSED).exists()
        try:
            period_close_check(month=month)
            if not closed:
                # Refuses too: an amount no item holds (the close would refuse it).
                preview = period_close_preview(month=month, batch_size=settings.ROLLUP_BATCH_SIZE)
        except ValidationError as exc:
            refusal = " ".join(exc.messages)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Close {period_label(month)}?",
            "opts": self.opts,
            "period": period_label(month),
            "closed": closed,
            "refusal": refusal,
            "preview": preview,
        }
        return TemplateResponse(request, "admin/billing/period_close.html", context)


# --- export jobs: finance's XLSX and large CSV files, written by a Celery task ---------------


class ExportJobForm(forms.Form):
    period = forms.CharField(max_length=7, help_text="YYYY-MM")
    format = forms.ChoiceField(choices=ExportFormat.choices, initial=ExportFormat.XLSX)


def _export_context(request: HttpRequest, title: str) -> dict:
    return {
        **admin.site.each_context(request),
        "title": title,
        "opts": BillableItem._meta,
    }


def export_jobs(request: HttpRequest) -> HttpResponse:
    """The recent export jobs the user may see, and the form that starts one (prefilled from
    ``?period=&format=``, as the item list's export links send them)."""
    if not request.user.has_perm("billing.view_exportjob"):
        raise PermissionDenied
    can_start = request.user.has_perm("billing.add_exportjob")
    form = ExportJobForm(request.POST if request.method == "POST" else None, initial=request.GET)
    status = 200
    if request.method == "POST":
        if not can_start:
            raise PermissionDenied
        if form.is_valid():
            try:
                job = export_job_create(requested_by=request.user, **form.cleaned_data)
            except ValidationError as error:  # the service names the field it refuses
                for field, errors in error.message_dict.items():
                    form.add_error(field, errors)
            else:
                return HttpResponseRedirect(reverse("admin:billing_export_job", args=[job.pk]))
        status = 400
    context = {
        **_export_context(request, "Export jobs"),
        "form": form,
        "can_start": can_start,
        "jobs": export_jobs_visible_to(request.user)[:RECENT_EXPORT_JOBS],
        "show_requester": is_administrator(request.user),
    }
    return TemplateResponse(request, "admin/billing/export_jobs.html", context, status=status)


def _visible_job(request: HttpRequest, job_id: int) -> ExportJob:
    if not request.user.has_perm("billing.view_exportjob"):
        raise PermissionDenied
    job = export_job_visible_to(request.user, job_id=job_id)
    if job is None:
        raise Http404("No such export job.")
    return job


def export_job(request: HttpRequest, job_id: int) -> HttpResponse:
    """One job: its progress (the page reloads itself while the job runs), then the download
    link, or the reason it failed."""
    job = _visible_job(request, job_id)
    context = {
        **_export_context(request, f"Export of {period_label(job.period)} ({job.format})"),
        "job": job,
        "running": job.status in (ExportStatus.QUEUED, ExportStatus.RUNNING),
        "refresh_seconds": EXPORT_JOB_REFRESH_SECONDS,
        "keep_days": settings.EXPORT_JOB_KEEP_DAYS,
    }
    return TemplateResponse(request, "admin/billing/export_job.html", context)


def export_job_download(request: HttpRequest, job_id: int) -> HttpResponseBase:
    job = _visible_job(request, job_id)
    try:
        return exports.export_job_download(job)
    except exports.ExportJobFileUnavailable as exc:
        # A link from an earlier visit: the job page says where it stands.
        messages.warning(request, str(exc))
        return HttpResponseRedirect(reverse("admin:billing_export_job", args=[job.pk]))


# --- Disputes: the clients' objections in the review window, resolved by finance -----------


class DisputeMonthFilter(admin.SimpleListFilter):
    title = "month"
    parameter_name = "month"

    def lookups(self, request, model_admin):
        months = Dispute.objects.order_by("-month").values_list("month", flat=True).distinct()
        return [(period_label(month), period_label(month)) for month in months]

    def queryset(self, request, queryset):
        if not self.value():
            return queryset
        try:
            return queryset.filter(month=period_parse(self.value()))
        except ValidationError:
            return queryset.none()


class DisputeResolveForm(forms.Form):
    decision = forms.ChoiceField(choices=DisputeDecision.CHOICES, widget=forms.RadioSelect)
    amount = forms.DecimalField(
        max_digits=14,
        decimal_places=2,
        required=False,
        help_text="For an adjustment: in the client's currency, negative for a credit.",
    )
    answer = forms.CharField(
        max_length=2000, widget=forms.Textarea(attrs={"rows": 4}), help_text="The client reads it."
    )


DISPUTE_FIELDS = (
    "client",
    "subscription",
    "month",
    "time_entry",
    "item",
    "reason",
    "status",
    "answer",
    "adjustment",
    "opened_by",
    "opened_at",
    "resolved_by",
    "resolved_at",
)


@admin.register(Dispute)
class DisputeAdmin(admin.ModelAdmin):
    """The clients' disputes: operators read them, finance and administrators resolve them
    (an adjustment, or a rejection with an answer) on the resolve page."""

    change_list_template = "admin/billing/dispute/change_list.html"
    change_form_template = "admin/billing/dispute/change_form.html"
    list_display = [
        "id",
        "month_label",
        "client",
        "object_display",
        "status",
        "opened_at",
        "resolved_at",
    ]
    list_filter = ["status", DisputeMonthFilter, ("client", admin.RelatedOnlyFieldListFilter)]
    list_select_related = ["client"]
    search_fields = ["client__name", "reason", "answer"]
    fields = readonly_fields = DISPUTE_FIELDS

    @admin.display(description="month", ordering="month")
    def month_label(self, dispute: Dispute) -> str:
        return period_label(dispute.month)

    @admin.display(description="about")
    def object_display(self, dispute: Dispute) -> str:
        return dispute.object_label

    # Opened by clients in the portal or the API, never deleted: the record of the review.
    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    def get_urls(self):
        own = [
            path(
                "<int:dispute_id>/resolve/",
                self.admin_site.admin_view(self.resolve_view),
                name="billing_dispute_resolve",
            )
        ]
        return own + super().get_urls()

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "dispute_counts": dispute_counts()}
        return super().changelist_view(request, extra_context)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        context = dict(extra_context or {})
        if str(object_id).isdigit():
            events = BillingEvent.objects.filter(detail__dispute=int(object_id)).order_by(
                "-created_at", "-id"
            )
            context["billing_audit"] = [
                {"event": event, "lines": audit.billing_event_lines(event)} for event in events
            ]
            context["can_resolve"] = self.has_change_permission(request)
        # Nothing on the page is edited: decisions are taken on the resolve page.
        context.update(
            show_save=False, show_save_and_continue=False, show_save_and_add_another=False
        )
        return super().change_view(request, object_id, form_url, extra_context=context)

    def save_model(self, request, obj, form, change):
        """Nothing: a dispute changes only through dispute_resolve (the resolve page)."""

    def resolve_view(self, request: HttpRequest, dispute_id: int) -> HttpResponse:
        """GET: the dispute and the decision form; POST: resolve it (finance, administrators)."""
        if not self.has_change_permission(request):
            raise PermissionDenied
        dispute = (
            Dispute.objects.select_related("client", "subscription__package", "item", "time_entry")
            .filter(pk=dispute_id)
            .first()
        )
        if dispute is None:
            raise Http404("No such dispute.")
        form = DisputeResolveForm(request.POST if request.method == "POST" else None)
        status = 200
        if request.method == "POST":
            if form.is_valid():
                try:
                    dispute = dispute_resolve(
                        dispute=dispute,
                        decision=form.cleaned_data["decision"],
                        answer=form.cleaned_data["answer"],
                        amount=form.cleaned_data["amount"],
                        actor=request.user,
                    )
                except ValidationError as exc:
                    if hasattr(exc, "error_dict"):
                        for field, errors in exc.message_dict.items():
                            form.add_error(field if field in form.fields else None, errors)
                    else:
                        form.add_error(None, exc.messages)
                else:
                    self.message_user(
                        request,
                        format_html(
                            "Dispute #{} {}.", dispute.pk, dispute.get_status_display().lower()
                        ),
                        messages.SUCCESS,
                    )
                    return HttpResponseRedirect(
                        reverse("admin:billing_dispute_changelist") + "?status__exact=open"
                    )
            status = 400
        context = {
            **self.admin_site.each_context(request),
            "title": f"Resolve dispute #{dispute.pk}",
            "opts": self.opts,
            "dispute": dispute,
            "form": form,
            "resolved": dispute.status != DisputeStatus.OPEN,
        }
        return TemplateResponse(
            request, "admin/billing/dispute/resolve.html", context, status=status
        )
