"""Finance's side of the review window in the admin: the dispute list with its counts and
filters, resolving (finance and administrators only; operators read), the periods page with
the window, the release button, the open disputes and the WHMCS line, and the item list's
"export and mark exported" holding back what the rule holds."""

from decimal import Decimal

import pytest
from django.contrib.messages import get_messages

from billing.models import BillableItem, BillingEvent, Dispute, ItemStatus, PeriodRelease
from billing.services.disputes import dispute_open
from tests.factories import AdminFactory
from tests.review import month_in_review
from whmcs.models import PushStatus, WhmcsPush

pytestmark = pytest.mark.django_db
LIST = "/admin/billing/dispute/"


@pytest.fixture
def review(settings, time_machine):
    return month_in_review(settings, time_machine)


@pytest.fixture
def dispute(review):
    return dispute_open(
        client_id=review.a.client.pk,
        item_id=review.a.overtime.pk,
        reason="We did not order that",
        actor=review.a.user,
    )


def messages_of(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def test_finance_lists_disputes_with_counts_and_filters(client, review, dispute):
    client.force_login(review.finance)
    html = client.get(LIST).content.decode()
    assert 'data-status="open">open: <strong>1</strong>' in html
    assert "We did not order that" not in html  # the reason is on the dispute's page
    assert f"/admin/billing/dispute/{dispute.pk}/change/" in html
    filtered = client.get(LIST + "?status__exact=rejected").content.decode()
    assert f"/admin/billing/dispute/{dispute.pk}/change/" not in filtered
    assert client.get(LIST + "?month=2026-10").status_code == 200
    page = client.get(f"{LIST}{dispute.pk}/change/").content.decode()
    assert "We did not order that" in page and 'id="resolve-dispute"' in page
    assert "Dispute opened" in page  # its audit


def test_an_operator_reads_but_cannot_resolve(client, review, dispute):
    client.force_login(review.operator)
    assert client.get(LIST).status_code == 200
    page = client.get(f"{LIST}{dispute.pk}/change/").content.decode()
    assert 'id="resolve-dispute"' not in page
    url = f"{LIST}{dispute.pk}/resolve/"
    assert client.get(url).status_code == 403
    response = client.post(url, {"decision": "reject", "answer": "No"})
    assert response.status_code == 403
    dispute.refresh_from_db()
    assert dispute.status == "open"


@pytest.mark.parametrize("who", ["finance", "administrator"])
def test_finance_and_administrators_resolve(client, review, dispute, who):
    client.force_login(review.finance if who == "finance" else AdminFactory())
    url = f"{LIST}{dispute.pk}/resolve/"
    assert "We did not order that" in client.get(url).content.decode()
    response = client.post(
        url, {"decision": "adjust", "amount": "-60.00", "answer": "One hour credited."}
    )
    assert response.status_code == 302
    dispute.refresh_from_db()
    assert dispute.status == "adjusted"
    assert dispute.adjustment.description == f"Dispute #{dispute.pk}: One hour credited."
    assert dispute.adjustment.amount.amount == Decimal("-60.00")
    assert BillingEvent.objects.filter(action="dispute_adjusted").count() == 1


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"decision": "adjust", "answer": "ok"}, "Enter the amount of the adjustment."),
        ({"decision": "adjust", "amount": "0", "answer": "ok"}, "zero changes nothing"),
        ({"decision": "reject", "answer": ""}, "This field is required."),
        ({"decision": "later", "answer": "ok"}, "Select a valid choice."),
    ],
)
def test_resolve_refusals_show_on_the_form_and_change_nothing(
    client, review, dispute, data, message
):
    client.force_login(review.finance)
    items = BillableItem.objects.count()
    response = client.post(f"{LIST}{dispute.pk}/resolve/", data)
    assert response.status_code == 400
    assert message in response.content.decode()
    dispute.refresh_from_db()
    assert dispute.status == "open" and BillableItem.objects.count() == items


