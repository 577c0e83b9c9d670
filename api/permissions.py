"""Who may call what: the roles of API.md, looked up once per request.

administrator = superuser; finance = staff in group "Finance"; operator = staff in group
"Operators"; client = a portal login (customers.ClientUser). Each view names the roles allowed
per action in ``roles``; an action it does not name is for administrators only.
"""

from typing import Any

from rest_framework.permissions import BasePermission

ADMIN = "administrator"
FINANCE = "finance"
OPERATOR = "operator"
CLIENT = "client"

GROUP_ROLES = {"Finance": FINANCE, "Operators": OPERATOR}
STAFF = frozenset({ADMIN, FINANCE, OPERATOR})
EVERYONE = STAFF | {CLIENT}


def user_roles(user: Any) -> frozenset[str]:
    """The roles of ``user`` (one query, cached on the user object for the request)."""
    cached = getattr(user, "_api_roles", None)
    if cached is not None:
        return cached
    roles: set[str] = set()
    if user is not None and user.is_authenticated and user.is_active:
        if user.is_superuser:
            roles.add(ADMIN)
        elif user.is_staff:
            names = user.groups.values_list("name", flat=True)
            roles.update(GROUP_ROLES[name] for name in names if name in GROUP_ROLES)
        else:
            from customers.models import ClientUser

            client_id = (
                ClientUser.objects.filter(user_id=user.pk)
                .values_list("client_id", flat=True)
                .first()
            )
            if client_id is not None:
                roles.add(CLIENT)
                user._api_client_id = client_id
    user._api_roles = frozenset(roles)
    return user._api_roles


def client_id_of(user: Any) -> int | None:
    """The client a client user acts for; None for staff (they see every client)."""
    roles = user_roles(user)
    if roles & STAFF:
        return None
    return getattr(user, "_api_client_id", None)


class RolePolicy(BasePermission):
    """403 unless one of the caller's roles is allowed the view's action (401 comes first,
    from IsAuthenticated)."""

    message = "Your role may not do this."

    def has_permission(self, request, view) -> bool:
        if getattr(view, "action", "") is None or not hasattr(view, request.method.lower()):
            return True  # the view has no such method: let it answer 405
        action = getattr(view, "action", None) or request.method.lower()
        if action in ("metadata", "options"):
            return True  # OPTIONS describes the endpoint, it changes nothing
        allowed = getattr(view, "roles", {}).get(action, {ADMIN})
        return bool(user_roles(request.user) & allowed)
