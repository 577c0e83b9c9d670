"""Portal logins (customers.ClientUser) as the admin edits them: a row that now names another
user or client replaces the old login, and the new one is recorded as client_user_link does."""

from typing import Any

from django.db import transaction

from billing.services import client_user_link
from customers.models import Client, ClientUser


@transaction.atomic
def client_user_replace(
    *, replaced_id: int | None, client: Client, user: Any, actor: Any = None
) -> Any:
    """Remove the portal login ``replaced_id`` (None: there is none) and give ``user`` a portal
    login for ``client``, both or neither. Returns the user, as client_user_link."""
    if replaced_id is not None:
        ClientUser.objects.filter(pk=replaced_id).delete()
    return client_user_link(client=client, user=user, actor=actor)
