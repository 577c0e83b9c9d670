"""No-charge time (docs/billing-rules.md, "No-charge time"): who may mark it, the reason, closed
months, the audit trail, the bucket, the operator's report and the workspace."""

import datetime as dt
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse

from billing.services.rollup import period_close
from packages.models import BillingMode, SubscriptionStatus
from tests.factories import (
    AdminFactory,
    FinanceFactory,
    OperatorFactory,
    PackageFactory,
    PackagePriceFactory,
    SubscriptionFactory,
    TicketFactory,
    UserFactory,
    package_with_prices,
)
from tickets.models import AuditAction, AuditEvent, TimeEntry
from tickets.selectors import operator_report, ticket_audit_trail
from tickets.services import (
    NO_CHARGE_FORBIDDEN,
    time_entry_change,
    time_entry_log,
    time_entry_no_charge_set,
)

OCTOBER = dt.date(2026, 10, 1)
pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def october(time_machine):
    time_machine.move_to(dt.datetime(2026, 10, 20, 9, 0, tzinfo=dt.UTC), tick=False)


@pytest.fixture
def operator():
    return OperatorFactory(username="alice")


@pytest.fixture
def entry(operator):
    ticket = TicketFactory(subscription=SubscriptionFactory(start_date=dt.date(2026, 9, 1)))
    return time_entry_log(
        ticket=ticket, operator=operator, hours="1.50", work_date=OCTOBER.replace(day=14)
    )


def test_an_operator_marks_an_entry_no_charge_with_a_reason(operator, entry):
    time_entry_no_charge_set(entry=entry, actor=operator, no_charge=True, reason=" Goodwill ")
    entry.refresh_from_db()
    assert (entry.no_charge, entry.no_charge_reason, entry.hours) == (
        True,
        "Goodwill",
        Decimal("1.50"),
    )
    # and it is audited on the ticket's trail
    event = AuditEvent.objects.get(action=AuditAction.TIME_NO_CHARGE)
    assert event.detail == {"entry": entry.pk, "hours": "1.50", "no_charge_reason": "Goodwill"}
    assert event in ticket_audit_trail(ticket_id=entry.ticket_id)
    # charging it again is audited too
    time_entry_no_charge_set(entry=entry, actor=operator, no_charge=False)
    entry.refresh_from_db()
    assert (entry.no_charge, entry.no_charge_reason) == (False, "")
    assert AuditEvent.objects.get(action=AuditAction.TIME_CHARGED).detail["no_charge_reason"] == [
        "Goodwill",
        "",
    ]


def test_a_reason_with_a_nul_character_is_refused_from_the_workspace(client, operator, entry):
    # given the operator on the ticket's page
    client.force_login(operator)
    url = reverse("admin:tickets_ticket_entry_no_charge", args=[entry.ticket_id, entry.pk])
    # when the no-charge button posts a reason with a NUL character
    response = client.post(url, {"no_charge": "1", "no_charge_reason": "good\x00will"})
    # then it is refused with the reason, and the entry is charged as before
    assert response.status_code == 400
    assert "The reason cannot contain NUL characters." in response.content.decode()
    entry.refresh_from_db()
    assert (entry.no_charge, entry.no_charge_reason) == (False, "")


def test_without_the_permission_it_is_refused_and_nothing_changes(entry):
    finance = FinanceFactory()
    plain_staff = UserFactory(is_staff=True)
    for user in (finance, plain_staff):
        with pytest.raises(PermissionDenied) as refusal:
            time_entry_no_charge_set(entry=entry, actor=user, no_charge=True, reason="Goodwill")
        assert str(refusal.value) == NO_CHARGE_FORBIDDEN
    entry.refresh_from_db()
    assert not entry.no_charge
    assert not AuditEvent.objects.filter(action=AuditAction.TIME_NO_CHARGE).exists()


def test_an_operator_without_the_permission_cannot_log_time_at_no_charge(entry):
    operator = OperatorFactory()
    operator.groups.first().permissions.remove(Permission.objects.get(codename="mark_no_charge"))
    operator = type(operator).objects.get(pk=operator.pk)  # no cached permissions
    with pytest.raises(PermissionDenied):
        time_entry_log(
            ticket=entry.ticket, operator=operator, hours="1", no_charge=True, no_charge_reason="x"
        )
    assert TimeEntry.objects.count() == 1


def test_a_reason_is_required(operator, entry):
    with pytest.raises(ValidationError) as refusal:
        time_entry_no_charge_set(entry=entry, actor=operator, no_charge=True, reason="  ")
    assert "Give the reason for no charge" in str(refusal.value)
    with pytest.raises(ValidationError):
        time_entry_no_charge_set(entry=entry, actor=operator, no_charge=True, reason="x" * 201)
    entry.refresh_from_db()
    assert not entry.no_charge


