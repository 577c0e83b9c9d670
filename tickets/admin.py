from django.contrib import admin

from tickets.models import AuditEvent, BillingPeriod, Ticket, TicketMessage, TimeEntry, TimeTimer


class TicketMessageInline(admin.StackedInline):
    model = TicketMessage
    extra = 0
    readonly_fields = ["author", "created_at"]


@admin.register(Ticket)
class TicketAdmin(admin.ModelAdmin):
    list_display = ["id", "subject", "client", "subscription", "status", "priority", "track_time"]
    list_filter = ["status", "priority", "track_time"]
    list_select_related = ["client", "subscription__package"]
    search_fields = ["subject", "client__name", "id"]
    autocomplete_fields = ["client", "subscription"]
    inlines = [TicketMessageInline]


@admin.register(TimeEntry)
class TimeEntryAdmin(admin.ModelAdmin):
    list_display = ["id", "ticket", "subscription", "operator", "hours", "work_date", "billed_at"]
    list_filter = ["work_date", "operator"]
    list_select_related = ["ticket", "subscription__package", "operator"]
    search_fields = ["ticket__subject", "note", "ticket__client__name"]
    date_hierarchy = "work_date"

    def has_add_permission(self, request):  # entries are written by the time services only
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(TimeTimer)
class TimeTimerAdmin(admin.ModelAdmin):
    list_display = ["ticket", "operator", "started_at"]
    list_select_related = ["ticket", "operator"]


@admin.register(BillingPeriod)
class BillingPeriodAdmin(admin.ModelAdmin):
    list_display = ["month", "status", "closed_at", "closed_by"]
    list_filter = ["status"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    """Read-only: the audit trail is append-only."""

    list_display = ["created_at", "action", "ticket", "subscription", "actor"]
    list_filter = ["action"]
    list_select_related = ["ticket", "subscription__package", "actor"]
    search_fields = ["ticket__subject"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
