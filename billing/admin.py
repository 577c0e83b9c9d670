from django.contrib import admin
from django.urls import path
from django.views.decorators.http import require_POST

from billing.admin_views import ticket_service_add
from billing.models import BillableItem, UsageAlert


@admin.register(BillableItem)
class BillableItemAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "period",
        "client",
        "subscription",
        "kind",
        "quantity",
        "unit_price",
        "amount",
        "status",
    ]
    list_filter = ["period", "status", "kind", "currency"]
    list_select_related = ["client", "subscription__package"]
    search_fields = ["client__name", "description"]

    def has_delete_permission(self, request, obj=None):  # items are voided, never deleted
        return False

    def get_urls(self):
        # Posted from the ticket's admin page (tickets cannot import billing's services).
        service_add = path(
            "ticket/<int:ticket_id>/service/",
            self.admin_site.admin_view(require_POST(ticket_service_add)),
            name="billing_ticket_service_add",
        )
        return [service_add, *super().get_urls()]


@admin.register(UsageAlert)
class UsageAlertAdmin(admin.ModelAdmin):
    list_display = ["subscription", "period", "threshold", "sent_at"]
    list_filter = ["threshold", "period"]
