"""A ModelAdmin that only shows: for records that services write and nobody edits by hand
(entries, timers, months, audit trails, alerts)."""

from django.contrib import admin


class ReadOnlyAdmin(admin.ModelAdmin):
    """No add, change or delete for anyone, superusers included; view permission as usual."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
