"""Writes of the customers app: the rate limit of password-reset e-mails, and which e-mails
each user wants."""

import datetime as dt
import hashlib
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import Count
from django.utils import timezone

from customers.models import NotificationPreference, PasswordResetRequest

# At most this many reset e-mails per e-mail address, and per client (IP) address, within the
# window (docs/decisions.md, "Exports and hostile input"). The client-address limit is higher:
# an office shares one address.
PASSWORD_RESETS_PER_EMAIL = 3
PASSWORD_RESETS_PER_CLIENT_ADDRESS = 10
PASSWORD_RESET_WINDOW = dt.timedelta(hours=1)


def _key(kind: str, value: str) -> str:
    return hashlib.sha256(f"{kind}:{value}".encode()).hexdigest()


def _counts(keys: list[str], since: dt.datetime) -> dict[str, int]:
    rows = (
        PasswordResetRequest.objects.filter(key__in=keys, created_at__gte=since)
        .values("key")
        .annotate(count=Count("id"))
        .order_by()
    )
    return {row["key"]: row["count"] for row in rows}


def password_reset_request_record(
    *, email: str, client_address: str, now: dt.datetime | None = None
) -> bool:
    """Count one request for a password-reset e-mail; True when the e-mail may be sent (both
    the address asked for and the client address are within their limits for the last hour).
    Every request counts whether or not an account has that address, so the answer never
    tells a known address from an unknown one.

    Not in a transaction on purpose: each row is committed before the second count, so of
    requests racing each other the n-th to write sees at least n rows, and no more than the
    limit of them are allowed."""
    now = now or timezone.now()
    since = now - PASSWORD_RESET_WINDOW
    limits = {
        _key("email", email.strip().lower()): PASSWORD_RESETS_PER_EMAIL,
        _key("ip", client_address): PASSWORD_RESETS_PER_CLIENT_ADDRESS,
    }
    PasswordResetRequest.objects.filter(created_at__lt=since).delete()
    counts = _counts(list(limits), since)
    if any(counts.get(key, 0) >= limit for key, limit in limits.items()):
        return False  # already at the limit: not even counted, so the table stays small
    PasswordResetRequest.objects.bulk_create(
        PasswordResetRequest(key=key, created_at=now) for key in limits
    )
    counts = _counts(list(limits), since)
    return all(counts.get(key, 0) <= limit for key, limit in limits.items())


def notification_preference_set(
    *, user: Any, ticket_mail: bool | None = None, usage_alerts: bool | None = None
) -> NotificationPreference:
    """Turn kinds of e-mail on or off for ``user`` (None leaves a kind as it is)."""
    preference, _ = NotificationPreference.objects.get_or_create(user_id=user.pk)
    changed = []
    for field, value in (("ticket_mail", ticket_mail), ("usage_alerts", usage_alerts)):
        if value is not None and getattr(preference, field) != value:
            setattr(preference, field, value)
            changed.append(field)
    if changed:
        preference.save(update_fields=[*changed, "updated_at"])
    return preference


def notification_unsubscribe(*, user_id: int, kind: str) -> NotificationPreference | None:
    """Turn off one kind of e-mail (``MailKind``) of the user named by an unsubscribe link;
    None when that user no longer exists."""
    user = get_user_model().objects.filter(pk=user_id).first()
    if user is None:
        return None
    return notification_preference_set(user=user, **{kind: False})
