"""Writes of the customers app: clients and their portal logins (as the API and the admin write
them), the rate limit of password-reset e-mails, and which e-mails each user wants.

Billing's audit of money changes learns of client and portal-login changes through
customers.signals, sent inside the transaction of the change."""

import datetime as dt
import hashlib
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count
from django.utils import timezone

from customers import signals
from customers.models import Client, ClientUser, NotificationPreference, PasswordResetRequest
from supportbilling.changes import fields_diff

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
    *,
    user: Any,
    ticket_mail: bool | None = None,
    usage_alerts: bool | None = None,
    monthly_statements: bool | None = None,
) -> NotificationPreference:
    """Turn kinds of e-mail on or off for ``user`` (None leaves a kind as it is)."""
    preference, _ = NotificationPreference.objects.get_or_create(user_id=user.pk)
    changed = []
    wanted = (
        ("ticket_mail", ticket_mail),
        ("usage_alerts", usage_alerts),
        ("monthly_statements", monthly_statements),
    )
    for field, value in wanted:
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


CLIENT_FIELDS = ("name", "email", "currency", "language", "active")


def client_update_check(*, client: Client, fields: dict[str, Any]) -> None:
    """Refuse a change that client_update refuses (forms call it). The currency is fixed
    once the client has subscriptions or billable items: their prices and amounts are in
    that currency."""
    new_currency = fields.get("currency", client.currency)
    if new_currency != client.currency and (
        client.subscriptions.exists() or client.billable_items.exists()
    ):
        raise ValidationError(
            {
                "currency": "The client has subscriptions or billable items in "
                f"{client.currency}; its currency cannot change."
            }
        )


@transaction.atomic
def client_update(*, client: Client, fields: dict[str, Any], actor: Any = None) -> Client:
    """Change a client; one audit event lists what changed, old and new."""
    client = Client.objects.select_for_update().get(pk=client.pk)
    client_update_check(client=client, fields=fields)
    old_values = {key: getattr(client, key) for key in CLIENT_FIELDS}
    for key in CLIENT_FIELDS:
        if key in fields:
            setattr(client, key, fields[key])
    client.full_clean()
    client.save()
    changes = fields_diff(old_values, {key: getattr(client, key) for key in CLIENT_FIELDS})
    if changes:
        signals.client_changed.send(
            sender=Client, client=client, actor=actor, created=False, changes=changes
        )
    return client


@transaction.atomic
def client_user_create(
    *, client: Client, username: str, email: str, password: str, actor: Any = None
) -> Any:
    """A portal login for ``client``: a username nobody has and a password Django's validators
    accept. The password is stored hashed and never shown again."""
    user_model = get_user_model()
    username = (username or "").strip()
    if not username:
        raise ValidationError({"username": "Enter a username."})
    if user_model.objects.filter(username__iexact=username).exists():
        raise ValidationError({"username": "A user with that username already exists."})
    user = user_model(username=username, email=(email or "").strip())
    try:
        validate_password(password, user=user)
    except ValidationError as exc:
        raise ValidationError({"password": exc.messages}) from exc
    user.set_password(password)
    user.full_clean(exclude=["password"])
    user.save()
    ClientUser.objects.create(user=user, client=client)
    _portal_login_changed(client=client, user=user, actor=actor)
    return user


def _portal_login_changed(*, client: Client, user: Any, actor: Any, added: bool = True) -> None:
    signals.portal_login_changed.send(
        sender=ClientUser, client=client, user=user, actor=actor, added=added
    )


@transaction.atomic
def client_user_link(*, client: Client, user: Any, actor: Any = None) -> Any:
    """Give an existing user a portal login for ``client`` (the client's admin page)."""
    membership, created = ClientUser.objects.get_or_create(user=user, defaults={"client": client})
    if membership.client_id != client.pk:
        raise ValidationError({"user": "That user already acts for another client."})
    if created:
        _portal_login_changed(client=client, user=user, actor=actor)
    return user


@transaction.atomic
def client_user_unlink(*, client: Client, user: Any, actor: Any = None) -> None:
    """Take ``user``'s portal login for ``client`` away (the user account stays), recorded in
    the client's billing audit like its addition."""
    removed, _ = ClientUser.objects.filter(user=user, client=client).delete()
    if removed:
        _portal_login_changed(client=client, user=user, actor=actor, added=False)


@transaction.atomic
def client_user_replace(
    *, replaced_id: int | None, client: Client, user: Any, actor: Any = None
) -> Any:
    """The admin's edit of a portal login row: remove the login ``replaced_id`` (None: there is
    none) and give ``user`` a portal login for ``client``, both or neither, each recorded as
    client_user_unlink / client_user_link record it. Returns the user."""
    if replaced_id is not None:
        replaced = ClientUser.objects.select_related("user", "client").get(pk=replaced_id)
        if (replaced.user_id, replaced.client_id) == (user.pk, client.pk):
            return user  # unchanged
        client_user_unlink(client=replaced.client, user=replaced.user, actor=actor)
    return client_user_link(client=client, user=user, actor=actor)


@transaction.atomic
def client_create(*, fields: dict[str, Any], actor: Any = None) -> Client:
    client = Client(**{key: fields[key] for key in CLIENT_FIELDS if key in fields})
    client.full_clean()
    client.save()
    changes = fields_diff({}, {key: getattr(client, key) for key in CLIENT_FIELDS})
    signals.client_changed.send(
        sender=Client, client=client, actor=actor, created=True, changes=changes
    )
    return client
