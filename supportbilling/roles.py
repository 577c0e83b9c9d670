"""The roles of the product, in one place (docs/decisions.md, "One role model").

- administrator: a superuser; may do everything.
- finance: a staff user in the group "Finance".
- operator: a staff user in the group "Operators".
- client user: a user who is not staff and has a portal login (customers.ClientUser) for one
  client; they see that client's data only.

The two groups and their permissions are listed here. The admin asks Django's permissions
(``user.has_perm``), which these groups grant; the API and the portal ask the helpers below.
The billing migrations apply the lists with ``roles_sync_operation``: a change of the lists
needs a new data migration with that operation (existing databases keep the old lists until
then), depending on the latest migrations of the apps whose permissions the lists name; the
one before it then passes ``missing_ok=True``.
"""

from typing import Any

ADMINISTRATOR = "administrator"
FINANCE = "finance"
OPERATOR = "operator"
CLIENT_USER = "client"

OPERATORS_GROUP = "Operators"
FINANCE_GROUP = "Finance"

# "app_label.codename" of each permission a group grants.
GROUP_PERMISSIONS: dict[str, tuple[str, ...]] = {
    OPERATORS_GROUP: (
        "customers.view_client",
        "packages.view_supportpackage",
        "packages.view_packageprice",
        "packages.view_subscription",
        "packages.add_subscription",
        "tickets.view_ticket",
        "tickets.add_ticket",
        "tickets.change_ticket",
        "tickets.view_ticketmessage",
        "tickets.add_ticketmessage",
        "tickets.view_timeentry",
        "tickets.add_timeentry",
        "tickets.change_timeentry",
        "tickets.delete_timeentry",
        "tickets.mark_no_charge",  # goodwill, our own mistake (docs/billing-rules.md)
        "tickets.view_timetimer",
        "tickets.add_timetimer",
        "tickets.delete_timetimer",
        "tickets.view_auditevent",
        "packages.view_billingperiod",
        "tickets.view_inboundmail",
        "tickets.view_unmatchedmail",
        "tickets.change_unmatchedmail",  # assign to a client, discard
        "billing.view_dispute",  # read the clients' disputes; finance resolves them
    ),
    FINANCE_GROUP: (
        "customers.view_client",
        "customers.view_clientuser",
        "packages.view_supportpackage",
        "packages.view_packageprice",
        "packages.view_subscription",
        "tickets.view_ticket",
        "tickets.view_ticketmessage",
        "tickets.view_timeentry",
        "tickets.view_auditevent",
        "packages.view_billingperiod",
        "packages.change_billingperiod",
        "billing.view_billableitem",
        "billing.add_billableitem",
        "billing.change_billableitem",
        "billing.view_usagealert",
        "billing.view_exportjob",  # their own export jobs (administrators see everyone's)
        "billing.add_exportjob",
        "billing.view_dispute",
        "billing.change_dispute",  # resolve: an adjustment or a rejection
        "billing.view_statement",  # monthly statement PDFs, every revision
    ),
}
GROUP_ROLES = {OPERATORS_GROUP: OPERATOR, FINANCE_GROUP: FINANCE}
ROLE_GROUPS = {role: group for group, role in GROUP_ROLES.items()}

STAFF_ROLES = frozenset({ADMINISTRATOR, FINANCE, OPERATOR})
ALL_ROLES = STAFF_ROLES | {CLIENT_USER}


def role_permissions(role: str) -> tuple[str, ...]:
    """The permissions the group of ``role`` grants (an administrator has every permission,
    a client user none: both are empty here)."""
    group = ROLE_GROUPS.get(role)
    return GROUP_PERMISSIONS[group] if group else ()


def client_membership(user: Any) -> Any:
    """The portal login (customers.ClientUser, with its client) of ``user``, or None: one query."""
    from customers.models import ClientUser

    if user is None or not user.is_authenticated:
        return None
    return ClientUser.objects.select_related("client").filter(user_id=user.pk).first()


def roles_of(user: Any) -> frozenset[str]:
    """The roles of ``user``: at most one query, cached on the user object (one request).

    An inactive or anonymous user has none; a superuser is an administrator; other staff have
    the roles of their groups; anyone else is a client user if they have a portal login."""
    cached = getattr(user, "_roles", None)
    if cached is not None:
        return cached
    roles: set[str] = set()
    client_id = None
    if user is not None and user.is_authenticated and user.is_active:
        if user.is_superuser:
            roles.add(ADMINISTRATOR)
        elif user.is_staff:
            names = user.groups.values_list("name", flat=True)
            roles.update(GROUP_ROLES[name] for name in names if name in GROUP_ROLES)
        else:
            membership = client_membership(user)
            if membership is not None:
                roles.add(CLIENT_USER)
                client_id = membership.client_id
    if user is not None:
        user._roles, user._client_id = frozenset(roles), client_id
    return frozenset(roles)


def role_of(user: Any) -> str | None:
    """The one role that decides what ``user`` may do: the widest they hold, or None."""
    roles = roles_of(user)
    for role in (ADMINISTRATOR, FINANCE, OPERATOR, CLIENT_USER):
        if role in roles:
            return role
    return None


def client_id_of(user: Any) -> int | None:
    """The client a client user acts for; None for staff (they see every client) and others."""
    if roles_of(user) & STAFF_ROLES:
        return None
    return getattr(user, "_client_id", None)


def is_administrator(user: Any) -> bool:
    return ADMINISTRATOR in roles_of(user)


def is_finance(user: Any) -> bool:
    return FINANCE in roles_of(user)


def is_operator(user: Any) -> bool:
    return OPERATOR in roles_of(user)


def is_client_user(user: Any) -> bool:
    return CLIENT_USER in roles_of(user)


def is_staff_member(user: Any) -> bool:
    """May use the admin at all (Django's staff flag); what they may do there is permissions."""
    return bool(user is not None and user.is_active and user.is_staff)


def roles_sync(apps: Any = None, *, missing_ok: bool = False) -> None:
    """Make the database's role groups grant exactly GROUP_PERMISSIONS. ``apps`` is a migration's
    historical registry (default: the current models). A listed permission that does not exist
    is an error, unless ``missing_ok`` (an early migration, before that model exists)."""
    if apps is None:
        from django.apps import apps
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for group_name, codes in GROUP_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=group_name)
        wanted = []
        for code in codes:
            app_label, codename = code.split(".")
            found = Permission.objects.filter(
                content_type__app_label=app_label, codename=codename
            ).first()
            if found is None and not missing_ok:
                raise LookupError(f"Permission {code} of group {group_name} does not exist.")
            if found is not None:
                wanted.append(found)
        group.permissions.set(wanted)


def roles_sync_operation(*, missing_ok: bool) -> Any:
    """The operation of a roles_sync migration: create the permissions of every model as the
    migration state has them, then apply the groups' lists. Every such migration but the
    latest passes ``missing_ok=True``: the lists may name models that come later."""
    from django.contrib.auth.management import create_permissions
    from django.db import migrations

    def sync_roles(apps: Any, schema_editor: Any) -> None:
        for app_config in apps.get_app_configs():
            app_config.models_module = True
            create_permissions(app_config, apps=apps, verbosity=0)
            app_config.models_module = None
        roles_sync(apps, missing_ok=missing_ok)

    return migrations.RunPython(sync_roles, migrations.RunPython.noop)
