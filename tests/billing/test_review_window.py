"""The review window and disputes as billing's rules (docs/billing-rules.md, "Review window
and disputes"): what is exportable when, what a dispute holds back, how it is resolved, every
refusal changing nothing, every step in the billing audit."""

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from billing.models import BillableItem, BillingEvent, Dispute, ItemStatus, PeriodRelease
from billing.selectors.finance import items_exportable, periods_overview
from billing.selectors.review import month_review
from billing.services.disputes import dispute_open, dispute_resolve, period_release
from billing.services.items import billable_item_status_set, billable_items_status_set
from billing.services.rollup import period_close
from tests.factories import subscription_with_overtime
from tests.review import CLOSED_AT, NOW, OCTOBER, REVIEW_UNTIL, month_in_review

pytestmark = pytest.mark.django_db


@pytest.fixture
def review(settings, time_machine):
    return month_in_review(settings, time_machine)


def exportable() -> set[int]:
    return set(items_exportable().values_list("pk", flat=True))


def items_of(*sides) -> set[int]:
    return {item.pk for side in sides for item in (side.fee, side.overtime)}


def test_without_a_window_a_closed_month_is_exportable_at_once(settings, time_machine):
    # given the default (0 days): today's behaviour
    assert settings.REVIEW_WINDOW_DAYS == 0
    time_machine.move_to(CLOSED_AT, tick=False)
    subscription = subscription_with_overtime()
    period_close(month=OCTOBER)
    # then every item is exportable, nothing is in review, and disputes are refused
    assert exportable() == set(
        BillableItem.objects.filter(subscription=subscription).values_list("pk", flat=True)
    )
    assert month_review(OCTOBER).in_review is False
    item = BillableItem.objects.filter(subscription=subscription).first()
    with pytest.raises(ValidationError, match="months have no review window"):
        dispute_open(client_id=subscription.client_id, item_id=item.pk, reason="Too much")


def test_items_wait_for_the_end_of_the_window(review, time_machine):
    assert month_review(OCTOBER).until == REVIEW_UNTIL
    assert exportable() == set()
    time_machine.move_to(REVIEW_UNTIL - dt.timedelta(seconds=1), tick=False)
    assert exportable() == set()
    time_machine.move_to(REVIEW_UNTIL, tick=False)
    assert exportable() == items_of(review.a, review.b)


def test_a_release_ends_the_window_early_and_is_audited(review):
    result = period_release(month=OCTOBER, actor=review.finance)
    assert result.period == "2026-10"
    assert exportable() == items_of(review.a, review.b)
    event = BillingEvent.objects.get(action="period_released")
    assert event.actor_username == review.finance.username
    assert event.detail["period"] == "2026-10"
    # and the client can no longer dispute the month
    with pytest.raises(ValidationError, match="released for billing"):
        dispute_open(client_id=review.a.client.pk, item_id=review.a.fee.pk, reason="x")


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("open_month", "2026-11 is not closed"),
        ("twice", "2026-10 was already released"),
        ("over", "already ended"),
    ],
)
def test_release_refusals_change_nothing(review, time_machine, case, message):
    month = OCTOBER
    if case == "open_month":
        month = dt.date(2026, 11, 1)
    if case == "twice":
        period_release(month=OCTOBER, actor=review.finance)
    if case == "over":
        time_machine.move_to(REVIEW_UNTIL + dt.timedelta(hours=1), tick=False)
    releases, events = PeriodRelease.objects.count(), BillingEvent.objects.count()
    with pytest.raises(ValidationError, match=message):
        period_release(month=month, actor=review.finance)
    assert (PeriodRelease.objects.count(), BillingEvent.objects.count()) == (releases, events)


def test_release_is_refused_without_a_window(review, settings):
    settings.REVIEW_WINDOW_DAYS = 0
    with pytest.raises(ValidationError, match="REVIEW_WINDOW_DAYS is 0"):
        period_release(month=OCTOBER, actor=review.finance)


def test_an_item_dispute_holds_that_item_only_even_after_the_release(review):
    dispute = dispute_open(
        client_id=review.a.client.pk,
        item_id=review.a.overtime.pk,
        reason="We did not ask for that work",
        actor=review.a.user,
    )
    period_release(month=OCTOBER, actor=review.finance)
    assert exportable() == items_of(review.a, review.b) - {review.a.overtime.pk}
    event = BillingEvent.objects.get(action="dispute_opened")
    assert event.detail["dispute"] == dispute.pk
    assert event.item_id == review.a.overtime.pk
    assert event.actor_username == review.a.user.username


