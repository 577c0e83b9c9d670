from django.apps import AppConfig


class TicketsConfig(AppConfig):
    name = "tickets"
    verbose_name = "Tickets and time"

    def ready(self) -> None:
        # admin_intake registers the mail intake's admin, apart from the ticket workspace's
        # module (tickets/admin.py).
        from tickets import admin_intake, receivers, signals  # noqa: F401

        signals.ticket_opened.connect(
            receivers.mail_on_ticket_opened, dispatch_uid="tickets.mail_on_ticket_opened"
        )
        signals.ticket_message_added.connect(
            receivers.mail_on_message_added, dispatch_uid="tickets.mail_on_message_added"
        )
        signals.ticket_status_changed.connect(
            receivers.mail_on_status_changed, dispatch_uid="tickets.mail_on_status_changed"
        )
