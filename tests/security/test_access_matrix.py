"""Who gets what, over EVERY URL of the site (admin, portal, API) and every role.

The URLs are read from the URL configuration, so a URL without a row in ``EXPECTED`` (or, for
the admin's per-model pages, a model without a row in ``ADMIN_RIGHTS``) fails
``test_every_url_has_an_expectation``. Each URL is filled with client A's objects: client A's
user must get them and client B's user must get a 404, never A's data. The narrower matrices
(tests/clientarea/test_access.py, tests/api/test_api_roles.py) check the details: writes
per role, users of no client, staff linked to a client.
"""

import json

import pytest
from django.test import Client
from rest_framework.authtoken.models import Token

from billing.models import BillableItem, ExportJob, UsageAlert
from customers.models import NotificationPreference
from packages.models import BillingPeriod, OverageApproval, Subscription
from tests.security.conftest import NOW, SECRET
from tests.security.urlmap import Route, admin_model_view, admin_models, outcome, routes, url_of
from tickets.models import AuditEvent, Ticket, TicketMessage, TimeEntry, TimeTimer

ROLES = ("anonymous", "client_a", "client_b", "operator", "finance", "administrator")

ADMIN_LOGIN = "302 admin:login?next"
SIGN_IN = "302 clientarea:login?next"
TO_ADMIN = "302 admin:index"
NOT_STAFF = (ADMIN_LOGIN, ADMIN_LOGIN, ADMIN_LOGIN)  # anonymous and both client users


def staff(operator, finance, administrator) -> tuple:
    """An admin URL: everyone who is not staff is sent to the admin's sign-in."""
    return (
        *NOT_STAFF,
        *(None if x is None else str(x) for x in (operator, finance, administrator)),
    )


# What each staff role may do on each model's admin pages (v view, a add, c change, d delete),
# after the Operators/Finance groups (billing/migrations/0002) and the ModelAdmins' own
# has_*_permission. Anonymous and client users never get past the admin's sign-in.
ADMIN_RIGHTS = {
    # model: (operator, finance, administrator)
    "auth.group": ("", "", "vacd"),
    "auth.user": ("", "", "vacd"),
    "authtoken.tokenproxy": ("", "", "vacd"),
    "django_celery_beat.periodictask": ("", "", "vacd"),
    "django_celery_beat.crontabschedule": ("", "", "vacd"),
    "django_celery_beat.intervalschedule": ("", "", "vacd"),
    "django_celery_beat.solarschedule": ("", "", "vacd"),
    "django_celery_beat.clockedschedule": ("", "", "vacd"),
    "customers.client": ("v", "v", "vacd"),
    "customers.clientuser": ("", "v", "vacd"),
    "packages.supportpackage": ("v", "v", "vacd"),
    "packages.subscription": ("va", "v", "vac"),  # billed history: never deleted
    "axes.accessattempt": ("", "", "vcd"),  # sign-in throttling: recorded, never added
    "axes.accesslog": ("", "", "vcd"),
    "axes.accessfailurelog": ("", "", "vcd"),
    "tickets.ticket": ("vac", "v", "vac"),  # closed, never deleted
    "tickets.timeentry": ("v", "v", "v"),  # written on the ticket's page only
    "tickets.timetimer": ("v", "", "v"),
    "packages.billingperiod": ("v", "v", "v"),  # closed by the rollup, never reopened or deleted
    "tickets.auditevent": ("v", "v", "v"),  # append-only
    "tickets.inboundmail": ("v", "", "v"),  # stored by the mail intake as it came
    "tickets.unmatchedmail": ("vc", "", "vc"),  # change: assign to a client, discard
    "billing.billableitem": ("", "vc", "vc"),  # written by the rollup and adjustments
    "billing.usagealert": ("", "v", "v"),  # written by the checks: the record of its e-mail
    "webhooks.webhookendpoint": ("", "", "vacd"),  # administrators only: it holds the secret
    "webhooks.webhookdelivery": ("", "", "v"),  # the delivery log; redelivery is an action
    "whmcs.whmcsclient": ("", "vacd", "vacd"),  # which WHMCS client each client is
    "whmcs.whmcspush": ("", "v", "v"),  # the push log; pushing is a button and an action
}
_NEEDS = {"changelist": "v", "history": "v", "change": "v", "add": "a", "delete": "d"}


