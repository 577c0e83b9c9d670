"""WHMCS in the admin, for finance and administrators: which WHMCS client each client is, and
the push log with "push now" and "push again"."""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import path, reverse
from django.views.decorators.http import require_POST

from supportbilling.queue import task_enqueue
from supportbilling.roles import ADMINISTRATOR, FINANCE, role_of
from whmcs.models import PushStatus, WhmcsClient, WhmcsPush
from whmcs.services import NOT_CONFIGURED, items_to_push, whmcs_configured

PUSH_FIELDS = (
    "item",
    "status",
    "billable_id",
    "attempts",
    "last_error",
    "last_attempt_at",
    "pushed_at",
)


def _finance(request: HttpRequest) -> bool:
    return role_of(request.user) in (ADMINISTRATOR, FINANCE)


class FinanceOnly:
    """Finance and administrators: the connector moves money to the billing system."""

    def has_module_permission(self, request: HttpRequest) -> bool:
        return _finance(request)

    def has_view_permission(self, request: HttpRequest, obj=None) -> bool:
        return _finance(request)


@admin.register(WhmcsClient)
class WhmcsClientAdmin(FinanceOnly, admin.ModelAdmin):
    list_display = ["client", "whmcs_client_id"]
    search_fields = ["client__name", "whmcs_client_id"]
    raw_id_fields = ["client"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return _finance(request)

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return _finance(request)

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return _finance(request)


@admin.register(WhmcsPush)
class WhmcsPushAdmin(FinanceOnly, admin.ModelAdmin):
    change_list_template = "admin/whmcs/whmcspush/change_list.html"
    list_display = PUSH_FIELDS
    list_filter = ["status"]
    list_select_related = ["item"]
    search_fields = ["item__id", "billable_id"]
    readonly_fields = PUSH_FIELDS
    actions = ["push_again"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def get_urls(self):
        own = [
            path(
                "push/",
                self.admin_site.admin_view(require_POST(self.push_view)),
                name="whmcs_push_now",
            )
        ]
        return own + super().get_urls()

    def changelist_view(self, request, extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "whmcs_configured": whmcs_configured(),
            "items_waiting": items_to_push().count(),
        }
        return super().changelist_view(request, extra_context)

    def push_view(self, request: HttpRequest) -> HttpResponse:
        if not _finance(request):
            raise PermissionDenied
        back = reverse("admin:whmcs_whmcspush_changelist")
        if not whmcs_configured():
            self.message_user(request, NOT_CONFIGURED, messages.ERROR)
        elif task_enqueue("whmcs.items_push"):
            self.message_user(request, "The exportable items are being pushed to WHMCS.")
        else:
            self.message_user(
                request, "The push could not be queued (Redis is down); try again.", messages.ERROR
            )
        return HttpResponseRedirect(back)

    @admin.action(description="Push again (for an unknown outcome: only after checking WHMCS)")
    def push_again(self, request: HttpRequest, queryset: QuerySet[WhmcsPush]) -> None:
        retry = queryset.filter(status__in=[PushStatus.FAILED, PushStatus.UNKNOWN])
        item_ids = list(retry.values_list("item_id", flat=True))
        skipped = queryset.count() - len(item_ids)
        if item_ids and task_enqueue("whmcs.items_push", item_ids, True):
            self.message_user(request, f"{len(item_ids)} item(s) are being pushed again.")
        elif item_ids:
            self.message_user(request, "The push could not be queued; try again.", messages.ERROR)
        if skipped:
            self.message_user(
                request,
                f"{skipped} push(es) left alone: already in WHMCS or being sent.",
                messages.WARNING,
            )
