"""Overage policies (docs/billing-rules.md, "Overage policies"): the refusals of the time
services under ``cap`` and ``approve``, the approvals and caps a client sets, and the rollup
billing only approved overtime, on the worked examples."""

import datetime as dt
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from django.core.exceptions import ValidationError

from billing.models import BillableItem
from billing.selectors.portal import client_history, client_subscription_usages
from billing.selectors.statements import statement_for_subscription
from billing.services.rollup import period_close
from packages.models import OverageApproval, OveragePolicy
from tests.factories import (
    ClientUserFactory,
    OperatorFactory,
    SubscriptionFactory,
    TicketFactory,
    package_with_prices,
)
from tickets.models import AuditAction, AuditEvent, TimeEntry
from tickets.overage import approval_hours_read
from tickets.services import time_entry_change, time_entry_log, time_entry_no_charge_set
from tickets.services_overage import (
    overage_approve,
    subscription_client_cap_set,
    subscription_overage_set,
)

OCTOBER = dt.date(2026, 10, 1)
DAY = dt.date(2026, 10, 14)
pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def november(time_machine):
    time_machine.move_to(dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.UTC), tick=False)


def gold(policy=OveragePolicy.BILL, cap=None):
    """10 h included, 500.00 EUR a month, 60.00 EUR per extra hour."""
    subscription = SubscriptionFactory(
        package=package_with_prices({"EUR": ("500.00", "60.00")}), start_date=dt.date(2026, 9, 1)
    )
    staff = OperatorFactory()
    subscription_overage_set(subscription=subscription, policy=policy, cap_hours=cap, actor=staff)
    subscription.refresh_from_db()
    return subscription


def log(ticket, hours, operator=None, **kwargs):
    return time_entry_log(
        ticket=ticket, operator=operator or OperatorFactory(), hours=hours, work_date=DAY, **kwargs
    )


def items_of(subscription):
    return {i.kind: i for i in BillableItem.objects.filter(subscription=subscription)}


# --- cap -------------------------------------------------------------------------------------


def test_cap_refuses_time_beyond_included_plus_cap_and_says_what_is_left():
    subscription = gold(OveragePolicy.CAP, cap="2")
    ticket = TicketFactory(subscription=subscription)
    log(ticket, "11.5")
    with pytest.raises(ValidationError) as refused:
        log(ticket, "0.75")
    assert refused.value.messages == [
        "The monthly overage cap is reached: only 0.50 h more can be logged on this "
        "subscription in 2026-10 (10.00 h included + 2.00 h cap)."
    ]
    assert TimeEntry.objects.count() == 1  # nothing changed
    log(ticket, "0.5")  # exactly up to the cap
    assert AuditEvent.objects.filter(action=AuditAction.OVERAGE_CAP_REACHED).count() == 1


def test_charging_time_again_up_to_the_cap_is_refused_beyond_it_and_audited_at_it():
    subscription = gold(OveragePolicy.CAP, cap="2")
    ticket = TicketFactory(subscription=subscription)
    log(ticket, "11")
    marker = OperatorFactory()
    marker.user_permissions.add(Permission.objects.get(codename="mark_no_charge"))
    marker = type(marker).objects.get(pk=marker.pk)
    free = log(ticket, "1.5", no_charge=True, no_charge_reason="Our mistake", operator=marker)
    # charging the 1.5 h again would pass the cap (11 + 1.5 > 12): refused, nothing changes
    with pytest.raises(ValidationError, match="only 1.00 h more can be logged"):
        time_entry_no_charge_set(entry=free, actor=marker, no_charge=False)
    assert TimeEntry.objects.get(pk=free.pk).no_charge is True
    # 1 h of it fits exactly up to the cap: charged again, and the cap's reaching is audited
    free.hours = Decimal("1.00")
    free.save()
    time_entry_no_charge_set(entry=free, actor=marker, no_charge=False)
    assert AuditEvent.objects.filter(action=AuditAction.OVERAGE_CAP_REACHED).count() == 1


