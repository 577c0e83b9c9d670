"""Admin pages of billing that are not a model's own: the operator's "add a support service
for the client" on a ticket's admin page, and finance's export jobs.

The service form lives in billing because subscriptions are created by
``billing.services.subscription_create`` and tickets cannot import billing; the ticket page's
form posts here by URL name (``admin:billing_ticket_service_add``), and refusals are shown on
the ticket page again. The export job pages are routed by BillableItemAdmin (``exports/...``).
"""

from typing import cast

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse

from billing.exports import export_job_file_response
from billing.models import BillableItem, ExportFormat, ExportJob, ExportStatus
from billing.selectors.exports import (
    RECENT_EXPORT_JOBS,
    export_job_visible_to,
    export_jobs_visible_to,
)
from billing.services.exports import export_job_create
from billing.services.subscriptions import subscription_create
from packages.models import SupportPackage
from supportbilling.periods import period_label
from supportbilling.roles import is_administrator
from tickets.admin import TicketAdmin
from tickets.forms import ServiceAddForm
from tickets.models import Ticket

EXPORT_JOB_REFRESH_SECONDS = 2  # the job page reloads itself this often while the job runs


def ticket_service_add(request: HttpRequest, ticket_id: int) -> HttpResponse:
    if not (
        request.user.has_perm("packages.add_subscription")
        and request.user.has_perm("tickets.add_timeentry")
    ):
        raise PermissionDenied
    ticket = get_object_or_404(Ticket.objects.select_related("client"), pk=ticket_id)
    # The site's registry is typed by model only; Ticket's is tickets.admin.TicketAdmin.
    ticket_admin = cast(TicketAdmin, admin.site.get_model_admin(Ticket))
    form = ServiceAddForm(request.POST)
    if not form.is_valid():
        return ticket_admin.workspace_refuse(request, ticket, None, service_form=form)
    package = SupportPackage.objects.filter(pk=form.cleaned_data["package"]).first()
    try:
        if package is None:
            raise ValidationError("Choose one of the packages offered.")
        subscription = subscription_create(
            client=ticket.client, package=package, actor=request.user, ticket=ticket
        )
    except ValidationError as error:
        return ticket_admin.workspace_refuse(request, ticket, error, service_form=form)
    messages.success(
        request, f"{subscription.package.name} added for {ticket.client.name}; time goes to it."
    )
    return HttpResponseRedirect(reverse("admin:tickets_ticket_change", args=[ticket.pk]) + "#time")


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
