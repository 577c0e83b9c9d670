"""Project-level views: the health check (load balancers, docker-compose) and the answer to a
locked-out sign-in."""

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
