"""Monthly statement PDFs (docs/statements.md): rendered once per subscription when a month
closes, stored with their checksum and never changed; an adjustment adds a revision that says
what changed; downloaded from the portal and the admin; e-mailed as an attachment to the
client's users who want it; caught up after a lost task."""

import datetime as dt
import hashlib
from decimal import Decimal

import pytest
from django.db import DatabaseError, transaction
from django.test import Client as Browser
from django.urls import reverse

from billing.models import DeliveryStatus, Statement, StatementDelivery
from billing.selectors.monthly_statements import statement_data
from billing.services.items import adjustment_create
from billing.services.monthly_statements import (
    statement_html,
    statement_issue,
    statements_catch_up,
)
from billing.services.rollup import period_close
from billing.services.statement_mail import statement_mail_send, statement_mails_catch_up
from customers.models import MailKind
from customers.selectors import unsubscribe_token
from customers.services import notification_preference_set
from tests.factories import (
    AdminFactory,
    ClientUserFactory,
    FinanceFactory,
    OperatorFactory,
    SubscriptionFactory,
    TicketFactory,
    package_with_prices,
    subscription_with_overtime,
)
from tickets.services import time_entry_log

OCTOBER = dt.date(2026, 10, 1)
NOW = dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.UTC)
pytestmark = pytest.mark.django_db


@pytest.fixture
def clock(time_machine):
    time_machine.move_to(NOW, tick=False)
    return time_machine


@pytest.fixture
def closed(clock, celery_eager, django_capture_on_commit_callbacks):
    """October closed with a subscription that used 12.25 of its 10 hours (500.00 EUR fee,
    2.25 h of overtime at 60.00 EUR) and one portal user; its statement rendered on commit."""
    subscription = subscription_with_overtime()
    login = ClientUserFactory(client=subscription.client, user__username="alice")
    with django_capture_on_commit_callbacks(execute=True):
        period_close(month=OCTOBER)
    return subscription, login.user


def pdf_of(statement: Statement) -> bytes:
    with statement.file.open("rb") as stored:
        return stored.read()


def html_of(statement: Statement) -> str:
    data = statement_data(subscription_id=statement.subscription_id, month=statement.month)
    return statement_html(data=data, record=statement)


def test_closing_a_month_stores_one_statement_pdf_with_the_figures(closed):
    subscription, _ = closed
    # then the month has one statement, a real PDF with its checksum
    statement = Statement.objects.get(subscription=subscription, month=OCTOBER)
    pdf = pdf_of(statement)
    assert statement.revision == 1
    assert pdf.startswith(b"%PDF-") and len(pdf) > 1000
    assert statement.checksum == hashlib.sha256(pdf).hexdigest()
    assert statement.size == len(pdf)
    # and what it prints states the terms, the hours, the items and the total in euros
    html = html_of(statement)
    for figure in (
        'data-figure="included">10.00 h',
        'data-figure="used">12.25 h',
        'data-figure="left">0.00 h',
        'data-figure="overtime">2.25 h',
        'data-figure="fee">€500.00',
        'data-figure="overtime-amount">€135.00',
        'data-figure="total">€635.00',
    ):
        assert figure in html
    assert statement.figures["total"] == "635.00 EUR"


def test_a_client_with_a_language_gets_its_statement_in_that_language(closed):
    subscription, _ = closed
    statement = Statement.objects.get(subscription=subscription, month=OCTOBER)
    # the site's language by default
    assert 'data-figure="total">€635.00' in html_of(statement)
    # a German client: German numbers and month names, the same euros
    subscription.client.language = "de"
    subscription.client.save()
    html = html_of(statement)
    assert 'data-figure="total">635,00\xa0€' in html
    assert "Oktober 2026" in html


def test_the_work_log_shows_only_when_the_package_shows_it(
    clock, celery_eager, django_capture_on_commit_callbacks
):
    hidden = package_with_prices({"EUR": ("100.00", "50.00")}, show_work_log=False)
    subscription = SubscriptionFactory(package=hidden)
    ticket = TicketFactory(subscription=subscription, subject="Printer jammed")
    time_entry_log(
        ticket=ticket,
        operator=OperatorFactory(),
        hours="1.5",
        work_date=dt.date(2026, 10, 3),
        note="Internal: cleaned the rollers",
    )
    with django_capture_on_commit_callbacks(execute=True):
        period_close(month=OCTOBER)
    statement = Statement.objects.get(subscription=subscription)
    html = html_of(statement)
    # the ticket and its hours are listed, the operator's note is not
    assert "Printer jammed" in html and "1.50 h" in html
    assert "cleaned the rollers" not in html
    assert "lists dates and hours only" in html