def admin_model_expectation(label: str, view: str) -> tuple[str, ...]:
    if view == "redirect":  # <object_id>/ leads to the change page, which checks rights
        change = f"302 admin:{label.replace('.', '_')}_change"
        return staff(change, change, change)
    rights = ADMIN_RIGHTS[label]
    return staff(*("200" if _NEEDS[view] in letters else "403" for letters in rights))


POST_ONLY = staff(405, 405, 405)  # a GET is refused by everyone who gets past the sign-in
API_STAFF = ("401", "403", "403", "200", "200", "200")
API_EVERYONE_OWN = ("401", "200", "404", "200", "200", "200")  # B's user: A's object is 404
API_EVERYONE_LIST = ("401", "200", "200", "200", "200", "200")  # each sees their own rows
API_FINANCE = ("401", "403", "403", "403", "200", "200")
PORTAL_LIST = (SIGN_IN, "200", "200", TO_ADMIN, TO_ADMIN, TO_ADMIN)
PORTAL_OWN = (SIGN_IN, "200", "404", TO_ADMIN, TO_ADMIN, TO_ADMIN)
EVERYONE = ("200",) * 6

# GET of every URL that is not one of the admin's per-model pages, in ROLES order.
EXPECTED: dict[str, tuple[str, ...]] = {
    # the admin site
    "admin:index": staff(200, 200, 200),
    "admin:login": ("200", "200", "200", TO_ADMIN, TO_ADMIN, TO_ADMIN),
    "admin:logout": (TO_ADMIN, TO_ADMIN, TO_ADMIN, "405", "405", "405"),  # POST only
    "admin:password_change": staff(200, 200, 200),
    "admin:password_change_done": staff(200, 200, 200),
    "admin:autocomplete": staff(200, 200, 200),  # client names, for staff with view_client
    "admin:jsi18n": staff(200, 200, 200),
    "admin:view_on_site": staff(404, 404, 404),  # no model has a public address
    "admin:app_list": staff(200, 200, 200),
    "/admin/(?P<url>.*)$": staff(404, 404, 404),
    "admin:auth_user_password_change": staff(403, 403, 200),
    # the operator's workspace: buttons on the ticket page, POST only
    "admin:tickets_ticket_log": POST_ONLY,
    "admin:tickets_ticket_reply": POST_ONLY,
    "admin:tickets_ticket_reply_preview": POST_ONLY,  # renders the typed reply, saves nothing
    "admin:tickets_ticket_assign": POST_ONLY,
    "admin:tickets_ticket_subscription": POST_ONLY,
    "admin:tickets_ticket_tracking": POST_ONLY,
    "admin:tickets_ticket_status": POST_ONLY,
    "admin:tickets_ticket_timer_start": POST_ONLY,
    "admin:tickets_ticket_timer_stop": POST_ONLY,
    "admin:tickets_ticket_timer_cancel": POST_ONLY,
    "admin:tickets_ticket_entry_change": POST_ONLY,
    "admin:tickets_ticket_entry_delete": POST_ONLY,
    "admin:tickets_ticket_entry_no_charge": POST_ONLY,
    "admin:tickets_ticket_service_add": POST_ONLY,
    "admin:tickets_mail_preferences": staff(200, 200, 200),  # each for their own e-mails
    "admin:tickets_timeentry_report": staff(200, 200, 200),
    "admin:tickets_ticket_hours_step": staff(200, 200, 200),  # reads typed hours, no data
    # finance's pages
    # the periods page (the months' changelist): operators see the months, not the money
    "admin:billing_periods": staff(200, 200, 200),
    "admin:billing_period_close": staff(403, 200, 200),  # GET: the confirmation
    "admin:billing_adjustment_add": staff(403, 200, 200),
    "admin:billing_export": staff(403, 200, 200),
    "admin:whmcs_push_now": POST_ONLY,
    # export jobs: finance's own (administrators see everyone's); this one is still queued
    "admin:billing_export_jobs": staff(403, 200, 200),
    "admin:billing_export_job": staff(403, 200, 200),
    "admin:billing_export_job_download": staff(
        403, "302 admin:billing_export_job", "302 admin:billing_export_job"
    ),
    # health check, for the load balancer
    "healthz": EVERYONE,
    # the API (docs/api.md); its schema and docs describe it and hold no data
    "api:token": ("405",) * 6,  # POST only
    "api:rollups": ("401", "405", "405", "405", "405", "405"),  # POST only, for finance
    "api:package-list": API_STAFF,
    "api:package-detail": API_STAFF,
    "api:client-list": API_STAFF,
    "api:client-detail": API_STAFF,
    "api:client-users": ("401", "403", "403", "403", "403", "200"),
    "api:subscription-list": API_EVERYONE_LIST,
    "api:subscription-detail": API_EVERYONE_OWN,
    "api:subscription-usage": API_EVERYONE_OWN,
    "api:subscription-overage": ("401", "405", "405", "405", "405", "405"),  # POST only
    "api:subscription-approvals": ("401", "405", "405", "405", "405", "405"),  # POST only
    "api:ticket-list": API_EVERYONE_LIST,
    "api:ticket-detail": API_EVERYONE_OWN,
    "api:ticket-time-entries": API_EVERYONE_OWN,
    "api:time-entry-detail": API_EVERYONE_OWN,
    "api:billable-item-list": API_FINANCE,
    "api:billable-item-detail": API_FINANCE,
    "api:billable-item-export": API_FINANCE,
    "api:billable-item-export-csv": API_FINANCE,
    "api:billable-item-export-xlsx": API_FINANCE,
    "api:export-job-list": API_FINANCE,
    "api:export-job-detail": API_FINANCE,
    "api:export-job-download": ("401", "403", "403", "403", "409", "409"),  # not done yet
    "api:schema": EVERYONE,
    "api:docs": EVERYONE,
    # the portal
    "clientarea:home": PORTAL_LIST,
    "clientarea:history": PORTAL_LIST,
    "clientarea:tickets": PORTAL_LIST,
    "clientarea:ticket_new": PORTAL_LIST,
    "clientarea:subscription": PORTAL_OWN,
    "clientarea:subscription_estimate": PORTAL_OWN,
    # The matrix's September is open: no client sees an open month's page (its own answers
    # 200 once closed: tests/clientarea/test_closed_month.py).
    "clientarea:closed_month": (SIGN_IN, "404", "404", TO_ADMIN, TO_ADMIN, TO_ADMIN),
    "clientarea:closed_month_csv": (SIGN_IN, "404", "404", TO_ADMIN, TO_ADMIN, TO_ADMIN),
    "clientarea:favicon": EVERYONE,
    "clientarea:ticket": PORTAL_OWN,
    "clientarea:ticket_reply": ("405",) * 6,  # POST only
    "clientarea:ticket_close": ("405",) * 6,  # POST only
    "clientarea:overage_approve": ("405",) * 6,  # POST only
    "clientarea:overage_cap": ("405",) * 6,  # POST only
    # a file of client A's reply: A's users and staff who read tickets (tests/tickets/
    # test_attachments.py has the whole matrix, internal notes included)
    "clientarea:attachment": (SIGN_IN, "200", "404", "200", "200", "200"),
    "clientarea:notifications": PORTAL_LIST,  # each user's own e-mail preferences
    # who is signed in, as JSON: each client user their own; refusals in JSON, not redirects
    "clientarea:me": ("401", "200", "200", "403", "403", "403"),
    # the signed link of an e-mail, without signing in: one that is not ours is a 400
    "clientarea:unsubscribe": ("400",) * 6,
    # signing in and passwords; a signed-in user is taken home (staff then on to the admin)
    "clientarea:login": ("200", *(["302 clientarea:home"] * 5)),
    "clientarea:logout": ("405",) * 6,  # POST only
    "clientarea:password_change": (SIGN_IN, *(["200"] * 5)),
    "clientarea:password_change_done": (SIGN_IN, *(["200"] * 5)),
    "clientarea:password_reset": EVERYONE,
    "clientarea:password_reset_done": EVERYONE,
    "clientarea:password_reset_confirm": EVERYONE,  # "this link is no longer valid"
    "clientarea:password_reset_complete": EVERYONE,
}

