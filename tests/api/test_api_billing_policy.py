"""The API's additions for the billing policy and no-charge time (docs/api.md): packages'
policy fields, time entries' no_charge and no_charge_reason, usage's logged and billed hours."""

from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission

from tests.billing.conftest import api_as
from tests.factories import OperatorFactory
from tickets.models import AuditAction, AuditEvent, TimeEntry

pytestmark = pytest.mark.django_db


def test_a_package_has_the_default_policy(world):
    package = api_as(world.users["administrator"]).get(f"/api/v1/packages/{world.package.pk}/")
    assert package.status_code == 200
    data = package.json()
    assert (data["billing_increment"], data["billing_rounding"], data["billing_minimum"]) == (
        "0.25",
        "entry",
        "0.00",
    )


def test_an_administrator_sets_the_policy_and_bad_values_are_refused(world):
    admin = api_as(world.users["administrator"])
    url = f"/api/v1/packages/{world.package.pk}/"
    changed = admin.patch(
        url,
        {"billing_increment": "0.50", "billing_rounding": "ticket_month", "billing_minimum": "0.5"},
        format="json",
    )
    assert changed.status_code == 200, changed.json()
    assert changed.json()["billing_minimum"] == "0.50"
    for bad, field in (
        ({"billing_increment": "0.30"}, "billing_increment"),
        ({"billing_rounding": "ticket"}, "billing_rounding"),
        ({"billing_minimum": "0.30"}, "billing_minimum"),
        ({"billing_minimum": "-1"}, "billing_minimum"),
    ):
        refused = admin.patch(url, bad, format="json")
        assert refused.status_code == 400, bad
        assert field in refused.json()
    world.package.refresh_from_db()
    assert (world.package.billing_increment, world.package.billing_minimum) == (
        "0.50",
        Decimal("0.50"),
    )
    # an operator may read the policy but not change it
    operator = api_as(world.users["operator"])
    assert operator.patch(url, {"billing_increment": "1.00"}, format="json").status_code == 403


def test_usage_shows_logged_billed_and_no_charge_hours(world):
    world.package.billing_increment = "1.00"
    world.package.save()
    operator = api_as(world.users["operator"])
    logged = operator.post(
        f"/api/v1/tickets/{world.ticket.pk}/time-entries/",
        {"hours": "0.25", "no_charge": True, "no_charge_reason": "Goodwill"},
        format="json",
    )
    assert logged.status_code == 201, logged.json()
    assert (logged.json()["no_charge"], logged.json()["no_charge_reason"]) == (True, "Goodwill")
    operator.post(
        f"/api/v1/tickets/{world.ticket.pk}/time-entries/", {"hours": "0.25"}, format="json"
    )
    usage = api_as(world.users["client"]).get(
        f"/api/v1/subscriptions/{world.subscription.pk}/usage/"
    )
    assert usage.status_code == 200
    data = usage.json()
    # 1.00 h and 0.25 h chargeable, each rounded up to 1 h; 0.25 h at no charge
    assert (data["logged_hours"], data["billed_hours"], data["used_hours"]) == (
        "1.25",
        "2.00",
        "2.00",
    )
    assert data["no_charge_hours"] == "0.25"


def test_an_entry_is_marked_no_charge_and_back(world):
    operator = api_as(world.users["operator"])
    url = f"/api/v1/time-entries/{world.entry.pk}/"
    marked = operator.patch(
        url, {"no_charge": True, "no_charge_reason": "Our mistake"}, format="json"
    )
    assert marked.status_code == 200, marked.json()
    assert (marked.json()["no_charge"], marked.json()["no_charge_reason"]) == (True, "Our mistake")
    assert AuditEvent.objects.filter(action=AuditAction.TIME_NO_CHARGE).count() == 1
    back = operator.patch(url, {"no_charge": False}, format="json")
    assert (back.json()["no_charge"], back.json()["no_charge_reason"]) == (False, "")


def test_no_charge_refusals_change_nothing(world):
    operator = api_as(world.users["operator"])
    url = f"/api/v1/time-entries/{world.entry.pk}/"
    # without a reason
    refused = operator.patch(url, {"no_charge": True}, format="json")
    assert refused.status_code == 400
    assert "Give the reason for no charge" in str(refused.json())
    # a reason alone
    refused = operator.patch(url, {"no_charge_reason": "Goodwill"}, format="json")
    assert refused.status_code == 400 and "no_charge_reason" in refused.json()
    # with a change the time service refuses (a future work date), the mark is not kept either
    refused = operator.patch(
        url,
        {"no_charge": True, "no_charge_reason": "Goodwill", "work_date": "2026-10-25"},
        format="json",
    )
    assert refused.status_code == 400 and "future" in str(refused.json())
    # an operator without the permission: a 403 that says why
    Permission.objects.get(codename="mark_no_charge").group_set.clear()
    other = api_as(OperatorFactory())
    refused = other.patch(url, {"no_charge": True, "no_charge_reason": "Goodwill"}, format="json")
    assert refused.status_code == 403
    assert "You may not mark time as no charge" in refused.json()["detail"]
    refused = other.post(
        f"/api/v1/tickets/{world.ticket.pk}/time-entries/",
        {"hours": "1", "no_charge": True, "no_charge_reason": "Goodwill"},
        format="json",
    )
    assert refused.status_code == 403
    world.entry.refresh_from_db()
    assert (world.entry.no_charge, world.entry.hours) == (False, Decimal("1.00"))
    assert TimeEntry.objects.filter(ticket=world.ticket).count() == 1
    assert not AuditEvent.objects.filter(action=AuditAction.TIME_NO_CHARGE).exists()