def test_the_issue_date_is_the_day_in_the_app_time_zone(
    settings, time_machine, celery_eager, django_capture_on_commit_callbacks
):
    # given Warsaw's time zone, and October closed at 00:05 on 1 November there (23:05 UTC on
    # 31 October), as the schedule does
    settings.TIME_ZONE = "Europe/Warsaw"
    time_machine.move_to(dt.datetime(2026, 10, 31, 23, 5, tzinfo=dt.UTC), tick=False)
    subscription = subscription_with_overtime()
    with django_capture_on_commit_callbacks(execute=True):
        period_close(month=OCTOBER)
    # then its statement says it was issued on 1 November
    html = html_of(Statement.objects.get(subscription=subscription, month=OCTOBER))
    assert "<th>Issued</th><td>Nov 1, 2026</td>" in html


def test_a_second_render_changes_nothing(closed):
    subscription, _ = closed
    first = Statement.objects.get(subscription=subscription)
    before = pdf_of(first)
    # when the statement is asked for again (a task delivered twice, the catch-up)
    assert statement_issue(subscription_id=subscription.pk, month=OCTOBER) is None
    assert statements_catch_up() == 0
    # then the stored one is the only one, byte for byte
    assert Statement.objects.filter(subscription=subscription).count() == 1
    first.refresh_from_db()
    assert pdf_of(first) == before and first.checksum == hashlib.sha256(before).hexdigest()


def test_postgresql_refuses_to_change_or_delete_a_statement(postgres, closed):
    statement = Statement.objects.get(subscription=closed[0])
    with pytest.raises(DatabaseError, match="cannot be changed"), transaction.atomic():
        Statement.objects.filter(pk=statement.pk).update(checksum="0" * 64)
    with pytest.raises(DatabaseError, match="cannot be deleted"), transaction.atomic():
        Statement.objects.filter(pk=statement.pk).delete()


def test_an_adjustment_adds_a_revision_that_says_what_changed(
    closed, django_capture_on_commit_callbacks
):
    subscription, user = closed
    first = Statement.objects.get(subscription=subscription)
    first_pdf = pdf_of(first)
    # when finance credits 25.00 EUR on the closed month
    with django_capture_on_commit_callbacks(execute=True):
        adjustment_create(
            client=subscription.client,
            month=OCTOBER,
            amount=Decimal("-25.00"),
            reason="Goodwill credit",
            subscription=subscription,
            actor=FinanceFactory(),
        )
    # then a second revision states the new total and what changed
    revised = Statement.objects.get(subscription=subscription, revision=2)
    assert revised.changes == [
        "Adjustment added: Goodwill credit (-25.00 EUR).",
        "Total: 635.00 EUR before, 610.00 EUR now.",
    ]
    html = html_of(revised)
    assert "Changes since revision 1" in html and "Goodwill credit" in html
    assert 'data-figure="total">€610.00' in html
    assert pdf_of(revised).startswith(b"%PDF-")
    # and the first revision is still there as it was, downloadable by the client's user
    first.refresh_from_db()
    assert pdf_of(first) == first_pdf
    browser = Browser()
    browser.force_login(user)
    latest = browser.get(reverse("clientarea:statement", args=[subscription.pk, "2026-10"]))
    old = browser.get(
        reverse("clientarea:statement_revision", args=[subscription.pk, "2026-10", 1])
    )
    assert b"".join(latest.streaming_content) == pdf_of(revised)
    assert b"".join(old.streaming_content) == first_pdf
    page = browser.get(reverse("clientarea:closed_month", args=[subscription.pk, "2026-10"]))
    assert "revision 2" in page.content.decode() and "revision 1" in page.content.decode()
    history = browser.get(reverse("clientarea:history")).content.decode()
    assert reverse("clientarea:statement", args=[subscription.pk, "2026-10"]) in history


def test_an_adjustment_of_an_open_month_adds_no_revision(
    closed, django_capture_on_commit_callbacks
):
    subscription, _ = closed
    with django_capture_on_commit_callbacks(execute=True):
        adjustment_create(
            client=subscription.client,
            month=dt.date(2026, 11, 1),
            amount=Decimal("10.00"),
            reason="Extra work",
            subscription=subscription,
        )
    assert Statement.objects.filter(subscription=subscription).count() == 1


@pytest.mark.parametrize(
    ("who", "expected"),
    [("own", 200), ("other_client", 404), ("anonymous", 302), ("operator", 302)],
)
def test_only_the_clients_users_download_it_from_the_portal(closed, who, expected):
    subscription, user = closed
    browser = Browser()
    if who == "own":
        browser.force_login(user)
    elif who == "other_client":
        browser.force_login(ClientUserFactory().user)
    elif who == "operator":
        browser.force_login(OperatorFactory())
    response = browser.get(reverse("clientarea:statement", args=[subscription.pk, "2026-10"]))
    assert response.status_code == expected
    if expected == 200:
        assert response["Content-Type"] == "application/pdf"
        assert "attachment" in response["Content-Disposition"]


def test_unknown_months_and_revisions_are_404(closed):
    subscription, user = closed
    browser = Browser()
    browser.force_login(user)
    for args in ([subscription.pk, "2026-09"], [subscription.pk, "not-a-month"]):
        assert browser.get(reverse("clientarea:statement", args=args)).status_code == 404
    missing = reverse("clientarea:statement_revision", args=[subscription.pk, "2026-10", 7])
    assert browser.get(missing).status_code == 404