# POST to the URLs whose GET is refused, by the roles that may not do the action: refused,
# and nothing changes. None: the role may (its happy path is tested with the feature).
POSTS: dict[str, tuple[dict, tuple[str | None, ...]]] = {
    "admin:logout": ({}, (TO_ADMIN, TO_ADMIN, TO_ADMIN, None, None, None)),
    "admin:tickets_ticket_log": ({"hours": "0.50", "note": "x"}, staff(None, 403, None)),
    "admin:tickets_ticket_reply": (
        {"body": "Hello", "kind": "operator_reply"},
        staff(None, 403, None),
    ),
    "admin:tickets_ticket_reply_preview": (
        {"body": "Hello", "kind": "operator_reply"},
        staff(None, 403, None),
    ),
    "admin:tickets_ticket_assign": ({"assignee": ""}, staff(None, 403, None)),
    "admin:tickets_ticket_subscription": ({"subscription": "0"}, staff(None, 403, None)),
    "admin:tickets_ticket_tracking": ({}, staff(None, 403, None)),
    "admin:tickets_ticket_status": ({"status": "closed"}, staff(None, 403, None)),
    "admin:tickets_ticket_timer_start": ({}, staff(None, 403, None)),
    "admin:tickets_ticket_timer_stop": ({"note": "x"}, staff(None, 403, None)),
    "admin:tickets_ticket_timer_cancel": ({}, staff(None, 403, None)),
    "admin:tickets_ticket_entry_change": (
        {"hours": "2.00", "work_date": "2026-10-14", "note": "x"},
        staff(None, 403, None),
    ),
    "admin:tickets_ticket_entry_delete": ({}, staff(None, 403, None)),
    "admin:tickets_ticket_entry_no_charge": (
        {"no_charge": "on", "no_charge_reason": "Goodwill"},
        staff(None, 403, None),
    ),
    "admin:tickets_ticket_service_add": ({"package": "0"}, staff(None, 403, None)),
    "admin:billing_period_close": ({}, staff(403, None, None)),
    "admin:whmcs_push_now": ({}, staff(403, None, None)),
    "api:token": (
        {"username": "client_a", "password": "wrong"},
        ("400",) * 6,  # a wrong password gets no token, whoever asks
    ),
    "api:rollups": ({"period": "2026-09"}, ("401", "403", "403", "403", None, None)),
    "admin:billing_export_jobs": ({"period": "2026-09", "format": "csv"}, staff(403, None, None)),
    "api:export-job-list": (
        {"period": "2026-09", "format": "csv"},
        ("401", "403", "403", "403", None, None),
    ),
    "clientarea:ticket_reply": (
        {"body": "Let me in"},
        (SIGN_IN, None, "404", TO_ADMIN, TO_ADMIN, TO_ADMIN),
    ),
    "clientarea:ticket_close": ({}, (SIGN_IN, None, "404", TO_ADMIN, TO_ADMIN, TO_ADMIN)),
    "clientarea:overage_approve": (
        {"hours": "1"},
        (SIGN_IN, None, "404", TO_ADMIN, TO_ADMIN, TO_ADMIN),
    ),
    "clientarea:overage_cap": (
        {"cap_hours": "1"},
        (SIGN_IN, None, "404", TO_ADMIN, TO_ADMIN, TO_ADMIN),
    ),
    "api:subscription-overage": (
        {"policy": "cap", "cap_hours": "1"},
        ("401", "403", "403", "403", "403", None),
    ),
    "api:subscription-approvals": ({"hours": "1"}, ("401", None, "404", "403", "403", "403")),
    "clientarea:logout": ({}, ("302 clientarea:login",) * 6),
    "clientarea:unsubscribe": ({}, ("400",) * 6),  # a forged token changes nothing
}

