"""Admin pages of billing that belong to other apps' models.

The operator's "add a support service for the client" on a ticket's admin page lives in
billing because subscriptions are created by ``billing.services.subscription_create`` and
tickets cannot import billing; the ticket page's form posts here by URL name
(``admin:billing_ticket_service_add``), and refusals are shown on the ticket page again.

The periods page is the admin of the month model (``PERIOD_MODEL``, imported once here), so
the admin index's "Billing periods" link leads to it: closing a month is billing's work.
"""

import datetime as dt
from typing import cast

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.auth import get_permission_codename
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse

from billing.selectors.finance import periods_overview
from billing.selectors.rollup import period_close_preview
from billing.services.rollup import period_close, period_close_check
from billing.services.subscriptions import subscription_create
from packages.models import SupportPackage
from supportbilling.admin_readonly import ReadOnlyAdmin
from supportbilling.periods import period_label, period_parse
from tickets.admin import TicketAdmin
from tickets.forms import ServiceAddForm
from tickets.models import BillingPeriod, PeriodStatus, Ticket


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
