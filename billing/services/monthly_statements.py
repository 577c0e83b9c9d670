"""Monthly statement PDFs (docs/statements.md): rendered once per closed month and
subscription, stored with their checksum, never changed; an adjustment of the month adds the
next revision, which says what changed. Queued on commit of the close and of an adjustment;
a periodic catch-up renders what a lost task left undone."""

import datetime as dt
import hashlib
import logging
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone, translation
from django_weasyprint.utils import DjangoURLFetcher
from weasyprint import HTML

from billing import signals
from billing.models import Statement
from billing.selectors.monthly_statements import (
    MonthlyStatementData,
    statement_changes,
    statement_data,
    statement_figures,
    statement_latest,
    statements_missing,
    subscriptions_billed_in,
)
from customers.models import Client
from packages.models import BillingPeriod, PeriodStatus, Subscription
from supportbilling.periods import period_label
from supportbilling.queue import task_enqueue

logger = logging.getLogger(__name__)

# The catch-up looks at months closed this recently: enough for a broker down for days, and
# it never renders (and e-mails) the statements of months closed long before statements
# existed.
STATEMENT_CATCH_UP_WINDOW = dt.timedelta(days=45)


def statement_locale(client: Client) -> str:
    """The locale a client's statements are written in: the client's language, else the
    site's (LANGUAGE_CODE). Money is always in the client's currency."""
    return client.language or settings.LANGUAGE_CODE


def statement_html(*, data: MonthlyStatementData, record: Statement) -> str:
    """The statement's HTML, which WeasyPrint prints: the record (revision, changes) and the
    month's data (terms, usage, tickets, items)."""
    with translation.override(statement_locale(data.client)):
        return render_to_string(
            "billing/statement.html",
            {
                "data": data,
                "record": record,
                "period": period_label(data.month),
                "site_url": settings.SITE_URL,
            },
        )


class StaticOnlyFetcher(DjangoURLFetcher):
    """django-weasyprint's fetcher (static files read from disk), refusing everything else:
    rendering a statement never reaches out to the network or to other files."""

    def fetch(self, url: str, headers: Any = None) -> Any:
        path = urlsplit(url).path
        if not (url.startswith("file:") and path.startswith(settings.STATIC_URL)):
            raise ValueError(f"Statements load nothing from {url}.")
        return super().fetch(url, headers)


def statement_pdf(html: str) -> bytes:
    """The PDF of ``html`` (the template inlines its CSS; at most static files are read)."""
    base_url = f"file://{settings.STATIC_URL}"
    return bytes(HTML(string=html, base_url=base_url, url_fetcher=StaticOnlyFetcher()).write_pdf())


def statement_issue(*, subscription_id: int, month: dt.date) -> Statement | None:
    """Render and store the first statement of a closed month, or the next revision when its
    figures changed since the latest (an adjustment). None when the latest already states
    them: a closed month's statement is never rendered again, so calling this twice changes
    nothing. The statement is announced (``statement_ready``) with the change, and its
    e-mails are queued on commit."""
    data = statement_data(subscription_id=subscription_id, month=month)
    figures = statement_figures(data)
    with transaction.atomic():
        # One issuer per subscription at a time: the second sees the first's revision.
        Subscription.objects.select_for_update().filter(pk=subscription_id).first()
        latest = statement_latest(subscription_id=subscription_id, month=month)
        if latest is not None and latest.figures == figures:
            return None
        record = Statement(
            subscription=data.subscription,
            client=data.client,
            month=month,
            revision=latest.revision + 1 if latest else 1,
            figures=figures,
            changes=statement_changes(latest.figures, figures) if latest else [],
            created_at=timezone.now(),
        )
        pdf = statement_pdf(statement_html(data=data, record=record))
        record.checksum = hashlib.sha256(pdf).hexdigest()
        record.size = len(pdf)
        record.file.save(record.filename, ContentFile(pdf), save=False)
        record.save()
        signals.statement_ready.send(sender=Statement, statement=record)
        statement_id = record.pk
        transaction.on_commit(
            lambda: task_enqueue("billing.statement_mail_send", statement_id), robust=True
        )
    return record


def statement_issue_queue(*, subscription_id: int, month: dt.date) -> None:
    """On commit of the caller's change: render the subscription's statement of ``month``
    (a task; with the broker down the catch-up renders it later)."""
    period = period_label(month)
    transaction.on_commit(
        lambda: task_enqueue("billing.statement_issue", subscription_id, period), robust=True
    )


def statements_queue_for_month(*, month: dt.date) -> None:
    """On commit of the close: one statement task for the month (it fans out per
    subscription)."""
    period = period_label(month)
    transaction.on_commit(
        lambda: task_enqueue("billing.statements_issue_month", period), robust=True
    )


def statements_issue_month(*, month: dt.date) -> list[int]:
    """Queue one statement task per subscription the closed month billed."""
    if not BillingPeriod.objects.filter(month=month, status=PeriodStatus.CLOSED).exists():
        return []
    subscription_ids = subscriptions_billed_in(month)
    for subscription_id in subscription_ids:
        task_enqueue("billing.statement_issue", subscription_id, period_label(month))
    return subscription_ids


def adjustment_statement_revise(*, subscription_id: int | None, month: dt.date) -> None:
    """An adjustment of a closed month: its subscription's statement gets a new revision once
    the adjustment commits. An adjustment of an open month (or of the client as a whole)
    reaches a statement when the month closes, or none."""
    if subscription_id is None:
        return
    if BillingPeriod.objects.filter(month=month, status=PeriodStatus.CLOSED).exists():
        statement_issue_queue(subscription_id=subscription_id, month=month)


def statements_catch_up(*, now: dt.datetime | None = None) -> int:
    """The periodic safety net: render the statements of recently closed months that a lost
    task left undone (a month closed while the broker was down, an adjustment's revision).
    Returns how many it queued."""
    now = now or timezone.now()
    missing = statements_missing(closed_since=now - STATEMENT_CATCH_UP_WINDOW)
    for subscription_id, month in missing:
        task_enqueue("billing.statement_issue", subscription_id, period_label(month))
    return len(missing)
