"""What the apps that send e-mail one row per recipient share (usage alerts, statements, ticket
e-mails): how an SMTP failure reads, whether it is final, when the next attempt is due, and the
loop that claims, sends and records each row."""

import datetime as dt
import logging
import smtplib
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from django.core.mail import EmailMessage
from django.db.models import QuerySet
from django.utils import timezone

# A delivery claimed by a worker that never reported back (killed mid-send) may be tried again
# after this: far longer than an SMTP exchange may last (EMAIL_TIMEOUT, 30 s by default).
CLAIM_TIMEOUT = dt.timedelta(minutes=10)
# Back-off after a failed attempt: 5 min, 10, 20, ... at most 6 h (the periodic run picks the
# delivery up once it is due).
RETRY_FIRST = dt.timedelta(minutes=5)
RETRY_LONGEST = dt.timedelta(hours=6)
# A delivery row's statuses, as billing.models.DeliveryStatus and
# tickets.models.NotificationStatus spell them (this module sits below the apps).
PENDING, SENDING, SENT, FAILED, SKIPPED = "pending", "sending", "sent", "failed", "skipped"
_OPEN = [PENDING, SENDING]


def smtp_failure(exc: OSError | ValueError) -> tuple[bool, str]:
    """(whether the server refused the recipient for good, a short description)."""

    def text(reply: bytes | str) -> str:
        return reply.decode(errors="replace") if isinstance(reply, bytes) else str(reply)

    if isinstance(exc, ValueError):  # an address Django will not put in a header
        return True, f"Invalid address: {exc}"
    if isinstance(exc, smtplib.SMTPRecipientsRefused) and exc.recipients:
        code, reply = next(iter(exc.recipients.values()))
        return code >= 500, f"{code} {text(reply)}"
    if isinstance(exc, smtplib.SMTPDataError):  # the message refused after RCPT
        return exc.smtp_code >= 500, f"{exc.smtp_code} {text(exc.smtp_error)}"
    if isinstance(exc, smtplib.SMTPResponseException):  # our sender or login refused
        return False, f"{exc.smtp_code} {text(exc.smtp_error)}"
    return False, f"{type(exc).__name__}: {exc}"


def delivery_failed_changes(
    exc: OSError | ValueError,
    *,
    attempts: int,
    refused_max_attempts: int,
    max_attempts: int,
    now: dt.datetime,
) -> tuple[dict[str, Any], str]:
    """The fields a failed delivery row gets (``status`` "failed" when given up, else
    "pending" again with a back-off) and the error, for a refusal or a temporary failure."""
    refused, error = smtp_failure(exc)
    changes: dict[str, Any] = {"last_error": " ".join(error.split())[:500], "updated_at": now}
    if attempts >= (refused_max_attempts if refused else max_attempts):
        changes["status"] = FAILED
    else:
        backoff = min(RETRY_FIRST * 2 ** (attempts - 1), RETRY_LONGEST)
        changes.update(status=PENDING, next_attempt_at=now + backoff)
    return changes, error


class Delivery(Protocol):
    """What the loop reads of a row (billing.models.MailDelivery,
    tickets.models.TicketNotification); it writes ``status``,
    ``attempts``, ``next_attempt_at``, ``last_error``, ``sent_at`` and ``updated_at``."""

    @property
    def pk(self) -> Any: ...

    @property
    def status(self) -> str: ...

    @property
    def attempts(self) -> int: ...


_D = TypeVar("_D", bound=Delivery)


def deliveries_send(
    *,
    deliveries: QuerySet[Any, _D],
    message: Callable[[_D], EmailMessage],
    max_attempts: int,
    refused_max_attempts: int,
    label: str,
    logger: logging.Logger,
    now: dt.datetime | None = None,
    limit: int | None = None,
    skip_reason: Callable[[_D], str] | None = None,
    claim_fields: Callable[[_D], dict[str, Any]] | None = None,
) -> int:
    """Send each due row of ``deliveries`` (open, its next attempt reached; join there what
    ``message`` reads) at most once: a row is claimed (a conditional UPDATE, committed) before
    its ``message`` goes out and marked sent right after (its own short UPDATE), so a task
    delivered twice, two workers or a later run never send it again; one refused address does
    not hold back or repeat the others. A failure waits for its back-off
    (``delivery_failed_changes``); a claim that lapsed ``max_attempts`` times is given up.
    ``label`` names the e-mail in ``logger``'s warning. At most ``limit`` rows per call. A row
    for which ``skip_reason`` gives a reason (the recipient turned these e-mails off meanwhile)
    is marked skipped with it instead; ``claim_fields`` are written with the claim (what the
    e-mail needs recorded before it goes out). Call it outside a transaction. Returns the
    e-mails sent."""
    replayed = now  # a caller replaying a moment keeps it for every step

    def moment() -> dt.datetime:
        # Each claim lapses CLAIM_TIMEOUT after it is made, not after the run began: a long
        # run over many recipients must not hand later claims out as lapsed.
        return replayed or timezone.now()

    # Each UPDATE picks its row by key in the whole table, not within ``deliveries``.
    rows = deliveries.model._default_manager
    sent = 0
    due = deliveries.filter(status__in=_OPEN, next_attempt_at__lte=moment())
    for delivery in due if limit is None else due[:limit]:
        if delivery.status == SENDING and delivery.attempts >= max_attempts:
            # Its workers keep dying before they report: stop rather than loop for ever.
            rows.filter(pk=delivery.pk, status=SENDING, attempts=delivery.attempts).update(
                status=FAILED,
                last_error=f"No outcome reported after {delivery.attempts} attempts.",
                updated_at=moment(),
            )
            continue
        reason = skip_reason(delivery) if skip_reason is not None else ""
        if reason:
            rows.filter(pk=delivery.pk, status__in=_OPEN, attempts=delivery.attempts).update(
                status=SKIPPED, last_error=reason, updated_at=moment()
            )
            continue
        mail = message(delivery)
        attempts = delivery.attempts + 1
        now = moment()
        claimed = rows.filter(
            pk=delivery.pk,
            status__in=_OPEN,
            next_attempt_at__lte=now,
            attempts=delivery.attempts,  # nobody claimed it since we read it
        ).update(
            status=SENDING,
            attempts=attempts,
            next_attempt_at=now + CLAIM_TIMEOUT,
            updated_at=now,
            **(claim_fields(delivery) if claim_fields is not None else {}),
        )
        if not claimed:
            continue
        try:
            mail.send()
        except (OSError, ValueError) as exc:  # smtplib's errors, refused connections
            changes, error = delivery_failed_changes(
                exc,
                attempts=attempts,
                refused_max_attempts=refused_max_attempts,
                max_attempts=max_attempts,
                now=moment(),
            )
            # Only our own claim: a worker that took over a lapsed claim reports its own outcome.
            rows.filter(pk=delivery.pk, status=SENDING, attempts=attempts).update(**changes)
            logger.warning("%s #%s not sent (attempt %d): %s", label, delivery.pk, attempts, error)
            continue
        # Accepted by the server: a crash before this line is the one duplicate left.
        rows.filter(pk=delivery.pk).update(
            status=SENT, sent_at=moment(), last_error="", updated_at=moment()
        )
        sent += 1
    return sent
