from django.contrib import admin

from packages.models import PackagePrice, SupportPackage


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


# Subscriptions are administered from billing/admin.py: creating one writes billable items.
