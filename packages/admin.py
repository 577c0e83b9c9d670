from django.contrib import admin

from packages.models import PackagePrice, Subscription, SupportPackage


class PackagePriceInline(admin.TabularInline):
    model = PackagePrice
    extra = 1


@admin.register(SupportPackage)
class SupportPackageAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "billing_mode",
        "included_hours",
        "invoice_action",
        "show_work_log",
        "active",
    ]
    list_filter = ["billing_mode", "active", "invoice_action"]
    search_fields = ["name"]
    inlines = [PackagePriceInline]


@admin.register(Subscription)
class SubscriptionAdmin(admin.ModelAdmin):
    list_display = ["id", "client", "package", "status", "start_date", "end_date"]
    list_filter = ["status", "package__billing_mode", "package"]
    list_select_related = ["client", "package"]
    search_fields = ["client__name", "package__name", "id"]
    autocomplete_fields = ["client", "package"]
    date_hierarchy = "start_date"
