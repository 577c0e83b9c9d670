"""The statement e-mail: "Your statement for 2026-10" with the PDF attached, to each portal
user of the client who wants monthly statements (customers ``user_wants``). One delivery row
per recipient, claimed before sending, retried with back-off and given up on like a usage
alert's (docs/decisions.md, "Usage alert delivery"; supportbilling/mail.py)."""

import datetime as dt
import logging

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import EmailMultiAlternatives
from django.db.models import Exists, OuterRef
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from billing.models import DeliveryStatus, Statement, StatementDelivery
from customers.models import MailKind
from customers.selectors import unsubscribe_token, user_wants
from supportbilling.mail import deliveries_send
from supportbilling.periods import period_label
from supportbilling.queue import task_enqueue

logger = logging.getLogger(__name__)

# A statement whose e-mails are still not done this long after it was stored lost its task
# (or has a recipient whose back-off is over): the catch-up queues it again.
STATEMENT_MAIL_RESEND_AFTER = dt.timedelta(minutes=10)
_OPEN = [DeliveryStatus.PENDING, DeliveryStatus.SENDING]


def statement_download_path(statement: Statement) -> str:
    """The portal's address of this revision (for the client's users)."""
    return reverse(
        "clientarea:statement_revision",
        args=[statement.subscription_id, period_label(statement.month), statement.revision],
    )


def _deliveries_create(*, statement: Statement, now: dt.datetime) -> None:
    """One delivery per address of the client's active users who want statements, the first
    time the statement is sent; the recipients are then fixed."""
    if statement.deliveries.exists():
        return
    users = (
        get_user_model()
        .objects.filter(client_membership__client_id=statement.client_id, is_active=True)
        .exclude(email="")
        .select_related("notification_preference")
        .order_by("pk")
    )
    deliveries: dict[str, StatementDelivery] = {}
    for user in users:
        if not user_wants(user, MailKind.MONTHLY_STATEMENTS):
            continue
        address = user.email.strip()
        deliveries.setdefault(
            address.lower(),
            StatementDelivery(statement=statement, user=user, address=address, next_attempt_at=now),
        )
    StatementDelivery.objects.bulk_create(deliveries.values(), ignore_conflicts=True)


def _message(
    *, statement: Statement, delivery: StatementDelivery, pdf: bytes
) -> EmailMultiAlternatives:
    period = period_label(statement.month)
    context = {
        "statement": statement,
        "user": delivery.user,
        "client": statement.client,
        "subscription": statement.subscription,
        "period": period,
        "download_url": settings.SITE_URL + statement_download_path(statement),
        "unsubscribe_url": settings.SITE_URL
        + reverse(
            "clientarea:unsubscribe",
            args=[
                unsubscribe_token(user_id=delivery.user_id or 0, kind=MailKind.MONTHLY_STATEMENTS)
            ],
        ),
    }
    message = EmailMultiAlternatives(
        subject=render_to_string("billing/statement_subject.txt", context).strip(),
        body=render_to_string("billing/statement_email.txt", context),
        from_email=settings.STATEMENT_FROM_EMAIL,
        to=[delivery.address],
        headers={
            "List-Unsubscribe": f"<{context['unsubscribe_url']}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        },
    )
    message.attach_alternative(
        render_to_string("billing/statement_email.html", context), "text/html"
    )
    message.attach(statement.filename, pdf, "application/pdf")
    return message


def statement_mail_send(*, statement_id: int, now: dt.datetime | None = None) -> int:
    """E-mail the statement to each recipient at most once (the usage alerts' claim, send,
    mark sequence: supportbilling.mail.deliveries_send); a failure is retried by the catch-up
    after its back-off. The statement's ``mailed_at`` is set once no delivery is open. Call it
    outside a transaction. Returns the e-mails sent."""
    statement = (
        Statement.objects.select_related("client", "subscription__package")
        .filter(pk=statement_id, mailed_at__isnull=True)
        .first()
    )
    if statement is None:
        return 0
    _deliveries_create(statement=statement, now=now or timezone.now())
    pdf: bytes | None = None

    def message(delivery: StatementDelivery) -> EmailMultiAlternatives:
        nonlocal pdf
        if pdf is None:  # read once, and only when a delivery is about to be sent
            with statement.file.open("rb") as stored:
                pdf = stored.read()
        return _message(statement=statement, delivery=delivery, pdf=pdf)

    sent = deliveries_send(
        deliveries=statement.deliveries.select_related("user"),
        message=message,
        max_attempts=settings.STATEMENT_MAIL_MAX_ATTEMPTS,
        refused_max_attempts=settings.STATEMENT_MAIL_REFUSED_MAX_ATTEMPTS,
        label="Statement e-mail",
        logger=logger,
        now=now,
    )
    still_open = StatementDelivery.objects.filter(statement=OuterRef("pk"), status__in=_OPEN)
    Statement.objects.filter(pk=statement.pk, mailed_at__isnull=True).exclude(
        Exists(still_open)
    ).update(mailed_at=now or timezone.now())
    return sent


def statement_mails_catch_up(*, now: dt.datetime | None = None) -> int:
    """Queue the statements whose e-mails are not done STATEMENT_MAIL_RESEND_AFTER after they
    were stored (a lost task, a recipient whose back-off is over)."""
    now = now or timezone.now()
    due = StatementDelivery.objects.filter(
        statement=OuterRef("pk"), status__in=_OPEN, next_attempt_at__lte=now
    )
    never_started = ~Exists(StatementDelivery.objects.filter(statement=OuterRef("pk")))
    ids = list(
        Statement.objects.filter(
            mailed_at__isnull=True, created_at__lte=now - STATEMENT_MAIL_RESEND_AFTER
        )
        .filter(Exists(due) | never_started)
        .values_list("pk", flat=True)
    )
    for statement_id in ids:
        task_enqueue("billing.statement_mail_send", statement_id)
    return len(ids)
