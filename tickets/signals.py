"""Domain events of tickets: what upper apps (billing) may react to without tickets importing
them. Each is sent once the transaction that caused it commits, so a receiver never sees
work that was rolled back."""

from django.dispatch import Signal

# Time was logged, changed or deleted. Keyword arguments: ``subscription_id`` (int) and
# ``months`` (tuple of first-of-month dates whose hours changed, oldest first). The sender is
# ``TimeEntry``. Receivers only queue work or call one service (docs/decisions.md).
time_entries_changed = Signal()

# A ticket was opened (portal, API, admin; later e-mail intake). Keyword arguments:
# ``ticket_id``, ``message_id`` (its first message, or None) and ``actor_id`` (who opened it, or
# None). The sender is ``Ticket``.
ticket_opened = Signal()

# A reply or an internal note was added. Keyword arguments: ``ticket_id``, ``message_id``,
# ``kind`` (a ``MessageKind``) and ``actor_id``. The sender is ``TicketMessage``.
ticket_message_added = Signal()

# The status of a ticket changed. Keyword arguments: ``ticket_id``, ``old_status``,
# ``new_status``, ``actor_id`` and ``audit_event_id`` (the audit record of a close or a
# reopening, None for other changes). The sender is ``Ticket``.
ticket_status_changed = Signal()

# Time beyond the included and approved hours was logged, pending the client's approval, for
# the first time in the month. Keyword arguments: ``subscription_id``, ``ticket_id`` (the
# ticket of that time) and ``month`` (first-of-month date). The sender is ``Subscription``.
overage_approval_needed = Signal()
