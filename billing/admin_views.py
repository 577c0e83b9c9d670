"""The periods page: the admin of the month model (packages.models.BillingPeriod, named once
here as ``PERIOD_MODEL``), registered by billing because closing a month is billing's work, so
the admin index's "Billing periods" link leads to it."""

import datetime as dt

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.auth import get_permission_codename
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse

from billing.selectors.finance import periods_overview
from billing.selectors.rollup import period_close_preview
from billing.services.rollup import period_close, period_close_check
from packages.models import BillingPeriod, PeriodStatus
from supportbilling.admin_readonly import ReadOnlyAdmin
from supportbilling.periods import period_label, period_parse

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
