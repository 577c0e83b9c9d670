"""Every URL of the site, read from the URL configuration, with the address to request for
each one in the security tests' world (objects of client A)."""

import re
from dataclasses import dataclass
from types import SimpleNamespace
from urllib.parse import urlsplit

from django.contrib import admin
from django.contrib.auth.models import Group
from django.contrib.contenttypes.models import ContentType
from django.http import HttpResponse
from django.urls import URLPattern, URLResolver, get_resolver, resolve, reverse

from supportbilling.roles import OPERATORS_GROUP

_KWARG = re.compile(r"<(?:\w+:)?(\w+)>|\(\?P<(\w+)>")


@dataclass(frozen=True)
class Route:
    key: str  # "namespace:name" ("+format" for DRF's suffix variant); the route if unnamed
    name: str | None  # what reverse() takes
    route: str  # the full pattern, for messages
    kwargs: tuple[str, ...]


def routes() -> list[Route]:
    """Every URL pattern, recursively, in the order Django tries them."""
    found: list[Route] = []

    def walk(patterns, prefix: str, namespace: str) -> None:
        for pattern in patterns:
            route = prefix + str(pattern.pattern)
            if isinstance(pattern, URLResolver):
                inner = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
                walk(pattern.url_patterns, route, inner)
                continue
            assert isinstance(pattern, URLPattern)
            kwargs = tuple(a or b for a, b in _KWARG.findall(route))
            name = f"{namespace}{pattern.name}" if pattern.name else None
            key = name or route
            if "format" in kwargs:
                key += "+format"
            found.append(Route(key=key, name=name, route=route, kwargs=kwargs))

    walk(get_resolver().url_patterns, "/", "")
    return found


def admin_models() -> dict[str, str]:
    """``"app_model"`` (as in the admin's URL names) -> ``"app.model"``, for every model
    registered in the admin."""
    return {
        f"{model._meta.app_label}_{model._meta.model_name}": model._meta.label_lower
        for model in admin.site._registry
    }


ADMIN_MODEL_VIEWS = ("changelist", "add", "history", "delete", "change")


def admin_model_view(route: Route) -> tuple[str, str] | None:
    """``("app.model", view)`` for the admin's own per-model URLs (``view`` is "redirect" for
    the bare ``<object_id>/``), None for every other URL."""
    models = admin_models()
    if route.name is None:
        match = re.fullmatch(r"/admin/(\w+)/(\w+)/<path:object_id>/", route.route)
        if match and f"{match[1]}_{match[2]}" in models:
            return models[f"{match[1]}_{match[2]}"], "redirect"
        return None
    if not route.name.startswith("admin:"):
        return None
    for prefix, label in models.items():
        for view in ADMIN_MODEL_VIEWS:
            if route.name == f"admin:{prefix}_{view}":
                return label, view
    return None


def admin_object(world: SimpleNamespace, label: str) -> int:
    """The primary key of the object of ``label`` the matrix opens in the admin: client A's
    where it belongs to a client."""
    a = world.a
    objects = {
        "auth.group": lambda: Group.objects.get(name=OPERATORS_GROUP).pk,
        "auth.user": lambda: a.user.pk,
        "authtoken.tokenproxy": lambda: a.user.pk,  # the admin finds tokens by their user
        "django_celery_beat.periodictask": lambda: world.periodic_task.pk,
        "django_celery_beat.crontabschedule": lambda: world.crontab.pk,
        "django_celery_beat.intervalschedule": lambda: world.interval.pk,
        "django_celery_beat.solarschedule": lambda: world.solar.pk,
        "django_celery_beat.clockedschedule": lambda: world.clocked.pk,
        "customers.client": lambda: a.client.pk,
        "customers.clientuser": lambda: a.login.pk,
        "packages.supportpackage": lambda: world.package.pk,
        "packages.subscription": lambda: a.subscription.pk,
        "tickets.ticket": lambda: a.ticket.pk,
        "tickets.timeentry": lambda: a.entry.pk,
        "tickets.timetimer": lambda: a.timer.pk,
        "packages.billingperiod": lambda: world.period.pk,
        "tickets.auditevent": lambda: a.event.pk,
        "tickets.inboundmail": lambda: world.inbound_mail.pk,
        "tickets.unmatchedmail": lambda: world.inbound_mail.pk,
        "billing.billableitem": lambda: a.item.pk,
        "billing.usagealert": lambda: a.alert.pk,
        "axes.accessattempt": lambda: world.access_attempt.pk,
        "axes.accesslog": lambda: world.access_log.pk,
        "axes.accessfailurelog": lambda: world.access_failure.pk,
        "webhooks.webhookendpoint": lambda: world.webhook_endpoint.pk,
        "webhooks.webhookdelivery": lambda: world.webhook_delivery.pk,
        "whmcs.whmcsclient": lambda: world.whmcs_client.pk,
        "whmcs.whmcspush": lambda: world.whmcs_push.pk,
    }
    assert label in objects, f"the matrix has no object of {label} to open in the admin"
    return objects[label]()


