from importlib import import_module

from django.apps import AppConfig


class TicketsConfig(AppConfig):
    name = "tickets"
    verbose_name = "Tickets and time"

    def ready(self) -> None:
        from packages import signals as packages_signals
        from tickets import receivers, signals

        # Registers the mail intake's admin, kept apart from the ticket workspace's module
        # (tickets/admin.py).
        import_module("tickets.admin_intake")

        signals.ticket_opened.connect(
            receivers.mail_on_ticket_opened, dispatch_uid="tickets.mail_on_ticket_opened"
        )
        signals.ticket_message_added.connect(
            receivers.mail_on_message_added, dispatch_uid="tickets.mail_on_message_added"
        )
        signals.ticket_status_changed.connect(
            receivers.mail_on_status_changed, dispatch_uid="tickets.mail_on_status_changed"
        )
        signals.overage_approval_needed.connect(
            receivers.mail_on_overage_approval_needed,
            dispatch_uid="tickets.mail_on_overage_approval_needed",
        )
        packages_signals.subscription_created.connect(
            receivers.audit_on_subscription_created,
            dispatch_uid="tickets.audit_on_subscription_created",
        )
        packages_signals.subscription_status_changed.connect(
            receivers.audit_on_subscription_status_changed,
            dispatch_uid="tickets.audit_on_subscription_status_changed",
        )