def test_a_resolved_dispute_is_not_resolved_twice(client, review, dispute):
    client.force_login(review.finance)
    url = f"{LIST}{dispute.pk}/resolve/"
    client.post(url, {"decision": "reject", "answer": "Ordered on ticket 4."})
    response = client.post(url, {"decision": "adjust", "amount": "-1.00", "answer": "x"})
    assert response.status_code == 400
    assert "already resolved (rejected)" in response.content.decode()
    assert Dispute.objects.get().answer == "Ordered on ticket 4."


def test_the_periods_page_shows_the_month_end_and_releases(client, review, dispute):
    WhmcsPush.objects.create(item=review.b.fee, status=PushStatus.FAILED)
    WhmcsPush.objects.create(item=review.b.overtime, status=PushStatus.UNKNOWN)
    client.force_login(review.finance)
    html = client.get("/admin/packages/billingperiod/").content.decode()
    row = html[html.index('id="period-2026-10"') : html.index('id="period-2026-09"')]
    assert 'data-review="in-review"' in row and "In review until 2026-11-06 00:05" in row
    assert "/admin/billing/dispute/?status__exact=open&amp;month=2026-10" in row
    assert "1 open dispute(s)" in row
    assert "WHMCS: 1 push(es) failed, 1 of unknown outcome" in row
    assert "/admin/whmcs/whmcspush/" in row
    assert 'id="release-2026-10"' in row
    response = client.post("/admin/packages/billingperiod/2026-10/release/")
    assert response.status_code == 302
    assert messages_of(response)[0].startswith("2026-10 released")
    assert PeriodRelease.objects.get().released_by == review.finance
    assert BillingEvent.objects.filter(action="period_released").count() == 1
    html = client.get("/admin/packages/billingperiod/").content.decode()
    row = html[html.index('id="period-2026-10"') : html.index('id="period-2026-09"')]
    assert 'data-review="released"' in row and 'id="release-2026-10"' not in row
    # a second release is refused with the reason
    response = client.post("/admin/packages/billingperiod/2026-10/release/")
    assert messages_of(response)[0].startswith("2026-10 was already released")
    assert PeriodRelease.objects.count() == 1


def test_operators_cannot_release(client, review):
    client.force_login(review.operator)
    assert client.post("/admin/packages/billingperiod/2026-10/release/").status_code == 403
    assert client.get("/admin/packages/billingperiod/2026-10/release/").status_code == 405
    assert not PeriodRelease.objects.exists()


def test_export_and_mark_exported_holds_back_what_is_held(client, review, dispute):
    client.force_login(review.finance)
    export = "/admin/billing/billableitem/export/?period=2026-10&format=csv"
    # in review: nothing is exported, and finance is told why
    response = client.post(export)
    assert response.status_code == 302
    assert any("held back, still pending" in message for message in messages_of(response))
    assert set(BillableItem.objects.values_list("status", flat=True)) == {ItemStatus.PENDING}
    # released: all but the disputed item
    client.post("/admin/packages/billingperiod/2026-10/release/")
    response = client.post(export)
    assert response.status_code == 200
    exported = set(
        BillableItem.objects.filter(status=ItemStatus.EXPORTED).values_list("pk", flat=True)
    )
    assert exported == {review.a.fee.pk, review.b.fee.pk, review.b.overtime.pk}
    assert BillableItem.objects.get(pk=review.a.overtime.pk).status == ItemStatus.PENDING


def test_the_mark_exported_action_holds_back_too(client, review, dispute):
    client.force_login(review.finance)
    client.post("/admin/packages/billingperiod/2026-10/release/")
    response = client.post(
        "/admin/billing/billableitem/",
        {
            "action": "mark_exported",
            "_selected_action": [review.a.overtime.pk, review.a.fee.pk],
        },
        follow=True,
    )
    html = response.content.decode()
    assert "1 item(s) marked exported." in html
    assert "1 item(s) held back, still pending" in html
    assert BillableItem.objects.get(pk=review.a.overtime.pk).status == ItemStatus.PENDING
