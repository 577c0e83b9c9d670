"""What the apps that send e-mail one row per recipient share (usage alerts, ticket e-mails):
how an SMTP failure reads, whether it is final, and when the next attempt is due."""

import datetime as dt
import smtplib
from typing import Any

# A delivery claimed by a worker that never reported back (killed mid-send) may be tried again
# after this: far longer than an SMTP exchange may last (EMAIL_TIMEOUT, 30 s by default).
CLAIM_TIMEOUT = dt.timedelta(minutes=10)
# Back-off after a failed attempt: 5 min, 10, 20, ... at most 6 h (the periodic run picks the
# delivery up once it is due).
RETRY_FIRST = dt.timedelta(minutes=5)
RETRY_LONGEST = dt.timedelta(hours=6)


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
        changes["status"] = "failed"
    else:
        backoff = min(RETRY_FIRST * 2 ** (attempts - 1), RETRY_LONGEST)
        changes.update(status="pending", next_attempt_at=now + backoff)
    return changes, error
