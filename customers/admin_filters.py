"""The admin's "By client" filter for lists of the clients' records (tickets, billable items)."""

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html
from django.utils.safestring import SafeString

from customers.models import Client

# Up to this many clients the sidebar lists them all; beyond, a list of every client would
# outweigh the page (a thousand links for a thousand clients), and the search box finds a
# client by name (docs/decisions.md, "The client filter at scale").
CLIENT_FILTER_LISTED = 30


class ClientListFilter(admin.SimpleListFilter):
    """Filter by client: every client while there are at most ``CLIENT_FILTER_LISTED``,
    otherwise only the one filtered by. The parameter is the one Django's related-field
    filter used (``client__id__exact``), so links and bookmarks keep working; a value that is
    not a client's id lists nothing."""

    title = "client"
    parameter_name = "client__id__exact"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        listed = list(
            Client.objects.order_by("name", "pk").values_list("pk", "name")[
                : CLIENT_FILTER_LISTED + 1
            ]
        )
        if len(listed) > CLIENT_FILTER_LISTED:
            chosen = self._client_id()
            if chosen is None:
                return []
            # An id that is no client's stays shown, so that "All" leads out of the empty list.
            listed = list(Client.objects.filter(pk=chosen).values_list("pk", "name")) or [
                (chosen, f"#{chosen} (no such client)")
            ]
        return [(str(pk), name) for pk, name in listed]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value() is None:
            return queryset
        chosen = self._client_id()
        return queryset.none() if chosen is None else queryset.filter(client_id=chosen)

    def _client_id(self) -> int | None:
        value = self.value() or ""
        # ASCII digits only: str.isdigit() also takes "²" (int() refuses it) and "١" (read as 1).
        return int(value) if value.isascii() and value.isdigit() and len(value) < 19 else None


def client_filter_link(client: Client) -> SafeString:
    """The client's name in a list's row, linked to the list filtered by that client: how a
    client is chosen once the sidebar no longer lists them all."""
    return format_html(
        '<a href="?{}={}" title="Show only this client">{}</a>',
        ClientListFilter.parameter_name,
        client.pk,
        client.name,
    )
