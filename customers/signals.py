"""Domain events of clients and their portal logins, for the apps above (billing's audit).

Sent inside the transaction of the change, so the audit row commits or rolls back with it.

- ``client_changed``: client, actor, created (bool), changes ({"field": [old, new]}).
- ``portal_login_changed``: client, user, actor, added (bool: False when it was removed).
"""

from django.dispatch import Signal

client_changed = Signal()
portal_login_changed = Signal()