@pytest.mark.parametrize(
    ("role", "expected"), [("operator", 403), ("finance", 200), ("administrator", 200)]
)
def test_finance_and_administrators_download_it_from_the_admin(closed, role, expected):
    statement = Statement.objects.get(subscription=closed[0])
    user = {"operator": OperatorFactory, "finance": FinanceFactory, "administrator": AdminFactory}[
        role
    ]()
    browser = Browser()
    browser.force_login(user)
    response = browser.get(reverse("admin:billing_statement_download", args=[statement.pk]))
    assert response.status_code == expected
    if expected == 200:
        assert b"".join(response.streaming_content) == pdf_of(statement)
        listing = browser.get(reverse("admin:billing_statement_changelist"))
        assert listing.status_code == 200 and statement.filename in listing.content.decode()


def test_the_statement_is_emailed_with_the_pdf_to_users_who_want_it(
    clock, celery_eager, smtp_server, django_capture_on_commit_callbacks
):
    subscription = subscription_with_overtime()
    wants = ClientUserFactory(client=subscription.client, user__username="wants").user
    declined = ClientUserFactory(client=subscription.client, user__username="declined").user
    notification_preference_set(user=declined, monthly_statements=False)
    with django_capture_on_commit_callbacks(execute=True):
        period_close(month=OCTOBER)
    statement = Statement.objects.get(subscription=subscription)
    # then one e-mail went out, to the user who wants statements, with the PDF attached
    assert smtp_server.to(declined.email) == []
    [message] = smtp_server.to(wants.email)
    assert message["Subject"] == f"Your statement for 2026-10: {subscription.package.name}"
    attachments = [part for part in message.walk() if part.get_filename()]
    assert [part.get_filename() for part in attachments] == [statement.filename]
    assert attachments[0].get_content_type() == "application/pdf"
    assert attachments[0].get_payload(decode=True) == pdf_of(statement)
    token = unsubscribe_token(user_id=wants.pk, kind=MailKind.MONTHLY_STATEMENTS)
    assert token in message["List-Unsubscribe"]
    [delivery] = StatementDelivery.objects.filter(statement=statement)
    assert (delivery.address, delivery.status) == (wants.email, DeliveryStatus.SENT)
    statement.refresh_from_db()
    assert statement.mailed_at is not None
    # and sending again sends nothing
    assert statement_mail_send(statement_id=statement.pk) == 0
    # and the one-click link turns statements off for that user
    assert Browser().post(reverse("clientarea:unsubscribe", args=[token])).status_code == 200
    wants.notification_preference.refresh_from_db()
    assert wants.notification_preference.monthly_statements is False


def test_a_refused_address_is_retried_after_its_back_off(
    clock, celery_eager, smtp_server, django_capture_on_commit_callbacks
):
    subscription = subscription_with_overtime()
    user = ClientUserFactory(client=subscription.client, user__username="bob").user
    smtp_server.refuse[user.email] = ["451 4.3.0 Try again later"]
    with django_capture_on_commit_callbacks(execute=True):
        period_close(month=OCTOBER)
    [delivery] = StatementDelivery.objects.all()
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.PENDING, 1)
    assert "451" in delivery.last_error
    # when the catch-up runs after the back-off
    clock.move_to(NOW + dt.timedelta(minutes=11))
    assert statement_mails_catch_up() == 1
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.SENT and len(smtp_server.to(user.email)) == 1


def test_a_month_closed_while_the_broker_was_down_is_caught_up(
    clock, celery_eager, django_capture_on_commit_callbacks
):
    subscription = subscription_with_overtime()
    # given a close whose on-commit task never ran (the broker was down)
    period_close(month=OCTOBER)
    assert not Statement.objects.exists()
    # when the periodic catch-up runs
    with django_capture_on_commit_callbacks(execute=True):
        assert statements_catch_up() == 1
    # then the statement is there, once
    assert Statement.objects.filter(subscription=subscription, revision=1).count() == 1
    with django_capture_on_commit_callbacks(execute=True):
        assert statements_catch_up() == 0


def test_a_portal_user_turns_statement_emails_off_on_the_preferences_page(closed):
    _, user = closed
    browser = Browser()
    browser.force_login(user)
    page = browser.get(reverse("clientarea:notifications")).content.decode()
    assert 'name="monthly_statements"' in page and "Monthly statements" in page
    # when the user saves the page with only ticket e-mails ticked
    browser.post(reverse("clientarea:notifications"), {"ticket_mail": "on"})
    # then statements (and usage alerts) are off, ticket e-mails on
    user.notification_preference.refresh_from_db()
    preference = user.notification_preference
    assert (preference.ticket_mail, preference.usage_alerts, preference.monthly_statements) == (
        True,
        False,
        False,
    )
