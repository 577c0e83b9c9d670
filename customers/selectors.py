"""Reads of the customers app: which e-mails a user wants."""

from typing import Any

from django.core import signing

from customers.models import ClientUser, MailKind, NotificationPreference

UNSUBSCRIBE_SALT = "customers.unsubscribe"


def user_wants(user: Any, kind: str) -> bool:
    """Whether ``user`` wants e-mails of ``kind`` (a ``MailKind``). No query when the user was
    read with ``select_related("notification_preference")`` (or the row was already read)."""
    if kind not in MailKind.values:
        raise ValueError(f"Unknown kind of e-mail {kind!r}.")
    try:
        preference = user.notification_preference
    except NotificationPreference.DoesNotExist:
        return True
    return bool(getattr(preference, kind))


# Sent only to the users of a client (the client's usage alerts and monthly statements);
# ticket e-mails reach staff and clients alike.
CLIENT_MAIL_KINDS = (MailKind.USAGE_ALERTS, MailKind.MONTHLY_STATEMENTS)


def mail_kinds_for(user: Any) -> list[str]:
    """The kinds of e-mail ``user`` can receive, so the preferences offer only those: the
    client kinds need a portal login (one query)."""
    kinds = list(MailKind.values)
    if not ClientUser.objects.filter(user_id=user.pk).exists():
        kinds = [kind for kind in kinds if kind not in CLIENT_MAIL_KINDS]
    return kinds


def notification_preference_of(user: Any) -> NotificationPreference:
    """The user's preferences, unsaved defaults when they never changed them."""
    try:
        return NotificationPreference.objects.get(user_id=user.pk)
    except NotificationPreference.DoesNotExist:
        return NotificationPreference(user=user)


def unsubscribe_token(*, user_id: int, kind: str) -> str:
    """The signed part of a one-click unsubscribe link: it names the user and the kind of
    e-mail, and works without signing in (it only ever turns e-mail off)."""
    return signing.dumps({"u": user_id, "k": kind}, salt=UNSUBSCRIBE_SALT, compress=True)


def unsubscribe_token_read(token: str) -> tuple[int, str] | None:
    """(user id, kind) of a token made by ``unsubscribe_token``; None when it was tampered
    with or is not one."""
    try:
        data = signing.loads(token, salt=UNSUBSCRIBE_SALT)
    except signing.BadSignature:
        return None
    if not isinstance(data, dict):
        return None
    user_id, kind = data.get("u"), data.get("k")
    if not isinstance(user_id, int) or kind not in MailKind.values:
        return None
    return user_id, kind
