from django.contrib import admin

from customers.models import Client, ClientUser


class ClientUserInline(admin.TabularInline):
    model = ClientUser
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Client)
class ClientAdmin(admin.ModelAdmin):
    list_display = ["name", "email", "currency", "active", "created_at"]
    list_filter = ["active", "currency"]
    search_fields = ["name", "email"]
    inlines = [ClientUserInline]


@admin.register(ClientUser)
class ClientUserAdmin(admin.ModelAdmin):
    list_display = ["user", "client"]
    list_select_related = ["user", "client"]
    search_fields = ["user__username", "user__email", "client__name"]
    autocomplete_fields = ["user", "client"]
