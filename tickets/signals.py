"""Domain events of tickets: what upper apps (billing) may react to without tickets importing
them. Each is sent once the transaction that caused it commits, so a receiver never sees
work that was rolled back."""

from django.dispatch import Signal

# Time was logged, changed or deleted. Keyword arguments: ``subscription_id`` (int) and
# ``months`` (tuple of first-of-month dates whose hours changed, oldest first). The sender is
# ``TimeEntry``. Receivers only queue work or call one service (docs/decisions.md).
time_entries_changed = Signal()
