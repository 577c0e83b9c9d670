# Packages, prices and subscriptions (and clients) are administered in billing/admin.py: their
# pages show billing's audit of money changes. Their changes go through packages.services and
# customers.services all the same.

from django.contrib import admin

from packages.models import BillingPeriod
from supportbilling.admin_readonly import ReadOnlyAdmin


@admin.register(BillingPeriod)
class BillingPeriodAdmin(ReadOnlyAdmin):
    """Read-only: months are opened by the services and closed by the rollup; a closed month
    is never reopened or deleted (the database refuses it too)."""

    list_display = ["month", "status", "closed_at", "closed_by"]
    list_filter = ["status"]