ROUTES = routes()


def expected_get(route: Route) -> tuple[str, ...] | None:
    model_view = admin_model_view(route)
    if model_view is not None and model_view[0] in ADMIN_RIGHTS:
        return admin_model_expectation(*model_view)
    return EXPECTED.get(route.key)


@pytest.fixture(autouse=True)
def _frozen_time_and_plain_static(time_machine, settings):
    time_machine.move_to(NOW, tick=False)
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


def browser_of(world, role: str) -> Client:
    browser = Client(raise_request_exception=False)  # a 500 is an answer the matrix reports
    if world.users[role] is not None:
        browser.force_login(world.users[role])
    return browser


def test_every_url_has_an_expectation():
    missing = [route.route for route in ROUTES if expected_get(route) is None]
    assert not missing, "URLs with no row in the access matrix:\n" + "\n".join(missing)
    keys = {route.key for route in ROUTES}
    assert not set(EXPECTED) - keys, "rows for URLs that no longer exist"
    assert not set(POSTS) - keys
    assert set(ADMIN_RIGHTS) == set(admin_models().values()), "ADMIN_RIGHTS != admin models"
    post_only = {r.key for r in ROUTES if "405" in expected_get(r)}
    assert post_only <= set(POSTS), "POST-only URLs without a POST row"


