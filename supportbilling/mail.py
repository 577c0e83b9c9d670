"""What the apps that send e-mail share: how an SMTP failure reads and whether it is final."""

import smtplib


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
