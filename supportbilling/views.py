"""Project-level views: the health check (load balancers, docker-compose), and django-axes'
hooks for every sign-in form (admin, portal, API token): the username it records and the answer
to a locked-out sign-in."""

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render


def healthz(request: HttpRequest) -> JsonResponse:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok"})


LOCKOUT_MESSAGE = "Too many failed sign-ins. Try again in %d minutes."


def sign_in_locked(request: HttpRequest, response: HttpResponse | None, credentials: dict | None):
    """What a locked-out sign-in gets (django-axes): JSON for the API, a page otherwise."""
    minutes = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": LOCKOUT_MESSAGE % minutes}, status=429)
    return render(
        request, "sign_in_locked.html", {"message": LOCKOUT_MESSAGE % minutes}, status=429
    )


# django-axes stores the username of every attempt in a varchar(255) column.
AXES_USERNAME_MAX_LENGTH = 255


def sign_in_username(request: HttpRequest, credentials: dict | None) -> str | None:
    """The username django-axes counts an attempt against (AXES_USERNAME_CALLABLE): what was
    typed, cut to what its table holds and without NUL (PostgreSQL refuses it in text), so that
    a 300-character name is a wrong sign-in, not a server error. No account has a username
    that long (Django's limit is 150), so the cut never merges two real accounts."""
    # "username": the field and the credential name of all three sign-ins (axes' default)
    if credentials:
        username = credentials.get("username")
    else:
        username = getattr(request, "data", request.POST).get("username")
    if not isinstance(username, str):
        return None
    return username.replace("\x00", "")[:AXES_USERNAME_MAX_LENGTH]
