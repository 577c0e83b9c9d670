"""Who may call what: the roles of supportbilling.roles, looked up once per request.

Each view names the roles allowed per action in ``roles``; an action it does not name is for
administrators only.
"""

from rest_framework.permissions import BasePermission

from supportbilling.roles import ADMINISTRATOR, roles_of


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
        allowed = getattr(view, "roles", {}).get(action, {ADMINISTRATOR})
        return bool(roles_of(request.user) & allowed)