def test_refused_in_a_closed_month(operator, entry, time_machine):
    time_machine.move_to(dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.UTC), tick=False)
    period_close(month=OCTOBER)
    with pytest.raises(ValidationError) as refusal:
        time_entry_no_charge_set(entry=entry, actor=operator, no_charge=True, reason="Goodwill")
    assert "2026-10 is closed" in str(refusal.value)
    entry.refresh_from_db()
    assert not entry.no_charge


def test_no_charge_time_counts_as_worked_time_in_the_report(operator, entry):
    time_entry_no_charge_set(entry=entry, actor=operator, no_charge=True, reason="Goodwill")
    report = operator_report(date_from=OCTOBER, date_to=OCTOBER.replace(day=31), view="operator")
    assert report.hours == Decimal("1.50")


def test_a_bucket_is_not_drawn_by_time_at_no_charge(operator):
    package = PackageFactory(billing_mode=BillingMode.ONE_TIME, included_hours=Decimal("2"))
    PackagePriceFactory(package=package)
    subscription = SubscriptionFactory(package=package, start_date=dt.date(2026, 9, 1))
    ticket = TicketFactory(subscription=subscription)
    first = time_entry_log(ticket=ticket, operator=operator, hours="2")
    subscription.refresh_from_db()
    assert subscription.status == SubscriptionStatus.DEPLETED
    # marking it no charge gives the hours back
    time_entry_no_charge_set(entry=first, actor=operator, no_charge=True, reason="Our mistake")
    subscription.refresh_from_db()
    assert subscription.status == SubscriptionStatus.ACTIVE
    second = time_entry_log(ticket=ticket, operator=operator, hours="1.5")
    # charging the first again would overdraw the bucket: refused
    with pytest.raises(ValidationError) as refusal:
        time_entry_no_charge_set(entry=first, actor=operator, no_charge=False)
    assert "Only 0.50 h left" in str(refusal.value)
    # and a no-charge entry may grow without drawing the bucket
    time_entry_change(entry=first, actor=operator, hours="3")
    assert second.hours == Decimal("1.50")


# --- the operator's ticket page -----------------------------------------------------------


def test_the_workspace_marks_an_entry_no_charge_and_shows_it(client, operator, entry):
    client.force_login(operator)
    page = reverse("admin:tickets_ticket_change", args=[entry.ticket_id])
    edit = client.get(f"{page}?edit={entry.pk}").content.decode()
    assert 'id="entry-no-charge-form"' in edit
    url = reverse("admin:tickets_ticket_entry_no_charge", args=[entry.ticket_id, entry.pk])
    response = client.post(url, {"no_charge": "on", "no_charge_reason": "Goodwill"}, follow=True)
    content = response.content.decode()
    assert "The entry of 1.5 h is at no charge." in content
    assert 'title="Goodwill">no charge</span>' in content
    assert "Time marked no charge" in content  # the audit trail
    entry.refresh_from_db()
    assert entry.no_charge


def test_the_workspace_refuses_without_the_permission_or_a_reason(client, entry):
    operator = OperatorFactory()
    operator.groups.first().permissions.remove(Permission.objects.get(codename="mark_no_charge"))
    client.force_login(operator)
    page = reverse("admin:tickets_ticket_change", args=[entry.ticket_id])
    assert 'id="entry-no-charge-form"' not in client.get(f"{page}?edit={entry.pk}").content.decode()
    url = reverse("admin:tickets_ticket_entry_no_charge", args=[entry.ticket_id, entry.pk])
    response = client.post(url, {"no_charge": "on", "no_charge_reason": "Goodwill"})
    assert response.status_code == 403
    assert "You may not mark time as no charge" in response.content.decode()
    client.force_login(AdminFactory())  # the Operators group lost the permission above
    response = client.post(url, {"no_charge": "on", "no_charge_reason": ""})
    assert "Give the reason for no charge" in response.content.decode()
    entry.refresh_from_db()
    assert not entry.no_charge


def test_the_time_panel_states_a_billing_policy(client, operator):
    package = package_with_prices(billing_increment="0.50", billing_minimum=Decimal("1.00"))
    ticket = TicketFactory(subscription=SubscriptionFactory(package=package))
    client.force_login(operator)
    page = client.get(reverse("admin:tickets_ticket_change", args=[ticket.pk])).content.decode()
    assert (
        "Billed time: rounded up to 0.5 h per entry, at least 1 h per ticket and month; "
        "the hours above are as logged."
    ) in page
    # the default policy says nothing
    plain = TicketFactory(subscription=SubscriptionFactory())
    page = client.get(reverse("admin:tickets_ticket_change", args=[plain.pk])).content.decode()
    assert 'id="time-policy"' not in page
