"""Answer "try again shortly" (503) instead of a server error while the database is away,
400 to a NUL character in the address or a charset that is no text encoding, and 400 to an
admin filter value out of range."""

import logging
from collections.abc import Callable
from urllib.parse import unquote_plus

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse

logger = logging.getLogger(__name__)

UNAVAILABLE_PAGE = (
    "<!doctype html><title>Service unavailable</title>"
    "<h1>Service temporarily unavailable</h1><p>Please try again in a minute.</p>"
)


class DatabaseUnavailableMiddleware:
    """A view that cannot reach PostgreSQL (restart, failover, network) gets a plain 503 with
    ``Retry-After``; Django reconnects by itself on a later request (CONN_HEALTH_CHECKS).
    Nothing of the error is shown to the user; it is logged."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, OperationalError | InterfaceError):
            return None
        logger.error("Database unavailable for %s %s: %s", request.method, request.path, exception)
        response = HttpResponse(UNAVAILABLE_PAGE, status=503)
        response["Retry-After"] = "30"
        return response


NUL_REFUSED = "A NUL character is not allowed in the address."


def _request_refused(request: HttpRequest, reason: str) -> HttpResponse:
    """400 with ``reason``: the API's JSON shape under /api/, plain text elsewhere."""
    if request.path_info.startswith("/api/"):
        return JsonResponse({"detail": reason}, status=400)
    return HttpResponseBadRequest(reason, content_type="text/plain; charset=utf-8")


class NulCharacterMiddleware:
    """Answer 400 to a NUL character (``%00``) in the path or the query string, on every page:
    PostgreSQL refuses NUL in a text parameter (psycopg raises DataError), so an admin filter
    or search with one would fail as a server error. No address of ours has a use for it."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        query = unquote_plus(request.META.get("QUERY_STRING", ""), errors="replace")
        if "\x00" in request.path_info or "\x00" in query:
            return _request_refused(request, NUL_REFUSED)
        return self.get_response(request)


class TextCharsetMiddleware:
    """Answer 400 to a request whose charset names a codec that is not a text encoding
    (``Content-Type: multipart/form-data; charset=rot13``): Django takes it, and its form
    parser then fails with a LookupError, a server error."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.encoding:
            try:
                "x".encode(request.encoding)
            except (LookupError, UnicodeError):
                # LookupError: no text encoding (rot13, base64); UnicodeError: a codec that
                # encodes nothing ("undefined"). A real one (utf-16 too) passes.
                return _request_refused(
                    request, f"The request's charset, {request.encoding}, is not a text encoding."
                )
        return self.get_response(request)


FILTER_REFUSED = "A filter value in the address is out of range or malformed: {reason}."


# Admin pages that apply a changelist's filters to their own query: the items' export
# (billing.admin, "Export CSV/XLSX" of what the list shows).
_CHANGELIST_FILTERED_VIEWS = frozenset({"billing_export"})


class AdminFilterValueMiddleware:
    """Answer 400 when an admin changelist's filter values cannot be turned into a query.

    Django's admin refuses unknown lookups itself, but a value it accepts can still fail when
    the query is built: ``?start_date__year=9999&start_date__month=12`` or ``?created__year=99999``
    overflow Python's dates (ValueError, OverflowError) while the changelist counts its rows.
    Every changelist, ours and third-party ones, and the pages that apply a changelist's
    filters go through here; the error is logged."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        match = request.resolver_match
        if not (
            isinstance(exception, ValueError | OverflowError)
            and match is not None
            and match.namespace == "admin"
            and (
                (match.url_name or "").endswith("_changelist")
                or match.url_name in _CHANGELIST_FILTERED_VIEWS
            )
        ):
            return None
        logger.warning("Refused admin filter %s: %s", request.get_full_path(), exception)
        return HttpResponseBadRequest(
            FILTER_REFUSED.format(reason=exception), content_type="text/plain; charset=utf-8"
        )