def test_a_time_entry_dispute_holds_the_items_of_its_subscription_and_month(review):
    dispute_open(
        client_id=review.a.client.pk, time_entry_id=review.a.entry.pk, reason="Only 6 hours"
    )
    period_release(month=OCTOBER, actor=review.finance)
    assert exportable() == items_of(review.b)


def test_marking_held_items_exported_is_refused_with_the_reason(review):
    # in review: one item, and many
    with pytest.raises(ValidationError, match="2026-10 is in review until 2026-11-06 00:05"):
        billable_item_status_set(item=review.a.fee, status=ItemStatus.EXPORTED)
    change = billable_items_status_set(
        item_ids=items_of(review.a), status=ItemStatus.EXPORTED, actor=review.finance
    )
    assert (change.changed, change.held) == (0, 2)
    assert "2 item(s) held back" in change.refusals()[0]
    # released, but disputed
    dispute = dispute_open(client_id=review.a.client.pk, item_id=review.a.fee.pk, reason="No")
    period_release(month=OCTOBER, actor=review.finance)
    with pytest.raises(ValidationError, match=f"Dispute #{dispute.pk} of the client is open"):
        billable_item_status_set(item=review.a.fee, status=ItemStatus.EXPORTED)
    change = billable_items_status_set(
        item_ids=items_of(review.a), status=ItemStatus.EXPORTED, actor=review.finance
    )
    assert (change.changed_ids, change.held) == ([review.a.overtime.pk], 1)
    assert BillableItem.objects.get(pk=review.a.fee.pk).status == ItemStatus.PENDING
    # voiding a held item is still possible (it is not an export)
    billable_item_status_set(item=review.a.fee, status=ItemStatus.VOID)


def test_a_rejection_answers_and_releases_the_hold(review):
    dispute = dispute_open(client_id=review.a.client.pk, item_id=review.a.fee.pk, reason="No")
    period_release(month=OCTOBER, actor=review.finance)
    dispute = dispute_resolve(
        dispute=dispute, decision="reject", answer="The fee is monthly.", actor=review.finance
    )
    assert (dispute.status, dispute.answer, dispute.adjustment) == (
        "rejected",
        "The fee is monthly.",
        None,
    )
    assert review.a.fee.pk in exportable()
    event = BillingEvent.objects.get(action="dispute_rejected")
    assert event.detail["status"] == ["open", "rejected"]
    assert event.detail["answer"] == "The fee is monthly."


def test_an_adjustment_resolves_with_the_existing_service_naming_the_dispute(review):
    dispute = dispute_open(
        client_id=review.a.client.pk, time_entry_id=review.a.entry.pk, reason="2 h too many"
    )
    dispute = dispute_resolve(
        dispute=dispute,
        decision="adjust",
        answer="Credited 2 hours.",
        amount=Decimal("-120.00"),
        actor=review.finance,
    )
    adjustment = dispute.adjustment
    assert dispute.status == "adjusted"
    assert adjustment.kind == "adjustment"
    assert adjustment.description == f"Dispute #{dispute.pk}: Credited 2 hours."
    assert (adjustment.period, adjustment.subscription_id) == (OCTOBER, review.a.subscription.pk)
    assert adjustment.amount.amount == Decimal("-120.00")
    assert BillingEvent.objects.filter(action="adjustment_added", item=adjustment).exists()
    event = BillingEvent.objects.get(action="dispute_adjusted")
    assert event.detail["adjustment"] == adjustment.pk
    assert event.detail["amount"] == "-120.00 EUR"
    # the adjustment is in the month, so it waits for the window like the others
    assert adjustment.pk not in exportable()
    period_release(month=OCTOBER, actor=review.finance)
    assert {adjustment.pk, review.a.fee.pk} <= exportable()


@pytest.mark.parametrize(
    ("decision", "answer", "amount", "message"),
    [
        ("adjust", "ok", None, "Enter the amount"),
        ("adjust", "ok", Decimal("0"), "An adjustment of zero changes nothing"),
        ("adjust", "ok", Decimal("1.005"), "minor units"),
        ("reject", "  ", None, "Give the answer"),
        ("maybe", "ok", None, "Choose adjust or reject"),
    ],
)
def test_resolve_refusals_change_nothing(review, decision, answer, amount, message):
    dispute = dispute_open(client_id=review.a.client.pk, item_id=review.a.fee.pk, reason="No")
    items, events = BillableItem.objects.count(), BillingEvent.objects.count()
    with pytest.raises(ValidationError, match=message):
        dispute_resolve(
            dispute=dispute, decision=decision, answer=answer, amount=amount, actor=review.finance
        )
    dispute.refresh_from_db()
    assert dispute.status == "open"
    assert (BillableItem.objects.count(), BillingEvent.objects.count()) == (items, events)


