"""A closed month of the history opens to what was done in it: its time entries on one
subscription, with the operator and note only when the package shows its work log, and a CSV
of them that a spreadsheet cannot run as formulas."""

import csv
import datetime as dt
import io
from decimal import Decimal

import pytest

from billing.services.rollup import period_close
from packages.models import BillingPeriod, PeriodStatus
from tests.clientarea.conftest import OCTOBER, SEPTEMBER, figures
from tests.factories import (
    AdminFactory,
    ClientUserFactory,
    FinanceFactory,
    OperatorFactory,
    SubscriptionFactory,
    TicketFactory,
    TimeEntryFactory,
    UserFactory,
    package_with_prices,
)

pytestmark = pytest.mark.django_db
AUGUST = dt.date(2026, 8, 1)


def month_url(subscription, period="2026-09", csv_file=False) -> str:
    return f"/subscriptions/{subscription.pk}/months/{period}/" + ("csv/" if csv_file else "")


def rows_of(response) -> list[list[str]]:
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    return list(csv.reader(io.StringIO(response.content.decode())))


@pytest.fixture
def gold(portal_user):
    """Gold (work log shown) since August; in September: two entries on "Mail down" and one
    on a ticket whose subject and note look like formulas. September is closed."""
    subscription = SubscriptionFactory(
        client=portal_user.client,
        start_date=AUGUST,
        package=package_with_prices({"EUR": ("500.00", "60.00")}, name="Gold"),
    )
    operator = OperatorFactory(first_name="Alice", last_name="Admin")
    mail = TicketFactory(subscription=subscription, subject="Mail down")
    hostile = TicketFactory(subscription=subscription, subject='=HYPERLINK("http://x")')
    for ticket, hours, day, note in (
        (mail, "1.25", 4, "Restarted Postfix"),
        (mail, "0.50", 2, "Read the logs"),
        (hostile, "2.00", 9, "+cmd|' /C calc'!A0"),
    ):
        TimeEntryFactory(
            ticket=ticket,
            operator=operator,
            hours=Decimal(hours),
            work_date=SEPTEMBER.replace(day=day),
            note=note,
        )
    TimeEntryFactory(ticket=mail, hours=Decimal("3.00"), work_date=OCTOBER)  # still open
    period_close(month=AUGUST)
    period_close(month=SEPTEMBER)
    return subscription


def test_history_links_each_closed_month_to_its_entries_and_csv(signed_in, gold):
    html = signed_in.get("/history/").content.decode()
    assert f'href="{month_url(gold)}"' in html
    assert f'href="{month_url(gold, csv_file=True)}"' in html
    assert f'href="{month_url(gold, "2026-08")}"' in html
    assert "2026-10" not in html.split("<table")[1]  # the open month is not offered


def test_a_closed_month_lists_its_entries_with_the_work_log(signed_in, gold):
    html = signed_in.get(month_url(gold)).content.decode()

    assert "September 2026" in html
    assert figures(html)["entry-hours"] == ["0.50 h", "1.25 h", "2.00 h"]  # by date
    assert figures(html)["month-total"] == ["3.75 h"]
    assert figures(html)["badge"] == ["Billed", "Billed", "Billed"]
    assert "Mail down" in html and "Alice Admin" in html and "Restarted Postfix" in html
    assert "3.00 h" not in html  # October's entry


def test_the_csv_has_the_months_entries_with_formulas_made_text(signed_in, gold):
    response = signed_in.get(month_url(gold, csv_file=True))

    assert response.status_code == 200
    assert response["Content-Disposition"] == (
        f'attachment; filename="support-time-{gold.pk}-2026-09.csv"'
    )
    header, *rows = rows_of(response)
    assert header == ["date", "ticket", "subject", "hours", "billing", "operator", "note"]
    assert [row[0] for row in rows] == ["2026-09-02", "2026-09-04", "2026-09-09"]
    assert [row[3] for row in rows] == ["0.50", "1.25", "2.00"]
    assert rows[1][2:] == ["Mail down", "1.25", "billed", "Alice Admin", "Restarted Postfix"]
    # the same rule as finance's exports: a leading = + - @ becomes text
    assert rows[2][2] == '\'=HYPERLINK("http://x")'
    assert rows[2][6] == "'+cmd|' /C calc'!A0"