def test_cap_without_a_ceiling_allows_no_extra_hour():
    ticket = TicketFactory(subscription=gold(OveragePolicy.CAP))
    log(ticket, "10")
    with pytest.raises(ValidationError, match="only 0.00 h more can be logged"):
        log(ticket, "0.25")


def test_cap_refuses_a_change_that_would_pass_it():
    ticket = TicketFactory(subscription=gold(OveragePolicy.CAP, cap="1"))
    entry = log(ticket, "10")
    with pytest.raises(ValidationError, match="overage cap is reached: only 1.00 h"):
        time_entry_change(entry=entry, actor=OperatorFactory(), hours="11.25")
    time_entry_change(entry=entry, actor=OperatorFactory(), hours="11")
    entry.refresh_from_db()
    assert entry.hours == Decimal("11.00")


def test_client_cap_lowers_the_limit_under_bill_and_cannot_pass_staffs_ceiling():
    subscription = gold(OveragePolicy.CAP, cap="4")
    user = ClientUserFactory(client=subscription.client).user
    with pytest.raises(ValidationError, match="at most 4.00 h"):
        subscription_client_cap_set(subscription=subscription, cap_hours="5", user=user)
    subscription_client_cap_set(subscription=subscription, cap_hours="1", user=user)
    ticket = TicketFactory(subscription=subscription)
    log(ticket, "11")
    with pytest.raises(ValidationError, match="only 0.00 h"):
        log(ticket, "0.25")
    # a lower ceiling from staff lowers the client's cap with it
    subscription_overage_set(
        subscription=subscription, policy=OveragePolicy.CAP, cap_hours="0.5", actor=None
    )
    subscription.refresh_from_db()
    assert subscription.client_cap_hours == Decimal("0.50")
    actions = list(
        AuditEvent.objects.filter(subscription=subscription)
        .order_by("pk")
        .values_list("action", flat=True)
    )
    assert actions.count(AuditAction.OVERAGE_POLICY) == 2
    assert AuditAction.OVERAGE_CAP in actions


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("-1", "Enter a cap from 0 to 744 hours."),
        ("abc", "Enter the cap in hours, such as 5 or 2.5."),
        ("1.3", "Hours must be in steps of 0.25."),
        ("NaN", "Enter a cap from 0 to 744 hours."),
    ],
)
def test_bad_caps_are_refused(value, message):
    subscription = gold()
    user = ClientUserFactory(client=subscription.client).user
    with pytest.raises(ValidationError) as refused:
        subscription_client_cap_set(subscription=subscription, cap_hours=value, user=user)
    assert refused.value.messages == [message]
    subscription.refresh_from_db()
    assert subscription.client_cap_hours is None


def test_staff_policy_refusals():
    subscription = gold()
    with pytest.raises(ValidationError, match="Unknown overage policy"):
        subscription_overage_set(
            subscription=subscription, policy="never", cap_hours=None, actor=None
        )
    bucket = SubscriptionFactory(
        package=package_with_prices(
            {"EUR": ("200.00", "0.00")}, billing_mode="one_time", included_hours="5"
        )
    )
    with pytest.raises(ValidationError, match="one-time package has no overtime"):
        subscription_overage_set(subscription=bucket, policy="cap", cap_hours="1", actor=None)


# --- approve ---------------------------------------------------------------------------------


def test_approve_tells_the_operator_and_logs_pending_time_only_when_asked():
    subscription = gold(OveragePolicy.APPROVE)
    ticket = TicketFactory(subscription=subscription)
    log(ticket, "9.5")
    with pytest.raises(ValidationError) as refused:
        log(ticket, "1")
    assert refused.value.messages[0].startswith(
        "Time beyond 10.00 h in 2026-10 needs the client's approval (0.00 h extra approved): "
        "0.50 h more can be logged without approval."
    )
    log(ticket, "1", pending_ok=True)
    statement = statement_for_subscription(subscription=subscription, month=OCTOBER)
    assert (statement.overtime_hours, statement.unapproved_hours) == (Decimal("0"), Decimal("0.50"))
    assert AuditEvent.objects.filter(action=AuditAction.OVERAGE_PENDING).count() == 1
    assert AuditEvent.objects.filter(action=AuditAction.OVERAGE_REQUESTED).count() == 1
    log(ticket, "0.25", pending_ok=True)  # asked once a month
    assert AuditEvent.objects.filter(action=AuditAction.OVERAGE_REQUESTED).count() == 1


