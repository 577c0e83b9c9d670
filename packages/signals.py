"""Domain events of the catalogue and subscriptions, for the apps above (billing, tickets).

Sent inside the transaction of the change, not on commit: what the receivers write (the
audit trails, a bucket's stored terms and one-time item) must commit or roll back with it.

- ``package_changed``: package, actor, created (bool), changes ({"field": [old, new]}, prices
  as "price EUR").
- ``subscription_created``: subscription, price (the PackagePrice it is billed at), actor,
  ticket_id (the ticket it was sold from, or None).
- ``subscription_status_changed``: subscription, old_status, new_status, actor.
"""

from django.dispatch import Signal

package_changed = Signal()
subscription_created = Signal()
subscription_status_changed = Signal()