def _own_ids(world, role: str) -> dict[str, set[int]]:
    side = world.a if role == "client_a" else world.b
    return {
        "client": {side.client.pk},
        "subscription": {side.subscription.pk},
        "ticket": {side.ticket.pk},
    }


def _references(data, found: dict[str, set]) -> None:
    """Every value under a "client", "subscription" or "ticket" key of a JSON document."""
    if isinstance(data, dict):
        for key, value in data.items():
            if key in found and isinstance(value, int):
                found[key].add(value)
            _references(value, found)
    elif isinstance(data, list):
        for value in data:
            _references(value, found)


def assert_nothing_of_the_other_client(world, role: str, response) -> None:
    """A client user's answer names no other client's object, in words or in ids."""
    if role not in ("client_a", "client_b") or response.status_code >= 300:
        return
    body = b"".join(response) if response.streaming else response.content
    other = SECRET["b" if role == "client_a" else "a"]
    assert other.encode() not in body, f"{role} sees {other}"
    if response.get("Content-Type", "").startswith("application/json"):
        found: dict[str, set] = {"client": set(), "subscription": set(), "ticket": set()}
        _references(json.loads(body), found)
        for key, ids in _own_ids(world, role).items():
            assert found[key] <= ids, f"{role} sees another client's {key}: {found[key] - ids}"


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("route", ROUTES, ids=[route.key for route in ROUTES])
def test_get(world, db, route, role):
    expected = expected_get(route)
    assert expected is not None, f"no row for {route.route}"
    # given a user of the role, when they open the URL with client A's objects in it
    response = browser_of(world, role).get(url_of(route, world))
    # then they get what the matrix says, and a client user nothing of the other client
    assert outcome(response) == expected[ROLES.index(role)], route.route
    assert_nothing_of_the_other_client(world, role, response)


def fingerprint(world) -> dict:
    """What a refused POST must leave as it was."""
    return {
        "tickets": list(
            Ticket.objects.order_by("pk").values_list("status", "track_time", "assignee")
        ),
        "messages": TicketMessage.objects.count(),
        "entries": list(TimeEntry.objects.order_by("pk").values_list("hours", "note")),
        "timers": TimeTimer.objects.count(),
        "audit": AuditEvent.objects.count(),
        "subscriptions": list(
            Subscription.objects.order_by("pk").values_list(
                "status", "overage_policy", "overage_cap_hours", "client_cap_hours"
            )
        ),
        "approvals": OverageApproval.objects.count(),
        "items": BillableItem.objects.count(),
        "alerts": UsageAlert.objects.count(),
        "periods": list(BillingPeriod.objects.order_by("pk").values_list("status")),
        "tokens": Token.objects.count(),
        "mail_preferences": NotificationPreference.objects.count(),
        "export_jobs": ExportJob.objects.count(),
    }


POST_CASES = [
    pytest.param(key, role, data, expected[i], id=f"{key}-{role}")
    for key, (data, expected) in POSTS.items()
    for i, role in enumerate(ROLES)
    if expected[i] is not None
]


@pytest.mark.parametrize(("key", "role", "data", "expected"), POST_CASES)
def test_post_without_the_right_is_refused_and_changes_nothing(
    world, db, key, role, data, expected
):
    route = next(route for route in ROUTES if route.key == key)
    before = fingerprint(world)
    # when a role that may not do it posts to the action
    browser, url = browser_of(world, role), url_of(route, world)
    if key.startswith("api:"):
        response = browser.post(url, json.dumps(data), content_type="application/json")
    else:
        response = browser.post(url, data)
    # then it is refused, and nothing changed
    assert outcome(response) == expected
    assert fingerprint(world) == before


@pytest.mark.parametrize(
    "path",
    ["/api/v1/subscriptions/{pk}/usage.json", "/api/v1/packages.json", "/api/v1/tickets/{pk}.json"],
)
def test_the_api_has_no_format_suffix_twins(world, db, path):
    # given an administrator (the suffix twins of the extra actions once answered 500)
    browser = browser_of(world, "administrator")
    # then only the documented paths, ending with "/", exist
    assert browser.get(path.format(pk=world.a.subscription.pk)).status_code == 404
