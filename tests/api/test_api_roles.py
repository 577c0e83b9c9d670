"""Who may call what (docs/api.md's roles): every endpoint x every role, with the status code."""

import itertools

import pytest

from tests.api.conftest import ROLES, api_as

# Expected status per role, in ROLES order: anonymous, client, operator, finance, admin.
NOBODY_BUT_ADMIN_READ = (401, 403, 403, 403, 200)
STAFF_READ = (401, 403, 200, 200, 200)
EVERYONE_READ = (401, 200, 200, 200, 200)
FINANCE_READ = (401, 403, 403, 200, 200)

_usernames = itertools.count()


def _new_login(w):
    return {"username": f"portal{next(_usernames)}", "password": "a-Long-passphrase-42"}


def _package(w):
    return {
        "name": "Silver",
        "billing_mode": "recurring",
        "included_hours": "5.00",
        "prices": [{"currency": "EUR", "fee": "250.00", "hourly_rate": "55.00"}],
    }


def _approval(w):
    """Extra hours to approve, on a subscription whose policy asks for approval."""
    type(w.subscription).objects.filter(pk=w.subscription.pk).update(overage_policy="approve")
    return {"hours": "1.5"}


ENDPOINTS = [
    # (name, method, path, body, expected per role)
    ("packages list", "get", lambda w: "/api/v1/packages/", None, STAFF_READ),
    ("packages create", "post", lambda w: "/api/v1/packages/", _package, (401, 403, 403, 403, 201)),
    ("package read", "get", lambda w: f"/api/v1/packages/{w.package.pk}/", None, STAFF_READ),
    (
        "package change",
        "patch",
        lambda w: f"/api/v1/packages/{w.package.pk}/",
        lambda w: {"name": "Platinum"},
        (401, 403, 403, 403, 200),
    ),
    ("clients list", "get", lambda w: "/api/v1/clients/", None, STAFF_READ),
    (
        "clients create",
        "post",
        lambda w: "/api/v1/clients/",
        lambda w: {"name": "Initech", "email": "a@initech.test", "currency": "EUR"},
        (401, 403, 403, 403, 201),
    ),
    ("client read", "get", lambda w: f"/api/v1/clients/{w.acme.pk}/", None, STAFF_READ),
    (
        "client change",
        "patch",
        lambda w: f"/api/v1/clients/{w.acme.pk}/",
        lambda w: {"name": "ACME Europe"},
        (401, 403, 403, 403, 200),
    ),
    (
        "client users list",
        "get",
        lambda w: f"/api/v1/clients/{w.acme.pk}/users/",
        None,
        NOBODY_BUT_ADMIN_READ,
    ),
    (
        "client users create",
        "post",
        lambda w: f"/api/v1/clients/{w.acme.pk}/users/",
        _new_login,
        (401, 403, 403, 403, 201),
    ),
    ("subscriptions list", "get", lambda w: "/api/v1/subscriptions/", None, EVERYONE_READ),
    (
        "subscriptions create",
        "post",
        lambda w: "/api/v1/subscriptions/",
        lambda w: {"client": w.acme.pk, "package": w.package.pk},
        (401, 403, 201, 403, 201),
    ),
    (
        "subscription read",
        "get",
        lambda w: f"/api/v1/subscriptions/{w.subscription.pk}/",
        None,
        EVERYONE_READ,
    ),
    (
        "subscription status",
        "patch",
        lambda w: f"/api/v1/subscriptions/{w.subscription.pk}/",
        lambda w: {"status": "suspended"},
        (401, 403, 403, 403, 200),
    ),
    (
        "subscription overage policy",
        "post",
        lambda w: f"/api/v1/subscriptions/{w.subscription.pk}/overage/",
        lambda w: {"policy": "cap", "cap_hours": "2.00"},
        (401, 403, 403, 403, 200),
    ),
    (
        "subscription approvals",
        "post",
        lambda w: f"/api/v1/subscriptions/{w.subscription.pk}/approvals/",
        _approval,
        (401, 201, 403, 403, 403),
    ),
    (
        "subscription usage",
        "get",
        lambda w: f"/api/v1/subscriptions/{w.subscription.pk}/usage/",
        None,
        EVERYONE_READ,
    ),
    ("tickets list", "get", lambda w: "/api/v1/tickets/", None, EVERYONE_READ),
    (
        "tickets create",
        "post",
        lambda w: "/api/v1/tickets/",
        lambda w: {"client": w.acme.pk, "subject": "VPN", "body": "VPN is down"},
        (401, 403, 201, 403, 201),
    ),
    ("ticket read", "get", lambda w: f"/api/v1/tickets/{w.ticket.pk}/", None, EVERYONE_READ),
    (
        "ticket change",
        "patch",
        lambda w: f"/api/v1/tickets/{w.ticket.pk}/",
        lambda w: {"status": "answered"},
        (401, 403, 200, 403, 200),
    ),
    (
        "ticket time entries",
        "get",
        lambda w: f"/api/v1/tickets/{w.ticket.pk}/time-entries/",
        None,
        EVERYONE_READ,
    ),
    (
        "ticket log time",
        "post",
        lambda w: f"/api/v1/tickets/{w.ticket.pk}/time-entries/",
        lambda w: {"hours": "0.50", "note": "Checked the queue"},
        (401, 403, 201, 403, 201),
    ),
    (
        "time entry read",
        "get",
        lambda w: f"/api/v1/time-entries/{w.entry.pk}/",
        None,
        EVERYONE_READ,
    ),
    (
        "time entry change",
        "patch",
        lambda w: f"/api/v1/time-entries/{w.entry.pk}/",
        lambda w: {"hours": "1.25"},
        (401, 403, 200, 403, 200),
    ),
    (
        "time entry delete",
        "delete",
        lambda w: f"/api/v1/time-entries/{w.entry.pk}/",
        None,
        (401, 403, 204, 403, 204),
    ),
    (
        "rollup",
        "post",
        lambda w: "/api/v1/rollups/",
        lambda w: {"period": "2026-09"},
        (401, 403, 403, 201, 201),
    ),
    ("items list", "get", lambda w: "/api/v1/billable-items/", None, FINANCE_READ),
    (
        "adjustment create",
        "post",
        lambda w: "/api/v1/billable-items/",
        lambda w: {
            "client": w.acme.pk,
            "period": "2026-09",
            "amount": "-25.00",
            "description": "Goodwill credit",
        },
        (401, 403, 403, 201, 201),
    ),
    ("item read", "get", lambda w: f"/api/v1/billable-items/{w.item.pk}/", None, FINANCE_READ),
    (
        "item status",
        "patch",
        lambda w: f"/api/v1/billable-items/{w.item.pk}/",
        lambda w: {"status": "exported"},
        (401, 403, 403, 200, 200),
    ),
    (
        "items export",
        "get",
        lambda w: "/api/v1/billable-items/export/?period=2026-10&format=csv",
        None,
        FINANCE_READ,
    ),
]

CASES = [
    pytest.param(method, path, body, role, expected[i], id=f"{name}-{role}")
    for name, method, path, body, expected in ENDPOINTS
    for i, role in enumerate(ROLES)
]


@pytest.mark.parametrize(("method", "path", "body", "role", "expected"), CASES)
def test_role_matrix(world, method, path, body, role, expected):
    # given a user of the role
    api = api_as(world.users[role])
    # when it calls the endpoint
    kwargs = {"format": "json"} if method in ("post", "patch") else {}
    response = getattr(api, method)(path(world), body(world) if body else None, **kwargs)
    # then it gets the status docs/api.md gives that role
    assert response.status_code == expected, getattr(response, "data", response)
    if expected in (401, 403):
        assert "detail" in response.json()