# Which object a `pk` in a named URL stands for.
_PK_OF = {
    "clientarea:subscription": "subscription",
    "clientarea:subscription_estimate": "subscription",
    "clientarea:closed_month": "subscription",
    "clientarea:closed_month_csv": "subscription",
    "clientarea:overage_approve": "subscription",
    "clientarea:overage_cap": "subscription",
    "clientarea:ticket": "ticket",
    "clientarea:ticket_reply": "ticket",
    "clientarea:ticket_close": "ticket",
    "clientarea:attachment": "attachment",
    "api:package-detail": "package",
    "api:client-detail": "client",
    "api:client-users": "client",
    "api:subscription-detail": "subscription",
    "api:subscription-usage": "subscription",
    "api:subscription-overage": "subscription",
    "api:subscription-approvals": "subscription",
    "api:ticket-detail": "ticket",
    "api:ticket-time-entries": "ticket",
    "api:time-entry-detail": "entry",
    "api:billable-item-detail": "item",
    "api:export-job-detail": "export_job",
    "api:export-job-download": "export_job",
}
# Query strings a page needs to do its work rather than refuse the request.
QUERY = {
    "admin:autocomplete": "?app_label=tickets&model_name=ticket&field_name=client",
    "admin:billing_export": "?period=2026-09&format=csv",
    "api:billable-item-export": "?period=2026-09&format=csv",
    "api:billable-item-export+format": "?period=2026-09",
    "api:billable-item-export-csv": "?period=2026-09",
    "api:billable-item-export-xlsx": "?period=2026-09",
    "api:subscription-usage": "?period=2026-09",
}


def url_of(route: Route, world: SimpleNamespace) -> str:
    """The address to request for ``route``, its parameters filled with client A's objects."""
    a = world.a
    model_view = admin_model_view(route)
    if model_view and model_view[1] == "redirect":
        change = reverse(
            f"admin:{model_view[0].replace('.', '_')}_change",
            args=[admin_object(world, model_view[0])],
        )
        return change.removesuffix("change/")
    if route.name is None:
        assert route.route == "/admin/(?P<url>.*)$", f"no address for the URL {route.route}"
        return "/admin/no-such-page/"
    values: dict[str, object] = {}
    for kwarg in route.kwargs:
        if kwarg == "object_id" and model_view:
            values[kwarg] = admin_object(world, model_view[0])
        elif kwarg in ("id", "object_id") and route.name == "admin:auth_user_password_change":
            values[kwarg] = a.user.pk
        elif kwarg == "pk":
            what = _PK_OF[route.name]
            shared = {"package": world.package, "export_job": world.export_job}
            values[kwarg] = (shared[what] if what in shared else getattr(a, what)).pk
        elif kwarg == "job_id":
            values[kwarg] = world.export_job.pk
        elif kwarg == "ticket_id":
            values[kwarg] = a.ticket.pk
        elif kwarg == "entry_id":
            values[kwarg] = a.entry.pk
        elif kwarg == "period":
            values[kwarg] = "2026-09"
        elif kwarg == "format":
            values[kwarg] = "json"
        elif kwarg == "app_label":
            values[kwarg] = "tickets"
        elif kwarg == "content_type_id":
            values[kwarg] = ContentType.objects.get_for_model(a.ticket).pk
        elif kwarg == "object_id":
            values[kwarg] = a.ticket.pk
        elif kwarg == "uidb64":
            values[kwarg] = "MQ"
        elif kwarg == "token":
            values[kwarg] = "not-a-valid-token"
        else:
            raise AssertionError(f"no value for <{kwarg}> in {route.route}")
    return reverse(route.name, kwargs=values) + QUERY.get(route.key, "")


def outcome(response: HttpResponse) -> str:
    """What a user gets, in the matrix's words: ``"200"``, ``"404"``, or for a redirect
    ``"302 admin:login?next"`` (the URL name it leads to, and whether it carries ``next``)."""
    code = response.status_code
    if code not in (301, 302, 303, 307, 308):
        return str(code)
    location = urlsplit(response["Location"])
    match = resolve(location.path)
    name = f"{match.namespace}:{match.url_name}" if match.namespace else str(match.url_name)
    return f"{code} {name}" + ("?next" if "next=" in location.query else "")
