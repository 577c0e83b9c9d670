"""The ticket page's lists and choices come from the fragment cache only while nothing they
show has changed: every change shows on the next view, at the same frozen moment too."""

import datetime as dt
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from packages.models import BillingPeriod, OveragePolicy, PeriodStatus, Subscription
from tests.factories import (
    ClientUserFactory,
    FinanceFactory,
    OperatorFactory,
    PackageFactory,
    SubscriptionFactory,
    TicketFactory,
    TicketMessageFactory,
    TimeEntryFactory,
    package_with_prices,
)
from tests.races import committed_after_read
from tickets import selectors, services
from tickets.models import AuditAction, NotificationEvent, TicketNotification, TimeEntry
from tickets.services_overage import overage_approve, subscription_overage_set

pytestmark = pytest.mark.django_db
NOW = dt.datetime(2026, 11, 20, 10, 0, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def frozen(time_machine):
    time_machine.move_to(NOW, tick=False)  # every change shares one timestamp


@pytest.fixture
def shown(client):
    operator = OperatorFactory(username="olga")
    client.force_login(operator)
    ticket = TicketFactory()
    entry = TimeEntryFactory(
        ticket=ticket, operator=operator, work_date=dt.date(2026, 11, 10), note="First look"
    )
    url = reverse("admin:tickets_ticket_change", args=[ticket.pk])

    def html() -> str:
        response = client.get(url)
        assert response.status_code == 200
        return response.content.decode()

    assert "First look" in html()  # written and cached
    return {"ticket": ticket, "entry": entry, "operator": operator, "html": html}


def test_a_new_message_shows_on_the_next_view(shown):
    TicketMessageFactory(ticket=shown["ticket"], body="Any news on the VPN?")
    assert "Any news on the VPN?" in shown["html"]()


def test_an_entry_changed_at_the_same_moment_shows_changed(shown):
    services.time_entry_change(
        entry=shown["entry"], actor=shown["operator"], hours="2.5", note="Found the cause"
    )
    html = shown["html"]()
    row = html.split(f'<tr id="entry-{shown["entry"].pk}"')[1].split("</tr>")[0]
    assert "Found the cause" in row and "First look" not in row
    assert '<span id="entries-total">2.5</span>' in html


def test_a_deleted_entry_is_gone_and_a_logged_one_shows(shown):
    services.time_entry_delete(entry=shown["entry"], actor=shown["operator"])
    html = shown["html"]()
    assert f'<tr id="entry-{shown["entry"].pk}"' not in html and "No time logged yet." in html
    assert AuditAction.TIME_DELETED.label in html  # the audit trail
    services.time_entry_log(
        ticket=shown["ticket"],
        operator=shown["operator"],
        hours="0.75",
        work_date=dt.date(2026, 11, 12),
        note="Second look",
    )
    html = shown["html"]()
    assert "Second look" in html and '<span id="entries-total">0.75</span>' in html


def test_an_e_mail_sent_shows_its_new_status(shown):
    mail = TicketNotification.objects.create(
        ticket=shown["ticket"],
        event=NotificationEvent.CLIENT_REPLY,
        event_key="test:cache",
        user=shown["operator"],
        address="olga@desk.test",
        next_attempt_at=timezone.now(),
    )
    assert "olga@desk.test" in shown["html"]()
    TicketNotification.objects.filter(pk=mail.pk).update(status="sent", sent_at=timezone.now())
    row = shown["html"]().split(f'id="mail-{mail.pk}"')[1].split("</tr>")[0]
    assert "Sent" in row and "2026-11-20" in row


def test_a_closed_month_locks_its_entries_on_the_next_view(shown):
    BillingPeriod.objects.create(month=dt.date(2026, 11, 1), status=PeriodStatus.CLOSED)
    html = shown["html"]()
    assert 'id="month-2026-11"' in html and f'id="entry-{shown["entry"].pk}"' not in html


def test_the_cached_lists_are_the_same_for_the_same_ticket(shown):
    # a second view serves the cached lists: the same rows, the same total
    first, second = shown["html"](), shown["html"]()
    for html in (first, second):
        assert html.count('<tr id="entry-') == 1
    total = first.split('<span id="entries-total">')[1].split("<")[0]
    assert f'<span id="entries-total">{total}</span>' in second
    assert TimeEntry.objects.get(pk=shown["entry"].pk).hours == Decimal(total)


def test_a_new_operator_and_a_new_subscription_show_in_the_choices(shown):
    OperatorFactory(username="zoe")
    SubscriptionFactory(client=shown["ticket"].client, package=PackageFactory(name="Platinum care"))
    html = shown["html"]()
    assign = html.split('id="assign-select"')[1].split("</select>")[0]
    assert ">zoe</option>" in assign and ">olga</option>" in assign
    choice = html.split('id="subscription-choice"')[1].split("</details>")[0]
    assert "Platinum care" in choice


def test_the_assignee_chosen_is_selected_in_the_cached_choices(shown, client):
    operator = shown["operator"]
    services.ticket_assign(ticket=shown["ticket"], assignee=operator, actor=operator)
    assign = shown["html"]().split('id="assign-select"')[1].split("</select>")[0]
    assert f'<option value="{operator.pk}" selected>olga</option>' in assign


@pytest.mark.parametrize("object_id", ["999999999", "not-a-number"])
def test_an_unknown_ticket_is_the_admins_message_not_an_error(client, object_id):
    client.force_login(OperatorFactory())
    url = reverse("admin:tickets_ticket_change", args=[object_id])
    response = client.get(url, follow=True)
    assert response.status_code == 200
    assert "doesn’t exist" in response.content.decode()


def test_a_viewer_without_change_permission_sees_the_details_read_only(client):
    client.force_login(FinanceFactory())
    ticket = TicketFactory(subject="Printer on fire")
    html = client.get(reverse("admin:tickets_ticket_change", args=[ticket.pk])).content.decode()
    details = html.split('<details id="ticket-details"')[1].split("</details>")[0]
    assert "Printer on fire" in details and 'name="subject"' not in details
    assert 'id="ticket-details-save"' not in details


def test_an_entry_marked_no_charge_shows_its_badge_and_reason(shown):
    services.time_entry_no_charge_set(
        entry=shown["entry"], actor=shown["operator"], no_charge=True, reason="Our own mistake"
    )
    row = shown["html"]().split(f'<tr id="entry-{shown["entry"].pk}"')[1].split("</tr>")[0]
    assert "no charge" in row and 'title="Our own mistake"' in row
    services.time_entry_no_charge_set(
        entry=shown["entry"], actor=shown["operator"], no_charge=False
    )
    row = shown["html"]().split(f'<tr id="entry-{shown["entry"].pk}"')[1].split("</tr>")[0]
    assert "no charge" not in row


def test_the_stamp_changes_with_an_entrys_no_charge_and_its_reason(shown):
    """Even a change that wrote no audit event (a data fix) shows on the next view."""
    ticket = shown["ticket"]
    before = selectors.workspace_stamp(ticket=ticket).lists
    TimeEntry.objects.filter(pk=shown["entry"].pk).update(no_charge=True, no_charge_reason="A")
    marked = selectors.workspace_stamp(ticket=ticket).lists
    TimeEntry.objects.filter(pk=shown["entry"].pk).update(no_charge_reason="B")
    reason_changed = selectors.workspace_stamp(ticket=ticket).lists
    assert len({before, marked, reason_changed}) == 3
    row = shown["html"]().split(f'<tr id="entry-{shown["entry"].pk}"')[1].split("</tr>")[0]
    assert 'title="B"' in row


# --- The overage panel (docs/billing-rules.md, "Overage policies") ----------------------------
# The panel's figures (policy, caps, approvals) are read on every view, outside the cached
# lists; what the ticket's own trail shows of them (time pending approval, the cap reached)
# are audit events of the ticket, which change the stamp.


@pytest.fixture
def overage_page(client):
    operator = OperatorFactory(username="olga")
    client.force_login(operator)
    subscription = SubscriptionFactory(
        package=package_with_prices({"EUR": ("500.00", "60.00")}, included_hours=Decimal("10")),
        start_date=dt.date(2026, 11, 1),
    )
    ticket = TicketFactory(subscription=subscription, client=subscription.client)
    TimeEntryFactory(
        ticket=ticket, subscription=subscription, hours=Decimal("9.5"), work_date=NOW.date()
    )
    url = reverse("admin:tickets_ticket_change", args=[ticket.pk])

    def html() -> str:
        response = client.get(url)
        assert response.status_code == 200
        return response.content.decode()

    assert 'id="time-overage"' not in html()  # bill: no line; the lists are cached
    return {"ticket": ticket, "subscription": subscription, "operator": operator, "html": html}


def overage_line(html: str) -> str:
    return html.split('id="time-overage">')[1].split("</p>")[0]


def test_a_policy_change_shows_its_line_and_the_pending_choice_on_the_next_view(overage_page):
    subscription_overage_set(
        subscription=overage_page["subscription"],
        policy=OveragePolicy.APPROVE,
        cap_hours=None,
        actor=OperatorFactory(),
    )
    html = overage_page["html"]()
    assert overage_line(html).startswith("Approval needed beyond 10 h in 2026-11")
    assert 'id="log-pending-ok"' in html and 'id="reply-pending-ok"' in html


def test_an_approval_and_time_pending_show_in_the_line_and_the_trail(overage_page):
    subscription = overage_page["subscription"]
    subscription_overage_set(
        subscription=subscription, policy=OveragePolicy.APPROVE, cap_hours=None, actor=None
    )
    assert "(0 h approved by the client)" in overage_line(overage_page["html"]())
    user = ClientUserFactory(client=subscription.client).user
    overage_approve(subscription=subscription, hours="2", user=user, month=dt.date(2026, 11, 1))
    assert "Approval needed beyond 12 h in 2026-11 (2 h approved by the client)" in (
        overage_line(overage_page["html"]())
    )
    before = selectors.workspace_stamp(ticket=overage_page["ticket"]).lists
    services.time_entry_log(
        ticket=overage_page["ticket"],
        operator=overage_page["operator"],
        hours="3",
        work_date=NOW.date(),
        pending_ok=True,
    )
    assert selectors.workspace_stamp(ticket=overage_page["ticket"]).lists != before
    html = overage_page["html"]()
    assert "0.5 h pending approval." in overage_line(html)
    trail = html.split('id="audit-trail"')[1].split("</section>")[0]
    assert "Time logged pending approval" in trail


def test_a_cap_changed_without_an_audit_event_still_shows_on_the_next_view(overage_page):
    """A data fix writes no audit event: the stamp need not change, the line is read anew."""
    subscription = overage_page["subscription"]
    Subscription.objects.filter(pk=subscription.pk).update(
        overage_policy=OveragePolicy.CAP, overage_cap_hours=Decimal("2")
    )
    assert overage_line(overage_page["html"]()).startswith("Overage cap: 2.5 h more")
    Subscription.objects.filter(pk=subscription.pk).update(client_cap_hours=Decimal("1"))
    assert overage_line(overage_page["html"]()).startswith("Overage cap: 1.5 h more")


# An entry committed by another connection right after the page read its stamp (the first
# read), or after it read it again in the snapshot the lists are written in (the second).
@pytest.mark.parametrize("after_read", [1, 2])
@pytest.mark.django_db(transaction=True)
def test_an_entry_committed_while_the_lists_are_written_and_deleted_is_not_shown(
    client, monkeypatch, after_read
):
    client.force_login(OperatorFactory())
    ticket = TicketFactory()
    url = reverse("admin:tickets_ticket_change", args=[ticket.pk])
    stamp_then_entry_committed_elsewhere = committed_after_read(
        selectors.workspace_stamp,
        after_read=after_read,
        commit=lambda: TimeEntryFactory(
            ticket=ticket, work_date=dt.date(2026, 11, 10), note="Logged meanwhile"
        ),
    )
    monkeypatch.setattr(selectors, "workspace_stamp", stamp_then_entry_committed_elsewhere)
    client.get(url)
    # when the entry is deleted again
    TimeEntry.objects.filter(note="Logged meanwhile").delete()
    # then the page does not show it; and while one stands, the next view shows it
    assert "Logged meanwhile" not in client.get(url).content.decode()
    TimeEntryFactory(ticket=ticket, work_date=dt.date(2026, 11, 10), note="Logged meanwhile")
    assert "Logged meanwhile" in client.get(url).content.decode()
