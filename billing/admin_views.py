"""Billing's admin pages that are not the items' list (billing/admin.py): the periods page,
the admin of the month model (packages.models.BillingPeriod, named once here as
``PERIOD_MODEL``), registered by billing because closing a month is billing's work, so the
admin index's "Billing periods" link leads to it; and finance's export jobs, routed by
BillableItemAdmin (``exports/...``)."""

import datetime as dt

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.auth import get_permission_codename
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse

from billing.exports import export_job_file_response
from billing.models import BillableItem, ExportFormat, ExportJob, ExportStatus
from billing.selectors.exports import (
    RECENT_EXPORT_JOBS,
    export_job_visible_to,
    export_jobs_visible_to,
)
from billing.selectors.finance import periods_overview
from billing.selectors.rollup import period_close_preview
from billing.services.exports import export_job_create
from billing.services.rollup import period_close, period_close_check
from packages.models import BillingPeriod, PeriodStatus
from supportbilling.admin_readonly import ReadOnlyAdmin
from supportbilling.periods import period_label, period_parse
from supportbilling.roles import is_administrator

EXPORT_JOB_REFRESH_SECONDS = 2  # the job page reloads itself this often while the job runs


# --- The periods page ---------------------------------------------------------------------------

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
        ]
        return own + super().get_urls()

    def changelist_view(self, request, extra_context=None):
        return self._periods_page(request)

    def _periods_page(self, request: HttpRequest, status: int = 200) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        context = {
            **self.admin_site.each_context(request),
            "title": "Billing periods",
            "opts": self.opts,
            "periods": periods_overview(),
            "show_items": request.user.has_perm("billing.view_billableitem"),
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

    def _confirm_page(self, request: HttpRequest, month: dt.date) -> HttpResponse:
        refusal = ""
        try:
            period_close_check(month=month)
        except ValidationError as exc:
            refusal = " ".join(exc.messages)
        closed = PERIOD_MODEL.objects.filter(month=month, status=PeriodStatus.CLOSED).exists()
        context = {
            **self.admin_site.each_context(request),
            "title": f"Close {period_label(month)}?",
            "opts": self.opts,
            "period": period_label(month),
            "closed": closed,
            "refusal": refusal,
            "preview": None
            if refusal or closed
            else period_close_preview(month=month, batch_size=settings.ROLLUP_BATCH_SIZE),
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
    }
    return TemplateResponse(request, "admin/billing/export_job.html", context)


def export_job_download(request: HttpRequest, job_id: int) -> HttpResponseBase:
    job = _visible_job(request, job_id)
    if job.status != ExportStatus.DONE or not job.file:
        # A link from an earlier visit: the job page says where it stands.
        messages.warning(request, "The file is not ready: it can be downloaded once it is done.")
        return HttpResponseRedirect(reverse("admin:billing_export_job", args=[job.pk]))
    return export_job_file_response(job)
