"""Django's ModelBackend with a staff user's permissions read in one query instead of two."""

from typing import Any

from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import Permission
from django.db import connection

# The user's own permissions and their groups', as (app label, codename) rows: the tables of
# django.contrib.auth (the project's user model is its User). Written as SQL: building the same
# query with the ORM cost ten times the CPU of running it (docs/decisions.md).
PERMISSIONS_SQL = """
SELECT ct.app_label, p.codename
  FROM auth_permission p
  JOIN django_content_type ct ON ct.id = p.content_type_id
 WHERE p.id IN (
   SELECT permission_id FROM auth_user_user_permissions WHERE user_id = %s
   UNION
   SELECT gp.permission_id
     FROM auth_group_permissions gp
     JOIN auth_user_groups ug ON ug.group_id = gp.group_id
    WHERE ug.user_id = %s)
"""


class ModelBackendOneQuery(ModelBackend):
    """The same rules as ``ModelBackend`` (active users only, a superuser has every permission,
    a user's own permissions and those of their groups), but the first permission check of a
    request reads the user's and the groups' permissions in one query: every admin page asks
    (docs/decisions.md, "Permissions in one query")."""

    def get_all_permissions(self, user_obj: Any, obj: Any = None) -> set[str]:
        if not user_obj.is_active or user_obj.is_anonymous or obj is not None:
            return set()
        if not hasattr(user_obj, "_perm_cache"):
            if user_obj.is_superuser:
                rows = list(Permission.objects.values_list("content_type__app_label", "codename"))
            else:
                with connection.cursor() as cursor:
                    cursor.execute(PERMISSIONS_SQL, [user_obj.pk, user_obj.pk])
                    rows = cursor.fetchall()
            user_obj._perm_cache = {f"{app_label}.{codename}" for app_label, codename in rows}
        return user_obj._perm_cache
