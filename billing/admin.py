from django.contrib import admin

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


@admin.register(UsageAlert)
class UsageAlertAdmin(admin.ModelAdmin):
    list_display = ["subscription", "period", "threshold", "sent_at"]
    list_filter = ["threshold", "period"]