def test_time_within_approved_hours_needs_no_further_approval():
    subscription = gold(OveragePolicy.APPROVE)
    user = ClientUserFactory(client=subscription.client).user
    overage_approve(subscription=subscription, hours="2", user=user, month=OCTOBER)
    ticket = TicketFactory(subscription=subscription)
    log(ticket, "12")
    with pytest.raises(ValidationError, match="needs the client's approval"):
        log(ticket, "0.25")


def test_only_the_clients_own_portal_users_approve():
    subscription = gold(OveragePolicy.APPROVE)
    stranger = ClientUserFactory().user  # another client's user
    with pytest.raises(ValidationError, match="Only a portal user of the subscription's client"):
        overage_approve(subscription=subscription, hours="2", user=stranger, month=OCTOBER)
    with pytest.raises(ValidationError, match="Only a portal user"):
        overage_approve(subscription=subscription, hours="2", user=OperatorFactory())
    assert not OverageApproval.objects.exists()


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("0", "Approve more than 0 and at most 744 extra hours."),
        ("-2", "Approve more than 0 and at most 744 extra hours."),
        ("1000", "Approve more than 0 and at most 744 extra hours."),
        ("2.1", "Hours must be in steps of 0.25."),
        ("three", "Enter the extra hours to approve as a number, such as 3 or 2.5."),
        ("Infinity", "Approve more than 0 and at most 744 extra hours."),
    ],
)
def test_bad_numbers_of_hours_are_refused(value, message):
    subscription = gold(OveragePolicy.APPROVE)
    user = ClientUserFactory(client=subscription.client).user
    with pytest.raises(ValidationError) as refused:
        overage_approve(subscription=subscription, hours=value, user=user, month=OCTOBER)
    assert refused.value.messages == [message]
    assert not OverageApproval.objects.exists()


def test_approval_refusals_other_policy_closed_month_and_above_the_cap():
    subscription = gold(OveragePolicy.BILL)
    user = ClientUserFactory(client=subscription.client).user
    with pytest.raises(ValidationError, match="does not ask for approval"):
        overage_approve(subscription=subscription, hours="1", user=user, month=OCTOBER)
    subscription_overage_set(
        subscription=subscription, policy=OveragePolicy.APPROVE, cap_hours=None, actor=None
    )
    subscription_client_cap_set(subscription=subscription, cap_hours="3", user=user)
    overage_approve(subscription=subscription, hours="2", user=user, month=OCTOBER)
    with pytest.raises(ValidationError, match="approve at most 1.00 h more"):
        overage_approve(subscription=subscription, hours="1.5", user=user, month=OCTOBER)
    period_close(month=OCTOBER)
    with pytest.raises(ValidationError, match="2026-10 is closed"):
        overage_approve(subscription=subscription, hours="0.5", user=user, month=OCTOBER)
    assert OverageApproval.objects.count() == 1


# --- The rollup on the worked examples --------------------------------------------------------


def approve_example(used: list[str], approved: str | None):
    subscription = gold(OveragePolicy.APPROVE)
    ticket = TicketFactory(subscription=subscription)
    for hours in used:
        log(ticket, hours, pending_ok=True)
    if approved:
        user = ClientUserFactory(client=subscription.client).user
        overage_approve(subscription=subscription, hours=approved, user=user, month=OCTOBER)
    period_close(month=OCTOBER)
    return subscription