def test_without_the_work_log_only_dates_and_hours(signed_in, gold):
    gold.package.show_work_log = False
    gold.package.save(update_fields=["show_work_log"])

    html = signed_in.get(month_url(gold)).content.decode()
    header, *rows = rows_of(signed_in.get(month_url(gold, csv_file=True)))

    assert figures(html)["entry-hours"] == ["0.50 h", "1.25 h", "2.00 h"]
    for text in ("Alice Admin", "Restarted Postfix", "Read the logs"):
        assert text not in html
        assert text not in str(rows)
    assert header == ["date", "ticket", "subject", "hours", "billing"]


def test_only_the_subscriptions_own_entries(signed_in, portal_user, gold):
    # given another subscription of the same client, and another client, with September time
    other = SubscriptionFactory(client=portal_user.client, start_date=AUGUST)
    TimeEntryFactory(
        ticket=TicketFactory(subscription=other, subject="Other package's ticket"),
        hours=Decimal("4.00"),
        work_date=SEPTEMBER,
    )
    foreign = SubscriptionFactory(start_date=AUGUST)
    TimeEntryFactory(
        ticket=TicketFactory(subscription=foreign, subject="Foreign ticket"),
        hours=Decimal("5.00"),
        work_date=SEPTEMBER,
    )
    # when
    html = signed_in.get(month_url(gold)).content.decode()
    _, *rows = rows_of(signed_in.get(month_url(gold, csv_file=True)))
    # then
    assert "Other package's ticket" not in html and "Foreign ticket" not in html
    assert [row[3] for row in rows] == ["0.50", "1.25", "2.00"]


@pytest.mark.parametrize("csv_file", [False, True])
@pytest.mark.parametrize(
    "period", ["2026-10", "2026-11", "2025-09", "2026-13", "2026-9", "september", "0000-01"]
)
def test_a_month_that_is_not_closed_or_not_a_month_is_not_found(signed_in, gold, period, csv_file):
    assert signed_in.get(month_url(gold, period, csv_file)).status_code == 404


def test_a_month_being_closed_is_not_offered_yet(signed_in, gold):
    BillingPeriod.objects.filter(month=OCTOBER).update(status=PeriodStatus.CLOSING)
    assert signed_in.get(month_url(gold, "2026-10")).status_code == 404


@pytest.mark.parametrize("csv_file", [False, True])
@pytest.mark.parametrize(
    ("who", "expected"),
    [
        ("anonymous", "302 /login/"),
        ("own client", "200"),
        ("colleague", "200"),  # another user of the same client
        ("other client", "404"),
        ("no client", "403"),
        ("operator", "302 /admin/"),
        ("finance", "302 /admin/"),
        ("administrator", "302 /admin/"),
    ],
)
def test_who_may_open_a_closed_month(client, portal_user, gold, who, expected, csv_file):
    users = {
        "own client": lambda: portal_user.user,
        "colleague": lambda: ClientUserFactory(client=portal_user.client).user,
        "other client": lambda: ClientUserFactory().user,
        "no client": lambda: UserFactory(),
        "operator": lambda: OperatorFactory(),
        "finance": lambda: FinanceFactory(),
        "administrator": lambda: AdminFactory(),
    }
    if who in users:
        client.force_login(users[who]())

    response = client.get(month_url(gold, csv_file=csv_file))

    code = str(response.status_code)
    if code == "302":
        code += " " + response["Location"].split("?")[0]
    assert code == expected
    body = response.content.decode()
    if expected != "200":
        assert "Restarted Postfix" not in body and "Mail down" not in body


def test_the_page_reads_in_a_fixed_number_of_queries(
    signed_in, portal_user, django_assert_num_queries
):
    # given two subscriptions of the client, one with 1 entry in September and one with 20
    small, large = (
        SubscriptionFactory(client=portal_user.client, start_date=AUGUST) for _ in range(2)
    )
    TimeEntryFactory(ticket=TicketFactory(subscription=small), work_date=SEPTEMBER)
    for day in range(1, 21):
        TimeEntryFactory(
            ticket=TicketFactory(subscription=large), work_date=SEPTEMBER.replace(day=day)
        )
    period_close(month=AUGUST)
    period_close(month=SEPTEMBER)
    signed_in.get(month_url(small))
    # then both pages take the same queries (session, user, client, then 4 of the selector and
    # the month's statement PDFs)
    with django_assert_num_queries(8):
        signed_in.get(month_url(small))
    with django_assert_num_queries(8):
        assert signed_in.get(month_url(large)).content.decode().count("data-entry=") == 20