def test_a_resolved_dispute_is_not_resolved_again(review):
    dispute = dispute_open(client_id=review.a.client.pk, item_id=review.a.fee.pk, reason="No")
    dispute_resolve(dispute=dispute, decision="reject", answer="No.", actor=review.finance)
    with pytest.raises(ValidationError, match="already resolved"):
        dispute_resolve(dispute=dispute, decision="adjust", answer="Yes", amount=Decimal("-1.00"))


def _open(review, case):
    a = review.a
    if case == "other_clients_item":
        return dispute_open(client_id=a.client.pk, item_id=review.b.fee.pk, reason="x")
    if case == "other_clients_entry":
        return dispute_open(client_id=a.client.pk, time_entry_id=review.b.entry.pk, reason="x")
    if case == "no_reason":
        return dispute_open(client_id=a.client.pk, item_id=a.fee.pk, reason="   ")
    if case == "both":
        return dispute_open(
            client_id=a.client.pk, item_id=a.fee.pk, time_entry_id=a.entry.pk, reason="x"
        )
    if case == "second":
        return dispute_open(client_id=a.client.pk, item_id=a.fee.pk, reason="again")
    if case == "void":
        billable_item_status_set(item=a.overtime, status=ItemStatus.VOID)
        return dispute_open(client_id=a.client.pk, item_id=a.overtime.pk, reason="x")
    raise AssertionError(case)


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("other_clients_item", "No such billable item of yours"),
        ("other_clients_entry", "No such time entry of yours"),
        ("no_reason", "Give the reason"),
        ("both", "Choose one time entry or one billable item"),
        ("second", "is already open"),
        ("void", "A void item is not billed"),
    ],
)
def test_dispute_refusals_change_nothing(review, case, message):
    if case == "second":
        dispute_open(client_id=review.a.client.pk, item_id=review.a.fee.pk, reason="first")
    disputes, events = Dispute.objects.count(), BillingEvent.objects.count()
    with pytest.raises(ValidationError, match=message):
        _open(review, case)
    assert Dispute.objects.count() == disputes
    assert BillingEvent.objects.filter(action="dispute_opened").count() == (
        events and BillingEvent.objects.filter(action="dispute_opened").count()
    )


def test_a_dispute_after_the_window_or_of_an_open_month_is_refused(review, time_machine):
    # an open month (November's time, still open)
    november_entry = review.a.entry
    november_entry.work_date = dt.date(2026, 11, 2)
    november_entry.save(update_fields=["work_date"])
    with pytest.raises(ValidationError, match="2026-11 is not closed yet"):
        dispute_open(client_id=review.a.client.pk, time_entry_id=november_entry.pk, reason="x")
    # the window is over
    time_machine.move_to(REVIEW_UNTIL, tick=False)
    with pytest.raises(ValidationError, match="The review of 2026-10 ended on 2026-11-06 00:05"):
        dispute_open(client_id=review.a.client.pk, item_id=review.a.fee.pk, reason="late")
    assert not Dispute.objects.exists()


def test_a_new_dispute_is_possible_once_the_first_is_resolved(review):
    first = dispute_open(client_id=review.a.client.pk, item_id=review.a.fee.pk, reason="No")
    dispute_resolve(dispute=first, decision="reject", answer="No.", actor=review.finance)
    second = dispute_open(client_id=review.a.client.pk, item_id=review.a.fee.pk, reason="Still")
    assert second.pk != first.pk


def test_the_periods_overview_shows_the_review_and_open_disputes(review):
    dispute_open(client_id=review.a.client.pk, item_id=review.a.fee.pk, reason="No")
    october = next(p for p in periods_overview(now=NOW) if p.month == OCTOBER)
    assert (october.in_review, october.review_until, october.open_disputes) == (
        True,
        REVIEW_UNTIL,
        1,
    )
    assert october.can_release
    assert october.next_step[0].startswith("Wait for the client's review until 2026-11-06")
    period_release(month=OCTOBER, actor=review.finance)
    october = next(p for p in periods_overview(now=NOW) if p.month == OCTOBER)
    assert (october.in_review, october.released_at is not None) == (False, True)
    assert october.next_step == (
        "Resolve the 1 open dispute(s): the items they hold wait; the others can be exported.",
        "pending",
    )