def test_example_approved_part_of_the_overtime_is_billed_the_rest_is_not():
    # 12.25 h used, 1 h approved: overtime 1.00 h = 60.00 EUR, 1.25 h unapproved, unbilled
    subscription = approve_example(["8", "4.25"], "1")
    items = items_of(subscription)
    assert items["fee"].amount.amount == Decimal("500.00")
    assert items["overtime"].quantity == Decimal("1.00")
    assert items["overtime"].amount.amount == Decimal("60.00")
    statement = statement_for_subscription(subscription=subscription, month=OCTOBER)
    assert statement.unapproved_hours == Decimal("1.25")
    assert statement.approved_hours == Decimal("1.00")
    [row] = client_history(client_id=subscription.client_id)[0].rows
    assert row.statement.unapproved_hours == Decimal("1.25")


def test_example_nothing_approved_bills_the_fee_only():
    subscription = approve_example(["8", "4.25"], None)
    assert set(items_of(subscription)) == {"fee"}
    statement = statement_for_subscription(subscription=subscription, month=OCTOBER)
    assert statement.unapproved_hours == Decimal("2.25")


def test_example_an_approval_is_a_ceiling_not_a_charge():
    # 11 h used, 3 h approved: overtime 1.00 h = 60.00 EUR
    subscription = approve_example(["11"], "3")
    items = items_of(subscription)
    assert items["overtime"].quantity == Decimal("1.00")
    assert items["overtime"].amount.amount == Decimal("60.00")


def test_example_cap_bills_the_time_up_to_the_cap():
    # cap 2 h: 12 h logged, a 13th quarter refused; fee and 2.00 h = 120.00 EUR
    subscription = gold(OveragePolicy.CAP, cap="2")
    ticket = TicketFactory(subscription=subscription)
    log(ticket, "12")
    with pytest.raises(ValidationError):
        log(ticket, "0.25")
    period_close(month=OCTOBER)
    items = items_of(subscription)
    assert items["overtime"].quantity == Decimal("2.00")
    assert items["overtime"].amount.amount == Decimal("120.00")


def test_the_dashboard_card_shows_approved_and_pending_hours():
    subscription = gold(OveragePolicy.APPROVE)
    user = ClientUserFactory(client=subscription.client).user
    ticket = TicketFactory(subscription=subscription)
    log(ticket, "12", pending_ok=True)
    overage_approve(subscription=subscription, hours="1.5", user=user, month=OCTOBER)
    [usage] = client_subscription_usages(client_id=subscription.client_id, month=OCTOBER)
    assert usage.statement.approved_hours == Decimal("1.50")
    assert usage.statement.unapproved_hours == Decimal("0.50")
    assert usage.statement.overtime_amount.amount == Decimal("90.00")


# --- Reading an approval in a reply -------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "hours"),
    [
        ("APPROVE 3", Decimal("3")),
        ("approve 3h\n\n> quoted", Decimal("3")),
        ("\nApprove: 2.5 hours.\nThanks", Decimal("2.5")),
        ("approve 1,25", Decimal("1.25")),
        ("I approve 3", None),
        ("approve three", None),
        ("approve 3 or 4", None),
        ("Can we approve 3?", None),
        ("", None),
    ],
)
def test_only_a_clear_approval_is_read(text, hours):
    assert approval_hours_read(text) == hours


def test_a_closed_months_card_reads_the_policy_and_approvals_the_close_stored():
    # given October billed under approve with 1 h approved and 2 h beyond the included 10 h
    subscription = gold(OveragePolicy.APPROVE)
    user = ClientUserFactory(client=subscription.client).user
    overage_approve(subscription=subscription, hours="1", user=user, month=OCTOBER)
    log(TicketFactory(subscription=subscription), "12", pending_ok=True)
    period_close(month=OCTOBER)
    # when the policy changes afterwards
    subscription_overage_set(
        subscription=subscription, policy=OveragePolicy.BILL, cap_hours=None, actor=None
    )
    # then the closed month's card still shows what was billed: 1 h, the other 1 h unapproved
    (usage,) = client_subscription_usages(client_id=subscription.client_id, month=OCTOBER)
    statement = usage.statement
    assert (statement.overtime_hours, statement.unapproved_hours) == (Decimal("1"), Decimal("1"))
    assert statement.overtime_amount.amount == items_of(subscription)["overtime"].amount.amount
