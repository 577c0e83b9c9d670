"""Domain events of billing, for the interfaces above it (webhooks).

Sent inside the transaction of the change, not on commit: a receiver that records an outgoing
notification (a webhook delivery) commits or rolls back with the change, so no event is lost
between the commit and a hook and none is announced for work that was rolled back.

- ``period_closed``: month (first day), actor (or None for the schedule).
- ``items_created``: items (a QuerySet of the new BillableItems; evaluate it only when needed,
  the rollup sends one per batch).
- ``items_status_changed``: changes (a list of (item id, old status)), status (the new one),
  actor.
"""

from django.dispatch import Signal

period_closed = Signal()
items_created = Signal()
items_status_changed = Signal()
