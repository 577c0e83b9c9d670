"""The catalogue and clients, as the API and admin write them: packages and their prices,
clients, portal logins."""

from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from djmoney.money import Money

from billing import audit
from billing.models import (
    BillingAction,
)
from customers.models import Client
from packages.models import (
    PackagePrice,
    Subscription,
    SubscriptionStatus,
    SupportPackage,
)


def _prices_check(*, prices: list[dict[str, Any]]) -> None:
    currencies = [price["currency"] for price in prices]
    for currency in currencies:
        if currency not in settings.CURRENCIES:
            raise ValidationError(
                {"prices": f"{currency} is not one of {', '.join(settings.CURRENCIES)}."}
            )
    if len(set(currencies)) != len(currencies):
        raise ValidationError({"prices": "Give at most one price per currency."})
    for price in prices:
        if price["fee"] < 0 or price["hourly_rate"] < 0:
            raise ValidationError({"prices": "Fees and hourly rates cannot be negative."})


def package_prices_check(*, package: SupportPackage, prices: list[dict[str, Any]]) -> None:
    """Refuse a price list that package_create or package_update refuses (forms call it):
    known currencies, one price each, nothing negative, and a currency still used by a live
    subscription of the package must stay."""
    _prices_check(prices=prices)
    if package.pk is None:
        return
    kept = {price["currency"] for price in prices}
    in_use = sorted(
        set(
            Subscription.objects.filter(package=package)
            .exclude(status=SubscriptionStatus.TERMINATED)
            .exclude(client__currency__in=kept)
            .values_list("client__currency", flat=True)
        )
    )
    if in_use:
        raise ValidationError(
            {
                "prices": f"Subscriptions of this package are billed in {', '.join(in_use)}; "
                "keep a price in that currency."
            }
        )


def _prices_replace(*, package: SupportPackage, prices: list[dict[str, Any]]) -> None:
    """Prices are written whole."""
    package_prices_check(package=package, prices=prices)
    PackagePrice.objects.filter(package=package).delete()
    PackagePrice.objects.bulk_create(
        PackagePrice(
            package=package,
            fee=Money(price["fee"], price["currency"]),
            hourly_rate=Money(price["hourly_rate"], price["currency"]),
        )
        for price in prices
    )


# The fields of a package that are written (prices apart), in the order the admin's list and
# the API show them.
PACKAGE_FIELDS = (
    "name",
    "billing_mode",
    "included_hours",
    "invoice_action",
    "show_work_log",
    "active",
)


def _package_values(package: SupportPackage) -> dict[str, Any]:
    return {key: getattr(package, key) for key in PACKAGE_FIELDS}


@transaction.atomic
def package_create(
    *, fields: dict[str, Any], prices: list[dict[str, Any]], actor: Any = None
) -> SupportPackage:
    package = SupportPackage(**{key: fields[key] for key in PACKAGE_FIELDS if key in fields})
    package.full_clean()
    package.save()
    _prices_replace(package=package, prices=prices)
    audit.billing_event_record(
        action=BillingAction.PACKAGE_CREATED,
        actor=actor,
        package_id=package.pk,
        detail={
            **audit.fields_diff({}, _package_values(package)),
            **audit.prices_diff({}, audit.prices_text(package.prices.all())),
        },
    )
    return package


def package_update_check(*, package: SupportPackage, fields: dict[str, Any]) -> None:
    """Refuse a change of fields that package_update refuses (forms call it). The billing
    mode of a package with subscriptions cannot change: its items were written under the
    old mode."""
    new_mode = fields.get("billing_mode", package.billing_mode)
    if new_mode != package.billing_mode and package.subscriptions.exists():
        raise ValidationError(
            {"billing_mode": "The package has subscriptions; its billing mode cannot change."}
        )


@transaction.atomic
def package_update(
    *,
    package: SupportPackage,
    fields: dict[str, Any],
    prices: list[dict[str, Any]] | None,
    actor: Any = None,
) -> SupportPackage:
    """Change a package; ``prices`` (when given) replaces every price. One audit event lists
    what changed, old and new."""
    package = SupportPackage.objects.select_for_update().get(pk=package.pk)
    package_update_check(package=package, fields=fields)
    old_values = _package_values(package)
    old_prices = audit.prices_text(package.prices.all())
    for key in PACKAGE_FIELDS:
        if key in fields:
            setattr(package, key, fields[key])
    package.full_clean()
    package.save()
    new_prices = old_prices
    if prices is not None:
        _prices_replace(package=package, prices=prices)
        new_prices = audit.prices_text(package.prices.all())
    changes = {
        **audit.fields_diff(old_values, _package_values(package)),
        **audit.prices_diff(old_prices, new_prices),
    }
    if changes:
        audit.billing_event_record(
            action=BillingAction.PACKAGE_CHANGED, actor=actor, package_id=package.pk, detail=changes
        )
    return package


CLIENT_FIELDS = ("name", "email", "currency", "active")


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
    changes = audit.fields_diff(old_values, {key: getattr(client, key) for key in CLIENT_FIELDS})
    if changes:
        audit.billing_event_record(
            action=BillingAction.CLIENT_CHANGED, actor=actor, client_id=client.pk, detail=changes
        )
    return client


@transaction.atomic
def client_user_create(
    *, client: Client, username: str, email: str, password: str, actor: Any = None
) -> Any:
    """A portal login for ``client``: a username nobody has and a password Django's validators
    accept. The password is stored hashed and never shown again."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.password_validation import validate_password

    from customers.models import ClientUser

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
    _portal_login_audit(client=client, user=user, actor=actor)
    return user


def _portal_login_audit(
    *, client: Client, user: Any, actor: Any, action: str = BillingAction.PORTAL_LOGIN_ADDED
) -> None:
    audit.billing_event_record(
        action=action,
        actor=actor,
        client_id=client.pk,
        detail={"username": user.get_username(), "email": user.email},
    )


@transaction.atomic
def client_user_link(*, client: Client, user: Any, actor: Any = None) -> Any:
    """Give an existing user a portal login for ``client`` (the client's admin page)."""
    from customers.models import ClientUser

    membership, created = ClientUser.objects.get_or_create(user=user, defaults={"client": client})
    if membership.client_id != client.pk:
        raise ValidationError({"user": "That user already acts for another client."})
    if created:
        _portal_login_audit(client=client, user=user, actor=actor)
    return user


@transaction.atomic
def client_user_unlink(*, client: Client, user: Any, actor: Any = None) -> None:
    """Take ``user``'s portal login for ``client`` away (the user account stays), recorded in
    the client's billing audit like its addition."""
    from customers.models import ClientUser

    removed, _ = ClientUser.objects.filter(user=user, client=client).delete()
    if removed:
        _portal_login_audit(
            client=client, user=user, actor=actor, action=BillingAction.PORTAL_LOGIN_REMOVED
        )


@transaction.atomic
def client_user_replace(
    *, replaced_id: int | None, client: Client, user: Any, actor: Any = None
) -> Any:
    """The admin's edit of a portal login row: remove the login ``replaced_id`` (None: there is
    none) and give ``user`` a portal login for ``client``, both or neither, each recorded as
    client_user_unlink / client_user_link record it. Returns the user."""
    from customers.models import ClientUser

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
    audit.billing_event_record(
        action=BillingAction.CLIENT_CREATED,
        actor=actor,
        client_id=client.pk,
        detail=audit.fields_diff({}, {key: getattr(client, key) for key in CLIENT_FIELDS}),
    )
    return client
