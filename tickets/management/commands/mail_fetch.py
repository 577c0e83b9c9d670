"""manage.py mail_fetch: read the helpdesk's mailbox now, as the periodic task does."""

import imaplib

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from imap_tools.errors import ImapToolsError

from tickets.intake import mail_intake_run


class Command(BaseCommand):
    help = "Turn the new mail of the helpdesk's mailbox into tickets and replies (docs/email.md)."

    def handle(self, *args: object, **options: object) -> None:
        if not settings.MAIL_INTAKE_HOST:
            raise CommandError("Mail intake is off: set MAIL_INTAKE_HOST (docs/email.md).")
        try:
            run = mail_intake_run()
        except (OSError, imaplib.IMAP4.error, ImapToolsError) as exc:
            raise CommandError(f"Could not read the mailbox: {exc}") from exc
        if run.skipped:
            self.stdout.write("Another poller is reading this mailbox; nothing done.")
        else:
            self.stdout.write(f"{run.read} e-mails read.")
